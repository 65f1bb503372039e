"""Synthetic Tardis order-book CSV datasets (seeded, columnar): `incremental_book_L2` and
`book_snapshot_25` / `book_snapshot_5`, shaped as Tardis publishes them for binance-futures.

Used by the order-book tests and by bench/order_book.py (millions of rows in seconds).
The book is consistent: bids sit below a centre price and asks above it, so it is never crossed
unless `cross_at` asks for one crossed batch.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl

DAY_START_US = 1_704_153_600_000_000  # 2024-01-02
CENTRE = 420_000  # ticks of 0.1: 42000.0
HEADER_L2 = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"


def _price_text(ticks: pl.Expr) -> pl.Expr:
    return (ticks // 10).cast(pl.String) + "." + (ticks % 10).cast(pl.String)


def _amount_text(units: pl.Expr) -> pl.Expr:
    return (units // 1000).cast(pl.String) + "." + (units % 1000).cast(pl.String).str.zfill(3)


def _gzip(plain: Path, out: Path) -> None:
    if shutil.which("gzip"):
        with out.open("wb") as fh:
            subprocess.run(["gzip", "-1", "-c", str(plain)], stdout=fh, check=True)
    else:  # pragma: no cover
        with plain.open("rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    plain.unlink()


def l2_frame(n: int, seed: int = 7, levels: int = 400, snapshots: int = 2, cross_at: int | None = None,
             symbol: str = "BTCUSDT", day_start_us: int = DAY_START_US, span: int = 86_400_000_000 - 2_000_000
             ) -> pl.DataFrame:  # fmt: skip
    """About `n` rows: `snapshots` full snapshots (the first at the day's start, others spread
    over the day), the rest updates in batches of 1-20 levels sharing a timestamp."""
    rng = np.random.default_rng(seed)
    snap_rows = 2 * levels
    n_updates = max(n - snapshots * snap_rows, 0)
    # Update batches: sizes 1..20, each batch one exchange timestamp.
    sizes = rng.integers(1, 21, n_updates // 10 + 2)
    batch = np.repeat(np.arange(sizes.size), sizes)[:n_updates]
    n_batches = int(batch[-1]) + 1 if n_updates else 0
    batch_ts = (
        day_start_us + 1_000 + np.sort(rng.choice(span, n_batches, replace=False))
        if n_batches
        else np.array([], np.int64)
    )
    side_bid = rng.random(n_updates) < 0.5
    depth = np.minimum(rng.geometric(0.08, n_updates), levels)
    ticks = np.where(side_bid, CENTRE - depth, CENTRE + depth)
    amount = np.where(rng.random(n_updates) < 0.15, 0, rng.integers(1, 20_000, n_updates))
    updates = pl.DataFrame({
        "timestamp": batch_ts[batch] if n_updates else np.array([], np.int64),
        "is_snapshot": np.zeros(n_updates, bool),
        "side": np.where(side_bid, "bid", "ask"),
        "ticks": ticks.astype(np.int64),
        "units": amount.astype(np.int64),
    })  # fmt: skip
    parts = [updates]
    snap_times = ([day_start_us] if snapshots else []) + [
        day_start_us + int(span * (i + 1) / snapshots) + 500 for i in range(snapshots - 1)
    ]
    for ts in snap_times:
        k = np.arange(1, levels + 1)
        parts.append(pl.DataFrame({
            "timestamp": np.full(snap_rows, ts, np.int64),
            "is_snapshot": np.ones(snap_rows, bool),
            "side": np.concatenate([np.full(levels, "bid"), np.full(levels, "ask")]),
            "ticks": np.concatenate([CENTRE - k, CENTRE + k]).astype(np.int64),
            "units": rng.integers(1, 20_000, snap_rows).astype(np.int64),
        }))  # fmt: skip
    frame = pl.concat(parts).sort("timestamp", "is_snapshot", descending=[False, True], maintain_order=True)
    if cross_at is not None:  # one bid above the asks: the book is crossed after that batch
        frame = frame.with_columns(
            ticks=pl.when(pl.int_range(pl.len()) == cross_at).then(CENTRE + 5).otherwise("ticks"),
            side=pl.when(pl.int_range(pl.len()) == cross_at).then(pl.lit("bid")).otherwise("side"),
            units=pl.when(pl.int_range(pl.len()) == cross_at).then(1000).otherwise("units"),
        )
    # One receive time per exchange event (a batch arrives in one message).
    frame = frame.with_columns(lat=pl.Series(rng.integers(100, 30_000, frame.height))).with_columns(
        pl.col("lat").first().over("timestamp")
    )
    return frame.select(
        exchange=pl.lit("binance-futures"),
        symbol=pl.lit(symbol),
        timestamp="timestamp",
        local_timestamp=pl.col("timestamp") + pl.col("lat"),
        is_snapshot=pl.when("is_snapshot").then(pl.lit("true")).otherwise(pl.lit("false")),
        side="side",
        price=_price_text(pl.col("ticks")),
        amount=_amount_text(pl.col("units")),
    ).with_columns(pl.col("local_timestamp").cum_max())  # Tardis orders files by local time


PIECE = 5_000_000  # rows generated at a time: a 50M-row day is written piece by piece


def write_l2(path: Path, n: int, snapshots: int = 2, seed: int = 7, **kw) -> Path:
    """An `incremental_book_L2` CSV (gzipped when the name ends in .gz); a big one is written
    in pieces of consecutive time windows (snapshots in the first and middle pieces)."""
    plain = path.with_name(path.name.removesuffix(".gz") + ".plain") if path.suffix == ".gz" else path
    pieces = max(1, -(-n // PIECE))
    span = (86_400_000_000 - 2_000_000) // pieces
    path.parent.mkdir(parents=True, exist_ok=True)
    with plain.open("wb") as out:
        for i in range(pieces):
            snaps = snapshots if pieces == 1 else int(i == 0) + int(i == pieces // 2 and snapshots > 1)
            frame = l2_frame(min(PIECE, n - i * PIECE), seed=seed + i, snapshots=snaps,
                             day_start_us=DAY_START_US + i * span, span=span - 100_000, **kw)  # fmt: skip
            frame.write_csv(out, include_header=i == 0)
            del frame
    if path.suffix == ".gz":
        _gzip(plain, path)
    return path


def snapshot_frame(n: int, levels: int, seed: int = 11, symbol: str = "BTCUSDT", empty_levels: int = 0,
                   day_start_us: int = DAY_START_US) -> pl.DataFrame:  # fmt: skip
    """A `book_snapshot_{levels}` file: one row per snapshot, asks then bids per level as Tardis
    orders them (`asks[0].price, asks[0].amount, bids[0].price, bids[0].amount, ...`); the last
    `empty_levels` levels of every tenth row are empty cells (a thin book)."""
    rng = np.random.default_rng(seed)
    ts = day_start_us + np.sort(rng.choice(86_400_000_000 - 1_000_000, n, replace=False))
    best_bid = CENTRE - rng.integers(1, 3, n)
    columns: dict[str, pl.Expr] = {
        "exchange": pl.lit("binance-futures"),
        "symbol": pl.lit(symbol),
        "timestamp": pl.col("ts"),
        "local_timestamp": pl.col("ts") + pl.col("lat"),
    }
    data = {"ts": ts, "lat": rng.integers(100, 30_000, n), "thin": (np.arange(n) % 10) == 9}
    for i in range(levels):
        data[f"ap{i}"] = best_bid + 1 + i + (i > 0) * rng.integers(0, 2, n)
        data[f"bp{i}"] = best_bid - i - (i > 0) * rng.integers(0, 2, n)
        data[f"aa{i}"] = rng.integers(1, 20_000, n)
        data[f"ba{i}"] = rng.integers(1, 20_000, n)
    # Levels strictly ordered: cumulative gaps.
    for side, sign in (("ap", 1), ("bp", -1)):
        for i in range(1, levels):
            data[f"{side}{i}"] = data[f"{side}{i - 1}"] + sign * (
                1 + np.abs(data[f"{side}{i}"] - data[f"{side}{i - 1}"]) % 2
            )
    for i in range(levels):
        empty = pl.col("thin") & pl.lit(i >= levels - empty_levels)
        for side, name in (("asks", "a"), ("bids", "b")):
            columns[f"{side}[{i}].price"] = pl.when(empty).then(None).otherwise(_price_text(pl.col(f"{name}p{i}")))
            columns[f"{side}[{i}].amount"] = pl.when(empty).then(None).otherwise(_amount_text(pl.col(f"{name}a{i}")))
    order = ["exchange", "symbol", "timestamp", "local_timestamp"] + [
        f"{side}[{i}].{f}" for i in range(levels) for side in ("asks", "bids") for f in ("price", "amount")
    ]
    return pl.DataFrame(data).select(**columns).select(order)


def write_snapshots(path: Path, n: int, levels: int, **kw) -> Path:
    frame = snapshot_frame(n, levels, **kw)
    plain = path.with_name(path.name.removesuffix(".gz") + ".plain") if path.suffix == ".gz" else path
    frame.write_csv(plain)
    if path.suffix == ".gz":
        _gzip(plain, path)
    return path
