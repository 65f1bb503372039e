"""Reading CSV files into canonical frames, columnar (polars lazy scan, streaming collect).

This module knows no vendor's file format. Each CSV-shaped source describes its files with a
`Table` (role -> column, header or not, column names of a headerless file, timestamp format,
separator, whether the file spans many days, symbol rules) and hands it to `read_table` (the
kind's canonical frame) or `load_rows` (the parsed rows, for a source that builds the frame
itself): sources/csv.py from its JSON config, formats/tardis/datasets.py and formats/binance/public_data.py from the
layouts of the vendors' files.

- Files may be plain, .gz, .zip (one member) or .bz2; an empty file (or empty gzip) is None:
  an empty day.
- Roles a Table leaves unmapped are guessed from the header, case-insensitively (GUESSES);
  a required role that is neither mapped nor found is an error naming the header.
- Timestamps: the Table's format (strftime, iso, epoch unit) or, without one, detected per
  column (epoch numbers, unit from magnitude, or ISO strings). ts_event is `timestamp`,
  ts_init is `local_timestamp` when mapped, else `timestamp`.
- Fast path first: when every timestamp is an integer epoch, polars parses numbers and
  timestamps while reading; anything it cannot take sends the file down the text path, which
  parses each column from its text and names the first bad value's file, line and column.
- Empty numbers become null (quarantined later as not positive); a filled cell that does not
  parse, a timestamp that does not parse, an unknown side fail with file, line and value.
- With a `symbol` column, rows of other symbols are left out (counted), a file with other
  symbols only is an error, and with `strict_symbol` any row of another symbol is.
- A multi-day Table keeps the rows whose ts_init falls on the partition's UTC day.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.formats import parsing
from hedgegrid_assets.formats.parsing import TimestampFormat
from hedgegrid_assets.frames import (
    EXCHANGE_BARS,
    FUNDING_RATES,
    MARK_BARS,
    MARK_PRICES,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)
from hedgegrid_assets.landing import compressed

# Roles each kind reads: required first.
ROLES: dict[str, tuple[list[str], list[str]]] = {
    TRADES.name: (["timestamp", "price", "size"], ["aggressor_side", "trade_id", "local_timestamp", "symbol"]),
    QUOTES.name: (["timestamp", "bid_price", "ask_price", "bid_size", "ask_size"], ["local_timestamp", "symbol"]),
    MARK_PRICES.name: (["timestamp", "mark_price"], ["index_price", "local_timestamp", "symbol"]),
    FUNDING_RATES.name: (
        ["timestamp", "funding_rate"],
        ["next_funding_time", "funding_interval_hours", "local_timestamp", "symbol"],
    ),
    # Bars: timestamp is the bar's open; local_timestamp its close.
    **{
        k.name: (["timestamp", "open", "high", "low", "close"], ["volume", "local_timestamp", "symbol"])
        for k in (EXCHANGE_BARS, MARK_BARS)
    },
}
# Header names tried for an unmapped role, in order; compared lower-case without punctuation.
GUESSES: dict[str, list[str]] = {
    "timestamp": ["timestamp", "ts_event", "time", "datetime", "date_time", "transact_time", "trade_time",
                  "event_time", "exchange_timestamp", "ts", "date", "created_at", "T", "E"],
    "local_timestamp": ["local_timestamp", "ts_init", "receive_time", "recv_time", "received_at", "recv_ts",
                        "local_time", "receipt_timestamp"],
    "price": ["price", "px", "trade_price", "p"],
    "size": ["size", "amount", "qty", "quantity", "volume", "base_qty", "sz", "q"],
    "aggressor_side": ["aggressor_side", "side", "taker_side", "aggressor", "direction", "is_buyer_maker",
                       "buyer_maker", "isBuyerMaker", "m"],
    "trade_id": ["trade_id", "id", "tid", "agg_trade_id", "aggregate_trade_id", "trade_no", "a"],
    "bid_price": ["bid_price", "best_bid_price", "bid", "bid_px", "b"],
    "ask_price": ["ask_price", "best_ask_price", "ask", "ask_px", "offer_price", "offer", "a"],
    "bid_size": ["bid_size", "bid_amount", "bid_qty", "best_bid_qty", "bid_quantity", "bid_sz", "B"],
    "ask_size": ["ask_size", "ask_amount", "ask_qty", "best_ask_qty", "ask_quantity", "ask_sz", "offer_size", "A"],
    "mark_price": ["mark_price", "markprice", "mark", "mark_px", "value", "price", "p"],
    "index_price": ["index_price", "indexprice", "index", "index_px", "i"],
    "funding_rate": ["funding_rate", "fundingrate", "rate", "last_funding_rate", "funding", "r"],
    "next_funding_time": ["next_funding_time", "nextfundingtime", "funding_timestamp", "funding_time",
                          "next_funding_ts", "next_funding"],
    "funding_interval_hours": ["funding_interval_hours", "interval_hours", "funding_interval"],
    "symbol": ["symbol", "instrument", "instrument_id", "ticker", "pair", "s"],
    "open": ["open", "o"], "high": ["high", "h"], "low": ["low", "l"], "close": ["close", "c"],
    "volume": ["volume", "v"],
}  # fmt: skip
BUYER_MAKER_NAMES = {"isbuyermaker", "buyermaker", "m", "ismaker"}
TIMESTAMP_ROLES = ("timestamp", "local_timestamp", "next_funding_time")
NUMBER_ROLES = (
    "price",
    "size",
    "bid_price",
    "ask_price",
    "bid_size",
    "ask_size",
    "mark_price",
    "index_price",
    "funding_rate",
    "funding_interval_hours",
    "open",
    "high",
    "low",
    "close",
    "volume",
)
# The value roles each kind parses (numbers and the optional next_funding_time), in check order.
VALUES: dict[str, list[str]] = {
    TRADES.name: ["price", "size"],
    QUOTES.name: ["bid_price", "ask_price", "bid_size", "ask_size"],
    MARK_PRICES.name: ["mark_price", "index_price"],
    FUNDING_RATES.name: ["funding_rate", "next_funding_time", "funding_interval_hours"],
    **{k.name: ["open", "high", "low", "close", "volume"] for k in (EXCHANGE_BARS, MARK_BARS)},
}
_INTEGER_RE = r"^[+-]?\d+$"


def value(role: str) -> pl.Expr:
    """A parsed value role's column in `Rows.frame` (Float64, or Datetime for next_funding_time)."""
    return pl.col(f"_v_{role}")


