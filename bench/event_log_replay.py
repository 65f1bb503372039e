"""Benchmark: one partition's run events stored by Dagster's sqlite event log vs `hedgegrid build`'s.

Builds one sample partition with `hedgegrid build` (a fresh data zone and instance), reads back
the events its run stored (~142: planned materializations and checks, step starts, inputs,
outputs, materializations, check evaluations, ...), then stores that run again and again, each
time under a new run id (a new `<run_id>.db`, as every partition's run has), into a fresh
event log of each variant, alternating, and reports the median per run after 2 warm-up runs:

(stock)   Dagster's `SqliteEventLogStorage`: a new engine and connection per statement
(pooled)  `instance_storage.PooledSqliteEventLogStorage`, events stored one by one
(batched) the same, the planned events stored as one batch, as `hedgegrid build` does
          (`instance_storage.event_batches`: Dagster's opt-in batch writing)

Only the event log is timed (no Dagster execution, no work): the figures are what a partition's
run pays for storing its events, CPU and wall, measured in the same process.

    .venv/bin/python bench/event_log_replay.py [--runs 15]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def recorded_run_events(work: Path) -> list:
    """The events of one partition's run, as `hedgegrid build` stored them."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    home = work / "home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_"))}
    env |= {"DAGSTER_HOME": str(home), "HEDGEGRID_SETTINGS_FILE": str(work / "absent.toml")}
    cmd = [str(Path(sys.executable).parent / "hedgegrid"), "build", "--start", "2024-01-01", "--end", "2024-01-02",
           "--symbol", "BTCUSDT", "--data-types", "trades,quotes,bars,mark,funding", "--data-dir", str(work / "data"),
           "--jobs", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"hedgegrid build failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    runs_dir = home / "history" / "runs"
    (run_db,) = [p for p in glob.glob(str(runs_dir / "*.db")) if not p.endswith("index.db")]
    storage = SqliteEventLogStorage(str(runs_dir))
    records = storage.get_records_for_run(Path(run_db).stem, limit=100_000).records
    storage.dispose()
    return [r.event_log_entry for r in records]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()

    from dagster import DagsterEventType
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from hedgegrid_assets.instance_storage import PooledSqliteEventLogStorage

    planned_types = {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
    with tempfile.TemporaryDirectory(prefix="event_log_replay-") as tmp:
        events = recorded_run_events(Path(tmp) / "build")
        planned = [e for e in events if e.is_dagster_event and e.dagster_event_type in planned_types]
        rest = [e for e in events if not (e.is_dagster_event and e.dagster_event_type in planned_types)]
        variants = {
            "stock": (SqliteEventLogStorage, False),
            "pooled": (PooledSqliteEventLogStorage, False),
            "batched": (PooledSqliteEventLogStorage, True),
        }
        storages = {name: cls(str(Path(tmp) / name)) for name, (cls, _) in variants.items()}
        took: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(a.runs + 2):
            for name, (_, batched) in variants.items():
                storage, run_id = storages[name], str(uuid.uuid4())
                first = [e._replace(run_id=run_id) for e in planned]
                then = [e._replace(run_id=run_id) for e in rest]
                c0, w0 = time.process_time(), time.perf_counter()
                if batched:
                    storage.store_event_batch(first)
                else:
                    for e in first:
                        storage.store_event(e)
                for e in then:
                    storage.store_event(e)
                took[name].append((time.process_time() - c0, time.perf_counter() - w0))
        for storage in storages.values():
            storage.dispose()
    print(f"one sample partition's run: {len(events)} events ({len(planned)} planned), median of {a.runs} runs")
    med = {n: (statistics.median(c for c, _ in t[2:]), statistics.median(w for _, w in t[2:])) for n, t in took.items()}
    for name, (cpu, wall) in med.items():
        vs = f"  {med['stock'][1] / wall:.2f}x faster than stock" if name != "stock" else ""
        print(f"  {name:8} {cpu * 1000:6.0f} ms CPU {wall * 1000:6.0f} ms wall per run{vs}")


if __name__ == "__main__":
    main()
