"""The raw zone's one copy of a file many partitions read (raw_zone.land_shared)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from hedgegrid_assets.landing.raw_zone import land_shared


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_landings_link_one_copy_with_its_digest(tmp_path):
    src = tmp_path / "in" / "all.csv"
    src.parent.mkdir()
    src.write_bytes(b"time,price\n" + b"1,2\n" * 1000)
    shared = tmp_path / "raw" / "_shared"
    dests = [tmp_path / f"p{i}.csv" for i in range(3)]
    for d in dests:
        assert land_shared(src, shared, d) == digest(src)
    assert len({d.stat().st_ino for d in dests}) == 1 and dests[0].stat().st_nlink == 4  # 3 landings + the kept copy


def test_a_rewrite_keeping_size_and_mtime_still_lands_the_new_bytes(tmp_path):
    src = tmp_path / "all.csv"
    src.write_bytes(b"time,price\n1,42000.0\n")
    shared = tmp_path / "_shared"
    land_shared(src, shared, tmp_path / "a.csv")
    st = src.stat()
    with src.open("r+b") as fh:  # same inode, same size; then the old mtime put back (cp -p, tar)
        fh.write(b"time,price\n1,42999.0\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert land_shared(src, shared, tmp_path / "b.csv") == digest(src)
    assert (tmp_path / "b.csv").read_bytes().endswith(b"42999.0\n") and (tmp_path / "a.csv").read_bytes().endswith(
        b"42000.0\n"
    )


def test_a_file_still_growing_lands_as_a_snapshot(tmp_path):
    src = tmp_path / "rec.jsonl"
    src.write_bytes(b'{"e":"x"}\n' * 500_000)
    stop = threading.Event()

    def recorder():
        with src.open("ab") as fh:
            while not stop.is_set():
                fh.write(b'{"e":"y"}\n')
                fh.flush()

    writer = threading.Thread(target=recorder)
    writer.start()
    try:
        got = land_shared(src, tmp_path / "_shared", tmp_path / "landed.jsonl")
    finally:
        stop.set()
        writer.join()
    landed = (tmp_path / "landed.jsonl").read_bytes()
    assert got == hashlib.sha256(landed).hexdigest()  # the manifest's digest is of what landed
    assert src.read_bytes().startswith(landed) and len(landed) >= 5_000_000


def test_concurrent_landings_publish_one_copy(tmp_path):
    src = tmp_path / "all.csv"
    src.write_bytes(os.urandom(8 << 20))
    shared = tmp_path / "_shared"
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(land_shared(src, shared, tmp_path / f"p{i}")))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [digest(src)] * 4
    kept = [p for p in shared.rglob("all.csv")]
    assert len(kept) == 1 and not list(shared.rglob(".*.tmp"))
