"""One builder per partition (issue 10, point 2): concurrent builds of the same partition wait
for each other instead of failing; one that may not wait says who holds the partition."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hedgegrid_assets.locks import hold, lock_path
from hedgegrid_assets_tests.test_cli import BIN, run


def test_a_held_partition_stops_a_builder_that_may_not_wait(tmp_path):
    locks = tmp_path / "locks"
    said = []
    with hold(locks, ["2024-01-02|BTCUSDT"], wait_s=0):
        assert lock_path(locks, "2024-01-02|BTCUSDT").read_text().startswith("pid ")
        holder = subprocess.run(  # another process: flock is per process here
            [sys.executable, "-c", "import sys; from pathlib import Path; from hedgegrid_assets.locks import hold\n"
             "with hold(Path(sys.argv[1]), ['2024-01-02|BTCUSDT'], wait_s=0.5, say=print): pass", str(locks)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert holder.returncode != 0
        assert "PartitionBusyError: partition 2024-01-02|BTCUSDT is being built by pid " in holder.stderr
        assert " since 20" in holder.stderr and "waiting up to 0s" in holder.stdout
    with hold(locks, ["2024-01-02|BTCUSDT"], wait_s=0, say=said.append):  # released: free again
        pass
    assert said == []
    with pytest.raises(ValueError, match="invalid symbol"):
        lock_path(locks, "2024-01-02|../x")


def test_two_concurrent_builds_of_one_partition_both_succeed(tmp_path):
    args = [str(BIN / "hedgegrid"), "build", "--source", "sample", "--symbol", "BTCUSDT", "--start", "2024-01-02",
            "--end", "2024-01-03", "--data-dir", str(tmp_path / "data")]  # fmt: skip
    # The instance exists before the race, as the UI's does: two processes creating one fresh
    # sqlite instance at once race on its schema, which is Dagster's business, not the lock's.
    from dagster import DagsterInstance

    from hedgegrid_assets_tests.conftest import REPO

    (tmp_path / "home" / "dagster_home").mkdir(parents=True)
    (tmp_path / "home" / "dagster_home" / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    DagsterInstance.from_config(str(tmp_path / "home" / "dagster_home")).get_runs(limit=1)
    for attempt in range(10):  # the proof: 10 times, 0 failures
        results: list[subprocess.CompletedProcess] = []
        # Two processes, one instance and one data zone (a catalog has one instance: the UI's).
        homes = [tmp_path / "home", tmp_path / "home"]
        threads = [threading.Thread(target=lambda h=h, results=results: results.append(run(args, h))) for h in homes]
        homes[0].mkdir(exist_ok=True)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if [r.returncode for r in results] != [0, 0]:
            pytest.fail(f"round {attempt}: " + "\n---\n".join(r.stdout[-2000:] + r.stderr[-3000:] for r in results))
    assert sorted(p.name for p in (tmp_path / "data" / "locks" / "2024-01-02").iterdir()) == ["BTCUSDT.lock"]
    assert not [p for p in Path(tmp_path / "data").rglob("*.tmp")]


def test_a_batched_run_locks_every_partition_of_its_range(tmp_path):
    from hedgegrid_assets.locks import PartitionLock

    lock = PartitionLock(locks_dir=str(tmp_path), start_date="2024-01-01", symbols=["BTCUSDT", "ETHUSDT"])
    tags = {
        "dagster/asset_partition_range_start": "2024-01-01|BTCUSDT",
        "dagster/asset_partition_range_end": "2024-01-02|ETHUSDT",
    }
    assert sorted(lock._keys(tags)) == [
        "2024-01-01|BTCUSDT",
        "2024-01-01|ETHUSDT",
        "2024-01-02|BTCUSDT",
        "2024-01-02|ETHUSDT",
    ]
    assert lock._keys({"dagster/partition": "2024-01-02|BTCUSDT"}) == ["2024-01-02|BTCUSDT"]
    assert lock._keys({}) == []