SAMPLE_ROWS = 500


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class Table:
    """How to read one CSV file into one kind."""

    columns: dict = field(default_factory=dict)  # role -> column name or index (configured)
    ts_format: TimestampFormat | None = None
    has_header: bool | None = True  # None: detect (first cell not a number -> header)
    column_names: tuple[str, ...] | None = None
    separator: str = ","
    multi_day: bool = False  # keep only the partition's day (by ts_init)
    side_is_buyer_maker: bool | None = None  # None: from the column's name
    strict_symbol: bool = False  # every row must be the partition's symbol (vendor per-symbol files)
    needs_symbol_column: bool = False  # neither the path nor the config says the file's symbol

    @classmethod
    def from_options(cls, options: dict, multi_day: bool, where: str) -> Table:
        try:
            ts_format = TimestampFormat.from_config(options.get("timestamp_format"), options.get("timestamp_unit"))
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        columns = options.get("columns") or {}
        if not isinstance(columns, dict):
            raise ConfigError(f"{where}: 'columns' must map roles to column names")
        names = options.get("column_names")
        return cls(
            columns=dict(columns),
            ts_format=ts_format,
            has_header=_header_option(options.get("has_header", options.get("header", True)), where),
            column_names=tuple(names) if names else None,
            separator=str(options.get("separator", options.get("delimiter", ","))),
            multi_day=multi_day,
            side_is_buyer_maker=options.get("side_is_buyer_maker"),
        )


