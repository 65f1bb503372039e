"""Binance USDT-M WebSocket messages -> canonical frames, columnar.

Reads lines in any of the shapes a recorder or vendor stores them:
- a Tardis replay line: `2024-01-01T00:00:00.1234567Z {"stream": ..., "data": {...}}`
  (any receive-time prefix before the JSON: ISO with `T` or a space, any fraction, or an
  epoch number whose unit is detected from its magnitude)
- the combined-stream envelope: `{"stream": "btcusdt@aggTrade", "data": {...}}`, optionally
  with the recorder's receive time as a top-level field (see RECV_FIELDS)
- the bare payload: `{"e": "aggTrade", ...}`
The whole file is decoded by polars in one pass (no per-line Python). `read_recording`
adds what a recorded file needs: counts of blank lines, a truncated last line, unknown event
types and other symbols' messages, and clear errors (file and line) for anything else broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, ORDER_BOOK_DELTAS, QUOTES, TRADES, DataKind
from hedgegrid_assets.sources.base import SourceError
from hedgegrid_assets.sources.compressed import explain_read_error
from hedgegrid_assets.sources.parsing import epoch_ns, from_epoch_ns

# Binance trades that are not market trades (`X` of the `trade` stream).
NON_MARKET_TRADES = ["INSURANCE_FUND", "ADL", "NA"]

# Each event type a kind reads, decoded with its own fields (the same letter means different
# things: `a` is aggTrade's id but bookTicker's ask price): payload field -> (column, type).
_COMMON = {"E": ("E", pl.Int64), "s": ("s", pl.String)}  # event time (ms), symbol
_LEVELS = pl.List(pl.List(pl.String))
# The event name given to a REST depth snapshot (Tardis's channel name for it).
SNAPSHOT_EVENT = "depthSnapshot"
EVENTS: dict[str, dict[str, tuple[str, pl.DataType]]] = {
    "aggTrade": _COMMON | {
        "a": ("id", pl.Int64),  # aggregate trade id
        "p": ("p", pl.String), "q": ("q", pl.String),  # price, quantity
        "m": ("m", pl.Boolean),  # buyer is maker -> the aggressor SOLD
        "T": ("T", pl.Int64),  # trade time, ms
    },
    "trade": _COMMON | {
        "t": ("id", pl.Int64), "p": ("p", pl.String), "q": ("q", pl.String), "m": ("m", pl.Boolean),
        "X": ("X", pl.String),  # trade type (MARKET, or INSURANCE_FUND/ADL/NA: left out)
        "T": ("T", pl.Int64),
    },
    "markPriceUpdate": _COMMON | {
        "p": ("p", pl.String),  # mark price
        "i": ("i", pl.String),  # index price
        "r": ("r", pl.String),  # funding rate that settles at T
        "T": ("T", pl.Int64),  # next funding time, ms
    },
    "bookTicker": _COMMON | {
        "u": ("update_id", pl.Int64),
        "b": ("bid_price", pl.String), "B": ("bid_size", pl.String),
        "a": ("ask_price", pl.String), "A": ("ask_size", pl.String),
        "T": ("T", pl.Int64),  # transaction time, ms
    },
    # The diff depth stream (`<symbol>@depth`): levels whose size changed, as absolute sizes.
    "depthUpdate": _COMMON | {
        "T": ("T", pl.Int64),
        "U": ("first_id", pl.Int64),  # first update id in the event
        "u": ("update_id", pl.Int64),  # final update id in the event
        "pu": ("prev_id", pl.Int64),  # final update id of the previous event (`u` before)
        "b": ("bids", _LEVELS), "a": ("asks", _LEVELS),  # [[price, qty], ...]; qty "0" deletes
    },
    # A REST depth snapshot (GET /fapi/v1/depth): Tardis's `depthSnapshot` channel, or a
    # recorder's snapshot line. It has no `e`: a line with `lastUpdateId` is one (SNAPSHOT_EVENT).
    SNAPSHOT_EVENT: {
        "E": ("E", pl.Int64), "T": ("T", pl.Int64), "s": ("s", pl.String),
        "lastUpdateId": ("update_id", pl.Int64),
        "bids": ("bids", _LEVELS), "asks": ("asks", _LEVELS),
    },
}  # fmt: skip
# The events each kind reads. Other event types (kline, forceOrder, ...) are counted per type
# and skipped, never decoded.
DEPTH_EVENTS = ("depthUpdate", SNAPSHOT_EVENT)
KIND_EVENTS = {
    TRADES.name: ("aggTrade", "trade"),
    QUOTES.name: ("bookTicker",),
    MARK_PRICES.name: ("markPriceUpdate",),
    FUNDING_RATES.name: ("markPriceUpdate",),
    ORDER_BOOK_DELTAS.name: DEPTH_EVENTS,
}
KINDS_DECODED = (TRADES, QUOTES, MARK_PRICES, FUNDING_RATES, ORDER_BOOK_DELTAS)
# Decoded only when the book is asked for (their level lists are most of a recording's bytes):
# otherwise counted as event types no kind reads, as before.
LIGHT_EVENTS = tuple(e for e in EVENTS if e not in DEPTH_EVENTS)
# Top-level fields a recorder may add with the local receive time (epoch number or ISO text).
RECV_FIELDS = ("local_timestamp", "recv_ts", "recv_time", "receive_time", "received_at", "receipt_timestamp")
# The event type: the first "e" key (the envelope's own keys are "stream" and "data").
_EVENT_RE = r'"e"\s*:\s*"([^"]*)"'


def _message_struct(event: str) -> pl.Struct:
    payload = {k: t for k, (_, t) in EVENTS[event].items()}
    return pl.Struct({"stream": pl.String, "data": pl.Struct(payload), **payload, **{f: pl.String for f in RECV_FIELDS}})


def read_lines(path: Path) -> pl.LazyFrame:
    """Every line of a text file (optionally gzip) as one string column `line`, with its number."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        row_index_name="line_no",
        row_index_offset=1,
    )


