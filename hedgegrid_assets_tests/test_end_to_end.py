"""Materialize through Dagster, read back with Nautilus: the catalog equals the validated frames."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from dagster import AssetKey
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.assets import INSTRUMENT_ASSET, catalog_asset_name
from hedgegrid_assets.frames import KINDS
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import ChecksSettings
from hedgegrid_assets_tests.conftest import DAYS, SYMBOLS, build, make_instance, make_settings, materializations


def frame(built, kind: str, day: dt.date, symbol: str) -> pl.DataFrame:
    return pl.read_parquet(built.settings.staging_dir / kind / day.isoformat() / f"{symbol}.parquet")


def ns(series: pl.Series) -> list[int]:
    return series.dt.epoch("ns").to_list()


def test_every_partition_succeeds_with_checks_passing(built):
    assert len(built.results) == len(DAYS) * len(SYMBOLS)
    for key, result in built.results.items():
        assert result.success, key
        evaluations = result.get_asset_check_evaluations()
        names = {e.check_name for e in evaluations}
        assert {"trades_schema", "mark_prices_schema", "funding_rates_schema", "mark_prices_near_trades"} <= names
        assert all(e.passed for e in evaluations if e.severity.value == "ERROR"), key


def test_instruments_one_version_each(built):
    catalog = ParquetDataCatalog(str(built.catalog))
    instruments = catalog.instruments()
    assert sorted(i.id.value for i in instruments) == ["BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"]
    btc = next(i for i in instruments if i.id.value == "BTCUSDT-PERP.BINANCE")
    assert (btc.price_precision, btc.size_precision) == (1, 3)
    assert str(btc.price_increment) == "0.1" and str(btc.size_increment) == "0.001"
    assert btc.ts_init == 0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_trade_ticks_equal_frames(built, symbol):
    catalog = ParquetDataCatalog(str(built.catalog))
    iid = f"{symbol}-PERP.BINANCE"
    ticks = catalog.trade_ticks(instrument_ids=[iid])
    expected = pl.concat([frame(built, "trades", d, symbol) for d in DAYS])
    assert len(ticks) == expected.height > 1000
    assert [t.price.as_double() for t in ticks] == pytest.approx(expected["price"].to_list(), abs=1e-9)
    assert [t.size.as_double() for t in ticks] == pytest.approx(expected["size"].to_list(), abs=1e-12)
    assert [t.trade_id.value for t in ticks] == expected["trade_id"].to_list()
    assert [t.ts_event for t in ticks] == ns(expected["ts_event"])
    assert [t.ts_init for t in ticks] == ns(expected["ts_init"])
    sides = {AggressorSide.BUYER: "BUYER", AggressorSide.SELLER: "SELLER"}
    assert [sides[t.aggressor_side] for t in ticks] == expected["aggressor_side"].cast(pl.String).to_list()


def test_mark_prices_and_funding_equal_frames(built):
    catalog = ParquetDataCatalog(str(built.catalog))
    iid = "ETHUSDT-PERP.BINANCE"
    marks = catalog.query(MarkPriceUpdate, identifiers=[iid])
    expected = pl.concat([frame(built, "mark_prices", d, "ETHUSDT") for d in DAYS])
    assert len(marks) == expected.height == 2 * 86_400
    assert [m.value.as_double() for m in marks] == pytest.approx(expected["value"].to_list(), abs=1e-8)
    assert [m.ts_init for m in marks] == ns(expected["ts_init"])

    rates = catalog.query(FundingRateUpdate, identifiers=[iid])
    expected = pl.concat([frame(built, "funding_rates", d, "ETHUSDT") for d in DAYS])
    assert len(rates) == expected.height > 0
    assert [float(r.rate) for r in rates] == pytest.approx(expected["rate"].to_list(), abs=1e-12)
    assert [r.next_funding_ns for r in rates] == ns(expected["next_funding_time"])
    assert [r.ts_event for r in rates] == ns(expected["ts_event"])
    # Binance settles every 8 h: each next funding time is 00/08/16 UTC.
    assert {dt.datetime.fromtimestamp(r.next_funding_ns / 1e9, dt.UTC).hour for r in rates} <= {0, 8, 16}


def test_one_file_per_kind_per_partition_with_closed_day_interval(built):
    files = sorted(p.name for p in (built.catalog / "data" / "trade_tick" / "BTCUSDT-PERP.BINANCE").iterdir())
    assert files == [
        "2024-01-01T00-00-00-000000000Z_2024-01-01T23-59-59-999999999Z.parquet",
        "2024-01-02T00-00-00-000000000Z_2024-01-02T23-59-59-999999999Z.parquet",
    ]
    for cls_dir in ("trade_tick", "mark_price_update", "funding_rate_update"):
        for symbol in SYMBOLS:
            assert len(list((built.catalog / "data" / cls_dir / f"{symbol}-PERP.BINANCE").glob("*.parquet"))) == 2


def test_materializations_carry_metadata(built):
    result = built.results["2024-01-02|BTCUSDT"]
    mats = materializations(result)
    trades = mats["trades"].metadata
    assert trades["rows"].value > 1000
    assert trades["first_ts_event"].value.startswith("2024-01-02")
    assert 0 < trades["largest_trade_gap_s"].value < 86_400
    written = mats["trades_catalog"].metadata
    # Every catalog materialization says which source and which catalog it wrote.
    assert written["source"].value == "sample" and written["catalog"].value == str(built.catalog)
    assert written["rows"].value == trades["rows"].value
    assert written["catalog_file"].value.endswith("2024-01-02T23-59-59-999999999Z.parquet")
    assert mats["raw_market_data"].metadata["bytes"].value > 0
    # The instance (temporary DAGSTER_HOME) recorded the partition's materialization.
    record = built.instance.get_latest_materialization_event(AssetKey("trades_catalog"))
    assert record is not None


def test_rematerializing_is_idempotent_and_leaves_neighbours_alone(tmp_path):
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    instance = make_instance(tmp_path)
    day1, day2 = (partition_key(d, "BTCUSDT") for d in DAYS)
    build(settings, instance, [day1, day2])
    catalog = settings.catalog_path
    neighbour = (
        catalog
        / "data"
        / "trade_tick"
        / "BTCUSDT-PERP.BINANCE"
        / ("2024-01-01T00-00-00-000000000Z_2024-01-01T23-59-59-999999999Z.parquet")
    )
    before_bytes, before_mtime = neighbour.read_bytes(), neighbour.stat().st_mtime_ns
    first = ParquetDataCatalog(str(catalog)).trade_ticks()

    build(settings, instance, [day2, day2])  # twice more

    reread = ParquetDataCatalog(str(catalog))
    again = reread.trade_ticks()
    assert len(again) == len(first)
    assert [t.trade_id.value for t in again] == [t.trade_id.value for t in first]
    assert len(reread.instruments()) == 1
    assert len(reread.query(FundingRateUpdate)) == len(ParquetDataCatalog(str(catalog)).query(FundingRateUpdate))
    assert neighbour.read_bytes() == before_bytes and neighbour.stat().st_mtime_ns == before_mtime
    leftovers = [p for p in catalog.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_failing_check_blocks_the_catalog_write(tmp_path):
    # The sample's trades arrive 1-60 ms after the event; allow 5 ms and most of them fail.
    # (Mark prices and funding arrive 2-4 ms after theirs, so those kinds pass.)
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], checks=ChecksSettings(max_receive_latency_s=0.005))
    key = partition_key(DAYS[0], "BTCUSDT")
    result = build(settings, make_instance(tmp_path), [key], raise_on_error=False)[str(key)]
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    schema = next(e for e in failed if e.check_name == "trades_schema")
    meta = schema.metadata
    assert meta["failure_count"].value > 100
    assert "ts_init - ts_event outside [-1.0s, 0.005s]" in meta["failures_by_check"].value
    assert "| ts_event |" in meta["failing_rows_sample"].value
    # A partition enters the catalog whole or not at all: the failing trades keep out the
    # (valid) mark prices and funding rates of the same partition too.
    data = settings.catalog_path / "data"
    for kind in ("trade_tick", "mark_price_update", "funding_rate_update"):
        assert not list((data / kind).rglob("*.parquet")), kind
    mats = materializations(result)
    assert not any(catalog_asset_name(k) in mats for k in KINDS.values()) and INSTRUMENT_ASSET in mats


def test_catalog_report_says_what_is_complete(built):
    result = built.results["2024-01-02|BTCUSDT"]
    mats = materializations(result)
    report = mats["catalog_report"].metadata
    assert report["rows"].value == {
        k: mats[f"{k}_catalog"].metadata["rows"].value
        for k in ("trades", "quotes", "bars", "mark_prices", "funding_rates", "order_book_deltas")
    }
    assert report["instrument"].value is True and report["funding_settlements_covered"].value is True
    gap_s = mats["trades"].metadata["largest_trade_gap_s"].value
    assert report["largest_trade_gap_minutes"].value == pytest.approx(gap_s / 60, abs=1e-3)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "partition_complete")
    assert check.severity.value == "WARN"
    assert check.passed == (gap_s / 60 <= built.settings.checks.max_trade_gap_minutes)


def test_catalog_report_flags_missing_kinds(tmp_path):
    from hedgegrid_assets.definitions import build_definitions, build_job
    from hedgegrid_assets.frames import KINDS_BY_CLI_NAME
    from hedgegrid_assets_tests.conftest import QUIET

    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    job = build_job(settings, [KINDS_BY_CLI_NAME["trades"]], name="trades_only")
    result = (
        build_definitions(settings, jobs=[job])
        .resolve_job_def("trades_only")
        .execute_in_process(
            partition_key=partition_key(DAYS[0], "BTCUSDT"), instance=make_instance(tmp_path), run_config=QUIET
        )
    )
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "partition_complete")
    assert not check.passed
    assert "no mark_prices file" in check.description and "no funding_rates file" in check.description
