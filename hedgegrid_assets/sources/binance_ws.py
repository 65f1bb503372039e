"""Binance USDT-M WebSocket messages -> canonical frames, columnar.

Reads lines in any of the shapes a recorder or vendor stores them:
- a Tardis replay line: `2024-01-01T00:00:00.1234567Z {"stream": ..., "data": {...}}`
- the combined-stream envelope: `{"stream": "btcusdt@aggTrade", "data": {...}}`
- the bare payload: `{"e": "aggTrade", ...}`
The whole file is decoded by polars in one pass (no per-line Python).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES, DataKind

# Binance trades that are not market trades (`X` of the `trade` stream).
NON_MARKET_TRADES = ["INSURANCE_FUND", "ADL", "NA"]

_PAYLOAD = {
    "e": pl.String,  # event type: aggTrade | trade | markPriceUpdate
    "E": pl.Int64,  # event time, ms
    "s": pl.String,  # symbol
    "a": pl.Int64,  # aggregate trade id
    "t": pl.Int64,  # trade id
    "p": pl.String,  # price / mark price
    "q": pl.String,  # quantity
    "m": pl.Boolean,  # buyer is maker -> the aggressor SOLD
    "X": pl.String,  # trade type
    "T": pl.Int64,  # trade time (trades) / next funding time (markPrice), ms
    "r": pl.String,  # funding rate that settles at T
}
_MESSAGE = pl.Struct({"stream": pl.String, "data": pl.Struct(_PAYLOAD), **_PAYLOAD})
_LOCAL_TS_LEN = 28  # '2024-01-01T00:00:00.1234567Z'


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


def decode_messages(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Lines -> one row per message: `recv_ts` (nullable) plus the payload's fields."""
    line = pl.col("line").str.strip_chars_end()
    has_ts = ~line.str.starts_with("{")
    json_text = pl.when(has_ts).then(line.str.slice(_LOCAL_TS_LEN + 1)).otherwise(line)
    recv_ts = (
        pl.when(has_ts)
        .then(line.str.slice(0, _LOCAL_TS_LEN - 1))
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="ns", strict=False)
        .dt.replace_time_zone("UTC")
    )
    decoded = lines.filter(line.str.len_bytes() > 0).select(
        "line_no", recv_ts=recv_ts, msg=json_text.str.json_decode(_MESSAGE)
    )
    # Envelope fields win over top-level ones (the bare-payload case has no `data`).
    return decoded.select(
        "line_no",
        "recv_ts",
        *[
            pl.coalesce(pl.col("msg").struct.field("data").struct.field(k), pl.col("msg").struct.field(k)).alias(k)
            for k in _PAYLOAD
        ],
    )


def _ms(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="ms").dt.cast_time_unit("ns").dt.replace_time_zone("UTC")


def trades(messages: pl.LazyFrame, event: str = "aggTrade") -> pl.LazyFrame:
    id_field = "a" if event == "aggTrade" else "t"
    return messages.filter(
        (pl.col("e") == event) & (pl.col("X").is_null() | ~pl.col("X").is_in(NON_MARKET_TRADES))
    ).select(
        ts_event=_ms("T"),
        ts_init=pl.coalesce("recv_ts", _ms("E")),
        price=pl.col("p").cast(pl.Float64),
        size=pl.col("q").cast(pl.Float64),
        aggressor_side=pl.when(pl.col("m")).then(pl.lit("SELLER")).otherwise(pl.lit("BUYER")),
        trade_id=pl.col(id_field).cast(pl.String),
    )


def mark_prices(messages: pl.LazyFrame) -> pl.LazyFrame:
    return messages.filter(pl.col("e") == "markPriceUpdate").select(
        ts_event=_ms("E"),
        ts_init=pl.coalesce("recv_ts", _ms("E")),
        value=pl.col("p").cast(pl.Float64),
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
        )
        .sort("ts_init", maintain_order=True)
    )
    changed = (pl.col("rate") != pl.col("rate").shift(1)) | (
        pl.col("next_funding_time") != pl.col("next_funding_time").shift(1)
    )
    return updates.filter(changed.fill_null(True))


PARSERS = {TRADES.name: trades, MARK_PRICES.name: mark_prices, FUNDING_RATES.name: funding_rates}


def read_kind(kind: DataKind, files: list[Path], trade_event: str = "aggTrade") -> pl.DataFrame:
    """All messages of `kind` in `files`, in canonical columns."""
    if not files:
        return kind.empty_frame()
    messages = pl.concat([decode_messages(read_lines(f)) for f in files])
    if kind is TRADES:
        lazy = trades(messages, trade_event)
    else:
        lazy = PARSERS[kind.name](messages)
    return kind.conform(lazy.collect())
