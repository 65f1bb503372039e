"""Where a zone lives: a local folder, or an `s3://bucket/prefix` location in object storage.

`catalog_dir` and `data_dir` may each be an `s3://bucket/prefix` URI (settings.py keeps such a
value as the URI string; a local path stays a `Path`). Everything in object storage goes
through one `S3Zone`: s3fs (fsspec's S3 filesystem, the one Nautilus reads through),
configured only by the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, or any other credential source botocore
knows). The keys are read by botocore itself: this code never reads, stores or logs them, and
nothing here has them in its repr or its errors; the one exception is `nautilus_catalog_args`,
which hands them in memory to Nautilus's Rust readers (they read no environment).

The zone guard of object storage (the counterpart of `names.inside`): every key written,
copied or deleted is built from a relative path that is proven to stay under the zone's
prefix (no `..`, no empty or absolute parts, no backslash), so no name can reach another
prefix or bucket.

Objects are written whole: a PUT (or a completed multipart upload) and a server-side copy
are atomic on S3, so a reader sees the old object or the new one, never a part. Conditional
writes (`If-None-Match: *` to create only, `If-Match: <etag>` to replace only what was read)
make the lock lease and the write-once raw objects possible without any local lock.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath

SCHEME = "s3://"
# S3 bucket names: 3-63 characters, lower case letters, digits, dots and hyphens.
_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?")
URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


class OutsideZoneError(Exception):
    pass


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists (If-None-Match) or changed (If-Match)."""


def is_object_uri(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEME)


def parse(uri: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at either end) of `s3://bucket/prefix`."""
    match = _URI.fullmatch(uri.rstrip("/"))
    if not match:
        raise ValueError(
            f"not an S3 location: {uri!r}: expected s3://bucket/prefix (bucket: 3-63 of a-z, 0-9, '.', '-')"
        )
    bucket, prefix = match.group(1), (match.group(2) or "").strip("/")
    return bucket, "/".join(_safe_parts(prefix, uri)) if prefix else ""


def _safe_parts(relative: str, what: str) -> list[str]:
    parts = relative.split("/")
    if any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise OutsideZoneError(
            f"refusing {what!r}: every part of an object key must be a plain name (no '', '.', '..')"
        )
    return parts


def join(uri: str, *parts: str) -> str:
    """`uri` extended by plain path parts (each checked)."""
    return "/".join([uri.rstrip("/"), *[p for part in parts for p in _safe_parts(part, part)]])


def filesystem():
    """The s3fs filesystem from the standard AWS environment (one per process and endpoint).
    No listing cache: other processes and machines write the same bucket, so a listing must
    always be the server's."""
    return _filesystem(os.getpid(), os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION"))


@lru_cache(maxsize=8)
def _filesystem(pid: int, endpoint: str | None, region: str | None):
    import s3fs

    client_kwargs = {}
    if endpoint:  # an S3-compatible server (MinIO, moto, R2, ...)
        client_kwargs["endpoint_url"] = endpoint
    if region:
        client_kwargs["region_name"] = region
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True)


def nautilus_catalog_args(uri: str) -> dict:
    """How NautilusTrader 1.231 opens the catalog at `s3://bucket/prefix` (measured; `from_uri`
    fails inside s3fs): `ParquetDataCatalog(**args)`; a `BacktestDataConfig` takes the same
    values as `catalog_path`, `catalog_fs_protocol`, `catalog_fs_storage_options` and
    `catalog_fs_rust_storage_options`.

    Its Python readers (instruments, funding) go through s3fs, which finds the credentials in the
    environment itself. Its Rust readers (trades, quotes, bars, marks: DataFusion's object_store)
    take none from the environment (they ask the instance-metadata service), so the credentials
    are handed to them here, in memory only: the one place this module reads them. Never print,
    log or store what this returns."""
    bucket, prefix = parse(uri)
    endpoint, region = os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION")
    client_kwargs = {k: v for k, v in (("endpoint_url", endpoint), ("region_name", region)) if v}
    rust = {
        name: os.environ[var]
        for name, var in (
            ("endpoint_url", "AWS_ENDPOINT_URL"),
            ("region", "AWS_DEFAULT_REGION"),
            ("access_key_id", "AWS_ACCESS_KEY_ID"),
            ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("session_token", "AWS_SESSION_TOKEN"),
        )
        if os.environ.get(var)
    }
    if endpoint and endpoint.startswith("http://"):  # a local S3-compatible server
        rust["allow_http"] = "true"
    return {"path": f"{bucket}/{prefix}".rstrip("/"), "fs_protocol": "s3",
            "fs_storage_options": {"client_kwargs": client_kwargs}, "fs_rust_storage_options": rust}  # fmt: skip


