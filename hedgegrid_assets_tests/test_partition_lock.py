"""One builder per partition (issue 10, point 2): concurrent builds of the same partition wait
for each other instead of failing; one that may not wait says who holds the partition."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


def test_two_concurrent_builds_of_one_partition_on_a_new_instance_both_succeed(tmp_path):
    """Issue 10's proof (one partition, two builders: one waits for the other) and issue 26's
    (a new DAGSTER_HOME that two processes open at once is created once: dagster.yaml's
    LocalInstance), 10 rounds, each on a new instance and data zone, 0 failures. One round
    pairs `hedgegrid build` with `dagster asset materialize`, the other entry point CI uses."""
    from hedgegrid_assets.local_instance import MARKER_FILE
    from hedgegrid_assets_tests.conftest import REPO

    for attempt in range(10):
        base = tmp_path / f"round-{attempt}"
        (base / "dagster_home").mkdir(parents=True)
        # The configuration only, as `make install` or a deployment lays it: no instance yet.
        (base / "dagster_home" / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        build = [str(BIN / "hedgegrid"), "build", "--source", "sample", "--symbol", "BTCUSDT", "--start", "2024-01-02",
                 "--end", "2024-01-03", "--data-dir", str(base / "data")]  # fmt: skip
        materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "hedgegrid_assets", "--select", "*",
                       "--partition", "2024-01-02|BTCUSDT"]  # fmt: skip
        commands = [build, materialize if attempt == 0 else build]
        results = _together(commands, base, HEDGEGRID_DATA_DIR=str(base / "data"))
        if [r.returncode for r in results] != [0, 0]:
            pytest.fail(f"round {attempt}: " + "\n---\n".join(r.stdout[-2000:] + r.stderr[-3000:] for r in results))
        assert (base / "dagster_home" / MARKER_FILE).exists()
        assert sorted(p.name for p in (base / "data" / "locks" / "2024-01-02").iterdir()) == ["BTCUSDT.lock"]
        assert not [p for p in Path(base / "data").rglob("*.tmp")]


def _together(commands: list[list[str]], base: Path, **env) -> list[subprocess.CompletedProcess]:
    """The commands started at once (one thread each), their results in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: run(command, base, **env), commands))


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