def receive_time(text: pl.Expr) -> pl.Expr:
    """A receive time written as ISO text (date, 'T' or ' ', time to the second with any
    fraction, then 'Z', an offset or none) or an epoch number -> UTC ns. Fixed layouts rather
    than parsing.iso_timestamp's general one: this runs on every line of a replay (Tardis
    writes '...T00:00:00.1234567Z')."""
    t = text.str.strip_chars()
    numeric = t.str.contains(r"^\d+(?:\.\d*)?$")

    def parse(layout: str) -> pl.Expr:
        return t.str.to_datetime(layout, time_unit="ns", strict=False)

    naive = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f"), parse("%Y-%m-%d %H:%M:%S%.f")).dt.replace_time_zone("UTC")
    zoned = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f%#z"), parse("%Y-%m-%d %H:%M:%S%.f%#z")).dt.convert_time_zone("UTC")
    iso = pl.coalesce(zoned, naive)
    return pl.when(numeric).then(from_epoch_ns(epoch_ns(t))).otherwise(iso)


def decode_messages(lines: pl.LazyFrame, events: tuple[str, ...] = LIGHT_EVENTS) -> pl.LazyFrame:
    """Lines -> one row per message: `line_no`, `e` (the event type), `recv_ts` (nullable)
    and the fields of the message's event type (see EVENTS; null for other events).

    Each event type of `events` is decoded with its own fields; a line of another event type
    is kept with its type only (to be counted), and a line without one is decoded just enough
    to prove it is JSON. Also `recv_prefix`: the text before the JSON (null when the line
    starts with it), so a caller can report a prefix that is not a time.
    """
    line = pl.col("line").str.strip_chars()
    start = line.str.find("{", literal=True).fill_null(0)
    base = lines.filter(line.str.len_bytes() > 0).select(
        "line_no",
        recv_prefix=pl.when(start > 0).then(line.str.slice(0, start).str.strip_chars()),
        json=line.str.slice(start),
    )
    snapshot = pl.when(pl.col("json").str.contains('"lastUpdateId"', literal=True)).then(pl.lit(SNAPSHOT_EVENT))
    base = base.with_columns(e=pl.coalesce(pl.col("json").str.extract(_EVENT_RE, 1), snapshot))
    parts = []
    msg = pl.col("msg")
    field_recv = pl.coalesce([msg.struct.field(f) for f in RECV_FIELDS])
    for event in events:
        decoded = base.filter(pl.col("e") == event).select(
            "line_no", "e", "recv_prefix", msg=pl.col("json").str.json_decode(_message_struct(event))
        )
        # Envelope fields win over top-level ones (the bare-payload case has no `data`).
        parts.append(
            decoded.select(
                "line_no",
                "e",
                pl.coalesce(receive_time(pl.col("recv_prefix")), receive_time(field_recv)).alias("recv_ts"),
                "recv_prefix",
                *[
                    pl.coalesce(msg.struct.field("data").struct.field(k), msg.struct.field(k), *_implied(event, k)).alias(col)
                    for k, (col, _) in EVENTS[event].items()
                ],
            )
        )
    other = pl.col("e").is_not_null() & ~pl.col("e").is_in(events)
    parts.append(base.filter(other & complete_message(pl.col("json"))).select("line_no", "e", "recv_prefix"))
    # No event type, or another type's line that looks broken: decoded just enough to prove
    # it is JSON (a broken line fails every kind, as a truncated one in the decoded events does).
    unsure = pl.col("e").is_null() | (other & ~complete_message(pl.col("json")))
    is_json = pl.col("json").str.json_decode(pl.Struct({"stream": pl.String})).is_not_null()
    parts.append(base.filter(unsure).filter(is_json).select("line_no", "e", "recv_prefix"))
    return pl.concat(parts, how="diagonal_relaxed")


