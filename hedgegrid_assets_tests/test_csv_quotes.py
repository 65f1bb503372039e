"""Quotes (QuoteTick) from the CSV-shaped sources: Tardis `quotes` / `book_ticker` datasets,
Binance public data daily `bookTicker` zips and generic CSV files with bid/ask roles.

Fixtures are generated here in the files' real shapes. The Tardis day is compared field by
field with what Nautilus's own `TardisCSVDataLoader.load_quotes` makes of the same file, read
back from our catalog file by `ParquetDataCatalog.quote_ticks()`; our Arrow writer is compared
with Nautilus's `write_data` for quotes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.catalog.writer import CatalogPartition, partition_path, write_partition
from hedgegrid_assets.checks import quarantine
from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.frames import QUOTES, PartitionContext
from hedgegrid_assets.frames.quotes import CROSSED
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.binance import BinanceVisionSource
from hedgegrid_assets.sources.registry import build_source
from hedgegrid_assets.sources.tardis_datasets import TardisCsvSource
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.test_bad_inputs import generic
from hedgegrid_assets_tests.test_catalog_writer import both_ways
from hedgegrid_assets_tests.test_csv_sources import binance_files, csv_text, sha_file, write_packed
from hedgegrid_assets_tests.test_jsonl_source import DAY, check_evaluations, land, make_truth, part_for, write_config
from hedgegrid_assets_tests.test_tardis_loader_differential import DAY_US, write_tardis_day

G = DAY_US // 1000  # 2024-01-02 00:00 UTC in ms
IID = "BTCUSDT-PERP.BINANCE"
TARDIS_QUOTES = [
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "ask_amount",
    "ask_price",
    "bid_price",
    "bid_amount",
]
BOOK_TICKER = [
    "update_id",
    "best_bid_price",
    "best_bid_qty",
    "best_ask_price",
    "best_ask_qty",
    "transaction_time",
    "event_time",
]


def quote_record(q) -> tuple:
    """Every field of a QuoteTick, raw fixed-point values and precisions included."""
    return (q.instrument_id.value, q.bid_price.raw, q.bid_price.precision, q.ask_price.raw, q.ask_price.precision,
            q.bid_size.raw, q.bid_size.precision, q.ask_size.raw, q.ask_size.precision, q.ts_event, q.ts_init)  # fmt: skip


def frame_quotes(frame: pl.DataFrame) -> list[tuple]:
    """(bid, ask, bid size, ask size, ts_event ns, ts_init ns) per row."""
    f = frame.with_columns(pl.col(c).dt.epoch("ns") for c in ("ts_event", "ts_init"))
    return list(f.select("bid_price", "ask_price", "bid_size", "ask_size", "ts_event", "ts_init").iter_rows())


def tardis_quotes(path: Path, n: int = 3_000, seed: int = 7) -> pl.DataFrame:
    """A Tardis quotes CSV.gz (binance-futures BTCUSDT): prices on the 0.10 tick, sizes on the
    0.001 step, the book never crossed, runs of rows sharing both timestamps (one message
    carrying several updates), sorted by local_timestamp as Tardis splits its files."""
    rng = np.random.default_rng(seed)
    repeat = rng.random(n) < 0.15
    repeat[0] = False
    first = np.maximum.accumulate(np.where(repeat, 0, np.arange(n)))  # a repeated row takes its run's stamps
    ts = (DAY_US + np.sort(rng.integers(0, 86_399_000_000, n)))[first]
    local = (ts + rng.integers(500, 40_000, n))[first]
    bid = 420_000 + np.cumsum(rng.choice([-2, -1, 0, 1, 2], n))  # in ticks of 0.1
    ask = bid + rng.integers(1, 6, n)

    def price(ticks: np.ndarray) -> pl.Series:
        return pl.Series(ticks // 10).cast(pl.String) + "." + pl.Series(ticks % 10).cast(pl.String)

    rows = pl.DataFrame(
        {
            "exchange": ["binance-futures"] * n,
            "symbol": ["BTCUSDT"] * n,
            "timestamp": ts,
            "local_timestamp": local,
            "ask_amount": pl.Series(rng.integers(1, 20_000, n) / 1000).round(3),
            "ask_price": price(ask),
            "bid_price": price(bid),
            "bid_amount": pl.Series(rng.integers(1, 20_000, n) / 1000).round(3),
        }
    ).sort("local_timestamp", maintain_order=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as out:
        rows.write_csv(out)
    return rows


def tardis_source(tmp_path: Path, quotes: str | None = "quotes", n_trades: int = 200) -> tuple[TardisCsvSource, Path]:
    """A Tardis day (trades, derivative_ticker) and, unless None, its `quotes` or `book_ticker` file."""
    folder = tmp_path / "tardis"
    folder.mkdir(parents=True, exist_ok=True)
    write_tardis_day(folder, n=n_trades)
    cfg = write_config(tmp_path / "tardis.json", {"format": "tardis", "base_path": str(folder)})
    return TardisCsvSource(config_path=str(cfg)), folder


def quotes_file(folder: Path, data_type: str = "quotes") -> Path:
    return folder / f"binance-futures_{data_type}_{DAY}_BTCUSDT.csv.gz"


# -- (a) Tardis quotes: the same QuoteTicks as Nautilus's own loader ------------------------------


def test_tardis_quotes_equal_nautilus_tardis_loader_field_by_field(tmp_path):
    source, folder = tardis_source(tmp_path)
    rows = tardis_quotes(quotes_file(folder))
    assert rows.select(pl.struct("timestamp", "local_timestamp").is_duplicated().sum()).item() > 300  # equal stamps
    landed = land(source, tmp_path / "landing")
    assert quotes_file(folder).name in {p.name for p in landed}
    part = part_for()
    frame = source.read_frame(QUOTES, landed, part)
    good, quarantined = quarantine.split(QUOTES, frame, part)
    assert quarantined.total == 0 and good.height == 3_000
    write_partition(tmp_path / "catalog", CatalogPartition(QUOTES, part, good))

    ours = ParquetDataCatalog(str(tmp_path / "catalog")).quote_ticks()
    loader = TardisCSVDataLoader(instrument_id=InstrumentId.from_str(IID), price_precision=1, size_precision=3)
    theirs = loader.load_quotes(quotes_file(folder))
    assert len(ours) == len(theirs) == 3_000
    assert [quote_record(q) for q in ours] == [quote_record(q) for q in theirs]
    # And against the file itself: ts_event = timestamp, ts_init = local_timestamp (µs).
    assert [q.ts_init for q in ours] == (rows["local_timestamp"] * 1000).to_list()
    assert [q.ts_event for q in ours] == (rows["timestamp"] * 1000).to_list()
    assert {q.bid_price.precision for q in ours} == {1} and {q.bid_size.precision for q in ours} == {3}


def test_tardis_prefers_quotes_and_falls_back_to_book_ticker(tmp_path):
    source, folder = tardis_source(tmp_path)
    book = tardis_quotes(quotes_file(folder, "book_ticker"), n=50, seed=1)
    landed = land(source, tmp_path / "only_book_ticker")
    assert [p.name for p in landed if "book_ticker" in p.name or "quotes" in p.name] == [
        quotes_file(folder, "book_ticker").name
    ]
    frame = source.read_frame(QUOTES, landed, part_for())
    assert [r[:4] for r in frame_quotes(frame)] == [
        (float(b), float(a), bs, az)
        for b, a, bs, az in book.select("bid_price", "ask_price", "bid_amount", "ask_amount").iter_rows()
    ]
    assert source.inputs_of(QUOTES, landed, part_for()) == [str(quotes_file(folder, "book_ticker"))]

    tardis_quotes(quotes_file(folder), n=20, seed=2)  # both there: quotes wins, book_ticker is not landed
    landed = land(source, tmp_path / "both")
    assert [p.name for p in landed if "book_ticker" in p.name or "quotes" in p.name] == [quotes_file(folder).name]
    assert source.read_frame(QUOTES, landed, part_for()).height == 20


# -- (b) our Arrow writer and Nautilus's write_data: identical quote files ------------------------


def catalog_part(symbol: str) -> PartitionContext:
    s = Settings()
    return PartitionContext(DAY, instrument_for(symbol, s), s.checks)


def assert_identical_both_ways(tmp_path: Path, part: PartitionContext, frame: pl.DataFrame) -> None:
    fast, ref = both_ways(tmp_path, QUOTES, part, frame)
    assert fast.rows == ref.rows == frame.height > 0
    assert fast.path.relative_to(tmp_path / "arrow") == ref.path.relative_to(tmp_path / "nautilus")
    ours, theirs = pq.read_table(fast.path), pq.read_table(ref.path)
    assert ours.schema.equals(theirs.schema, check_metadata=True)
    assert ours.equals(theirs)
    read = [
        ParquetDataCatalog(str(tmp_path / w)).quote_ticks(instrument_ids=[part.instrument.instrument_id])
        for w in ("arrow", "nautilus")
    ]
    assert [quote_record(q) for q in read[0]] == [quote_record(q) for q in read[1]]
    assert len(read[0]) == frame.height


def test_tardis_quotes_written_identically_by_both_writers(tmp_path):
    source, folder = tardis_source(tmp_path)
    tardis_quotes(quotes_file(folder), n=2_000, seed=11)
    landed = land(source, tmp_path / "landing")
    assert_identical_both_ways(tmp_path, part_for(), source.read_frame(QUOTES, landed, part_for()))


@pytest.mark.parametrize(
    ("symbol", "bids", "spreads", "sizes"),
    [
        ("BTCUSDT", [0.1 + 0.2, 42000.1, 69999.9, 123456.7, 999_999.7], [0.1, 0.2, 0.1 + 0.2, 1.1, 0.2],
         [0.001, 0.1 + 0.2, 1.005, 999.999, 0.007]),
        ("DOGEUSDT", [0.08123, 0.00001, 0.1 + 0.2, 1.23455, 0.07], [0.00001, 0.00002, 0.1 + 0.2, 0.00005, 0.01],
         [1.0, 2.0, 1e7, 5.0, 17.0]),
    ],
    ids=["BTCUSDT", "DOGEUSDT"],
)  # fmt: skip
def test_edge_quote_values_written_identically_by_both_writers(tmp_path, symbol, bids, spreads, sizes):
    part = catalog_part(symbol)
    n = len(bids)
    ts = [part.start + dt.timedelta(milliseconds=i // 2) for i in range(n)]  # pairs of equal timestamps
    frame = QUOTES.conform(
        pl.DataFrame(
            {
                "ts_event": ts,
                "ts_init": ts,
                "bid_price": bids,
                "ask_price": [b + s for b, s in zip(bids, spreads, strict=True)],
                "bid_size": sizes,
                "ask_size": sizes[::-1],
            }
        )
    )
    assert_identical_both_ways(tmp_path, part, frame)


# -- (c) Binance bookTicker zips and generic CSV quotes ------------------------------------------


def book_ticker_rows(n: int = 6) -> list[list]:
    """bookTicker rows; ts_event = transaction_time, ts_init = event_time (ms)."""
    return [[9_000 + i, f"42000.{i}", f"0.{i + 1:03d}", f"42001.{i}", f"1.{i:03d}", G + 1000 * i + 3, G + 1000 * i + 5]
            for i in range(1, n + 1)]  # fmt: skip


def expected_book_ticker(rows: list[list]) -> list[tuple]:
    return [(float(r[1]), float(r[3]), float(r[2]), float(r[4]), r[5] * 1_000_000, r[6] * 1_000_000) for r in rows]


def binance_day(
    tmp_path: Path, book_ticker: list[list] | None, header: bool = True
) -> tuple[BinanceVisionSource, Path | None]:
    """A data.binance.vision tree for the day, with its bookTicker zip (and .CHECKSUM) unless None."""
    root = tmp_path / "bv"
    truth = make_truth(n_trades=40, mark_every_s=3600)
    binance_files(root, truth, funding_settlements=[(truth.start_ms + 8 * 3_600_000, "0.0001")])
    zipped = None
    if book_ticker is not None:
        folder = root / "data" / "futures" / "um" / "daily" / "bookTicker" / "BTCUSDT"
        zipped = write_packed(
            folder / f"BTCUSDT-bookTicker-{DAY}.zip", csv_text(BOOK_TICKER if header else None, book_ticker)
        )
        sha_file(zipped)
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": str(root)})
    return BinanceVisionSource(config_path=str(cfg)), zipped


@pytest.mark.parametrize("header", [True, False], ids=["header", "no_header"])
def test_binance_book_ticker_zip_is_found_verified_and_read(tmp_path, header):
    rows = book_ticker_rows()
    source, zipped = binance_day(tmp_path, rows, header)
    assert isinstance(build_source(Settings(source="csv", source_config=source.config_path)), BinanceVisionSource)
    dest = tmp_path / "landing"
    dest.mkdir()
    said: list[str] = []
    source.land(LandingRequest(part_for(), (), dest, said.append))
    assert f"{zipped.name}: sha256 matches {zipped.name}.CHECKSUM" in said
    landed = sorted(dest.iterdir())
    assert source.offers(QUOTES, part_for())
    assert frame_quotes(source.read_frame(QUOTES, landed, part_for())) == expected_book_ticker(rows)
    assert source.inputs_of(QUOTES, landed, part_for()) == [str(zipped)]


def test_binance_book_ticker_with_a_wrong_checksum_fails_naming_it(tmp_path):
    source, zipped = binance_day(tmp_path, book_ticker_rows())
    (zipped.parent / f"{zipped.name}.CHECKSUM").write_text(f"{'0' * 64}  {zipped.name}\n")
    with pytest.raises(SourceError, match="checksum mismatch") as err:
        land(source, tmp_path / "landing")
    assert str(zipped) in str(err.value)


def test_binance_day_without_book_ticker_has_no_quotes_and_no_error(tmp_path):
    source, _ = binance_day(tmp_path, None)
    landed = land(source, tmp_path / "landing")
    assert not any("bookTicker" in p.name for p in landed)
    assert not source.offers(QUOTES, part_for())
    assert source.read_frame(QUOTES, landed, part_for()).is_empty()
    assert source.inputs_of(QUOTES, landed, part_for()) is None


GENERIC_CASES = [
    # Mapped roles, odd names, ISO times and a receive time.
    (["time", "recv", "bb", "bq", "ba", "aq"],
     lambda i: [f"2024-01-02T00:00:{i:02d}.5Z", f"2024-01-02T00:00:{i:02d}.6Z", f"4200{i}.1", "0.5", f"4200{i}.3", "1.25"],
     {"columns": {"timestamp": "time", "local_timestamp": "recv", "bid_price": "bb", "bid_size": "bq",
                  "ask_price": "ba", "ask_size": "aq"}},
     lambda i: (float(f"4200{i}.1"), float(f"4200{i}.3"), 0.5, 1.25, (G + i * 1000 + 500) * 1_000_000, (G + i * 1000 + 600) * 1_000_000)),
    # Guessed from the header: epoch ms, a symbol column.
    (["timestamp", "local_timestamp", "symbol", "bid_price", "bid_size", "ask_price", "ask_size"],
     lambda i: [G + i, G + i + 2, "BTCUSDT", "42000.1", f"0.{i:03d}", "42000.2", "3"],
     {},
     lambda i: (42000.1, 42000.2, i / 1000, 3.0, (G + i) * 1_000_000, (G + i + 2) * 1_000_000)),
    # A flattened bookTicker payload: Binance's one-letter names, b/B and a/A told apart by case.
    (["u", "s", "b", "B", "a", "A", "T", "E"],
     lambda i: [100 + i, "BTCUSDT", "42000.5", "0.010", "42000.6", "0.020", G + i, G + i + 1],
     {},
     lambda i: (42000.5, 42000.6, 0.01, 0.02, (G + i) * 1_000_000, (G + i) * 1_000_000)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "row", "options", "expected"), GENERIC_CASES, ids=["mapped_iso", "guessed", "payload_letters"]
)
def test_generic_csv_quotes(tmp_path, header, row, options, expected):
    source, path = generic(
        tmp_path, rows=[row(i) for i in range(1, 6)], header=header, name="q.csv", kind="quotes", options=options
    )
    assert build_source(Settings(source="csv", source_config=source.config_path)).offers(QUOTES, part_for())
    frame, _ = source.read_frame_with_notes(QUOTES, [path], part_for())
    assert frame_quotes(frame) == [expected(i) for i in range(1, 6)]


def test_generic_quotes_config_with_an_unknown_role_fails_when_the_source_is_built(tmp_path):
    cfg = write_config(tmp_path / "c.json", {"base_path": ".", "symbol": "BTCUSDT",
                                             "files": {"quotes": {"file_path": "q.csv", "columns": {"bid": "b"}}}})  # fmt: skip
    with pytest.raises(
        ConfigError, match="unknown column role.s. bid; roles: timestamp, bid_price, ask_price, bid_size, ask_size"
    ):
        build_source(Settings(source="csv", source_config=cfg))


# -- (d) a crossed or locked quote is quarantined ------------------------------------------------


def test_crossed_and_locked_quotes_are_quarantined_by_reason(tmp_path):
    rows = [[G + 1, "42000.1", "1", "42000.2", "1"], [G + 2, "42000.3", "1", "42000.2", "1"],  # crossed
            [G + 3, "42000.2", "1", "42000.2", "1"], [G + 4, "42000.1", "1", "42000.3", "1"]]  # locked, then fine  # fmt: skip
    source, path = generic(
        tmp_path, rows=rows, header=["time", "bid_price", "bid_size", "ask_price", "ask_size"], kind="quotes"
    )
    frame = source.read_frame(QUOTES, [path], part_for())
    good, q = quarantine.split(QUOTES, frame, part_for())
    assert CROSSED == "crossed or locked quote (bid >= ask)"
    assert q.counts == {CROSSED: 2}
    assert good.get_column("ts_event").dt.epoch("ms").to_list() == [G + 1, G + 4]


# -- (e) a Tardis day without a quotes file ---------------------------------------------------------


def test_tardis_day_without_quotes_lands_and_builds_without_quotes_or_warning(tmp_path):
    source, folder = tardis_source(tmp_path, n_trades=20_000)
    assert not source.offers(QUOTES, part_for())
    settings = make_settings(
        tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=source.config_path
    )
    instance = make_instance(tmp_path)
    key = partition_key(DAY, "BTCUSDT")
    result = build(settings, instance, [key])[str(key)]
    assert result.success
    raw = settings.raw_dir / "csv" / DAY.isoformat() / "BTCUSDT"
    assert sorted(p.name for p in raw.iterdir() if p.suffix == ".gz") == [
        f"binance-futures_derivative_ticker_{DAY}_BTCUSDT.csv.gz",
        f"binance-futures_trades_{DAY}_BTCUSDT.csv.gz",
    ]
    assert not partition_path(settings.catalog_path, QUOTES, part_for()).exists()
    assert ParquetDataCatalog(str(settings.catalog_path)).quote_ticks() == []
    checks = check_evaluations(result)
    assert checks["quotes_schema"].passed
    # Not expected, so not missing: the completeness report is satisfied without quotes.
    assert checks["partition_complete"].passed, checks["partition_complete"].description
    assert not [name for name, e in checks.items() if "quote" in name and not e.passed]
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level >= logging.WARNING and e.message]
    assert not [m for m in warnings if "quote" in m.lower()], warnings
