"""The same input gives byte-identical raw landings and catalog files, build after build."""

from __future__ import annotations

import time
from pathlib import Path

from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets_tests.conftest import DAYS, build, make_instance, make_settings


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern)) if p.is_file()}


def test_two_builds_are_byte_identical(tmp_path):
    keys = [partition_key(DAYS[0], "BTCUSDT")]
    built = []
    for name in ("first", "second"):  # separate processes' worth of state: own data dir and instance
        settings = make_settings(tmp_path / name, symbols=["BTCUSDT"])
        build(settings, make_instance(tmp_path / name), keys)
        built.append(settings)
        time.sleep(1.1)  # a gzip header stamped with the write time would now differ
    # Each catalog names its own instance (.hedgegrid-instance.json): not data, not compared.
    catalogs = [files(s.catalog_path, "*.parquet") | files(s.catalog_path, "[!.]*.json") for s in built]
    raws = [files(s.raw_dir / "sample", "*.gz") for s in built]
    # trades, quotes, bars, marks, funding, book deltas, instrument, provenance
    assert len(catalogs[0]) == 8 and len(raws[0]) == 1
    assert catalogs[0] == catalogs[1]
    assert raws[0] == raws[1]
