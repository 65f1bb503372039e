"""Write one partition of one kind into the catalog as exactly one file, safely.

Nautilus names a file by its closed interval and checks for overlaps only after writing,
leaving a broken directory behind on failure. So every write goes to a private temporary
catalog first (Nautilus's own `write_data`, its own naming), and the finished file is then
renamed into place: re-materializing replaces the day's file atomically, neighbouring days
are untouched, and a file that would overlap is refused before anything is moved.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps, _timestamps_to_filename
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from hedgegrid_assets.frames import DataKind, PartitionContext


class CatalogWriteError(Exception):
    pass


@dataclass(frozen=True)
class CatalogPartition:
    """What a catalog asset hands to the IO manager: one kind's frame for one partition."""

    kind: DataKind
    part: PartitionContext
    frame: pl.DataFrame


@dataclass(frozen=True)
class WrittenFile:
    path: Path | None  # None when the partition has no rows (and no file)
    rows: int


def _tmp_catalog(root: Path) -> Path:
    # Outside `data/`, so catalog globs never see it; same filesystem, so rename is atomic.
    return root / f".tmp-write-{uuid.uuid4().hex}"


def _overlaps(path: Path, start: int, end: int) -> bool:
    interval = _parse_filename_timestamps(path.name)
    return interval is not None and interval[0] <= end and start <= interval[1]


def write_objects(root: Path, objects: list, start: int, end: int) -> Path:
    """Write Nautilus objects of one class/instrument as the file for [start, end]."""
    tmp = _tmp_catalog(root)
    try:
        ParquetDataCatalog(str(tmp)).write_data(objects, start=start, end=end)
        (written,) = list((tmp / "data").rglob("*.parquet"))
        target = root / written.relative_to(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        clashes = [p for p in target.parent.glob("*.parquet") if p.name != target.name and _overlaps(p, start, end)]
        if clashes:
            raise CatalogWriteError(
                f"{target.parent} already holds {', '.join(p.name for p in clashes)}, which overlaps "
                f"{target.name}; it was not written by hedgegrid's partitioning. Delete or move it first."
            )
        written.replace(target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def partition_file(root: Path, kind: DataKind, part: PartitionContext) -> Path | None:
    """The file currently holding this partition, if any."""
    directory = root / "data" / class_to_filename(kind.nautilus_cls) / urisafe_identifier(part.instrument.instrument_id)
    path = directory / _timestamps_to_filename(part.start_ns, part.end_ns - 1)
    return path if path.exists() else None


def write_partition(root: Path, item: CatalogPartition) -> WrittenFile:
    """Replace the partition's file with the frame's rows (Nautilus reference path)."""
    kind, part, frame = item.kind, item.part, item.frame
    if frame.is_empty():
        existing = partition_file(root, kind, part)
        if existing is not None:
            existing.unlink()
        return WrittenFile(None, 0)
    objects = kind.to_nautilus(frame, part.instrument)
    path = write_objects(root, objects, start=part.start_ns, end=part.end_ns - 1)
    return WrittenFile(path, len(objects))


def write_instrument(root: Path, instrument) -> Path:
    """Instruments carry a fixed ts_init, so this rewrites the same single file every time."""
    ts = instrument.ts_init
    return write_objects(root, [instrument], start=ts, end=ts)
