"""The Nautilus catalog in object storage (`catalog_dir = s3://bucket/prefix`).

S3 has no rename, so a partition's commit is built from what S3 does make atomic: one PUT and
one server-side copy (a reader of a key sees the whole old object or the whole new one).

1. every kind's new file is written locally (the same Arrow or Nautilus writer as on disk)
   and uploaded to a staging key of the partition's transaction,
   `<prefix>/.hedgegrid-journal/<date>/<SYMBOL>/tx-<uuid>/stage-<n>.parquet` (Nautilus lists
   only `<prefix>/data/`: it never sees the journal);
2. the builder checks that it still holds the partition's lease (object_zones.py);
3. the intent object `.../tx-<uuid>/intent.json` (the list of copies and deletions) is PUT
   with `If-None-Match: *`. **This is the commit point.**
4. each staged object is copied server-side to its final key (the file name Nautilus expects,
   exactly as on disk), and each deletion done;
5. the staged objects, then the intent, are deleted.

Recovery (`recover`: every build for its partitions, under their lock, and `hedgegrid
verify` / `catalog repair`): a transaction with an intent is rolled forward (a copy repeated
is harmless; a staged object already gone was copied already, since clean-up starts only
after every copy); one without is discarded (nothing of it was visible). Unlike on disk, a
commit only goes forward once recorded: there is no link to the old object to put back.
Between the commit point and the last copy, a reader that lists the partition can find some
kinds new and others still old, each object whole; on disk the renames make that window a
few microseconds, here it is one copy per kind (milliseconds), and it closes by itself or at
the next recovery.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dagster import Failure, MetadataValue, OutputContext
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps, _timestamps_to_filename
from nautilus_trader.persistence.funcs import class_to_filename, urisafe_identifier

from hedgegrid_assets.catalog import provenance
from hedgegrid_assets.catalog.io_manager import NautilusCatalogIOManager
from hedgegrid_assets.catalog.journal import JOURNAL_DIR, CommitError
from hedgegrid_assets.catalog.writer import (
    CatalogCommit,
    CatalogPartition,
    CatalogWriteError,
    WrittenFile,
    write_arrow,
    write_instrument,
    write_objects,
)
from hedgegrid_assets.frames import DataKind, PartitionContext
from hedgegrid_assets.partitions import split_key
from hedgegrid_assets.storage import S3Zone

INTENT = "intent.json"
TX_STEM = "tx"

# Set by the lock (object_zones.py): `guard(key)` raises unless this process still holds the
# partition's lease; called just before the commit point. None: no lock in play (tools, tests).
lease_guard: Callable[[str], None] | None = None


def target_key(kind: DataKind, part: PartitionContext) -> str:
    """`data/{class}/{instrument}/{day start}_{day end - 1 ns}.parquet`: the name Nautilus
    expects, the same as on disk (writer.partition_path)."""
    directory = f"data/{class_to_filename(kind.nautilus_cls)}/{urisafe_identifier(kind.catalog_id(part.instrument))}"
    return f"{directory}/{_timestamps_to_filename(*kind.window(part))}"


def partition_journal(key: str) -> str:
    day, symbol = split_key(key)
    return f"{JOURNAL_DIR}/{day.isoformat()}/{symbol}"


@dataclass
class _Op:
    target: str  # zone-relative key
    staged: str | None  # name in the transaction, or None: delete the target


@dataclass
class S3PartitionCommit:
    """`stage(target)` gives a local file to write; `delete(target)`; then `commit()`.
    Leaving the block without a commit discards what was uploaded (nothing was visible)."""

    zone: S3Zone
    key: str
    scratch: Path
    ops: list[_Op] = field(default_factory=list)
    tx: str = field(init=False)
    local: Path = field(init=False)
    committed: bool = field(default=False, init=False)
    _uploaded: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        name = f"{TX_STEM}-{uuid.uuid4().hex}"
        self.tx = f"{partition_journal(self.key)}/{name}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.local = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch))

    def stage(self, target: str) -> Path:
        staged = f"stage-{len(self.ops)}.parquet"
        self.zone.key(target)  # proven inside the zone before anything is written
        self.ops.append(_Op(target, staged))
        return self.local / staged

    def delete(self, target: str) -> None:
        self.zone.key(target)
        self.ops.append(_Op(target, None))

    def commit(self) -> None:
        for op in self.ops:
            if op.staged is not None:
                self.zone.upload(self.local / op.staged, f"{self.tx}/{op.staged}")
                self._uploaded.append(f"{self.tx}/{op.staged}")
        if lease_guard is not None:
            lease_guard(self.key)  # a builder that lost its lease must not commit
        record = {"partition": self.key, "ops": [asdict(op) for op in self.ops]}
        self.zone.put_bytes(f"{self.tx}/{INTENT}", json.dumps(record).encode(), if_none_match=True)  # commit point
        try:
            _apply(self.zone, self.tx, self.ops)
            _finish(self.zone, self.tx, self.ops)
        except Exception as err:
            raise CommitError(
                f"committing partition {self.key} to {self.zone} failed after its commit point ({err}); the "
                f"intent {self.zone}/{self.tx}/{INTENT} is recorded: the next build of the partition or "
                f"`hedgegrid verify` rolls it forward"
            ) from err
        self.committed = True

    def __enter__(self) -> S3PartitionCommit:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        shutil.rmtree(self.local, ignore_errors=True)
        if not self.committed and self._uploaded and not self.zone.exists(f"{self.tx}/{INTENT}"):
            try:
                self.zone.delete_many(self._uploaded)
            except Exception:
                pass


def _apply(zone: S3Zone, tx: str, ops: list[_Op]) -> None:
    """Roll forward; safe to repeat."""
    for op in ops:
        if op.staged is None:
            zone.delete(op.target)
        elif zone.exists(f"{tx}/{op.staged}"):
            zone.copy(f"{tx}/{op.staged}", op.target)


def _finish(zone: S3Zone, tx: str, ops: list[_Op]) -> None:
    zone.delete_many([f"{tx}/{op.staged}" for op in ops if op.staged is not None])
    zone.delete(f"{tx}/{INTENT}")


def transactions(zone: S3Zone, key: str | None = None) -> dict[str, list[str]]:
    """{transaction folder: its objects} in the journal (of one partition, or all)."""
    found: dict[str, list[str]] = {}
    for name in zone.find(partition_journal(key) if key else JOURNAL_DIR):
        parts = name.split("/")
        # .hedgegrid-journal/<date>/<SYMBOL>/tx-<uuid>/<object>
        if len(parts) == 5 and parts[3].startswith(f"{TX_STEM}-"):
            found.setdefault("/".join(parts[:4]), []).append(name)
    return found


def recover(zone: S3Zone, key: str | None = None, say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Finish or discard interrupted commits; one line each. The caller holds the lock of
    every partition concerned, so no transaction here belongs to a live builder."""
    done = []
    for tx, objects in sorted(transactions(zone, key).items()):
        parts = tx.split("/")
        part = f"{parts[1]}|{parts[2]}"
        body = zone.get(f"{tx}/{INTENT}")
        if body is not None:
            ops = [_Op(**op) for op in json.loads(body[0])["ops"]]
            _apply(zone, tx, ops)
            _finish(zone, tx, ops)
            line = f"partition {part}: finished an interrupted commit ({len(ops)} object(s)): the new partition stands"
        else:
            zone.delete_many(objects)
            line = (
                f"partition {part}: discarded an unfinished commit (none of it was visible): the old partition stands"
            )
        say(line)
        done.append(line)
    return done


