"""Binance USDT-M diff depth stream (`depthUpdate`) + REST depth snapshots -> L2 book deltas.

The book is built as Binance documents it for USDT-M futures ("How to manage a local order
book correctly"): start from a REST snapshot (`lastUpdateId`), drop updates with
`u < lastUpdateId`, the first update applied must have `U <= lastUpdateId <= u` (or follow the
update that ended at it: `pu == lastUpdateId`), and from then on each update's `pu` must equal
the previous update's `u` (an update whose `u` is not above one already applied is a replay,
dropped and counted). A break in that chain is a gap:
it is counted and reported with where it was, and the updates after it are not applied (the
book would be wrong) until the next snapshot, from which the book is re-synced.

Snapshots come from Tardis's `depthSnapshot` channel (`{"stream": "btcusdt@depthSnapshot",
"generated": true, "data": <REST response>}`) or, in a JSONL recording, a line holding the REST
response `{"lastUpdateId", "E", "T", "bids", "asks"}` (bare, or in that envelope) with the
recording's receive-time field (see README). A recording with updates but no snapshot fails.

Rows, as Nautilus's Tardis loader writes them (frames/order_book.py): a snapshot is a CLEAR then
one ADD per level (bids, then asks); an update's levels are DELETE (qty "0") or UPDATE, bids
then asks; `sequence` is the update's `u` (a snapshot's rows: its `lastUpdateId`);
`flags` by `order_book.batch_flags`.

Timestamps: `ts_event` is the event time `E`, not the transaction time `T`: Tardis stamps the
same depth events with `E` (its `incremental_book_L2` `timestamp`, which Nautilus's
`load_deltas` takes as ts_event), so a day built from a recording and the same day from
Tardis's CSV agree; `E` is also what a REST snapshot and every diff event carry. (Nautilus's live
Binance adapter stamps futures depth with `T` instead.) `ts_init` is the line's receive time
(else `E`). Updates received before the snapshot that is applied before them (Binance's
procedure buffers them) get the snapshot's ts_init, as Tardis's own book builder does, and
ts_init never goes back in the book's order (a running maximum), so that the catalog's sort by
ts_init cannot reorder a book.

Columnar: one explode of the level lists; the sync rules are shift/cum-sum comparisons over
`u`/`pu` per snapshot segment; no Python loop per message or level.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.binance.messages import (
    DEPTH_EVENTS,
    SNAPSHOT_EVENT,
    complete_message,
    decode_messages,
    read_lines,
    replay_error,
)
from hedgegrid_assets.frames.book_codes import ADD, ASK, BID, CLEAR, DELETE, NO_SIDE, UPDATE, batch_flags

UPDATE_EVENT = "depthUpdate"
NO_SNAPSHOT = (
    "depthUpdate messages but no depth snapshot to start the book from; record a REST /fapi/v1/depth "
    "snapshot line first (see README)"
)
GAPS_SHOWN = 20  # gaps listed with where they were (all are counted)
# Why an update was not applied (each counted).
BEFORE_FIRST_SNAPSHOT = "before_first_snapshot"
OLDER_THAN_SNAPSHOT = "older_than_snapshot"
AFTER_GAP = "after_gap"
REPEATED = "repeated"  # u not above an update already applied (a replay after a reconnect)
COLUMNS = ("action", "side", "price", "size", "flags", "sequence", "ts_event", "ts_init")


@dataclass
class BookStats:
    """How the book was built: snapshots, updates applied or not (and why), the gaps."""

    snapshots: int = 0
    updates: int = 0
    applied: int = 0
    discarded: dict[str, int] = field(default_factory=dict)
    gaps: list[dict] = field(default_factory=list)  # the first GAPS_SHOWN, each with where it was
    gap_count: int = 0

    def metadata(self) -> dict:
        """What was left out as top-level integers (the run's summary lists those not 0), what
        was built under `book`, and the gaps' places under `book_gaps`."""
        return {
            "book": {"snapshots": self.snapshots, "updates": self.updates, "updates_applied": self.applied},
            "book_sequence_gaps": self.gap_count,
            **{f"book_updates_discarded_{why}": n for why, n in sorted(self.discarded.items())},
            **({"book_gaps": self.gaps} if self.gaps else {}),
        }

    def notable(self) -> bool:
        return bool(self.gap_count or any(self.discarded.values()))

    def describe(self) -> str:
        parts = [f"{self.snapshots:,} depth snapshot(s), {self.applied:,} of {self.updates:,} updates applied"]
        for why, n in sorted(self.discarded.items()):
            if n:
                parts.append(f"{n:,} discarded ({why.replace('_', ' ')})")
        if self.gap_count:
            first = self.gaps[0]
            parts.append(f"{self.gap_count:,} sequence gap(s), the first {describe_gap(first)}")
        return "; ".join(parts)


def describe_gap(gap: dict) -> str:
    where = f"{gap['file']} line {gap['line']}" if gap.get("line") is not None else gap["file"]
    resync = f"re-synced from the snapshot at {gap['resynced_at']}" if gap["resynced_at"] else "no later snapshot"
    return (f"at {gap['at']} ({where}): {gap['reason']}; {gap['not_applied']:,} update(s) not applied, "
            f"{resync}")  # fmt: skip


def _ms(col: str | pl.Expr) -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return pl.from_epoch(e, time_unit="ms").dt.cast_time_unit("ns").dt.replace_time_zone("UTC")


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def build_deltas(
    messages: pl.DataFrame, label: str, window: tuple[dt.datetime, dt.datetime] | None = None
) -> tuple[pl.DataFrame, BookStats]:
    """Decoded depth messages (messages.decode_messages with DEPTH_EVENTS; a `file` column
    names each line's file), in the order received -> (deltas, stats).

    `window`: keep only the deltas (and count only the updates and gaps) whose ts_init falls in
    [start, end) - a recording spanning days; the book is built over the whole recording and a
    day that starts mid-book starts with a snapshot of the book as it stood (CLEAR + ADDs at the
    day's start)."""
    stats = BookStats()
    schema = _frame_schema()
    if "file" not in messages.columns:
        messages = messages.with_columns(file=pl.lit(label))
    depth = messages.filter(pl.col("e").is_in(DEPTH_EVENTS)).with_row_index("row")
    if depth.is_empty():
        return pl.DataFrame(schema=schema), stats
    # Every level of every message, once (the lists are most of the bytes): the sync logic
    # below works on ids only, and the applied messages take their levels back by `row`.
    levels = _levels(depth)
    # Decoded per event type: back in the order received (file by file, line by line).
    m = depth.drop("bids", "asks").sort(pl.col("row").min().over("file"), "line_no").with_row_index("pos")
    del depth
    m = m.with_columns(ts_init=pl.coalesce("recv_ts", _ms("E")), ts_event=_ms("E"))
    is_snap = pl.col("e") == SNAPSHOT_EVENT
    m = m.with_columns(seg=is_snap.cum_sum().cast(pl.Int64))
    _check_ids(m)
    snaps = m.filter(is_snap).select(
        "seg", L="update_id", snap_init="ts_init", snap_event=pl.coalesce("ts_event", "ts_init"), snap_pos="pos"
    )
    # Without `pu` (early 2020 recordings; the spot stream) the chain is U == previous u + 1.
    ups = m.filter(~is_snap).select("pos", "row", "seg", "file", "line_no", "ts_init", "ts_event", U="first_id",
                                    u="update_id", pu=pl.coalesce("prev_id", pl.col("first_id") - 1),
                                    has_pu=pl.col("prev_id").is_not_null())  # fmt: skip
    if snaps.is_empty():
        if ups.is_empty():
            return pl.DataFrame(schema=schema), stats
        raise SourceError(f"{label}: {NO_SNAPSHOT}")

    # Each snapshot starts a segment: the updates received since the previous snapshot that
    # are not older than it (buffered, applied when it arrives: Binance's procedure), then
    # those received after it until the next snapshot.
    keys = snaps.select("seg", "L", "snap_init")
    normal = ups.join(keys, on="seg", how="left").with_columns(buffered=pl.lit(False))
    buffered = (
        ups.with_columns(seg=pl.col("seg") + 1)
        .join(keys, on="seg", how="inner")
        .filter(pl.col("u") >= pl.col("L"))
        .with_columns(buffered=pl.lit(True), ts_init=pl.col("snap_init"))
    )
    fresh = pl.concat([buffered, normal.filter((pl.col("seg") >= 1) & (pl.col("u") >= pl.col("L")))]).sort(
        "seg", pl.col("buffered").not_(), "pos"
    )
    # An update whose `u` is not above one before it in the segment is one already applied
    # (a recorder's reconnect replays some): dropped, not a gap.
    prev_max = pl.col("u").cum_max().shift(1).over("seg")
    fresh = fresh.with_columns(repeated=prev_max.is_not_null() & (pl.col("u") <= prev_max))
    live = fresh.filter(~pl.col("repeated")).with_columns(
        k=pl.int_range(pl.len()).over("seg"), prev_u=pl.col("u").shift(1).over("seg")
    )
    first = pl.col("k") == 0
    # The first applied update holds the snapshot's id (Binance: U <= lastUpdateId <= u; u >= it
    # already) or directly follows the update that ended at it (pu == lastUpdateId: the same
    # chain, its predecessor is in the snapshot); each later one continues the chain.
    starts = (pl.col("U") <= pl.col("L")) | (pl.col("pu") == pl.col("L"))
    ok = pl.when(first).then(starts).otherwise(pl.col("pu") == pl.col("prev_u"))
    live = live.with_columns(gap=~ok.fill_null(False))
    live = live.with_columns(broken=pl.col("gap").cast(pl.Int32).cum_sum().over("seg") > 0)
    applied = live.filter(~pl.col("broken"))

    # Per received update: applied at all (either copy), else why not.
    def positions(frame: pl.DataFrame) -> pl.Series:
        return frame.get_column("pos").unique().implode()

    per_update = normal.select("pos", "seg", "ts_init").with_columns(
        applied=pl.col("pos").is_in(positions(applied)),
        after_gap=pl.col("pos").is_in(positions(live.filter(pl.col("broken")))),
        repeated=pl.col("pos").is_in(positions(fresh.filter(pl.col("repeated")))),
    )
    why = (
        pl.when(pl.col("after_gap")).then(pl.lit(AFTER_GAP))
        .when(pl.col("repeated")).then(pl.lit(REPEATED))
        .when(pl.col("seg") == 0).then(pl.lit(BEFORE_FIRST_SNAPSHOT))
        .otherwise(pl.lit(OLDER_THAN_SNAPSHOT))
    )  # fmt: skip
    per_update = per_update.with_columns(why=pl.when(~pl.col("applied")).then(why))
    lost = per_update.filter(pl.col("why") == AFTER_GAP).select("pos")

    # The first gap of each segment, with where it was.
    next_snap = snaps.select(pl.col("seg") - 1, resynced_at="snap_event")
    gaps = (
        live.filter(pl.col("gap"))
        .group_by("seg", maintain_order=True)
        .first()
        .join(
            live.filter(pl.col("broken"))
            .join(lost, on="pos")
            .group_by("seg")
            .agg(not_applied=pl.col("pos").n_unique()),
            on="seg",
            how="left",
        )
        .with_columns(pl.col("not_applied").fill_null(0))
        .join(next_snap, on="seg", how="left")
        .sort("pos")
    )

    # The rows: each snapshot's CLEAR + ADDs, then its segment's applied updates. The messages
    # are put in book order first (few rows), then take their levels by an order-keeping join
    # (no sort of the level rows); a CLEAR is a message row whose key matches no level.
    snap_rows = m.filter(is_snap).join(snaps.select("seg", "snap_init", "snap_event"), on="seg")
    head = snap_rows.select("row", "seg", sequence="update_id", ts_event="snap_event", ts_init="snap_init")
    order = pl.concat(
        [
            head.with_columns(grp=pl.lit(0), k=pl.lit(-2, pl.Int64), key=pl.lit(None, pl.UInt32)),
            head.with_columns(grp=pl.lit(0), k=pl.lit(-1, pl.Int64), key=pl.col("row")),
            applied.select(
                "row",
                "seg",
                sequence="u",
                ts_event="ts_event",
                ts_init="ts_init",
                grp=pl.lit(1),
                k="k",
                key=pl.col("row"),
            ),
        ],
        how="vertical_relaxed",
    ).sort("seg", "grp", "k")
    rows = order.select("key", "grp", "sequence", "ts_event", "ts_init").join(
        levels, left_on="key", right_on="row", how="left", maintain_order="left_right"
    )
    del levels
    snapshot, is_clear = pl.col("grp") == 0, pl.col("key").is_null()
    rows = rows.filter(is_clear | (pl.col("price").is_not_null() & (~snapshot | (pl.col("size") > 0))))
    action = (
        pl.when(is_clear).then(pl.lit(CLEAR, pl.UInt8))
        .when(snapshot).then(pl.lit(ADD, pl.UInt8))
        .when(pl.col("size") == 0).then(pl.lit(DELETE, pl.UInt8))
        .otherwise(pl.lit(UPDATE, pl.UInt8))
    )  # fmt: skip
    rows = rows.select(
        action=action, side=pl.col("side").fill_null(NO_SIDE), price=pl.col("price").fill_null(0.0),
        size=pl.col("size").fill_null(0.0), sequence="sequence", ts_event="ts_event", ts_init="ts_init",
    )  # fmt: skip
    frame = rows.with_columns(pl.col("sequence").cast(pl.UInt64), pl.col("ts_init").cum_max())
    del rows
    if window is not None:
        frame = _within(frame, *window)
        per_update = per_update.filter(pl.col("ts_init").is_between(*window, closed="left"))
        gaps = gaps.filter(pl.col("ts_init").is_between(*window, closed="left"))
        stats.snapshots = int(m.filter(is_snap & pl.col("ts_init").is_between(*window, closed="left")).height)
    else:
        stats.snapshots = snaps.height
    frame = frame.with_columns(batch_flags(frame)).select(COLUMNS)

    stats.updates = per_update.height
    stats.applied = int(per_update["applied"].sum())
    counts = dict(per_update.filter(pl.col("why").is_not_null()).group_by("why").len().iter_rows())
    stats.discarded = {
        w: int(counts.get(w, 0)) for w in (BEFORE_FIRST_SNAPSHOT, OLDER_THAN_SNAPSHOT, REPEATED, AFTER_GAP)
    }
    stats.gap_count = gaps.height
    stats.gaps = [_gap_record(g) for g in gaps.head(GAPS_SHOWN).iter_rows(named=True)]
    return frame, stats


def _gap_record(g: dict) -> dict:
    if g["k"] == 0:
        reason = (f"the first update after the snapshot does not follow it (U {g['U']} > lastUpdateId {g['L']} "
                  f"and pu {g['pu']} != {g['L']})")  # fmt: skip
        expected, got = g["L"], g["pu"]
    else:
        reason = (f"pu {g['pu']} != previous u {g['prev_u']}" if g["has_pu"]
                  else f"U {g['U']} != previous u {g['prev_u']} + 1 (no pu)")  # fmt: skip
        expected, got = g["prev_u"], g["pu"]
    return {
        "at": _iso(g["ts_event"]),
        "received": _iso(g["ts_init"]),
        "file": g["file"],
        "line": g["line_no"],
        "previous_u": expected,
        "pu": got,
        "u": g["u"],
        "reason": reason,
        "not_applied": int(g["not_applied"]),
        "resynced_at": _iso(g["resynced_at"]),
    }


LEVEL_CHUNK = 100_000  # messages exploded at a time: the level texts of a day at once would be GBs


def _levels(depth: pl.DataFrame) -> pl.DataFrame:
    """(row, side, price, size) for each [price, qty] of each message, bids then asks as sent,
    in `row` order; a clear error (file and line) for a level that is not two numbers."""
    empty = pl.lit([], pl.List(pl.List(pl.String)))
    bids, asks = pl.col("bids").fill_null(empty), pl.col("asks").fill_null(empty)
    chunks = []
    for at in range(0, depth.height, LEVEL_CHUNK):
        both = (
            depth.slice(at, LEVEL_CHUNK)
            .select(
                "row",
                n_bids=bids.list.len(),
                level=pl.concat_list(bids, asks),
                j=pl.int_ranges(0, bids.list.len() + asks.list.len()),
            )
            .explode("level", "j")
            .filter(pl.col("level").is_not_null())
            .select(
                "row",
                "level",
                side=pl.when(pl.col("j") < pl.col("n_bids"))
                .then(pl.lit(BID, pl.UInt8))
                .otherwise(pl.lit(ASK, pl.UInt8)),
                price=pl.col("level").list.get(0, null_on_oob=True).cast(pl.Float64, strict=False),
                size=pl.col("level").list.get(1, null_on_oob=True).cast(pl.Float64, strict=False),
            )
        )
        bad = both.filter(pl.col("price").is_null() | pl.col("size").is_null() | (pl.col("level").list.len() != 2))
        if bad.height:
            first = depth.filter(pl.col("row").is_in(bad["row"].implode())).sort("line_no").row(0, named=True)
            level = bad.filter(pl.col("row") == first["row"])["level"][0]
            raise SourceError(f"{first['file']} line {first['line_no']}: a depth level that is not [price, quantity] "
                              f"numbers: {level.to_list()!r}")  # fmt: skip
        chunks.append(both.select("row", "side", "price", "size"))
    return pl.concat(chunks)


def _check_ids(m: pl.DataFrame) -> None:
    """A clear error (file and line) for a depth message without its ids."""
    snap = pl.col("e") == SNAPSHOT_EVENT
    need = (
        pl.when(snap)
        .then(pl.col("update_id").is_null())
        .otherwise(pl.any_horizontal(pl.col(c).is_null() for c in ("first_id", "update_id", "E")))
    )
    missing = m.filter(need).head(1)
    if missing.height:
        row = missing.row(0, named=True)
        want = "lastUpdateId" if row["e"] == SNAPSHOT_EVENT else "E, U and u"
        raise SourceError(f"{row['file']} line {row['line_no']}: a {row['e']} message without {want}")


def _within(rows: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """The rows of [start, end); a day that starts mid-book starts with the book as it stood."""
    inside = pl.col("ts_init").is_between(start, end, closed="left")
    day = rows.filter(inside)
    before = rows.filter(pl.col("ts_init") < start)
    if before.is_empty() or day.is_empty() or day["action"][0] == CLEAR:
        return day  # (a day after the recording's end stays empty)
    since = before.slice(int(before.with_row_index().filter(pl.col("action") == CLEAR)["index"].max() or 0))
    book = (
        since.filter(pl.col("action") != CLEAR)
        .group_by("side", "price", maintain_order=True)
        .agg(size=pl.col("size").last())
        .filter(pl.col("size") > 0)
        .sort(pl.col("side"), pl.when(pl.col("side") == BID).then(-pl.col("price")).otherwise(pl.col("price")))
    )
    at = pl.lit(start)
    seq = before["sequence"][-1]
    head = pl.concat(
        [
            pl.DataFrame({"action": [CLEAR], "side": [NO_SIDE], "price": [0.0], "size": [0.0]}),
            book.select(action=pl.lit(ADD), side="side", price="price", size="size"),
        ],
        how="vertical_relaxed",
    ).with_columns(sequence=pl.lit(seq), ts_event=at, ts_init=at)
    return pl.concat([head.select(day.columns).cast(day.schema), day])


def _frame_schema() -> dict:
    ts = pl.Datetime("ns", "UTC")
    return {"action": pl.UInt8, "side": pl.UInt8, "price": pl.Float64, "size": pl.Float64, "flags": pl.UInt8,
            "sequence": pl.UInt64, "ts_event": ts, "ts_init": ts}  # fmt: skip


# -- Tardis replays -----------------------------------------------------------------------------


def read_replay(files: list[Path]) -> tuple[pl.DataFrame, BookStats]:
    """Tardis replay files (`depth` + `depthSnapshot` channels) -> (deltas, stats); only the
    lines that can hold a depth message (and any that looks broken) are decoded."""
    if not files:
        return pl.DataFrame(schema=_frame_schema()), BookStats()
    line = pl.col("line").str.strip_chars()
    may_hold = (
        line.str.contains(f'"{UPDATE_EVENT}"', literal=True)
        | line.str.contains('"lastUpdateId"', literal=True)
        | ~complete_message(line)
    )
    try:
        messages = pl.concat(
            [
                decode_messages(read_lines(f).filter(may_hold), DEPTH_EVENTS).with_columns(file=pl.lit(Path(f).name))
                for f in files
            ],
            how="diagonal_relaxed",
        ).collect()
    except (pl.exceptions.PolarsError, OSError) as err:
        raise replay_error(files, "order_book_deltas", err) from None
    return build_deltas(messages, ", ".join(Path(f).name for f in files))
