"""A partition's kinds enter the catalog together, or not at all: a small commit journal.

A build stages every kind's new file in a private folder of the catalog that Nautilus never
reads (`<catalog>/.hedgegrid-journal/<date>/<SYMBOL>/tx-p<pid>-<hex>/`), then commits:

1. every staged file is flushed to disk (fsync);
2. each file about to be replaced is hard-linked into the folder (`old-<n>`: the way back);
3. the intent record `intent.json` is written atomically (temporary name, fsync, rename,
   fsync of the folder). **This is the commit point.**
4. the staged files are renamed over their targets (and deletions done), folders fsynced;
5. the record and the folder are removed.

Recovery (`recover`), which every build runs first for its partitions under their lock, and
`hedgegrid verify` and `hedgegrid catalog repair` for all: a folder without a record is
discarded (nothing of it was visible: the old partition stands); a folder with one is rolled
forward (the renames are idempotent: a staged file already gone was already moved), so the
new partition stands. A failure in the current process that is not a crash (no space, a
read-only folder) before the commit point discards the folder; after it (a rename failing)
the replaced files are put back from their links. Either way the partition is whole, old or
new. (An undo in progress is marked by renaming the record to `abort.json`: recovery then
goes back too.) Folders of a live build in another process are never touched.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hedgegrid_assets.debris import held_by_another, temp_name
from hedgegrid_assets.names import inside
from hedgegrid_assets.partitions import split_key

JOURNAL_DIR = ".hedgegrid-journal"
INTENT = "intent.json"
ABORT = "abort.json"  # the intent, renamed when this process undoes a commit it could not finish
TX_STEM = "tx"


class CommitError(Exception):
    pass


def journal_root(root: Path) -> Path:
    return Path(root) / JOURNAL_DIR


def partition_journal(root: Path, key: str) -> Path:
    day, symbol = split_key(key)
    return inside(root, journal_root(root) / day.isoformat() / symbol)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Op:
    target: str  # relative to the catalog root
    staged: str | None  # file in the transaction folder, or None: delete the target
    backup: str | None = None  # link to the file it replaces, made before the commit point
    existed: bool = False


@dataclass
class PartitionCommit:
    """Stage files with `stage(target)` / `delete(target)`, then `commit()`. Used as a context
    manager, leaving it without a commit (an exception) discards what was staged."""

    root: Path
    key: str
    ops: list[_Op] = field(default_factory=list)
    folder: Path = field(init=False)
    committed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        parent = partition_journal(self.root, self.key)
        parent.mkdir(parents=True, exist_ok=True)
        self.folder = inside(parent, parent / temp_name(TX_STEM))
        self.folder.mkdir()

    def _relative(self, target: Path) -> str:
        return str(inside(self.root, Path(target)).relative_to(self.root))

    def stage(self, target: Path) -> Path:
        """Where to write the new content of `target` (renamed over it at the commit)."""
        staged = f"stage-{len(self.ops)}.parquet"
        self.ops.append(_Op(self._relative(target), staged))
        return self.folder / staged

    def delete(self, target: Path) -> None:
        self.ops.append(_Op(self._relative(target), None))

    def commit(self) -> None:
        for op in self.ops:
            if op.staged is not None:
                _fsync(self.folder / op.staged)
        for i, op in enumerate(self.ops):
            target = self.root / op.target
            op.existed = target.exists()
            if op.existed:
                op.backup = f"old-{i}.parquet"
                try:
                    os.link(target, self.folder / op.backup)
                except OSError as err:
                    if err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO):
                        raise
                    op.backup = None  # no hard links here: this commit can only go forward
        _write_intent(self.folder, self.key, self.ops)  # the commit point
        try:
            _apply(self.root, self.folder, self.ops)
        except OSError as err:
            _undo(self.root, self.folder, self.ops, err)
        _finish(self.folder)
        self.committed = True

    def __enter__(self) -> PartitionCommit:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed and not (self.folder / INTENT).exists() and not (self.folder / ABORT).exists():
            shutil.rmtree(self.folder, ignore_errors=True)


def _write_intent(folder: Path, key: str, ops: list[_Op]) -> None:
    record = {"partition": key, "ops": [op.__dict__ for op in ops]}
    tmp = folder / f".{INTENT}.tmp"
    with open(tmp, "w") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, folder / INTENT)
    _fsync(folder)


def _read_intent(folder: Path, name: str = INTENT) -> tuple[str, list[_Op]]:
    record = json.loads((folder / name).read_text())
    return record["partition"], [_Op(**op) for op in record["ops"]]


def _apply(root: Path, folder: Path, ops: list[_Op]) -> None:
    """Roll forward; safe to repeat (what was moved already is not there any more)."""
    touched = set()
    for op in ops:
        target = inside(root, root / op.target)
        if op.staged is None:
            target.unlink(missing_ok=True)
        elif (folder / op.staged).exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder / op.staged, target)
        touched.add(target.parent)
    for directory in touched:
        if directory.exists():
            _fsync(directory)


def _roll_back(root: Path, folder: Path, ops: list[_Op]) -> None:
    """Put every old file back; safe to repeat (a link already moved back is gone)."""
    for op in ops:
        target = inside(root, root / op.target)
        if op.backup is not None:
            if (folder / op.backup).exists():
                os.replace(folder / op.backup, target)
        elif not op.existed:
            target.unlink(missing_ok=True)
        else:
            raise OSError(f"no link to the old {target} was possible here")


def _undo(root: Path, folder: Path, ops: list[_Op], err: OSError) -> None:
    """A rename failed in this process after the commit point: put every old file back. The
    intent becomes the abort record first, so that recovery after a crash mid-way also goes
    back, never forward over a half-undone commit."""
    try:
        os.replace(folder / INTENT, folder / ABORT)
        _fsync(folder)
        _roll_back(root, folder, ops)
        (folder / ABORT).unlink()
        _finish(folder)
    except OSError as undo_err:
        raise CommitError(
            f"committing partition {key_of(folder)} failed ({err}) and so did putting the old files back "
            f"({undo_err}); the journal {folder} holds both: `hedgegrid catalog repair {root}` (or the next "
            "build of the partition) completes the commit"
        ) from err
    raise CommitError(f"committing partition {key_of(folder)} failed ({err}); its old files were put back") from err


def key_of(folder: Path) -> str:
    """The partition a transaction folder `<date>/<SYMBOL>/tx-...` belongs to."""
    return f"{folder.parent.parent.name}|{folder.parent.name}"


def _finish(folder: Path) -> None:
    (folder / INTENT).unlink(missing_ok=True)
    _fsync(folder.parent)
    shutil.rmtree(folder, ignore_errors=True)


def recover(root: Path, key: str | None = None, say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Finish or undo interrupted commits (of one partition, or of all); what was done, one
    line each. The caller holds the partition's lock; a live build's folder is left alone."""
    root = Path(root)
    base = partition_journal(root, key) if key is not None else journal_root(root)
    pattern = f"{TX_STEM}-p*" if key is not None else f"*/*/{TX_STEM}-p*"
    done = []
    for folder in sorted(base.glob(pattern)) if base.exists() else []:
        if held_by_another(folder.name):
            continue
        inside(root, folder)
        part = key_of(folder)
        if (folder / ABORT).exists():
            _, ops = _read_intent(folder, ABORT)
            _roll_back(root, folder, ops)
            (folder / ABORT).unlink()
            _finish(folder)
            line = f"partition {part}: finished undoing a failed commit: the old partition stands"
        elif (folder / INTENT).exists():
            _, ops = _read_intent(folder)
            _apply(root, folder, ops)
            _finish(folder)
            line = f"partition {part}: finished an interrupted commit ({len(ops)} file(s)): the new partition stands"
        else:
            shutil.rmtree(folder, ignore_errors=True)
            line = (
                f"partition {part}: discarded an unfinished commit (none of it was visible): the old partition stands"
            )
        say(line)
        done.append(line)
    return done


def pending(root: Path) -> list[Path]:
    """Transaction folders present (a live build's, or an interrupted one's)."""
    base = journal_root(root)
    return sorted(base.glob(f"*/*/{TX_STEM}-p*")) if base.exists() else []