def _refuse_overlaps(zone: S3Zone, target: str, start: int, end: int) -> None:
    directory, name = target.rsplit("/", 1)

    def overlaps(other: str) -> bool:
        interval = _parse_filename_timestamps(other)
        return interval is not None and interval[0] <= end and start <= interval[1]

    clashes = [n.rsplit("/", 1)[-1] for n in zone.find(directory) if n.endswith(".parquet")]
    clashes = [n for n in clashes if n != name and overlaps(n)]
    if clashes:
        raise CatalogWriteError(
            f"{zone}/{directory} already holds {', '.join(clashes)}, which overlaps {name}; it was not "
            "written by hedgegrid's partitioning. Delete or move it first."
        )


def commit_partition(
    zone: S3Zone,
    key: str,
    items: list[CatalogPartition],
    scratch: Path,
    writer: str = "arrow",
    replace_with_empty: bool = False,
) -> dict[str, WrittenFile]:
    """The partition's kinds into the catalog in object storage, in one commit."""
    written: dict[str, WrittenFile] = {}
    try:
        with S3PartitionCommit(zone, key, scratch) as tx:
            for item in items:
                kind, part, frame = item.kind, item.part, item.frame
                target = target_key(kind, part)
                if frame.is_empty():
                    if not replace_with_empty and zone.exists(target):
                        written[kind.name] = WrittenFile(None, 0, kept=zone.path_uri(target))
                    else:
                        tx.delete(target)
                        written[kind.name] = WrittenFile(None, 0)
                    continue
                _refuse_overlaps(zone, target, *kind.window(part))
                staged = tx.stage(target)
                if writer == "arrow":
                    write_arrow(item, staged)
                    rows = frame.height
                else:
                    objects = kind.to_nautilus(frame, part.instrument)
                    first, last = kind.window(part)
                    write_objects(tx.local, objects, start=first, end=last, dest=staged)
                    rows = len(objects)
                ts = frame.get_column("ts_init")
                written[kind.name] = WrittenFile(
                    zone.path_uri(target), rows, first_ts_init=str(ts.min()), last_ts_init=str(ts.max())
                )
            tx.commit()
    except CommitError as err:
        raise CatalogWriteError(str(err)) from err
    except (OSError, ValueError) as err:  # before the commit point: nothing visible changed
        raise CatalogWriteError(
            f"partition {key}: could not write to the catalog at {zone} ({type(err).__name__}: {err}). Nothing of "
            f"partition {key} was changed: the catalog keeps its old objects"
        ) from err
    return written


