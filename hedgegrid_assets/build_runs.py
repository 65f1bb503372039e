"""The runs of `hedgegrid build`: one Dagster run per date|symbol partition, `jobs` at a time.

`--jobs 1` executes each run in the CLI's own process, one after another (as the command
always has). `--jobs N` hands the partitions to N worker processes (spawned, so none inherits
the CLI's threads or database connections), each executing its partitions' runs in process
against the same Dagster instance (`$DAGSTER_HOME`; each worker has its own ephemeral one when
it is unset). Each partition is scheduled exactly once per invocation (the keys are
deduplicated) and each run holds the partition's lock (`locks.py`) from its start to its end,
so a partition is never built twice at once, by this command or any other builder.

A worker sends back a plain `Outcome` per partition (rows per kind, the notes, or the one-line
reason) and, while it runs, progress events (`progress.py`) over a queue; the CLI prints the
outcomes in the partitions' order, whatever order they finish in: `[i/n]` is the partition's
place in the range, so the output of `--jobs 1` and `--jobs N` is the same but for timings.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue as queue_mod
import re
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from hedgegrid_assets import progress

# Runs log in full to the instance (the UI shows them); the terminal gets this command's own
# lines: the outcome per partition, what was set aside or warned about, one reason per failure.
RUN_CONFIG = {
    "loggers": {
        "console": {"config": {"log_level": "CRITICAL"}},
        progress.PROGRESS_LOGGER: {},  # step starts to the progress bars (no output of its own)
    }
}
JOB_NAME = "hedgegrid_cli_build"


@dataclass
class Outcome:
    key: str
    ok: bool
    elapsed: float
    counts: dict[str, int] = field(default_factory=dict)  # rows per kind written (ok)
    notes: list[str] = field(default_factory=list)  # downloads, set aside, warnings (ok)
    reason: str = ""  # why it failed (not ok)

    def lines(self, i: int, n: int) -> list[str]:
        if not self.ok:
            return [f"[{i}/{n}] {self.key}  FAILED  {self.reason}  ({self.elapsed:.1f}s)"]
        detail = "  ".join(f"{k}={v:,}" for k, v in self.counts.items())
        return [f"[{i}/{n}] {self.key}  ok  {detail}  ({self.elapsed:.1f}s)", *[f"      {note}" for note in self.notes]]


def unique(keys) -> list[str]:
    """The keys in their order, each once: one invocation never schedules a partition twice."""
    return list(dict.fromkeys(str(k) for k in keys))


def build_job_def(settings, kind_names: list[str]):
    from hedgegrid_assets.definitions import build_definitions, build_job
    from hedgegrid_assets.frames import KINDS

    job = build_job(settings, [KINDS[n] for n in kind_names], name=JOB_NAME)
    job_def = build_definitions(settings, jobs=[job]).resolve_job_def(job.name)
    return job_def.with_logger_defs({**job_def.loggers, progress.PROGRESS_LOGGER: progress.progress_logger})


def instance_for_build():
    from dagster import DagsterInstance

    from hedgegrid_assets.instance_storage import build_instance

    home = os.environ.get("DAGSTER_HOME")
    return build_instance(home) if home else DagsterInstance.ephemeral()


class PartitionRunner:
    """Executes one partition's run in this process and tells how it went."""

    def __init__(self, settings, kind_names: list[str]):
        self.kind_names = kind_names
        self.job_def = build_job_def(settings, kind_names)
        self.instance = instance_for_build()
        self.steps = len(self.job_def.nodes_in_topological_order)
        # The job, the instance and the imported libraries live as long as the process: kept out
        # of the collector's full passes (measured 0.09 s of GC per partition without this).
        gc.freeze()

    def run(self, key: str) -> Outcome:
        from hedgegrid_assets.assets import catalog_asset_name
        from hedgegrid_assets.frames import KINDS
        from hedgegrid_assets.instance_storage import event_batches

        t0 = time.perf_counter()
        with event_batches(self.instance):
            result = self.job_def.execute_in_process(
                partition_key=key, instance=self.instance, raise_on_error=False, run_config=RUN_CONFIG
            )
        elapsed = time.perf_counter() - t0
        if not result.success:
            return Outcome(key, False, elapsed, reason=failure_reason(result))
        written = {
            ev.event_specific_data.materialization.asset_key.to_user_string(): ev.event_specific_data.materialization
            for ev in result.get_asset_materialization_events()
        }
        # Kinds the source does not offer (no klines in the sample, say) are left out.
        kinds = [KINDS[n] for n in self.kind_names]
        offered = [k for k in kinds if k.name not in written or "offered" not in written[k.name].metadata]
        counts = {k.name: int(written[catalog_asset_name(k)].metadata["rows"].value) for k in offered}
        return Outcome(key, True, elapsed, counts=counts, notes=downloads(self.instance, result) + notes(result))


