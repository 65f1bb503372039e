"""Run a kind's pandera schema on a frame and turn the outcome into asset-check results."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from hedgegrid_assets.frames import DataKind, PartitionContext

SAMPLE_ROWS = 10


def schema_check_name(kind: DataKind) -> str:
    return f"{kind.name}_schema"


def failing_rows(frame: pl.DataFrame, failure_cases: pl.DataFrame) -> pl.DataFrame:
    """Rows of `frame` that failed any check, with the checks they failed."""
    indexed = failure_cases.filter(pl.col("index").is_not_null())
    if indexed.is_empty():
        return pl.DataFrame()
    by_row = indexed.group_by("index").agg(
        failed=pl.concat_str(pl.col("column").fill_null(""), pl.lit(":"), pl.col("check"))
        .unique()
        .sort()
        .str.join(", ")
    )
    return (
        frame.with_row_index("row")
        .join(by_row.with_columns(pl.col("index").cast(pl.UInt32)), left_on="row", right_on="index")
        .sort("row")
    )


def run_schema(
    kind: DataKind,
    frame: pl.DataFrame,
    part: PartitionContext,
    extra_metadata: dict | None = None,
    quarantined: dict[str, int] | None = None,
) -> AssetCheckResult:
    """The blocking ERROR check: the canonical schema plus the partition's own checks, and no
    more than `max_quarantined_share` of the rows set aside (`quarantined`: count by reason)."""
    extra = extra_metadata or {}
    n_quarantined = sum((quarantined or {}).values())
    total = frame.height + n_quarantined
    if n_quarantined and n_quarantined > part.checks.max_quarantined_share * total:
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(quarantined.items(), key=lambda x: -x[1]))
        return AssetCheckResult(
            check_name=schema_check_name(kind),
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{n_quarantined:,} of {total:,} rows quarantined ({reasons}): more than "
                f"{part.checks.max_quarantined_share:.0%}, so the input is wrong as a whole (another day's or "
                "symbol's file?), not a few bad rows"
            ),
            metadata={"partition": f"{part.day}|{part.instrument.symbol}", "rows": frame.height, **extra},
        )
    try:
        kind.schema(part).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        rows = failing_rows(frame, cases)
        summary = (
            cases.group_by("column", "check", maintain_order=True)
            .agg(failures=pl.len(), example=pl.col("failure_case").first())
            .sort("failures", descending=True)
        )
        return AssetCheckResult(
            check_name=schema_check_name(kind),
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{rows.height or cases.height} of {frame.height} rows fail validation: "
            f"{_worst(summary, frame.columns)}",
            metadata={
                "partition": f"{part.day}|{part.instrument.symbol}",
                "rows": frame.height,
                "failing_rows": rows.height,
                "failure_count": cases.height,
                "failures_by_check": MetadataValue.md(markdown_table(summary)),
                "failing_rows_sample": MetadataValue.md(markdown_table(rows.head(SAMPLE_ROWS))),
                **extra,
            },
        )
    return AssetCheckResult(
        check_name=schema_check_name(kind),
        passed=True,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": frame.height, "failure_count": 0, **extra},
    )


def _worst(summary: pl.DataFrame, columns: list[str], n: int = 3) -> str:
    """The most frequent failures in a line: '[<column>] <check> (<count>, e.g. <value>)'."""
    parts = []
    for column, check, failures, example in summary.head(n).iter_rows():
        where = f"{column} " if column in columns else ""  # frame-wide checks name the model instead
        text = "" if example is None else str(example)
        text = text if len(text) <= 60 else text[:57] + "..."
        parts.append(f"{where}{check} ({failures:,}{f', e.g. {text}' if text else ''})")
    more = f"; and {summary.height - n} more" if summary.height > n else ""
    return "; ".join(parts) + more


def markdown_table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "(none)"
    cols = frame.columns
    text = frame.select(pl.all().cast(pl.String).fill_null("null"))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in text.rows()]
    return "\n".join(lines)
