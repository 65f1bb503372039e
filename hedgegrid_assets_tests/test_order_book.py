"""The order book from Tardis datasets: L2 deltas and depth-10 snapshots, record for record as
NautilusTrader 1.231's own loader makes them, written through a real Dagster run and read back
with Nautilus's catalog API; the book checks (snapshot start, never crossed) on real frames."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.tardis.book import read_book_snapshots, read_incremental_l2
from hedgegrid_assets.frames import ORDER_BOOK_DELTAS, ORDER_BOOK_DEPTH10, PartitionContext
from hedgegrid_assets.frames.book_replay import book_tops, range_max
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets_tests.book_files import write_l2, write_snapshots
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.test_csv_sources import tardis_files
from hedgegrid_assets_tests.test_jsonl_source import check_evaluations, make_truth, write_config

DAY = dt.date(2024, 1, 2)
IID = "BTCUSDT-PERP.BINANCE"


def part() -> PartitionContext:
    s = Settings()
    return PartitionContext(DAY, instrument_for("BTCUSDT", s), s.checks)


def loader() -> TardisCSVDataLoader:
    return TardisCSVDataLoader(price_precision=1, size_precision=3, instrument_id=InstrumentId.from_str(IID))


def tardis_dir(root: Path, n_deltas: int = 6_000, snapshot_levels: int = 25, **kw) -> Path:
    base = root / "tardis"
    tardis_files(base, make_truth(n_trades=40, mark_every_s=3600))
    write_l2(base / f"binance-futures_incremental_book_L2_{DAY}_BTCUSDT.csv.gz", n_deltas, levels=40, snapshots=3, **kw)
    write_snapshots(base / f"binance-futures_book_snapshot_{snapshot_levels}_{DAY}_BTCUSDT.csv.gz", 300, snapshot_levels,
                    empty_levels=2)  # fmt: skip
    return base


def reference_table(objects, tmp: Path):
    shutil.rmtree(tmp, ignore_errors=True)
    ParquetDataCatalog(str(tmp)).write_data(objects)
    (path,) = list(tmp.rglob("*.parquet"))
    return pq.read_table(path)


# -- readers against load_deltas / load_depth10 ----------------------------------------------


def test_deltas_equal_load_deltas_field_by_field(tmp_path):
    """CLEAR where each snapshot starts, ADD/UPDATE/DELETE, F_LAST per timestamp, sequence 0,
    order id 0: our Arrow table is Nautilus's write_data table of load_deltas, byte for byte."""
    path = write_l2(tmp_path / "l2.csv.gz", 20_000, levels=50, snapshots=3)
    ours = read_incremental_l2(path, part())
    theirs = loader().load_deltas(str(path), as_legacy_cython=False)
    assert ours.height == len(theirs) == 20_000 + 3  # one CLEAR per snapshot
    assert ours.get_column("action").value_counts().sort("action").rows() == [
        (1, 300), (2, ours.filter(pl.col("action") == 2).height), (3, ours.filter(pl.col("action") == 3).height), (4, 3)
    ]  # fmt: skip
    ref = reference_table(theirs, tmp_path / "ref")
    table = ORDER_BOOK_DELTAS.to_arrow(ours, part().instrument)
    assert table.schema == ref.schema and table.schema.metadata == ref.schema.metadata
    for name in ref.schema.names:
        assert table.column(name).equals(ref.column(name)), name
    # Flags as Nautilus groups batches: F_LAST exactly where ts_event changes next.
    flags = ours.get_column("flags").to_numpy()
    ts = ours.get_column("ts_event").to_numpy()
    assert ((flags & 128) != 0).tolist() == (np.append(ts[1:] != ts[:-1], True)).tolist()


def test_block_by_block_equals_the_loader(tmp_path, monkeypatch):
    """Parsed in blocks of ~4 KB (snapshots, batches and CLEARs straddling block edges): the
    same table as load_deltas's."""
    from hedgegrid_assets.formats.tardis import book as tardis_book

    monkeypatch.setattr(tardis_book, "BLOCK_BYTES", 4096)
    path = write_l2(tmp_path / "l2.csv.gz", 6_000, levels=60, snapshots=4)
    ours = read_incremental_l2(path, part())
    ref = reference_table(loader().load_deltas(str(path), as_legacy_cython=False), tmp_path / "ref")
    assert ours.n_chunks() > 50 and ours.height == ref.num_rows == 6_004
    assert ORDER_BOOK_DELTAS.to_arrow(ours, part().instrument).equals(ref)