def failure_reason(result) -> str:
    failed = [
        f"check {ev.check_name} on {ev.asset_key.to_user_string()} failed: {ev.description or ''}".rstrip(": ")
        for ev in result.get_asset_check_evaluations()
        if not ev.passed and ev.severity.value == "ERROR"
    ]
    if failed:
        return "; ".join(failed)
    for ev in result.get_step_failure_events():
        err = ev.step_failure_data.error
        user = ev.step_failure_data.user_failure_data
        message = (user.description if user and user.description else None) or (
            (err.cause.message if err and err.cause else None) or (err.message if err else "failed")
        )
        return f"step {ev.step_key}: {message.strip().splitlines()[0]}"
    for ev in result.all_events:  # before any step: a resource (the partition's lock, busy) failed to start
        err = getattr(ev.event_specific_data, "error", None)
        if err is not None and ev.event_type_value in ("RESOURCE_INIT_FAILURE", "RUN_FAILURE"):
            message = (err.cause.message if err.cause else err.message).strip()
            if message:  # the lock's own sentence, without the exception's module path
                return re.sub(r"^(?:\w+\.)*PartitionBusyError: ", "", message.splitlines()[0])
    return "run failed (see the Dagster run log)"


def notes(result) -> list[str]:
    """What a successful run set aside, skipped or warned about (the details are in the UI)."""
    out, skips = [], {}
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization
        meta = mat.metadata
        name = mat.asset_key.to_user_string()
        if "quarantined_rows" in meta and meta["quarantined_rows"].value:
            reasons = ", ".join(f"{r}: {n:,}" for r, n in meta["quarantined_by_reason"].value.items())
            out.append(f"{name}: {meta['quarantined_rows'].value:,} row(s) quarantined ({reasons})")
        skipped = meta["skipped_while_parsing"].value if "skipped_while_parsing" in meta else {}
        said = [f"{k.replace('_', ' ')}: {v:,}" for k, v in skipped.items()
                if k not in ("lines", "unknown_event_messages") and isinstance(v, int) and v]  # fmt: skip
        by_type = skipped.get("unknown_events_by_type") or {}
        if by_type:  # event types no kind reads (depthUpdate, kline, ...), per type
            said.append("events no kind reads: " + ", ".join(f"{e} {n:,}" for e, n in sorted(by_type.items())))
        if said:  # one file read for several kinds says the same for each: said once
            skips.setdefault(", ".join(said), []).append(name)
    out += [f"{', '.join(names)}: skipped while parsing ({said})" for said, names in skips.items()]
    for ev in result.get_asset_check_evaluations():
        if not ev.passed and ev.severity.value == "WARN":
            desc = f": {ev.description}" if ev.description else ""
            out.append(f"warning: {ev.check_name} on {ev.asset_key.to_user_string()}{desc}")
    return out


def downloads(instance, result) -> list[str]:
    """What a download source fetched for the partition (its summary line in the run log)."""
    from hedgegrid_assets.landing.download import SUMMARY

    return [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith(SUMMARY)]


def run_partitions(settings, kind_names: list[str], keys: list[str], jobs: int, bars: bool) -> list[Outcome]:
    """Build every partition, `jobs` at a time; print each one's lines in the keys' order (bars
    with elapsed time and ETA above them when `bars`); the outcomes in that order."""
    keys = unique(keys)
    jobs = max(1, min(jobs, len(keys)))
    n = len(keys)
    outcomes: dict[str, Outcome] = {}
    shown = 0

    if jobs == 1:
        runner = PartitionRunner(settings, kind_names)
        with progress.Display(n, runner.steps, bars) as display:
            for key in keys:
                display.started(key)
                with progress.reporting_to(lambda ev, key=key: display.event(key, ev)):
                    outcomes[key] = runner.run(key)
                display.finished(key)
                for line in outcomes[key].lines(len(outcomes), n):
                    display.line(line)
        return [outcomes[k] for k in keys]

    if os.environ.get("DAGSTER_HOME"):
        instance_for_build()  # a fresh instance's databases are created here, once, not by two workers at once
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    with ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_init_worker, initargs=(settings, kind_names, events)
    ) as pool:
        futures = {pool.submit(_work, key): key for key in keys}  # each key once; workers take them in order
        pending = set(futures)
        # The workers start (imports, definitions) while this process builds the job for the
        # bars' step count; their events wait in the queue until the display is up.
        steps = len(build_job_def(settings, kind_names).nodes_in_topological_order)
        with progress.Display(n, steps, bars) as display:
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(events, display)
                for future in done:
                    key = futures[future]
                    try:
                        outcomes[key] = future.result()
                    except Exception as err:
                        outcomes[key] = Outcome(
                            key, False, 0.0, reason=f"worker process failed: {type(err).__name__}: {err}"
                        )
                    display.finished(key)
                while shown < n and keys[shown] in outcomes:  # in the keys' order
                    shown += 1
                    for line in outcomes[keys[shown - 1]].lines(shown, n):
                        display.line(line)
            _drain(events, display)
    return [outcomes[k] for k in keys]


def _drain(events, display: progress.Display) -> None:
    while True:
        try:
            key, ev = events.get_nowait()
        except queue_mod.Empty:
            return
        if ev is None:
            display.started(key)
        else:
            display.event(key, ev)


_worker: dict = {}


def _init_worker(settings, kind_names: list[str], events) -> None:
    _worker["runner"] = PartitionRunner(settings, kind_names)
    _worker["events"] = events


def _work(key: str) -> Outcome:
    events = _worker["events"]
    events.put((key, None))
    with progress.reporting_to(progress.Throttle(lambda ev: events.put((key, ev)))):
        return _worker["runner"].run(key)
