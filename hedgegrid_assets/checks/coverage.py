"""Checks beyond one frame's schema: gaps, funding coverage, mark price vs trades and index."""

from __future__ import annotations

import datetime as dt

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from hedgegrid_assets.checks.validation import SAMPLE_ROWS, markdown_table
from hedgegrid_assets.frames import PartitionContext

TRADE_GAP_CHECK = "trades_gap"
FUNDING_COVERAGE_CHECK = "funding_rates_settlements_covered"
MARK_BAND_CHECK = "mark_prices_near_trades"
INDEX_BAND_CHECK = "mark_prices_near_index"
BAR_MINUTES_CHECK = "bars_every_minute"
MINUTES_PER_DAY = 1440


def largest_gap(ts: pl.Series, part: PartitionContext) -> tuple[dt.timedelta, dt.datetime, dt.datetime]:
    """Longest stretch of the day without an event (day edges included): (length, from, to)."""
    edges = pl.concat([pl.Series([part.start], dtype=ts.dtype), ts.sort(), pl.Series([part.end], dtype=ts.dtype)])
    gaps = pl.DataFrame({"to": edges}).with_columns(frm=pl.col("to").shift(1)).drop_nulls()
    gaps = gaps.with_columns(gap=pl.col("to") - pl.col("frm"))
    row = gaps.row(gaps.get_column("gap").arg_max(), named=True)
    return row["gap"], row["frm"], row["to"]


def trade_gap(trades: pl.DataFrame, part: PartitionContext) -> AssetCheckResult:
    limit = dt.timedelta(minutes=part.checks.max_trade_gap_minutes)
    gap, frm, to = largest_gap(trades.get_column("ts_event"), part)
    return AssetCheckResult(
        check_name=TRADE_GAP_CHECK,
        passed=gap <= limit,
        severity=AssetCheckSeverity.WARN,
        description=f"largest gap without trades {gap.total_seconds() / 60:.1f} min (limit {limit.total_seconds() / 60:g} min)",
        metadata={
            "largest_gap_minutes": round(gap.total_seconds() / 60, 3),
            "gap_from": frm.isoformat(),
            "gap_to": to.isoformat(),
            "limit_minutes": part.checks.max_trade_gap_minutes,
        },
    )


def settlements(part: PartitionContext, interval_minutes: int | None = None) -> list[dt.datetime]:
    """Funding settlements whose rate is published during this day: (day start, day end].

    The one at 00:00 of the day itself was announced the day before, so it is left to that day.
    The interval is the data's own where it says one, else the instrument's.
    """
    minutes = interval_minutes or part.instrument.spec.funding_interval_hours * 60
    return [part.start + dt.timedelta(minutes=m) for m in range(minutes, 24 * 60 + 1, minutes)]


def funding_coverage(rates: pl.DataFrame, part: PartitionContext) -> AssetCheckResult:
    interval = rates.get_column("interval").max() if "interval" in rates.columns else None
    due = pl.DataFrame(
        {"settlement": settlements(part, interval)}, schema={"settlement": rates.schema["next_funding_time"]}
    )
    known = (
        rates.filter(pl.col("next_funding_time") > pl.col("ts_event"))
        .group_by("next_funding_time")
        .agg(first_known=pl.col("ts_event").min(), last_rate=pl.col("rate").last())
    )
    table = due.join(known, left_on="settlement", right_on="next_funding_time", how="left")
    missing = table.filter(pl.col("first_known").is_null())
    return AssetCheckResult(
        check_name=FUNDING_COVERAGE_CHECK,
        passed=missing.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=f"{table.height - missing.height} of {table.height} settlements have a rate known before them",
        metadata={
            "settlements": table.height,
            "uncovered": missing.height,
            "uncovered_settlements": [t.isoformat() for t in missing.get_column("settlement").to_list()],
            "coverage": MetadataValue.md(markdown_table(table)),
        },
    )


def mark_index_band(marks: pl.DataFrame, part: PartitionContext) -> AssetCheckResult:
    """Each mark within `index_price_band` of the index price given beside it (WARN: the
    basis widens in fast markets; a mark far from its index is worth a look, not a stop)."""
    band = part.checks.index_price_band
    paired = marks.filter(pl.col("index_price").is_not_null())
    paired = paired.with_columns(deviation=(pl.col("value") / pl.col("index_price") - 1).abs())
    bad = paired.filter(~(pl.col("deviation") <= band))
    return AssetCheckResult(
        check_name=INDEX_BAND_CHECK,
        passed=bad.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{bad.height} of {paired.height} mark prices further than {band:.1%} from the index"
            if paired.height
            else "the source gives no index price"
        ),
        metadata={
            "compared": paired.height,
            "failure_count": bad.height,
            "max_deviation": float(paired.get_column("deviation").max() or 0.0),
            "failing_rows_sample": MetadataValue.md(markdown_table(bad.head(SAMPLE_ROWS))),
        },
    )


def mark_price_band(marks: pl.DataFrame, trades: pl.DataFrame, part: PartitionContext) -> AssetCheckResult:
    """Each mark price within `mark_price_band` of the nearest traded price."""
    band = part.checks.mark_price_band
    if trades.is_empty() or marks.is_empty():
        return AssetCheckResult(
            check_name=MARK_BAND_CHECK,
            passed=True,
            severity=AssetCheckSeverity.ERROR,
            description="nothing to compare (no trades or no mark prices)",
            metadata={"compared": 0},
        )
    joined = marks.sort("ts_event").join_asof(
        trades.select("ts_event", trade_price="price").sort("ts_event"), on="ts_event", strategy="nearest"
    )
    joined = joined.with_columns(deviation=(pl.col("value") / pl.col("trade_price") - 1).abs())
    bad = joined.filter(~(pl.col("deviation") <= band))  # NaN counts as bad
    return AssetCheckResult(
        check_name=MARK_BAND_CHECK,
        passed=bad.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=f"{bad.height} mark prices further than {band:.1%} from the nearest trade",
        metadata={
            "compared": joined.height,
            "failure_count": bad.height,
            "max_deviation": float(joined.get_column("deviation").max() or 0.0),
            "failing_rows_sample": MetadataValue.md(markdown_table(bad.head(SAMPLE_ROWS))),
        },
    )


def bar_minutes(bars: pl.DataFrame, part: PartitionContext, check_name: str = BAR_MINUTES_CHECK) -> AssetCheckResult:
    """Every minute of the day has a bar (a bar's ts_event is the minute it covers). Minutes
    without trades (volume 0, the last close repeated) are counted apart."""
    minutes = pl.datetime_range(
        part.start, part.end, interval="1m", closed="left", time_unit="ns", time_zone="UTC", eager=True
    )
    missing = minutes.filter(~minutes.is_in(bars.get_column("ts_event").implode()))
    quiet = int((bars.get_column("volume") == 0).sum()) if bars.height else 0
    shown = [f"{t:%H:%M}" for t in missing.head(10).to_list()]
    return AssetCheckResult(
        check_name=check_name,
        passed=missing.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{MINUTES_PER_DAY - missing.len()} of {MINUTES_PER_DAY} minutes have a bar"
            + (f"; none for {', '.join(shown)}{' ...' if missing.len() > 10 else ''}" if missing.len() else "")
            + (f"; {quiet} minute(s) without trades" if quiet else "")
        ),
        metadata={
            "bars": bars.height,
            "missing_minutes": missing.len(),
            "first_missing": shown,
            "minutes_without_trades": quiet,
        },
    )
