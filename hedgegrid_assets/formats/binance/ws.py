"""Binance USDT-M WebSocket messages -> canonical frames, columnar: one reader per kind.

Lines are decoded by messages.py (every shape a recorder or vendor stores them in), the order
book's deltas built by depth.py; `read_kind` gives one kind's frame from replay files (Tardis).
`read_recording` adds what a recorded file needs: counts of blank lines, a truncated last line, unknown event
types and other symbols' messages, and clear errors (file and line) for anything else broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.binance import depth
from hedgegrid_assets.formats.binance.messages import (
    DEPTH_EVENTS,
    LIGHT_EVENTS,
    complete_message,
    decode_messages,
    first_bad_line,
    read_lines,
    read_lines_schema,
    replay_error,
    shorten,
)
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, ORDER_BOOK_DELTAS, QUOTES, TRADES, DataKind
from hedgegrid_assets.landing.compressed import explain_read_error

# Binance trades that are not market trades (`X` of the `trade` stream).
NON_MARKET_TRADES = ["INSURANCE_FUND", "ADL", "NA"]

# The events each kind reads. Other event types (kline, forceOrder, ...) are counted per type
# and skipped, never decoded.
KIND_EVENTS = {
    TRADES.name: ("aggTrade", "trade"),
    QUOTES.name: ("bookTicker",),
    MARK_PRICES.name: ("markPriceUpdate",),
    FUNDING_RATES.name: ("markPriceUpdate",),
    ORDER_BOOK_DELTAS.name: DEPTH_EVENTS,
}
KINDS_DECODED = (TRADES, QUOTES, MARK_PRICES, FUNDING_RATES, ORDER_BOOK_DELTAS)


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


def read_kind(kind: DataKind, files: list[Path], trade_event: str = "aggTrade") -> pl.DataFrame:
    """All messages of `kind` in `files`, in canonical columns."""
    if not files:
        return kind.empty_frame()
    if kind is ORDER_BOOK_DELTAS:  # a book, not one row per message: depth.py builds it
        return kind.conform(depth.read_replay(files)[0])
    # JSON decoding is the cost: decode only the lines that can hold the kind's event (a day
    # file has ~1M trades and 86,400 marks; each kind's asset reads it), and every line that
    # does not look complete, so that a broken line fails every kind as before.
    events = (trade_event,) if kind is TRADES else KIND_EVENTS[kind.name]
    line = pl.col("line").str.strip_chars()
    may_hold = pl.any_horizontal(line.str.contains(f'"{e}"', literal=True) for e in events) | ~complete_message(line)
    # Collected before parsing: a later filter on the event type must not be pushed below the
    # check that a line without one is JSON.
    try:
        messages = (
            pl.concat([decode_messages(read_lines(f).filter(may_hold), events) for f in files], how="diagonal_relaxed")
            .collect()
            .lazy()
        )
        if kind is TRADES:
            lazy = trades(messages, trade_event)
        else:
            lazy = PARSERS[kind.name](messages)
        return kind.conform(lazy.collect())
    except (pl.exceptions.PolarsError, OSError) as err:
        raise replay_error(files, kind.name, err) from None


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
    except Exception as err:
        raise explain_read_error(path, err, label) from None
    stats.lines, stats.blank_lines = int(facts["lines"]), int(facts["blank"] or 0)
    skip_line = None
    if facts["incomplete"]:
        only_last = facts["incomplete"] == 1 and facts["first_bad_no"] == facts["last_filled"]
        if (facts["first_bad"] or "").lstrip().startswith("["):  # not a recorder's cut line
            raise SourceError(
                f"{label} line {facts['first_bad_no']}: a JSON array, not JSONL: a recording holds one JSON "
                f"message per line (write each element of the array on its own line): {shorten(facts['first_bad'])}"
            )
        if only_last:
            stats.truncated_last_line = 1
            skip_line = facts["first_bad_no"]
        else:
            no, text = facts["first_bad_no"], facts["first_bad"]
            raise SourceError(
                f"{label} line {no}: not a complete JSON message ({facts['incomplete']} such line(s); only a "
                f"truncated last line is tolerated): {shorten(text or '')}"
            )
    if skip_line is not None:
        lines = lines.filter(pl.col("line_no") != skip_line)
    try:
        messages = decode_messages(lines, events).collect()
    except pl.exceptions.ComputeError as err:
        found = first_bad_line(path, skip_line)
        if found is None:
            raise SourceError(f"{label}: cannot be decoded ({str(err).strip().splitlines()[0]})") from None
        no, text, reason = found
        raise SourceError(f"{label} line {no}: {reason}: {shorten(text)}") from None
    stats.messages = messages.height

    known = pl.col("e").is_in(events).fill_null(False)
    bad_prefix = known & pl.col("recv_prefix").is_not_null() & pl.col("recv_ts").is_null()
    hit = messages.filter(bad_prefix).sort("line_no").head(1)
    if hit.height:
        raise SourceError(
            f"{label} line {hit['line_no'][0]}: the text before the JSON is not a receive time: "
            f"{shorten(hit['recv_prefix'][0])}"
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
               ("i", ("markPriceUpdate",)),
               *((c, ("bookTicker",)) for c in ("bid_price", "bid_size", "ask_price", "ask_size")))  # fmt: skip
    for col, events in numbers:
        value = pl.col(col)
        # An empty funding rate is a mark without one (left out of the rates); any other empty text is no number.
        filled = value.is_not_null() & (value.str.len_bytes() > 0) if col == "r" else value.is_not_null()
        bad = messages.filter(pl.col("e").is_in(events) & filled & value.cast(pl.Float64, strict=False).is_null())
        bad = bad.sort("line_no")
        if bad.height:
            raise SourceError(
                f"{label} line {bad['line_no'][0]}: field {col!r} is not a number: {shorten(bad[col][0])}"
            )
    return messages, stats
