"""Benchmark: `hedgegrid build --jobs 1` vs `--jobs 2` vs a bare process pool doing the same work.

Over D days x 2 symbols of the sample source (default 30 x 2 = 60 partitions, the settings'
20,000 trades a day; kinds trades, quotes, bars, mark prices, funding: what the sample offers),
each variant a fresh subprocess into a fresh data zone and a fresh Dagster instance
(DAGSTER_HOME, sqlite, `dagster.yaml`), wall time from process start to exit:

(d) stock:    (s) on an instance that names Dagster's own sqlite storage and compute logs, so
              `hedgegrid build` uses them as configured: the serial build as it was before its
              runs kept their event-log connections (`hedgegrid_assets/instance_storage.py`)
(s) serial:   `hedgegrid build --jobs 1` (one run per partition, one after another, in process)
(p) parallel: `hedgegrid build --jobs N` (N spawned worker processes, one run per partition)
(b) bare:     this script's `--bare`: a `multiprocessing` pool of N spawned processes (the same
              start method as (p)), each doing per partition the same work as the job's steps by
              calling the same functions, without Dagster: land the sample day into the raw zone,
              read every kind, complete, quarantine, pandera schema + WARN checks + mark band,
              stage the frames, write the instrument, commit the partition's kinds to the catalog
              in one journal commit, read it back for the completeness report and draw the day's
              picture. What it leaves out is Dagster's bookkeeping: runs and event logs in the
              instance, the partition lock resource, IO managers (it keeps the frames in memory
              instead of reading the staged ones back), the job's plan and step machinery.

Ratios are against (s) measured in the same invocation; with --reps > 1 the variants alternate
and medians are reported. Target (issue 14): (p) >= 1.7x faster than (s), (p) <= 1.2x (b).

    .venv/bin/python bench/parallel_build.py [--days 30] [--jobs 2] [--reps 1] [--trades-per-day 20000]
                                             [--variants d,s,p,b]
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
OUT = REPO / "bench" / "out" / "parallel_build"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = dt.date(2024, 1, 1)
KINDS = "trades,quotes,bars,mark,funding"

STOCK = """
storage:
  sqlite:
    base_dir: {home}
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/storage
"""

_bare: dict = {}


def _bare_init(data_dir: str) -> None:
    from hedgegrid_assets.settings import Settings
    from hedgegrid_assets.sources.registry import build_source

    settings = Settings(data_dir=Path(data_dir), symbols=SYMBOLS)
    _bare.update(settings=settings, source=build_source(settings))


def _bare_partition(key: str) -> float:
    """One partition's work, as the build job's steps do it, without Dagster; its seconds."""
    from hedgegrid_assets.assets import WARN_CHECKS, _checked_frame
    from hedgegrid_assets.catalog import completeness
    from hedgegrid_assets.catalog.writer import CatalogPartition, commit_partition, write_instrument
    from hedgegrid_assets.checks import coverage
    from hedgegrid_assets.frames import KINDS_BY_CLI_NAME, MARK_PRICES, TRADES
    from hedgegrid_assets.landing.raw_zone import SHARED, land_atomically, landing_dir
    from hedgegrid_assets.partitions import partition_context
    from hedgegrid_assets.reports import day_picture
    from hedgegrid_assets.sources.base import LandingRequest

    t0 = time.perf_counter()
    settings, source = _bare["settings"], _bare["source"]
    kinds = [KINDS_BY_CLI_NAME[n] for n in KINDS.split(",")]
    part = partition_context(key, settings)
    landing = land_atomically(
        landing_dir(settings.raw_dir, source.name, key),
        source.name,
        lambda tmp: source.land(LandingRequest(part, tuple(kinds), tmp, lambda _: None, settings.raw_dir / SHARED)),
    )
    write_instrument(settings.catalog_path, part.instrument.nautilus)
    frames, blocked = {}, False
    for kind in kinds:
        if kind.derived is not None:
            frame, notes = kind.derived[1](frames[kind.derived[0].name], part), {}
        else:
            frame, notes = source.read_frame_with_notes(kind, landing.paths, part)
        frame, _meta, checks = _checked_frame(kind, frame, notes, part, settings, WARN_CHECKS.get(kind.name, []))
        if kind is MARK_PRICES:
            checks.append(coverage.mark_price_band(frame, frames[TRADES.name], part))
        staged = settings.staging_dir / kind.name / part.day.isoformat() / f"{part.instrument.symbol}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(staged, compression="zstd")
        frames[kind.name] = frame
        blocked |= not all(c.passed for c in checks if c.severity.value == "ERROR")
    if not blocked:
        commit_partition(settings.catalog_path, key, [CatalogPartition(k, part, frames[k.name]) for k in kinds])
    completeness.report(settings.catalog_path, part, {k.name for k in kinds})
    day_picture.metadata(settings.catalog_path, settings.staging_dir, part)
    return time.perf_counter() - t0


def bare(data_dir: Path, days: int, jobs: int) -> None:
    import multiprocessing

    keys = [f"{START + dt.timedelta(days=i)}|{s}" for i in range(days) for s in SYMBOLS]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs, initializer=_bare_init, initargs=(str(data_dir),)) as pool:
        took = pool.map(_bare_partition, keys, chunksize=1)
    print(f"bare: {len(keys)} partitions, {sum(took):.1f}s of partition work")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--trades-per-day", type=int, default=20_000)
    ap.add_argument(
        "--variants",
        default="s,p,b",
        help="which of d (stock Dagster storage, serial), s (serial), p (parallel), b (bare) to run",
    )
    ap.add_argument("--bare", metavar="DATA_DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.bare:
        return bare(Path(a.bare), a.days, a.jobs)

    end = START + dt.timedelta(days=a.days)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_"))}
    env |= {"HEDGEGRID_SAMPLE__TRADES_PER_DAY": str(a.trades_per_day), "HEDGEGRID_SYMBOLS": ",".join(SYMBOLS),
            "HEDGEGRID_SETTINGS_FILE": str(OUT / "absent.toml")}  # fmt: skip
    names = {
        "d": "stock --jobs 1",
        "s": "serial --jobs 1",
        "p": f"parallel --jobs {a.jobs}",
        "b": f"bare pool of {a.jobs}",
    }
    variants = a.variants.split(",")
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(a.reps):
        for v in variants:
            work = OUT / v
            shutil.rmtree(work, ignore_errors=True)
            (work / "home").mkdir(parents=True)
            shutil.copy(REPO / "dagster.yaml", work / "home" / "dagster.yaml")
            if v == "d":  # Dagster's own storage and compute logs, named: used as configured
                with open(work / "home" / "dagster.yaml", "a") as f:
                    f.write(STOCK.format(home=work / "home"))
            run_env = env | {"DAGSTER_HOME": str(work / "home")}
            if v == "b":
                cmd = [
                    sys.executable,
                    __file__,
                    "--bare",
                    str(work / "data"),
                    "--days",
                    str(a.days),
                    "--jobs",
                    str(a.jobs),
                ]
            else:
                cmd = [str(Path(sys.executable).parent / "hedgegrid"), "build", "--start", str(START), "--end", str(end),
                       "--data-types", KINDS, "--data-dir", str(work / "data"), "--jobs", "1" if v in ("d", "s") else str(a.jobs)]  # fmt: skip
            before = os.times()
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=work, env=run_env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            after = os.times()
            if proc.returncode != 0:
                sys.exit(f"{names[v]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            files = len(list((work / "data" / "catalog" / "data").rglob("*.parquet")))
            used = (after.children_user - before.children_user) + (after.children_system - before.children_system)
            times[v].append(elapsed)
            cpu[v].append(used)
            load = os.getloadavg()[0]
            print(f"rep {rep + 1} {names[v]:18} {elapsed:7.1f}s wall  {used:7.1f}s CPU  ({files} catalog files; "
                  f"load {load:.1f})", flush=True)  # fmt: skip
    n = a.days * len(SYMBOLS)
    print(f"\n{a.days} days x {len(SYMBOLS)} symbols = {n} partitions of the sample ({a.trades_per_day:,} trades/day, "
          f"{KINDS}), median of {a.reps}, {os.cpu_count()} cores")  # fmt: skip
    med = {v: statistics.median(times[v]) for v in variants}
    for v in variants:
        vs = f"  {med['s'] / med[v]:.2f}x faster than serial" if "s" in med and v != "s" else ""
        print(f"  {names[v]:18} {med[v]:7.1f}s  ({statistics.median(cpu[v]):.1f}s CPU){vs}")
    if "d" in med and "s" in med:
        print(f"  serial, kept event-log connections vs Dagster's stock storage: {med['d'] / med['s']:.2f}x faster")
    if "p" in med and "d" in med:
        print(f"  parallel vs the stock serial build: {med['d'] / med['p']:.2f}x faster")
    if "p" in med and "b" in med:
        print(
            f"  parallel / bare: {med['p'] / med['b']:.2f} (target <= 1.2); parallel speed-up "
            f"{med['s'] / med['p']:.2f}x (target >= 1.7)"
            if "s" in med
            else ""
        )


if __name__ == "__main__":
    main()
