"""Property-based tests (hypothesis) of every reader of vendor files and source configs.

Whatever bytes a landed file holds, a reader returns a frame (with its kind's columns) or
raises a clear error naming the file (`SourceError`; `ConfigError` for a source config),
never a traceback of another type (a bare polars ComputeError, UnicodeDecodeError, KeyError,
zlib.error, BadZipFile...) and never a hang.

Each reader gets (a) arbitrary bytes, as the file itself and packed in a valid gzip/zip/bz2
wrapper where it reads packed files, and (b) a small valid file of its format (a few lines,
made here) mutated: cut short, bytes flipped/inserted/deleted, lines repeated or dropped,
fields swapped or emptied, numbers made huge, bytes that are not UTF-8, before or after
packing. Derandomized, so CI runs the same examples every time; inputs that once found a bug
are kept as explicit `@example`s.
"""

from __future__ import annotations

import bz2
import datetime as dt
import faulthandler
import gzip
import hashlib
import io
import re
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.formats.binance import depth as binance_depth
from hedgegrid_assets.formats.binance import public_data
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.formats.csv.reader import Table, read_table
from hedgegrid_assets.formats.tardis import datasets as tardis_datasets
from hedgegrid_assets.frames import (
    EXCHANGE_BARS,
    FUNDING_RATES,
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    ORDER_BOOK_DEPTH10,
    QUOTES,
    TRADES,
)  # fmt: skip
from hedgegrid_assets.landing import compressed, source_config
from hedgegrid_assets.sources import csv as csv_source
from hedgegrid_assets.sources import jsonl as jsonl_source
from hedgegrid_assets_tests.test_csv_sources import csv_text
from hedgegrid_assets_tests.test_jsonl_source import DAY
from hedgegrid_assets_tests.test_jsonl_source import part_for as new_part

T0_MS = 1_704_153_600_000  # DAY 00:00 UTC
T0_US = T0_MS * 1000
part_for = cache(new_part)  # the partition every file here is read for (BTCUSDT, DAY)
HANG_S = 60  # one reader call longer than this is a hang: the run stops with every thread's stack