@dataclass(frozen=True)
class S3Zone:
    """One zone (catalog, raw, locks, ...) at `s3://bucket/prefix`."""

    uri: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", self.uri.rstrip("/"))
        parse(self.uri)

    @cached_property
    def fs(self):
        return filesystem()

    @property
    def bucket(self) -> str:
        return parse(self.uri)[0]

    @property
    def prefix(self) -> str:
        return parse(self.uri)[1]

    def __str__(self) -> str:
        return self.uri

    def sub(self, relative: str) -> S3Zone:
        return S3Zone(self.path_uri(relative))

    def key(self, relative: str) -> str:
        """The object key of `relative` (a path inside the zone, proven to stay inside)."""
        parts = _safe_parts(str(PurePosixPath(relative)) if relative else "", f"{self.uri}/{relative}")
        return "/".join([*([self.prefix] if self.prefix else []), *parts])

    def path(self, relative: str) -> str:
        """`bucket/key`, the form fsspec takes."""
        return f"{self.bucket}/{self.key(relative)}"

    def path_uri(self, relative: str) -> str:
        return f"s3://{self.path(relative)}"

    def relative(self, path: str) -> str:
        """The zone-relative name of a `bucket/key` path fsspec listed (proven inside)."""
        path = path.removeprefix(SCHEME)
        base = f"{self.bucket}/{self.prefix}".rstrip("/") + "/"
        if not path.startswith(base):
            raise OutsideZoneError(f"refusing {path}: outside {self.uri}")
        rel = path[len(base) :]
        _safe_parts(rel, path)
        return rel

    # -- reads ------------------------------------------------------------------------------
    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def read_bytes(self, relative: str) -> bytes:
        return self.fs.cat_file(self.path(relative))

    def head(self, relative: str) -> dict | None:
        """The object's HEAD (ETag, size, metadata), None when there is none."""
        try:
            return self.fs.call_s3("head_object", Bucket=self.bucket, Key=self.key(relative))
        except FileNotFoundError:
            return None

    def get(self, relative: str) -> tuple[bytes, str] | None:
        """(body, ETag) read in one request, None when there is no such object."""
        try:
            out = self.fs.call_s3("get_object", Bucket=self.bucket, Key=self.key(relative))
        except FileNotFoundError:
            return None
        from fsspec.asyn import sync

        async def _read():
            async with out["Body"] as body:
                return await body.read()

        return sync(self.fs.loop, _read), out["ETag"]

    def find(self, relative: str = "") -> list[str]:
        """Zone-relative names of every object under `relative`, sorted."""
        base = self.path(relative) if relative else f"{self.bucket}/{self.prefix}".rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(self.relative(p) for p in found)

    def download(self, relative: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self.path(relative), str(dest))

    # -- writes: each one whole ------------------------------------------------------------
    def put_bytes(
        self,
        relative: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """One PUT (atomic); its ETag. `if_none_match`: only if no such object exists;
        `if_match`: only if the object still has that ETag; else PreconditionFailed."""
        extra: dict = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if metadata:
            extra["Metadata"] = metadata
        try:
            out = self.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key(relative), Body=data, **extra)
        except Exception as err:
            if _precondition(err):
                raise PreconditionFailed(f"{self.uri}/{relative}") from None
            raise
        return out["ETag"]

    def upload(self, src: Path, relative: str) -> None:
        """A local file as one object (a single PUT, or a multipart upload that becomes
        visible only when completed, whole)."""
        self.fs.put_file(str(src), self.path(relative))

    def copy(self, src_relative: str, dest_relative: str) -> None:
        """Server-side copy (atomic for the reader of `dest`)."""
        self.fs.copy(self.path(src_relative), self.path(dest_relative))

    def delete(self, relative: str, if_match: str | None = None) -> None:
        extra = {"IfMatch": if_match} if if_match is not None else {}
        try:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key(relative), **extra)
        except FileNotFoundError:
            pass
        except Exception as err:
            if _precondition(err):
                raise PreconditionFailed(f"{self.uri}/{relative}") from None
            raise

    def delete_many(self, relatives: list[str]) -> None:
        if relatives:
            self.fs.rm([self.path(r) for r in relatives])


def _precondition(err: BaseException | None) -> bool:
    """S3's 412 PreconditionFailed (s3fs re-raises it as FileExistsError or OSError, the
    botocore error as the cause)."""
    while err is not None:
        code = getattr(err, "response", {}).get("Error", {}).get("Code") if hasattr(err, "response") else None
        if code == "PreconditionFailed":
            return True
        err = err.__cause__
    return False


def zone(location: str | Path) -> S3Zone | Path:
    """The zone of a location as settings give it: an `S3Zone` for `s3://`, else the Path."""
    return S3Zone(location) if is_object_uri(location) else Path(location)


def scratch_for(uri: str, work_dir: Path | None) -> Path:
    """This machine's scratch folder for a zone in object storage: landings before their
    upload, staged frames, quarantined rows (`work_dir`, default the system's temp folder)."""
    import tempfile

    bucket, prefix = parse(uri)
    base = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir()) / "hedgegrid-work"
    return base / bucket / (prefix or "_root")
