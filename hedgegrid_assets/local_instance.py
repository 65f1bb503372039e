"""The local Dagster instance (`instance_class` in dagster.yaml): Dagster's own, whose sqlite
storage a new DAGSTER_HOME gets exactly once, however many processes open it together.

Dagster's sqlite storages create their tables when they find none: two processes opening a new
DAGSTER_HOME at the same moment (a cron build and a manual one, `--jobs N` workers, `dagster
asset materialize` next to `make ui`) both find none and both create them, and one dies with
"table secondary_indexes already exists". Dagster asks the instance class for its defaults
(`config_defaults`) before it builds any storage, in every process that opens the instance:
there the first process creates the storage under an exclusive lock on
`<DAGSTER_HOME>/.hedgegrid-init.lock` while the others wait, then leaves a marker, so every
later open costs one `stat`. An instance whose dagster.yaml configures its own storage
(Postgres: deploy/dagster.yaml) is left to it; so is a storage given as an override to
`InstanceRef.from_dir` (only `dagster.yaml` is read here: today's overrides, hedgegrid build's
event log, keep the sqlite runs and schedules this creates). A home this process may only read
opens as before when its storage exists.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping

from dagster import DagsterInstance

LOCK_FILE = ".hedgegrid-init.lock"
MARKER_FILE = ".hedgegrid-initialized"
# The keys by which a dagster.yaml configures its own storage (then it is left to Dagster).
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")


class LocalInstance(DagsterInstance):
    """DagsterInstance, with the default sqlite storage created once under a lock."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}  # no settings of its own

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping:
        from dagster._core.instance.ref import InstanceRef

        initialise_once(base_dir)
        return InstanceRef.config_defaults(base_dir)


def initialise_once(home: str) -> bool:
    """Create the default sqlite storage of the instance at `home` unless it exists; True when
    this call created it. Waits while another process does."""
    marker, runs_db = os.path.join(home, MARKER_FILE), os.path.join(home, "history", "runs.db")
    if os.path.exists(marker) and os.path.exists(runs_db):
        return False
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(home)
    if any(config.get(key) for key in STORAGE_KEYS):
        return False  # storage configured (a database): Dagster's own migrations apply
    try:
        lock = open(os.path.join(home, LOCK_FILE), "a")
    except OSError:
        if os.path.exists(runs_db):  # a home this process may only read: its storage exists, open it
            return False
        raise
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if os.path.exists(marker) and os.path.exists(runs_db):
            return False
        from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

        storage = DagsterSqliteStorage.from_local(home)  # runs, event log index, schedules
        storage.dispose()
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as out:
            out.write("the sqlite storage of this instance is created (hedgegrid_assets/local_instance.py)\n")
        os.replace(tmp, marker)
        return True