def test_snapshot_edge_cases_match_the_loader(tmp_path):
    """A snapshot right after a snapshot (new timestamp), a snapshot inside an update timestamp,
    a snapshot level of amount 0 (a DELETE): all exactly as load_deltas."""
    rows = [
        (200, 201, "true", "bid", "42000.1", "1.5"), (200, 201, "true", "ask", "42000.2", "2.0"),
        (300, 301, "true", "bid", "42000.0", "0.3"), (300, 301, "true", "ask", "42000.4", "0.3"),
        (400, 401, "false", "bid", "42000.0", "0"), (400, 402, "true", "bid", "42001.0", "1.0"),
        (400, 402, "true", "ask", "42001.1", "0"), (400, 403, "false", "ask", "42001.1", "5"),
    ]  # fmt: skip
    start = 1_704_153_600_000_000
    text = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n" + "".join(
        f"binance-futures,BTCUSDT,{start + a},{start + b},{s},{side},{p},{q}\n" for a, b, s, side, p, q in rows
    )
    path = tmp_path / "edge.csv"
    path.write_text(text)
    ours = read_incremental_l2(path, part())
    theirs = loader().load_deltas(str(path), as_legacy_cython=True)
    got = [
        (r["action"], r["side"], f"{r['price']:.1f}", f"{r['size']:.3f}", r["flags"])
        for r in ours.iter_rows(named=True)
    ]
    want = [(int(d.action), int(d.order.side), f"{d.order.price.as_decimal():.1f}", f"{d.order.size.as_decimal():.3f}", d.flags)
            for d in theirs]  # fmt: skip
    assert got == want
    assert [a for a, *_ in got] == [4, 1, 1, 4, 1, 1, 3, 4, 1, 3, 2]


@pytest.mark.parametrize("levels", [25, 5])
def test_depth10_equals_load_depth10(tmp_path, levels):
    """Snapshot files (some rows with empty deep levels) as OrderBookDepth10: equal to
    load_depth10's objects; for 25 levels also Nautilus's own written table, byte for byte.
    (Nautilus 1.231's write_data refuses load_depth10's output when a level is absent, as in
    every book_snapshot_5 row: "Mixed metadata at row 0"; its null order has precision 0.)"""
    path = write_snapshots(tmp_path / f"s{levels}.csv.gz", 400, levels, empty_levels=2 if levels == 5 else 0)
    ours = read_book_snapshots(path, levels, part())
    theirs = loader().load_depth10(str(path), levels=levels, as_legacy_cython=True)
    assert ours.height == len(theirs) == 400
    assert [repr(o) for o in ORDER_BOOK_DEPTH10.to_nautilus(ours, part().instrument)] == [repr(t) for t in theirs]
    if levels == 25:
        ref = reference_table(theirs, tmp_path / "ref")
        table = ORDER_BOOK_DEPTH10.to_arrow(ours, part().instrument)
        assert table.schema.metadata == ref.schema.metadata
        for name in ref.schema.names:
            assert table.column(name).equals(ref.column(name)), name
    else:
        assert ours.get_column("bid_count_5").sum() == 0 and ours.get_column("bid_count_0").min() == 1


def test_bad_l2_rows_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        "binance-futures,BTCUSDT,1704153600000000,1704153600000100,true,bid,42000.0,1\n"
        "binance-futures,BTCUSDT,1704153600000000,1704153600000100,true,buy,42000.0,1\n"
    )
    with pytest.raises(SourceError, match=r"bad.csv line 3: side 'buy' is neither bid nor ask"):
        read_incremental_l2(path, part())
    path.write_text(path.read_text().replace("buy,42000.0", "bid,42x00.0"))
    with pytest.raises(SourceError, match=r"bad.csv line 3: price '42x00.0' is not a number"):
        read_incremental_l2(path, part())
    path.write_text(
        path.read_text().replace(
            "BTCUSDT,1704153600000000,1704153600000100,true,bid,42x",
            "ETHUSDT,1704153600000000,1704153600000100,true,bid,42",
        )
    )
    with pytest.raises(SourceError, match=r"line 3: symbol 'ETHUSDT', not BTCUSDT"):
        read_incremental_l2(path, part())


