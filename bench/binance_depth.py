"""Order book deltas from a Tardis replay day of Binance USDT-M depth: a REST snapshot (1,000
levels a side) then N `depthUpdate` messages (1-10 bids and 1-10 asks each, 30 % deletes), as
`formats/binance/depth.read_replay` reads a landed replay file. The file is generated in one
process, read in another (its wall time and peak RSS are the reader's own).

    .venv/bin/python bench/binance_depth.py [--messages 864000]   # 100 ms updates for a day
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = 1_704_153_600_000  # 2024-01-02 00:00 UTC, ms


def _iso(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1000:06d}0Z"


def generate(path: Path, n: int) -> None:
    rng = random.Random(1)
    mid, last = 420_000, 1_000
    snap = {"lastUpdateId": last, "E": T0, "T": T0,
            "bids": [[f"{(mid - i) / 10:.1f}", "1.000"] for i in range(1, 1001)],
            "asks": [[f"{(mid + i) / 10:.1f}", "1.000"] for i in range(1, 1001)]}  # fmt: skip
    env = {"stream": "btcusdt@depthSnapshot", "generated": True, "data": snap}
    with gzip.open(path, "wt", compresslevel=3) as out:
        out.write(f"{_iso(T0 + 1)} {json.dumps(env, separators=(',', ':'))}\n")
        for k in range(n):
            t = T0 + 2 + k * 86_400_000 // n
            u = last + rng.randint(1, 30)

            def side(sign: int) -> list:
                return [[f"{(mid + sign * rng.randint(1, 200)) / 10:.1f}",
                         "0" if rng.random() < 0.3 else f"{rng.randint(1, 9999) / 1000:.3f}"]
                        for _ in range(rng.randint(1, 10))]  # fmt: skip

            d = {"e": "depthUpdate", "E": t, "T": t - 1, "s": "BTCUSDT", "U": last + 1, "u": u, "pu": last,
                 "b": side(-1), "a": side(1)}  # fmt: skip
            out.write(
                f"{_iso(t + 3)} {json.dumps({'stream': 'btcusdt@depth@100ms', 'data': d}, separators=(',', ':'))}\n"
            )
            last = u


def read(path: Path) -> None:
    from hedgegrid_assets.formats.binance import depth as binance_depth

    start = time.perf_counter()
    frame, stats = binance_depth.read_replay([path])
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"deltas": frame.height, "updates": stats.updates, "wall_s": round(wall, 2), "peak_rss_mb": round(peak)}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=864_000)
    ap.add_argument("--generate", type=Path)
    ap.add_argument("--read", type=Path)
    args = ap.parse_args()
    if args.generate:
        return generate(args.generate, args.messages)
    if args.read:
        return read(args.read)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "binance-futures_2024-01-02_BTCUSDT.ndjson.gz"
        subprocess.run(
            [sys.executable, __file__, "--generate", str(path), "--messages", str(args.messages)], check=True
        )
        print(f"{args.messages:,} depthUpdate messages, {path.stat().st_size / 1e6:.0f} MB gzip")
        subprocess.run([sys.executable, __file__, "--read", str(path)], check=True)


if __name__ == "__main__":
    main()