FUZZ = settings(
    max_examples=25,
    deadline=dt.timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MUTATE = settings(FUZZ, max_examples=30)


# -- the outcome --------------------------------------------------------------------------------


@contextmanager
def no_hang(seconds: int = HANG_S):
    """A call that never returns fails the run (every thread's stack dumped) instead of hanging CI."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def assert_frame_or_clear_error(call: Callable, path: Path, columns: list[str] | None = None, also: tuple = ()):
    """`call()` returns (a frame with `columns`, or a tuple starting with one) or raises
    SourceError/ConfigError naming `path` (or one of `also`); any other exception is a bug and
    propagates. Returns the result, None after a clear error."""
    names = [Path(path).name, *(Path(p).name for p in also)]
    try:
        with no_hang():
            result = call()
    except (SourceError, ConfigError) as err:
        assert any(n in str(err) for n in names), f"{type(err).__name__} does not name {names[0]}: {err}"
        return None
    if columns is not None:
        frame = result[0] if isinstance(result, tuple) else result
        assert isinstance(frame, pl.DataFrame), f"not a frame: {type(frame).__name__}"
        assert frame.columns == list(columns)
    return result


# -- mutations ----------------------------------------------------------------------------------

HUGE = [b"9" * 40, b"1e999", b"-9223372036854775809", b"18446744073709551616", b"NaN", b"-inf", b"1e-400", b"0"]
NOT_UTF8 = [b"\xff", b"\xc3\x28", b"\xe9t\xe9", b"\x80\x80", b"\xed\xa0\x80", b"\x00"]
# Positions are taken modulo the file's (line's) length: a mutation is meaningful for any file.
AT = st.integers(0, 1 << 16)
MUTATION = st.one_of(
    st.tuples(st.just("truncate"), AT),
    st.tuples(st.just("flip"), AT, st.integers(1, 255)),
    st.tuples(st.just("insert"), AT, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), AT, st.integers(1, 16)),
    st.tuples(st.just("duplicate_line"), AT),
    st.tuples(st.just("drop_line"), AT),
    st.tuples(st.just("swap_fields"), AT, AT, AT),
    st.tuples(st.just("empty_field"), AT, AT),
    st.tuples(st.just("huge_number"), AT, AT, st.sampled_from(HUGE)),
    st.tuples(st.just("not_utf8"), AT, st.sampled_from(NOT_UTF8)),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=4)
ARBITRARY = st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode))


def mutate(data: bytes, ops, json: bool = False) -> bytes:
    """`data` with each operation applied in turn (fields: split on commas; in a JSON line an
    emptied field keeps its key: `"p":""`)."""
    for op, *args in ops:
        n = len(data)
        if op == "truncate":
            data = data[: args[0] % (n + 1)]
        elif op == "flip":
            if n:
                i = args[0] % n
                data = data[:i] + bytes([data[i] ^ args[1]]) + data[i + 1 :]
        elif op in ("insert", "not_utf8"):
            i = args[0] % (n + 1)
            data = data[:i] + args[1] + data[i:]
        elif op == "delete":
            i = args[0] % (n + 1)
            data = data[:i] + data[i + args[1] :]
        else:
            lines = data.split(b"\n")
            i = args[0] % len(lines)
            if op == "duplicate_line":
                lines.insert(i, lines[i])
            elif op == "drop_line":
                del lines[i]
            elif op == "huge_number":
                numbers = list(re.finditer(rb"\d+(?:\.\d+)?", lines[i]))
                if numbers:
                    m = numbers[args[1] % len(numbers)]
                    lines[i] = lines[i][: m.start()] + args[2] + lines[i][m.end() :]
            else:
                fields = lines[i].split(b",")
                if op == "swap_fields":
                    a, b = args[1] % len(fields), args[2] % len(fields)
                    fields[a], fields[b] = fields[b], fields[a]
                else:  # empty_field
                    j = args[1] % len(fields)
                    key, colon, _ = fields[j].partition(b":")
                    fields[j] = key + b':""' if json and colon else b""
                lines[i] = b",".join(fields)
            data = b"\n".join(lines)
    return data


# -- the readers and their small valid files ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the file's name: its suffix says how it is packed
    valid: Callable[[], bytes]  # a small valid file, unpacked
    read: Callable[[Path], object]  # calls the reader(s) on the file, through assert_frame_or_clear_error
    member: str | None = None  # the zip member's name
    json: bool = False
    rows: bool = True  # the valid file gives rows (not just no error)
    mutated: bool = True  # in the mutation test (not when another case reads the same text the same way)

    @property
    def packed(self) -> bool:
        return compressed.packing(Path(self.name)) != "plain"


def pack(name: str, data: bytes, member: str | None = None) -> bytes:
    kind = compressed.packing(Path(name))
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(member or Path(name).with_suffix(".csv").name, data)
        return buf.getvalue()
    return data


@contextmanager
def written(tmp_path_factory, case: Case, data: bytes):
    """`data` as the case's file in a fresh directory of its own (hypothesis runs many examples
    per test: a function-scoped tmp_path would be shared by all of them)."""
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as tmp:
        path = Path(tmp) / case.name
        path.write_bytes(data)
        yield path


@cache
def sample_lines() -> dict[str, list[str]]:
    """A few lines of a sample day (Tardis replay lines `<receive time> <message>`), from its
    first depth snapshot on: 3 of each message type, in file order."""
    from hedgegrid_assets.sources.sample import generate_day

    lines = generate_day(part_for(), 20, 7).get_column("line").to_list()
    start = next(i for i, line in enumerate(lines) if '"lastUpdateId"' in line)
    picked, seen = [], {}
    for line in lines[start:]:
        e = "snapshot" if '"lastUpdateId"' in line else re.search(r'"e":"([^"]+)"', line).group(1)
        if seen.get(e, 0) < (1 if e == "snapshot" else 3):
            seen[e] = seen.get(e, 0) + 1
            picked.append(line)
        if len(picked) == 13:
            break
    return {"all": picked}


def replay_bytes() -> bytes:
    return ("\n".join(sample_lines()["all"]) + "\n").encode()


def read_ws_kinds(path: Path):
    out = None
    for kind in (FUNDING_RATES, MARK_PRICES, QUOTES, TRADES):
        out = assert_frame_or_clear_error(lambda kind=kind: binance_ws.read_kind(kind, [path]), path, kind.columns)
    return out


def read_depth(path: Path):
    return assert_frame_or_clear_error(lambda: binance_depth.read_replay([path]), path, list(binance_depth.COLUMNS))


def read_jsonl(path: Path):
    out = None
    for kind in binance_ws.KINDS_DECODED:
        out = assert_frame_or_clear_error(
            lambda kind=kind: jsonl_source.read_recordings(kind, [path], part_for(), multi_day=False, book=True),
            path,
            kind.columns,
        )
        if out is None:  # the file's messages are decoded once for every kind: so is its error
            break
    return out


# Binance public data (data.binance.vision zips; ms timestamps, header rows).
AGG_TRADES = csv_text(
    list(public_data.TABLES["aggTrades"].column_names),
    [
        [100 + i, 42000.5 + i, "0.010", 200 + i, 200 + i, T0_MS + 1000 * i, "true" if i % 2 else "false"]
        for i in range(4)
    ],
)
TRADES_CSV = csv_text(
    list(public_data.TABLES["trades"].column_names),
    [[300 + i, 42000.5, "0.002", "84.001", T0_MS + 500 * i, "false"] for i in range(4)],
)
BOOK_TICKER = csv_text(
    list(public_data.TABLES["bookTicker"].column_names),
    [[900 + i, 42000.1, "1.5", 42000.2, "0.7", T0_MS + 100 * i, T0_MS + 100 * i + 3] for i in range(4)],
)
KLINES = csv_text(
    list(public_data.KLINE_COLUMNS),
    [[T0_MS + 60_000 * i, 42000.0, 42010.5, 41990.0, 42005.0, "12.5", T0_MS + 60_000 * i + 59_999, "525000.0", 40,
      "6.1", "256000.0", 0] for i in range(4)],
)  # fmt: skip
FUNDING = csv_text(
    list(public_data.TABLES["fundingRate"].column_names),
    [[T0_MS + h * 3_600_000 + 3, 8, "0.00010000"] for h in (-16, -8, 0, 8, 16, 24)],
)


def read_binance_table(table: str, kind):
    def read(path: Path):
        public_data.check_member_symbol(path, part_for())
        return read_table(path, public_data.TABLES[table], kind, part_for())

    return lambda path: assert_frame_or_clear_error(lambda: read(path), path, kind.columns)


def read_checksum(path: Path):
    """`path` is the .CHECKSUM file; the zip it names is written beside it (valid, fixed)."""
    zip_path = path.with_name(path.name.removesuffix(public_data.CHECKSUM_SUFFIX))
    zip_path.write_bytes(CHECKSUMMED_ZIP)
    return assert_frame_or_clear_error(
        lambda: public_data.verify_checksum(zip_path, path) or "ok", path, also=(zip_path,)
    )


CHECKSUMMED_ZIP = pack("BTCUSDT-aggTrades-2024-01-02.zip", AGG_TRADES.encode(), "BTCUSDT-aggTrades-2024-01-02.csv")

# Tardis CSV datasets (µs timestamps).
TARDIS_TRADES = csv_text(
    ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"],
    [["binance-futures", "BTCUSDT", T0_US + 1000 * i, T0_US + 1000 * i + 250, 7000 + i, "buy" if i % 2 else "sell",
      42000.5, "0.001"] for i in range(4)],
)  # fmt: skip
TARDIS_QUOTES = csv_text(
    ["exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount"],
    [["binance-futures", "BTCUSDT", T0_US + 1000 * i, T0_US + 1000 * i + 250, "0.5", 42000.6, 42000.5, "1.2"]
     for i in range(4)],
)  # fmt: skip
TARDIS_TICKER = csv_text(
    ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate", "predicted_funding_rate",
     "open_interest", "last_price", "index_price", "mark_price"],
    [["binance-futures", "BTCUSDT", T0_US + 1_000_000 * i, T0_US + 1_000_000 * i + 500, T0_US + 8 * 3_600_000_000,
      f"0.0001{i}", "0.0001", "75000.1", 42000.5, 42000.1 + i, 42000.2 + i] for i in range(4)],
)  # fmt: skip
TARDIS_L2 = csv_text(
    ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"],
    [["binance-futures", "BTCUSDT", T0_US, T0_US + 100, "true", "bid", 42000.5, "1.5"],
     ["binance-futures", "BTCUSDT", T0_US, T0_US + 100, "true", "ask", 42000.6, "0.5"],
     ["binance-futures", "BTCUSDT", T0_US + 1000, T0_US + 1100, "false", "bid", 42000.5, "0"],
     ["binance-futures", "BTCUSDT", T0_US + 2000, T0_US + 2100, "false", "ask", 42000.7, "2.25"]],
)  # fmt: skip
TARDIS_SNAPSHOT_5 = csv_text(
    ["exchange", "symbol", "timestamp", "local_timestamp"]
    + [f"{side}[{i}].{f}" for i in range(5) for side in ("asks", "bids") for f in ("price", "amount")],
    [["binance-futures", "BTCUSDT", T0_US + 1000 * r, T0_US + 1000 * r + 50]
     + [v for i in range(5) for v in (42000.6 + i / 10, "0.5", 42000.5 - i / 10, "1.5")] for r in range(3)],
)  # fmt: skip


def tardis_name(data_type: str) -> str:
    return f"binance-futures_{data_type}_{DAY}_BTCUSDT.csv.gz"


def read_tardis(*kinds):
    def read(path: Path):
        out = None
        for kind in kinds:
            call = lambda kind=kind: tardis_datasets.read_file(kind, path, part_for())  # noqa: E731
            out = assert_frame_or_clear_error(call, path, kind.columns)
        return out

    return read


# Generic CSV files (a config's column map and timestamp format).
GENERIC_TRADES = csv_text(
    ["time", "px", "qty", "side", "id"],
    [[f"2024-01-02T00:00:0{i}.25Z", 42000.5, "0.01", "buy" if i % 2 else "SELL", 10 + i] for i in range(4)],
)
GENERIC_QUOTES = csv_text(
    ["ts", "bid", "ask", "bid_qty", "ask_qty", "symbol"],
    [[T0_MS + i, 42000.5, 42000.6, "1", "2", "BTCUSDT"] for i in range(4)],
)
GENERIC_FUNDING = csv_text(
    ["time", "rate", "next_funding_time", "funding_interval_hours"],
    [[f"2024-01-02 0{i}:00:00", "0.0001", "2024-01-02 08:00:00", 8] for i in range(4)],
)
GENERIC_MARK = csv_text(
    ["timestamp;mark_price;index_price"], [[f"{T0_MS + 1000 * i};42000.5;42000.1"] for i in range(4)]
)


def read_generic(kind, options: dict):
    table = Table.from_options(options, False, "fuzz")

    def read(path: Path):
        return assert_frame_or_clear_error(lambda: read_table(path, table, kind, part_for()), path, kind.columns)

    return read


TRADE_OPTIONS = {"columns": {"timestamp": "time", "price": "px", "size": "qty", "aggressor_side": "side",
                             "trade_id": "id"}, "timestamp_format": "iso"}  # fmt: skip
FUNDING_OPTIONS = {"timestamp_format": "%Y-%m-%d %H:%M:%S", "columns": {"timestamp": "time", "funding_rate": "rate"}}


# Source configs (JSON).
CONFIG = (
    '{"base_path": "data", "symbol": "BTCUSDT", "land": "copy",\n'
    ' "files": {"trades": {"file_path": "{symbol}/trades-{date}.csv.gz",\n'
    '                      "columns": {"timestamp": "time", "price": "price", "size": "qty"},\n'
    '                      "timestamp_format": "%Y-%m-%d %H:%M:%S.%f", "has_header": true, "separator": ","},\n'
    '           "quotes": {"file_path": "quotes.csv", "timestamp_unit": "ms", "column_names": ["a", "b"]},\n'
    '           "mark": "mark-{date}.csv",\n'
    '           "deltas": {"file_path": "l2-{date}.csv.gz"}}}\n'
)


def read_config(path: Path):
    assert_frame_or_clear_error(lambda: source_config.load_config(path), path)
    return assert_frame_or_clear_error(lambda: csv_source.from_config(path), path)


# Landing: opening packed files, and the line blocks the L2 reader parses.
TEXT_LINES = "".join(f"line {i},{i * 7},ok\n" for i in range(20))


def read_packed(path: Path):
    def read():
        with compressed.opened(path, member_suffix=".txt") as opened:
            opened.path.read_bytes()
        return b"".join(compressed.line_blocks(path, 64))

    return assert_frame_or_clear_error(read, path)


REPLAY = "binance-futures_2024-01-02_BTCUSDT.ndjson"
CASES = [
    Case("ws-replay", REPLAY, replay_bytes, read_ws_kinds, json=True),
    Case("ws-replay-gz", REPLAY + ".gz", replay_bytes, read_ws_kinds, json=True),
    Case("depth-replay", REPLAY, replay_bytes, read_depth, json=True),
    Case("depth-replay-gz", REPLAY + ".gz", replay_bytes, read_depth, json=True),
    Case("jsonl", "rec.jsonl", replay_bytes, read_jsonl, json=True),
    Case("jsonl-gz", "rec.jsonl.gz", replay_bytes, read_jsonl, json=True),
    Case("jsonl-zip", "rec.zip", replay_bytes, read_jsonl, member="rec.jsonl", json=True, mutated=False),
    Case("jsonl-bz2", "rec.jsonl.bz2", replay_bytes, read_jsonl, json=True, mutated=False),
    Case(
        "binance-aggTrades",
        "BTCUSDT-aggTrades-2024-01-02.zip",
        AGG_TRADES.encode,
        read_binance_table("aggTrades", TRADES),
    ),
    Case("binance-trades", "BTCUSDT-trades-2024-01-02.zip", TRADES_CSV.encode, read_binance_table("trades", TRADES)),
    Case(
        "binance-bookTicker",
        "BTCUSDT-bookTicker-2024-01-02.zip",
        BOOK_TICKER.encode,
        read_binance_table("bookTicker", QUOTES),
    ),
    Case(
        "binance-markPriceKlines",
        "BTCUSDT-1m-2024-01-02.zip",
        KLINES.encode,
        read_binance_table("markPriceKlines", MARK_PRICES),
    ),
    Case(
        "binance-klines",
        "BTCUSDT-klines-1m-2024-01-02.zip",
        KLINES.encode,
        lambda p: assert_frame_or_clear_error(
            lambda: public_data.read_bars(EXCHANGE_BARS, [p], part_for()), p, EXCHANGE_BARS.columns
        ),
    ),
    Case(
        "binance-fundingRate",
        "BTCUSDT-fundingRate-2024-01.zip",
        FUNDING.encode,
        lambda p: assert_frame_or_clear_error(
            lambda: public_data.read_funding([p], part_for()), p, FUNDING_RATES.columns
        ),
    ),
    Case(
        "binance-checksum",
        "BTCUSDT-aggTrades-2024-01-02.zip.CHECKSUM",
        lambda: f"{hashlib.sha256(CHECKSUMMED_ZIP).hexdigest()}  BTCUSDT-aggTrades-2024-01-02.zip\n".encode(),
        read_checksum,
        rows=False,
    ),
    Case("tardis-trades", tardis_name("trades"), TARDIS_TRADES.encode, read_tardis(TRADES)),
    Case("tardis-quotes", tardis_name("quotes"), TARDIS_QUOTES.encode, read_tardis(QUOTES)),
    Case(
        "tardis-ticker", tardis_name("derivative_ticker"), TARDIS_TICKER.encode, read_tardis(FUNDING_RATES, MARK_PRICES)
    ),
    Case("tardis-l2", tardis_name("incremental_book_L2"), TARDIS_L2.encode, read_tardis(ORDER_BOOK_DELTAS)),
    Case(
        "tardis-l2-plain",
        f"binance-futures_incremental_book_L2_{DAY}_BTCUSDT.csv",
        TARDIS_L2.encode,
        read_tardis(ORDER_BOOK_DELTAS),
    ),
    Case("tardis-snapshot5", tardis_name("book_snapshot_5"), TARDIS_SNAPSHOT_5.encode, read_tardis(ORDER_BOOK_DEPTH10)),
    Case("csv-trades", "BTCUSDT-trades.csv", GENERIC_TRADES.encode, read_generic(TRADES, TRADE_OPTIONS)),
    Case("csv-trades-bz2", "BTCUSDT-trades.csv.bz2", GENERIC_TRADES.encode, read_generic(TRADES, TRADE_OPTIONS)),
    Case("csv-quotes-gz", "quotes.csv.gz", GENERIC_QUOTES.encode, read_generic(QUOTES, {"has_header": "auto"})),
    Case(
        "csv-funding-zip", "BTCUSDT-funding.zip", GENERIC_FUNDING.encode, read_generic(FUNDING_RATES, FUNDING_OPTIONS)
    ),
    Case(
        "csv-mark-semicolon",
        "BTCUSDT-mark.csv",
        GENERIC_MARK.encode,
        read_generic(MARK_PRICES, {"separator": ";", "timestamp_unit": "ms"}),
    ),
    Case("source-config", "source.json", CONFIG.encode, read_config, json=True, rows=False),
    Case("landing-plain", "lines.txt", TEXT_LINES.encode, read_packed, rows=False),
    Case("landing-gz", "lines.txt.gz", TEXT_LINES.encode, read_packed, rows=False),
    Case("landing-zip", "lines.zip", TEXT_LINES.encode, read_packed, member="lines.txt", rows=False),
    Case("landing-bz2", "lines.txt.bz2", TEXT_LINES.encode, read_packed, rows=False),
]
PACKED = [c for c in CASES if c.packed]
MUTATED = [c for c in CASES if c.mutated]


def ids(case: Case) -> str:
    return case.id


# -- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_the_valid_file_reads(tmp_path_factory, case):
    """The mutations start from a file the reader takes: otherwise they would prove nothing."""
    with written(tmp_path_factory, case, pack(case.name, case.valid(), case.member)) as path:
        with no_hang():
            out = case.read(path)
    assert out is not None, f"{case.id}: the valid file did not read"
    if case.rows:
        frame = out[0] if isinstance(out, tuple) else out
        assert frame.height > 0, f"{case.id}: the valid file gave no rows"


# Inputs that found a bug (each fixed in the reader named), kept as explicit examples. An example
# for some readers only says which (`found_on`: case ids, or their prefixes): the rest skip it.
@pytest.mark.parametrize("case", CASES, ids=ids)
@FUZZ
@given(data=ARBITRARY)
@example(data=b"")  # ws.read_kind, depth.read_replay: polars NoDataError (an empty file)
@example(data=b"\x00")  # ws.read_kind, depth.read_replay: polars ComputeError (a line that is not JSON)
@example(data=b"\x1f")  # ws.read_kind, depth.read_replay: polars SchemaError (read_lines' separator byte)
def test_arbitrary_bytes_give_a_frame_or_a_clear_error(tmp_path_factory, case, data):
    with written(tmp_path_factory, case, data) as path:
        case.read(path)


@pytest.mark.parametrize("case", PACKED, ids=ids)
@FUZZ
@given(data=ARBITRARY)
@example(data=b"")  # ws.read_kind, depth.read_replay (.gz): polars NoDataError
@example(data=b"\x1f")  # ws.read_kind, depth.read_replay (.gz): polars SchemaError
def test_arbitrary_bytes_in_a_valid_wrapper_give_a_frame_or_a_clear_error(tmp_path_factory, case, data):
    with written(tmp_path_factory, case, pack(case.name, data, case.member)) as path:
        case.read(path)


@pytest.mark.parametrize("case", MUTATED, ids=ids)
@MUTATE
@given(ops=MUTATIONS, after_packing=st.booleans(), found_on=st.none())
# ws.read_kind, depth.read_replay: an empty file (NoDataError), a line `2` (ComputeError)
@example(ops=[("truncate", 0)], after_packing=False, found_on=None)
@example(ops=[("truncate", 1)], after_packing=False, found_on=None)
# ws.read_kind, depth.read_replay, tardis book_snapshot: a gzip stream cut short (OSError from polars)
@example(ops=[("truncate", 4)], after_packing=True, found_on=("ws-replay-gz", "depth-replay-gz", "tardis-snapshot5"))
# csv reader (.gz): zlib.error from _is_empty_gzip; BadGzipFile/EOFError sniffing the header row
@example(ops=[("truncate", 7), ("duplicate_line", 0)], after_packing=True, found_on=("tardis-quotes", "csv-quotes-gz"))
@example(ops=[("flip", 21, 1)], after_packing=True, found_on=("csv-quotes-gz",))
@example(ops=[("flip", 2, 1)], after_packing=True, found_on=("csv-quotes-gz",))
@example(ops=[("truncate", 10)], after_packing=True, found_on=("csv-quotes-gz",))
# tardis incremental_book_L2: SchemaError (a short row, a cut-off row), invalid UTF-8 (ComputeError)
@example(ops=[("truncate", 73)], after_packing=False, found_on=("tardis-l2",))
@example(ops=[("flip", 112, 1)], after_packing=False, found_on=("tardis-l2",))
@example(ops=[("insert", 72, b"\x80")], after_packing=False, found_on=("tardis-l2",))
# csv reader, funding: an interval of 1e40 hours (InvalidOperationError casting to UInt16 minutes)
@example(ops=[("huge_number", 1, 3541, b"9" * 40)], after_packing=False, found_on=("csv-funding-zip",))
# jsonl recording: an empty bid price `"b":""` (InvalidOperationError casting to Float64)
@example(ops=[("empty_field", 4, 44)], after_packing=False, found_on=("jsonl",))
def test_a_mutated_valid_file_gives_a_frame_or_a_clear_error(tmp_path_factory, case, ops, after_packing, found_on):
    if found_on is not None and not case.id.startswith(found_on):
        return
    valid = case.valid()
    if after_packing and case.packed:
        data = mutate(pack(case.name, valid, case.member), ops)
    else:
        data = pack(case.name, mutate(valid, ops, case.json), case.member)
    with written(tmp_path_factory, case, data) as path:
        case.read(path)
