"""`hedgegrid build`: materialize raw -> validated frames -> catalog for a range of partitions."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import get_args

from hedgegrid_assets.cli.common import UsageError, parse_date
from hedgegrid_assets.frames import KINDS_BY_CLI_NAME, DataKind
from hedgegrid_assets.settings import SourceName


def _kinds(text: str) -> list[DataKind]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in KINDS_BY_CLI_NAME]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown data type(s) {', '.join(unknown) or '(none)'}; choose from {','.join(KINDS_BY_CLI_NAME)}"
        )
    return [KINDS_BY_CLI_NAME[n] for n in names]


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a number of jobs (1 or more): {text!r}")
    return n


def add_parser(sub, epilog: str) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "build",
        help="materialize raw -> validated frames -> catalog for every date|symbol in a range",
        description="Materialize the asset chain (checks included) for every date in [start, end) and every symbol.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument(
        "--source",
        choices=list(get_args(SourceName)),
        help="where raw data comes from (default: settings, i.e. sample)",
    )
    b.add_argument(
        "--symbol",
        action="append",
        dest="symbols",
        metavar="SYMBOL",
        help="Binance USDT-M symbol, repeatable (default: settings' symbols)",
    )
    b.add_argument("--start", type=parse_date, required=True, help="first UTC day, YYYY-MM-DD (inclusive)")
    b.add_argument("--end", type=parse_date, required=True, help="last UTC day, YYYY-MM-DD (exclusive)")
    b.add_argument(
        "--data-types",
        type=_kinds,
        default=list(KINDS_BY_CLI_NAME.values()),
        metavar="LIST",
        help=f"comma-separated kinds to build: {','.join(KINDS_BY_CLI_NAME)} (default: all)",
    )
    b.add_argument("--config", metavar="FILE", help="source config file (csv/jsonl sources)")
    b.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    b.add_argument("--data-dir", metavar="DIR", help="raw and staging zones (default: data/ in the project folder)")
    b.add_argument(
        "--allow-empty",
        action="store_true",
        default=None,
        help="accept an input with no rows for a kind and write the day as empty (default: such a partition fails)",
    )
    b.add_argument(
        "--jobs",
        type=_jobs,
        default=os.cpu_count() or 1,
        metavar="N",
        help="partitions built at once, each in its own worker process (default: the machine's cores, "
        f"{os.cpu_count() or 1}; 1 = one after another in this process)",
    )
    b.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars, only the per-partition lines (bars are drawn only when stdout is a terminal)",
    )
    return b


def _settings(args: argparse.Namespace):
    from pydantic import ValidationError

    from hedgegrid_assets.instruments import UnknownSymbolError, instrument_for
    from hedgegrid_assets.settings import Settings

    overrides: dict = {}
    symbols = list(dict.fromkeys(args.symbols)) if args.symbols else None  # each once: a partition is built once
    for field, value in (
        ("source", args.source),
        ("symbols", symbols),
        ("source_config", args.config),
        ("catalog_dir", args.catalog),
        ("data_dir", args.data_dir),
        ("allow_empty", args.allow_empty),
    ):
        if value is not None:
            overrides[field] = value
    if args.data_dir is not None and args.catalog is None:
        overrides["catalog_dir"] = None
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        first = err.errors()[0]
        raise UsageError(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if args.end <= args.start:
        raise UsageError(f"--end {args.end} must be after --start {args.start} (end is exclusive)")
    today = dt.datetime.now(dt.UTC).date()
    if args.end > today:  # a day is a partition once it has closed (UTC)
        raise UsageError(
            f"--end {args.end}: {max(args.start, today)} has not closed yet (UTC); the last day to build is "
            f"{today - dt.timedelta(days=1)} (--end {today})"
        )
    for symbol in settings.symbols:
        try:
            instrument_for(symbol, settings)  # unknown symbols fail here, before any run
        except UnknownSymbolError as err:
            raise UsageError(str(err)) from None
    # No catalog data outside what the Dagster UI lists: its partitions are the settings' own
    # symbols (TOML, environment) from their start_date.
    listed = Settings()
    outside = [s for s in settings.symbols if s not in listed.symbols]
    if outside:
        raise UsageError(
            f"{', '.join(outside)} not among the settings' symbols ({', '.join(listed.symbols)}), so the Dagster UI "
            "would not list what this builds: add it to `symbols` in hedgegrid.toml (or HEDGEGRID_SYMBOLS) first"
        )
    if args.start < listed.start_date:
        raise UsageError(
            f"--start {args.start} is before start_date {listed.start_date}, where the UI's partitions begin: set "
            "start_date in hedgegrid.toml (or HEDGEGRID_START_DATE) to build earlier days"
        )
    from hedgegrid_assets.catalog.instance_binding import InstanceMismatch, bind

    if "://" not in str(settings.catalog_path):
        try:  # before any run: a build the UI's instance would misdescribe is refused
            bind(settings.catalog_path, os.environ.get("DAGSTER_HOME") or None)
        except InstanceMismatch as err:
            raise UsageError(str(err)) from None
    from hedgegrid_assets.catalog.provenance import IncompatibleCatalogError, check_writable
    from hedgegrid_assets.sources.registry import build_source

    try:
        build_source(settings)  # a missing or broken --config fails here, before any run
        check_writable(settings.catalog_path)  # as does a catalog of another format
    except (ValueError, IncompatibleCatalogError) as err:
        raise UsageError(str(err)) from None
    return settings


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)

    from hedgegrid_assets.build_runs import run_partitions, unique
    from hedgegrid_assets.partitions import partition_key

    kinds: list[DataKind] = args.data_types
    # Each partition once, however often a symbol was given; runs, output and summary in this order.
    keys = unique(partition_key(day, sym) for day in _days(args.start, args.end) for sym in settings.symbols)
    jobs = min(args.jobs, len(keys))
    print(f"building {len(keys)} partition(s) from source '{settings.source}' into {settings.catalog_path}"
          + (f", {jobs} at a time" if jobs > 1 else ""), flush=True)  # fmt: skip
    bars = sys.stdout.isatty() and not args.no_progress
    outcomes = run_partitions(settings, [k.name for k in kinds], keys, jobs, bars)
    rows = {o.key: o.counts for o in outcomes if o.ok}
    failures = [(o.key, o.reason) for o in outcomes if not o.ok]

    _summary(rows, kinds, settings)
    if failures:
        print(f"{len(failures)} of {len(keys)} partition(s) failed:", file=sys.stderr)
        for key, reason in failures:
            print(f"  {key}: {reason}", file=sys.stderr)
        return 1
    return 0


def _summary(rows: dict[str, dict[str, int]], kinds: list[DataKind], settings) -> None:
    if not rows:
        return
    names = [k.name for k in kinds if any(k.name in counts for counts in rows.values())]  # what the source offers
    width = max(len(k) for k in rows)
    print()
    print(f"{'partition':<{width}}  " + "  ".join(f"{n:>13}" for n in names))
    for key, counts in rows.items():
        print(f"{key:<{width}}  " + "  ".join(f"{counts[n]:>13,}" if n in counts else f"{'-':>13}" for n in names))
    print(f"\ncatalog: {settings.catalog_path}")
    print(
        "read it with nautilus_trader alone: ParquetDataCatalog(path).trade_ticks(), .quote_ticks(), .bars(), "
        ".funding_rates(), .instruments()"
    )
