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
never shared across a fork (keyed by process id).

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

ENGINES_KEPT = 16  # the index shard, the runs in flight in this process and a few recent ones
EVENT_LOG_SUBDIR = os.path.join("history", "runs")  # where Dagster's default sqlite storage keeps it
COMPUTE_LOG_SUBDIR = "storage"  # where Dagster's default local compute logs go
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
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
        self._engines: OrderedDict[tuple[int, str], object] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)  # Dagster's builds its own class

    def _engine(self, shard: str):
        key = (os.getpid(), shard)
        with self._engines_lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            # Engines made before a fork belong to the parent: forget them without disposing.
            for stale in [k for k in self._engines if k[0] != key[0]]:
                del self._engines[stale]
            engine = create_engine(
                self.conn_string_for_shard(shard),
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[key] = engine
            while len(self._engines) > ENGINES_KEPT:
                _, evicted = self._engines.popitem(last=False)
                evicted.dispose()
            return engine

    def _release(self, shard: str) -> None:
        """Close a shard's connection (sqlite checkpoints its WAL into the .db on the last close)."""
        with self._db_lock, self._engines_lock:
            engine = self._engines.pop((os.getpid(), shard), None)
            if engine is not None:
                engine.dispose()

    def _checkpoint(self, shard: str) -> None:
        """Move a shard's WAL into its .db now, so watchers of the .db see the events so far."""
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for (pid, _), engine in self._engines.items():
                if pid == os.getpid():
                    engine.dispose()
            self._engines.clear()

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def store_event(self, event) -> None:
        super().store_event(event)
        if event.is_dagster_event and event.run_id:
            if event.dagster_event_type in RUN_ENDS:
                self._release(event.run_id)
            elif event.dagster_event_type in STEP_ENDS:
                self._checkpoint(event.run_id)

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
