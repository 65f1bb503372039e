"""The catalog is NautilusTrader's own: a process that imports nautilus_trader and never
hedgegrid_assets reads every kind and backtests on it; funding updates say, for every
settlement of a day, exactly the rate the input says settled there."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from decimal import Decimal

import polars as pl
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.checks.coverage import settlements
from hedgegrid_assets.partitions import partition_context, partition_key
from hedgegrid_assets_tests.conftest import DAYS, REPO, SYMBOLS

NAUTILUS_ONLY = r"""
import json, sys
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import (BacktestDataConfig, BacktestEngineConfig, BacktestRunConfig,
    BacktestVenueConfig, ImportableStrategyConfig, LoggingConfig)
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate, QuoteTick, TradeTick
from nautilus_trader.persistence.catalog import ParquetDataCatalog

path, iid = sys.argv[1], sys.argv[2]
catalog = ParquetDataCatalog(path)
out = {
    "instruments": sorted(i.id.value for i in catalog.instruments()),
    "trades": len(catalog.trade_ticks(instrument_ids=[iid])),
    "quotes": len(catalog.quote_ticks(instrument_ids=[iid])),
    "bars": len(catalog.bars(bar_types=[iid + "-1-MINUTE-LAST-INTERNAL"])),
    "mark_prices": len(catalog.query(MarkPriceUpdate, identifiers=[iid])),
    "funding_rates": len(catalog.funding_rates(instrument_ids=[iid])),
    "query_funding": [[str(u.rate), u.interval, u.next_funding_ns, u.ts_init]
                      for u in catalog.query(FundingRateUpdate, identifiers=[iid])],
}
classes = [TradeTick, QuoteTick, MarkPriceUpdate, FundingRateUpdate]
config = BacktestRunConfig(
    venues=[BacktestVenueConfig(name="BINANCE", oms_type="NETTING", account_type="MARGIN",
                                base_currency="USDT", starting_balances=["100000 USDT"])],
    data=[BacktestDataConfig(catalog_path=path, data_cls=f"{c.__module__}:{c.__name__}", instrument_id=iid)
          for c in classes],
    engine=BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), strategies=[ImportableStrategyConfig(
        strategy_path="hedgegrid_assets_tests.probe_strategy:DataProbe",
        config_path="hedgegrid_assets_tests.probe_strategy:DataProbeConfig", config={"instrument_id": iid})]),
    dispose_on_completion=False,
)
node = BacktestNode(configs=[config])
node.run()
(probe,) = node.get_engine(config.id).trader.strategies()
out["backtest"] = probe.counts
out["hedgegrid_imported"] = any(m.split(".")[0] == "hedgegrid_assets" for m in sys.modules)
node.dispose()
print(json.dumps(out))
"""


def staged(built, kind: str, symbol: str) -> list[pl.DataFrame]:
    return [pl.read_parquet(built.settings.staging_dir / kind / d.isoformat() / f"{symbol}.parquet") for d in DAYS]


def test_nautilus_alone_reads_and_backtests_every_kind(built):
    iid = "BTCUSDT-PERP.BINANCE"
    proc = subprocess.run(
        [sys.executable, "-c", NAUTILUS_ONLY, str(built.catalog), iid],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hedgegrid_imported"] is False
    assert out["instruments"] == sorted(f"{s}-PERP.BINANCE" for s in SYMBOLS)
    rows = {
        k: sum(f.height for f in staged(built, k, "BTCUSDT"))
        for k in ("trades", "quotes", "mark_prices", "funding_rates")
    }
    assert out["bars"] == sum(f.height for f in staged(built, "bars", "BTCUSDT")) > 2800
    assert all(rows.values())
    assert {k: out[k] for k in rows} == rows
    assert out["backtest"] == rows
    funding = pl.concat(staged(built, "funding_rates", "BTCUSDT"))
    assert out["query_funding"] == [
        [f"{r:.8f}", iv, n, ti]
        for r, iv, n, ti in zip(
            funding["rate"],
            funding["interval"],
            funding["next_funding_time"].dt.epoch("ns"),
            funding["ts_init"].dt.epoch("ns"),
            strict=True,
        )
    ]
    assert {iv for _, iv, _, _ in out["query_funding"]} == {480}


def settled_rates_in_raw(built, key) -> dict[int, str]:
    """Straight from the landed messages (plain json, not our parser): for each next funding
    time T, the rate `r` of the last markPrice message before T was reached."""
    (path,) = (
        built.settings.raw_dir / "sample" / key.keys_by_dimension["date"] / key.keys_by_dimension["symbol"]
    ).glob("*.gz")
    last: dict[int, str] = {}
    with gzip.open(path, "rt") as lines:
        for line in lines:
            msg = json.loads(line.split(" ", 1)[1])["data"]
            if msg.get("e") == "markPriceUpdate":  # a depth snapshot has no event type
                last[msg["T"] * 1_000_000] = msg["r"]
    return last


def test_each_settlement_has_exactly_one_last_update_with_the_settled_rate(built):
    catalog = ParquetDataCatalog(str(built.catalog))
    checked = 0
    for symbol in SYMBOLS:
        updates = catalog.query(FundingRateUpdate, identifiers=[f"{symbol}-PERP.BINANCE"])
        for day in DAYS:
            key = partition_key(day, symbol)
            part = partition_context(key, built.settings)
            settled = settled_rates_in_raw(built, key)
            for settlement in settlements(part):
                s_ns = int(settlement.timestamp()) * 1_000_000_000
                known = [u for u in updates if u.next_funding_ns == s_ns and u.ts_event < s_ns]
                assert known, f"{symbol} {settlement}: no update announces it"
                latest = max(u.ts_init for u in known)
                last = [u for u in known if u.ts_init == latest]
                assert len(last) == 1, f"{symbol} {settlement}: {len(last)} updates are the last known"
                assert Decimal(last[0].rate) == Decimal(settled[s_ns])
                assert last[0].interval == 480
                checked += 1
    assert checked == len(SYMBOLS) * len(DAYS) * 3


def test_index_price_is_kept_beside_the_mark_and_not_written(built):
    """markPrice `i` stays in the validated frame (checked against the mark), and no
    IndexPriceUpdate reaches the catalog: nautilus_trader 1.231 cannot read it back."""
    marks = pl.concat(staged(built, "mark_prices", "BTCUSDT"))
    assert marks.get_column("index_price").null_count() == 0
    assert ((marks["value"] / marks["index_price"] - 1).abs() < 0.001).all()
    assert not (built.catalog / "data" / "index_price_update").exists()
    evaluations = [
        e
        for r in built.results.values()
        for e in r.get_asset_check_evaluations()
        if e.check_name == "mark_prices_near_index"
    ]
    assert len(evaluations) == len(built.results) and all(e.passed for e in evaluations)
    assert all(e.metadata["compared"].value == 86_400 for e in evaluations)
