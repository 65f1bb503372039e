"""Quarantine: rows that are bad one by one leave the frame for a side file, counted.

A handful of NaN prices, stray timestamps from the neighbouring day or replayed duplicates
should not cost the whole partition. Those rows go to
`<staging>/quarantine/<kind>/<date>/<SYMBOL>.parquet` with a `reason` column, and the counts
appear in the schema check's metadata. The raw files are never touched. Systematic defects
(off-grid prices, bad dtypes, receive latency) stay in the frame and fail the blocking check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hedgegrid_assets.frames import DataKind, PartitionContext
from hedgegrid_assets.frames.kind import key_expr, surely_distinct
from hedgegrid_assets.names import inside


@dataclass(frozen=True)
class Quarantine:
    rows: pl.DataFrame  # the kind's columns plus `reason`
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.rows.height


def _reason(kind: DataKind, part: PartitionContext) -> pl.Expr:
    """First defect of each row on its own, or null for a good row."""
    expr = pl.lit(None, dtype=pl.String)
    for cond, text in reversed(_rules(kind, part)):
        expr = pl.when(cond).then(pl.lit(text)).otherwise(expr)
    return expr


def _rules(kind: DataKind, part: PartitionContext) -> list[tuple[pl.Expr, str]]:
    rules: list[tuple[pl.Expr, str]] = []
    for col in kind.positive:
        c = pl.col(col)
        rules.append((c.is_null() | c.is_nan() | c.is_infinite() | (c <= 0), f"{col} not a positive number"))
    for col, most in kind.maxima(part.instrument).items():
        rules.append((pl.col(col) > most, f"{col} beyond what the catalog holds ({most:.6g})"))
    for col, most in kind.sane_maxima(part.instrument).items():
        where = f"instruments.{part.instrument.symbol}.{'max_quantity' if col.endswith('size') else 'max_price'}"
        rules.append((pl.col(col) > most, f"{col} beyond the instrument's bound ({most:.6g}, {where})"))
    rules += kind.row_rules(part)
    for col in kind.finite:
        c = pl.col(col)
        rules.append((c.is_null() | c.is_nan() | c.is_infinite(), f"{col} not a number"))
    for col in ("ts_event", "ts_init"):
        c = pl.col(col)
        rules.append((c.is_null() | ~kind.in_window(col, part), f"{col} outside {part.day}"))
    return rules


def split(kind: DataKind, frame: pl.DataFrame, part: PartitionContext) -> tuple[pl.DataFrame, Quarantine]:
    """(good rows, quarantined rows with their reason)."""
    distinct = not kind.unique_key or surely_distinct(frame, kind.unique_key)
    if distinct and not frame.select(pl.any_horizontal(c for c, _ in _rules(kind, part)).any()).item():
        # The usual case: one boolean pass, no reason column (16 bytes a row) for a big day.
        return frame, Quarantine(frame.head(0).with_columns(reason=pl.lit(None, pl.String)))
    marked = frame.with_columns(_reason(kind, part).alias("reason"))
    if not distinct:
        # Among the rows good on their own, the first of a key is kept: a bad row (a price of
        # -5) does not make a later good row with its id a duplicate.
        good_alone = pl.col("reason").is_null()
        repeat = good_alone & key_expr(kind.unique_key).is_first_distinct().over(good_alone).not_()
        duplicate = pl.when(repeat).then(pl.lit(f"duplicate {'/'.join(kind.unique_key)}"))
        marked = marked.with_columns(reason=pl.coalesce("reason", duplicate))
    bad = marked.filter(pl.col("reason").is_not_null())
    if bad.is_empty():  # the usual case: no filtered copy of a big day
        return frame, Quarantine(bad)
    good = marked.filter(pl.col("reason").is_null()).drop("reason")
    counts = dict(bad.group_by("reason").len().sort("reason").iter_rows())
    return good, Quarantine(bad, counts)


def quarantine_path(staging_dir: Path, kind: DataKind, part: PartitionContext) -> Path:
    path = Path(staging_dir) / "quarantine" / kind.name / part.day.isoformat() / f"{part.instrument.symbol}.parquet"
    return inside(staging_dir, path)


def save(staging_dir: Path, kind: DataKind, part: PartitionContext, q: Quarantine) -> Path | None:
    """Write the side file (or remove a stale one when nothing was quarantined)."""
    path = quarantine_path(staging_dir, kind, part)
    if q.total == 0:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique: concurrent builds
    try:
        q.rows.write_parquet(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
