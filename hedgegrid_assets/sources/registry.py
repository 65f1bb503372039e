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
    from hedgegrid_assets.sources.csv_generic import from_settings

    return from_settings(settings)


def _jsonl(settings: Settings) -> MarketDataSource:
    from hedgegrid_assets.sources.jsonl import from_settings

    return from_settings(settings)


SOURCES: dict[str, Callable[[Settings], MarketDataSource]] = {
    "sample": _sample,
    "tardis": _tardis,
    "csv": _csv,
    "jsonl": _jsonl,
}


def build_source(settings: Settings) -> MarketDataSource:
    try:
        factory = SOURCES[settings.source]
    except KeyError:
        raise ValueError(f"source '{settings.source}' is not available; choose from {', '.join(SOURCES)}") from None
    return factory(settings)
