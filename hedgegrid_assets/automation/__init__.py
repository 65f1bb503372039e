"""Running the graph unattended: the daily schedule and the landing-folder file-drop sensor.

Both target the build job (raw -> frames -> catalog of one date|symbol, checks included) and
are registered by `definitions.build_definitions`. They start STOPPED unless the
`automation_running` setting is true; turn them on in the UI (Automation) or with
`dagster schedule start` / `dagster sensor start`.
"""

from hedgegrid_assets.automation.schedules import DAILY_SCHEDULE, build_daily_schedule
from hedgegrid_assets.automation.sensors import FILE_DROP_SENSOR, build_file_drop_sensor

__all__ = ["DAILY_SCHEDULE", "FILE_DROP_SENSOR", "build_daily_schedule", "build_file_drop_sensor"]
