"""A build removes what a dead build of the same partition left, and only that (issue 10,
point 6): a killed landing's folder, a killed instrument write's private catalog."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from hedgegrid_assets.debris import sweep, temp_name
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_takes_only_the_dead(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone, live = tmp_path / f".X.landing-p{dead_pid()}-0123abcd", tmp_path / f".X.landing-p{alive.pid}-0123abcd"
        mine, unknown = tmp_path / temp_name(".X.landing"), tmp_path / ".X.landing-1234abcd"
        for d in (gone, live, mine, unknown):
            d.mkdir()
            (d / "f").write_text("x")
        other = tmp_path / f".Y.landing-p{dead_pid()}-0123abcd"  # another partition's: not this sweep's
        other.mkdir()
        assert sweep(tmp_path, ".X.landing") == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, mine, unknown, other))
    finally:
        alive.kill()
        alive.wait()


def test_a_build_clears_a_killed_builds_debris(tmp_path):
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    day = dt.date(2024, 1, 2)
    parent = settings.raw_dir / "sample" / day.isoformat()
    landing_debris = parent / f".BTCUSDT.landing-p{dead_pid()}-feedbeef"
    (landing_debris / "half.ndjson.gz").parent.mkdir(parents=True)
    (landing_debris / "half.ndjson.gz").write_bytes(b"\x1f\x8b" + b"0" * 1000)
    write_debris = settings.catalog_path / f".tmp-write-p{dead_pid()}-feedbeef"
    (write_debris / "data").mkdir(parents=True)
    neighbour = parent / f".ETHUSDT.landing-p{dead_pid()}-feedbeef"  # another partition's: not this build's
    neighbour.mkdir()
    assert build(settings, make_instance(tmp_path), [partition_key(day, "BTCUSDT")])[
        str(partition_key(day, "BTCUSDT"))
    ].success
    assert not landing_debris.exists() and not write_debris.exists()
    assert neighbour.exists()
    assert sorted(p.name for p in parent.iterdir()) == sorted([neighbour.name, "BTCUSDT"])


def test_a_landing_killed_between_its_renames_gets_the_old_folder_back(tmp_path):
    """Killed after moving the old landing aside and before renaming the new one in: the next
    landing puts the old one back first, so a failing re-landing loses no raw data."""
    from hedgegrid_assets.landing.raw_zone import land_atomically

    directory = tmp_path / "raw" / "sample" / "2024-01-02" / "BTCUSDT"
    aside = directory.with_name(f".BTCUSDT.old-p{dead_pid()}-feedbeef")
    aside.mkdir(parents=True)
    (aside / "day.ndjson.gz").write_bytes(b"as landed")

    def failing(tmp):
        raise RuntimeError("the source is down")

    try:
        land_atomically(directory, "sample", failing)
    except RuntimeError:
        pass
    assert (directory / "day.ndjson.gz").read_bytes() == b"as landed"
    assert not aside.exists()