# -- the book rebuilt columnar -----------------------------------------------------------------


def test_range_max_equals_brute_force():
    rng = np.random.default_rng(5)
    for size in (1, 2, 3, 64, 65, 1_000):
        starts = rng.integers(0, size, 500)
        ends = np.minimum(starts + rng.integers(0, 40, 500), size)
        values = rng.random(500)
        want = np.full(size, -np.inf)
        for a, b, v in zip(starts, ends, values, strict=True):
            want[a:b] = np.maximum(want[a:b], v)
        assert (range_max(starts, ends, values, size) == want).all()


def test_book_tops_equal_nautilus_own_book(tmp_path):
    """Best bid/ask after every batch, as Nautilus's own L2 book gives them applying the same
    deltas, including one injected crossing that is counted and located."""
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    path = write_l2(tmp_path / "x.csv", 4_000, levels=30, snapshots=3, cross_at=1_500, seed=3)
    frame = read_incremental_l2(path, part())
    tops = book_tops(frame)
    book = OrderBook(InstrumentId.from_str(IID), BookType.L2_MBP)
    bids, asks = [], []
    for delta in ORDER_BOOK_DELTAS.to_nautilus(frame, part().instrument):
        book.apply_delta(delta)
        if delta.flags & 128:
            bids.append(book.best_bid_price().as_double() if book.best_bid_price() is not None else -np.inf)
            asks.append(book.best_ask_price().as_double() if book.best_ask_price() is not None else np.inf)
    assert tops.best_bid.tolist() == bids and tops.best_ask.tolist() == asks
    crossed = np.flatnonzero(tops.crossed)
    assert crossed.size == int(np.sum(np.array(bids) >= np.array(asks))) > 0
    assert tops.best_bid[crossed[0]] == 42000.5 and tops.best_bid[crossed[0]] >= tops.best_ask[crossed[0]]


# -- through Dagster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tardis_book_catalog(tmp_path_factory):
    """A Tardis day with its book, built through a real Dagster run."""
    tmp_path = tmp_path_factory.mktemp("tardis_book")
    base = tardis_dir(tmp_path, n_deltas=8_000)
    cfg = write_config(tmp_path / "t.json", {"format": "tardis", "base_path": str(base)})
    settings = make_settings(tmp_path, source="csv", source_config=cfg, symbols=["BTCUSDT"])
    key = partition_key(DAY, "BTCUSDT")
    build(settings, make_instance(tmp_path), [key])
    return tmp_path, base, settings.catalog_path


def test_tardis_book_through_dagster_reads_back_with_nautilus(tardis_book_catalog):
    tmp_path, base, catalog_path = tardis_book_catalog
    ours = ParquetDataCatalog(str(catalog_path))
    # The reference: Nautilus's own loader and writer on the same files, read back the same way
    # (a zero price is stored without its precision, so a read-back CLEAR shows 0.0 in both).
    ref = ParquetDataCatalog(str(tmp_path / "ref"))
    ref.write_data(loader().load_deltas(str(base / f"binance-futures_incremental_book_L2_{DAY}_BTCUSDT.csv.gz")))
    ref.write_data(
        loader().load_depth10(str(base / f"binance-futures_book_snapshot_25_{DAY}_BTCUSDT.csv.gz"), levels=25)
    )
    deltas = ours.order_book_deltas(instrument_ids=[IID])
    assert len(deltas) == 8_003
    assert [repr(d) for d in deltas] == [repr(d) for d in ref.order_book_deltas(instrument_ids=[IID])]
    depth = ours.order_book_depth10(instrument_ids=[IID])
    assert len(depth) == 300
    assert [repr(d) for d in depth] == [repr(d) for d in ref.order_book_depth10(instrument_ids=[IID])]


