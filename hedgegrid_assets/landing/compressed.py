"""Open landed files whatever their packing: plain, `.gz`, `.zip` (one CSV inside) or `.bz2`.

Polars reads plain and gzip files itself (gzip is recognised by its magic bytes). A zip or
bz2 file is decompressed in 1 MiB blocks into a private temporary file that polars then scans
lazily, so memory stays bounded whatever the file's size; the landed file is never touched.
Broken packing is reported as a `SourceError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import bz2
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hedgegrid_assets.errors import SourceError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK"
BZ2_MAGIC = b"BZh"
BLOCK = 1 << 20


@dataclass(frozen=True)
class Opened:
    path: Path  # what polars reads: the file itself (plain/gzip) or its decompressed copy
    label: str  # how errors name it: 'path' or 'path (member x.csv)'
    member: str | None = None  # the zip member's name
    truncated: bool = False  # a gzip stream that ended early, read up to there (`salvaged`)


def packing(path: Path) -> str:
    """'gzip', 'zip', 'bz2' or 'plain', from the name's suffix."""
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".gzip": "gzip", ".zip": "zip", ".bz2": "bz2"}.get(suffix, "plain")


def _magic(path: Path, n: int = 4) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _gunzip(path: Path, out=None) -> bool:
    """Stream-decompress every gzip member of `path` (into `out`, a binary file, if given).

    True when the stream is complete, False when it ends early (whatever was there has been
    written); SourceError when the data is corrupt. zlib directly, so that nothing decoded
    before the point of truncation is lost (GzipFile.read drops its last partial block).
    """
    decomp = zlib.decompressobj(wbits=31)
    try:
        with path.open("rb") as fh:
            while block := fh.read(BLOCK):
                while block:
                    if decomp.eof:  # the previous member ended: another follows (appended files)
                        decomp = zlib.decompressobj(wbits=31)
                    data = decomp.decompress(block)
                    if out is not None and data:
                        out.write(data)
                    block = decomp.unused_data if decomp.eof else b""
        tail = decomp.flush()
        if out is not None and tail:
            out.write(tail)
    except zlib.error as err:
        raise SourceError(f"{path}: unreadable gzip file ({err})") from None
    return decomp.eof


def check_gzip(path: Path) -> bool:
    """Read the whole gzip stream; True if complete, False if it ends early; SourceError if corrupt."""
    return _gunzip(path)


def _gunzip_salvage(path: Path, out: Path) -> None:
    """Decompress as much of a truncated gzip stream as there is."""
    with out.open("wb") as dst:
        _gunzip(path, dst)


@contextmanager
def salvaged(path: Path) -> Iterator[Opened]:
    """A gzip stream cut short (a recorder stopped mid-write), decompressed up to where it ends."""
    with tempfile.TemporaryDirectory(prefix="hedgegrid-") as tmp:
        out = Path(tmp) / path.stem
        _gunzip_salvage(path, out)
        yield Opened(out, str(path), truncated=True)


