"""Benchmark: our Arrow catalog writer and pipeline against Nautilus's own loader + writer.

One 5,000,000-row Tardis CSV.gz day (generated, seeded): `trades` (default) or, with
`--kind quotes`, `quotes`, or with `--kind deltas`, `incremental_book_L2` (order book deltas); then, alternating repetitions, each measurement in its own process
(clean peak RSS):
  (a) Nautilus: TardisCSVDataLoader.load_trades / load_quotes / load_deltas (as_legacy_cython=False) +
      ParquetDataCatalog.write_data (its fastest path: pyo3 objects; the reference every ratio
      is against)
  (l) the same with the loader's default, as_legacy_cython=True (Cython objects); slower
  (b) ours, writer alone: the validated frame -> Arrow -> Parquet (hedgegrid's write_arrow)
  (c) ours, end to end: `hedgegrid build --source csv` (Tardis format) for that day, i.e. a
      Dagster run: land raw, parse, quarantine, validate (checks), write the catalog
  (r) reading the file back with catalog.trade_ticks(): ours vs Nautilus's
Prints medians, peak RSS and the ratios against (a) measured in the same run.

    .venv/bin/python bench/catalog_writer.py [--kind trades|quotes] [--trades 5000000] [--reps 3] [--steps a,l,b,c]

(b) writes the frame (c) staged, so it needs c; the read-back comparison needs a and b.
A big day's memory alone: --trades 20000000 --steps c --reps 1.
The order book: --kind deltas --trades 20000000 --steps a,c --reps 1 (and --trades 50000000 --steps c).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

DAY = "2024-01-02"
SYMBOL = "BTCUSDT"
INSTRUMENT_ID = f"{SYMBOL}-PERP.BINANCE"
DAY_START_US = 1_704_153_600_000_000
OUT = Path(__file__).resolve().parent / "out" / "catalog_writer"


def generate_quotes(path: Path, n: int, seed: int = 2) -> None:
    """A Tardis datasets `quotes` file: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
    (and the day's trades and derivative_ticker, small: the source lands them with it)."""
    rng = np.random.default_rng(seed)
    ts = DAY_START_US + np.sort(rng.integers(0, 86_400_000_000 - 100_000, n))
    bid = 420_000 + np.cumsum(rng.choice([-1, 0, 0, 1], n))
    ask = bid + rng.integers(1, 4, n)
    text = lambda ticks: pl.Series(ticks // 10).cast(pl.String) + "." + pl.Series(ticks % 10).cast(pl.String)  # noqa: E731
    frame = pl.DataFrame(
        {
            "exchange": pl.repeat("binance-futures", n, eager=True),
            "symbol": pl.repeat(SYMBOL, n, eager=True),
            "timestamp": ts,
            "local_timestamp": ts + rng.integers(1_000, 50_000, n),
            "ask_amount": (pl.Series(rng.integers(1, 5_000, n)) / 1000).round(3),
            "ask_price": text(ask),
            "bid_price": text(bid),
            "bid_amount": (pl.Series(rng.integers(1, 5_000, n)) / 1000).round(3),
        }
    ).sort("local_timestamp")
    with gzip.open(path, "wb", compresslevel=6) as out:
        frame.write_csv(out)
    generate(path.with_name(path.name.replace("_quotes_", "_trades_")), 10_000)


def generate(path: Path, n: int, seed: int = 1) -> None:
    """A Tardis datasets `trades` file: exchange,symbol,timestamp,local_timestamp,id,side,price,amount."""
    rng = np.random.default_rng(seed)
    ts = DAY_START_US + np.sort(rng.integers(0, 86_400_000_000 - 100_000, n))
    ticks = 420_000 + np.cumsum(rng.choice([-1, 0, 0, 1], n))
    frame = pl.DataFrame(
        {
            "exchange": pl.repeat("binance-futures", n, eager=True),
            "symbol": pl.repeat(SYMBOL, n, eager=True),
            "timestamp": ts,
            "local_timestamp": ts + rng.integers(1_000, 50_000, n),
            "id": np.arange(3_000_000_000, 3_000_000_000 + n),
            "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
            "price": pl.Series(ticks).cast(pl.String).str.slice(0, 5) + "." + pl.Series(ticks % 10).cast(pl.String),
            "amount": (pl.Series(rng.integers(1, 5_000, n)) / 1000).round(3),
        }
    ).sort("local_timestamp")
    with gzip.open(path, "wb", compresslevel=6) as out:
        frame.write_csv(out)
    # The Tardis CSV source lands a day's derivative_ticker with its trades: an hourly one.
    header = (
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
        "predicted_funding_rate,open_interest,last_price,index_price,mark_price"
    )
    hour = 3_600_000_000
    rows = [
        f"binance-futures,{SYMBOL},{DAY_START_US + h * hour},{DAY_START_US + h * hour + 900},"
        f"{DAY_START_US + (h // 8 + 1) * 8 * hour},0.0001,0.0001,1000,42000.1,42000.0,42000.05"
        for h in range(24)
    ]
    ticker = path.with_name(path.name.replace("_trades_", "_derivative_ticker_"))
    with gzip.open(ticker, "wt") as out:
        out.write("\n".join([header, *rows]) + "\n")


# -- measurements, each run in a fresh process ------------------------------------------------


def run_nautilus(csv: Path, work: Path, legacy_cython: bool) -> None:
    from nautilus_trader.adapters.tardis.loaders import TardisCSVDataLoader
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    loader = TardisCSVDataLoader(
        price_precision=1, size_precision=3, instrument_id=InstrumentId.from_str(INSTRUMENT_ID)
    )
    load = {"quotes": loader.load_quotes, "incremental": loader.load_deltas}.get(
        csv.name.split("_")[1], loader.load_trades
    )
    ticks = load(str(csv), as_legacy_cython=legacy_cython)
    start = DAY_START_US * 1000
    ParquetDataCatalog(str(work / "catalog")).write_data(ticks, start=start, end=start + 86_400 * 10**9 - 1)


def run_writer(frame_path: Path, work: Path) -> None:
    from hedgegrid_assets.catalog.writer import CatalogPartition, commit_partition
    from hedgegrid_assets.frames import KINDS
    from hedgegrid_assets.partitions import partition_context
    from hedgegrid_assets.settings import Settings

    frame = pl.read_parquet(frame_path)
    kind = KINDS[frame_path.parent.parent.name]
    t0 = time.perf_counter()
    key = f"{DAY}|{SYMBOL}"
    commit_partition(work / "catalog", key, [CatalogPartition(kind, partition_context(key, Settings()), frame)])
    print(json.dumps({"inner_s": time.perf_counter() - t0}))


def run_read(catalog: Path) -> None:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    t0 = time.perf_counter()
    cat = ParquetDataCatalog(str(catalog))
    read = cat.quote_ticks if (catalog / "data" / "quote_tick").exists() else cat.trade_ticks
    if (catalog / "data" / "order_book_deltas").exists():
        read = cat.order_book_deltas
    n = len(read(instrument_ids=[INSTRUMENT_ID]))
    print(json.dumps({"inner_s": time.perf_counter() - t0, "rows": n}))


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Wall time of one child process plus what it printed as JSON (peak RSS, inner times)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    reported: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            reported |= json.loads(line)
    return {"wall_s": wall, **reported}


def with_rss(cmd: list[str]) -> list[str]:
    """Run `cmd` under a fresh wrapper process whose only child it is, so RUSAGE_CHILDREN's
    ru_maxrss is that command's own peak RSS."""
    return [sys.executable, __file__, "--rss-of", "--", *cmd]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["trades", "quotes", "deltas"], default="trades")
    ap.add_argument("--trades", type=int, default=5_000_000, help="rows of the day (trades or quotes)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", default="a,l,b,c", help="which of a,l,b,c to run (default: all)")
    ap.add_argument("--step", choices=["nautilus", "writer", "read"], help=argparse.SUPPRESS)
    ap.add_argument("--rss-of", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.rss_of:  # run the given command as a child and report its peak RSS with its output
        proc = subprocess.run(a.args, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps({"peak_rss_mb": rss_mb}))
        sys.exit(proc.returncode)
    if a.step == "nautilus":
        return run_nautilus(Path(a.args[0]), Path(a.args[1]), legacy_cython=a.args[2] == "cython")
    if a.step == "writer":
        return run_writer(Path(a.args[0]), Path(a.args[1]))
    if a.step == "read":
        return run_read(Path(a.args[0]))

    OUT.mkdir(parents=True, exist_ok=True)
    steps = [s for s in ("a", "c", "l", "b") if s in a.steps.split(",")]
    if "b" in steps and "c" not in steps:
        sys.exit("--steps: b writes the frame that c stages; add c")
    raw_dir = OUT / f"input_{a.kind}_{a.trades}"
    raw_dir.mkdir(exist_ok=True)
    data_type = {"deltas": "incremental_book_L2"}.get(a.kind, a.kind)
    csv = raw_dir / f"binance-futures_{data_type}_{DAY}_{SYMBOL}.csv.gz"
    if not csv.exists():
        t0 = time.perf_counter()
        if a.kind == "deltas":  # the book, and the small trades + ticker files a Tardis day needs
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from hedgegrid_assets_tests.book_files import write_l2

            write_l2(csv, a.trades, levels=1000, snapshots=2)
            generate(raw_dir / f"binance-futures_trades_{DAY}_{SYMBOL}.csv.gz", 1_000)
        else:
            (generate_quotes if a.kind == "quotes" else generate)(csv, a.trades)
        print(
            f"generated {a.trades:,} {a.kind}: {csv} ({csv.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t0:.1f}s)"
        )
    config = OUT / "tardis_csv.json"
    config.write_text(json.dumps({"format": "tardis", "base_path": str(raw_dir)}))

    bin_dir = Path(sys.executable).parent
    results: dict[str, list[dict]] = {"a": [], "l": [], "b": [], "c": [], "read_ours": [], "read_nautilus": []}
    for rep in range(a.reps):
        for step in steps:
            work = OUT / f"work_{step}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            if step in ("a", "l"):
                objects = "pyo3" if step == "a" else "cython"
                cmd = [sys.executable, __file__, "--step", "nautilus", str(csv), str(work), objects]
                env = None
            elif step == "c":
                home = work / "dagster_home"
                home.mkdir()
                shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", home / "dagster.yaml")
                cmd = [
                    str(bin_dir / "hedgegrid"),
                    "build",
                    "--source",
                    "csv",
                    "--config",
                    str(config),
                    "--symbol",
                    SYMBOL,
                    "--start",
                    DAY,
                    "--end",
                    "2024-01-03",
                    "--data-types",
                    a.kind,
                    "--data-dir",
                    str(work / "data"),
                ]
                env = {**os.environ, "DAGSTER_HOME": str(home)}
            else:
                staged = {"deltas": "order_book_deltas"}.get(a.kind, a.kind)
                frame = OUT / "work_c" / "data" / "staging" / staged / DAY / f"{SYMBOL}.parquet"
                cmd = [sys.executable, __file__, "--step", "writer", str(frame), str(work)]
                env = None
            r = measured(with_rss(cmd), env)
            results[step].append(r)
            print(f"rep {rep + 1} ({step}): {r['wall_s']:.2f}s wall, {r['peak_rss_mb']:.0f} MB peak RSS", flush=True)
        ours = OUT / "work_b" / "catalog"
        theirs = OUT / "work_a" / "catalog"
        for name, cat in (("read_ours", ours), ("read_nautilus", theirs)) if {"a", "b"} <= set(steps) else ():
            r = measured(with_rss([sys.executable, __file__, "--step", "read", str(cat)]))
            results[name].append(r)

    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in results.items() if v}
    a_wall, a_rss = (med["a"]["wall_s"], med["a"]["peak_rss_mb"]) if "a" in med else (None, None)
    print(f"\n{a.trades:,} {a.kind}, median of {a.reps} alternating repetitions")
    print(f"{'':40}{'wall s':>9}{'peak RSS MB':>13}{'speed-up vs (a)':>17}{'memory vs (a)':>15}")
    labels = {
        "a": f"(a) Nautilus load_{a.kind}(pyo3) + write_data",
        "l": f"(l) same, load_{a.kind}' default (Cython)",
        "b": "(b) hedgegrid Arrow writer alone",
        "c": "(c) hedgegrid build end to end",
    }
    for k, label in labels.items():
        if k not in med:
            continue
        w, r = med[k]["wall_s"], med[k]["peak_rss_mb"]
        vs = f"{a_wall / w:16.1f}x{r / a_rss:14.2f}x" if a_wall else ""
        print(f"{label:40}{w:9.2f}{r:13.0f}{vs}")
    if "b" in med:
        print(f"(b) writer's own time inside its process: {med['b']['inner_s']:.2f}s")
    if "read_ours" in med:
        ro, rn = med["read_ours"]["inner_s"], med["read_nautilus"]["inner_s"]
        print(
            f"read back with catalog.{'quote' if a.kind == 'quotes' else 'trade'}_ticks(): ours {ro:.2f}s, Nautilus's file {rn:.2f}s (ratio {ro / rn:.2f})"
        )


if __name__ == "__main__":
    main()
