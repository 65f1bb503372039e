"""Snapshot of the Dagster definitions: what the code location declares, not what it computes.

Assets (key, group, deps, partitions, automation condition, kinds, pool, op, IO manager,
resources, backfill and retry policy), asset checks (blocking, description, partitions), jobs
(assets and checks selected, executor, partitions), the schedule (cron, timezone, status and the
runs one fixed tick requests), the sensor and the resources, built from the default settings
(the sample source, as `make demo` uses). A second snapshot records only what a few settings
change in that picture (source with a download pool, symbols, start date, schedule time,
automation running), so it shows that they reach the definitions and nothing else moves.

The snapshot is plain sorted data (no reprs with addresses, no paths of this machine, nothing
that depends on today's date) in `__snapshots__/test_definitions_snapshot.ambr`. Any change to
the definitions fails this test. When the change is meant, update the snapshot on purpose:

    .venv/bin/pytest hedgegrid_assets_tests/test_definitions_snapshot.py --snapshot-update

and review the diff of the .ambr file in the same commit as the change (it is the readable
record of what the change did to the asset graph, checks, jobs, schedules and sensors).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from dagster import (
    AssetKey,
    AutomationCondition,
    Definitions,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    build_schedule_context,
)

from hedgegrid_assets.definitions import build_definitions
from hedgegrid_assets.settings import Settings

# The schedule is evaluated at this fixed tick (never "now"): the runs it requests are part of the snapshot.
SCHEDULE_TICK = dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC)

# Settings that change the definitions' shape, for the second snapshot (a diff against the defaults).
VARIANT = {
    "source": "binance",  # a vendor download: its raw step joins the "binance" pool
    "symbols": ["SOLUSDT"],
    "start_date": dt.date(2023, 6, 1),
    "schedule_time": dt.time(5, 30),
    "automation_running": True,
}


# Dagster's own deprecations inside schedule evaluation (its partition tags, its run requests),
# and the beta label of observable source assets that coverage_asset.py accepts knowingly.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Function `observable_source_asset` is currently in beta:dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore:Non-compliant tag keys:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition`:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Property `OpDefinition.version`:DeprecationWarning"),
]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No developer's hedgegrid.toml, HEDGEGRID_* variables or Dagster instance reach the settings."""
    for name in list(os.environ):
        if name.startswith("HEDGEGRID_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEDGEGRID_SETTINGS_FILE", str(tmp_path / "absent.toml"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings_for(root, **overrides) -> Settings:
    # The data folder is this test's (nothing is built; no path appears in the snapshot).
    return Settings(data_dir=root / "data", **overrides)


# --- plain, deterministic descriptions -------------------------------------------------------


def _key(key: AssetKey) -> str:
    return key.to_user_string()


def _check(key) -> str:
    return f"{_key(key.asset_key)}:{key.name}"


def _partitions_detail(pd: PartitionsDefinition) -> dict | str:
    """Type and dimensions, never the partition keys of a time window (they grow every day)."""
    if isinstance(pd, MultiPartitionsDefinition):
        return {
            "type": "multi",
            "dimensions": {d.name: _partitions_detail(d.partitions_def) for d in pd.partitions_defs},
        }
    if isinstance(pd, TimeWindowPartitionsDefinition):
        return {
            "type": "time_window",
            "cron": pd.cron_schedule,
            "start": pd.start.isoformat(),
            "end": pd.end.isoformat() if pd.end is not None else None,
            "timezone": pd.timezone,
            "fmt": pd.fmt,
            "end_offset": pd.end_offset,
        }
    if isinstance(pd, StaticPartitionsDefinition):
        return {"type": "static", "keys": list(pd.get_partition_keys())}
    return f"{type(pd).__name__}: {pd}"


class _Named:
    """Distinct values described once in their own section and named there (by label, or by a
    short name with '#2', '#3' for different values under the same name); entries give the name."""

    def __init__(self, render, base_name):
        self.render, self.base_name, self.values = render, base_name, {}

    def name(self, obj) -> str | None:
        if obj is None:
            return None
        value = self.render(obj)
        base = self.base_name(obj)
        name, n = base, 1
        while name in self.values and self.values[name] != value:
            n += 1
            name = f"{base} #{n}"
        self.values[name] = value
        return name

    def section(self) -> dict:
        return dict(sorted(self.values.items()))


def _partitions_name(pd: PartitionsDefinition) -> str:
    if isinstance(pd, MultiPartitionsDefinition):
        return " x ".join(d.name for d in pd.partitions_defs)
    return type(pd).__name__


def _condition_tree(condition: AutomationCondition, depth: int = 0) -> list[str]:
    """The condition as an indented tree: each node's name (with its parameters) and label."""
    label = condition.get_label()
    lines = ["  " * depth + condition.name + (f" [{label}]" if label else "")]
    children = list(condition.children)
    operand = getattr(condition, "operand", None)
    if not children and isinstance(operand, AutomationCondition):  # e.g. ALL_CHECKS_MATCH hides its operand
        children = [operand]
    for child in children:
        lines += _condition_tree(child, depth + 1)
    return lines


def _retry(policy) -> str | None:
    if policy is None:
        return None
    parts = [f"max_retries={policy.max_retries}", f"delay={policy.delay}"]
    if policy.backoff is not None:
        parts.append(f"backoff={policy.backoff.value}")
    if policy.jitter is not None:
        parts.append(f"jitter={policy.jitter.value}")
    return ", ".join(parts)


def _backfill(policy) -> str | None:
    if policy is None:
        return None
    return f"{policy.policy_type.value} (max_partitions_per_run={policy.max_partitions_per_run})"


def _dropped_empty(d: dict, keep: tuple[str, ...]) -> dict:
    return {k: v for k, v in d.items() if k in keep or v not in (None, [], {}, "")}


def _assets(defs: Definitions, graph, conditions: _Named, partitions: _Named) -> dict:
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=_key):
        node = graph.get(key)
        ad = defs.resolve_assets_def(key)
        spec = next(s for s in ad.specs if s.key == key)
        mapped = {_key(d.asset_key): d.partition_mapping for d in spec.deps}
        deps = [
            _key(k) + (f" (mapping {type(mapped[_key(k)]).__name__})" if mapped.get(_key(k)) else "")
            for k in sorted(node.parent_keys, key=_key)
        ]
        tags = {k: v for k, v in node.tags.items() if not k.startswith("dagster/kind/")}  # kinds are listed
        entry = {
            "group": node.group_name,
            "description": node.description,
            "deps": deps,
            "partitions": partitions.name(node.partitions_def),
            "automation_condition": conditions.name(node.automation_condition),
            "execution": node.execution_type.value.lower(),
            "materializable": node.is_materializable,
            "observable": node.is_observable,
            "executable": node.is_executable,
            "code_version": node.code_version,
            "kinds": sorted(node.kinds),
            "tags": dict(sorted(tags.items())),
            "owners": sorted(node.owners),
            "metadata_keys": sorted(node.metadata),
            "pools": sorted(node.pools),
            "backfill_policy": _backfill(node.backfill_policy),
            "checks": sorted(k.name for k in node.check_keys),
        }
        if ad.is_executable:
            entry |= {
                "op": ad.node_def.name,
                "op_retry_policy": _retry(ad.op.retry_policy),
                "can_subset": ad.can_subset,
                "skippable": spec.skippable,
                "io_manager_key": ad.get_io_manager_key_for_asset_key(key),
                "required_resources": sorted(ad.required_resource_keys),
            }
        keep = (
            "group",
            "deps",
            "partitions",
            "automation_condition",
            "execution",
            "kinds",
            "checks",
        )
        out[_key(key)] = _dropped_empty(entry, keep)
    return out


def _checks(graph, conditions: _Named, partitions: _Named) -> dict:
    out = {}
    for ad in graph.assets_defs:
        for spec in ad.check_specs:
            entry = {
                "asset": _key(spec.asset_key),
                "blocking": spec.blocking,
                "description": spec.description,
                "additional_deps": sorted(_key(d.asset_key) for d in spec.additional_deps),
                "partitions": partitions.name(spec.partitions_def),
                "automation_condition": conditions.name(spec.automation_condition),
                "metadata_keys": sorted(spec.metadata or {}),
                "computed_by_op": ad.node_def.name if ad.is_executable else None,
            }
            out[_check(spec.key)] = _dropped_empty(entry, ("asset", "blocking", "partitions"))
    return dict(sorted(out.items()))


def _jobs(defs: Definitions, partitions: _Named) -> dict:
    out = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        # Dagster keeps a job's selected assets and checks on its asset layer (no public accessor).
        layer = job.asset_layer
        entry = {
            "description": job.description,
            "executor": job.executor_def.name,
            "partitions": partitions.name(job.partitions_def),
            "tags": dict(sorted(job.tags.items())),
            "run_tags": dict(sorted((job.run_tags or {}).items())),
            "op_retry_policy": _retry(job.op_retry_policy),
            "hooks": sorted(h.name for h in job.hook_defs),
            "has_config_mapping": job.config_mapping is not None,
            "assets": sorted(_key(k) for k in layer.selected_asset_keys),
            "checks": sorted(_check(k) for k in layer.asset_graph.asset_check_keys),
            "ops": sorted(job.graph.node_dict),
        }
        out[job.name] = _dropped_empty(entry, ("executor", "partitions", "assets", "checks"))
    return out


def _schedules(defs: Definitions) -> dict:
    out = {}
    for name in sorted(s.name for s in defs.schedules):
        schedule = defs.resolve_schedule_def(name)
        tick = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=SCHEDULE_TICK))
        requests = [
            {
                "run_key": r.run_key,
                "partition_key": r.partition_key,
                "job": r.job_name,
                # The project's own tags (Dagster's dagster/* ones restate the partition and schedule).
                "tags": {k: v for k, v in sorted(r.tags.items()) if not k.startswith("dagster/")},
            }
            for r in sorted(tick.run_requests or [], key=lambda r: str(r.run_key))
        ]
        out[name] = _dropped_empty(
            {
                "description": schedule.description,
                "cron": schedule.cron_schedule,
                "timezone": schedule.execution_timezone,
                "job": schedule.job_name,
                "default_status": schedule.default_status.value,
                "tags": dict(sorted(schedule.tags.items())),
                "metadata_keys": sorted(schedule.metadata),
                f"tick {SCHEDULE_TICK.isoformat()} requests": requests,
                f"tick {SCHEDULE_TICK.isoformat()} skips": tick.skip_message,
            },
            ("cron", "timezone", "job", "default_status"),
        )
    return out