def _header_option(value, where: str) -> bool | None:
    """true/false (JSON or text), or 'auto'."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ConfigError(f"{where}: has_header must be true, false or auto, not {value!r}")


def scan(path: Path, table: Table, dtypes: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
    """Every column as String (but those in `dtypes`), plus `_line`: the row's line number in the file."""
    kwargs: dict = {"schema_overrides": dtypes} if dtypes else {}
    if not table.has_header and table.column_names:
        kwargs["new_columns"] = list(table.column_names)
    return pl.scan_csv(
        path,
        has_header=table.has_header,
        separator=table.separator,
        infer_schema=False,
        row_index_name="_line",
        row_index_offset=2 if table.has_header else 1,
        truncate_ragged_lines=False,
        **kwargs,
    )


def resolve_columns(
    header: list[str], required: list[str], optional: list[str], table: Table, label: str
) -> dict[str, str]:
    """Role -> header column, from the config's mapping, else guessed; SourceError if required is missing."""
    known = {*required, *optional}
    unknown = [r for r in table.columns if r not in known]
    if unknown:
        raise SourceError(f"{label}: unknown column role(s) {unknown} in the config; roles: {required + optional}")
    chosen: dict[str, str] = {}
    for role, col in table.columns.items():
        if isinstance(col, int) and not isinstance(col, bool):
            if not 0 <= col < len(header):
                raise SourceError(f"{label}: column index {col} for {role} is beyond the {len(header)} columns")
            col = header[col]
        if col not in header:
            raise SourceError(
                f"{label}: missing required column {col!r} (mapped to {role}); the header has: {', '.join(header)}"
            )
        chosen[role] = col
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(_norm(h), h)
    for role in [*required, *optional]:
        if role in chosen:
            continue
        taken = set(chosen.values())
        for guess in GUESSES[role]:
            # Single letters (Binance payload names: b, B, a, A...) only match exactly, case included.
            h = by_norm.get(_norm(guess)) if len(guess) > 1 else (guess if guess in header else None)
            if h is not None and h not in taken:
                chosen[role] = h
                break
        if role not in chosen and role in required:
            raise SourceError(
                f"{label}: missing required column for {role} (looked for {', '.join(GUESSES[role][:6])}, ...; "
                f"map it under 'columns'); the header has: {', '.join(header)}"
            )
    return chosen


@dataclass
class Rows:
    """A CSV file's rows for one partition: `_line`, `_ts_event`, `_ts_init`, the parsed value
    roles (`value(role)`: Float64, or Datetime) and the other mapped columns as read (String).
    Columns whose work is done (timestamps, symbol, parsed values) are dropped: big days."""

    frame: pl.DataFrame
    cols: dict[str, str]  # role -> column
    label: str
    by_reader: bool = False  # values parsed by the CSV reader (fast path), not from text
    other_symbol_rows: int = 0  # rows of other symbols left out (a file holding several)