@contextmanager
def opened(path: Path, *, member_suffix: str = ".csv") -> Iterator[Opened]:
    """A path polars can read for `path`, valid inside the `with` block."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    kind = packing(path)
    if path.stat().st_size == 0:
        if kind in ("plain", "gzip"):  # an empty day can be an empty file
            yield Opened(path, str(path))
            return
        raise SourceError(f"{path}: empty file, not a readable {kind} archive")
    magic = _magic(path)
    if kind == "gzip":
        if not magic.startswith(GZIP_MAGIC):
            raise SourceError(f"{path}: unreadable gzip file (not gzip data: starts with {magic!r})")
        yield Opened(path, str(path))
        return
    if kind == "plain":
        yield Opened(path, str(path))
        return
    with tempfile.TemporaryDirectory(prefix="hedgegrid-") as tmp:
        if kind == "zip":
            yield _unzip(path, Path(tmp), magic, member_suffix)
        else:
            yield _bunzip(path, Path(tmp), magic)


def _unzip(path: Path, tmp: Path, magic: bytes, member_suffix: str) -> Opened:
    if not magic.startswith(ZIP_MAGIC):
        raise SourceError(f"{path}: unreadable zip file (not zip data: starts with {magic!r})")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            wanted = [n for n in names if n.lower().endswith(member_suffix)] or names
            if len(wanted) != 1:
                raise SourceError(
                    f"{path}: expected one {member_suffix} file inside the zip, found {len(wanted)}: {names[:5]}"
                )
            name = wanted[0]
            out = tmp / Path(name).name
            with zf.open(name) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, BLOCK)  # verifies the member's CRC at its end
    except SourceError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError) as err:
        raise SourceError(f"{path}: unreadable zip file ({err})") from None
    return Opened(out, f"{path} (member {name})", member=name)


def _bunzip(path: Path, tmp: Path, magic: bytes) -> Opened:
    if not magic.startswith(BZ2_MAGIC):
        raise SourceError(f"{path}: unreadable bz2 file (not bzip2 data: starts with {magic!r})")
    out = tmp / path.stem
    try:
        with bz2.open(path, "rb") as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, BLOCK)
    except EOFError:
        raise SourceError(f"{path}: unreadable bz2 file (the compressed stream ends early: truncated)") from None
    except OSError as err:
        raise SourceError(f"{path}: unreadable bz2 file ({err})") from None
    return Opened(out, str(path))


def explain_read_error(path: Path, err: Exception, label: str | None = None) -> SourceError:
    """Turn a polars read failure into a clear message (a broken gzip is named as such)."""
    if path.exists() and path.stat().st_size and _magic(path).startswith(GZIP_MAGIC):
        try:
            complete = check_gzip(path)
        except SourceError as gz:
            return gz
        if not complete:
            return SourceError(f"{path}: unreadable gzip file (the compressed stream ends early: truncated)")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return SourceError(f"{label or path}: cannot be read as text ({first})")


def _raw_blocks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes of a landed file (plain, gzip with appended members, zip, bz2) in
    blocks of about BLOCK bytes; a gzip stream that ends early is an error here."""
    kind = packing(path)
    if kind == "gzip":
        decomp = zlib.decompressobj(wbits=31)
        try:
            with path.open("rb") as fh:
                while block := fh.read(BLOCK):
                    while block:
                        if decomp.eof:
                            decomp = zlib.decompressobj(wbits=31)
                        if data := decomp.decompress(block):
                            yield data
                        block = decomp.unused_data if decomp.eof else b""
            if tail := decomp.flush():
                yield tail
        except zlib.error as err:
            raise SourceError(f"{path}: unreadable gzip file ({err})") from None
        if not decomp.eof and path.stat().st_size:
            raise SourceError(f"{path}: unreadable gzip file (the compressed stream ends early: truncated)")
        return
    if kind == "plain":
        with path.open("rb") as fh:
            while block := fh.read(BLOCK):
                yield block
        return
    with opened(path) as o, o.path.open("rb") as fh:
        while block := fh.read(BLOCK):
            yield block


def line_blocks(path: Path, size: int = 64 << 20) -> Iterator[bytes]:
    """The file's decompressed text in blocks of whole lines of about `size` bytes (the last
    may lack its newline): big files are parsed a bounded block at a time, never whole.
    Decompression runs one block ahead in a thread (zlib releases the GIL), so it overlaps
    the caller's parsing on a second core."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        pending: list[bytes] = []
        have = 0
        try:
            for data in _raw_blocks(path):
                if stop.is_set():
                    return
                pending.append(data)
                have += len(data)
                if have >= size:
                    joined, at = b"".join(pending), 0
                    while len(joined) - at >= size:  # blocks of about `size`, cut after a newline
                        cut = joined.rfind(b"\n", at, at + size) + 1 or joined.find(b"\n", at + size) + 1
                        if not cut:
                            break
                        q.put(joined[at:cut])
                        at = cut
                    pending = [joined[at:]]
                    have = len(pending[0])
                    del joined
            if have:
                q.put(b"".join(pending))
            q.put(None)
        except BaseException as err:
            q.put(err)

    thread = threading.Thread(target=produce, name="hedgegrid-gunzip", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