def _implied(event: str, key: str) -> list[pl.Expr]:
    """A field a message leaves out but its envelope says: a REST snapshot has no symbol, its
    stream name (`btcusdt@depthSnapshot`) has."""
    if event == SNAPSHOT_EVENT and key == "s":
        return [pl.col("msg").struct.field("stream").str.extract(r"^([A-Za-z0-9_]+)@", 1).str.to_uppercase()]
    return []


def _ms(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="ms").dt.cast_time_unit("ns").dt.replace_time_zone("UTC")


def trades(messages: pl.LazyFrame, event: str = "aggTrade") -> pl.LazyFrame:
    market = pl.lit(True)
    if "X" in messages.collect_schema():  # the `trade` stream says which trades are not market trades
        market = pl.col("X").is_null() | ~pl.col("X").is_in(NON_MARKET_TRADES)
    return messages.filter((pl.col("e") == event) & market).select(
        ts_event=_ms("T"),
        ts_init=pl.coalesce("recv_ts", _ms("E")),
        price=pl.col("p").cast(pl.Float64),
        size=pl.col("q").cast(pl.Float64),
        aggressor_side=pl.when(pl.col("m")).then(pl.lit("SELLER")).otherwise(pl.lit("BUYER")),
        trade_id=pl.col("id").cast(pl.String),
    )


def quotes(messages: pl.LazyFrame) -> pl.LazyFrame:
    """bookTicker: the best bid and ask after each change (ts_event: the transaction time T)."""
    return messages.filter(pl.col("e") == "bookTicker").select(
        ts_event=_ms("T").fill_null(_ms("E")),
        ts_init=pl.coalesce("recv_ts", _ms("E")),
        bid_price=pl.col("bid_price").cast(pl.Float64),
        ask_price=pl.col("ask_price").cast(pl.Float64),
        bid_size=pl.col("bid_size").cast(pl.Float64),
        ask_size=pl.col("ask_size").cast(pl.Float64),
    )


