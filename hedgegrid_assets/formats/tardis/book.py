"""Tardis order-book CSV datasets -> the order-book frames, a bounded block at a time.

- `incremental_book_L2` (`exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,
  amount`): tens of millions of rows a day for BTCUSDT. The gzip is decompressed and parsed in
  blocks of whole lines (`compressed.line_blocks`), each block reduced at once to the compact
  columns the frame keeps (8 bytes per timestamp/price/size, 1 per action/side/flags), so a
  50,000,000-row day never holds its text, its strings or a Python object per row.
  Rows become deltas as Nautilus's `TardisCSVDataLoader.load_deltas` makes them: a snapshot
  starts (an `is_snapshot` row after a non-snapshot row, or with a new timestamp) with a CLEAR
  delta; a level of amount 0 is a DELETE, else ADD in a snapshot and UPDATE outside one;
  F_LAST closes each run of one `timestamp`; sequence 0.
- `book_snapshot_25` / `book_snapshot_5`: one row per snapshot, `asks[i].price, asks[i].amount,
  bids[i].price, bids[i].amount` per level; the best 10 (or 5) levels become an
  `OrderBookDepth10` row as `load_depth10` builds them (absent levels: price 0, size 0, count
  0; present ones count 1), flags F_LAST | F_SNAPSHOT, sequence 0.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.frames.book_codes import (
    ADD,
    ASK,
    BID,
    CLEAR,
    DELETE,
    F_LAST,
    F_SNAPSHOT,
    NO_SIDE,
    UPDATE,
    batch_flags,
)
from hedgegrid_assets.frames.kind import TIMESTAMP, PartitionContext
from hedgegrid_assets.frames.order_book import DEPTH, ORDER_BOOK_DELTAS, ORDER_BOOK_DEPTH10  # fmt: skip
from hedgegrid_assets.landing import compressed

L2_COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]
L2_TYPES = {"symbol": pl.String, "timestamp": pl.Int64, "local_timestamp": pl.Int64, "is_snapshot": pl.String,
            "side": pl.String, "price": pl.Float64, "amount": pl.Float64}  # fmt: skip
SNAPSHOT_TYPES = ("book_snapshot_25", "book_snapshot_5")  # in order of preference
BLOCK_BYTES = 64 << 20  # text parsed at a time (about 750,000 rows)


def _us(col: str) -> pl.Expr:
    return (pl.col(col) * 1_000).cast(pl.Datetime("ns", "UTC"))


def _first_bad_line(block: bytes, columns: list[str], label: str, first_line: int) -> SourceError:
    """Name the first line of a block that does not parse (the block is re-read as text)."""
    try:
        text = pl.read_csv(io.BytesIO(block), has_header=False, new_columns=columns, infer_schema=False,
                           truncate_ragged_lines=False)  # fmt: skip
    except pl.exceptions.PolarsError as err:  # not UTF-8, or lines of another number of fields
        for i, raw in enumerate(block.split(b"\n")):
            try:
                fields = raw.decode().rstrip("\r").split(",")
            except UnicodeDecodeError:
                return SourceError(f"{label} line {first_line + i}: not UTF-8 text: {raw[:80]!r}")
            if raw.strip() and len(fields) != len(columns):
                count = f"{len(fields)} field(s), not {len(columns)}"
                return SourceError(f"{label} line {first_line + i}: {count}: {raw[:80]!r}")
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return SourceError(f"{label} near line {first_line}: cannot be read as CSV ({first})")
    for name, dtype in L2_TYPES.items():
        if dtype is pl.String:
            continue
        cast = text.get_column(name).cast(dtype, strict=False)
        bad = (cast.is_null() & text.get_column(name).is_not_null()) | text.get_column(name).is_null()
        if bad.any():
            i = int(bad.arg_max())
            return SourceError(f"{label} line {first_line + i}: {name} {text.get_column(name)[i]!r} is not a number")
    return SourceError(f"{label} near line {first_line}: cannot be read as CSV")


def _l2_block(block: bytes, part: PartitionContext, label: str, first_line: int) -> pl.DataFrame:
    try:
        frame = pl.read_csv(
            io.BytesIO(block), has_header=False, new_columns=L2_COLUMNS, columns=list(range(1, 8)),
            schema_overrides=L2_TYPES,
        )  # fmt: skip
    except pl.exceptions.PolarsError as err:
        if isinstance(err, pl.exceptions.NoDataError):
            return pl.DataFrame()
        raise _first_bad_line(block, L2_COLUMNS, label, first_line) from None
    checks = frame.select(
        other=(pl.col("symbol") != part.instrument.symbol).arg_true().first(),
        side=(~pl.col("side").is_in(["bid", "ask"])).arg_true().first(),
        snap=(~pl.col("is_snapshot").is_in(["true", "false"])).arg_true().first(),
        empty=pl.any_horizontal(pl.col("timestamp", "local_timestamp", "price", "amount").is_null()).arg_true().first(),
    ).row(0, named=True)
    if checks["other"] is not None:
        i = checks["other"]
        raise SourceError(f"{label} line {first_line + i}: symbol {frame['symbol'][i]!r}, not {part.instrument.symbol}")
    if checks["side"] is not None:
        i = checks["side"]
        raise SourceError(f"{label} line {first_line + i}: side {frame['side'][i]!r} is neither bid nor ask")
    if checks["snap"] is not None:
        i = checks["snap"]
        raise SourceError(
            f"{label} line {first_line + i}: is_snapshot {frame['is_snapshot'][i]!r} is neither true nor false"
        )
    if checks["empty"] is not None:
        raise SourceError(f"{label} line {first_line + checks['empty']}: an empty timestamp, price or amount cell")
    return frame.select(
        ts_event=_us("timestamp"),
        ts_init=_us("local_timestamp"),
        snapshot=pl.col("is_snapshot") == "true",
        side=pl.when(pl.col("side") == "bid").then(pl.lit(BID, pl.UInt8)).otherwise(pl.lit(ASK, pl.UInt8)),
        price=pl.col("price"),
        size=pl.col("amount"),
    )


def read_incremental_l2(path: Path, part: PartitionContext, label: str | None = None) -> pl.DataFrame:
    """The file's deltas, built block by block: each block's rows become deltas at once (the
    CLEAR rule looks back one row, across blocks too), so the day exists only once, as deltas."""
    label = label or str(path)
    blocks, line, prev = [], 1, None
    for n, block in enumerate(compressed.line_blocks(path, BLOCK_BYTES)):
        if n == 0:
            end = block.find(b"\n")
            header = block[: end if end >= 0 else len(block)].decode(errors="replace").strip().split(",")
            if header != L2_COLUMNS:
                raise SourceError(
                    f"{label} line 1: not an incremental_book_L2 header: {header[:8]} (expected {','.join(L2_COLUMNS)})"
                )
            block = block[end + 1 :] if end >= 0 else b""
            line = 2
        if not block.strip():
            continue
        rows = _l2_block(block, part, label, line)
        line += block.count(b"\n") + (not block.endswith(b"\n"))
        del block
        if rows.height:
            blocks.append(to_deltas(rows, prev))
            prev = (rows.get_column("snapshot")[-1], rows.get_column("ts_event")[-1])
        del rows
    if not blocks:
        return ORDER_BOOK_DELTAS.empty_frame()
    deltas = pl.concat(blocks, rechunk=False)
    del blocks
    return deltas.with_columns(batch_flags(deltas))


def to_deltas(rows: pl.DataFrame, prev: tuple[bool, object] | None = None) -> pl.DataFrame:
    """Level rows (ts_event, ts_init, snapshot, side, price, size) -> deltas (flags left 0: set
    over the whole day by `batch_flags`), with a CLEAR before each snapshot start; `prev` is the
    (snapshot, ts_event) of the row before these (the previous block's last). Snapshots are few
    (the day's start, reconnections), so the CLEARs are spliced in between zero-copy slices."""
    if prev is None:
        prev_snap, prev_ts = pl.col("snapshot").shift(1), pl.col("ts_event").shift(1)
    else:
        prev_snap = pl.col("snapshot").shift(1, fill_value=pl.lit(prev[0]))
        prev_ts = pl.col("ts_event").shift(1, fill_value=pl.lit(prev[1], dtype=rows.schema["ts_event"]))
    starts = (
        rows.select(
            (
                pl.col("snapshot")
                & (prev_snap.is_null() | ~prev_snap | (pl.col("ts_event") != prev_ts).fill_null(True))
            ).arg_true()
        )
        .to_series()
        .to_list()
    )
    action = (
        pl.when(pl.col("size") == 0)
        .then(pl.lit(DELETE, pl.UInt8))
        .when(pl.col("snapshot"))
        .then(pl.lit(ADD, pl.UInt8))
        .otherwise(pl.lit(UPDATE, pl.UInt8))
    )
    levels = rows.select(
        action=action, side="side", price="price", size="size",
        flags=pl.lit(0, pl.UInt8), sequence=pl.lit(0, pl.UInt64), ts_event="ts_event", ts_init="ts_init",
    )  # fmt: skip
    if not starts:
        return levels
    clears = levels[starts].with_columns(
        action=pl.lit(CLEAR, pl.UInt8), side=pl.lit(NO_SIDE, pl.UInt8), price=pl.lit(0.0), size=pl.lit(0.0)
    )
    pieces, at = [], 0
    for n, start in enumerate(starts):
        pieces += [levels.slice(at, start - at), clears.slice(n, 1)]
        at = start
    pieces.append(levels.slice(at))
    return pl.concat([p for p in pieces if p.height], rechunk=False)


# -- depth-10 snapshots ---------------------------------------------------------------------


def read_book_snapshots(path: Path, levels: int, part: PartitionContext, label: str | None = None) -> pl.DataFrame:
    """A `book_snapshot_{levels}` file -> OrderBookDepth10 rows (the best min(levels, 10))."""
    label = label or str(path)
    keep = min(levels, DEPTH)
    wanted = ["symbol", "timestamp", "local_timestamp"] + [
        f"{side}[{i}].{f}" for i in range(keep) for side in ("asks", "bids") for f in ("price", "amount")
    ]
    with compressed.opened(path) as opened:
        try:
            header = pl.read_csv(opened.path, n_rows=0).columns
        except pl.exceptions.NoDataError:
            return ORDER_BOOK_DEPTH10.empty_frame()
        except (pl.exceptions.PolarsError, OSError) as err:  # a broken gzip stream, bytes that are not text
            raise compressed.explain_read_error(path, err, label) from None
        missing = [c for c in wanted if c not in header]
        if missing:
            raise SourceError(f"{label} line 1: not a book_snapshot_{levels} header: missing {', '.join(missing[:4])}")
        types = {
            c: (pl.Int64 if c.endswith("timestamp") else pl.String if c == "symbol" else pl.Float64) for c in wanted
        }
        try:
            frame = pl.read_csv(opened.path, columns=wanted, schema_overrides=types)
        except (pl.exceptions.PolarsError, OSError) as err:
            if isinstance(err, OSError):  # polars' gzip decoder: the stream is cut short or corrupt
                raise compressed.explain_read_error(path, err, label) from None
            first = str(err).strip().splitlines()[0]
            raise SourceError(f"{label}: cannot be read as a book_snapshot_{levels} file ({first})") from None
    other = frame.select((pl.col("symbol") != part.instrument.symbol).arg_true().first()).item()
    if other is not None:
        raise SourceError(f"{label} line {other + 2}: symbol {frame['symbol'][other]!r}, not {part.instrument.symbol}")
    columns: dict[str, pl.Expr] = {}
    for side, name in (("bids", "bid"), ("asks", "ask")):
        for i in range(DEPTH):
            if i < keep:
                price, amount = pl.col(f"{side}[{i}].price"), pl.col(f"{side}[{i}].amount")
                present = price.is_not_null() & amount.is_not_null()
                columns[f"{name}_price_{i}"] = pl.when(present).then(price).otherwise(0.0)
                columns[f"{name}_size_{i}"] = pl.when(present).then(amount).otherwise(0.0)
                columns[f"{name}_count_{i}"] = present.cast(pl.UInt32)
            else:
                columns[f"{name}_price_{i}"] = pl.lit(0.0)
                columns[f"{name}_size_{i}"] = pl.lit(0.0)
                columns[f"{name}_count_{i}"] = pl.lit(0, pl.UInt32)
    out = frame.select(
        **columns,
        flags=pl.lit(F_LAST | F_SNAPSHOT, pl.UInt8),
        sequence=pl.lit(0, pl.UInt64),
        ts_event=_us("timestamp").cast(TIMESTAMP),
        ts_init=_us("local_timestamp").cast(TIMESTAMP),
    )
    return ORDER_BOOK_DEPTH10.conform(out)