def test_a_crossed_book_fails_its_blocking_check_and_keeps_the_catalog(tmp_path):
    base = tardis_dir(tmp_path, n_deltas=3_000, cross_at=1_000)
    cfg = write_config(tmp_path / "t.json", {"format": "tardis", "base_path": str(base)})
    settings = make_settings(tmp_path, source="csv", source_config=cfg, symbols=["BTCUSDT"])
    key = partition_key(DAY, "BTCUSDT")
    (result,) = build(settings, make_instance(tmp_path), [key], raise_on_error=False).values()
    evaluations = check_evaluations(result)
    failed = {name for name, ev in evaluations.items() if not ev.passed}
    assert any("order_book_deltas" in name for name in failed), failed
    assert not (settings.catalog_path / "data" / "order_book_deltas").exists()


def test_a_backtest_over_our_deltas_fills_at_a_book_level(tardis_book_catalog):
    """A BacktestNode with an L2 book over the catalog's deltas: a limit buy at the best ask
    level fills at that level's price; the probe sees every batch Nautilus groups by F_LAST."""
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.config import (
        BacktestDataConfig,
        BacktestEngineConfig,
        BacktestRunConfig,
        BacktestVenueConfig,
        ImportableStrategyConfig,
        LoggingConfig,
    )  # fmt: skip
    from nautilus_trader.model.data import OrderBookDelta

    _, _, catalog_path = tardis_book_catalog
    config = BacktestRunConfig(
        venues=[BacktestVenueConfig(name="BINANCE", oms_type="NETTING", account_type="MARGIN", base_currency="USDT",
                                    starting_balances=["100000 USDT"], book_type="L2_MBP")],
        data=[BacktestDataConfig(catalog_path=str(catalog_path), data_cls=f"{OrderBookDelta.__module__}:OrderBookDelta",
                                 instrument_id=InstrumentId.from_str(IID))],  # a str breaks its L2 check
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            strategies=[ImportableStrategyConfig(
                strategy_path="hedgegrid_assets_tests.probe_strategy:BookFillProbe",
                config_path="hedgegrid_assets_tests.probe_strategy:BookFillProbeConfig",
                config={"instrument_id": IID, "after_batches": 50},
            )],
        ),
        dispose_on_completion=False,
    )  # fmt: skip
    node = BacktestNode(configs=[config])
    try:
        node.run()
        (probe,) = node.get_engine(config.id).trader.strategies()
        frame = pl.read_parquet(
            next((catalog_path / "data" / "order_book_deltas").rglob("*.parquet")), columns=["flags"]
        )
        assert probe.deltas == frame.height == 8_003
        assert probe.batches == frame.filter((pl.col("flags") & 128) != 0).height
        ask, ask_size, bid = probe.level
        assert bid < ask and ask_size.as_double() > 0
        (fill,) = probe.fills
        assert fill.last_px == ask and str(fill.last_qty) == "0.001"
    finally:
        node.dispose()


def test_generic_csv_reads_a_deltas_file_in_the_l2_layout(tmp_path):
    from hedgegrid_assets.errors import ConfigError
    from hedgegrid_assets.sources.csv import GenericCsvSource, from_config

    path = write_l2(tmp_path / "in" / f"{DAY}_BTCUSDT_l2.csv.gz", 2_000, levels=20)
    cfg = write_config(tmp_path / "c.json", {"base_path": str(tmp_path / "in"),
                                             "files": {"deltas": {"file_path": "{date}_{symbol}_l2.csv.gz"}}})  # fmt: skip
    source = from_config(cfg)
    frame = source.read_frame(ORDER_BOOK_DELTAS, [path], part())
    assert frame.equals(read_incremental_l2(path, part())) and frame.height == 2_002
    bad = write_config(tmp_path / "b.json", {"base_path": str(tmp_path / "in"), "files": {
        "deltas": {"file_path": "{date}_{symbol}_l2.csv.gz", "columns": {"price": "px"}}}})  # fmt: skip
    with pytest.raises(ConfigError, match="takes no column roles"):
        from_config(bad)
    assert isinstance(source, GenericCsvSource)
