"""`hedgegrid catalog migrate SRC DST`: a NautilusTrader 1.x catalog (ours or anyone's) into a
new NautilusTrader 2.0 catalog, through 2.0's own migration, verified before it exists.

2.0 runs in its own environment (.venv-nautilus2, built by `make install` from
envs/nautilus2/uv.lock; `HEDGEGRID_NAUTILUS2_PYTHON` names another interpreter): there
catalog/nautilus2_worker.py migrates SRC into a temporary folder beside DST and reads every kind
back. Here 1.231 reads SRC, and per 1.x data folder the record counts must be equal and the
records at both ends of the time range (nautilus2_worker.sample) identical. Only then does the
folder get our provenance file (`catalog_format` nautilus-2) and its name DST, in one rename:
DST never holds a half-migrated or unverified catalog. SRC is only read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hedgegrid_assets.catalog import nautilus2_worker
from hedgegrid_assets.catalog.provenance import NAUTILUS_2, PROVENANCE_FILE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAUTILUS2_ENV = "HEDGEGRID_NAUTILUS2_PYTHON"


class MigrateError(Exception):
    pass


@dataclass
class Migration:
    dst: Path
    files: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # 1.x data folder -> records (both sides)
    sampled: dict[str, int] = field(default_factory=dict)  # folder -> records compared value for value
    notes: list[str] = field(default_factory=list)


def nautilus2_python() -> Path:
    python = Path(os.environ.get(NAUTILUS2_ENV) or PROJECT_ROOT / ".venv-nautilus2" / "bin" / "python")
    if not python.exists():
        raise MigrateError(
            f"no NautilusTrader 2.0 environment at {python}: run `make install` (it builds .venv-nautilus2 from "
            f"envs/nautilus2/uv.lock), or set {NAUTILUS2_ENV} to a Python with nautilus_trader 2.0"
        )
    return python


def _check_paths(src: Path, dst: Path) -> None:
    if not (src / "data").is_dir():
        raise MigrateError(f"{src}: not a NautilusTrader catalog (no data/ folder in it)")
    provenance = src / PROVENANCE_FILE
    try:
        said = json.loads(provenance.read_text()) if provenance.exists() else {}
    except ValueError:
        said = {}
    if isinstance(said, dict) and said.get("catalog_format") == NAUTILUS_2:
        raise MigrateError(f"{src}: already a NautilusTrader 2.0 catalog ({PROVENANCE_FILE} says {NAUTILUS_2})")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise MigrateError(f"{dst}: not empty; migrate into a new or empty folder (nothing was written)")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise MigrateError(f"{dst}: inside the catalog being migrated; choose a folder outside {src}")


def _read_1x(src: Path, folder: str) -> list:
    from nautilus_trader.model.data import (
        Bar,
        FundingRateUpdate,
        IndexPriceUpdate,
        MarkPriceUpdate,
        OrderBookDelta,
        OrderBookDepth10,
        QuoteTick,
        TradeTick,
    )
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(src))
    if folder == "crypto_perpetual":
        return list(catalog.instruments())
    cls = {
        "trade_tick": TradeTick,
        "quote_tick": QuoteTick,
        "bar": Bar,
        "mark_price_update": MarkPriceUpdate,
        "index_price_update": IndexPriceUpdate,
        "funding_rate_update": FundingRateUpdate,
        "order_book_delta": OrderBookDelta,
        "order_book_deltas": OrderBookDelta,
        "order_book_depth10": OrderBookDepth10,
    }[folder]
    # One identifier at a time: 1.231 reading custom data of several instruments in one query
    # labels every row with the first file's instrument (the id lives in each file's metadata).
    identifiers = sorted(p.name for p in (src / "data" / folder).iterdir() if p.is_dir())
    return [record for identifier in identifiers for record in catalog.query(cls, identifiers=[identifier])]


def _provenance(src: Path, migrated: int) -> str:
    from importlib.metadata import version

    return (
        json.dumps(
            {
                "catalog_format": NAUTILUS_2,
                "migrated_from": str(src),
                "migrated_rows": migrated,
                "written_by": {"hedgegrid": version("hedgegrid-assets"), "nautilus_trader": "2.0 (its own migration)"},
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def migrate(src: Path | str, dst: Path | str, say: Callable[[str], None] = lambda _: None) -> Migration:
    src, dst = Path(src).resolve(), Path(dst).resolve()
    _check_paths(src, dst)
    python = nautilus2_python()
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = dst.parent / f".{dst.name}.migrating-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "catalog").mkdir(parents=True)
    try:
        say(f"migrating {src} with NautilusTrader 2.0 ({python})")
        out = work / "read-back.json"
        done = subprocess.run(
            [str(python), nautilus2_worker.__file__, str(src), str(work / "catalog"), str(out)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise MigrateError(f"NautilusTrader 2.0 could not migrate {src}: {last}")
        result = json.loads(out.read_text())
        report = _verify(src, result, say)
        report.dst = dst
        report.files = sum(1 for _ in (work / "catalog").rglob("*.parquet"))
        (work / "catalog" / PROVENANCE_FILE).write_text(_provenance(src, result["migrated"]))
        if dst.exists():
            dst.rmdir()  # empty (checked above): the verified catalog takes its place
        os.replace(work / "catalog", dst)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _verify(src: Path, result: dict, say: Callable[[str], None]) -> Migration:
    report, problems = Migration(dst=Path()), []
    if result["unknown"]:
        report.notes.append(f"not checked (no reader for them here): {', '.join(result['unknown'])}")
    for folder, theirs in result["kinds"].items():
        ours = nautilus2_worker.describe(_read_1x(src, folder))
        if ours["count"] != theirs["count"]:
            problems.append(f"{folder}: 1.231 reads {ours['count']:,} records, 2.0 {theirs['count']:,}")
            continue
        report.counts[folder] = ours["count"]
        if ours["sample"] is None or theirs["sample"] is None:
            report.notes.append(f"{folder}: counts only ({ours['why'] or theirs['why']})")
        elif ours["sample"] != theirs["sample"]:
            differ = next(a for a, b in zip(ours["sample"], theirs["sample"], strict=False) if a != b)
            problems.append(f"{folder}: values differ, e.g. 1.231 {differ[:200]}")
        else:
            report.sampled[folder] = len(ours["sample"])
        say(f"  {folder}: {ours['count']:,} records" + (" (values equal)" if folder in report.sampled else ""))
    if problems:
        raise MigrateError(
            "the migrated catalog differs from its source, so it was not kept:\n  " + "\n  ".join(problems)
        )
    return report
