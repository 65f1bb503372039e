"""`hedgegrid status`: what the catalog holds per date x symbol x kind, gaps, failed checks."""

from __future__ import annotations

import argparse
import os

from hedgegrid_assets.cli.common import zones


def add_parser(sub) -> argparse.ArgumentParser:
    st = sub.add_parser(
        "status",
        help="what the catalog holds per date x symbol x kind, gaps, failed checks",
        description="Rows per kind for every date|symbol in the catalog (from the files' footers), days missing "
        "in each symbol's range, and, with DAGSTER_HOME set, the partitions whose latest check failed.",
    )
    st.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    st.add_argument("--data-dir", metavar="DIR", help="default: data/ in the project folder")
    st.add_argument("--picture", metavar="PATH", help="also draw the coverage as a PNG at PATH: dates x symbol x kind, "
                    "rows per file, days missing, failed checks (with DAGSTER_HOME)")  # fmt: skip
    return st


def run(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.status import failed_check_results, read

    root, settings = zones(args.data_dir, args.catalog)
    status = read(root)
    if not status.rows:
        print(f"{root}: no partitions in the catalog")
        return 0
    keys = [f"{d}|{s}" for d, s in sorted(status.rows)]
    width = max(len(k) for k in keys)
    print(f"{root}: {len(keys)} partition(s)\n")
    print(f"{'partition':<{width}}  " + "  ".join(f"{n:>13}" for n in status.kinds))
    for (day, symbol), counts in sorted(status.rows.items()):
        cells = [f"{counts[n]:>13,}" if n in counts else f"{'-':>13}" for n in status.kinds]
        print(f"{f'{day}|{symbol}':<{width}}  " + "  ".join(cells))
    for symbol, days in sorted(status.gaps.items()):
        print(
            f"\n{symbol}: {len(days)} day(s) missing in its range: {', '.join(map(str, days[:10]))}{' ...' if len(days) > 10 else ''}"
        )
    failed = []
    if os.environ.get("DAGSTER_HOME"):
        from dagster import DagsterInstance

        from hedgegrid_assets.definitions import build_definitions

        defs = build_definitions(settings)
        checks = sorted(
            defs.resolve_asset_graph().asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)
        )
        failed = failed_check_results(DagsterInstance.get(), checks)
        print(f"\nfailed checks (latest per partition): {len(failed)}")
        for f in failed:
            print(f"  {f.line()}")
    if args.picture:
        from hedgegrid_assets.reports.coverage_picture import write_picture

        print(f"\npicture: {write_picture(args.picture, status, failed)}")
    return 0