def load_rows(path: Path, table: Table, required: list[str], optional: list[str], part: PartitionContext,
              label: str | None = None, values: list[str] = ()) -> Rows | None:  # fmt: skip
    """Open (plain/gz/zip/bz2), scan lazily, parse timestamps, keep the partition's rows, check
    timestamps and symbols, and parse the `values` roles into `value(role)` columns (numbers ->
    Float64, next_funding_time -> Datetime; a filled cell that does not parse is an error).
    None for an empty file (an empty day).

    Fast path first: when every timestamp is an integer epoch, polars parses the numbers and
    timestamps itself while reading. Anything it cannot take (a malformed cell, an empty
    timestamp) sends the file down the text path, which parses each column from its text and
    names the first bad value's line: bad files pay for a second read, good ones do not."""
    with compressed.opened(path) as opened:
        label = label or opened.label
        if opened.path.stat().st_size == 0 or _is_empty_gzip(opened.path):
            return None
        if table.has_header is None:
            try:
                table = replace(table, has_header=_starts_with_header(opened.path, table.separator))
            except (OSError, EOFError, zlib.error) as err:  # a broken gzip stream
                raise read_error(err, path, opened.path, table, label) from None
        lf = scan(opened.path, table)
        try:
            header = [c for c in lf.collect_schema().names() if c != "_line"]
        except pl.exceptions.NoDataError:
            return None
        except Exception as err:
            raise read_error(err, path, opened.path, table, label) from None
        cols = resolve_columns(header, required, optional, table, label)
        if table.needs_symbol_column and "symbol" not in cols:
            raise SourceError(
                f"{label}: cannot tell which symbol it holds: no symbol column, no {{symbol}} in its file_path, no "
                f'symbol in its name and no "symbol" in its config; add one (e.g. "symbol": '
                f'"{part.instrument.symbol}" beside its file_path), so no other symbol is built from it'
            )
        values = [r for r in values if r in cols]
        try:
            formats = _timestamp_formats(lf, cols, table)
            frame = _collect_typed(lf, opened.path, cols, formats, values, table, part)
            parsed = frame is not None
            if not parsed:
                frame = _collect(lf, cols, formats, table, part)
        except SourceError:
            raise
        except Exception as err:
            raise read_error(err, path, opened.path, table, label) from None
    if not parsed:
        _check_timestamps(frame, cols, formats, label)
    read = frame.height
    frame = _select_symbol(frame, cols, table, part, label)
    if not parsed:
        frame = _parse_values(frame, cols, formats, values, label)
    frame = frame.drop(_spent_columns(cols, values), strict=False)  # the fast path renamed its numbers
    return Rows(frame, cols, label, by_reader=parsed, other_symbol_rows=read - frame.height)


def read_table(
    path: Path, table: Table, kind: DataKind, part: PartitionContext, label: str | None = None,
    notes: dict | None = None,
) -> pl.DataFrame:  # fmt: skip
    """One landed CSV file (plain/gz/zip/bz2) -> the kind's canonical frame for the partition;
    rows left out without failing are counted into `notes` (other symbols' rows)."""
    required, optional = ROLES[kind.name]
    rows = load_rows(path, table, required, optional, part, label, VALUES[kind.name])
    if rows is None:
        return kind.empty_frame()
    if notes is not None and rows.other_symbol_rows:
        notes["other_symbol_rows"] = notes.get("other_symbol_rows", 0) + rows.other_symbol_rows
    out = _kind_frame(kind, rows, table)
    del rows  # the file's columns go before conform's sort may copy the frame
    return kind.conform(out)


def _kind_frame(kind: DataKind, rows: Rows, table: Table) -> pl.DataFrame:
    frame, cols = rows.frame, rows.cols
    times = pl.col("_ts_event").alias("ts_event"), pl.col("_ts_init").alias("ts_init")
    if kind is TRADES:
        return _trades(frame, cols, table, rows.label)
    if kind is QUOTES:
        return frame.select(*times, **{role: value(role) for role in VALUES[QUOTES.name]})
    if kind.bar_spec is not None:
        volume = value("volume") if "volume" in cols else pl.lit(0.0)
        return frame.select(*times, **{r: value(r) for r in ("open", "high", "low", "close")}, volume=volume)
    if kind is MARK_PRICES:
        index = value("index_price") if "index_price" in cols else pl.lit(None, pl.Float64)
        return frame.select(*times, value=value("mark_price"), index_price=index)
    check_interval(rows)
    return frame.select(*times, rate=value("funding_rate"), **funding_extras(cols))


