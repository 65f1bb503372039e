"""The Dagster code location from settings: assets and checks, jobs, schedule, sensor, IO managers, source."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from dagster import (
    AssetSelection,
    BetaWarning,
    Definitions,
    PreviewWarning,
    define_asset_job,
    in_process_executor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from hedgegrid_assets import object_zones
from hedgegrid_assets.assets import INSTRUMENT_ASSET, RAW_ASSET, REPORT_ASSET, build_assets, catalog_asset_name
from hedgegrid_assets.automation import build_daily_schedule, build_file_drop_sensor
from hedgegrid_assets.catalog.io_manager import NautilusCatalogIOManager
from hedgegrid_assets.frames import KINDS, MARK_PRICES, TRADES, DataKind
from hedgegrid_assets.frames.staging import FrameIOManager, StagedFrameRefs
from hedgegrid_assets.landing.raw_zone import RawZoneIOManager
from hedgegrid_assets.locks import PartitionLock
from hedgegrid_assets.reports.coverage_asset import coverage_asset
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.registry import build_source


def build_resources(settings: Settings) -> dict:
    # Zones in object storage (s3:// catalog_dir / data_dir) replace their disk resources.
    return _disk_resources(settings) | object_zones.resources(settings)


def _disk_resources(settings: Settings) -> dict:
    return {
        "source": build_source(settings),
        "raw_io_manager": RawZoneIOManager(raw_dir=str(settings.raw_dir)),
        "frame_io_manager": FrameIOManager(staging_dir=str(settings.staging_dir)),
        "staged_frames": StagedFrameRefs(staging_dir=str(settings.staging_dir)),
        "partition_lock": PartitionLock(
            locks_dir=str(settings.locks_dir),
            catalog_dir=str(settings.catalog_path),
            wait_seconds=settings.lock_wait_seconds,
            start_date=settings.start_date.isoformat(),
            symbols=list(settings.symbols),
        ),
        "catalog_io_manager": NautilusCatalogIOManager(
            catalog_dir=str(settings.catalog_path), writer=settings.catalog_writer, allow_empty=settings.allow_empty
        ),
    }


# Partitioned asset checks are "preview" in Dagster 1.13 but are what keeps a check from
# loading every partition (dagster issue 27747); we rely on them knowingly.
# Same for single-run backfill policies (beta), which keep backfill overhead low.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

BUILD_JOB = "build_partition"


def build_job(settings: Settings, kinds: Iterable[DataKind] = KINDS.values(), name: str = BUILD_JOB):
    """A job that builds the chosen kinds of one date|symbol partition, checks included."""
    kinds = list(kinds)
    frames = [k.name for k in kinds]
    needs = {TRADES.name} if MARK_PRICES in kinds else set()  # marks are checked against the trades frame
    needs |= {k.derived[0].name for k in kinds if k.derived}  # bars are made from it
    frames += sorted(needs - set(frames))
    names = [RAW_ASSET, INSTRUMENT_ASSET, *frames, *[catalog_asset_name(k) for k in kinds], REPORT_ASSET]
    return define_asset_job(name, selection=AssetSelection.assets(*names), description="Raw -> frames -> catalog")


def build_definitions(settings: Settings, jobs: Iterable[UnresolvedAssetJobDefinition] = ()) -> Definitions:
    build = build_job(settings)
    return Definitions(
        assets=[*build_assets(settings), coverage_asset(settings)],  # + the coverage picture
        jobs=[build, *jobs],
        # Daily schedule for yesterday's partitions and the landing-folder file-drop sensor.
        schedules=[build_daily_schedule(settings, build)],
        sensors=[build_file_drop_sensor(settings, build)],
        resources=build_resources(settings),
        # One process per run: per-step subprocesses cost seconds on small partitions.
        executor=in_process_executor,
    )
