"""The production instance (deploy/dagster.yaml) against a real PostgreSQL server.

One server for the session (pg_server.py), one fresh database for this module, and a
DAGSTER_HOME holding a copy of deploy/dagster.yaml with DAGSTER_POSTGRES_URL pointing at the
database. Every assertion reads back what Postgres holds: the runs and event_logs tables, the
instigators (schedule/sensor state), concurrency_limits (pools), bulk_actions (backfills).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._serdes import deserialize_value

from hedgegrid_assets.definitions import BUILD_JOB
from hedgegrid_assets_tests import pg_server
from hedgegrid_assets_tests.conftest import REPO

postgres_server = pg_server.postgres_server  # the session fixture
# One worker runs the module, in order: its tests share one database and build on each other
# (the last one reads everything the others stored); `make test` runs `--dist loadgroup`.
pytestmark = pytest.mark.xdist_group("postgres_instance")
BIN = Path(sys.executable).parent
DB = "hedgegrid_dagster"


class Env:
    def __init__(self, server: pg_server.PostgresServer, root: Path):
        self.server = server
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
        url = server.create_database(DB)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_", "DAGSTER_"))}
        self.env |= {
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_POSTGRES_URL": url,
            "HEDGEGRID_SETTINGS_FILE": str(root / "absent.toml"),
            "HEDGEGRID_DATA_DIR": str(root / "data"),
            "HEDGEGRID_SAMPLE__TRADES_PER_DAY": "3000",
        }

    def run(self, args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)

    def sql(self, query: str, params=()) -> list[tuple]:
        return self.server.query(DB, query, params)

    def instance(self) -> DagsterInstance:
        saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_POSTGRES_URL")}
        os.environ.update({k: self.env[k] for k in saved})
        try:
            return DagsterInstance.from_config(str(self.home))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def pg(postgres_server, tmp_path_factory) -> Env:
    return Env(postgres_server, tmp_path_factory.mktemp("pg_instance"))


def test_instance_is_postgres_with_the_local_queue_limits_and_pools(pg):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    instance = pg.instance()
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    # The same queue, tag limits, pools and retries as the local instance (dagster.yaml).
    prod = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    for key in ("run_coordinator", "concurrency", "run_retries", "telemetry"):
        assert prod[key] == local[key], key
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 2
    assert [(t["key"], t["limit"]) for t in queue.tag_concurrency_limits] == [("dagster/partition", 1)]
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
    # The connection comes from the environment: the file holds no URL, host or password.
    text = (pg.home / "dagster.yaml").read_text()
    assert "env: DAGSTER_POSTGRES_URL" in text and pg.server.password not in text
    # Dagster created its tables in our database on first use.
    tables = {r[0] for r in pg.sql("select table_name from information_schema.tables where table_schema = 'public'")}
    assert {"runs", "event_logs", "instigators", "concurrency_limits", "bulk_actions"} <= tables


def test_hedgegrid_build_is_recorded_in_postgres(pg):
    start = time.monotonic()
    proc = pg.run([str(BIN / "hedgegrid"), "build", "--source", "sample", "--symbol", "BTCUSDT",
                   "--start", "2024-01-01", "--end", "2024-01-02"])  # fmt: skip
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/1] 2024-01-01|BTCUSDT  ok  trades=" in proc.stdout
    runs = pg.sql("select r.run_id, r.status from runs r join run_tags t on t.run_id = r.run_id "
                  "where t.key = 'dagster/partition' and t.value = '2024-01-01|BTCUSDT'")  # fmt: skip
    assert len(runs) == 1 and runs[0][1] == "SUCCESS", runs
    run_id = runs[0][0]
    tags = dict(pg.sql("select key, value from run_tags where run_id = %s", (run_id,)))
    assert tags["dagster/partition"] == "2024-01-01|BTCUSDT"
    # (A row without an event type is a plain log line from the run.)
    events = {str(k): n for k, n in pg.sql("select dagster_event_type, count(*) from event_logs where run_id = %s "
                                           "group by dagster_event_type", (run_id,))}  # fmt: skip
    total = sum(events.values())
    assert events["PIPELINE_SUCCESS"] == 1 and events["ASSET_MATERIALIZATION"] >= 10
    assert events["ASSET_CHECK_EVALUATION"] >= 5
    # ...and Dagster's own reads (what the UI shows) come from Postgres too.
    instance = pg.instance()
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
    assert "2024-01-01|BTCUSDT" in instance.get_materialized_partitions(AssetKey("trades_catalog"))
    print(f"\nhedgegrid build of 1 partition on Postgres: {seconds:.1f} s, {total} event_logs rows "
          f"(trades_per_day=3000): {json.dumps(events, sort_keys=True)}")  # fmt: skip


def _instigators(pg: Env) -> dict[str, tuple[str, str]]:
    """Schedule/sensor state rows of the instigators table: name -> (type, status)."""
    rows = pg.sql("select instigator_type, status, instigator_body from instigators")
    return {deserialize_value(body, InstigatorState).name: (kind, status) for kind, status, body in rows}


def test_schedule_and_sensor_state_in_postgres(pg):
    instance = pg.instance()
    origin = LoadableTargetOrigin(module_name="hedgegrid_assets", working_directory=str(REPO),
                                  executable_path=sys.executable)  # fmt: skip
    with in_process_test_workspace(instance, origin) as workspace:
        location = next(iter(workspace.code_locations))
        repo = next(iter(location.get_repositories().values()))
        schedule = repo.get_schedule("daily_build_schedule")
        sensor = repo.get_sensor("landing_file_sensor")
        instance.start_schedule(schedule)
        instance.start_sensor(sensor)
    assert _instigators(pg) == {"daily_build_schedule": ("SCHEDULE", "RUNNING"),
                                "landing_file_sensor": ("SENSOR", "RUNNING")}  # fmt: skip
    # A fresh instance (another process would see the same) reads the state back.
    states = {s.name: s for s in pg.instance().all_instigator_state()}
    assert states["daily_build_schedule"].status == InstigatorStatus.RUNNING
    assert states["landing_file_sensor"].status == InstigatorStatus.RUNNING
    # Stopping is stored too (and keeps the daemon in the backfill test from ticking them).
    instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
    instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
    assert _instigators(pg) == {"daily_build_schedule": ("SCHEDULE", "STOPPED"),
                                "landing_file_sensor": ("SENSOR", "STOPPED")}  # fmt: skip


def test_pool_limits_live_in_postgres(pg):
    for pool, limit in (("tardis", 2), ("binance", 4)):
        proc = pg.run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, str(limit)], timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
    rows = dict(pg.sql("select concurrency_key, count(*) from concurrency_slots group by concurrency_key"))
    assert rows == {"tardis": 2, "binance": 4}
    limits = dict(pg.sql('select concurrency_key, "limit" from concurrency_limits'))
    assert limits == {"tardis": 2, "binance": 4}
    assert pg.instance().event_log_storage.get_concurrency_info("tardis").slot_count == 2


def _wait_for_runs(pg: Env, run_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        status = dict(pg.sql("select run_id, status from runs where run_id = any(%s)", (run_ids,)))
        done = all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in status.values())
        if done or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_backfill_of_two_partitions_runs_concurrently_through_the_queue(pg):
    before = {r[0] for r in pg.sql("select run_id from runs")}
    keys = ["2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"]
    proc = pg.run([str(BIN / "dagster"), "job", "backfill", "-w", str(REPO / "workspace.yaml"), "-j", BUILD_JOB,
                   "--partitions", ",".join(keys), "--noprompt"], timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    backfills = pg.sql("select key, status from bulk_actions")
    assert len(backfills) == 1, backfills
    backfill_id = backfills[0][0]
    runs = {r[0]: r[1] for r in pg.sql("select run_id, status from runs") if r[0] not in before}
    # Submitted to the queue in Postgres; nothing runs until the daemon dequeues them.
    assert sorted(runs.values()) == ["QUEUED", "QUEUED"]
    run_ids = list(runs)
    tags = pg.sql("select run_id, key, value from run_tags where run_id = any(%s)", (run_ids,))
    assert {v for _, k, v in tags if k == "dagster/partition"} == set(keys)
    assert {v for _, k, v in tags if k == "dagster/backfill"} == {backfill_id}

    # The daemon launches both at once (max_concurrent_runs 2; distinct partitions pass the tag limit).
    daemon_log = pg.root / "daemon.log"
    with daemon_log.open("w") as log:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=pg.root, env=pg.env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        try:
            status = _wait_for_runs(pg, run_ids, timeout=300)  # generous: a loaded 2-core machine
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
    assert list(status.values()) == ["SUCCESS", "SUCCESS"], (status, daemon_log.read_text()[-3000:])
    # Both ran at the same time: each started before the other ended (times from the runs table).
    windows = pg.sql("select start_time, end_time from runs where run_id = any(%s)", (run_ids,))
    (s1, e1), (s2, e2) = windows
    assert s1 < e2 and s2 < e1, windows
    # Both are recorded with their events, and the catalog has both partitions.
    counts = dict(pg.sql("select run_id, count(*) from event_logs where run_id = any(%s) group by run_id", (run_ids,)))
    assert set(counts) == set(run_ids) and min(counts.values()) > 50
    instance = pg.instance()
    assert set(keys) <= instance.get_materialized_partitions(AssetKey("trades_catalog"))
    assert instance.get_backfill(backfill_id) is not None
    queued = pg.sql("select extract(epoch from create_timestamp), start_time, end_time from runs "
                    "where run_id = any(%s)", (run_ids,))  # fmt: skip
    print(f"\nbackfill of 2 partitions through the daemon: runs overlapped {min(e1, e2) - max(s1, s2):.1f} s; "
          f"queued -> started {[round(s - float(c), 1) for c, s, _ in queued]} s; run durations "
          f"{[round(e - s, 1) for _, s, e in queued]} s; event_logs rows per run {sorted(counts.values())}")  # fmt: skip


def test_no_secret_written_to_the_instance_folder(pg):
    """After every test above: the password is in no file under DAGSTER_HOME (logs included)."""
    for path in pg.home.rglob("*"):
        if path.is_file():
            assert pg.server.password.encode() not in path.read_bytes(), path
    # ...nor in any event Dagster stored.
    hits = pg.sql("select count(*) from event_logs where event like %s", (f"%{pg.server.password}%",))
    assert hits == [(0,)]