def funding_extras(cols) -> dict[str, pl.Expr]:
    """next_funding_time and interval (minutes) where the file has them; else null (the
    interval is then the instrument's, see FUNDING_RATES.from_partition)."""
    nxt = value("next_funding_time") if "next_funding_time" in cols else pl.lit(None, dtype=parsing.UTC_NS)
    hours = value("funding_interval_hours") if "funding_interval_hours" in cols else pl.lit(None, pl.Float64)
    return {"next_funding_time": nxt, "interval": (hours * 60).round(0)}


def check_interval(rows: Rows) -> None:
    """A funding interval that is no whole number of minutes the catalog holds (UInt16) is an
    error naming its line (a huge, negative or NaN number of hours)."""
    if "funding_interval_hours" in rows.cols:
        minutes = (value("funding_interval_hours") * 60).round(0)
        col = rows.cols["funding_interval_hours"]
        bad = minutes.is_not_null() & ~minutes.is_between(0, 65_535)
        parsing.raise_if_bad(rows.frame, bad, rows.label, "_line", "_v_funding_interval_hours",
                             f"column {col!r} is not a funding interval in hours (0 to 1092)")  # fmt: skip


def _starts_with_header(path: Path, separator: str) -> bool:
    """A header row is there when the first cell of the first line is not a number."""
    import gzip

    opener = gzip.open if compressed.packing(path) == "gzip" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    cell = first.split(separator, 1)[0].strip().strip('"')
    return not re.fullmatch(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?", cell)


def _is_empty_gzip(path: Path) -> bool:
    if compressed.packing(path) != "gzip" or path.stat().st_size > 64:
        return False
    import gzip

    try:
        return gzip.decompress(path.read_bytes()) == b""
    except (OSError, EOFError, zlib.error):
        return False


def _timestamp_formats(lf, cols: dict[str, str], table: Table) -> dict[str, TimestampFormat]:
    roles = [r for r in TIMESTAMP_ROLES if r in cols]
    if table.ts_format is not None:
        return {r: table.ts_format for r in roles}
    sample = lf.select([pl.col(cols[r]) for r in roles]).head(SAMPLE_ROWS).collect()
    return {r: parsing.detect_format(sample.get_column(cols[r])) for r in roles}


def read_error(err: Exception, path: Path, plain: Path, table: Table, label: str) -> SourceError:
    """A polars read failure as a clear SourceError (a ragged row is located on its line)."""
    if "more fields" in str(err):
        line = _first_ragged_line(plain, table)
        if line is not None:
            no, fields, width, count = line
            return SourceError(
                f"{label} line {no}: {fields} fields, the header has {width} ({count:,} row(s) with more "
                "fields than the header; none of the file was read)"
            )
    return compressed.explain_read_error(path, err, label)


def _collect_typed(lf, plain: Path, cols, formats, values: list[str], table: Table, part: PartitionContext):
    """The fast path: a frame with every timestamp and value role parsed by the CSV reader, or
    None when it does not apply (a timestamp that is not an integer epoch) or the file holds
    anything the text path must look at (a cell polars cannot parse, a missing timestamp)."""
    times = [r for r in ("timestamp", "local_timestamp") if r in cols]
    if "next_funding_time" in values:
        times.append("next_funding_time")
    if any(formats[r].kind != "epoch" for r in times):
        return None
    numbers = [r for r in values if r in NUMBER_ROLES]
    typed_cols = [cols[r] for r in (*times, *numbers)]
    text_cols = {c for r, c in cols.items() if r not in (*times, *numbers)}
    if len(set(typed_cols)) < len(typed_cols) or text_cols & set(typed_cols):
        return None  # a column serving two roles of different types: read it as text
    sample = lf.select(*{cols[r] for r in times}).head(SAMPLE_ROWS).collect()
    for r in times:
        given = sample.get_column(cols[r]).drop_nulls()
        if not given.str.contains(_INTEGER_RE).all():
            return None
    dtypes = {cols[r]: pl.Float64 for r in numbers} | {cols[r]: pl.Int64 for r in times}
    ns = {r: parsing.epoch_int_ns(pl.col(cols[r]), formats[r].unit) for r in times}
    ts_init = ns.get("local_timestamp", ns["timestamp"])
    unread = ns["timestamp"].is_null() | ts_init.is_null()
    parsed = {"_ts_event": parsing.from_epoch_ns(ns["timestamp"]), "_ts_init": parsing.from_epoch_ns(ts_init)}
    if "next_funding_time" in times:  # empty is allowed; a value past int64 ns is not
        nxt = ns["next_funding_time"]
        unread = unread | (pl.col(cols["next_funding_time"]).is_not_null() & nxt.is_null())
        parsed["_v_next_funding_time"] = parsing.from_epoch_ns(nxt)
    # Numbers come out of the reader final: renamed in the projection, never copied.
    renamed = {cols[r]: f"_v_{r}" for r in numbers}
    columns = [pl.col(c).alias(renamed.get(c, c)) for c in dict.fromkeys(cols.values())]
    typed = scan(plain, table, dtypes).select("_line", *columns)
    typed = typed.with_columns(**parsed, _unread=unread)
    if table.multi_day:
        in_day = pl.col("_ts_init").is_between(part.start, part.end, closed="left")
        typed = typed.filter(pl.col("_ts_init").is_null() | in_day)
    try:
        frame = typed.collect(engine="streaming")
    except pl.exceptions.ComputeError:
        return None  # a cell the reader could not parse: the text path finds and names it
    if frame.get_column("_unread").any():
        return None
    return frame.drop("_unread")


def _collect(lf, cols, formats, table: Table, part: PartitionContext) -> pl.DataFrame:
    ts_event = parsing.parse_timestamp(pl.col(cols["timestamp"]), formats["timestamp"])
    ts_init = (
        parsing.parse_timestamp(pl.col(cols["local_timestamp"]), formats["local_timestamp"])
        if "local_timestamp" in cols
        else ts_event
    )
    # Only the mapped columns are materialized (projection pushdown into the scan).
    lf = lf.select("_line", *dict.fromkeys(cols.values())).with_columns(_ts_event=ts_event, _ts_init=ts_init)
    if table.multi_day:
        # Unparsed timestamps stay (to be reported); other days' rows go before anything else is parsed.
        in_day = pl.col("_ts_init").is_between(part.start, part.end, closed="left")
        lf = lf.filter(pl.col("_ts_init").is_null() | in_day)
    return lf.collect(engine="streaming")


def _first_ragged_line(plain: Path, table: Table) -> tuple[int, int, int, int] | None:
    """Error path only: the first line with more fields than the first line, and how many
    such lines there are (csv module)."""
    import csv
    import gzip

    opener = gzip.open if compressed.packing(plain) == "gzip" else open
    with opener(plain, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=table.separator)
        width, first, count = None, None, 0
        for row in reader:
            if width is None:
                width = len(row)
            elif len(row) > width:
                count += 1
                if first is None:
                    first = reader.line_num, len(row), width
    return None if first is None else (*first, count)


def _check_timestamps(frame: pl.DataFrame, cols, formats, label: str) -> None:
    for role, parsed in (("timestamp", "_ts_event"), ("local_timestamp", "_ts_init")):
        if role not in cols:
            continue
        raw = pl.col(cols[role])
        empty = raw.is_null() | (raw.str.strip_chars().str.len_bytes() == 0)
        parsing.raise_if_bad(frame, empty, label, "_line", cols[role], f"column {cols[role]!r} is empty (no timestamp)")
        parsing.raise_if_bad(
            frame, pl.col(parsed).is_null(), label, "_line", cols[role],
            f"column {cols[role]!r} is not a timestamp ({formats[role].describe()})",
        )  # fmt: skip


def _spent_columns(cols: dict[str, str], values: list[str]) -> set[str]:
    """Columns read only for timestamps, symbol and values: parsed or checked by now."""
    spent = {"timestamp", "local_timestamp", "symbol", *values}
    return {c for r, c in cols.items() if r in spent} - {c for r, c in cols.items() if r not in spent}


def _parse_values(frame: pl.DataFrame, cols, formats, values: list[str], label: str) -> pl.DataFrame:
    """The text path's value roles, parsed into `value(role)` columns (numbers -> Float64,
    timestamps -> Datetime). An empty cell becomes null; a filled one that does not parse is a
    SourceError naming its line."""
    for role in values:
        col = cols[role]
        raw = pl.col(col)
        if role in NUMBER_ROLES:
            parsed, what = parsing.number(raw), "a number"
        else:
            parsed, what = parsing.parse_timestamp(raw, formats[role]), f"a timestamp ({formats[role].describe()})"
        frame = frame.with_columns(parsed.alias(f"_v_{role}"))
        filled = raw.is_not_null() & (raw.str.strip_chars().str.len_bytes() > 0)
        parsing.raise_if_bad(
            frame, filled & value(role).is_null(), label, "_line", col, f"column {col!r} is not {what}"
        )
    return frame


def _select_symbol(frame: pl.DataFrame, cols, table: Table, part: PartitionContext, label: str) -> pl.DataFrame:
    """Rows of the partition's symbol. A file with only other symbols is an error, and with
    `strict_symbol` (per-symbol vendor files) so is any row of another symbol."""
    want = part.instrument.symbol
    if "symbol" not in cols:
        return frame
    col = cols["symbol"]
    spelled = frame.get_column(col).unique().drop_nulls()  # symbols are few: judge each spelling once
    mine_spelled = spelled.filter(spelled.to_frame().select(parsing.norm_symbol(pl.col(col)) == want).to_series())
    if mine_spelled.len() == spelled.len():
        return frame  # every row is the partition's symbol (or has none)
    ours = pl.col(col).is_null() | pl.col(col).is_in(mine_spelled.implode())
    if table.strict_symbol:
        problem = f"the file is for another symbol, not {want}"
        parsing.raise_if_bad(frame, ~ours, label, "_line", col, problem)
        return frame
    mine = frame.filter(ours)
    if mine.height == 0 and frame.height:
        row = frame.row(0, named=True)
        others = spelled.sort().head(5).to_list()
        raise SourceError(
            f"{label} line {row['_line']}: the file is for another symbol: it holds {', '.join(map(str, others))}, "
            f"not {want}"
        )
    return mine


def _trades(frame: pl.DataFrame, cols, table: Table, label: str) -> pl.DataFrame:
    if "aggressor_side" in cols:
        side_col = cols["aggressor_side"]
        buyer_maker = table.side_is_buyer_maker
        if buyer_maker is None:
            buyer_maker = _norm(side_col) in BUYER_MAKER_NAMES
        parsed = parsing.by_distinct(frame, side_col, lambda text: parsing.aggressor_side(text, bool(buyer_maker)))
        frame = frame.with_columns(_side=parsed)  # mapped once, checked and selected from the column
        side = pl.col("_side")
        parsing.raise_if_bad(
            frame, side.is_null(), label, "_line", side_col,
            f"column {side_col!r} is not an aggressor side (buy/sell, b/s, or a buyer-is-maker true/false)",
        )  # fmt: skip
    else:
        side = pl.lit("NO_AGGRESSOR").cast(parsing.AGGRESSOR_SIDE)
    if "trade_id" in cols:
        raw_id = pl.col(cols["trade_id"]).str.strip_chars()
        trade_id = pl.when(raw_id.str.len_bytes() > 0).then(raw_id).otherwise(pl.format("L{}", pl.col("_line")))
    else:
        trade_id = pl.format("L{}", pl.col("_line"))
    return frame.select(
        pl.col("_ts_event").alias("ts_event"),
        pl.col("_ts_init").alias("ts_init"),
        price=value("price"),
        size=value("size"),
        aggressor_side=side,
        trade_id=trade_id,
    )
