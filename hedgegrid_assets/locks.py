"""One builder per partition: an flock'ed file per date|symbol in the data zone.

Every run takes the locks of the partitions it builds before its first step and holds them to
its end: the `partition_lock` resource, which every asset requires, so the CLI, UI runs, the
daemon's runs and `dagster asset materialize` all take it. A second builder of the same
partition waits (up to `lock_wait_seconds`, saying who holds it) and then stops with
"partition P is being built by pid N since T". The kernel drops an flock when its process
dies, so a killed build never leaves a stale lock; holding it, a run first finishes or undoes
an interrupted catalog commit of the partition (catalog/journal.py); lock files are never deleted (that would
race), they are a few bytes each.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext, PartitionKeyRange

from hedgegrid_assets.catalog import journal
from hedgegrid_assets.names import inside
from hedgegrid_assets.partitions import partitions_def_for, split_key

POLL_S = 0.2


class PartitionBusyError(Exception):
    pass


def lock_path(locks_dir: Path, key: str) -> Path:
    day, symbol = split_key(key)
    return inside(locks_dir, Path(locks_dir) / day.isoformat() / f"{symbol}.lock")


@contextmanager
def _hold_one(locks_dir: Path, key: str, wait_s: float, say: Callable[[str], None]) -> Iterator[None]:
    path = lock_path(locks_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                if time.monotonic() >= deadline:
                    raise PartitionBusyError(f"partition {key} is being built by {holder}") from None
                if not told:
                    say(f"partition {key} is being built by {holder}; waiting up to {wait_s:.0f}s")
                    told = True
                time.sleep(POLL_S)
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {since}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextmanager
def hold(
    locks_dir: Path, keys: list[str], wait_s: float, say: Callable[[str], None] = lambda _: None
) -> Iterator[None]:
    """Hold every partition's lock (taken in sorted order, so two builders never deadlock)."""
    with ExitStack() as stack:
        for key in sorted(set(keys)):
            stack.enter_context(_hold_one(locks_dir, key, wait_s, say))
        yield


class PartitionLock(ConfigurableResource):
    """Holds the locks of the run's partitions from its start to its end."""

    locks_dir: str
    catalog_dir: str | None = None  # holding a partition, first finish or undo its interrupted commit
    wait_seconds: float = 3600.0
    start_date: str
    symbols: list[str]

    def _keys(self, tags: dict[str, str]) -> list[str]:
        if "dagster/partition" in tags:
            return [tags["dagster/partition"]]
        start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
        if start and end:
            parts = partitions_def_for(dt.date.fromisoformat(self.start_date), self.symbols)
            return parts.get_partition_keys_in_range(PartitionKeyRange(start, end))
        return []  # an unpartitioned run builds no partition

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[PartitionLock]:
        keys = self._keys(dict(context.run.tags)) if context.run else []
        log = context.log.info if context.log else (lambda _: None)
        if keys and self.catalog_dir is not None and "://" not in self.catalog_dir:
            from dagster import Failure

            from hedgegrid_assets.catalog.instance_binding import InstanceMismatch, bind

            instance = context.instance
            home = None if instance is None or instance.is_ephemeral else instance.root_directory
            try:
                bind(self.catalog_dir, home)  # one instance per catalog: what the UI shows is the catalog
            except InstanceMismatch as err:
                raise Failure(description=str(err)) from None
        with hold(Path(self.locks_dir), keys, self.wait_seconds, log):
            if self.catalog_dir is not None:
                for key in keys:
                    journal.recover(Path(self.catalog_dir), str(key), say=log)
            yield self
