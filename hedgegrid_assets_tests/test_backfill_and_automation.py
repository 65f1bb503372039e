"""Batched backfills (one run for a rectangle of dates x symbols) and eager automation."""

from __future__ import annotations

import polars as pl
from dagster import AssetCheckKey, AssetKey, DagsterInstance, evaluate_automation_conditions, materialize
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.assets import RAW_ASSET, build_assets
from hedgegrid_assets.definitions import build_definitions, build_resources
from hedgegrid_assets_tests.conftest import make_instance, make_settings
from hedgegrid_assets_tests.test_cli import dagster_materialize


def test_partition_range_is_one_run_with_per_partition_checks(tmp_path):
    dagster_materialize(tmp_path, "--partition-range", "2024-01-01|BTCUSDT...2024-01-03|ETHUSDT")
    instance = DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    assert len(instance.get_runs()) == 1
    catalog = ParquetDataCatalog(str(tmp_path / "d" / "catalog"))
    ticks = catalog.trade_ticks()
    staged = pl.read_parquet(tmp_path / "d" / "staging" / "trades" / "*" / "*.parquet")
    assert len(ticks) == staged.height
    days = {t.ts_init // 86_400_000_000_000 for t in ticks}
    assert len(days) == 3 and len({t.instrument_id for t in ticks}) == 2
    # Each partition has its own check record, as in a single-partition run.
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey("trades"), "trades_schema"), limit=50
    )
    partitions = {r.event.asset_check_evaluation.partition for r in history if r.event}
    assert {"2024-01-01|BTCUSDT", "2024-01-03|ETHUSDT"} <= partitions and len(partitions - {None}) == 6
    # Every partition of every catalog asset is recorded as materialized.
    for asset in ("trades_catalog", "mark_prices_catalog", "funding_rates_catalog"):
        assert len(instance.get_materialized_partitions(AssetKey(asset))) == 6
    # ...each with its own values, in the shape a single-partition run gives (no batch blob).
    for asset in ("raw_market_data", "trades", "trades_catalog", "catalog_report"):
        events = instance.fetch_materializations(AssetKey(asset), limit=20).records
        assert len(events) == 6
        for record in events:
            mat = record.asset_materialization
            assert "by_partition" not in mat.metadata and "partitions" not in mat.metadata
        if asset == "trades_catalog":
            rows = {r.asset_materialization.partition: r.asset_materialization.metadata["rows"].value for r in events}
            files = {
                r.asset_materialization.partition: r.asset_materialization.metadata["catalog_file"].value
                for r in events
            }
            assert sum(rows.values()) == staged.height and len(set(rows.values())) > 1
            assert all(k.split("|")[0] in files[k] and k.split("|")[1] in files[k] for k in files)


def test_catalog_follows_a_hand_landed_raw_partition(tmp_path):
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    instance = make_instance(tmp_path)
    defs = build_definitions(settings)
    key = "2024-01-02|BTCUSDT"
    # Nothing landed: nothing to follow.
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    # Land the raw partition by hand (as the sensor or a user would)...
    materialize(
        build_assets(settings),
        selection=[RAW_ASSET],
        partition_key=key,
        instance=instance,
        resources=build_resources(settings),
    )
    # ...and everything downstream follows in one request (frames, then the catalog in the same
    # run, where the frames' blocking checks still stop a bad write).
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    downstream = [
        "trades",
        "mark_prices",
        "funding_rates",
        "instrument_catalog",
        "trades_catalog",
        "mark_prices_catalog",
        "funding_rates_catalog",
    ]
    assert all(second.get_requested_partitions(AssetKey(a)) == {key} for a in downstream)
    assert second.get_num_requested(AssetKey(RAW_ASSET)) == 0
    # Handled: the next evaluation requests nothing again.
    third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.total_requested == 0
