"""The daily schedule: once the UTC day has closed, build yesterday for every configured symbol.

At `settings.schedule_time` (UTC) each day it requests the previous day's `date|symbol`
partitions of the build job, one run per symbol, from the configured source. Each run key is
the partition key, so a tick that is evaluated twice never launches a partition twice.

Retries: the runs execute the build job, whose raw step carries a RetryPolicy (transient source
errors such as HTTP 429/5xx are retried with exponential backoff; permanent ones fail at once).
The instance (`dagster.yaml`) adds run-level retries for runs whose worker died, not for
failed steps, so a permanent source error is never retried.
"""

from __future__ import annotations

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from hedgegrid_assets.settings import Settings

DAILY_SCHEDULE = "daily_build_schedule"
# Tags on every automated run, to find them in the UI's run list.
TRIGGER_TAG = "hedgegrid/trigger"
SOURCE_TAG = "hedgegrid/source"


def default_status(settings: Settings) -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if settings.automation_running else DefaultScheduleStatus.STOPPED


def build_daily_schedule(settings: Settings, job: UnresolvedAssetJobDefinition):
    """Yesterday's partitions for every symbol, at `settings.schedule_time` UTC."""
    at = settings.schedule_time
    return build_schedule_from_partitioned_job(
        job,
        name=DAILY_SCHEDULE,
        description=(
            f"Daily at {at:%H:%M} UTC: builds the previous UTC day for every configured symbol "
            f"({', '.join(settings.symbols)}) from the '{settings.source}' source."
        ),
        # The date dimension is a UTC DailyPartitionsDefinition, so these are UTC and the tick
        # at day D requests D-1 (the last complete day).
        hour_of_day=at.hour,
        minute_of_hour=at.minute,
        default_status=default_status(settings),
        tags={TRIGGER_TAG: "schedule", SOURCE_TAG: settings.source},
    )
