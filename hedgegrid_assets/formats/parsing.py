"""Columnar value parsing shared by the file sources: timestamps, numbers, aggressor sides.

Every parser here is a polars expression over a String column, applied to whole columns; a
value that does not parse becomes null, and `first_bad` finds the first such row so the
source can raise one clear error naming the file, the line and the value (no per-row Python).

Timestamps (all end as `Datetime("ns", "UTC")`):
- a strftime format (`"%Y-%m-%d %H:%M:%S.%f"`; Python's `.%f` is read as any fraction);
- ISO 8601 strings, with or without an offset (converted to UTC; naive means UTC);
- epoch numbers, integer or decimal (`1704153600.5`), whose unit is detected per value from
  its magnitude (below 1e11 seconds, 1e14 milliseconds, 1e17 microseconds, else
  nanoseconds), or fixed by an explicit unit `s`/`ms`/`us`/`ns`. Integer epochs are exact.
"""

from __future__ import annotations

import re

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.frames.trades import AGGRESSOR_SIDE

UTC_NS = pl.Datetime(time_unit="ns", time_zone="UTC")
UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# Spellings accepted for a unit (config `timestamp_unit` or `timestamp_format`).
UNIT_ALIASES = {
    **{u: u for u in UNIT_NS},
    "sec": "s", "seconds": "s", "epoch": None, "epoch_s": "s", "unix": None, "unix_s": "s",
    "millis": "ms", "milliseconds": "ms", "epoch_ms": "ms", "unix_ms": "ms",
    "micros": "us", "microseconds": "us", "µs": "us", "epoch_us": "us", "unix_us": "us",
    "nanos": "ns", "nanoseconds": "ns", "epoch_ns": "ns", "unix_ns": "ns",
}  # fmt: skip
ISO_NAMES = {"iso", "iso8601", "iso-8601", "rfc3339"}
_EPOCH_RE = r"^[+-]?\d+(?:\.\d*)?$"
_SCI_RE = r"^[+-]?\d+(?:\.\d*)?[eE][+-]?\d+$"


class TimestampFormat:
    """How a timestamp column is written: `kind` is 'epoch', 'iso' or 'strftime'."""

    def __init__(self, kind: str, unit: str | None = None, fmt: str | None = None):
        self.kind, self.unit, self.fmt = kind, unit, fmt

    def __repr__(self) -> str:
        return f"TimestampFormat({self.kind!r}, unit={self.unit!r}, fmt={self.fmt!r})"

    @classmethod
    def from_config(cls, fmt: str | None, unit: str | None) -> TimestampFormat | None:
        """None when nothing is configured (detect from the data)."""
        if unit is not None:
            key = str(unit).strip().lower()
            if key not in UNIT_ALIASES or UNIT_ALIASES[key] is None:
                raise ValueError(f"timestamp_unit {unit!r} is not one of s, ms, us, ns")
            unit = UNIT_ALIASES[key]
        if fmt is None or str(fmt).strip() == "":
            return cls("epoch", unit) if unit else None
        text = str(fmt).strip()
        if "%" in text:
            return cls("strftime", unit, python_to_chrono(text))
        key = text.lower()
        if key in ISO_NAMES:
            return cls("iso", unit)
        if key in UNIT_ALIASES:
            return cls("epoch", unit or UNIT_ALIASES[key])
        raise ValueError(
            f"timestamp_format {fmt!r}: expected a strftime format (with %), 'iso', or an epoch unit (s, ms, us, ns)"
        )

    def describe(self) -> str:
        if self.kind == "epoch":
            return f"epoch {self.unit}" if self.unit else "epoch number, unit from its magnitude"
        if self.kind == "iso":
            return "ISO 8601 like 2024-01-05T12:00:00Z; set timestamp_format for another layout"
        return f"format {self.fmt!r}"


def python_to_chrono(fmt: str) -> str:
    """Python's `%S.%f` (microseconds) -> chrono's `%S%.f` (any fraction after a dot)."""
    return fmt.replace(".%f", "%.f").replace("%f", "%.f") if ".%f" in fmt else fmt.replace("%f", "%6f")


def detect_format(sample: pl.Series) -> TimestampFormat:
    """Epoch numbers or ISO strings, judged by the column's first non-empty value (as polars
    infers a format from the first value); a later value of the other sort is then reported
    as not a timestamp, on its own line."""
    values = sample.drop_nulls().str.strip_chars()
    values = values.filter(values.str.len_bytes() > 0)
    if values.len() and (re.fullmatch(_EPOCH_RE, values[0]) or re.fullmatch(_SCI_RE, values[0])):
        return TimestampFormat("epoch")
    return TimestampFormat("iso")


