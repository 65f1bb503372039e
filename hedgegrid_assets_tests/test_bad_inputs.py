"""The bad-input corpus: every source refuses broken input with one clear error naming the file,
the line and the problem, and rows that are bad one by one are quarantined and counted.

Each `ERRORS` case writes a small file in its real shape with one defect, lands it and parses
it the way the frame assets do; each `QUARANTINED` case checks the counts the quarantine step
(the same function the frame asset calls) reports. Two cases run through Dagster to show the
run's failure message and the check metadata.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from hedgegrid_assets.checks import quarantine
from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.binance import BinanceVisionSource
from hedgegrid_assets.sources.csv import GenericCsvSource
from hedgegrid_assets.sources.jsonl import JsonlSource
from hedgegrid_assets.sources.registry import build_source
from hedgegrid_assets.sources.tardis_datasets import TardisCsvSource
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.test_csv_sources import TARDIS_TICKER, TARDIS_TRADES, csv_text, sha_file, write_packed
from hedgegrid_assets_tests.test_jsonl_source import DAY, land, ms_of, part_for, write_config

G = ms_of(DAY)  # 2024-01-02 00:00 UTC, ms
HEADER = ["time", "price", "size", "side", "id"]


def good_rows(n: int = 5) -> list[list]:
    return [[G + 1000 * i, "42000.1", "0.010", "buy" if i % 2 else "sell", 100 + i] for i in range(1, n + 1)]


def generic(tmp: Path, rows=None, header=HEADER, name="t.csv", kind="trades", options=None, text=None):
    """A generic CSV source over one file; returns (source, the file)."""
    path = tmp / "in" / name
    if text is None:
        text = csv_text(header, good_rows() if rows is None else rows)
    if isinstance(text, bytes):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    else:
        write_packed(path, text)
    options = dict(options or {})
    if "USDT" not in name.upper():  # the file must say its symbol somewhere: here, its config
        options.setdefault("symbol", "BTCUSDT")
    cfg = write_config(tmp / "c.json", {"base_path": "in", "files": {kind: {"file_path": name, **options}}})
    return GenericCsvSource(config_path=str(cfg)), path


def replace_row(i: int, values: dict) -> list[list]:
    rows = good_rows()
    for col, v in values.items():
        rows[i][HEADER.index(col)] = v
    return rows


def gz_bytes(text: str) -> bytes:
    return gzip.compress(text.encode())


# -- Tardis and Binance bases ---------------------------------------------------------------------


def tardis(tmp: Path, trades_rows=None, ticker_rows=None, ticker=True):
    base = tmp / "tardis"
    t = [["binance-futures", "BTCUSDT", (G + 1000 * i) * 1000, (G + 1000 * i) * 1000 + 500, i, "buy", "42000.1", "0.010"]
         for i in range(1, 5)]  # fmt: skip
    write_packed(base / "binance-futures_trades_2024-01-02_BTCUSDT.csv.gz", csv_text(TARDIS_TRADES, trades_rows or t))
    k = [["binance-futures", "BTCUSDT", (G + 1000 * i) * 1000, (G + 1000 * i) * 1000 + 700, (G + 8 * 3_600_000) * 1000,
          "0.0001", "", "", "", "", "42000.12"] for i in range(1, 5)]  # fmt: skip
    if ticker:
        write_packed(
            base / "binance-futures_derivative_ticker_2024-01-02_BTCUSDT.csv.gz",
            csv_text(TARDIS_TICKER, ticker_rows or k),
        )
    cfg = write_config(tmp / "t.json", {"format": "tardis", "base_path": str(base)})
    return TardisCsvSource(config_path=str(cfg))


AGG_HEAD = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker"]


def binance(tmp: Path, agg_rows=None, header=True, member=None, checksum="good", klines=True, kline_close="42000.5"):
    base = tmp / "bv"
    rows = agg_rows or [[i, "42000.1", "0.010", 3 * i, 3 * i, G + 1000 * i, "true"] for i in range(1, 5)]
    z = write_packed(
        base / "BTCUSDT-aggTrades-2024-01-02.zip", csv_text(AGG_HEAD if header else None, rows), member=member
    )
    if checksum == "good":
        sha_file(z)
    elif checksum == "wrong":
        (base / (z.name + ".CHECKSUM")).write_text(f"{'0' * 64}  {z.name}\n")
    elif checksum == "garbled":
        (base / (z.name + ".CHECKSUM")).write_text("sha256 goes here\n")
    if klines:
        k = [[G + 60_000 * i, "1", "1", "1", kline_close if i == 2 else "42000.2", 0, G + 60_000 * i + 59_999, 0, 1, 0, 0, 0]
             for i in range(5)]  # fmt: skip
        write_packed(base / "BTCUSDT-1m-2024-01-02.zip", csv_text(None, k))
    write_packed(base / "BTCUSDT-fundingRate-2024-01.zip", csv_text(["calc_time", "funding_interval_hours", "last_funding_rate"],
                                                                    [[G + 8 * 3_600_000, 8, "0.0001"]]))  # fmt: skip
    cfg = write_config(tmp / "b.json", {"format": "binance", "base_path": str(base)})
    return BinanceVisionSource(config_path=str(cfg))


# -- JSONL base ---------------------------------------------------------------------------------


def agg(i: int, **over) -> str:
    payload = {"e": "aggTrade", "E": G + 1000 * i + 2, "a": 500 + i, "s": "BTCUSDT", "p": "42000.1", "q": "0.010",
               "f": 1, "l": 1, "T": G + 1000 * i, "m": False} | over  # fmt: skip
    return json.dumps({"stream": "btcusdt@aggTrade", "data": payload})


def jsonl(
    tmp: Path, lines: list[str] | None = None, name="rec.jsonl", raw: bytes | None = None, create=True, file_path=None
):
    path = tmp / "rec" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if create:
        text = "\n".join(lines if lines is not None else [agg(i) for i in range(1, 5)]) + "\n"
        path.write_bytes(raw if raw is not None else (gz_bytes(text) if name.endswith(".gz") else text.encode()))
    cfg = write_config(tmp / "ws.json", {"base_path": "rec", "files": {"trades": {"file_path": file_path or name}}})
    return JsonlSource(config_path=str(cfg))


# -- the error corpus: (id, build(tmp) -> (source, kind), substrings the message must contain) -----

Case = tuple[str, Callable, list[str]]
ERRORS: list[Case] = [
    # generic CSV
    ("missing_file", lambda t: (generic(t, name="t.csv", options={"file_path": "nope_{date}.csv"})[0], TRADES),
     ["nope_2024-01-02.csv", "does not exist", "2024-01-02|BTCUSDT", "files.trades.file_path"]),
    ("missing_required_column", lambda t: (generic(t, header=["time", "amount", "side", "id", "x"])[0], TRADES),
     ["t.csv", "missing required column for price", "header has: time, amount"]),
    ("mapped_column_absent", lambda t: (generic(t, options={"columns": {"price": "Px"}})[0], TRADES),
     ["t.csv", "missing required column 'Px' (mapped to price)"]),
    ("strftime_mismatch", lambda t: (generic(t, rows=[[f"2024-01-02 00:00:0{i}", "1.0", "0.010", "buy", i] for i in range(1, 3)]
                                              + [["2024/01/02 00:00:03", "1.0", "0.010", "buy", 3]],
                                         options={"timestamp_format": "%Y-%m-%d %H:%M:%S"})[0], TRADES),
     ["t.csv line 4", "not a timestamp (format '%Y-%m-%d %H:%M:%S')", "'2024/01/02 00:00:03'"]),
    # Not ISO and no timestamp_format: refused, never guessed day- or month-first.
    ("slashed_date_without_format", lambda t: (generic(t, rows=[[f"01/02/2024 00:00:0{i}", "1.0", "0.010", "buy", i] for i in range(1, 3)])[0], TRADES),
     ["t.csv line 2", "'time' is not a timestamp (ISO 8601 like 2024-01-05T12:00:00Z; set timestamp_format", "'01/02/2024 00:00:01'"]),
    ("garbage_epoch", lambda t: (generic(t, rows=replace_row(2, {"time": "17041536x0000"}))[0], TRADES),
     ["t.csv line 4", "'time' is not a timestamp (epoch number", "'17041536x0000'"]),
    ("empty_timestamp", lambda t: (generic(t, rows=replace_row(2, {"time": ""}))[0], TRADES),
     ["t.csv line 4", "'time' is empty (no timestamp)"]),
    ("price_not_a_number", lambda t: (generic(t, rows=replace_row(1, {"price": "abc"}))[0], TRADES),
     ["t.csv line 3", "'price' is not a number", "'abc'"]),
    ("size_with_comma", lambda t: (generic(t, rows=replace_row(0, {"size": '"0,5"'}))[0], TRADES),
     ["t.csv line 2", "'size' is not a number", "'0,5'"]),
    ("unknown_side", lambda t: (generic(t, rows=replace_row(3, {"side": "X"}))[0], TRADES),
     ["t.csv line 5", "'side' is not an aggressor side", "'X'"]),
    ("other_symbol_column", lambda t: (generic(t, header=[*HEADER, "symbol"], rows=[[*r, "ETHUSDT"] for r in good_rows()])[0], TRADES),
     ["t.csv line 2", "another symbol", "ETHUSDT, not BTCUSDT"]),
    ("other_symbol_config", lambda t: (generic(t, options={"symbol": "ETHUSDT"})[0], TRADES),
     ["t.csv is for ETHUSDT", "another symbol"]),
    ("symbol_said_nowhere", lambda t: (generic(t, options={"symbol": None})[0], TRADES),
     ["t.csv: cannot tell which symbol it holds", '"symbol": "BTCUSDT" beside its file_path']),
    ("other_symbol_path", lambda t: (generic(t, name="ETHUSDT-trades.csv")[0], TRADES),
     ["ETHUSDT-trades.csv is for ETHUSDT (its path says so), not BTCUSDT", "put {symbol} in files.trades.file_path"]),
    ("corrupt_gzip", lambda t: (generic(t, name="t.csv.gz", text=gz_bytes(csv_text(HEADER, good_rows(300)))[:40] + b"\x00" * 40
                                        + gz_bytes(csv_text(HEADER, good_rows(300)))[80:])[0], TRADES),
     ["t.csv.gz", "unreadable gzip"]),
    ("truncated_gzip", lambda t: (generic(t, name="t.csv.gz", text=gz_bytes(csv_text(HEADER, good_rows(300)))[:-30])[0], TRADES),
     ["t.csv.gz", "unreadable gzip", "truncated"]),
    ("gz_not_gzip", lambda t: (generic(t, name="t.csv.gz", text=csv_text(HEADER, good_rows()).encode())[0], TRADES),
     ["t.csv.gz", "unreadable gzip", "not gzip data"]),
    ("zip_garbage", lambda t: (generic(t, name="t.zip", text=b"PK\x03\x04 this is no zip at all")[0], TRADES),
     ["t.zip", "unreadable zip"]),
    ("zip_two_members", lambda t: (generic(t, name="t.zip", text=_two_member_zip())[0], TRADES),
     ["t.zip", "expected one .csv file inside the zip, found 2"]),
    ("bz2_corrupt", lambda t: (generic(t, name="t.csv.bz2", text=bz2.compress(b"x" * 1000)[:20] + b"\xff" * 30)[0], TRADES),
     ["t.csv.bz2", "unreadable bz2"]),
    ("ragged_row", lambda t: (generic(t, text=csv_text(HEADER, good_rows()).replace("\n", ",9,9\n", 3).replace(",9,9\n", "\n", 1))[0], TRADES),
     ["t.csv line 2", "7 fields, the header has 5", "(2 row(s) with more fields than the header"]),
    ("next_funding_not_a_time", lambda t: (generic(t, kind="funding", header=["time", "funding_rate", "next_funding_time"],
                                                   rows=[[G + 1, "0.0001", G + 8 * 3_600_000], [G + 2, "0.0001", "soon"]])[0], FUNDING_RATES),
     ["t.csv line 3", "'next_funding_time' is not a timestamp", "'soon'"]),
    ("explicit_unit_overflow", lambda t: (generic(t, rows=[[r[0] * 1000, *r[1:]] for r in good_rows()], options={"timestamp_unit": "ms"})[0], TRADES),
     ["t.csv line 2", "'time' is not a timestamp (epoch ms)"]),
    # Tardis
    ("tardis_missing_ticker", lambda t: (tardis(t, ticker=False), MARK_PRICES),
     ["binance-futures_derivative_ticker_2024-01-02_BTCUSDT.csv.gz", "does not exist", "2024-01-02|BTCUSDT"]),
    ("tardis_other_symbol_row", lambda t: (tardis(t, trades_rows=[["binance-futures", "BTCUSDT" if i != 3 else "ETHUSDT", (G + i) * 1000,
                                                                   (G + i) * 1000 + 5, i, "sell", "1.0", "0.010"] for i in range(1, 5)]), TRADES),
     ["binance-futures_trades_2024-01-02_BTCUSDT.csv.gz line 4", "another symbol, not BTCUSDT", "'ETHUSDT'"]),
    ("tardis_bad_local_timestamp", lambda t: (tardis(t, ticker_rows=[["binance-futures", "BTCUSDT", (G + 1) * 1000, (G + 1) * 1000, "", "", "", "", "", "", "1.5"],
                                                                     ["binance-futures", "BTCUSDT", (G + 2) * 1000, "2024-01-02", "", "", "", "", "", "", "1.5"]]), MARK_PRICES),
     ["derivative_ticker_2024-01-02_BTCUSDT.csv.gz line 3", "'local_timestamp' is not a timestamp (epoch us)"]),
    # data.binance.vision
    ("binance_checksum_mismatch", lambda t: (binance(t, checksum="wrong"), TRADES),
     ["BTCUSDT-aggTrades-2024-01-02.zip", "checksum mismatch", "CHECKSUM says 0000"]),
    ("binance_checksum_garbled", lambda t: (binance(t, checksum="garbled"), TRADES),
     ["BTCUSDT-aggTrades-2024-01-02.zip.CHECKSUM", "not a checksum file"]),
    ("binance_member_other_symbol", lambda t: (binance(t, member="ETHUSDT-aggTrades-2024-01-02.csv", checksum="none"), TRADES),
     ["BTCUSDT-aggTrades-2024-01-02.zip (member ETHUSDT-aggTrades-2024-01-02.csv)", "another symbol: ETHUSDT, not BTCUSDT"]),
    ("binance_missing_klines", lambda t: (binance(t, klines=False), MARK_PRICES),
     ["BTCUSDT-1m-2024-01-02.zip", "does not exist", "markPriceKlines"]),
    ("binance_headerless_bad_price", lambda t: (binance(t, header=False, checksum="none",
                                                        agg_rows=[[1, "42000.1", "0.010", 1, 1, G + 1, "true"], [2, "4.2e", "0.010", 2, 2, G + 2, "false"]]), TRADES),
     ["(member BTCUSDT-aggTrades-2024-01-02.csv) line 2", "'price' is not a number", "'4.2e'"]),
    # recorded JSONL
    ("jsonl_truncated_middle_line", lambda t: (jsonl(t, [agg(1), agg(2), agg(3)[:50], agg(4)]), TRADES),
     ["rec.jsonl line 3", "not a complete JSON message", "only a truncated last line is tolerated"]),
    ("jsonl_one_line_array", lambda t: (jsonl(t, ["[" + ",".join(agg(i) for i in range(1, 4)) + "]"]), TRADES),
     ["rec.jsonl line 1", "a JSON array, not JSONL", "one JSON message per line"]),
    ("jsonl_invalid_json", lambda t: (jsonl(t, [agg(1), '{"e": aggTrade}', agg(3)]), TRADES),
     ["rec.jsonl line 2", "invalid JSON"]),
    ("jsonl_wrong_field_type", lambda t: (jsonl(t, [agg(1), agg(2), agg(3, T="soon"), agg(4)]), TRADES),
     ["rec.jsonl line 3", "field 'T' is not an integer: 'soon'"]),
    ("jsonl_bad_prefix", lambda t: (jsonl(t, [agg(1), "yesterday " + agg(2)]), TRADES),
     ["rec.jsonl line 2", "not a receive time", "'yesterday'"]),
    ("jsonl_other_symbol", lambda t: (jsonl(t, [agg(i, s="ETHUSDT") for i in range(1, 4)]), TRADES),
     ["rec.jsonl line 1", "another symbol", "ETHUSDT, none for BTCUSDT"]),
    ("jsonl_price_not_a_number", lambda t: (jsonl(t, [agg(1), agg(2, p="4200O.1")]), TRADES),
     ["rec.jsonl line 2", "field 'p' is not a number", "'4200O.1'"]),
    ("jsonl_corrupt_gzip", lambda t: (jsonl(t, name="rec.jsonl.gz", raw=gzip.compress(("\n".join(agg(i) for i in range(200))).encode())[:30]
                                            + b"\x13" * 200), TRADES),
     ["rec.jsonl.gz", "unreadable gzip"]),
    ("jsonl_missing_file", lambda t: (jsonl(t, create=False, name="{symbol_lower}-{date}.jsonl"), TRADES),
     ["btcusdt-2024-01-02.jsonl", "does not exist", "2024-01-02|BTCUSDT"]),
]  # fmt: skip


def _two_member_zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", csv_text(HEADER, good_rows()))
        zf.writestr("b.csv", csv_text(HEADER, good_rows()))
    return buf.getvalue()


@pytest.mark.parametrize(("name", "make", "needles"), ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_fails_with_file_line_and_problem(tmp_path, name, make, needles):
    source, kind = make(tmp_path)
    with pytest.raises(SourceError) as err:
        landed = land(source, tmp_path / "landing")
        source.read_frame_with_notes(kind, landed, part_for())  # as the frame asset does
    message = str(err.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    # The user's own file is named; a landed copy only as where it was read from.
    said, _, copy = message.partition(" (read from the landed copy ")
    assert str(tmp_path / "landing") not in said, message
    assert not copy or copy.startswith(str(tmp_path / "landing")), message


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"files": {"depth": {"file_path": "d.csv"}}}), "unknown kind 'depth'"),
        (json.dumps({"files": {"trades": {"columns": {}}}}), "files.trades needs a 'file_path'"),
        (json.dumps({"format": "ftp", "base_path": "."}), "unknown format 'ftp'"),
        (json.dumps({"land": "symlink", "files": {"trades": "t.csv"}}), "'land' must be one of copy, hardlink"),
        (
            json.dumps({"files": {"trades": {"file_path": "t.csv", "columns": {"px": "price"}}}}),
            "unknown column role(s) px",
        ),
        (
            json.dumps({"files": {"trades": {"file_path": "t.csv", "timestamp_unit": "minutes"}}}),
            "timestamp_unit 'minutes'",
        ),
        (
            json.dumps({"files": {"trades": {"file_path": "t.csv", "has_header": "maybe"}}}),
            "has_header must be true, false or auto, not 'maybe'",
        ),
        (None, "needs a config file"),
    ],
    ids=[
        "invalid_json",
        "unknown_kind",
        "no_file_path",
        "unknown_format",
        "bad_land_mode",
        "unknown_role",
        "bad_unit",
        "bad_header",
        "no_config",
    ],
)
def test_bad_config_fails_when_the_source_is_built(tmp_path, config, needle):
    path = None
    if config is not None:
        path = tmp_path / "c.json"
        path.write_text(config)
    with pytest.raises(ConfigError) as err:
        build_source(Settings(source="csv", source_config=path))
    assert needle in str(err.value)
    if path is not None:
        assert str(path) in str(err.value)


# -- rows bad one by one: quarantined and counted -------------------------------------------------


def quarantined(source, kind, tmp_path) -> dict:
    landed = land(source, tmp_path / "landing")
    frame = source.read_frame(kind, landed, part_for())
    good, q = quarantine.split(kind, frame, part_for())
    assert good.height + q.total == frame.height
    return q.counts


QUARANTINED = [
    ("generic_bad_prices_sizes_duplicates",
     lambda t: (generic(t, rows=[*replace_row(0, {"price": "0"})[:1], *replace_row(1, {"price": "NaN"})[1:2], *replace_row(2, {"size": "-1"})[2:3],
                                 *replace_row(3, {"price": ""})[3:4], good_rows()[4], good_rows()[4]])[0], TRADES),
     {"price not a positive number": 3, "size not a positive number": 1, "duplicate trade_id": 1}),
    ("generic_row_of_yesterday",
     lambda t: (generic(t, rows=[*good_rows(), [G - 5000, "42000.1", "0.010", "buy", 99]], name="t_2024-01-02.csv",
                        options={"file_path": "t_{date}.csv"})[0], TRADES),
     {"ts_event outside 2024-01-02": 1}),
    ("generic_marks_zero_and_nan",
     lambda t: (generic(t, kind="mark", header=["time", "mark_price"], rows=[[G + 1, "42000"], [G + 2, "0"], [G + 3, "nan"], [G + 4, "42001"]])[0], MARK_PRICES),
     {"value not a positive number": 2}),
    ("generic_funding_nan_and_duplicate",
     lambda t: (generic(t, kind="funding", header=["time", "funding_rate"], rows=[[G + 1, "0.0001"], [G + 2, "NaN"], [G + 3, "0.0002"], [G + 3, "0.0002"]])[0], FUNDING_RATES),
     {"rate not a number": 1, "duplicate ts_event/ts_init": 1}),
    ("tardis_duplicate_trades",
     lambda t: (tardis(t, trades_rows=[["binance-futures", "BTCUSDT", (G + i) * 1000, (G + i) * 1000 + 9, min(i, 3), "buy", "42000.1", "0.010"]
                                       for i in range(1, 6)]), TRADES),
     {"duplicate trade_id": 2}),
    ("binance_kline_close_zero", lambda t: (binance(t, kline_close="0"), MARK_PRICES), {"value not a positive number": 1}),
    ("jsonl_duplicates_nan_and_tomorrow",
     lambda t: (jsonl(t, [agg(1), agg(2), agg(2), agg(3, p="NaN", a=9), agg(4, T=G + 86_400_000 + 5, E=G + 86_400_000 + 9, a=10), ""],
                      name="rec-2024-01-02.jsonl", file_path="rec-{date}.jsonl"), TRADES),
     {"duplicate trade_id": 1, "price not a positive number": 1, "ts_event outside 2024-01-02": 1}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "counts"), QUARANTINED, ids=[c[0] for c in QUARANTINED])
def test_rows_bad_one_by_one_are_quarantined_and_counted(tmp_path, name, make, counts):
    source, kind = make(tmp_path)
    assert quarantined(source, kind, tmp_path) == counts


# -- through Dagster: the failure message and the check metadata ------------------------------------


def test_dagster_run_fails_with_the_sources_message_and_quarantines_with_counts(tmp_path):
    rows = [*good_rows(), [G + 9000, "0", "0.010", "sell", 200], [G + 9500, "42000.1", "0.010", "sell", 101]]
    source, path = generic(tmp_path, rows=rows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    settings = make_settings(
        tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=Path(source.config_path)
    )
    key = partition_key(DAY, "BTCUSDT")
    instance = make_instance(tmp_path)
    result = build(settings, instance, [key])[str(key)]
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "trades_schema")
    assert check.passed and check.metadata["quarantined_by_reason"].value == {
        "price not a positive number": 1, "duplicate trade_id": 1}  # fmt: skip
    side = pl.read_parquet(settings.staging_dir / "quarantine" / "trades" / "2024-01-02" / "BTCUSDT.parquet")
    assert sorted(side["reason"].to_list()) == ["duplicate trade_id", "price not a positive number"]
    landed = settings.raw_dir / "csv" / "2024-01-02" / "BTCUSDT" / "t.csv"
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == digest  # the raw file stays as landed

    # The same file with a number that is not one: the run fails, naming the file and the line.
    path.write_text(csv_text(HEADER, replace_row(1, {"price": '"42,000.1"'})))
    result = build(settings, instance, [key], raise_on_error=False)[str(key)]
    assert not result.success
    failure = next(ev for ev in result.get_step_failure_events())
    description = failure.step_failure_data.user_failure_data.description
    assert "2024-01-02|BTCUSDT" in description and "t.csv" in description and "line 3" in description
    assert "'price' is not a number: '42,000.1'" in description


@pytest.mark.parametrize("config", [{"format": "tardis", "base_path": "."}, {"base_path": "."}])
def test_jsonl_source_refuses_a_config_without_files(tmp_path, config):
    from hedgegrid_assets.sources.jsonl import from_settings as jsonl_from_settings

    path = write_config(tmp_path / "c.json", config)
    with pytest.raises(ConfigError) as err:
        jsonl_from_settings(Settings(source="jsonl", source_config=path))
    assert str(path) in str(err.value) and ("CSV layout" in str(err.value) or "names no file" in str(err.value))


@pytest.mark.parametrize(
    ("source_cls", "config", "read", "needle"),
    [
        (
            JsonlSource,
            {"trade_stream": "quotes"},
            lambda s: s._trade_stream(),
            "'trade_stream' must be aggTrade or trade, not 'quotes'",
        ),
        (
            BinanceVisionSource,
            {"format": "binance", "trades": "klines"},
            lambda s: s.trade_type,
            "'trades' must be aggTrades or trades, not 'klines'",
        ),
    ],
    ids=["jsonl_trade_stream", "binance_trades"],
)
def test_a_trade_choice_outside_its_choices_is_a_config_error(tmp_path, source_cls, config, read, needle):
    cfg = write_config(tmp_path / "c.json", {"base_path": ".", "files": {"trades": "t.jsonl"}, **config})
    with pytest.raises(ConfigError, match=needle):
        read(source_cls(config_path=str(cfg)))
    auto = write_config(
        tmp_path / "auto.json",
        {
            "base_path": ".",
            "files": {"trades": "t.jsonl"},
            **{k: "AUTO" for k in config if k != "format"},
            **{k: v for k, v in config.items() if k == "format"},
        },
    )
    assert read(source_cls(config_path=str(auto))) is None  # 'auto' (any case): decided from the files
