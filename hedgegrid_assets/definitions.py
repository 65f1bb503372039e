"""The Dagster code location: assets, checks, IO managers and the source, from settings."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from hedgegrid_assets.assets import build_assets
from hedgegrid_assets.catalog.io_manager import NautilusCatalogIOManager
from hedgegrid_assets.frames.staging import FrameIOManager
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import MarketDataSource
from hedgegrid_assets.sources.raw_zone import RawZoneIOManager
from hedgegrid_assets.sources.sample import SampleSource


def build_source(settings: Settings) -> MarketDataSource:
    if settings.source == "sample":
        return SampleSource(trades_per_day=settings.sample.trades_per_day, seed=settings.sample.seed)
    raise NotImplementedError(f"source '{settings.source}' is not available yet; use 'sample'")


def build_resources(settings: Settings) -> dict:
    return {
        "source": build_source(settings),
        "raw_io_manager": RawZoneIOManager(raw_dir=str(settings.raw_dir)),
        "frame_io_manager": FrameIOManager(staging_dir=str(settings.staging_dir)),
        "catalog_io_manager": NautilusCatalogIOManager(catalog_dir=str(settings.catalog_path)),
    }


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=build_assets(settings),
        resources=build_resources(settings),
        # One process per run: per-step subprocesses cost seconds on small partitions.
        executor=in_process_executor,
    )
