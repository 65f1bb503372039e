"""`hedgegrid catalog migrate SRC DST`: a NautilusTrader 1.x catalog (ours or anyone's) into a
new NautilusTrader 2.0 catalog, through 2.0's own migration, verified before it exists.

2.0 runs in its own environment (.venv-nautilus2, built by `make install` from
envs/nautilus2/uv.lock; `HEDGEGRID_NAUTILUS2_PYTHON` names another interpreter): there
catalog/nautilus2_worker.py migrates SRC into a temporary folder beside DST and reads every kind
back. Per 1.x data folder the record counts (from the files' footers, on both sides) must be
equal, and the SAMPLE earliest and latest records of every identifier, read by 1.231 from SRC and
by 2.0 from the migrated copy over the same time windows, identical (a bounded slice, whatever a
file or the catalog holds). Only then does the
folder get our provenance file (`catalog_format` nautilus-2) and its name DST, in one rename:
DST never holds a half-migrated or unverified catalog. SRC is only read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hedgegrid_assets import debris
from hedgegrid_assets.catalog import nautilus2_worker
from hedgegrid_assets.catalog.provenance import NAUTILUS_2, PROVENANCE_FILE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAUTILUS2_ENV = "HEDGEGRID_NAUTILUS2_PYTHON"
SAMPLE = 1000  # records compared at each end of every identifier


class MigrateError(Exception):
    pass


# 1.x data folder -> the folder 2.0's migration writes it to.
FOLDERS_2 = {
    "trade_tick": "trades",
    "quote_tick": "quotes",
    "bar": "bars",
    "mark_price_update": "mark_prices",
    "index_price_update": "index_prices",
    "funding_rate_update": "funding_rates",
    "order_book_delta": "order_book_deltas",
    "order_book_deltas": "order_book_deltas",
    "order_book_depth10": "order_book_depths",
    "crypto_perpetual": "crypto_perpetual",
}


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


def _check_paths(src: Path, dst: Path) -> list[str]:
    """The 1.x data folders of SRC to migrate; MigrateError for anything that cannot be one."""
    from hedgegrid_assets.catalog.provenance import FORMAT, IncompatibleCatalogError, catalog_format

    if not (src / "data").is_dir():
        raise MigrateError(f"{src}: not a NautilusTrader catalog (no data/ folder in it)")
    try:
        found = catalog_format(src)
    except IncompatibleCatalogError as err:
        if NAUTILUS_2 in str(err):
            raise MigrateError(
                f"{src}: already a NautilusTrader 2.0 catalog ({PROVENANCE_FILE} says {NAUTILUS_2})"
            ) from None
        raise MigrateError(f"{src}: {err}") from None
    if found is not None and found < FORMAT:
        raise MigrateError(f"{src}: in hedgegrid's catalog format {found}; run `hedgegrid catalog upgrade {src}` first")
    present = sorted(p.name for p in (src / "data").iterdir() if p.is_dir())
    newer = sorted(set(present) & (set(FOLDERS_2.values()) - set(FOLDERS_2)))
    if newer:
        raise MigrateError(f"{src}: holds NautilusTrader 2.0 folders ({', '.join(newer)}), not a 1.x catalog")
    folders = [f for f in present if f in FOLDERS_2]
    if not folders:
        raise MigrateError(
            f"{src}/data holds no NautilusTrader 1.x data folder (found: {', '.join(present) or 'nothing'})"
        )
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise MigrateError(f"{dst}: not empty; migrate into a new or empty folder (nothing was written)")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise MigrateError(f"{dst}: inside the catalog being migrated; choose a folder outside {src}")
    return folders


def _windows(src: Path, folder: str) -> list[tuple[str, int, int]]:
    """(identifier, start_ns, end_ns): the SAMPLE earliest records of each identifier's first file
    and the SAMPLE latest of its last (every record sharing the cut-off time included), so the
    comparison reads a bounded slice whatever a file holds."""
    import numpy as np
    import pyarrow.parquet as pq
    from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps

    def times(path: Path) -> np.ndarray:
        return np.sort(pq.read_table(path, columns=["ts_init"]).column("ts_init").to_numpy())

    out = []
    for ident in sorted(p for p in (src / "data" / folder).iterdir() if p.is_dir()):
        files = sorted(ident.glob("*.parquet"))
        if not files:
            continue
        if folder == "crypto_perpetual":  # definitions, not a time series: read whole
            out.append((ident.name, 0, 0))
            continue
        first, last = times(files[0]), times(files[-1])
        out.append((ident.name, _parse_filename_timestamps(files[0].name)[0], int(first[min(SAMPLE, len(first)) - 1])))
        out.append((ident.name, int(last[max(len(last) - SAMPLE, 0)]), _parse_filename_timestamps(files[-1].name)[1]))
    return out


def _rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.rglob("*.parquet")) if folder.is_dir() else 0


def _read_1x(catalog, folder: str, identifier: str, start: int, end: int) -> list:
    """One window of SRC, read by 1.231."""
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

    if folder == "crypto_perpetual":
        return list(catalog.instruments(instrument_ids=[identifier]))
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
    return list(catalog.query(cls, identifiers=[identifier], start=start, end=end))


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
    folders = _check_paths(src, dst)
    python = nautilus2_python()
    made = [p for p in [dst.parent, *dst.parent.parents] if not p.exists()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    debris.sweep(dst.parent, f".{dst.name}.migrating")  # work folders of migrations whose process died
    work = dst.parent / debris.temp_name(f".{dst.name}.migrating")
    (work / "catalog").mkdir(parents=True)
    kept = False
    try:
        say(f"migrating {src} with NautilusTrader 2.0 ({python})")
        windows = {folder: _windows(src, folder) for folder in folders}
        (work / "windows.json").write_text(json.dumps(windows))
        out = work / "read-back.json"
        done = subprocess.run(
            # -P: the worker's own folder is not put first on sys.path (its neighbours are 1.x code).
            [str(python), "-P", nautilus2_worker.__file__, str(src), str(work / "catalog"), str(work / "windows.json"),
             str(out)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise MigrateError(f"NautilusTrader 2.0 could not migrate {src}: {last}")
        result = json.loads(out.read_text())
        if not result["migrated"]:
            raise MigrateError(f"NautilusTrader 2.0 migrated no file of {src}; nothing was written")
        report = _verify(src, work / "catalog", folders, windows, result["windows"], say)
        report.dst = dst
        report.files = sum(1 for _ in (work / "catalog").rglob("*.parquet"))
        (work / "catalog" / PROVENANCE_FILE).write_text(_provenance(src, result["migrated"]))
        if dst.exists():
            dst.rmdir()  # empty (checked above): the verified catalog takes its place
        os.replace(work / "catalog", dst)
        kept = True
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not kept:
            for folder in made:  # the parents this call made, deepest first, while still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _verify(
    src: Path, new: Path, folders: list[str], windows: dict, theirs: dict, say: Callable[[str], None]
) -> Migration:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(src))
    report, problems = Migration(dst=Path()), []
    for folder in folders:
        ours_count, their_count = _rows(src / "data" / folder), _rows(new / "data" / FOLDERS_2[folder])
        if ours_count != their_count:
            problems.append(f"{folder}: {ours_count:,} records in SRC, {their_count:,} in the 2.0 catalog")
            continue
        report.counts[folder] = ours_count
        compared = 0
        for window, read_back in zip(windows[folder], theirs[folder], strict=True):
            ours = nautilus2_worker.records(_read_1x(catalog, folder, *window))
            if ours["records"] is None or read_back["records"] is None:
                report.notes.append(f"{folder}: counts only ({ours['why'] or read_back['why']})")
                break
            if ours["records"] != read_back["records"]:
                differ = next(
                    (a for a, b in zip(ours["records"], read_back["records"], strict=False) if a != b),
                    f"{len(ours['records'])} records vs {len(read_back['records'])}",
                )
                problems.append(f"{folder} {window[0]}: values differ, e.g. 1.231 {differ[:200]}")
                break
            compared += len(ours["records"])
        else:
            report.sampled[folder] = compared
        say(f"  {folder}: {ours_count:,} records" + (" (values equal)" if folder in report.sampled else ""))
    if problems:
        raise MigrateError(
            "the migrated catalog differs from its source, so it was not kept:\n  " + "\n  ".join(problems)
        )
    return report
