"""`hedgegrid build --jobs N` (worker processes, one run per partition) and its progress bars,
as real `hedgegrid build` subprocesses over the sample source."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from hedgegrid_assets import progress
from hedgegrid_assets.landing.download import Downloads
from hedgegrid_assets.locks import hold
from hedgegrid_assets_tests.conftest import REPO
from hedgegrid_assets_tests.fake_vendor import FakeVendor
from hedgegrid_assets_tests.test_cli import BIN, run

KINDS = "trades,quotes,bars,mark,funding"  # what the sample offers
KEYS = ["2024-01-01|BTCUSDT", "2024-01-01|ETHUSDT", "2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"]
BAR = "━"  # rich's bar glyph


def build(tmp_path: Path, name: str, *extra: str, end: str = "2024-01-03", **env) -> subprocess.CompletedProcess:
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    return run([str(BIN / "hedgegrid"), "build", "--symbol", "BTCUSDT", "--symbol", "ETHUSDT", "--start", "2024-01-01",
                "--end", end, "--data-types", KINDS, "--data-dir", str(work / "d"), *extra], work, **env)  # fmt: skip


def catalog_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "data").rglob("*.parquet"))}


def runs_by_partition(home: Path) -> dict[str, list[DagsterRunStatus]]:
    instance = DagsterInstance.from_config(str(home))
    out: dict[str, list[DagsterRunStatus]] = {}
    for r in instance.get_runs():
        out.setdefault(r.tags["dagster/partition"], []).append(r.status)
    return out


def without_timings(text: str) -> list[str]:
    return [
        re.sub(r"\(\d+\.\d+s\)$", "(s)", ln)
        for ln in text.splitlines()
        if ln.strip() and not ln.startswith("building ")
    ]


def test_jobs_2_builds_the_same_catalog_as_jobs_1_each_partition_once(tmp_path):
    serial = build(tmp_path, "serial", "--jobs", "1")
    parallel = build(tmp_path, "parallel", "--jobs", "2")
    assert serial.returncode == 0, serial.stderr
    assert parallel.returncode == 0, parallel.stderr
    assert "4 partition(s) from source 'sample'" in parallel.stdout and ", 2 at a time" in parallel.stdout
    # Same lines in the same (the range's) order, whichever partition finished first; same summary.
    assert without_timings(parallel.stdout.replace("/parallel/", "/X/")) == without_timings(
        serial.stdout.replace("/serial/", "/X/")
    )
    order = [next(i for i, ln in enumerate(parallel.stdout.splitlines()) if f"] {k}  ok  " in ln) for k in KEYS]
    assert order == sorted(order) and f"[4/4] {KEYS[-1]}  ok  trades=" in parallel.stdout
    # Not a terminal: plain lines, no bars.
    assert BAR not in parallel.stdout and "ETA" not in parallel.stdout
    # The same catalog, byte for byte.
    files = catalog_files(tmp_path / "parallel" / "d" / "catalog")
    assert len(files) >= 4 * 5 + 2 and files == catalog_files(tmp_path / "serial" / "d" / "catalog")
    # Every partition recorded once in the instance, as one successful run.
    for name in ("serial", "parallel"):
        assert runs_by_partition(tmp_path / name / "dagster_home") == {k: [DagsterRunStatus.SUCCESS] for k in KEYS}
        every_event_is_in_its_run_db(tmp_path / name / "dagster_home")


def every_event_is_in_its_run_db(home: Path) -> None:
    """The build's event log (instance_storage.py keeps its connections open) left each run's
    events in `<run_id>.db` itself, not in a WAL that Dagster's live-run watcher does not see:
    read with sqlite ignoring any WAL, each run's file has every event the instance shows."""
    import sqlite3

    instance = DagsterInstance.from_config(str(home))
    for r in instance.get_runs():
        db = home / "history" / "runs" / f"{r.run_id}.db"
        wal = db.with_name(db.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0, f"{wal}: {wal.stat().st_size} bytes not checkpointed"
        with sqlite3.connect(f"file:{db}?immutable=1", uri=True) as conn:
            (n,) = conn.execute("select count(*) from event_logs").fetchone()
        events = instance.all_logs(r.run_id)
        assert n == len(events) > 100 and events[-1].dagster_event_type == DagsterEventType.RUN_SUCCESS


def test_the_build_instance_keeps_its_event_log_connections_only_on_default_sqlite(tmp_path, monkeypatch):
    import shutil

    from hedgegrid_assets.build_runs import instance_for_build
    from hedgegrid_assets.instance_storage import FileComputeLogManager, PooledSqliteEventLogStorage

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = instance_for_build()
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    assert Path(instance.event_log_storage._base_dir) == home / "history" / "runs"
    assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"  # the rest as configured
    # Compute logs: Dagster's files, captured without echo processes; the UI reads them back.
    logs = instance.compute_log_manager
    assert isinstance(logs, FileComputeLogManager) and Path(logs._base_dir) == home / "storage"
    with logs.capture_logs(["run-x", "compute_logs", "step"]):
        print("printed by a step", flush=True)
    data = logs.get_log_data(["run-x", "compute_logs", "step"])
    assert data.stdout == b"printed by a step\n"
    assert logs.is_capture_complete(["run-x", "compute_logs", "step"])
    # An instance that configures its storage and compute logs keeps them (sqlite elsewhere, no-op logs).
    other = tmp_path / "other"
    other.mkdir()
    (other / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {tmp_path / 'elsewhere'}\n"
        "compute_logs:\n  module: dagster._core.storage.noop_compute_log_manager\n  class: NoOpComputeLogManager\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(other))
    configured = instance_for_build()
    storage = configured.event_log_storage
    assert not isinstance(storage, PooledSqliteEventLogStorage)
    assert configured.compute_log_manager.__class__.__name__ == "NoOpComputeLogManager"
    assert Path(storage._base_dir) == tmp_path / "elsewhere" / "history" / "runs"


def test_a_failing_partition_in_a_parallel_build_reports_and_exits_nonzero(tmp_path):
    """One partition is held by another builder (this test) past the lock wait: that partition
    fails with its reason, the others are built, the exit code is 1 as in a serial build."""
    work = tmp_path / "p"
    with hold(work / "d" / "locks", [KEYS[1]], wait_s=0):
        proc = build(tmp_path, "p", "--jobs", "2", "--symbol", "ETHUSDT", HEDGEGRID_LOCK_WAIT_SECONDS="0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    # --symbol ETHUSDT twice: each partition is still scheduled once.
    assert "building 4 partition(s)" in out
    line = next(ln for ln in out.splitlines() if f"] {KEYS[1]}  " in ln)
    assert (
        line.startswith(f"[2/4] {KEYS[1]}  FAILED  ")
        and f"partition {KEYS[1]} is being built by pid {os.getpid()}" in line
    )
    for i, key in enumerate(KEYS, 1):
        if key != KEYS[1]:
            assert f"[{i}/4] {key}  ok  trades=" in out
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "1 of 4 partition(s) failed:" and len(lines) == 2 and lines[1].startswith(f"  {KEYS[1]}: "), (
        proc.stderr
    )
    runs = runs_by_partition(work / "dagster_home")
    assert sorted(runs) == KEYS and all(len(v) == 1 for v in runs.values())
    assert runs[KEYS[1]] == [DagsterRunStatus.FAILURE]


def in_a_terminal(args: list[str], cwd: Path, env: dict) -> tuple[int, str]:
    """Run `args` with stdout on a pseudo-terminal (as a user's shell would); what it drew."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    out, deadline = b"", time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(leader)
    proc.wait(timeout=60)
    return proc.returncode, out.decode(errors="replace")


def terminal_env(tmp_path: Path) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_"))}
    return env | {"DAGSTER_HOME": str(home), "HEDGEGRID_SETTINGS_FILE": str(tmp_path / "absent.toml"),
                  "HEDGEGRID_SAMPLE__TRADES_PER_DAY": "3000", "TERM": "xterm-256color", "COLUMNS": "160"}  # fmt: skip


def test_a_terminal_gets_progress_bars_with_elapsed_and_eta(tmp_path):
    args = [str(BIN / "hedgegrid"), "build", "--symbol", "BTCUSDT", "--symbol", "ETHUSDT", "--start", "2024-01-01",
            "--end", "2024-01-02", "--data-types", KINDS, "--data-dir", str(tmp_path / "d"), "--jobs", "2"]  # fmt: skip
    code, shown = in_a_terminal(args, tmp_path, terminal_env(tmp_path))
    assert code == 0, shown[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # colours and cursor moves out
    # The bar over the partitions, with elapsed time and ETA, ends at 2/2.
    assert re.search(rf"partitions +{BAR}+ 2/2 partitions elapsed \d:\d\d:\d\d ETA \d:\d\d:\d\d", plain), plain[-3000:]
    # A running partition's bar says its stage (steps of the run).
    assert re.search(
        rf"20\d\d-\d\d-\d\d\|[A-Z]+USDT  [a-z +()]+ +[{BAR}╺╸ ]+ \d+/\d+ steps +elapsed \d:\d\d:\d\d ETA", plain
    )
    # The per-partition lines as without a terminal, once each.
    assert (
        plain.count("] 2024-01-01|BTCUSDT  ok  trades=") == 1 and plain.count("] 2024-01-01|ETHUSDT  ok  trades=") == 1
    )
    # In process (--jobs 1) as well, stage by stage: the bars go to the terminal even while Dagster
    # captures the step's stdout into its compute log.
    one = [*args[:-2], "--jobs", "1", "--symbol", "BTCUSDT"]
    one = [a for i, a in enumerate(one) if not (a == "--symbol" and one[i + 1] == "ETHUSDT") and a != "ETHUSDT"]
    code, shown = in_a_terminal(one, tmp_path, terminal_env(tmp_path))
    assert code == 0, shown[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    for stage in ("source read (landing raw files)", "read + validate trades", "read + validate mark_prices",
                  "commit to the catalog"):  # fmt: skip
        assert f"2024-01-01|BTCUSDT  {stage} " in plain, stage
    assert re.search(rf"partitions +{BAR}+ 1/1 partitions elapsed \d:\d\d:\d\d ETA", plain)
    # --no-progress: the same command in a terminal draws no bar.
    code, shown = in_a_terminal([*args[:-2], "--jobs", "1", "--no-progress"], tmp_path, terminal_env(tmp_path))
    assert code == 0, shown[-3000:]
    assert BAR not in shown and "ETA" not in shown and "] 2024-01-01|ETHUSDT  ok  trades=" in shown


def test_a_download_reports_its_bytes_to_whoever_listens(tmp_path):
    """The download loop hands (file, bytes so far, bytes expected) to the progress sink per
    chunk (the CLI's download bar); with no sink it reports nothing and downloads the same."""
    events: list[progress.Event] = []
    with FakeVendor() as server:
        server.put("/big.bin", b"x" * 3_500_000)
        server.put("/other.bin", b"y" * 10)
        with progress.reporting_to(events.append):
            Downloads(tmp_path, "v", log=lambda _: None).get(f"{server.url}/big.bin", "big.bin")
        assert [(e.kind, e.label, e.done, e.total) for e in events] == [
            ("bytes", "big.bin", n, 3_500_000) for n in (1 << 20, 2 << 20, 3 << 20, 3_500_000)
        ]
        assert (
            Downloads(tmp_path, "v", log=lambda _: None).get(f"{server.url}/other.bin", "other.bin").read_bytes()
            == b"y" * 10
        )
    assert len(events) == 4
