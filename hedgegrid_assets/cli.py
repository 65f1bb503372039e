"""`hedgegrid`: build catalog partitions through Dagster from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import get_args

from hedgegrid_assets.backtest.cli import add_parser as add_backtest_parser, run as backtest
from hedgegrid_assets.frames import KINDS_BY_CLI_NAME, DataKind
from hedgegrid_assets.settings import SourceName

EPILOG = """examples:
  hedgegrid build --symbol BTCUSDT --start 2024-01-01 --end 2024-01-03
  hedgegrid build --source sample --symbol BTCUSDT --symbol ETHUSDT --start 2024-01-01 --end 2024-01-02 --data-types trades,funding
  hedgegrid status
  hedgegrid verify
  hedgegrid catalog repair data/catalog
  hedgegrid catalog upgrade data/catalog

Settings not given as flags come from HEDGEGRID_* environment variables and hedgegrid.toml
(see README). Runs are recorded in the Dagster instance at $DAGSTER_HOME when it is set.
"""


class UsageError(Exception):
    pass


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hedgegrid",
        description="Turn market data into a NautilusTrader Parquet catalog, one date|symbol partition at a time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser(
        "build",
        help="materialize raw -> validated frames -> catalog for every date|symbol in a range",
        description="Materialize the asset chain (checks included) for every date in [start, end) and every symbol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--source", choices=list(get_args(SourceName)), help="where raw data comes from (default: settings, i.e. sample)")
    b.add_argument("--symbol", action="append", dest="symbols", metavar="SYMBOL", help="Binance USDT-M symbol, repeatable (default: settings' symbols)")
    b.add_argument("--start", type=_date, required=True, help="first UTC day, YYYY-MM-DD (inclusive)")
    b.add_argument("--end", type=_date, required=True, help="last UTC day, YYYY-MM-DD (exclusive)")
    b.add_argument("--data-types", type=_kinds, default=list(KINDS_BY_CLI_NAME.values()), metavar="LIST",
                   help=f"comma-separated kinds to build: {','.join(KINDS_BY_CLI_NAME)} (default: all)")
    b.add_argument("--config", metavar="FILE", help="source config file (csv/jsonl sources)")
    b.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    b.add_argument("--data-dir", metavar="DIR", help="raw and staging zones (default: data/ in the project folder)")
    b.add_argument("--allow-empty", action="store_true", default=None,
                   help="accept an input with no rows for a kind and write the day as empty (default: such a partition fails)")
    b.add_argument("--jobs", type=_jobs, default=os.cpu_count() or 1, metavar="N",
                   help="partitions built at once, each in its own worker process (default: the machine's cores, "
                   f"{os.cpu_count() or 1}; 1 = one after another in this process)")
    b.add_argument("--no-progress", action="store_true",
                   help="no progress bars, only the per-partition lines (bars are drawn only when stdout is a terminal)")
    c = sub.add_parser("catalog", help="look after an existing catalog (repair, upgrade its format)")
    csub = c.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    u = csub.add_parser(
        "upgrade",
        help="rewrite a catalog built by an earlier hedgegrid into the current format, in place",
        description="Rewrite, in place and file by file (atomic, resumable), a catalog built by an earlier "
        "hedgegrid into the format this one writes (funding rates in Nautilus's own schema).",
    )
    u.add_argument("path", metavar="PATH", help="the catalog root (the folder holding data/)")
    r = csub.add_parser(
        "repair",
        help="finish or undo interrupted commits and remove what dead writers left",
        description="Recover every partition whose commit was interrupted (each ends whole: the old "
        "files or the new ones), skipping partitions a live build holds, and remove temporary files "
        "dead writers left. Safe to run at any time.",
    )
    r.add_argument("path", metavar="PATH", help="the catalog root (the folder holding data/)")
    r.add_argument("--data-dir", metavar="DIR", help="whose partition locks to respect (default: settings' data_dir)")
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
    v = sub.add_parser(
        "verify",
        help="recover interrupted commits, then check every catalog file and raw landing",
        description="First recover interrupted commits (as catalog repair does), then read every catalog "
        "file (footer, schema, timestamps inside its day) and every raw landing against its manifest "
        "(sizes and sha256). Exit 0 when all is well, 1 listing each problem.",
    )
    v.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    v.add_argument("--data-dir", metavar="DIR", help="raw zone and partition locks (default: data/ in the project folder)")
    add_backtest_parser(sub)
    return top


def _settings(args: argparse.Namespace):
    from pydantic import ValidationError

    from hedgegrid_assets.instruments import UnknownSymbolError, instrument_for
    from hedgegrid_assets.settings import Settings

    overrides: dict = {}
    symbols = list(dict.fromkeys(args.symbols)) if args.symbols else None  # each once: a partition is built once
    for field, value in (("source", args.source), ("symbols", symbols), ("source_config", args.config),
                         ("catalog_dir", args.catalog), ("data_dir", args.data_dir), ("allow_empty", args.allow_empty)):
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


def build(args: argparse.Namespace) -> int:
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
    print("read it with nautilus_trader alone: ParquetDataCatalog(path).trade_ticks(), .quote_ticks(), .bars(), "
          ".funding_rates(), .instruments()")


def upgrade_catalog(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hedgegrid_assets.catalog.provenance import FORMAT
    from hedgegrid_assets.catalog.upgrade import UpgradeError, upgrade
    from hedgegrid_assets.settings import Settings

    root = Path(args.path)
    try:
        report = upgrade(root, Settings(), progress=lambda line: print(f"  rewrote {line}", flush=True))
    except UpgradeError as err:
        raise UsageError(str(err)) from None
    done = len(report.funding_files) + len(report.instrument_files)
    before = "no format recorded" if report.format_before is None else f"format {report.format_before}"
    if report.stale_temporaries:
        print(f"  removed {report.stale_temporaries} temporary file(s) left by an interrupted upgrade")
    print(
        f"{root}: {before} -> format {FORMAT}; rewrote {len(report.funding_files)} funding file(s) and "
        f"{len(report.instrument_files)} instrument file(s)" + ("" if done else " (already current)")
    )
    return 0


def _zones(data_dir: str | None, catalog: str | None):
    from pathlib import Path

    from hedgegrid_assets.settings import Settings

    from hedgegrid_assets.storage import is_object_uri

    settings = Settings(**({"data_dir": data_dir} if data_dir else {}))  # a folder or s3://
    if catalog and is_object_uri(catalog):
        return catalog, settings.model_copy(update={"catalog_dir": catalog})
    return (Path(catalog) if catalog else settings.catalog_path), settings


def verify_catalog(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.verify import verify

    root, settings = _zones(args.data_dir, args.catalog)
    raw = f"{settings.data_dir}/raw" if isinstance(settings.data_dir, str) else settings.raw_dir
    print(f"verifying {root} and the raw zone {raw}")
    if isinstance(root, str) or isinstance(settings.data_dir, str):  # zones in object storage
        from hedgegrid_assets.object_zones import verify as verify_objects

        report = verify_objects(settings.model_copy(update={"catalog_dir": root}), say=lambda line: print(f"  {line}", flush=True))
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


def catalog_status(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.status import failed_check_results, read

    root, settings = _zones(args.data_dir, args.catalog)
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
        print(f"\n{symbol}: {len(days)} day(s) missing in its range: {', '.join(map(str, days[:10]))}{' ...' if len(days) > 10 else ''}")
    failed = []
    if os.environ.get("DAGSTER_HOME"):
        from dagster import DagsterInstance

        from hedgegrid_assets.definitions import build_definitions

        defs = build_definitions(settings)
        checks = sorted(defs.resolve_asset_graph().asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
        failed = failed_check_results(DagsterInstance.get(), checks)
        print(f"\nfailed checks (latest per partition): {len(failed)}")
        for f in failed:
            print(f"  {f.line()}")
    if args.picture:
        from hedgegrid_assets.catalog.status import write_picture

        print(f"\npicture: {write_picture(args.picture, status, failed)}")
    return 0


def repair_catalog(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.verify import repair

    root, settings = _zones(args.data_dir, args.path)
    if isinstance(root, str) or isinstance(settings.data_dir, str):  # zones in object storage
        from hedgegrid_assets.object_zones import verify as verify_objects

        say = lambda line: print(f"  {line}", flush=True)  # noqa: E731
        report = verify_objects(settings.model_copy(update={"catalog_dir": root}), repair_only=True, say=say)
    elif not root.is_dir():
        raise UsageError(f"{root}: no such catalog folder")
    else:
        report = repair(root, settings.locks_dir, say=lambda line: print(f"  {line}", flush=True))
    for line in report.busy:
        print(f"  skipped: {line}")
    done = len(report.recovered) + len(report.removed)
    print(f"{root}: {len(report.recovered)} interrupted commit(s) recovered, {len(report.removed)} temporary file(s) removed"
          + ("" if done else " (nothing to repair)"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            return build(args)
        if args.command == "backtest":
            return backtest(args)
        if args.command == "verify":
            return verify_catalog(args)
        if args.command == "status":
            return catalog_status(args)
        if args.command == "catalog" and args.catalog_command == "repair":
            return repair_catalog(args)
        if args.command == "catalog":
            return upgrade_catalog(args)
    except UsageError as err:
        print(f"hedgegrid: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - one clear line, not a traceback
        print(f"hedgegrid: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
