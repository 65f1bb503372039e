"""1-minute bars from trades equal Nautilus's own aggregation of the same trades.

A BacktestEngine (right-open time bars [t, t+1m), its defaults otherwise) is fed the partition's
validated trades and aggregates BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL itself; every bar
it builds equals ours for that minute, field by field. Our bars go through the catalog and
read back with Nautilus.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
        engine.add_venue(
            Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, [Money(100_000, USDT)], base_currency=USDT
        )
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
    ours = [
        b
        for b in ParquetDataCatalog(str(built.catalog)).bars(bar_types=[BAR_TYPE])
        if part.start_ns < b.ts_init <= part.end_ns
    ]
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


def test_binance_klines_and_mark_price_klines_become_external_bars(tmp_path):
    """A Binance public data day with klines/1m beside markPriceKlines/1m (both published as
    SYMBOL-1m-DATE.zip): LAST-EXTERNAL and MARK-EXTERNAL bars, read back with Nautilus."""
    from hedgegrid_assets.partitions import partition_key
    from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
    from hedgegrid_assets_tests.test_csv_sources import binance_files, csv_text, sha_file, write_packed
    from hedgegrid_assets_tests.test_jsonl_source import make_truth, write_config

    truth = make_truth(n_trades=60, mark_every_s=600)
    site = tmp_path / "bv"
    marks = binance_files(
        site, truth, funding_settlements=[(truth.start_ms + h * 3_600_000, "0.0001") for h in (8, 16, 24)]
    )
    klines = [[truth.start_ms + 60_000 * k, f"{42000 + k}.0", f"{42001 + k}.5", f"{41999 + k}.0", f"{42000 + k}.5",
               f"{k % 7}.{k % 1000:03d}", truth.start_ms + 60_000 * k + 59_999, 0, 10, 0, 0, 0] for k in range(1440)]  # fmt: skip
    head = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
            "taker_buy_volume", "taker_buy_quote_volume", "ignore"]  # fmt: skip
    sha_file(
        write_packed(site / "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-02.zip", csv_text(head, klines))
    )
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": str(site)})
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], source="csv", source_config=cfg)
    key = partition_key(dt.date(2024, 1, 2), "BTCUSDT")
    result = build(settings, make_instance(tmp_path), [key])[str(key)]
    assert result.success
    catalog = ParquetDataCatalog(str(settings.catalog_path))
    ext = catalog.bars(bar_types=["BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    assert [
        (b.ts_event, b.ts_init, str(b.open), str(b.high), str(b.low), str(b.close), str(b.volume)) for b in ext
    ] == [
        (
            k[0] * 1_000_000,
            (k[0] + 60_000) * 1_000_000,
            k[1][:-2] + ".0",
            k[2],
            k[3][:-2] + ".0",
            k[4],
            f"{float(k[5]):.3f}",
        )
        for k in klines
    ]
    mark = catalog.bars(bar_types=["BTCUSDT-PERP.BINANCE-1-MINUTE-MARK-EXTERNAL"])
    assert len(mark) == 1440 and [b.close.as_decimal() for b in mark] == [Decimal(k[4]) for k in marks]
    assert {b.close.precision for b in mark} == {8}
    # Both checksums verified, each against its own file.
    landed = settings.raw_dir / "csv" / "2024-01-02" / "BTCUSDT"
    assert {"BTCUSDT-klines-1m-2024-01-02.zip", "BTCUSDT-1m-2024-01-02.zip"} <= {p.name for p in landed.iterdir()}