def epoch_ns(text: pl.Expr, unit: str | None = None) -> pl.Expr:
    """Epoch number strings -> Int64 ns (exact for integers and decimal fractions)."""
    t = text.str.strip_chars()
    parts = t.str.extract_groups(r"^([+-]?)(\d+)(?:\.(\d*))?$")
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    whole = parts.struct.field("2").cast(pl.Int64, strict=False)
    factor = _unit_factor(whole, unit)  # whole is unsigned here: the sign is apart
    # The fraction as billionths of one unit, then scaled to ns: exact integer arithmetic.
    frac9 = parts.struct.field("3").fill_null("").str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64, strict=False)
    exact = sign * (whole * factor + (frac9 * factor) // 1_000_000_000)
    # Scientific notation ('1.7e12') only through float: rare, and then inexact below 1 µs.
    sci = t.cast(pl.Float64, strict=False)
    sci_ns = (sci * factor.cast(pl.Float64)) if unit is not None else None
    if sci_ns is None:
        mag = sci.abs()
        sci_ns = (
            pl.when(mag < 1e11).then(sci * 1e9).when(mag < 1e14).then(sci * 1e6)
            .when(mag < 1e17).then(sci * 1e3).otherwise(sci)
        )  # fmt: skip
    fits = whole <= pl.lit(9_000_000_000_000_000_000, dtype=pl.Int64) // factor  # else it overflows int64 ns
    sci_ok = sci.abs() < 9e18
    return (
        pl.when(whole.is_not_null() & fits).then(exact)
        .when(whole.is_null() & sci_ok).then(sci_ns.round(0).cast(pl.Int64, strict=False))
        .otherwise(pl.lit(None, dtype=pl.Int64))
    )  # fmt: skip


def _unit_factor(whole: pl.Expr, unit: str | None) -> pl.Expr:
    """ns per unit: fixed, or per value from its magnitude (see the module docstring).
    Magnitudes by `is_between`, not `abs()`, which wraps at -2**63."""
    if unit is not None:
        return pl.lit(UNIT_NS[unit], dtype=pl.Int64)

    def below(limit: int) -> pl.Expr:
        return whole.is_between(-limit + 1, limit - 1)

    return (
        pl.when(below(100_000_000_000)).then(pl.lit(UNIT_NS["s"]))
        .when(below(100_000_000_000_000)).then(pl.lit(UNIT_NS["ms"]))
        .when(below(100_000_000_000_000_000)).then(pl.lit(UNIT_NS["us"]))
        .otherwise(pl.lit(UNIT_NS["ns"]))
        .cast(pl.Int64)
    )  # fmt: skip


def epoch_int_ns(whole: pl.Expr, unit: str | None = None) -> pl.Expr:
    """Int64 epoch numbers (read as integers by the CSV reader) -> Int64 ns; null where it overflows."""
    factor = _unit_factor(whole, unit)
    limit = pl.lit(9_000_000_000_000_000_000, dtype=pl.Int64) // factor
    return pl.when(whole.is_between(-limit, limit)).then(whole * factor).otherwise(pl.lit(None, dtype=pl.Int64))


def from_epoch_ns(ns: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ns, time_unit="ns").dt.replace_time_zone("UTC")


def parse_timestamp(text: pl.Expr, fmt: TimestampFormat) -> pl.Expr:
    """A String column -> Datetime(ns, UTC); unparseable values become null."""
    if fmt.kind == "epoch":
        return from_epoch_ns(epoch_ns(text, fmt.unit))
    t = text.str.strip_chars()
    if fmt.kind == "strftime":
        return t.str.to_datetime(fmt.fmt, time_unit="ns", strict=False, time_zone="UTC")
    return iso_timestamp(t)


def iso_timestamp(t: pl.Expr) -> pl.Expr:
    """ISO 8601 text -> UTC: 'T' or ' ' between date and time, any fraction, 'Z' or an offset
    (converted) or none (UTC), or a date alone; each value on its own (a column may mix them).
    Only ISO layouts: '01/05/2024' is null, never guessed day- or month-first."""
    t = t.str.replace(r"^(\d{4}-\d{2}-\d{2})[ Tt]", "${1}T").str.replace(r"\s+([+-]\d{2}:?\d{2}|[Zz])$", "${1}")

    def parse(layout: str) -> pl.Expr:
        return t.str.to_datetime(layout, time_unit="ns", strict=False)

    zoned = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f%#z"), parse("%Y-%m-%dT%H:%M%#z")).dt.convert_time_zone("UTC")
    naive = pl.coalesce(parse("%Y-%m-%dT%H:%M:%S%.f"), parse("%Y-%m-%dT%H:%M"), parse("%Y-%m-%d"))
    return pl.coalesce(zoned, naive.dt.replace_time_zone("UTC"))


def number(text: pl.Expr) -> pl.Expr:
    """Decimal strings -> Float64 ('NaN'/'inf' parse, so quarantine can count them)."""
    return text.str.strip_chars().cast(pl.Float64, strict=False)


# Aggressor sides: the taker's side as text, or a buyer-is-maker flag (true = the SELLER took).
BUY_WORDS = ["buy", "b", "buyer", "bid", "taker_buy"]
SELL_WORDS = ["sell", "s", "seller", "ask", "offer", "taker_sell"]
NO_SIDE_WORDS = ["unknown", "none", "no_aggressor", "", "n/a", "na"]
BUYER_MAKER_TRUE = ["true", "t", "yes", "y"]
BUYER_MAKER_FALSE = ["false", "f", "no", "n"]


def aggressor_side(text: pl.Expr, buyer_maker_column: bool = False) -> pl.Expr:
    """Side text -> AGGRESSOR_SIDE enum; null for a value it cannot read (the caller reports it)."""
    t = text.str.strip_chars().str.to_lowercase()
    true_words, false_words = BUYER_MAKER_TRUE, BUYER_MAKER_FALSE
    if buyer_maker_column:  # a flag column may also say 1/0
        true_words, false_words = [*true_words, "1"], [*false_words, "0"]
    expr = (
        pl.when(t.is_null() | t.is_in(NO_SIDE_WORDS)).then(pl.lit("NO_AGGRESSOR"))
        .when(t.is_in(true_words)).then(pl.lit("SELLER"))
        .when(t.is_in(false_words)).then(pl.lit("BUYER"))
    )  # fmt: skip
    if not buyer_maker_column:
        expr = expr.when(t.is_in(BUY_WORDS)).then(pl.lit("BUYER")).when(t.is_in(SELL_WORDS)).then(pl.lit("SELLER"))
    return expr.otherwise(pl.lit(None, dtype=pl.String)).cast(AGGRESSOR_SIDE)


def by_distinct(frame: pl.DataFrame, column: str, parse) -> pl.Expr:
    """`parse(pl.col(column))`, evaluated once per distinct value and mapped back by hash: for
    low-cardinality text (sides, symbols), where per-row string work would dominate."""
    distinct = frame.get_column(column).unique()
    parsed = distinct.to_frame().select(parse(pl.col(column))).to_series()
    return pl.col(column).replace_strict(distinct, parsed, return_dtype=parsed.dtype)


def first_bad(frame: pl.DataFrame, bad: pl.Expr, *columns: str) -> dict | None:
    """The first row where `bad` holds (with `columns`), or None."""
    hit = frame.lazy().filter(bad).select(*columns).head(1).collect()
    return hit.row(0, named=True) if hit.height else None


def raise_if_bad(frame: pl.DataFrame, bad: pl.Expr, where: str, line_col: str, value_col: str, problem: str) -> None:
    """SourceError '<where> line N: <problem>: <value>' for the first row where `bad` holds."""
    row = first_bad(frame, bad, line_col, value_col)
    if row is not None:
        n_bad = frame.lazy().filter(bad).select(pl.len()).collect().item()
        more = f" ({n_bad - 1} more row(s) like it)" if n_bad > 1 else ""
        value = "" if row[value_col] is None else f": {_show(row[value_col])}"
        raise SourceError(f"{where} line {row[line_col]}: {problem}{value}{more}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def norm_symbol(expr: pl.Expr) -> pl.Expr:
    """'btc-usdt' / 'BTC/USDT' / 'BTCUSDT' -> 'BTCUSDT' (exchange symbols compared loosely)."""
    return expr.str.to_uppercase().str.replace_all(r"[-_/ ]", "")


def norm_symbol_text(symbol: str) -> str:
    return re.sub(r"[-_/ ]", "", symbol.upper())
