"""The instance of `hedgegrid build`'s own runs: Dagster's sqlite event log with its engines
kept, and Dagster's local compute logs without their echo processes.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine and opens a new sqlite
connection for every statement it runs (`_connect`: `create_engine(...)`, one query,
`engine.dispose()`). A partition's run writes about 140 events (step starts, inputs, outputs,
materializations, check evaluations); on this machine that cost 2.2 s of a partition's
4.4-5.9 s run against 2.5 s for the work itself, so `hedgegrid build --jobs N` could not come
within 1.2x of the same work without Dagster (issue 14).

`PooledSqliteEventLogStorage` is the same storage (same files under
`$DAGSTER_HOME/history/runs/`, same schema), but each shard's engine (a run's `<run_id>.db`, the
`index.db`) is built once per process and kept in a small LRU with its one sqlite connection
open. With the connection open, a run's writes sit in `<run_id>.db-wal` until sqlite
checkpoints, and Dagster's watcher of a live run (the webserver's, on Dagster's own storage)
wakes on `<run_id>.db` only: so the run shard is checkpointed at every step's end and closed at
the run's end, and the UI follows a CLI build step by step, as it does Dagster's. Engines are
never shared across a fork (keyed by process id). Beyond that it: remembers which tables exist
(Dagster's `has_table` builds an engine per call, at each check event), commits with
`synchronous=NORMAL` (sqlite's setting for WAL: no fsync per commit, see `_wal_normal_sync`), and
stores a batch in one transaction per shard (`store_event_batch`, used for a run's planned
events within `event_batches`). `bench/event_log_replay.py` times one partition's events:
stock 1190 ms wall (934 ms CPU), kept connections 228 ms, batched 205 ms (2026-12-03).

`FileComputeLogManager` writes the same compute-log files as Dagster's local manager, without
the processes that manager starts to echo them to the terminal.

Only `hedgegrid build` uses them (`instance_for_build` -> `build_instance`), and only where the
instance keeps Dagster's defaults (no storage, no compute_logs configured): the UI, the daemon
and `dagster asset materialize` read and write the same files with Dagster's own classes, and an
instance that configures them (`deploy/dagster.yaml`, Postgres) is used as configured.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager

from dagster import DagsterEventType
from dagster import _check as check
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._utils import ensure_file, touch_file
from sqlalchemy import create_engine
from sqlalchemy import event as sqla_event

from hedgegrid_assets.local_instance import STORAGE_KEYS

ENGINES_KEPT = 16  # the index shard, the runs in flight in this process and a few recent ones
EVENT_LOG_SUBDIR = os.path.join("history", "runs")  # where Dagster's default sqlite storage keeps it
COMPUTE_LOG_SUBDIR = "storage"  # where Dagster's default local compute logs go
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000  # above any run's planned events: a batch is stored whole
STEP_ENDS = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
RUN_ENDS = {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}


def build_instance(home: str):
    """The instance at `home` for this process's runs: with this event log when the instance
    keeps Dagster's default sqlite storage, as configured otherwise."""
    from dagster import DagsterInstance
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    config, _ = dagster_instance_config(home)
    overrides = {}
    if not any(config.get(key) for key in STORAGE_KEYS):
        overrides["event_log_storage"] = {
            "module": __name__,
            "class": PooledSqliteEventLogStorage.__name__,
            "config": {"base_dir": os.path.join(home, EVENT_LOG_SUBDIR)},
        }
    if not config.get("compute_logs"):
        overrides["compute_logs"] = {
            "module": __name__,
            "class": FileComputeLogManager.__name__,
            "config": {"base_dir": os.path.join(home, COMPUTE_LOG_SUBDIR)},
        }
    if not overrides:
        return DagsterInstance.get()
    return DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides=overrides))


@contextmanager
def event_batches(instance):
    """Dagster's opt-in batch writing for a run executed in this block, where the instance's event
    log stores a batch in one transaction: the run's planned events (24 per partition, stored at
    its creation) reach `store_event_batch` together instead of one by one. Dagster reads
    `DAGSTER_EVENT_BATCH_SIZE` at every event; it is set for the block only (a user's is kept)."""
    if EVENT_BATCH_SIZE_ENV in os.environ or not isinstance(instance.event_log_storage, PooledSqliteEventLogStorage):
        yield
        return
    os.environ[EVENT_BATCH_SIZE_ENV] = str(EVENT_BATCH_SIZE)
    try:
        yield
    finally:
        os.environ.pop(EVENT_BATCH_SIZE_ENV, None)


