"""`hedgegrid verify`: recover interrupted commits, then check every catalog file and raw landing."""

from __future__ import annotations

import argparse
import sys

from hedgegrid_assets.cli.common import zones


def add_parser(sub) -> argparse.ArgumentParser:
    v = sub.add_parser(
        "verify",
        help="recover interrupted commits, then check every catalog file and raw landing",
        description="First recover interrupted commits (as catalog repair does), then read every catalog "
        "file (footer, schema, timestamps inside its day) and every raw landing against its manifest "
        "(sizes and sha256). Exit 0 when all is well, 1 listing each problem.",
    )
    v.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    v.add_argument(
        "--data-dir", metavar="DIR", help="raw zone and partition locks (default: data/ in the project folder)"
    )
    return v


def run(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.verify import verify

    root, settings = zones(args.data_dir, args.catalog)
    raw = f"{settings.data_dir}/raw" if isinstance(settings.data_dir, str) else settings.raw_dir
    print(f"verifying {root} and the raw zone {raw}")
    if isinstance(root, str) or isinstance(settings.data_dir, str):  # zones in object storage
        from hedgegrid_assets.object_zones import verify as verify_objects

        report = verify_objects(
            settings.model_copy(update={"catalog_dir": root}), say=lambda line: print(f"  {line}", flush=True)
        )
    else:
        report = verify(root, settings.raw_dir, settings.locks_dir, say=lambda line: print(f"  {line}", flush=True),
                        staging_dir=settings.staging_dir)  # fmt: skip
    for line in report.busy:
        print(f"  skipped: {line}")
    print(
        f"  {report.catalog_files} catalog file(s), {report.catalog_rows:,} rows"
        f"{f', {report.compared} equal to their validated frame, value for value' if report.compared else ''}; "
        f"{report.raw_files} raw file(s), {report.raw_bytes:,} bytes hashed"
    )
    for line in report.notes:
        print(f"  note: {line}")
    if report.problems:
        print(f"{len(report.problems)} problem(s):", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("ok: every partition is whole and every raw file is as landed")
    return 0
