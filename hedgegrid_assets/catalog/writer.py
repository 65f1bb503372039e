"""Write one partition of one kind into the catalog as exactly one file, safely.

Two ways, selected by `settings.catalog_writer`:
- "arrow" (default): the kind's columnar `to_arrow` -> Parquet, in bounded chunks, into a
  temporary file in the target directory, then renamed over the partition's file.
- "nautilus": the reference: Nautilus objects -> `ParquetDataCatalog.write_data` into a private
  temporary catalog (Nautilus's own naming), then renamed into place. Kept to check the fast
  path against (hedgegrid_assets_tests/test_catalog_writer.py) whenever nautilus_trader is upgraded.

Either way Nautilus's after-the-write overlap check can never leave the real catalog broken:
the file is renamed in whole or not at all, neighbouring days are untouched, and a foreign file
that would overlap the day is refused before anything moves.
"""

from __future__ import annotations

import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps, _timestamps_to_filename
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from hedgegrid_assets.frames import DataKind, PartitionContext
from hedgegrid_assets.debris import sweep, temp_name
from hedgegrid_assets.names import inside

Writer = Literal["arrow", "nautilus"]
# Converting in slices bounds the extra memory of a 20M-trade day to one slice's Arrow copy.
CHUNK_ROWS = 1_000_000
# Large row groups read fast (few, big batches) and still allow row-group pruning by time.
ROW_GROUP_ROWS = 250_000
COMPRESSION = "snappy"  # what Nautilus writes; fast to decode


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
    kept: Path | None = None  # no rows, and the day's existing file was left as it was


def partition_path(root: Path, kind: DataKind, part: PartitionContext) -> Path:
    """`{root}/data/{class}/{instrument}/{day start}_{day end - 1 ns}.parquet`, named as Nautilus names it."""
    directory = root / "data" / class_to_filename(kind.nautilus_cls) / urisafe_identifier(part.instrument.instrument_id)
    return inside(root, directory / _timestamps_to_filename(part.start_ns, part.end_ns - 1))


def _refuse_overlaps(target: Path, start: int, end: int) -> None:
    def overlaps(path: Path) -> bool:
        interval = _parse_filename_timestamps(path.name)
        return interval is not None and interval[0] <= end and start <= interval[1]

    clashes = [p for p in target.parent.glob("*.parquet") if p.name != target.name and overlaps(p)]
    if clashes:
        raise CatalogWriteError(
            f"{target.parent} already holds {', '.join(p.name for p in clashes)}, which overlaps "
            f"{target.name}; it was not written by hedgegrid's partitioning. Delete or move it first."
        )


def write_arrow(root: Path, item: CatalogPartition) -> Path:
    kind, part, frame = item.kind, item.part, item.frame
    target = partition_path(root, kind, part)
    target.parent.mkdir(parents=True, exist_ok=True)
    _refuse_overlaps(target, part.start_ns, part.end_ns - 1)
    # Not `*.parquet`, so catalog globs never see a half-written file.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        schema = kind.to_arrow(frame.head(0), part.instrument).schema
        # No dictionary pages (trade ids are unique; dictionary building was ~half the write time)
        # and statistics only where readers prune: the timestamps.
        # Two cores: the next slice is converted (Arrow casts, GIL released) while this one is
        # encoded and written; at most two slices' Arrow copies exist at once.
        convert = lambda chunk: kind.to_arrow(chunk, part.instrument)  # noqa: E731
        with (
            pq.ParquetWriter(
                tmp, schema, compression=COMPRESSION, use_dictionary=False, write_statistics=["ts_event", "ts_init"]
            ) as out,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-convert") as pool,
        ):
            pending = None
            for chunk in frame.iter_slices(CHUNK_ROWS):
                converted = pool.submit(convert, chunk)
                if pending is not None:
                    out.write_table(pending.result(), row_group_size=ROW_GROUP_ROWS)
                pending = converted
            if pending is not None:
                out.write_table(pending.result(), row_group_size=ROW_GROUP_ROWS)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_objects(root: Path, objects: list, start: int, end: int, plain_strings: bool = False) -> Path:
    """Reference path: Nautilus objects of one class/instrument as the file for [start, end].
    `plain_strings`: dictionary-encoded string columns are stored as plain strings (see
    `write_instrument`)."""
    sweep(root, ".tmp-write")  # what a killed write left
    tmp = root / temp_name(".tmp-write")  # outside `data/`; same filesystem for rename
    try:
        ParquetDataCatalog(str(tmp)).write_data(objects, start=start, end=end)
        (written,) = list((tmp / "data").rglob("*.parquet"))
        if plain_strings:
            decode_dictionaries(written)
        target = inside(root, root / written.relative_to(tmp))
        target.parent.mkdir(parents=True, exist_ok=True)
        _refuse_overlaps(target, start, end)
        written.replace(target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_partition(
    root: Path, item: CatalogPartition, writer: Writer = "arrow", replace_with_empty: bool = False
) -> WrittenFile:
    """Replace the partition's file with the frame's rows. No rows never wipes a day by
    itself: the existing file stays unless `replace_with_empty` (the user's --allow-empty)."""
    kind, part, frame = item.kind, item.part, item.frame
    if frame.is_empty():
        existing = partition_path(root, kind, part)
        if existing.exists() and not replace_with_empty:
            return WrittenFile(None, 0, kept=existing)
        existing.unlink(missing_ok=True)
        return WrittenFile(None, 0)
    if writer == "arrow":
        return WrittenFile(write_arrow(root, item), frame.height)
    objects = kind.to_nautilus(frame, part.instrument)
    return WrittenFile(write_objects(root, objects, start=part.start_ns, end=part.end_ns - 1), len(objects))


def decode_dictionaries(path: Path) -> None:
    """Rewrite a Parquet file in place with its dictionary columns as their plain value type,
    schema metadata kept. Nautilus 1.231 reads both; NautilusTrader 2.0's migration takes only
    plain Utf8 ("Invalid column type `id`: expected Utf8, found Dictionary(Int64, Utf8)")."""
    table = pq.read_table(path)
    fields = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema]
    pq.write_table(table.cast(pa.schema(fields, metadata=table.schema.metadata)), path, compression=COMPRESSION)


def write_instrument(root: Path, instrument) -> Path:
    """Nautilus's own serialization of the instrument, with plain string columns (readable by
    1.231 and migratable to 2.0). A fixed ts_init: this rewrites the same single file every time."""
    ts = instrument.ts_init
    return write_objects(root, [instrument], start=ts, end=ts, plain_strings=True)
