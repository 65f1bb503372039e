"""Zones in object storage beside the catalog: the raw zone, the partition lock, and the
resources and `verify` that use them (settings' `data_dir` / `catalog_dir` = `s3://...`).

**Raw zone.** A partition is landed as on disk, into this machine's scratch (`work_dir`),
then each file is uploaded once to a content-addressed key
`<data>/raw/<source>/<date>/<SYMBOL>/<landing id>/<name>`, the landing id being the first 16
hex digits of the sha256 over the files' names and sha256s. An object is created with
`If-None-Match: *` (a large one, multipart, only when a HEAD finds none), and carries its
sha256 as metadata: a raw object is never overwritten, and a rebuild from the same input
writes nothing at all. The landing's manifest `<data>/raw/_manifests/<date>/<SYMBOL>.json`
(source, the landing's URI, sizes and sha256) is then PUT: that single PUT switches the
partition to its new landing. A landing from changed input gets a new landing id; the old
objects stay as they were. Readers (the frame steps, in this run or another pod) fetch the
landing into the scratch and check every sha256 before reading.

**The partition lock** is a lease object `<data>/locks/<date>/<SYMBOL>.lock` (with a local
data_dir and an S3 catalog: `<catalog>/.hedgegrid-locks/...`): JSON with an owner id (random,
per acquisition), the holder (pid and host), since when and until when. Taking it is a PUT
with `If-None-Match: *`: one builder wins, the others read who holds it and wait (up to
`lock_wait_seconds`, then "partition P is being built by pid N on HOST since T"). The holder
renews the lease every third of `lock_lease_seconds` with `If-Match: <its ETag>`; a builder
that dies stops renewing, and once the lease has expired the next builder takes it over with
`If-Match: <the expired lease's ETag>`, so of several waiters exactly one wins. A holder
whose renewal fails (it stalled past its lease and was taken over) loses the lock and may not
commit (checked right before the commit point). Release is a DELETE with `If-Match`.
Limits: expiry compares wall clocks of different machines (keep them in NTP sync, far under
the lease); a stall longer than the lease between the lease check and the intent PUT (one
request) is not covered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path

from dagster import Failure, InitResourceContext, InputContext, MetadataValue, OutputContext

from hedgegrid_assets.catalog import journal, object_store
from hedgegrid_assets.catalog.journal import CommitError
from hedgegrid_assets.landing.raw_zone import RawFile, RawLanding, RawZoneIOManager
from hedgegrid_assets.locks import PartitionBusyError, PartitionLock
from hedgegrid_assets.partitions import split_key
from hedgegrid_assets.storage import PreconditionFailed, S3Zone, is_object_uri, scratch_for

POLL_S = 0.5
SINGLE_PUT_BYTES = 64 << 20  # up to this, a raw object is one conditional PUT
LOCKS_UNDER_CATALOG = ".hedgegrid-locks"


# -- the raw zone ----------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def landing_id(files: list[RawFile]) -> str:
    listing = json.dumps(sorted((f.name, f.sha256) for f in files))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _manifest_key(key: str) -> str:
    day, symbol = split_key(key)
    return f"_manifests/{day.isoformat()}/{symbol}.json"


def _put_once(zone: S3Zone, relative: str, src: Path, sha256: str) -> bool:
    """Create the raw object unless it exists; True when written. An existing object must
    carry the same sha256 (content-addressed keys make any other content a tampering)."""
    head = zone.head(relative)
    if head is None:
        try:
            if src.stat().st_size <= SINGLE_PUT_BYTES:
                zone.put_bytes(relative, src.read_bytes(), if_none_match=True, metadata={"sha256": sha256})
            else:
                zone.fs.put_file(str(src), zone.path(relative), Metadata={"sha256": sha256})
            return True
        except PreconditionFailed:
            head = zone.head(relative)  # another landing of the same bytes won
    found = (head or {}).get("Metadata", {}).get("sha256")
    if found != sha256:
        raise FileExistsError(
            f"raw object {zone}/{relative} already exists with sha256 {found}, not {sha256}: raw objects are never "
            "overwritten; it was changed outside hedgegrid"
        )
    return False


def land_objects(zone: S3Zone, key: str, landing: RawLanding) -> tuple[RawLanding, int]:
    """Upload a local landing (write-once objects), then its manifest. (the landing as the
    bucket holds it, objects written now)."""
    day, symbol = split_key(key)
    folder = f"{landing.source}/{day.isoformat()}/{symbol}/{landing_id(landing.files)}"
    written = sum(
        _put_once(zone, f"{folder}/{f.name}", Path(landing.directory) / f.name, f.sha256) for f in landing.files
    )
    remote = RawLanding(source=landing.source, directory=zone.path_uri(folder), files=landing.files)
    zone.put_bytes(_manifest_key(key), json.dumps(asdict(remote), indent=1).encode())  # the switch
    return remote, written


def fetch_landing(zone: S3Zone, remote: RawLanding, cache: Path) -> RawLanding:
    """The landing's files in the local cache, each checked against its manifest sha256."""
    folder = zone.relative(remote.directory)
    local = cache / folder
    for f in remote.files:
        path = local / f.name
        if path.is_file() and path.stat().st_size == f.bytes and _sha256(path) == f.sha256:
            continue
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
        zone.download(f"{folder}/{f.name}", tmp)
        digest = _sha256(tmp)
        if digest != f.sha256:
            tmp.unlink(missing_ok=True)
            raise OSError(f"{remote.directory}/{f.name}: sha256 {digest}, but its manifest says {f.sha256}")
        os.replace(tmp, path)
    return RawLanding(source=remote.source, directory=str(local), files=remote.files)


