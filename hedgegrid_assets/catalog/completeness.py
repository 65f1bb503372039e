"""Is a date|symbol partition complete in the catalog? Read from the catalog files themselves.

Every kind has its file (and the instrument its definition), the largest gap between trades,
and whether every funding settlement of the day had a rate announced before it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue
from nautilus_trader.persistence.funcs import urisafe_identifier

from hedgegrid_assets.catalog.writer import partition_path
from hedgegrid_assets.checks import coverage
from hedgegrid_assets.frames import FUNDING_RATES, KINDS, TRADES, PartitionContext
from hedgegrid_assets.frames.fixed_point import decimal_json_floats
from hedgegrid_assets.frames.kind import TIMESTAMP

COMPLETE_CHECK = "partition_complete"


def _timestamps(path: Path, column: str) -> pl.Series:
    raw = pl.from_arrow(pq.read_table(path, columns=[column]).column(column))
    return raw.cast(pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").cast(TIMESTAMP)


def report(root: Path, part: PartitionContext, offered: set[str] | None = None) -> tuple[dict, AssetCheckResult]:
    """(materialization metadata, the WARN check) for one partition, judged by the kinds its
    source offers (`offered`, kind names; default all): a kind the source does not carry is
    not missing."""
    rows, problems = {}, []
    for kind in KINDS.values():
        if offered is not None and kind.name not in offered:
            continue
        path = partition_path(root, kind, part)
        rows[kind.name] = pq.ParquetFile(path).metadata.num_rows if path.exists() else None
        if rows[kind.name] is None:
            problems.append(f"no {kind.name} file")
    instrument_dir = root / "data" / "crypto_perpetual" / urisafe_identifier(part.instrument.instrument_id)
    has_instrument = instrument_dir.is_dir() and any(instrument_dir.glob("*.parquet"))
    if not has_instrument:
        problems.append("no instrument definition")

    meta: dict = {"rows": MetadataValue.json(rows), "instrument": has_instrument}
    if rows.get(TRADES.name):
        gap, frm, to = coverage.largest_gap(_timestamps(partition_path(root, TRADES, part), "ts_event"), part)
        meta |= {
            "largest_trade_gap_minutes": round(gap.total_seconds() / 60, 3),
            "largest_trade_gap_from": frm.isoformat(),
        }
        if gap.total_seconds() / 60 > part.checks.max_trade_gap_minutes:
            problems.append(f"{gap.total_seconds() / 60:.1f} min without trades from {frm:%H:%M:%S}")
    if rows.get(FUNDING_RATES.name):
        path = partition_path(root, FUNDING_RATES, part)
        rates = pl.DataFrame(
            {
                "ts_event": _timestamps(path, "ts_event"),
                "ts_init": _timestamps(path, "ts_init"),
                "rate": decimal_json_floats(pq.read_table(path, columns=["rate"]).column("rate")),
                "next_funding_time": _timestamps(path, "next_funding_ns"),
                "interval": pl.from_arrow(pq.read_table(path, columns=["interval"]).column("interval")),
            }
        )
        funding = coverage.funding_coverage(rates, part)
        uncovered = funding.metadata["uncovered_settlements"].value
        meta |= {"funding_settlements_covered": not uncovered, "uncovered_settlements": uncovered}
        problems += [f"settlement {t} has no rate announced before it" for t in uncovered]
    else:
        meta |= {"funding_settlements_covered": False}
    check = AssetCheckResult(
        check_name=COMPLETE_CHECK,
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description="complete" if not problems else "; ".join(problems),
        metadata=meta | {"problems": problems},
    )
    return meta | {"complete": not problems}, check
