"""The raw zone: each partition's files exactly as landed, plus a manifest of the landing.

Layout: `<data_dir>/raw/<source>/<date>/<SYMBOL>/<files>` and
`<data_dir>/raw/_manifests/<date>/<SYMBOL>.json` (which source landed last, file sizes and
sha256). Landings are atomic (a temporary folder renamed into place); nothing ever edits a
landed file: parsing only reads, and bad rows are quarantined to the staging area.

A file that feeds many partitions (a CSV or JSONL spanning many days) is copied once, into
`<data_dir>/raw/_shared/<key>/<name>` (key: the original's path, size and mtime), and each
partition's landing is a hard link to that copy: one copy on disk however many partitions
read it, and still a copy (the original may change; the landed bytes never do). A kept copy
no landing links to any more (its original changed and every partition was landed again)
is removed after a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext

from hedgegrid_assets.debris import owner_gone, sweep, temp_name
from hedgegrid_assets.faults import refused_write
from hedgegrid_assets.names import inside
from hedgegrid_assets.partitions import split_key


@dataclass(frozen=True)
class RawFile:
    name: str  # relative to the landing folder
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RawLanding:
    source: str
    directory: str
    files: list[RawFile]

    @property
    def paths(self) -> list[Path]:
        return [Path(self.directory) / f.name for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def land_atomically(directory: Path, source: str, land: Callable[[Path], dict | None]) -> RawLanding:
    """Run `land(tmp)` into a temporary sibling folder, then swap it in whole. `land` may return
    the sha256 of files it already knows (by name), which are then not read again."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    restore_interrupted(directory)
    for stem in (f".{directory.name}.landing", f".{directory.name}.old"):
        sweep(directory.parent, stem)  # what a killed landing of this partition left
    tmp = directory.with_name(temp_name(f".{directory.name}.landing"))
    tmp.mkdir()
    try:
        known = land(tmp) or {}
        old = None
        if directory.exists():
            old = directory.with_name(temp_name(f".{directory.name}.old"))
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = [
        RawFile(str(p.relative_to(directory)), p.stat().st_size, known.get(str(p.relative_to(directory))) or _sha256(p))
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    ]
    return RawLanding(source=source, directory=str(directory), files=files)


def restore_interrupted(directory: Path) -> Path | None:
    """A landing killed between moving the old folder aside and renaming the new one in left
    no folder: the old one is put back (raw data is never lost). The folder restored, if any."""
    if directory.exists():
        return None
    for old in sorted(directory.parent.glob(f".{directory.name}.old-p*")):
        if owner_gone(old.name):
            old.rename(inside(directory.parent, directory))
            return directory
    return None


SHARED = "_shared"
ORPHAN_AGE_S = 86_400


def land_shared(src: Path, shared_dir: Path, dest: Path) -> str:
    """Link `dest` to the raw zone's one copy of `src` (made now if there is none); its sha256.

    A file still growing while it is copied (a recorder writing) is landed as the snapshot
    copied, for this partition only. Concurrent landings publish one copy (the first link
    wins); pruning is best-effort and never fails a landing."""
    st = src.stat()
    identity = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"
    kept = inside(shared_dir, shared_dir / hashlib.sha256(identity.encode()).hexdigest()[:20] / src.name)
    digest_file = kept.with_name(kept.name + ".sha256")
    if not (kept.exists() and digest_file.exists()):
        snapshot = _publish(src, st, kept, digest_file, dest)
        if snapshot is not None:
            return snapshot
    try:
        os.link(kept, dest)
    except OSError:  # no hard links here, or the copy was pruned meanwhile: an own copy, as before
        shutil.copyfile(src, dest)
        return _sha256(dest)
    try:
        _prune_orphans(shared_dir, keep=kept.parent)
    except OSError:
        pass  # best effort: another landing may be pruning too
    return digest_file.read_text().strip() or _sha256(dest)


def _publish(src: Path, st: os.stat_result, kept: Path, digest_file: Path, dest: Path) -> str | None:
    """Copy `src` to `kept` with its digest beside it (written first and atomically: another
    landing may read it); None. If `src` changed while copied, the copy becomes `dest` alone
    and its digest is returned."""
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept.with_name(f".{kept.name}.{uuid.uuid4().hex[:8]}.tmp")
    digest = hashlib.sha256()
    try:
        with src.open("rb") as fh, tmp.open("wb") as out:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        after = src.stat()
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            os.replace(tmp, dest)
            return digest.hexdigest()
        digest_tmp = digest_file.with_name(f".{digest_file.name}.{uuid.uuid4().hex[:8]}.tmp")
        digest_tmp.write_text(digest.hexdigest())
        os.replace(digest_tmp, digest_file)
        try:
            os.link(tmp, kept)
        except FileExistsError:
            pass  # another landing published the same bytes first
        return None
    finally:
        tmp.unlink(missing_ok=True)


def _prune_orphans(shared_dir: Path, keep: Path) -> None:
    """Kept copies no landing links to (link count 1) and untouched for a day go."""
    cutoff = time.time() - ORPHAN_AGE_S
    for entry in shared_dir.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        data = [f for f in entry.iterdir() if not f.name.endswith(".sha256") and not f.name.startswith(".")]
        if data and all(f.stat().st_nlink == 1 and f.stat().st_mtime < cutoff for f in data):
            shutil.rmtree(entry, ignore_errors=True)


def landing_dir(raw_dir: Path, source: str, key) -> Path:
    day, symbol = split_key(key)
    return inside(raw_dir, Path(raw_dir) / source / day.isoformat() / symbol)


class RawZoneIOManager(ConfigurableIOManager):
    """Stores the landing manifest beside the raw zone; the raw files are already in place."""

    raw_dir: str

    def _manifest(self, key) -> Path:
        day, symbol = split_key(key)
        return inside(self.raw_dir, Path(self.raw_dir) / "_manifests" / day.isoformat() / f"{symbol}.json")

    def handle_output(self, context: OutputContext, obj: RawLanding | dict[str, RawLanding]) -> None:
        landings = obj if isinstance(obj, dict) else {context.asset_partition_key: obj}
        for key, landing in landings.items():
            path = self._manifest(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique: concurrent builds
            try:
                tmp.write_text(json.dumps(asdict(landing), indent=1))
                tmp.replace(path)
            except OSError as err:
                kept = "The landed files are in place; the catalog keeps the partition's old files"
                raise Failure(description=refused_write(str(key), "the landing manifest", path, err, kept)) from None
            finally:
                tmp.unlink(missing_ok=True)

    def load_input(self, context: InputContext) -> RawLanding | dict[str, RawLanding]:
        landings = {str(k): self._load(k) for k in context.asset_partition_keys}
        return landings if len(landings) > 1 else next(iter(landings.values()))

    def _load(self, key) -> RawLanding:
        path = self._manifest(key)
        if not path.exists():
            raise FileNotFoundError(f"no raw data landed for partition {key}: materialize raw_market_data first")
        data = json.loads(path.read_text())
        return RawLanding(
            source=data["source"], directory=data["directory"], files=[RawFile(**f) for f in data["files"]]
        )