class S3RawZoneIOManager(RawZoneIOManager):
    """The raw zone in object storage; `raw_dir` is the local scratch landings are made in."""

    raw_uri: str

    @property
    def zone(self) -> S3Zone:
        return S3Zone(self.raw_uri)

    @property
    def cache(self) -> Path:
        return Path(self.raw_dir) / "_objects"

    def handle_output(self, context: OutputContext, obj: RawLanding | dict[str, RawLanding]) -> None:
        landings = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
        meta = {}
        for key, landing in landings.items():
            try:
                remote, written = land_objects(self.zone, str(key), landing)
            except OSError as err:
                raise Failure(
                    description=f"partition {key}: could not land the raw files in {self.zone} ({err}); the "
                    "partition's earlier landing and its catalog objects are as they were",
                    allow_retries=False,
                ) from None
            # The local landing is this process's cache of the objects (already hashed).
            local = self.cache / self.zone.relative(remote.directory)
            if not local.exists():
                local.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(landing.directory, local, copy_function=_link_or_copy)
            meta[str(key)] = {"raw_objects": MetadataValue.path(remote.directory), "objects_written": written}
        if len(meta) == 1:
            context.add_output_metadata(next(iter(meta.values())))

    def _load(self, key) -> RawLanding:
        body = self.zone.get(_manifest_key(str(key)))
        if body is None:
            raise FileNotFoundError(
                f"no raw data landed for partition {key} in {self.zone}: materialize raw_market_data first"
            )
        data = json.loads(body[0])
        remote = RawLanding(
            source=data["source"], directory=data["directory"], files=[RawFile(**f) for f in data["files"]]
        )
        return fetch_landing(self.zone, remote, self.cache)

    def load_input(self, context: InputContext) -> RawLanding | dict[str, RawLanding]:
        landings = {str(k): self._load(k) for k in context.asset_partition_keys}
        return landings if len(landings) > 1 else next(iter(landings.values()))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# -- the partition lock: a lease object ----------------------------------------------------------
_held: dict[str, Lease] = {}  # partition key -> the lease this process holds on it


def _guard(key: str) -> None:
    lease = _held.get(key)
    if lease is not None and not lease.valid():
        raise CommitError(
            f"partition {key}: this build lost its lock ({lease.lost or 'lease expired'}) before its commit point; "
            "nothing of the partition was changed"
        )


object_store.lease_guard = _guard


