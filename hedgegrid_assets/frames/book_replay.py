"""The order book rebuilt from its deltas, columnar: the best bid and ask after every batch.

A crossed book (best bid >= best ask once a batch is applied) means deltas were lost or
misapplied; a backtest on it fills at impossible prices. The book is not replayed delta by delta
in Python (50,000,000 a day): every level change is an interval of batches during which that
level stands (from its batch until the next change of the same price on the same side, or the
next CLEAR), and the best bid after batch q is the highest price among the intervals holding q.
That is an offline "range chmax, point query" problem, solved with a segment tree over the
batches whose O(log Q) node updates run as numpy operations over all intervals at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hedgegrid_assets.frames.book_codes import ASK, BID, CLEAR, F_LAST


@dataclass(frozen=True)
class BookTops:
    batch_rows: np.ndarray  # row index of each batch's last delta (F_LAST)
    best_bid: np.ndarray  # after each batch; -inf when the bid side is empty
    best_ask: np.ndarray  # after each batch; +inf when the ask side is empty

    @property
    def crossed(self) -> np.ndarray:
        """Per batch: both sides present and best bid >= best ask."""
        return np.isfinite(self.best_bid) & np.isfinite(self.best_ask) & (self.best_bid >= self.best_ask)


def range_max(starts: np.ndarray, ends: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """out[q] = max(values[i] for intervals i with starts[i] <= q < ends[i]), -inf if none."""
    width = 1 << max(int(size - 1).bit_length(), 0)
    tree = np.full(2 * width, -np.inf)
    lo = starts.astype(np.int64) + width
    hi = ends.astype(np.int64) + width
    v = values.astype(np.float64)
    while lo.size:
        live = lo < hi
        if not live.all():
            lo, hi, v = lo[live], hi[live], v[live]
            if not lo.size:
                break
        odd = (lo & 1).astype(bool)
        np.maximum.at(tree, lo[odd], v[odd])
        lo += odd
        odd = (hi & 1).astype(bool)
        hi -= odd
        np.maximum.at(tree, hi[odd], v[odd])
        lo >>= 1
        hi >>= 1
    # Push each node's value down to its leaves, level by level.
    level = 1
    while level < width:
        parents = tree[level : 2 * level]
        for child in (tree[2 * level : 4 * level : 2], tree[2 * level + 1 : 4 * level : 2]):  # views
            np.maximum(child, parents, out=child)
        level *= 2
    return tree[width : width + size]


def book_tops(frame: pl.DataFrame) -> BookTops:
    """Best bid and ask after each batch of a deltas frame (in its row order)."""
    n = frame.height
    flags = frame.get_column("flags").to_numpy()
    ends = (flags & F_LAST) != 0
    if n and not ends[-1]:
        ends[-1] = True  # an unterminated last batch still ends the day
    batch_rows = np.flatnonzero(ends)
    n_batches = batch_rows.size
    # The batch of row r: the first batch end at or after r (no array of n row->batch ids).
    batch = lambda rows: np.searchsorted(batch_rows, rows)  # noqa: E731
    action = frame.get_column("action").to_numpy()
    clears = np.flatnonzero(action == CLEAR)
    tops = {}
    for side in (BID, ASK):
        rows, stop_rows, price = _standing_runs(frame, side, clears, n)
        start = batch(rows)
        stop = np.where(stop_rows < n, batch(np.minimum(stop_rows, n - 1)), n_batches)
        keep = start < stop
        sign = 1.0 if side == BID else -1.0
        tops[side] = sign * range_max(start[keep], stop[keep], sign * price[keep], n_batches)
        del rows, stop_rows, price, start, stop, keep
    return BookTops(batch_rows, tops[BID], tops[ASK])


BUCKETS = 8  # price ranges worked one at a time: a 50M-delta day's grouping stays small


def _standing_runs(frame: pl.DataFrame, side: int, clears: np.ndarray, n: int):
    """Each stretch during which one price level of `side` stands: (first row, row that ends
    it or n, price). A run of size changes at one level is one stretch (its price is all that
    matters for the best price), so there are about as many as adds/deletes, not as updates.
    A CLEAR starts a new epoch: stretches never cross one. Levels are independent, so the
    side's prices are split into ranges (by a sample's quantiles) worked one after another."""
    prices = frame.lazy().filter(pl.col("side") == side).select("price")
    sample = prices.gather_every(max(1, n // 200_000)).collect().get_column("price")
    if sample.is_empty():
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=np.float64)
    edges = sorted({float(sample.quantile(q / BUCKETS)) for q in range(1, BUCKETS)})
    bounds = [-np.inf, *edges, np.inf]
    out_rows, out_stop, out_price = [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        levels = (
            frame.lazy()
            .select("side", "price", "size")
            .with_row_index("row")
            .filter((pl.col("side") == side) & (pl.col("price") >= lo) & (pl.col("price") < hi))
            .select("row", "price", "size")
            .collect()
        )
        if levels.is_empty():
            continue
        rows = levels.get_column("row").to_numpy()
        epoch = np.searchsorted(clears, rows, side="right") if clears.size else np.zeros(rows.size, np.int64)
        # One integer key per (level, epoch) run: cheaper to group than two columns.
        level = levels.get_column("price").rank("dense").cast(pl.Int64).to_numpy()
        key = pl.Series("key", epoch.astype(np.int64) * (int(level.max()) + 1) + level)
        positive = pl.col("size") > 0
        before = positive.shift(1).over("key").fill_null(False)
        runs = (
            levels.lazy()
            .with_columns(key)
            .with_columns(starts=positive & ~before, ends=~positive & before)
            .filter(pl.col("starts") | pl.col("ends"))
            .with_columns(stop=pl.col("row").shift(-1).over("key"))
            .filter("starts")
            .select("row", "stop", "price")
            .collect()
        )
        del levels, key, level
        start_rows = runs.get_column("row").to_numpy().astype(np.int64)
        stop = runs.get_column("stop").fill_null(n).to_numpy().astype(np.int64)
        if clears.size:  # a stretch still standing at its epoch's end ends at the next CLEAR
            epoch_end = np.append(clears, n)[np.searchsorted(clears, start_rows, side="right")]
            stop = np.minimum(stop, epoch_end)
        out_rows.append(start_rows)
        out_stop.append(stop)
        out_price.append(runs.get_column("price").to_numpy())
        del runs, rows, epoch
    if not out_rows:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=np.float64)
    return np.concatenate(out_rows), np.concatenate(out_stop), np.concatenate(out_price)


def crossed_rows(frame: pl.DataFrame) -> pl.Series:
    """True for each row except the last delta of a batch that leaves the book crossed."""
    ok = np.ones(frame.height, dtype=bool)
    if frame.height:
        tops = book_tops(frame)
        ok[tops.batch_rows[tops.crossed]] = False
    return pl.Series("not_crossed", ok)
