"""Benchmark: a 30-day x 2-symbol sample backfill through Dagster vs the same work in a loop.

(d) Dagster: `dagster asset materialize -m hedgegrid_assets --select '*' --partition-range
    2024-01-01|BTCUSDT...2024-01-30|ETHUSDT` (one batched run, checks included, a real
    instance in a temporary DAGSTER_HOME), as a user backfills from the command line.
(l) A bare Python loop over the same 60 partitions calling the same building blocks: land the
    sample, parse, quarantine, validate (pandera + WARN checks + mark band), write the catalog,
    report completeness.
Alternating repetitions, medians, ratio (target: d <= 1.5 x l).

    .venv/bin/python bench/backfill.py [--days 30] [--reps 2] [--trades-per-day 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "backfill"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = dt.date(2024, 1, 1)


def loop(data_dir: Path, days: int) -> None:
    """The same work as the asset graph, with no Dagster at all."""
    import hedgegrid_assets  # noqa: F401
    from hedgegrid_assets.catalog import completeness
    from hedgegrid_assets.catalog.writer import CatalogPartition, write_instrument, write_partition
    from hedgegrid_assets.checks import coverage, quarantine
    from hedgegrid_assets.checks.validation import run_schema
    from hedgegrid_assets.frames import KINDS, MARK_PRICES, TRADES
    from hedgegrid_assets.landing.raw_zone import land_atomically, landing_dir
    from hedgegrid_assets.partitions import partition_context
    from hedgegrid_assets.settings import Settings
    from hedgegrid_assets.sources.base import LandingRequest
    from hedgegrid_assets.sources.registry import build_source

    settings = Settings(data_dir=data_dir, symbols=SYMBOLS)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    source = build_source(settings)
    for i in range(days):
        for symbol in SYMBOLS:
            key = f"{START + dt.timedelta(days=i)}|{symbol}"
            part = partition_context(key, settings)
            landing = land_atomically(
                landing_dir(settings.raw_dir, source.name, key),
                source.name,
                lambda tmp, part=part: source.land(LandingRequest(part, tuple(KINDS.values()), tmp, lambda m: None)),
            )
            write_instrument(settings.catalog_path, part.instrument.nautilus)
            frames = {}
            for kind in KINDS.values():
                frame, q = quarantine.split(kind, source.read_frame(kind, landing.paths, part), part)
                quarantine.save(settings.staging_dir, kind, part, q)
                frame.write_parquet(settings.staging_dir / f"{kind.name}-{key}.parquet".replace("|", "_"))
                results = [run_schema(kind, frame, part)]
                if kind is TRADES:
                    results.append(coverage.trade_gap(frame, part))
                if kind is MARK_PRICES:
                    results.append(coverage.mark_price_band(frame, frames[TRADES.name], part))
                if kind.name == "funding_rates":
                    results.append(coverage.funding_coverage(frame, part))
                frames[kind.name] = frame
                if all(r.passed for r in results if r.severity.value == "ERROR"):
                    write_partition(settings.catalog_path, CatalogPartition(kind, part, frame))
            completeness.report(settings.catalog_path, part)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--trades-per-day", type=int, default=20_000)
    ap.add_argument("--loop", metavar="DATA_DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.loop:
        return loop(Path(a.loop), a.days)

    end = START + dt.timedelta(days=a.days - 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEGRID_")}
    env |= {
        "HEDGEGRID_SAMPLE__TRADES_PER_DAY": str(a.trades_per_day),
        "HEDGEGRID_SYMBOLS": ",".join(SYMBOLS),
        "HEDGEGRID_SETTINGS_FILE": str(OUT / "absent.toml"),
    }
    times: dict[str, list[float]] = {"dagster": [], "loop": []}
    for rep in range(a.reps):
        for name in ("dagster", "loop"):
            work = OUT / name
            shutil.rmtree(work, ignore_errors=True)
            (work / "home").mkdir(parents=True)
            shutil.copy(REPO / "dagster.yaml", work / "home" / "dagster.yaml")
            if name == "dagster":
                cmd = [
                    str(Path(sys.executable).parent / "dagster"),
                    "asset",
                    "materialize",
                    "-m",
                    "hedgegrid_assets",
                    "--select",
                    "*",
                    "--partition-range",
                    f"{START}|{SYMBOLS[0]}...{end}|{SYMBOLS[-1]}",
                ]
                run_env = env | {"DAGSTER_HOME": str(work / "home"), "HEDGEGRID_DATA_DIR": str(work / "data")}
            else:
                cmd = [sys.executable, __file__, "--loop", str(work / "data"), "--days", str(a.days)]
                run_env = env
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=work, env=run_env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr[-4000:]}")
            files = len(list((work / "data" / "catalog" / "data").rglob("*.parquet")))
            times[name].append(elapsed)
            print(f"rep {rep + 1} {name:8} {elapsed:7.1f}s  ({files} catalog files)", flush=True)
    d, bare = statistics.median(times["dagster"]), statistics.median(times["loop"])
    n = a.days * len(SYMBOLS)
    print(
        f"\n{a.days} days x {len(SYMBOLS)} symbols = {n} partitions, {a.trades_per_day:,} trades/day, "
        f"median of {a.reps}"
    )
    print(f"Dagster batched backfill {d:7.1f}s   bare loop {bare:7.1f}s   ratio {d / bare:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
