"""What `make install` does to a new local instance besides copying its `dagster.yaml`.

The run-retry daemon (`run_retries:` in the instance, Dagster's `EventLogConsumerDaemon`) keeps
a cursor per event type it reads (run failures, run successes). A brand-new instance has none,
so its first `make ui` logs "No cursor for event type ..., ignoring older events" and the daemon
starts from the newest event. Seeding those cursors at install, at the newest event, is the same
start without the warning: a fresh `make ui` says nothing (issue 15). The pools' limits are set
by the Makefile through `dagster instance concurrency set`.

    DAGSTER_HOME=.dagster .venv/bin/python -m hedgegrid_assets.automation.instance_setup
"""

from __future__ import annotations


def seed_run_retry_cursors(instance) -> dict[str, str]:
    """Set each missing run-retry cursor to the newest event; the cursors it set."""
    from dagster._daemon.auto_run_reexecution.event_log_consumer import DAGSTER_EVENT_TYPES, _create_cursor_key

    keys = {_create_cursor_key(event_type) for event_type in DAGSTER_EVENT_TYPES}
    present = instance.daemon_cursor_storage.get_cursor_values(keys)
    newest = str(instance.event_log_storage.get_maximum_record_id() or 0)
    missing = {key: newest for key in sorted(keys) if present.get(key) is None}
    if missing:
        instance.daemon_cursor_storage.set_cursor_values(missing)
    return missing


def main() -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        seeded = seed_run_retry_cursors(instance)
    print(f"run-retry daemon cursors: {len(seeded)} set" if seeded else "run-retry daemon cursors: already set")


if __name__ == "__main__":
    main()