def mark_prices(messages: pl.LazyFrame) -> pl.LazyFrame:
    return messages.filter(pl.col("e") == "markPriceUpdate").select(
        ts_event=_ms("E"),
        ts_init=pl.coalesce("recv_ts", _ms("E")),
        value=pl.col("p").cast(pl.Float64),
        index_price=pl.col("i").cast(pl.Float64),
    )


def funding_rates(messages: pl.LazyFrame) -> pl.LazyFrame:
    """One row per change of (rate, next funding time) in the markPrice stream."""
    updates = (
        messages.filter((pl.col("e") == "markPriceUpdate") & (pl.col("r").str.len_bytes() > 0))
        .select(
            ts_event=_ms("E"),
            ts_init=pl.coalesce("recv_ts", _ms("E")),
            rate=pl.col("r").cast(pl.Float64),
            next_funding_time=_ms("T"),
            interval=pl.lit(None, pl.UInt16),  # not in the message: the instrument's
        )
        .sort("ts_init", maintain_order=True)
    )
    changed = (pl.col("rate") != pl.col("rate").shift(1)) | (
        pl.col("next_funding_time") != pl.col("next_funding_time").shift(1)
    )
    return updates.filter(changed.fill_null(True))


PARSERS = {TRADES.name: trades, QUOTES.name: quotes, MARK_PRICES.name: mark_prices, FUNDING_RATES.name: funding_rates}


def complete_message(line: pl.Expr) -> pl.Expr:
    """A complete message ends with '}' and has balanced braces (Binance strings hold none)."""
    return line.str.ends_with("}") & (
        line.str.count_matches("{", literal=True) == line.str.count_matches("}", literal=True)
    )


def read_kind(kind: DataKind, files: list[Path], trade_event: str = "aggTrade") -> pl.DataFrame:
    """All messages of `kind` in `files`, in canonical columns."""
    if not files:
        return kind.empty_frame()
    if kind is ORDER_BOOK_DELTAS:  # a book, not one row per message: binance_depth builds it
        from hedgegrid_assets.sources import binance_depth

        return kind.conform(binance_depth.read_replay(files)[0])
    # JSON decoding is the cost: decode only the lines that can hold the kind's event (a day
    # file has ~1M trades and 86,400 marks; each kind's asset reads it), and every line that
    # does not look complete, so that a broken line fails every kind as before.
    events = (trade_event,) if kind is TRADES else KIND_EVENTS[kind.name]
    line = pl.col("line").str.strip_chars()
    may_hold = pl.any_horizontal(line.str.contains(f'"{e}"', literal=True) for e in events) | ~complete_message(line)
    # Collected before parsing: a later filter on the event type must not be pushed below the
    # check that a line without one is JSON.
    messages = pl.concat(
        [decode_messages(read_lines(f).filter(may_hold), events) for f in files], how="diagonal_relaxed"
    ).collect().lazy()
    if kind is TRADES:
        lazy = trades(messages, trade_event)
    else:
        lazy = PARSERS[kind.name](messages)
    return kind.conform(lazy.collect())


# -- recorded files: counts and clear errors ------------------------------------------------

KNOWN_EVENTS = LIGHT_EVENTS
NO_EVENT = "no 'e' field"