def _sensors(defs: Definitions) -> dict:
    out = {}
    for name in sorted(s.name for s in defs.sensors):
        sensor = defs.resolve_sensor_def(name)
        selection = sensor.asset_selection
        out[name] = _dropped_empty(
            {
                "type": sensor.sensor_type.value,
                "description": sensor.description,
                "minimum_interval_seconds": sensor.minimum_interval_seconds,
                "default_status": sensor.default_status.value,
                "jobs": sorted(t.job_name for t in sensor.targets),
                "asset_selection": str(selection) if selection is not None else None,
                "tags": dict(sorted(sensor.tags.items())),
                "metadata_keys": sorted(sensor.metadata),
            },
            ("type", "minimum_interval_seconds", "default_status", "jobs"),
        )
    return out


def describe(defs: Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    conditions = _Named(_condition_tree, lambda c: c.get_label() or c.name)
    partitions = _Named(_partitions_detail, _partitions_name)
    return {
        "assets": _assets(defs, graph, conditions, partitions),
        "asset_checks": _checks(graph, conditions, partitions),
        "jobs": _jobs(defs, partitions),
        "schedules": _schedules(defs),
        # Described once here, named by the entries above.
        "automation_conditions": conditions.section(),
        "partitions_definitions": partitions.section(),
        "sensors": _sensors(defs),
        # Class names only: where a class lives may move (modules are being reorganised), what it is may not.
        "resources": {key: type(res).__name__ for key, res in sorted((defs.resources or {}).items())},
        "executor": defs.executor.name if defs.executor is not None else None,
    }


def _flat(value, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out |= _flat(v, f"{path}.{k}" if path else str(k))
        return out
    return {path: value}


def _deterministic(described: dict, root) -> None:
    text = repr(described)
    assert " at 0x" not in text, "a repr with a memory address got into the description"
    assert str(root) not in text, "a path of this test's temporary folder got into the description"
    assert dt.date.today().isoformat() not in text, "today's date got into the description (a time window's keys?)"


# --- the tests -------------------------------------------------------------------------------


def test_definitions_snapshot(isolated, snapshot):
    described = describe(build_definitions(settings_for(isolated)))
    _deterministic(described, isolated)
    assert described == snapshot


def test_settings_change_only_what_they_should(isolated, snapshot):
    """What VARIANT changes against the defaults, path by path (the rest is the snapshot above)."""
    default = _flat(describe(build_definitions(settings_for(isolated))))
    variant = _flat(describe(build_definitions(settings_for(isolated, **VARIANT))))
    _deterministic(variant, isolated)
    diff = {
        path: {
            "default": default.get(path, "(absent)"),
            "variant": variant.get(path, "(absent)"),
        }
        for path in sorted(default.keys() | variant.keys())
        if default.get(path, "(absent)") != variant.get(path, "(absent)")
    }
    settings = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in VARIANT.items()}
    assert {"settings": settings, "changes": diff} == snapshot
