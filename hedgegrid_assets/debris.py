"""Temporary names that say which process made them, and the sweep that removes what a dead
build left behind (a kill during a landing or an instrument write), and only that.

A name carries `-p<pid>-<8 hex>`; an entry is debris when that process no longer runs on this
machine. Entries of a live process (a concurrent build), of this process, or without a pid
(an older release's) are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from hedgegrid_assets.names import inside

_OWNER = re.compile(r"-p(\d+)-[0-9a-f]{8}")


def temp_name(stem: str) -> str:
    """`<stem>-p<pid>-<hex>`: unique, and tells the sweep whose it is."""
    return f"{stem}-p{os.getpid()}-{uuid.uuid4().hex[:8]}"


def owner_of(name: str) -> int | None:
    """The pid a temporary name carries (None for a name without one)."""
    match = _OWNER.search(name)
    return int(match.group(1)) if match else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def owner_gone(name: str) -> bool:
    pid = owner_of(name)
    return pid is not None and pid != os.getpid() and not _running(pid)


def held_by_another(name: str) -> bool:
    """True when the name's process is another one that still runs."""
    pid = owner_of(name)
    return pid is not None and pid != os.getpid() and _running(pid)


def sweep(directory: Path, stem: str) -> int:
    """Remove entries `<stem>-p<pid>-*` in `directory` whose process is gone; how many."""
    removed = 0
    for entry in Path(directory).glob(f"{stem}-p*"):
        if owner_gone(entry.name):
            inside(directory, entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed
