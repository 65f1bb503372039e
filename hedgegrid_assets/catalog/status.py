"""`hedgegrid status`: what the catalog holds, per date x symbol x kind, read from its files.

Rows per kind come from each file's Parquet footer (nothing is decoded); a day missing
between a symbol's first and last day is a gap; with a Dagster instance, the partitions whose
latest check of a kind failed are listed with the check's name.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps
from nautilus_trader.persistence.funcs import class_to_filename

from hedgegrid_assets.frames import KINDS
from hedgegrid_assets.instruments import symbol_of

NS_PER_DAY = 86_400 * 10**9


@dataclass
class Status:
    rows: dict[tuple[dt.date, str], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    kinds: list[str] = field(default_factory=list)  # kinds with at least one file
    gaps: dict[str, list[dt.date]] = field(default_factory=dict)  # symbol -> days missing in its range
    failed: list[str] = field(default_factory=list)  # "date|symbol: check on asset: description"


def read(root: Path) -> Status:
    status = Status()
    for kind in KINDS.values():
        folders = f"*-{kind.bar_spec}" if kind.bar_spec else "*"
        for path in (Path(root) / "data" / class_to_filename(kind.nautilus_cls)).glob(f"{folders}/*.parquet"):
            interval = _parse_filename_timestamps(path.name)
            if interval is None:
                continue
            ident = path.parent.name.removesuffix(f"-{kind.bar_spec}") if kind.bar_spec else path.parent.name
            day = dt.datetime.fromtimestamp((interval[0] - (1 if kind.stamped_at_close else 0)) // 10**9, dt.UTC).date()
            status.rows[(day, symbol_of(ident))][kind.name] = pq.ParquetFile(path).metadata.num_rows
            if kind.name not in status.kinds:
                status.kinds.append(kind.name)
    status.kinds.sort(key=list(KINDS).index)
    by_symbol: dict[str, set[dt.date]] = defaultdict(set)
    for day, symbol in status.rows:
        by_symbol[symbol].add(day)
    for symbol, days in by_symbol.items():
        span = (max(days) - min(days)).days + 1
        missing = [
            min(days) + dt.timedelta(days=i) for i in range(span) if min(days) + dt.timedelta(days=i) not in days
        ]
        if missing:
            status.gaps[symbol] = missing
    return status


@dataclass(frozen=True)
class FailedCheck:
    partition: str  # "date|symbol"
    check: str
    asset: str
    severity: str  # "ERROR" or "WARN"
    description: str

    def line(self) -> str:
        return f"{self.partition}: {self.check} on {self.asset} ({self.severity}): {self.description}"


def failed_check_results(instance, check_keys) -> list[FailedCheck]:
    """The latest evaluation of each check per partition, where it failed."""
    out = []
    for key in check_keys:
        latest: dict[str, object] = {}
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=1000):
            evaluation = record.event.asset_check_evaluation if record.event else None
            if evaluation is not None and evaluation.partition and evaluation.partition not in latest:
                latest[evaluation.partition] = evaluation  # history is newest first
        for partition, ev in sorted(latest.items()):
            if not ev.passed:
                severity = str(getattr(ev.severity, "value", ev.severity))
                out.append(
                    FailedCheck(partition, key.name, key.asset_key.to_user_string(), severity, ev.description or "")
                )
    return out


def failed_checks(instance, check_keys) -> list[str]:
    return [f.line() for f in failed_check_results(instance, check_keys)]