@dataclass
class LineStats:
    """What a recorded file held besides usable messages (counted, never fatal)."""

    lines: int = 0
    messages: int = 0
    blank_lines: int = 0
    truncated_last_line: int = 0
    truncated_gzip: int = 0
    unknown_events: dict[str, int] = field(default_factory=dict)
    other_symbols: dict[str, int] = field(default_factory=dict)

    def add(self, other: LineStats) -> None:
        self.lines += other.lines
        self.messages += other.messages
        self.blank_lines += other.blank_lines
        self.truncated_last_line += other.truncated_last_line
        self.truncated_gzip += other.truncated_gzip
        for mine, theirs in ((self.unknown_events, other.unknown_events), (self.other_symbols, other.other_symbols)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    @property
    def unknown_event_count(self) -> int:
        return sum(self.unknown_events.values())

    @property
    def other_symbol_count(self) -> int:
        return sum(self.other_symbols.values())

    def metadata(self) -> dict:
        return {
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "truncated_last_lines": self.truncated_last_line,
            "truncated_gzip_streams": self.truncated_gzip,
            "unknown_event_messages": self.unknown_event_count,
            "unknown_events_by_type": dict(sorted(self.unknown_events.items())),
            "other_symbol_messages": self.other_symbol_count,
        }

    def notable(self) -> bool:
        return bool(self.blank_lines or self.truncated_last_line or self.truncated_gzip or self.unknown_events
                    or self.other_symbols)  # fmt: skip

    def describe(self) -> str:
        parts = [f"{self.lines:,} lines"]
        if self.blank_lines:
            parts.append(f"{self.blank_lines:,} blank")
        if self.truncated_last_line:
            parts.append("a truncated last line (skipped)")
        if self.truncated_gzip:
            parts.append("a gzip stream cut short (read up to its end)")
        if self.unknown_events:
            kinds = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.unknown_events.items()))
            parts.append(f"{self.unknown_event_count:,} messages of other event types ({kinds})")
        if self.other_symbols:
            symbols = ", ".join(sorted(self.other_symbols))
            parts.append(f"{self.other_symbol_count:,} messages for other symbols ({symbols})")
        return "; ".join(parts)


def _line_checks(lines: pl.LazyFrame) -> dict:
    """One pass of per-line facts: counts, the last non-blank line, the first incomplete lines."""
    line = pl.col("line").str.strip_chars()
    blank = line.is_null() | (line.str.len_bytes() == 0)
    bad = ~blank & ~complete_message(line)
    row = lines.select(
        lines=pl.len(),
        blank=blank.sum(),
        last_filled=pl.col("line_no").filter(~blank).max(),
        incomplete=bad.sum(),
        first_bad_no=pl.col("line_no").filter(bad).first(),
        first_bad=pl.col("line").filter(bad).first(),
    ).collect()
    return row.row(0, named=True)


def _typed_fields(event: str | None, dtype: pl.DataType) -> set[str]:
    return {k for k, (_, t) in EVENTS.get(event or "", {}).items() if t == dtype}


def _first_bad_line(path: Path, skip_line: int | None) -> tuple[int, str, str] | None:
    """Error path only (after polars refused the file): the first line that is not valid JSON
    or has a field of the wrong type, as (line number, text, reason)."""
    import gzip
    import json

    with path.open("rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", errors="replace") as fh:
        for no, raw in enumerate(fh, 1):
            text = raw.strip()
            if not text or no == skip_line:
                continue
            try:
                msg = json.loads(text[max(text.find("{"), 0):])
            except json.JSONDecodeError as err:
                return no, text, f"invalid JSON ({err})"
            if not isinstance(msg, dict):
                return no, text, "not a JSON object"
            data = msg.get("data") if isinstance(msg.get("data"), dict) else msg
            ints, bools = _typed_fields(data.get("e"), pl.Int64), _typed_fields(data.get("e"), pl.Boolean)
            for key, value in data.items():
                is_int = isinstance(value, int) and not isinstance(value, bool)
                wrong_int = key in ints and value is not None and not is_int
                wrong_bool = key in bools and value is not None and not isinstance(value, bool)
                if wrong_int or wrong_bool:
                    want = "an integer" if wrong_int else "true/false"
                    return no, text, f"field {key!r} is not {want}: {value!r}"
    return None


