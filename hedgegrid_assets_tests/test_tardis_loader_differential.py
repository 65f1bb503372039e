"""The same Tardis CSVs through our pipeline give exactly what Nautilus's own
TardisCSVDataLoader gives: trades (price, size, aggressor side, trade id, ts_event, ts_init)
and funding rates (rate, next funding time, timestamps)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import numpy as np
import polars as pl
from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets_tests.conftest import DAYS, build, make_instance, make_settings
from hedgegrid_assets_tests.test_catalog_writer import record

DAY = DAYS[1]
DAY_US = 1_704_153_600_000_000  # 2024-01-02 00:00 UTC


def write_tardis_day(folder, n: int = 20_000, seed: int = 4) -> None:
    rng = np.random.default_rng(seed)
    ts = DAY_US + np.sort(rng.integers(0, 86_399_000_000, n))
    local = ts + rng.integers(500, 40_000, n)
    ticks = 420_000 + np.cumsum(rng.choice([-3, -1, 0, 1, 2], n))
    trades = pl.DataFrame(
        {
            "exchange": ["binance-futures"] * n,
            "symbol": ["BTCUSDT"] * n,
            "timestamp": ts,
            "local_timestamp": local,
            "id": np.arange(4_000_000_000, 4_000_000_000 + n),
            "side": rng.choice(["buy", "sell", "unknown"], n, p=[0.49, 0.49, 0.02]),
            "price": pl.Series(ticks).cast(pl.String).str.slice(0, 5) + "." + pl.Series(ticks % 10).cast(pl.String),
            "amount": pl.Series(rng.integers(1, 20_000, n) / 1000).round(3),
        }
    ).sort("local_timestamp", maintain_order=True)
    with gzip.open(folder / "binance-futures_trades_2024-01-02_BTCUSDT.csv.gz", "wb") as out:
        trades.write_csv(out)
    header = "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price"
    rows = [
        f"binance-futures,BTCUSDT,{DAY_US + h * 3_600_000_000},{DAY_US + h * 3_600_000_000 + 900},"
        f"{DAY_US + (h // 8 + 1) * 8 * 3_600_000_000},0.0001,0.0001,1000,42000.1,42000.0,42000.05"
        for h in range(24)
    ]
    with gzip.open(folder / "binance-futures_derivative_ticker_2024-01-02_BTCUSDT.csv.gz", "wt") as out:
        out.write("\n".join([header, *rows]) + "\n")


def test_same_ticks_as_nautilus_tardis_loader(tmp_path):
    folder = tmp_path / "tardis"
    folder.mkdir()
    write_tardis_day(folder)
    config = tmp_path / "tardis.json"
    config.write_text(json.dumps({"format": "tardis", "base_path": str(folder)}))
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], source="csv", source_config=config)
    result = build(settings, make_instance(tmp_path), [partition_key(DAY, "BTCUSDT")])
    assert all(r.success for r in result.values())

    ours = ParquetDataCatalog(str(settings.catalog_path)).trade_ticks()
    loader = TardisCSVDataLoader(
        price_precision=1, size_precision=3, instrument_id=InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    )
    theirs = loader.load_trades(str(folder / "binance-futures_trades_2024-01-02_BTCUSDT.csv.gz"))
    assert len(ours) == len(theirs) == 20_000
    assert [record(t) for t in ours] == [record(t) for t in theirs]
    sides = {int(t.aggressor_side) for t in ours}
    assert sides == {0, 1, 2}  # NO_AGGRESSOR for 'unknown', BUYER for 'buy', SELLER for 'sell'


def test_same_funding_as_nautilus_tardis_loader_plus_the_interval(tmp_path):
    """derivative_ticker -> FundingRateUpdate: every update of ours is Nautilus's own (rate,
    next_funding_ns, ts_event, ts_init) at the same row; we keep only the rows where rate or next
    funding time change (Nautilus repeats every ticker row), and fill `interval`, which
    Nautilus's loader leaves empty."""
    folder = tmp_path / "tardis"
    folder.mkdir()
    write_tardis_day(folder, n=200)
    hour = 3_600_000_000
    rates = ["0.0001", "0.0001", "0.00012345", "-0.00003", "-0.00003", "0.0001"]
    rows = [
        f"binance-futures,BTCUSDT,{DAY_US + h * hour},{DAY_US + h * hour + 900},{DAY_US + (h // 8 + 1) * 8 * hour},"
        f"{rates[h % len(rates)]},{rates[h % len(rates)]},1000,42000.1,42000.0,42000.05"
        for h in range(24)
    ]
    ticker = folder / "binance-futures_derivative_ticker_2024-01-02_BTCUSDT.csv.gz"
    with gzip.open(ticker, "rt") as f:
        header = f.readline().strip()
    with gzip.open(ticker, "wt") as out:
        out.write("\n".join([header, *rows]) + "\n")
    config = tmp_path / "tardis.json"
    config.write_text(json.dumps({"format": "tardis", "base_path": str(folder)}))
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], source="csv", source_config=config)
    build(settings, make_instance(tmp_path), [partition_key(DAY, "BTCUSDT")])

    iid = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    ours = ParquetDataCatalog(str(settings.catalog_path)).query(FundingRateUpdate, identifiers=[iid.value])
    theirs = TardisCSVDataLoader(instrument_id=iid).load_funding_rates(str(ticker))
    assert len(theirs) == 24 and {u.interval for u in theirs} == {None}

    def fields(u) -> tuple:
        return (u.instrument_id.value, Decimal(u.rate), u.next_funding_ns, u.ts_event, u.ts_init)

    changes = [u for i, u in enumerate(theirs) if i == 0 or fields(u)[1:3] != fields(theirs[i - 1])[1:3]]
    assert [fields(u) for u in ours] == [fields(u) for u in changes]
    assert len(ours) == 14 and {u.interval for u in ours} == {480}  # 13 rate changes + T moving at 16:00