class Lease:
    def __init__(self, zone: S3Zone, key: str, lease_s: float, wait_s: float, say: Callable[[str], None]):
        day, symbol = split_key(key)
        self.zone, self.key, self.lease_s, self.wait_s, self.say = zone, key, lease_s, wait_s, say
        self.relative = f"{day.isoformat()}/{symbol}.lock"
        self.owner = uuid.uuid4().hex
        self.holder = f"pid {os.getpid()} on {socket.gethostname()}"
        self.since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.etag: str | None = None
        self.expires = 0.0
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> tuple[bytes, float]:
        expires = time.time() + self.lease_s
        body = {"owner": self.owner, "holder": self.holder, "since": self.since, "expires": expires,
                "partition": self.key}  # fmt: skip
        return json.dumps(body).encode(), expires

    def valid(self) -> bool:
        return self.lost is None and time.time() < self.expires

    def acquire(self) -> None:
        deadline, told = time.monotonic() + self.wait_s, False
        while True:
            body, expires = self._body()
            try:
                self.etag, self.expires = self.zone.put_bytes(self.relative, body, if_none_match=True), expires
                break
            except PreconditionFailed:
                pass
            current = self.zone.get(self.relative)
            if current is None:
                continue  # released meanwhile: try again at once
            info, etag = json.loads(current[0]), current[1]
            who = f"{info.get('holder', 'another builder')} since {info.get('since', '?')}"
            if float(info.get("expires", 0)) < time.time():
                try:  # take over the expired lease; of several takers exactly one wins
                    self.etag, self.expires = self.zone.put_bytes(self.relative, body, if_match=etag), expires
                    self.say(f"partition {self.key}: took over the lock of {who}: its lease had expired")
                    break
                except PreconditionFailed:
                    continue
            if time.monotonic() >= deadline:
                raise PartitionBusyError(
                    f"partition {self.key} is being built by {who} (lock {self.zone}/{self.relative})"
                )
            if not told:
                self.say(f"partition {self.key} is being built by {who}; waiting up to {self.wait_s:.0f}s")
                told = True
            time.sleep(POLL_S)
        _held[self.key] = self
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.key}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            body, expires = self._body()
            try:
                self.etag, self.expires = self.zone.put_bytes(self.relative, body, if_match=self.etag), expires
            except PreconditionFailed:
                self.lost = "its lease was taken over by another builder"
                return
            except Exception as err:
                if time.time() >= self.expires:
                    self.lost = f"could not renew its lease ({type(err).__name__})"
                    return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        _held.pop(self.key, None)
        if self.lost is None and self.etag is not None:
            try:
                self.zone.delete(self.relative, if_match=self.etag)
            except PreconditionFailed:
                pass  # taken over meanwhile: not ours to delete


@contextmanager
def hold(zone: S3Zone, keys: list[str], lease_s: float, wait_s: float,
         say: Callable[[str], None] = lambda _: None) -> Iterator[None]:  # fmt: skip
    """Hold every partition's lease (taken in sorted order: no deadlock)."""
    with ExitStack() as stack:
        for key in sorted(set(keys)):
            lease = Lease(zone, key, lease_s, wait_s, say)
            lease.acquire()
            stack.callback(lease.release)
        yield


def recover(catalog: str, key: str, say: Callable[[str], None]) -> list[str]:
    if is_object_uri(catalog):
        return object_store.recover(S3Zone(catalog), key, say)
    return journal.recover(Path(catalog), key, say=say)


class S3PartitionLock(PartitionLock):
    """PartitionLock for object storage: `locks_dir` is an `s3://` URI of lease objects."""

    lease_seconds: float = 120.0

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[S3PartitionLock]:
        keys = self._keys(dict(context.run.tags)) if context.run else []
        log = context.log.info if context.log else (lambda _: None)
        with hold(S3Zone(self.locks_dir), [str(k) for k in keys], self.lease_seconds, self.wait_seconds, log):
            if self.catalog_dir is not None:
                for key in keys:
                    recover(self.catalog_dir, str(key), log)
            yield self