def _short(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def read_recording(
    path: Path, label: str, symbol: str | None = None, events: tuple[str, ...] = LIGHT_EVENTS
) -> tuple[pl.DataFrame, LineStats]:
    """A recorded JSONL file -> (decoded messages of known event types for `symbol`, counts).

    Blank lines, one truncated last line, unknown event types and other symbols' messages are
    counted and left out. Raises SourceError naming the file and line for an incomplete or
    invalid line elsewhere, an unreadable receive-time prefix, a number that is not a number,
    or a file whose messages are all for another symbol.
    """
    stats = LineStats()
    lines = read_lines(path)
    try:
        facts = _line_checks(lines)
    except pl.exceptions.NoDataError:
        return pl.DataFrame(schema=decode_messages(read_lines_schema(), events).collect_schema()), stats
    except Exception as err:  # noqa: BLE001 - e.g. a broken gzip stream: say what is wrong with it
        raise explain_read_error(path, err, label) from None
    stats.lines, stats.blank_lines = int(facts["lines"]), int(facts["blank"] or 0)
    skip_line = None
    if facts["incomplete"]:
        only_last = facts["incomplete"] == 1 and facts["first_bad_no"] == facts["last_filled"]
        if (facts["first_bad"] or "").lstrip().startswith("["):  # not a recorder's cut line
            raise SourceError(
                f"{label} line {facts['first_bad_no']}: a JSON array, not JSONL: a recording holds one JSON "
                f"message per line (write each element of the array on its own line): {_short(facts['first_bad'])}"
            )
        if only_last:
            stats.truncated_last_line = 1
            skip_line = facts["first_bad_no"]
        else:
            no, text = facts["first_bad_no"], facts["first_bad"]
            raise SourceError(
                f"{label} line {no}: not a complete JSON message ({facts['incomplete']} such line(s); only a "
                f"truncated last line is tolerated): {_short(text or '')}"
            )
    if skip_line is not None:
        lines = lines.filter(pl.col("line_no") != skip_line)
    try:
        messages = decode_messages(lines, events).collect()
    except pl.exceptions.ComputeError as err:
        found = _first_bad_line(path, skip_line)
        if found is None:
            raise SourceError(f"{label}: cannot be decoded ({str(err).strip().splitlines()[0]})") from None
        no, text, reason = found
        raise SourceError(f"{label} line {no}: {reason}: {_short(text)}") from None
    stats.messages = messages.height

    known = pl.col("e").is_in(events).fill_null(False)
    bad_prefix = known & pl.col("recv_prefix").is_not_null() & pl.col("recv_ts").is_null()
    hit = messages.filter(bad_prefix).sort("line_no").head(1)
    if hit.height:
        raise SourceError(
            f"{label} line {hit['line_no'][0]}: the text before the JSON is not a receive time: "
            f"{_short(hit['recv_prefix'][0])}"
        )
    unknown = messages.filter(~known).group_by(pl.col("e").fill_null(NO_EVENT)).len()
    stats.unknown_events = {e: int(n) for e, n in unknown.iter_rows()}
    messages = messages.filter(known)
    if symbol is not None:
        sym = pl.col("s").str.to_uppercase()
        mine = sym.is_null() | (sym == symbol.upper())
        others = messages.filter(~mine).sort("line_no")
        if others.height:
            stats.other_symbols = {s: int(n) for s, n in others.group_by("s").len().iter_rows()}
            messages = messages.filter(mine)
            if messages.height == 0:
                raise SourceError(
                    f"{label} line {others['line_no'][0]}: the file is for another symbol: its messages are for "
                    f"{', '.join(sorted(stats.other_symbols))}, none for {symbol}"
                )
    numbers = (("p", ("aggTrade", "trade", "markPriceUpdate")), ("q", ("aggTrade", "trade")), ("r", ("markPriceUpdate",)),
               *((c, ("bookTicker",)) for c in ("bid_price", "bid_size", "ask_price", "ask_size")))  # fmt: skip
    for col, events in numbers:
        value = pl.col(col)
        filled = value.is_not_null() & (value.str.len_bytes() > 0)
        bad = messages.filter(pl.col("e").is_in(events) & filled & value.cast(pl.Float64, strict=False).is_null())
        bad = bad.sort("line_no")
        if bad.height:
            raise SourceError(f"{label} line {bad['line_no'][0]}: field {col!r} is not a number: {_short(bad[col][0])}")
    return messages, stats


def read_lines_schema() -> pl.LazyFrame:
    return pl.LazyFrame(schema={"line": pl.String, "line_no": pl.UInt32})
