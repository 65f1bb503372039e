"""The direct Arrow writer against Nautilus's own write_data: identical files, identical objects.

This is the guard against format drift: if an upgrade of nautilus_trader changes the schema,
the fixed-point layout, the metadata or the file naming, these tests fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import Bar, MarkPriceUpdate, OrderBookDelta, QuoteTick, TradeTick
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.catalog import writer
from hedgegrid_assets.catalog.writer import CatalogPartition, partition_path, write_partition
from hedgegrid_assets.frames import FUNDING_RATES, KINDS, MARK_PRICES, TRADES, PartitionContext
from hedgegrid_assets.frames.trades import AGGRESSOR_SIDE
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.settings import Settings
from hedgegrid_assets_tests.conftest import DAYS

DAY = DAYS[1]


def record(obj) -> tuple:
    """Every field of a Nautilus data object, raw fixed-point values included."""
    if isinstance(obj, TradeTick):
        return (
            obj.instrument_id.value,
            obj.price.raw,
            obj.price.precision,
            obj.size.raw,
            obj.size.precision,
            int(obj.aggressor_side),
            obj.trade_id.value,
            obj.ts_event,
            obj.ts_init,
        )
    if isinstance(obj, QuoteTick):
        return (obj.instrument_id.value, obj.bid_price.raw, obj.ask_price.raw, obj.bid_price.precision, obj.bid_size.raw,
                obj.ask_size.raw, obj.bid_size.precision, obj.ts_event, obj.ts_init)  # fmt: skip
    if isinstance(obj, Bar):
        return (str(obj.bar_type), obj.open.raw, obj.high.raw, obj.low.raw, obj.close.raw, obj.open.precision,
                obj.volume.raw, obj.volume.precision, obj.ts_event, obj.ts_init)  # fmt: skip
    if isinstance(obj, OrderBookDelta):
        o = obj.order
        return (obj.instrument_id.value, int(obj.action), int(o.side), o.price.raw, o.price.precision, o.size.raw,
                o.size.precision, o.order_id, obj.flags, obj.sequence, obj.ts_event, obj.ts_init)  # fmt: skip
    if isinstance(obj, MarkPriceUpdate):
        return (obj.instrument_id.value, obj.value.raw, obj.value.precision, obj.ts_event, obj.ts_init)
    # FundingRateUpdate: the rate compared as a number ("1E-8" from Nautilus's str(Decimal) is
    # our "0.00000001"), every other field as is.
    return (obj.instrument_id.value, Decimal(obj.rate), obj.interval, obj.next_funding_ns, obj.ts_event, obj.ts_init)


def read_back(root, kind, part) -> list:
    catalog = ParquetDataCatalog(str(root))
    return catalog.query(kind.nautilus_cls, identifiers=[kind.catalog_id(part.instrument)])


def both_ways(tmp_path, kind, part, frame):
    item = CatalogPartition(kind, part, frame)
    fast = write_partition(tmp_path / "arrow", item, "arrow")
    ref = write_partition(tmp_path / "nautilus", item, "nautilus")
    return fast, ref


def part_for(symbol: str, day: dt.date = DAY) -> PartitionContext:
    s = Settings()
    return PartitionContext(day, instrument_for(symbol, s), s.checks)


# Depth-10 snapshots are not in the sample (Tardis book_snapshot files only): test_order_book.py.
IN_SAMPLE = [k for k in KINDS.values() if k.name != "order_book_depth10"]


@pytest.mark.parametrize("kind", IN_SAMPLE, ids=[k.name for k in IN_SAMPLE])
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_sample_partition_identical_both_ways(built, tmp_path, kind, symbol):
    part = part_for(symbol)
    # Binance's own klines (exchange_bars, mark_bars) are not in the sample: its bars stand in.
    staged = kind.name if kind.name not in ("exchange_bars", "mark_bars") else "bars"
    frame = pl.read_parquet(built.settings.staging_dir / staged / DAY.isoformat() / f"{symbol}.parquet")
    fast, ref = both_ways(tmp_path, kind, part, frame)
    assert fast.rows == ref.rows == frame.height > 0
    # Same name relative to the catalog root, same schema and metadata, same columns.
    assert fast.path.relative_to(tmp_path / "arrow") == ref.path.relative_to(tmp_path / "nautilus")
    ours, theirs = pq.read_table(fast.path), pq.read_table(ref.path)
    assert ours.schema.equals(theirs.schema, check_metadata=True)
    assert ours.equals(theirs)
    # And Nautilus reads back the same objects, every field of every record.
    a, b = read_back(tmp_path / "arrow", kind, part), read_back(tmp_path / "nautilus", kind, part)
    assert len(a) == len(b) == frame.height
    assert [record(x) for x in a] == [record(x) for x in b]


def edge_trades(part: PartitionContext, prices, sizes) -> pl.DataFrame:
    n = len(prices)
    ts = [part.start + dt.timedelta(milliseconds=i) for i in range(n)]
    return TRADES.conform(
        pl.DataFrame(
            {
                "ts_event": ts,
                "ts_init": ts,
                "price": prices,
                "size": sizes,
                "aggressor_side": (["BUYER", "SELLER", "NO_AGGRESSOR"] * n)[:n],
                "trade_id": [f"t{i}" for i in range(n)],
            }
        ).with_columns(pl.col("aggressor_side").cast(AGGRESSOR_SIDE))
    )


@pytest.mark.parametrize(
    ("symbol", "prices", "sizes"),
    [
        (
            "BTCUSDT",
            [0.1 + 0.2, 42000.1, 69999.9, 123456.7, 1e6 - 0.1, 0.1],
            [0.001, 0.1 + 0.2, 1.005, 999.999, 0.007, 12.345],
        ),
        ("DOGEUSDT", [0.08123, 0.00001, 0.1 + 0.2, 1.23455, 0.07, 0.99999], [1.0, 2.0, 1e7, 5.0, 17.0, 3.0]),
        ("XRPUSDT", [0.6215, 0.00005, 2.5, 1.11115, 0.9999, 3.0], [0.1, 0.05, 0.15, 0.25, 1e6, 0.35]),
    ],
)
def test_edge_values_round_like_nautilus(tmp_path, symbol, prices, sizes):
    part = part_for(symbol)
    frame = edge_trades(part, prices, sizes)
    both_ways(tmp_path, TRADES, part, frame)
    a, b = read_back(tmp_path / "arrow", TRADES, part), read_back(tmp_path / "nautilus", TRADES, part)
    assert [record(x) for x in a] == [record(x) for x in b]


def test_random_mark_prices_and_funding(tmp_path):
    part = part_for("BTCUSDT")
    rng = np.random.default_rng(5)
    n = 5_000
    ts = pl.datetime_range(part.start, part.start + dt.timedelta(seconds=n - 1), "1s", eager=True, time_zone="UTC")
    marks = MARK_PRICES.conform(pl.DataFrame({"ts_event": ts, "ts_init": ts, "value": rng.uniform(1, 1e5, n).round(8)}))
    both_ways(tmp_path, MARK_PRICES, part, marks)
    assert [record(x) for x in read_back(tmp_path / "arrow", MARK_PRICES, part)] == [
        record(x) for x in read_back(tmp_path / "nautilus", MARK_PRICES, part)
    ]
    rates = FUNDING_RATES.conform(
        pl.DataFrame(
            {
                "ts_event": ts[:50],
                "ts_init": ts[:50],
                # Tiny and zero rates too: Python writes those as "1E-8", "0E-8".
                "rate": [*rng.normal(0, 0.003, 44).round(8), 1e-8, -5e-7, 0.0, 0.03, -0.03, 0.00012345],
                "next_funding_time": [part.start + dt.timedelta(hours=8)] * 49 + [None],
                "interval": [480] * 25 + [240] * 25,
            }
        )
    )
    both_ways(tmp_path, FUNDING_RATES, part, rates)
    a = read_back(tmp_path / "arrow", FUNDING_RATES, part)
    assert [record(x) for x in a] == [record(x) for x in read_back(tmp_path / "nautilus", FUNDING_RATES, part)]
    assert len(a) == 50
    assert [x.rate for x in a[-6:]] == [
        "0.00000001",
        "-0.00000050",
        "0.00000000",
        "0.03000000",
        "-0.03000000",
        "0.00012345",
    ]
    assert a[-1].next_funding_ns is None and a[0].interval == 480 and a[-1].interval == 240


def test_multi_chunk_write_equals_single_chunk(tmp_path, monkeypatch):
    part = part_for("ETHUSDT")
    rng = np.random.default_rng(9)
    n = 25_000
    frame = edge_trades(part, (rng.integers(1, 400_000, n) / 100).tolist(), (rng.integers(1, 5_000, n) / 1000).tolist())
    one = write_partition(tmp_path / "one", CatalogPartition(TRADES, part, frame)).path
    monkeypatch.setattr(writer, "CHUNK_ROWS", 7_000)
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 3_000)
    many = write_partition(tmp_path / "many", CatalogPartition(TRADES, part, frame)).path
    # Slices of 7,000 rows (x3) and 4,000, each cut into groups of at most 3,000: 3 x 3 + 2.
    assert pq.ParquetFile(many).metadata.num_row_groups == 11
    assert pq.read_table(many).equals(pq.read_table(one))


def test_a_crash_mid_write_leaves_the_previous_file(tmp_path, monkeypatch):
    part = part_for("BTCUSDT")
    good = edge_trades(part, [42000.1, 42000.2, 42000.3], [0.001, 0.002, 0.003])
    path = write_partition(tmp_path, CatalogPartition(TRADES, part, good)).path
    before = path.read_bytes()

    calls = {"n": 0}

    def dies_on_second_slice(frame, instrument):
        calls["n"] += 1
        if calls["n"] > 2:  # schema probe, first slice, then the crash
            raise MemoryError("killed mid-write")
        return TRADES.to_arrow(frame, instrument)

    monkeypatch.setattr(writer, "CHUNK_ROWS", 2)
    crashing = dataclasses.replace(TRADES, to_arrow=dies_on_second_slice)
    with pytest.raises(MemoryError):
        write_partition(tmp_path, CatalogPartition(crashing, part, edge_trades(part, [1.0] * 5, [0.001] * 5)))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left
    assert len(ParquetDataCatalog(str(tmp_path)).trade_ticks()) == 3


def test_foreign_overlapping_file_is_refused_before_writing(tmp_path):
    part = part_for("BTCUSDT")
    frame = edge_trades(part, [42000.1], [0.001])
    target = partition_path(tmp_path, TRADES, part)
    target.parent.mkdir(parents=True)
    foreign = target.with_name("2024-01-02T12-00-00-000000000Z_2024-01-03T12-00-00-000000000Z.parquet")
    foreign.write_bytes(b"someone else's")
    with pytest.raises(writer.CatalogWriteError, match="overlaps"):
        write_partition(tmp_path, CatalogPartition(TRADES, part, frame))
    assert not target.exists() and foreign.read_bytes() == b"someone else's"


@pytest.mark.parametrize("symbol", ["BTCUSDT", "DOGEUSDT"])
def test_instrument_round_trips_every_field_as_one_version(tmp_path, symbol):
    """Every field of 1.231's CryptoPerpetual (lot_size included) comes back; rewriting keeps
    one version; string columns are plain (NautilusTrader 2.0's migration refuses dictionaries)."""
    instrument = instrument_for(symbol, Settings()).nautilus
    first = writer.write_instrument(tmp_path, instrument)
    again = writer.write_instrument(tmp_path, instrument)
    assert first == again and sorted(p.name for p in first.parent.iterdir()) == [first.name]
    (back,) = ParquetDataCatalog(str(tmp_path)).instruments()
    assert CryptoPerpetual.to_dict(back) == CryptoPerpetual.to_dict(instrument)
    assert CryptoPerpetual.to_dict(back)["lot_size"] == "1"
    schema = pq.read_schema(first)
    assert not [f.name for f in schema if pa.types.is_dictionary(f.type)]
    assert schema.field("id").type == pa.string()


def test_rewriting_with_the_nautilus_writer_replaces_the_day(tmp_path):
    """Since 1.223 write_data skips a file name that exists; our reference writer writes into a
    private catalog and renames, so a second build of a day still replaces it."""
    part = part_for("BTCUSDT")
    first = edge_trades(part, [42000.1, 42000.2], [0.001, 0.002])
    second = edge_trades(part, [43000.5, 43000.6, 43000.7], [0.004, 0.005, 0.006])
    a = write_partition(tmp_path, CatalogPartition(TRADES, part, first), "nautilus").path
    b = write_partition(tmp_path, CatalogPartition(TRADES, part, second), "nautilus").path
    assert a == b and sorted(p.name for p in b.parent.iterdir()) == [b.name]
    assert [str(t.price) for t in read_back(tmp_path, TRADES, part)] == ["43000.5", "43000.6", "43000.7"]


def test_nautilus_consolidates_our_adjacent_days(built, tmp_path):
    """1.231's consolidation asserts end + 1 == next start between files: our day files
    ([00:00, next 00:00 - 1 ns]) meet it, and consolidating keeps every row."""
    import shutil

    root = tmp_path / "catalog"
    shutil.copytree(built.catalog, root)
    catalog = ParquetDataCatalog(str(root))
    iid = "BTCUSDT-PERP.BINANCE"
    before = [record(t) for t in catalog.trade_ticks(instrument_ids=[iid])]
    folder = root / "data" / "trade_tick" / iid
    assert len(list(folder.glob("*.parquet"))) == len(DAYS)
    catalog.consolidate_data(TradeTick, identifier=iid, ensure_contiguous_files=True)
    assert len(list(folder.glob("*.parquet"))) == 1
    assert [record(t) for t in ParquetDataCatalog(str(root)).trade_ticks(instrument_ids=[iid])] == before