class FileComputeLogManager(LocalComputeLogManager):
    """Dagster's local compute logs (same files, the UI shows them), captured without the
    echo: Dagster's mirrors a run's stdout and stderr back to the terminal through a `tail -F`
    and a Python watcher process for each (four processes per run; measured 2.81 -> 2.51 s
    per partition without them), and `hedgegrid build` shows its own lines, not the steps' output."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)  # Dagster's builds its own class

    @contextmanager
    def capture_logs(self, log_key):
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        ensure_file(outpath)
        ensure_file(errpath)
        with redirect_to_file(sys.stdout, outpath), redirect_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # the UI's sign that the capture is done


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` that keeps each shard's engine and connection (see module)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[tuple[int, str], tuple[object, object]] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables_present: set[str] = set()
        self._batching = False  # inside store_event_batch: writes wait for its one commit per shard
        super().__init__(base_dir, inst_data=inst_data)
        # Re-entrant, so that a batch holds it across its events' statements (Dagster's is a Lock).
        self._db_lock = threading.RLock()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)  # Dagster's builds its own class

    def _connection(self, shard: str):
        """The shard's kept connection (engine and connection made on first use in this process)."""
        key = (os.getpid(), shard)
        with self._engines_lock:
            kept = self._engines.get(key)
            if kept is not None:
                self._engines.move_to_end(key)
                return kept[1]
            # Engines made before a fork belong to the parent: forget them without closing.
            for stale in [k for k in self._engines if k[0] != key[0]]:
                del self._engines[stale]
        engine = create_engine(
            self.conn_string_for_shard(shard),
            pool_size=1,
            max_overflow=4,  # Dagster's _initdb opens a second connection
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        sqla_event.listen(engine, "connect", _wal_normal_sync)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        conn = engine.connect()
        with self._engines_lock:
            self._engines[key] = (engine, conn)
            while len(self._engines) > ENGINES_KEPT:
                _, evicted = self._engines.popitem(last=False)
                _close(evicted)
        return conn

    def _release(self, shard: str) -> None:
        """Close a shard's connection (sqlite checkpoints its WAL into the .db on the last close)."""
        with self._db_lock, self._engines_lock:
            kept = self._engines.pop((os.getpid(), shard), None)
            if kept is not None:
                _close(kept)

    def _checkpoint(self, shard: str) -> None:
        """Move a shard's WAL into its .db now, so watchers of the .db see the events so far."""
        with self._db_lock:
            self._connection(shard).connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for (pid, _), kept in self._engines.items():
                if pid == os.getpid():
                    _close(kept)
            self._engines.clear()

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            check.str_param(shard, "shard")
            conn = self._connection(shard)
            if self._batching:
                if not conn.in_transaction():
                    conn.begin()
                yield conn
            else:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster's asks sqlite through a new engine at every call (for each check event, each
        asset event's tags); a table, once there, stays until `wipe`."""
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    def store_event_batch(self, events) -> None:
        """A batch's events in one transaction per shard (Dagster's stores them one by one): a
        run's planned events, within `event_batches`. If any fails, none is stored, and Dagster
        falls back to storing them one at a time."""
        with self._db_lock:
            self._batching = True
            try:
                for event in events:
                    super().store_event(event)
            except BaseException:
                self._end_batch(commit=False)
                raise
            self._end_batch(commit=True)
        for event in events:
            self._after_store(event)

    def _end_batch(self, commit: bool) -> None:
        self._batching = False
        with self._engines_lock:
            conns = [kept[1] for (pid, _), kept in self._engines.items() if pid == os.getpid()]
        for conn in conns:
            if conn.in_transaction():
                (conn.commit if commit else conn.rollback)()

    def store_event(self, event) -> None:
        super().store_event(event)
        self._after_store(event)

    def _after_store(self, event) -> None:
        if event.is_dagster_event and event.run_id:
            if event.dagster_event_type in RUN_ENDS:
                self._release(event.run_id)
            elif event.dagster_event_type in STEP_ENDS:
                self._checkpoint(event.run_id)

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()
        self._tables_present.clear()  # after: Dagster's wipe asks which tables to empty

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _close(kept) -> None:
    engine, conn = kept
    conn.close()
    engine.dispose()


def _wal_normal_sync(dbapi_connection, _record) -> None:
    """sqlite's advised setting for a WAL database: a commit waits for no fsync (the WAL is synced
    at checkpoints), survives a crash of the process, and may roll back only on power loss;
    the database is never corrupted. The event log is bookkeeping (the catalog keeps its own
    journal). Measured: 171 -> 133 ms CPU, 213 -> 153 ms wall per partition's 142 events."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