def locks_uri(settings) -> str | None:
    """Where the leases live when any zone is in object storage, else None (flock on disk)."""
    if is_object_uri(settings.data_dir):
        return f"{settings.data_dir.rstrip('/')}/locks"
    if is_object_uri(settings.catalog_path):
        return f"{settings.catalog_path.rstrip('/')}/{LOCKS_UNDER_CATALOG}"
    return None


def resources(settings) -> dict:
    """The resources that replace the local-disk ones for zones in object storage (none when
    every zone is on disk)."""
    out: dict = {}
    catalog, locks = settings.catalog_path, locks_uri(settings)
    if is_object_uri(catalog):
        out["catalog_io_manager"] = object_store.S3CatalogIOManager(
            catalog_dir=catalog, writer=settings.catalog_writer, allow_empty=settings.allow_empty,
            work_dir=str(scratch_for(catalog, settings.work_dir)),
        )  # fmt: skip
    if is_object_uri(settings.data_dir):
        out["raw_io_manager"] = S3RawZoneIOManager(
            raw_dir=str(settings.raw_dir), raw_uri=f"{settings.data_dir.rstrip('/')}/raw"
        )
    if locks is not None:
        out["partition_lock"] = S3PartitionLock(
            locks_dir=locks, catalog_dir=str(catalog), wait_seconds=settings.lock_wait_seconds,
            start_date=settings.start_date.isoformat(), symbols=list(settings.symbols),
            lease_seconds=settings.lock_lease_seconds,
        )  # fmt: skip
    return out


# -- hedgegrid verify / catalog repair ----------------------------------------------------------
def verify(settings, repair_only: bool = False, say: Callable[[str], None] = lambda _: None):
    """Recover interrupted commits (skipping partitions a live build holds), then, unless
    `repair_only`, read every catalog object's footer and every raw object against its
    manifest. The same Report as on disk (catalog/verify.py)."""
    import pyarrow.parquet as pq

    from hedgegrid_assets.catalog.verify import Report

    report = Report()
    catalog, locks = settings.catalog_path, locks_uri(settings)
    if is_object_uri(catalog):
        zone = S3Zone(catalog)
        keys = sorted({"|".join(tx.split("/")[1:3]) for tx in object_store.transactions(zone)})
    else:
        zone = None
        keys = sorted({journal.key_of(f) for f in journal.pending(Path(catalog))})
    for key in keys:
        try:
            with hold(S3Zone(locks), [key], settings.lock_lease_seconds, 0.0) if locks else ExitStack():
                report.recovered += recover(str(catalog), key, say)
        except PartitionBusyError as err:
            report.busy.append(str(err))
    if repair_only:
        return report
    if zone is not None:
        for name in zone.find("data"):
            if not name.endswith(".parquet"):
                continue
            report.catalog_files += 1
            try:
                with zone.fs.open(zone.path(name), "rb") as fh:
                    report.catalog_rows += pq.ParquetFile(fh).metadata.num_rows
            except Exception as err:
                report.problems.append(f"{zone}/{name}: unreadable Parquet ({type(err).__name__}: {err})")
    if is_object_uri(settings.data_dir):
        raw = S3Zone(f"{settings.data_dir.rstrip('/')}/raw")
        for name in raw.find("_manifests"):
            landing = json.loads(raw.read_bytes(name))
            folder = raw.relative(landing["directory"])
            for f in landing["files"]:
                head = raw.head(f"{folder}/{f['name']}")
                if head is None:
                    report.problems.append(
                        f"{landing['directory']}/{f['name']}: landed (manifest {raw}/{name}) but missing"
                    )
                    continue
                digest = hashlib.sha256(raw.read_bytes(f"{folder}/{f['name']}")).hexdigest()
                report.raw_files += 1
                report.raw_bytes += f["bytes"]
                if digest != f["sha256"] or head["ContentLength"] != f["bytes"]:
                    report.problems.append(
                        f"{landing['directory']}/{f['name']}: changed since it was landed (sha256 {digest}, manifest says {f['sha256']})"
                    )
    return report
