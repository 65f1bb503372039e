"""1-minute bars from trades equal Nautilus's own aggregation of the same trades.

A BacktestEngine (right-open time bars [t, t+1m), its defaults otherwise) is fed the partition's
validated trades and aggregates BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL itself; every bar
it builds equals ours for that minute, field by field. Our bars go through the catalog and
read back with Nautilus.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import DataEngineConfig, LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.checks import coverage, quarantine
from hedgegrid_assets.frames import BARS, TRADES
from hedgegrid_assets.frames.bars import from_trades
from hedgegrid_assets.partitions import partition_context
from hedgegrid_assets.settings import Settings
from hedgegrid_assets_tests.probe_strategy import BarProbe, BarProbeConfig

KEY = "2024-01-02|BTCUSDT"
BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL"


@pytest.fixture(scope="module")
def trades(built) -> pl.DataFrame:
    return pl.read_parquet(built.settings.staging_dir / "trades" / "2024-01-02" / "BTCUSDT.parquet")


def nautilus_bars(trades: pl.DataFrame, part) -> list:
    engine = BacktestEngine(
        BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            data_engine=DataEngineConfig(time_bars_interval_type="right-open"),
        )
    )
    try:
        engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, [Money(100_000, USDT)], base_currency=USDT)
        engine.add_instrument(part.instrument.nautilus)
        engine.add_data(TRADES.to_nautilus(trades, part.instrument))
        probe = BarProbe(BarProbeConfig(bar_type=BAR_TYPE))
        engine.add_strategy(probe)
        engine.run(end=part.end)
        return list(probe.bars)
    finally:
        engine.dispose()


def as_rows(bars) -> list[tuple]:
    return [(b.ts_event, b.ts_init, str(b.open), str(b.high), str(b.low), str(b.close), str(b.volume)) for b in bars]


def test_bars_from_trades_equal_nautilus_aggregation(built, trades):
    part = partition_context(KEY, built.settings)
    theirs = nautilus_bars(trades, part)
    ours = [b for b in ParquetDataCatalog(str(built.catalog)).bars(bar_types=[BAR_TYPE]) if part.start_ns < b.ts_init <= part.end_ns]
    assert len(ours) == 1440 and len(theirs) >= 1400  # the engine stops at its last timer
    by_open = {row[0]: row for row in as_rows(ours)}
    assert [by_open[row[0]] for row in as_rows(theirs)] == as_rows(theirs)
    assert {str(b.bar_type) for b in ours} == {BAR_TYPE}
    # ts_event the minute's open, ts_init its close (Nautilus files and queries by ts_init).
    assert ours[0].ts_event == part.start_ns and ours[-1].ts_init == part.end_ns


def test_a_quiet_minute_repeats_the_close_and_is_reported(trades):
    part = partition_context(KEY, Settings())
    minutes = trades.get_column("ts_event").dt.truncate("1m")
    busy = trades.filter(minutes != minutes.unique().sort()[100])  # one minute without trades
    bars = from_trades(busy, part)
    quiet = bars.filter(pl.col("volume") == 0)
    assert quiet.height >= 1
    row = bars.with_row_index().filter(pl.col("volume") == 0).row(0, named=True)
    before = bars.row(row["index"] - 1, named=True)
    assert row["open"] == row["high"] == row["low"] == row["close"] == before["close"]
    check = coverage.bar_minutes(bars, part)
    assert check.passed and check.metadata["minutes_without_trades"].value == quiet.height
    # Without the first hour of trades, its minutes have no bar (no close to repeat yet).
    late = trades.filter(pl.col("ts_event") >= part.start + dt.timedelta(hours=1))
    check = coverage.bar_minutes(from_trades(late, part), part)
    assert not check.passed and check.metadata["missing_minutes"].value >= 60
    assert check.metadata["first_missing"].value[0] == "00:00"


def test_inconsistent_bars_fail_the_schema_check():
    from hedgegrid_assets.checks.validation import run_schema

    part = partition_context(KEY, Settings())
    t = [part.start + dt.timedelta(minutes=m) for m in (1, 2)]
    bars = BARS.conform(pl.DataFrame({"ts_event": t, "ts_init": [x + dt.timedelta(minutes=1) for x in t], "open": [42000.0, 42000.0], "high": [42001.0, 41999.0],
                                      "low": [41999.0, 41998.0], "close": [42000.5, 41998.5], "volume": [1.0, 2.0]}))  # fmt: skip
    good, q = quarantine.split(BARS, bars, part)
    result = run_schema(BARS, good, part, extra_metadata={}, quarantined=q.counts)
    assert not result.passed and "low <= open, close <= high" in result.description
