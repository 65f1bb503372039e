"""Benchmark: downloading 30 days x 2 symbols of Tardis datasets from a stand-in server.

The stand-in (hedgegrid_assets_tests/fake_vendor.py, real HTTP on 127.0.0.1, in its own
process) serves `trades` and `derivative_ticker` CSV.gz files at Tardis's real paths. Measured
in the same run, each in a fresh directory:
  (r) reference: the same files read straight off the socket (urllib, nothing written):
      the loopback speed every ratio is against
  (o) ours: hedgegrid's downloader (landing/download.py: streamed to disk, verified sizes,
      renamed into the raw-zone cache), sequentially and with 4 threads
  (t) tardis-dev's own `download_datasets` (concurrency 1 and 20) on the same files, if
      installed (`uv sync --group bench`)
Prints MB, seconds and MB/s per measurement and the ratios against (r).

    .venv/bin/python bench/downloads.py [--days 30] [--trades 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = dt.date(2024, 1, 1)
EXCHANGE = "binance-futures"
TYPES = ("trades", "derivative_ticker")


def generate(out: Path, days: int, trades: int) -> int:
    """Files at out/<url path>; the total bytes."""
    rng = np.random.default_rng(5)
    total = 0
    for d in range(days):
        day = START + dt.timedelta(days=d)
        base_us = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1_000_000
        for symbol in SYMBOLS:
            ts = base_us + np.sort(rng.integers(0, 86_400_000_000, trades))
            price = 42_000 + np.cumsum(rng.choice([-1, 0, 1], trades)) / 10
            rows = "\n".join(
                f"{EXCHANGE},{symbol},{t},{t + 900},{i},buy,{p:.1f},0.010" for i, (t, p) in enumerate(zip(ts, price))
            )
            ticker = "\n".join(f"{EXCHANGE},{symbol},{base_us + s * 1_000_000},{base_us + s * 1_000_000 + 500},,,,,,,42000.1"
                               for s in range(0, 86_400, 3))  # fmt: skip
            for data_type, text in (("trades", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + rows),
                                    ("derivative_ticker", "exchange,symbol,timestamp,local_timestamp,funding_timestamp,"
                                     "funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price\n" + ticker)):  # fmt: skip
                path = out / "v1" / EXCHANGE / data_type / f"{day:%Y/%m/%d}" / f"{symbol}.csv.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(gzip.compress(text.encode(), compresslevel=6))
                total += path.stat().st_size
    return total


def serve(directory: str) -> None:
    """Child process: serve every file under `directory` at its relative path; print the URL."""
    from hedgegrid_assets_tests.fake_vendor import FakeVendor

    server = FakeVendor()
    for path in Path(directory).rglob("*.gz"):
        server.put("/" + path.relative_to(directory).as_posix(), path.read_bytes())
    with server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes it


def urls(base: str, days: int) -> list[str]:
    return [f"{base}/v1/{EXCHANGE}/{t}/{START + dt.timedelta(days=d):%Y/%m/%d}/{s}.csv.gz"
            for d in range(days) for s in SYMBOLS for t in TYPES]  # fmt: skip


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def read_all(all_urls: list[str]) -> None:
    for u in all_urls:
        with urllib.request.urlopen(u) as r:
            while r.read(1 << 20):
                pass


def ours(all_urls: list[str], work: Path, threads: int) -> None:
    from hedgegrid_assets.landing.download import Downloads  # imported before the clock starts (main)

    downloads = Downloads(work, "tardis-datasets", log=lambda _: None)
    if threads == 1:
        for u in all_urls:
            downloads.get(u, u.rsplit("/", 1)[1])
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda u: downloads.get(u, u.rsplit("/", 1)[1]), all_urls))


def run_tardis_dev(base: str, days: int, work: Path, concurrency: int) -> None:
    from tardis_dev.download_datasets import download_datasets

    end = START + dt.timedelta(days=days)
    download_datasets(EXCHANGE, list(TYPES), SYMBOLS, START.isoformat(), end.isoformat(), download_dir=str(work),
                      endpoint=f"{base}/v1", concurrency=concurrency)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--trades", type=int, default=100_000, help="trades per symbol-day")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve)
    tmp = Path(tempfile.mkdtemp(prefix="hedgegrid-bench-downloads-"))
    try:
        t0 = time.perf_counter()
        total = generate(tmp / "site", a.days, a.trades)
        mb = total / 1e6
        print(
            f"generated {a.days} days x {len(SYMBOLS)} symbols x {len(TYPES)} files: {mb:,.0f} MB ({time.perf_counter() - t0:.0f}s)"
        )
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp / "site")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        base = server.stdout.readline().strip()
        all_urls = urls(base, a.days)
        import hedgegrid_assets.landing.download  # noqa: F401 - its imports (polars, nautilus) are not download time

        try:
            import tardis_dev.download_datasets  # noqa: F401

            have_tardis_dev = True
        except ImportError:
            have_tardis_dev = False

        results = {"(r) read off the socket, nothing written": timed(lambda: read_all(all_urls))}
        for threads in (1, 4):
            work = tmp / f"ours{threads}"
            results[f"(o) hedgegrid downloader, {threads} thread(s)"] = timed(
                lambda w=work, n=threads: ours(all_urls, w, n)
            )
        for conc in (1, 20) if have_tardis_dev else ():
            work = tmp / f"tardis{conc}"
            results[f"(t) tardis-dev download_datasets, concurrency {conc}"] = timed(
                lambda w=work, c=conc: run_tardis_dev(base, a.days, w, c)
            )
        if not have_tardis_dev:
            print("tardis-dev is not installed (uv sync --group bench): its rows are left out")
        server.stdin.close()
        server.wait()
        ref = results["(r) read off the socket, nothing written"]
        print(f"\n{'':58}{'s':>7}{'MB/s':>9}{'vs (r)':>9}")
        for label, seconds in results.items():
            print(f"{label:58}{seconds:7.2f}{mb / seconds:9.0f}{ref / seconds:9.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
