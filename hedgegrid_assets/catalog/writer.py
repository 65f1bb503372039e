"""Write a partition's kinds into the catalog, one file per kind, committed together.

Each kind's file is written in one of two ways, selected by `settings.catalog_writer`:
- "arrow" (default): the kind's columnar `to_arrow` -> Parquet, in bounded chunks.
- "nautilus": the reference: Nautilus objects -> `ParquetDataCatalog.write_data` into a private
  temporary catalog (Nautilus's own naming). Kept to check the fast path against
  (hedgegrid_assets_tests/test_catalog_writer.py) whenever nautilus_trader is upgraded.

Either way the file is staged in the partition's commit journal (journal.py) and all kinds
of the partition are renamed into place together, or none: a reader sees the whole old or the
whole new partition. Neighbouring days are untouched, and a foreign file that would overlap
the day is refused before anything moves.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
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

from hedgegrid_assets.catalog.journal import CommitError, PartitionCommit
from hedgegrid_assets.debris import sweep, temp_name
from hedgegrid_assets.faults import refused_write
from hedgegrid_assets.frames import DataKind, PartitionContext
from hedgegrid_assets.names import inside
from hedgegrid_assets.partitions import partition_key

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
    first_ts_init: str = ""
    last_ts_init: str = ""


@dataclass
class CatalogCommit:
    """What the catalog step hands the IO manager, the same object for each of its outputs:
    the selected kinds of every partition of the run, frames loaded only when written. The
    first output's `commit` writes them (each partition in one commit); later ones reuse it."""

    kinds: list[DataKind]
    parts: dict[str, PartitionContext]
    frame: Callable[[DataKind, str], pl.DataFrame]
    source: str = ""  # the source that landed the raw data (said in each materialization)
    _written: dict[str, dict[str, WrittenFile]] | None = None

    def commit(self, root: Path, writer: Writer, replace_with_empty: bool) -> dict[str, dict[str, WrittenFile]]:
        if self._written is None:
            written = {}
            for key, part in self.parts.items():
                items = [CatalogPartition(kind, part, self.frame(kind, key)) for kind in self.kinds]
                written[key] = commit_partition(root, key, items, writer, replace_with_empty)
            self._written = written
        return self._written


def partition_path(root: Path, kind: DataKind, part: PartitionContext) -> Path:
    """`{root}/data/{class}/{instrument}/{day start}_{day end - 1 ns}.parquet`, named as Nautilus names it."""
    directory = (
        root / "data" / class_to_filename(kind.nautilus_cls) / urisafe_identifier(kind.catalog_id(part.instrument))
    )
    return inside(root, directory / _timestamps_to_filename(*kind.window(part)))


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


def write_arrow(item: CatalogPartition, dest: Path) -> None:
    """The kind's frame as Nautilus's Parquet file at `dest` (a staged file)."""
    kind, part, frame = item.kind, item.part, item.frame
    schema = kind.to_arrow(frame.head(0), part.instrument).schema
    # No dictionary pages (trade ids are unique; dictionary building was ~half the write time)
    # and statistics only where readers prune: the timestamps.
    # Two cores: the next slice is converted (Arrow casts, GIL released) while this one is
    # encoded and written; at most two slices' Arrow copies exist at once.
    convert = lambda chunk: kind.to_arrow(chunk, part.instrument)  # noqa: E731
    with (
        pq.ParquetWriter(
            dest, schema, compression=COMPRESSION, use_dictionary=False, write_statistics=["ts_event", "ts_init"]
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


def write_objects(
    root: Path, objects: list, start: int, end: int, plain_strings: bool = False, dest: Path | None = None
) -> Path:
    """Reference path: Nautilus objects of one class/instrument as the file for [start, end],
    renamed to its place in the catalog, or to `dest` (a staged file) when given.
    `plain_strings`: dictionary-encoded string columns are stored as plain strings (see
    `write_instrument`)."""
    sweep(root, ".tmp-write")  # what a killed write left
    tmp = root / temp_name(".tmp-write")  # outside `data/`; same filesystem for rename
    try:
        ParquetDataCatalog(str(tmp)).write_data(objects, start=start, end=end)
        (written,) = list((tmp / "data").rglob("*.parquet"))
        if plain_strings:
            decode_dictionaries(written)
        if dest is not None:
            written.replace(dest)
            return dest
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
    """One kind of one partition, committed on its own (tests and tools; builds commit a
    partition's kinds together with `commit_partition`)."""
    key = str(partition_key(item.part.day, item.part.instrument.symbol))
    return commit_partition(root, key, [item], writer, replace_with_empty)[item.kind.name]


def commit_partition(
    root: Path, key: str, items: list[CatalogPartition], writer: Writer = "arrow", replace_with_empty: bool = False
) -> dict[str, WrittenFile]:
    """Replace the partition's file of each kind with its frame's rows, all in one commit.
    No rows never wipes a day by itself: the existing file stays unless `replace_with_empty`
    (the user's --allow-empty). Any failure leaves every kind of the partition as it was."""
    written: dict[str, WrittenFile] = {}
    current = None
    try:
        with PartitionCommit(root, key) as tx:
            for item in items:
                kind, part, frame = item.kind, item.part, item.frame
                target = current = partition_path(root, kind, part)
                if frame.is_empty():
                    if target.exists() and not replace_with_empty:
                        written[kind.name] = WrittenFile(None, 0, kept=target)
                    else:
                        tx.delete(target)
                        written[kind.name] = WrittenFile(None, 0)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _refuse_overlaps(target, *kind.window(part))
                staged = tx.stage(target)
                if writer == "arrow":
                    write_arrow(item, staged)
                    rows = frame.height
                else:
                    objects = kind.to_nautilus(frame, part.instrument)
                    first, last = kind.window(part)
                    write_objects(root, objects, start=first, end=last, dest=staged)
                    rows = len(objects)
                ts = frame.get_column("ts_init")
                written[kind.name] = WrittenFile(target, rows, first_ts_init=str(ts.min()), last_ts_init=str(ts.max()))
            current = None
            tx.commit()
    except CommitError as err:
        raise CatalogWriteError(str(err)) from err
    except OSError as err:  # no space, a read-only folder, ...: before the commit point
        what = "the catalog file" if current is not None else "the catalog's commit journal"
        kept = f"Nothing of partition {key} was changed: the catalog keeps its old files"
        raise CatalogWriteError(refused_write(key, what, current or err.filename, err, kept)) from err
    return written


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
