"""Which source class serves `settings.source`; each entry builds the configured resource."""

from __future__ import annotations

from collections.abc import Callable

from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import MarketDataSource


def _sample(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.sample import SampleSource

    return SampleSource(trades_per_day=settings.sample.trades_per_day, seed=settings.sample.seed)


def _tardis(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.tardis import from_settings

    return from_settings(settings.tardis)


def _csv(settings: Settings) -> MarketDataSource:
    """The CSV source for the config's `format`: generic (default), tardis or binance. A broken
    config fails here, when the source is built, not mid-run."""
    from hedgegrid_assets.errors import ConfigError
    from hedgegrid_assets.landing.source_config import config_path_from_settings, load_config

    path = config_path_from_settings(settings)
    fmt = load_config(path, require_files=False).format
    if fmt in ("generic", "csv"):
        from hedgegrid_assets.sources.csv import from_config

        return from_config(path)  # its files, column roles and timestamp settings checked now
    if fmt == "tardis":
        from hedgegrid_assets.sources.tardis_datasets import TardisCsvSource

        return TardisCsvSource(config_path=str(path))
    if fmt in ("binance", "binance_vision", "data.binance.vision"):
        from hedgegrid_assets.sources.binance import BinanceVisionSource

        return BinanceVisionSource(config_path=str(path))
    raise ConfigError(f"source config {path}: unknown format {fmt!r}; use generic, tardis or binance")


def _jsonl(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.jsonl import from_settings

    return from_settings(settings)


def _tardis_datasets(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.tardis_datasets import from_settings

    return from_settings(settings)


def _binance(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.binance import from_settings

    return from_settings(settings)


SOURCES: dict[str, Callable[[Settings], MarketDataSource]] = {
    "sample": _sample,
    "tardis": _tardis,
    "tardis-datasets": _tardis_datasets,
    "binance": _binance,
    "csv": _csv,
    "jsonl": _jsonl,
}


# Vendors whose downloads share a Dagster pool (concurrency limit): source -> pool.
POOLS = {"tardis": "tardis", "tardis-datasets": "tardis", "binance": "binance"}


def build_source(settings: Settings) -> MarketDataSource:
    try:
        factory = SOURCES[settings.source]
    except KeyError:
        raise ValueError(f"source '{settings.source}' is not available; choose from {', '.join(SOURCES)}") from None
    return factory(settings)
