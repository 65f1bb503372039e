"""The WARN check on how a source built the order book from a sequenced stream: sequence gaps
(Binance `pu` != the previous `u`) with where they were, and the updates left out.

The gaps are not in the deltas frame (a gap's updates are left out of it, the book re-synced
from the next snapshot): the reader reports them in its notes (binance_depth.BookStats), which
this check shows. A source that reports none (a Tardis CSV, the sample) passes with "not
sequenced"."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from hedgegrid_assets.checks.validation import markdown_table
from hedgegrid_assets.frames import PartitionContext

SEQUENCE_CHECK = "order_book_deltas_sequence"
DESCRIPTION = "No sequence gap in the book's update stream (gaps counted, with where they were)"


def sequence_gaps(frame, part: PartitionContext, notes: dict | None = None) -> AssetCheckResult:
    import polars as pl

    from hedgegrid_assets.formats.binance.depth import describe_gap

    notes = notes or {}
    if "book_sequence_gaps" not in notes:
        return AssetCheckResult(
            check_name=SEQUENCE_CHECK, passed=True, severity=AssetCheckSeverity.WARN,
            description="the source gives no update sequence to check", metadata={"sequence_gaps": 0},
        )  # fmt: skip
    gaps = int(notes["book_sequence_gaps"])
    places = notes.get("book_gaps") or []
    discarded = {k.removeprefix("book_updates_discarded_"): v for k, v in notes.items()
                 if k.startswith("book_updates_discarded_")}  # fmt: skip
    built = notes.get("book") or {}
    if gaps:
        description = (
            f"{gaps:,} sequence gap(s), the first {describe_gap(places[0])}" if places else f"{gaps:,} sequence gap(s)"
        )
    else:
        description = f"no sequence gap in {built.get('updates', 0):,} updates"
    others = {k: v for k, v in discarded.items() if v and not (gaps and k == "after_gap")}  # said with the gap
    if others:
        description += "; not applied: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in others.items())
    table = pl.DataFrame(places, infer_schema_length=None) if places else pl.DataFrame()
    return AssetCheckResult(
        check_name=SEQUENCE_CHECK,
        passed=gaps == 0,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "sequence_gaps": gaps,
            "updates": int(built.get("updates", 0)),
            "updates_applied": int(built.get("updates_applied", 0)),
            "snapshots": int(built.get("snapshots", 0)),
            "updates_not_applied": MetadataValue.json(discarded),
            "gaps": MetadataValue.md(markdown_table(table)),
        },
    )


sequence_gaps.uses_notes = True  # assets._checked_frame passes the reader's notes
