"""`hedgegrid`: build catalog partitions through Dagster from the command line.

One module per subcommand, each with `add_parser(sub)` and `run(args)`; they import the
library, never the reverse. Building the parser imports the data kinds (for `--data-types`),
nothing of Dagster; each subcommand imports the rest of what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hedgegrid_assets.cli import backtest, build, catalog, status, verify
from hedgegrid_assets.cli.common import UsageError

EPILOG = """examples:
  hedgegrid build --symbol BTCUSDT --start 2024-01-01 --end 2024-01-03
  hedgegrid build --source sample --symbol BTCUSDT --symbol ETHUSDT --start 2024-01-01 --end 2024-01-02 --data-types trades,funding
  hedgegrid status
  hedgegrid verify
  hedgegrid catalog repair data/catalog
  hedgegrid catalog upgrade data/catalog

Settings not given as flags come from HEDGEGRID_* environment variables and hedgegrid.toml
(see docs/settings.md). Runs are recorded in the Dagster instance at $DAGSTER_HOME when it is set.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hedgegrid",
        description="Turn market data into a NautilusTrader Parquet catalog, one date|symbol partition at a time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build.add_parser(sub, EPILOG)
    catalog.add_parser(sub)
    status.add_parser(sub)
    verify.add_parser(sub)
    backtest.add_parser(sub)
    return top


COMMANDS = {
    "build": build.run,
    "backtest": backtest.run,
    "verify": verify.run,
    "status": status.run,
    "catalog": catalog.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(f"hedgegrid: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        print(f"hedgegrid: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
