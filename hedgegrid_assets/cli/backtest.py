"""`hedgegrid backtest`: a BacktestNode of the built-in hedge grid over a catalog range (backtest/)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from hedgegrid_assets.cli.common import UsageError, parse_date, zones

DESCRIPTION = """Run a NautilusTrader BacktestNode over the catalog's days [start, end) of one symbol with the
built-in hedge-grid strategy (levels on the tick grid around the first traded price; the long
grid buys below and sells one level up, the short grid sells above and buys one level down;
filled levels re-arm). Prints fills, realized and unrealized PnL, fees, and the funding paid or
received at every settlement (settled from the position and the mark price, once per
settlement, into the account), and saves an equity-curve PNG."""

EXAMPLE = """example:
  hedgegrid backtest --symbol BTCUSDT --start 2024-01-01 --end 2024-01-04
  hedgegrid backtest --symbol ETHUSDT --start 2024-01-01 --end 2024-01-02 --levels 5 --step-ticks 200 --size 0.1
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "backtest",
        help="backtest a small hedge-grid strategy over a catalog range (fills, PnL, fees, funding, equity PNG)",
        description=DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--symbol", required=True, help="Binance USDT-M symbol in the catalog, e.g. BTCUSDT")
    p.add_argument("--start", type=parse_date, required=True, help="first UTC day, YYYY-MM-DD (inclusive)")
    p.add_argument("--end", type=parse_date, required=True, help="last UTC day, YYYY-MM-DD (exclusive, as in build)")
    p.add_argument("--catalog", metavar="DIR", help="Nautilus catalog root (default: <data-dir>/catalog)")
    p.add_argument("--data-dir", metavar="DIR", help="default: data/ in the project folder (settings' data_dir)")
    p.add_argument("--output", metavar="DIR", help="folder for the equity-curve PNG (default: <data-dir>/backtests)")
    p.add_argument("--levels", type=_positive_int, default=10, help="grid levels on each side (default 10)")
    p.add_argument(
        "--step-bps",
        type=_positive_float,
        default=20.0,
        help="level spacing in basis points of the first price, rounded to whole ticks (default 20)",
    )
    p.add_argument("--step-ticks", type=_positive_int, help="level spacing in ticks (overrides --step-bps)")
    p.add_argument("--size", default="0.010", help="order size per level in the base asset (default 0.010)")
    p.add_argument("--balance", default="100000", help="starting balance in USDT (default 100000)")
    p.add_argument(
        "--oms",
        choices=["NETTING", "HEDGING"],
        default="NETTING",
        help="venue OMS: NETTING (one-way mode, one net position) or HEDGING (hedge mode: each level's "
        "cycle is its own position) (default NETTING)",
    )
    p.add_argument("--leverage", type=_positive_float, default=10.0, help="account leverage (default 10)")
    return p


def run(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from hedgegrid_assets.backtest.report import save_equity_curve, summary
    from hedgegrid_assets.backtest.run import BacktestError, GridParams, run_backtest
    from hedgegrid_assets.names import UnsafeNameError, checked

    try:
        checked("symbol", args.symbol)
    except UnsafeNameError as err:
        raise UsageError(str(err)) from None
    for flag, text in (("--size", args.size), ("--balance", args.balance)):
        try:
            ok = Decimal(text) > 0
        except InvalidOperation:
            ok = False
        if not ok:
            raise UsageError(f"{flag} {text!r}: not a positive number")
    if args.end <= args.start:
        raise UsageError(f"--end {args.end} must be after --start {args.start} (end is exclusive: --end "
                         f"{args.start + dt.timedelta(days=1)} backtests one day)")  # fmt: skip
    catalog, settings = zones(args.data_dir, args.catalog)  # a folder, or an s3:// URI
    if args.output:
        out_dir = Path(args.output)
    elif isinstance(settings.data_dir, Path):
        out_dir = settings.data_dir / "backtests"
    else:
        raise UsageError(
            f"the data dir {settings.data_dir} is not a folder here: say where the picture goes with --output DIR"
        )
    params = GridParams(
        levels=args.levels, step_bps=args.step_bps, step_ticks=args.step_ticks, order_size=args.size,
        starting_balance=args.balance, leverage=args.leverage, oms_type=args.oms,
    )  # fmt: skip
    try:
        result = run_backtest(
            catalog,
            args.symbol,
            args.start,
            args.end,
            params,
            venue=settings.venue,
            say=lambda line: print(line, flush=True),
        )
    except BacktestError as err:
        raise UsageError(str(err)) from None
    result.picture = save_equity_curve(result, out_dir)
    print(summary(result))
    return 0
