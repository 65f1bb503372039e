"""`hedgegrid catalog upgrade|repair|migrate`: look after an existing catalog."""

from __future__ import annotations

import argparse

from hedgegrid_assets.cli.common import UsageError, zones


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser(
        "catalog", help="look after an existing catalog (repair, upgrade its format, migrate it to NautilusTrader 2.0)"
    )
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
    m = csub.add_parser(
        "migrate",
        help="copy a NautilusTrader 1.x catalog into a new NautilusTrader 2.0 catalog, verified",
        description="Migrate the 1.x catalog at SRC (ours or anyone's; only read) into a new NautilusTrader 2.0 "
        "catalog at DST through 2.0's own migration (in the 2.0 environment `make install` builds), then "
        "check every kind: the same record counts as 1.231 reads, and the records at both ends of the time "
        "range identical. DST appears only once verified; it must be new or empty.",
    )
    m.add_argument("src", metavar="SRC", help="the 1.x catalog root (the folder holding data/)")
    m.add_argument("dst", metavar="DST", help="a new or empty folder for the 2.0 catalog")
    return c


def run(args: argparse.Namespace) -> int:
    if args.catalog_command == "repair":
        return repair_catalog(args)
    if args.catalog_command == "migrate":
        return migrate_catalog(args)
    return upgrade_catalog(args)


def migrate_catalog(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.migrate import MigrateError, migrate

    try:
        done = migrate(args.src, args.dst, say=lambda line: print(line, flush=True))
    except MigrateError as err:
        raise UsageError(str(err)) from None
    for note in done.notes:
        print(f"  note: {note}")
    print(
        f"{done.dst}: a NautilusTrader 2.0 catalog, {done.files} file(s), {sum(done.counts.values()):,} records in "
        f"{len(done.counts)} kind(s), each count equal to 1.231's and {sum(done.sampled.values()):,} records compared "
        "value for value; read it with nautilus_trader 2.0's ParquetDataCatalog"
    )
    return 0


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


def repair_catalog(args: argparse.Namespace) -> int:
    from hedgegrid_assets.catalog.verify import repair

    root, settings = zones(args.data_dir, args.path)
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
    print(
        f"{root}: {len(report.recovered)} interrupted commit(s) recovered, {len(report.removed)} temporary file(s) removed"
        + ("" if done else " (nothing to repair)")
    )
    return 0
