"""The CSV reader's two paths give the same frames: the fast one (polars parses numbers and
integer epochs while reading) and the text one (each column parsed from its text, used when
the fast one does not apply or meets a cell it cannot take, and to name a bad line)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.csv import reader as csv_reader
from hedgegrid_assets.formats.csv.reader import ROLES, VALUES, Table, load_rows, read_table
from hedgegrid_assets.formats.parsing import TimestampFormat
from hedgegrid_assets.formats.tardis.datasets import QUOTES_TABLE, TICKER_ROLES, TICKER_TABLE, read_derivative_ticker
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, QUOTES, TRADES
from hedgegrid_assets_tests.test_csv_sources import csv_text, frame_rows, write_packed
from hedgegrid_assets_tests.test_jsonl_source import part_for

G = 1_704_153_600_000  # 2024-01-02 00:00 UTC in ms


def read_both_ways(monkeypatch, read) -> pl.DataFrame:
    """`read()` as it is and with the fast path switched off: equal frames (NaN included), returned once."""
    fast = read()
    with monkeypatch.context() as m:
        m.setattr(csv_reader, "_collect_typed", lambda *a, **k: None)
        text = read()
    assert_frame_equal(fast, text)
    return fast


def test_tricky_but_valid_trades_read_the_same_both_ways(tmp_path, monkeypatch):
    rows = [
        [G + 1, "btc-usdt", " 42000.1", "0.010", "Buy", 11],  # spaced number, loose symbol, any case
        [G + 2, "BTCUSDT", "NaN", "0.020", "SELL", 12],  # NaN parses (quarantined later)
        [G + 3, "BTCUSDT", "42000.2", "", "", ""],  # empty size -> null; empty side; no id -> L<line>
        [G + 4, "ETHUSDT", "2500.5", "1.000", "buy", 13],  # another symbol: skipped
        [(G + 5) * 1000, "BTCUSDT", "4.20001e4", "1e-3", "b", 14],  # epoch us, unit from magnitude
        [G - 1, "BTCUSDT", "41999.9", "0.5", "s", 15],  # the day before: not this partition
    ]
    path = write_packed(tmp_path / "t.csv.gz", csv_text(["time", "symbol", "price", "qty", "side", "id"], rows))
    table = Table(multi_day=True)
    rows_fast = load_rows(path, table, *ROLES[TRADES.name], part_for(), values=VALUES[TRADES.name])
    assert rows_fast.by_reader
    fast = frame_rows(read_both_ways(monkeypatch, lambda: read_table(path, table, TRADES, part_for())), TRADES)
    notes: dict = {}
    read_table(path, table, TRADES, part_for(), notes=notes)
    assert notes == {"other_symbol_rows": 1}  # the ETHUSDT row, said (the other day's row is not another symbol)
    prices = [r[0] for r in fast]
    assert prices[0] == 42000.1 and prices[1] != prices[1] and prices[3] == 42000.1
    assert [r[1] for r in fast] == [0.01, 0.02, None, 0.001]
    assert [r[2] for r in fast] == ["BUYER", "SELLER", "NO_AGGRESSOR", "BUYER"]
    assert [r[3] for r in fast] == ["11", "12", "L4", "14"]
    assert [r[4] for r in fast] == [(G + i) * 1_000_000 for i in (1, 2, 3, 5)]


def test_bad_cell_on_another_day_is_no_error_on_either_path(tmp_path, monkeypatch):
    rows = [[G - 5, "oops", "0.1", "buy", 1], [G + 1, "42000.1", "0.1", "buy", 2], [G + 2, "42000.2", "0.2", "sell", 3]]
    path = write_packed(tmp_path / "t.csv", csv_text(["time", "price", "qty", "side", "id"], rows))
    table = Table(multi_day=True)
    # The fast read meets 'oops' and hands the file to the text path, which keeps this day only.
    assert not load_rows(path, table, *ROLES[TRADES.name], part_for(), values=VALUES[TRADES.name]).by_reader
    fast = frame_rows(read_both_ways(monkeypatch, lambda: read_table(path, table, TRADES, part_for())), TRADES)
    assert [r[3] for r in fast] == ["2", "3"]


@pytest.mark.parametrize(
    ("cell", "needle"),
    [
        ("42000.1x", "t.csv line 3: column 'price' is not a number: '42000.1x'"),
        ("", None),  # empty: null, quarantined later, not an error
    ],
)
def test_fast_path_hands_bad_values_to_the_text_path(tmp_path, cell, needle):
    rows = [[G + 1, "42000.1", "0.1", 1], [G + 2, cell, "0.1", 2]]
    path = write_packed(tmp_path / "t.csv", csv_text(["time", "price", "qty", "id"], rows))
    if needle is None:
        assert read_table(path, Table(), TRADES, part_for()).get_column("price").to_list() == [42000.1, None]
        return
    with pytest.raises(SourceError) as err:
        read_table(path, Table(), TRADES, part_for())
    assert needle in str(err.value)


def test_timestamp_overflow_and_empty_timestamp_are_named(tmp_path):
    rows = [[G + 1, "0.0001", G + 8 * 3_600_000], [G + 2, "0.0001", 99_999_999_999_999_999]]
    path = write_packed(tmp_path / "f.csv", csv_text(["time", "funding_rate", "next_funding_time"], rows))
    table = Table(ts_format=TimestampFormat("epoch", "ms"))
    with pytest.raises(SourceError, match=r"f.csv line 3: column 'next_funding_time' is not a timestamp \(epoch ms\)"):
        read_table(path, table, FUNDING_RATES, part_for())
    path = write_packed(tmp_path / "m.csv", csv_text(["time", "mark"], [[G + 1, "1.5"], ["", "1.6"]]))
    with pytest.raises(SourceError, match=r"m.csv line 3: column 'time' is empty \(no timestamp\)"):
        read_table(path, Table(), MARK_PRICES, part_for())


def test_tardis_ticker_with_empty_cells_reads_the_same_both_ways(tmp_path, monkeypatch):
    us = G * 1000
    rows = [
        ["binance-futures", "BTCUSDT", us + 1, us + 2, None, None, None, None, None, None, "42000.5"],
        ["binance-futures", "BTCUSDT", us + 3, us + 4, us + 8 * 3_600_000_000, "0.0001", None, "5", None, None, None],
        ["binance-futures", "BTCUSDT", us + 5, us + 6, None, None, None, None, None, "1", "42000.5"],
        [
            "binance-futures",
            "BTCUSDT",
            us + 7,
            us + 8,
            us + 8 * 3_600_000_000,
            "0.0002",
            None,
            None,
            None,
            None,
            "42001",
        ],
    ]
    header = ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate",
              "predicted_funding_rate", "open_interest", "last_price", "index_price", "mark_price"]  # fmt: skip
    path = write_packed(tmp_path / "ticker.csv.gz", csv_text(header, rows))
    assert load_rows(path, TICKER_TABLE, TICKER_ROLES, [], part_for(), values=VALUES[FUNDING_RATES.name]).by_reader
    marks, funding = (
        frame_rows(read_both_ways(monkeypatch, lambda k=kind: read_derivative_ticker(path, k, part_for())), kind)
        for kind in (MARK_PRICES, FUNDING_RATES)
    )
    assert [m[0] for m in marks] == [42000.5, 42001.0]
    assert [(f[0], f[1]) for f in funding] == [
        (0.0001, (G + 8 * 3_600_000) * 1_000_000),
        (0.0002, (G + 8 * 3_600_000) * 1_000_000),
    ]


def test_tardis_quotes_read_the_same_both_ways_and_a_bad_cell_is_named(tmp_path, monkeypatch):
    us = G * 1000
    header = [
        "exchange",
        "symbol",
        "timestamp",
        "local_timestamp",
        "ask_amount",
        "ask_price",
        "bid_price",
        "bid_amount",
    ]
    rows = [
        ["binance-futures", "BTCUSDT", us + 1, us + 9, "0.5", "42000.2", "42000.1", "1.5"],
        [
            "binance-futures",
            "BTCUSDT",
            us + 1,
            us + 9,
            "0.7",
            "42000.3",
            "42000.1",
            "",
        ],  # empty: null, quarantined later
        ["binance-futures", "BTCUSDT", us + 5, us + 12, "2", "42000.4", "42000.2", "0.001"],
    ]
    path = write_packed(tmp_path / "q.csv.gz", csv_text(header, rows))
    assert load_rows(path, QUOTES_TABLE, *ROLES[QUOTES.name], part_for(), values=VALUES[QUOTES.name]).by_reader
    frame = read_both_ways(monkeypatch, lambda: read_table(path, QUOTES_TABLE, QUOTES, part_for()))
    assert frame.columns == QUOTES.columns
    assert frame.select("bid_price", "ask_price", "bid_size", "ask_size").rows() == [
        (42000.1, 42000.2, 1.5, 0.5),
        (42000.1, 42000.3, None, 0.7),
        (42000.2, 42000.4, 0.001, 2.0),
    ]
    assert frame["ts_init"].dt.epoch("us").to_list() == [us + 9, us + 9, us + 12]
    rows[2][6] = "42000.2.1"
    path = write_packed(tmp_path / "bad.csv.gz", csv_text(header, rows))
    with pytest.raises(SourceError, match=r"bad.csv.gz.* line 4: column 'bid_price' is not a number: '42000.2.1'"):
        read_table(path, QUOTES_TABLE, QUOTES, part_for())


def test_iso_timestamps_take_the_text_path(tmp_path):
    path = write_packed(tmp_path / "m.csv", csv_text(["time", "mark"], [["2024-01-02T00:00:01Z", "1.5"]]))
    rows = load_rows(path, Table(), *ROLES[MARK_PRICES.name], part_for(), values=VALUES[MARK_PRICES.name])
    assert not rows.by_reader and rows.frame.schema["_v_mark_price"] == pl.Float64
    assert Path(rows.label).name == "m.csv"


def test_smallest_int64_epoch_is_not_a_time_on_either_path(tmp_path, monkeypatch):
    path = write_packed(tmp_path / "m.csv", csv_text(["time", "mark"], [[G + 1, "1.5"], [-(2**63), "1.6"]]))
    needle = (
        "m.csv line 3: column 'time' is not a timestamp (epoch number, unit from its magnitude): '-9223372036854775808'"
    )
    for fast_path in (True, False):
        with monkeypatch.context() as m:
            if not fast_path:
                m.setattr(csv_reader, "_collect_typed", lambda *a, **k: None)
            with pytest.raises(SourceError) as err:
                read_table(path, Table(), MARK_PRICES, part_for())
        assert needle in str(err.value)


def test_one_column_in_two_roles(tmp_path, monkeypatch):
    # The id is the timestamp's or the price's text: a column read as a number for one role
    # stays text for the other.
    rows = [[G + 1, "42000.5", "0.1"], [G + 2, "42001", "0.2"]]
    path = write_packed(tmp_path / "t.csv", csv_text(["time", "price", "qty"], rows))
    for id_column, ids in (("time", [str(G + 1), str(G + 2)]), ("price", ["42000.5", "42001"])):
        table = Table(columns={"timestamp": "time", "price": "price", "size": "qty", "trade_id": id_column})
        frame = read_both_ways(monkeypatch, lambda t=table: read_table(path, t, TRADES, part_for()))
        assert frame.get_column("trade_id").to_list() == ids
        assert frame.get_column("price").to_list() == [42000.5, 42001.0]


@pytest.mark.parametrize("has_header", [False, "false", "no", "auto"])
def test_headerless_file_keeps_its_first_row(tmp_path, has_header):
    path = write_packed(tmp_path / "t.csv", csv_text(None, [[G + 1, "42000.1", "0.1"], [G + 2, "42000.2", "0.2"]]))
    options = {"has_header": has_header, "column_names": ["time", "price", "qty"]}
    table = Table.from_options(options, multi_day=False, where="test")
    assert read_table(path, table, TRADES, part_for()).get_column("price").to_list() == [42000.1, 42000.2]


def test_a_custom_instruments_symbol_in_the_file_name_says_the_symbol(tmp_path):
    from hedgegrid_assets.frames import PartitionContext
    from hedgegrid_assets.instruments import instrument_for
    from hedgegrid_assets.settings import Settings
    from hedgegrid_assets.sources.csv import GenericCsvSource
    from hedgegrid_assets_tests.test_jsonl_source import write_config

    settings = Settings(symbols=["PEPEUSDT"], instruments={"PEPEUSDT": {"tick_size": "0.0000001", "step_size": "1"}})
    part = PartitionContext(part_for().day, instrument_for("PEPEUSDT", settings), settings.checks)
    path = write_packed(
        tmp_path / "PEPEUSDT-trades.csv", csv_text(["time", "price", "qty"], [[G + 1, "0.0000012", "1000"]])
    )
    cfg = write_config(tmp_path / "c.json", {"base_path": str(tmp_path), "files": {"trades": "PEPEUSDT-trades.csv"}})
    frame, _ = GenericCsvSource(config_path=str(cfg)).read_frame_with_notes(TRADES, [path], part)
    assert frame.get_column("price").to_list() == [0.0000012]
