"""The order book's vocabulary, shared by the deltas' frame, the book's replay and the readers
that build deltas: Nautilus's `BookAction` and `OrderSide` codes, its record flags, and how the
loader flags an event batch.

- `action`: 1 ADD, 2 UPDATE, 3 DELETE, 4 CLEAR; `side`: 0 none (a CLEAR), 1 bid, 2 ask.
- `flags`: F_LAST (128) on the last delta of each event batch, F_SNAPSHOT (32) on a snapshot's CLEAR.
"""

from __future__ import annotations

import polars as pl

ADD, UPDATE, DELETE, CLEAR = 1, 2, 3, 4
NO_SIDE, BID, ASK = 0, 1, 2
F_LAST, F_SNAPSHOT = 128, 32


def batch_flags(frame: pl.DataFrame | pl.LazyFrame) -> pl.Expr:
    """`flags` as the loader sets them: F_LAST where the next delta's ts_event differs (and on
    the last delta), else F_SNAPSHOT on a CLEAR, else 0."""
    nxt = pl.col("ts_event").shift(-1)
    last = nxt.is_null() | (nxt != pl.col("ts_event"))
    return (
        pl.when(last)
        .then(pl.lit(F_LAST, pl.UInt8))
        .when(pl.col("action") == CLEAR)
        .then(pl.lit(F_SNAPSHOT, pl.UInt8))
        .otherwise(pl.lit(0, pl.UInt8))
        .alias("flags")
    )
