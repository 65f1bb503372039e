"""`hedgegrid build`'s event log (`instance_storage.py`): batches stored whole or not at all,
its kept connections usable after a failure, what it caches; on real sqlite files."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid

import pytest
from dagster import DagsterInstance
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster_shared.check import CheckError

from hedgegrid_assets.instance_storage import (
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    PooledSqliteEventLogStorage,
    event_batches,
)


def entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key=None,
        job_name="job",
        dagster_event=None,
    )


def rows_on_disk(base_dir, run_id: str) -> int:
    """The run's events as another process reads them (its own sqlite connection, WAL included)."""
    with sqlite3.connect(os.path.join(base_dir, f"{run_id}.db")) as conn:
        return conn.execute("select count(*) from event_logs").fetchone()[0]


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    run_id = str(uuid.uuid4())
    storage.store_event(entry(run_id, "before"))
    with pytest.raises(CheckError):  # the third is no event: the batch's first two are rolled back
        storage.store_event_batch([entry(run_id, "one"), entry(run_id, "two"), "not an event"])
    assert [e.user_message for e in storage.get_logs_for_run(run_id)] == ["before"]
    # The kept connection works on after the failure; a good batch lands in one go.
    storage.store_event_batch([entry(run_id, "one"), entry(run_id, "two")])
    storage.store_event(entry(run_id, "after"))
    assert [e.user_message for e in storage.get_logs_for_run(run_id)] == ["before", "one", "two", "after"]
    # Committed: another connection (another process) sees all four.
    assert rows_on_disk(tmp_path, run_id) == 4
    storage.dispose()


def test_has_table_is_remembered_once_true_and_forgotten_by_wipe(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    assert storage.has_table("asset_check_executions") and storage.supports_asset_checks
    assert "asset_check_executions" in storage._tables_present
    assert not storage.has_table("no_such_table") and "no_such_table" not in storage._tables_present
    storage.wipe()
    assert storage._tables_present == set()
    storage.dispose()


def test_event_batches_are_on_for_the_block_only_and_keep_a_users_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    (tmp_path / "dagster.yaml").write_text("")
    pooled = DagsterInstance.from_ref(
        InstanceRef.from_dir(
            str(tmp_path),
            overrides={
                "event_log_storage": {
                    "module": "hedgegrid_assets.instance_storage",
                    "class": "PooledSqliteEventLogStorage",
                    "config": {"base_dir": str(tmp_path / "history" / "runs")},
                }
            },
        )
    )
    with event_batches(pooled):
        assert os.environ[EVENT_BATCH_SIZE_ENV] == str(EVENT_BATCH_SIZE)
    assert EVENT_BATCH_SIZE_ENV not in os.environ
    # Dagster's own storage stores a batch event by event: batching stays off for it.
    with DagsterInstance.ephemeral() as stock, event_batches(stock):
        assert EVENT_BATCH_SIZE_ENV not in os.environ
    # A user's own setting is theirs.
    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, "7")
    with event_batches(pooled):
        assert os.environ[EVENT_BATCH_SIZE_ENV] == "7"
    assert os.environ[EVENT_BATCH_SIZE_ENV] == "7"
    pooled.dispose()