def record(zone: S3Zone) -> None:
    text = provenance._text().encode()
    body = zone.get(provenance.PROVENANCE_FILE)
    if body is None or body[0] != text:
        zone.put_bytes(provenance.PROVENANCE_FILE, text)


def put_instrument(zone: S3Zone, instrument, scratch: Path) -> str:
    """The instrument's file, written by Nautilus locally as on disk, then one PUT to the
    same name in the bucket (a fixed ts_init: the same single object every time)."""
    scratch.mkdir(parents=True, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix="instrument-", dir=scratch))
    try:
        path = write_instrument(local, instrument)
        relative = str(path.relative_to(local))
        zone.upload(path, relative)
        return zone.path_uri(relative)
    finally:
        shutil.rmtree(local, ignore_errors=True)


@contextmanager
def local_mirror(zone: S3Zone, part: PartitionContext, offered: set[str] | None = None) -> Iterator[Path]:
    """A temporary local catalog holding the partition's objects (the kinds `offered`, default
    all, and the instrument), for readers that take a folder: the report, the day picture."""
    from hedgegrid_assets.frames import KINDS

    local = Path(tempfile.mkdtemp(prefix="hedgegrid-mirror-"))
    try:
        for kind in KINDS.values():
            if offered is None or kind.name in offered:
                target = target_key(kind, part)
                if zone.exists(target):
                    zone.download(target, local / target)
        for name in zone.find(f"data/crypto_perpetual/{urisafe_identifier(part.instrument.instrument_id)}"):
            zone.download(name, local / name)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def report(zone: S3Zone, part: PartitionContext, offered: set[str] | None):
    """completeness.report, read back from the bucket (through a local mirror of the partition)."""
    from hedgegrid_assets.catalog import completeness

    with local_mirror(zone, part, offered) as local:
        return completeness.report(local, part, offered)


class S3CatalogIOManager(NautilusCatalogIOManager):
    """The catalog IO manager for `catalog_dir = s3://...`: the same outputs and metadata,
    committed with S3PartitionCommit."""

    work_dir: str  # local scratch: files are written here before their upload

    @property
    def zone(self) -> S3Zone:
        return S3Zone(self.catalog_dir)

    def handle_output(self, context: OutputContext, obj) -> None:
        zone, scratch = self.zone, Path(self.work_dir) / "catalog-writes"
        try:
            provenance.check_writable_in(zone)
        except provenance.IncompatibleCatalogError as err:
            raise Failure(description=str(err), allow_retries=False) from None
        if isinstance(obj, CatalogCommit):
            kind = next(k for k in obj.kinds if k.catalog_asset == context.asset_key.path[-1])
            try:
                if obj._written is None:  # the first output of the step writes every kind
                    obj._written = {
                        key: commit_partition(
                            zone,
                            key,
                            [CatalogPartition(k, part, obj.frame(k, key)) for k in obj.kinds],
                            scratch,
                            self.writer,
                            self.allow_empty,
                        )
                        for key, part in obj.parts.items()
                    }
            except CatalogWriteError as err:
                raise Failure(description=str(err), allow_retries=False) from None
            where = {"source": obj.source, "catalog": MetadataValue.path(str(zone))}
            metadata = {key: self._file_metadata(files[kind.name], kind) | where for key, files in obj._written.items()}
        else:  # instrument definitions
            items = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
            metadata = {}
            for key, instrument in items.items():
                try:
                    uri = put_instrument(zone, instrument, scratch)
                except OSError as err:
                    raise Failure(
                        description=f"partition {key}: could not write the instrument to {zone} ({err}); "
                        "the catalog keeps its old objects"
                    ) from None
                metadata[str(key)] = {"instrument_id": instrument.id.value, "catalog_file": MetadataValue.path(uri)}
        record(zone)
        if len(metadata) == 1:
            context.add_output_metadata(next(iter(metadata.values())))
        else:
            for key, meta in metadata.items():
                context.step_context.add_asset_metadata(meta, asset_key=context.asset_key, partition_key=key)
