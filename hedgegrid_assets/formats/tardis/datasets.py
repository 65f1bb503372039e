"""Tardis downloadable CSV datasets (binance-futures) -> canonical frames.

Config: `{"format": "tardis", "base_path": DIR}` (optional `"exchange"`, default
`binance-futures`). Per partition it lands, from DIR, the files under their conventional names

    binance-futures_trades_{YYYY-MM-DD}_{SYMBOL}.csv.gz
    binance-futures_derivative_ticker_{YYYY-MM-DD}_{SYMBOL}.csv.gz
    binance-futures_quotes_{YYYY-MM-DD}_{SYMBOL}.csv.gz        (or ..._book_ticker_...)

(the first two required; the quotes file optional: a day without one has no quotes, nothing
expects them, nothing warns). Tardis splits files by `local_timestamp`, so a day's file is
that day's partition; `timestamp`/`local_timestamp` are microseconds: ts_event = timestamp,
ts_init = local_timestamp. Every row must be for the partition's symbol.

- trades `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`: side is the
  taker's (buy -> BUYER, sell -> SELLER, unknown -> NO_AGGRESSOR), id the trade id.
- derivative_ticker `exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,
  predicted_funding_rate,open_interest,last_price,index_price,mark_price`: a row whenever a
  field changes, with empty cells for what did not. Mark prices: the rows with a mark_price
  that differs from the last one given (a row that only repeats the mark while another field
  changed adds nothing). Funding: funding_rate with funding_timestamp as the next funding
  time, both carried forward over empty cells, one update per change of (rate, next time).
- quotes `exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount`:
  one quote per row (bid/ask price and amount). Read by column name, so `book_ticker` (the
  exchange's own best bid/ask channel, the same columns) reads the same way; `quotes` is
  preferred, `book_ticker` read when the day has only that.
- incremental_book_L2 (optional): the L2 deltas; book_snapshot_25, else book_snapshot_5
  (optional): the depth-10 snapshots (see `tardis_book`, which streams the big L2 days).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hedgegrid_assets.formats.csv.reader import VALUES, Table, load_rows, read_table, value
from hedgegrid_assets.formats.parsing import TimestampFormat
from hedgegrid_assets.formats.tardis import book as tardis_book
from hedgegrid_assets.frames import (
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    ORDER_BOOK_DEPTH10,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)  # fmt: skip

TRADES_TABLE = Table(
    columns={
        "timestamp": "timestamp",
        "local_timestamp": "local_timestamp",
        "symbol": "symbol",
        "price": "price",
        "size": "amount",
        "aggressor_side": "side",
        "trade_id": "id",
    },
    ts_format=TimestampFormat("epoch", "us"),
    side_is_buyer_maker=False,
    strict_symbol=True,
)
TICKER_TABLE = Table(
    columns={
        "timestamp": "timestamp",
        "local_timestamp": "local_timestamp",
        "symbol": "symbol",
        "mark_price": "mark_price",
        "index_price": "index_price",
        "funding_rate": "funding_rate",
        "next_funding_time": "funding_timestamp",
    },
    ts_format=TimestampFormat("epoch", "us"),
    strict_symbol=True,
)
QUOTES_TABLE = Table(
    columns={"timestamp": "timestamp", "local_timestamp": "local_timestamp", "symbol": "symbol",
             "bid_price": "bid_price", "ask_price": "ask_price", "bid_size": "bid_amount", "ask_size": "ask_amount"},
    ts_format=TimestampFormat("epoch", "us"),
    strict_symbol=True,
)  # fmt: skip
QUOTE_TYPES = ("quotes", "book_ticker")  # in order of preference
TICKER_ROLES = [
    "timestamp",
    "local_timestamp",
    "symbol",
    "mark_price",
    "index_price",
    "funding_rate",
    "next_funding_time",
]


def file_name(exchange: str, data_type: str, part: PartitionContext) -> str:
    return f"{exchange}_{data_type}_{part.day.isoformat()}_{part.instrument.symbol}.csv.gz"


def read_derivative_ticker(path: Path, kind: DataKind, part: PartitionContext) -> pl.DataFrame:
    rows = load_rows(path, TICKER_TABLE, TICKER_ROLES, [], part, values=VALUES[kind.name])
    if rows is None:
        return kind.empty_frame()
    frame = rows.frame
    times = pl.col("_ts_event").alias("ts_event"), pl.col("_ts_init").alias("ts_init")
    if kind is MARK_PRICES:
        mark = value("mark_price")
        previous = mark.forward_fill().shift(1)
        changed = mark.is_not_null() & (previous.is_null() | (mark != previous))
        # The index price known at the mark's row (a row holds only the fields that changed).
        index = value("index_price").forward_fill() if "index_price" in rows.cols else pl.lit(None, pl.Float64)
        out = frame.select(*times, value=mark, index_price=index, _keep=changed).filter("_keep").drop("_keep")
        return kind.conform(out)
    rate, nxt = value("funding_rate"), value("next_funding_time")
    updates = frame.select(
        *times,
        rate=rate,
        next_funding_time=nxt,
        interval=pl.lit(None, pl.UInt16),
        _given=rate.is_not_null() | nxt.is_not_null(),
    )
    updates = updates.filter("_given").with_columns(pl.col("rate", "next_funding_time").forward_fill())
    changed = (pl.col("rate") != pl.col("rate").shift(1)) | (
        pl.col("next_funding_time") != pl.col("next_funding_time").shift(1)
    )
    keep = pl.col("rate").is_not_null() & (changed.fill_null(True) | pl.col("rate").shift(1).is_null())
    return kind.conform(updates.filter(keep).drop("_given"))


def read_file(kind: DataKind, path: Path, part: PartitionContext) -> pl.DataFrame:
    """One landed Tardis dataset file as `kind`'s rows: the reader for each kind."""
    if kind is TRADES:
        return read_table(path, TRADES_TABLE, kind, part)
    if kind is QUOTES:
        return read_table(path, QUOTES_TABLE, kind, part)
    if kind is ORDER_BOOK_DELTAS:
        return tardis_book.read_incremental_l2(path, part)
    if kind is ORDER_BOOK_DEPTH10:
        return tardis_book.read_book_snapshots(path, 5 if "book_snapshot_5_" in path.name else 25, part)
    return read_derivative_ticker(path, kind, part)
