"""The printed summary of a backtest and its equity-curve picture (PNG, matplotlib's Agg canvas)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

from hedgegrid_assets.backtest.run import BacktestResult
from hedgegrid_assets.names import checked, inside


def _utc(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _money(value: Decimal, places: int = 8) -> str:
    return f"{value:+,.{places}f}"


def picture_path(out_dir: Path, result: BacktestResult) -> Path:
    """`<out_dir>/<SYMBOL>_<start>_<end>.png` (end exclusive), proven inside `out_dir`."""
    name = f"{checked('symbol', result.symbol)}_{result.start.isoformat()}_{result.end.isoformat()}.png"
    return inside(out_dir, Path(out_dir) / name)


def save_equity_curve(result: BacktestResult, out_dir: Path) -> Path:
    """Equity (balance + open position at the mark) and balance over time, funding settlements
    marked, the net position below; written whole (temporary file renamed over the target)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = picture_path(out_dir, result)
    times = [dt.datetime.fromtimestamp(s.ts / 1e9, dt.UTC) for s in result.equity]
    fig = Figure(figsize=(11, 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(
        times,
        [float(s.equity) for s in result.equity],
        lw=1.2,
        color="tab:blue",
        label="equity (balance + position at mark)",
    )
    top.plot(
        times, [float(s.balance) for s in result.equity], lw=0.9, color="tab:gray", alpha=0.8, label="account balance"
    )
    top.axhline(float(result.starting_balance), color="black", lw=0.6, ls=":")
    for i, s in enumerate(result.funding):
        color = "tab:green" if s.payment > 0 else ("tab:red" if s.payment < 0 else "tab:gray")
        top.axvline(dt.datetime.fromtimestamp(s.settlement_ns / 1e9, dt.UTC), color=color, lw=0.7, ls="--", alpha=0.7,
                    label="funding settlement (green received, red paid)" if i == 0 else None)  # fmt: skip
    top.set_ylabel(result.currency)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    top.set_title(
        f"hedge grid {result.instrument_id}  {result.start} .. {result.end - dt.timedelta(days=1)}   net PnL "
        f"{float(result.net_pnl):+,.2f} {result.currency} (funding {float(result.funding_total):+,.2f}, fees "
        f"{float(-result.fees):,.2f}), {len(result.fills)} fills",
        fontsize=10,
    )
    bottom.step(times, [float(s.position_qty) for s in result.equity], where="post", lw=0.9, color="tab:purple")
    bottom.axhline(0, color="black", lw=0.6)
    bottom.set_ylabel(f"position ({result.symbol.removesuffix(result.currency)})")
    bottom.grid(alpha=0.3)
    bottom.set_xlabel("UTC")
    tmp = inside(out_dir, out_dir / f".{target.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def summary(result: BacktestResult) -> str:
    r = result
    cur = r.currency
    days = (r.end - r.start).days
    buys = [f for f in r.fills if f.side == "BUY"]
    sells = [f for f in r.fills if f.side == "SELL"]
    notional = sum((f.price * f.qty for f in r.fills), Decimal(0))
    volume = sum((f.qty for f in r.fills), Decimal(0))
    liquidity = sorted({f.liquidity for f in r.fills})
    orders = len({f.client_order_id for f in r.fills})
    received = [s for s in r.funding if s.payment > 0]
    paid = [s for s in r.funding if s.payment < 0]
    base = r.symbol.removesuffix(cur)
    step_ticks = (
        f" ({r.params.step_ticks} ticks)" if r.params.step_ticks else f" ({r.params.step_bps:g} bps of the first price)"
    )
    lines = [
        f"backtest {r.instrument_id}  {r.start} .. {r.end - dt.timedelta(days=1)} ({days} day(s); --end {r.end} exclusive)",
        f"  catalog: {r.catalog}",
        f"  data: {r.counts.get('trades', 0):,} trades, {r.counts.get('mark_prices', 0):,} mark prices, "
        f"{r.counts.get('funding_rates', 0):,} funding updates; days with trades {len(r.days_with_trades)} of {days}",
        f"  run time: {r.elapsed_s:.1f} s",
        f"  venue: BINANCE, {r.oms_type} OMS, margin account, starting balance {r.starting_balance:,} {cur}, "
        f"leverage {r.params.leverage:g}",
    ]
    if r.first_price is not None:
        lines.append(
            f"  grid: {r.params.levels} level(s) each side of the first price {r.first_price}, step {r.step}{step_ticks}, "
            f"order size {r.params.order_size} {base}; levels {min(r.grid.values())} .. {max(r.grid.values())}"
        )
    lines += [
        f"fills: {len(r.fills)} ({len(buys)} buys, {len(sells)} sells) from {orders} order(s); volume {volume} {base}, "
        f"notional {notional:,.2f} {cur}; liquidity {', '.join(liquidity) or '-'}",
        f"  realized PnL:   {_money(r.realized_pnl)} {cur}  (trading, before fees and funding)",
        f"  fees:           {_money(-r.fees)} {cur}",
        f"  funding:        {_money(r.funding_total)} {cur}  ({len(r.funding)} settlement(s): {len(received)} received, "
        f"{len(paid)} paid, {len(r.funding) - len(received) - len(paid)} flat; "
        + (
            "applied to the account balance)"
            if r.funding_applied_to_account
            else "NOT in the account balance, added here)"
        ),
        f"  unrealized PnL: {_money(r.unrealized_pnl)} {cur}  (position {r.final_position_qty} {base} at mark {r.final_mark})",
        f"  net PnL:        {_money(r.net_pnl)} {cur}  (realized - fees + funding + unrealized)",
        f"  final equity:   {r.final_equity:,.8f} {cur}  (balance {r.final_balance:,.8f} + unrealized)",
    ]
    if r.funding:
        lines.append("funding settlements (payment = -position x mark x rate; + received, - paid):")
        lines.append(
            f"  {'settlement (UTC)':<17}  {'rate':>11}  {'position':>10}  {'mark price':>16}  {'payment':>14}  updates"
        )
        for s in r.funding:
            lines.append(
                f"  {_utc(s.settlement_ns):<17}  {s.rate:>11}  {s.position_qty:>10}  {s.price:>16}  {_money(s.payment):>14}  "
                f"{s.updates}" + ("" if s.price_source == "mark" else f"  (price: {s.price_source})")
            )
    for note in r.notes:
        lines.append(f"note: {note}")
    if r.picture is not None:
        lines.append(f"equity curve: {r.picture}")
    return "\n".join(lines)
