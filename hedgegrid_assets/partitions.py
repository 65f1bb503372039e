"""The date|symbol partitions every asset shares."""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition, MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from hedgegrid_assets.frames import PartitionContext
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.names import checked
from hedgegrid_assets.settings import Settings


def partitions_def(settings: Settings) -> MultiPartitionsDefinition:
    return partitions_def_for(settings.start_date, settings.symbols)


def partitions_def_for(start_date: dt.date, symbols: list[str]) -> MultiPartitionsDefinition:
    # Dimension names sort, so keys read "2024-01-02|BTCUSDT" (date first).
    return MultiPartitionsDefinition(
        {
            "date": DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC"),
            "symbol": StaticPartitionsDefinition(list(symbols)),
        }
    )


def partition_key(day: dt.date, symbol: str) -> MultiPartitionKey:
    return MultiPartitionKey({"date": day.isoformat(), "symbol": symbol})


def split_key(key: str | MultiPartitionKey) -> tuple[dt.date, str]:
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
        return dt.date.fromisoformat(dims["date"]), checked("symbol", dims["symbol"])
    day, _, symbol = str(key).partition("|")
    try:
        return dt.date.fromisoformat(day), checked("symbol", symbol)
    except ValueError as err:  # a key typed or sent by hand: say which and why
        raise type(err)(f"partition key {str(key)!r} is not DATE|SYMBOL: {err}") from None


def partition_context(key: str | MultiPartitionKey, settings: Settings) -> PartitionContext:
    day, symbol = split_key(key)
    return PartitionContext(day=day, instrument=instrument_for(symbol, settings), checks=settings.checks)
