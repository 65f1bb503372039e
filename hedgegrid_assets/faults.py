"""What a write that the machine refused says: the reason in plain words, the file, the
partition, and what was kept (issue 10, point 8). Used wherever a zone is written."""

from __future__ import annotations

import errno
from pathlib import Path

PLAIN = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an input/output error (the disk?)",
}


def _errno(err: OSError) -> int | None:
    if err.errno is not None:
        return err.errno
    text = str(err)  # pyarrow's IO errors carry the errno only in their text
    for code, words in (
        (errno.ENOSPC, "No space left"),
        (errno.EROFS, "Read-only file system"),
        (errno.EDQUOT, "quota exceeded"),
        (errno.EACCES, "Permission denied"),
    ):
        if words in text:
            return code
    return None


def reason(err: OSError) -> str:
    """The cause in plain words ("no space left on the device"), else the system's own text."""
    code = _errno(err)
    return PLAIN.get(code) or err.strerror or str(err)


def refused_write(key: str, what: str, path: Path | str | None, err: OSError, kept: str) -> str:
    """`partition P: could not write <what> (<path>): <reason>. <kept>`"""
    where = path or err.filename
    return f"partition {key}: could not write {what}{f' ({where})' if where else ''}: {reason(err)}. {kept}"
