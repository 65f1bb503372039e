"""A BacktestNode run of the hedge-grid strategy over one symbol's catalog range, and its results.

The range is whole UTC days [start, end) (end exclusive, as `hedgegrid build`). The node reads
the catalog's trade ticks (required), quote ticks, mark prices and funding updates of the range
(each when the catalog has it), on a BINANCE venue with a USDT margin account (NETTING or HEDGING OMS),
the instrument's own maker/taker fees (Nautilus's MakerTakerFeeModel), and funding settled by
`funding.py` into the account at every settlement in (start, end].
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

DAY_NS = 86_400 * 1_000_000_000


class BacktestError(Exception):
    """A problem with the arguments or the catalog, said in one line."""


@dataclass(frozen=True)
class GridParams:
    levels: int = 10
    step_bps: float = 20.0
    step_ticks: int | None = None
    order_size: str = "0.010"
    starting_balance: str = "100000"  # in the settlement currency (USDT)
    leverage: float = 10.0
    oms_type: str = "NETTING"  # or "HEDGING" (Binance's hedge mode)


@dataclass
class BacktestResult:
    symbol: str
    instrument_id: str
    catalog: Path | str  # a folder, or an s3:// URI
    start: dt.date
    end: dt.date  # exclusive
    params: GridParams
    oms_type: str
    currency: str
    first_price: Decimal | None
    step: Decimal | None
    grid: dict[int, Decimal]  # level index -> price
    fills: list  # strategy.Fill
    fees: Decimal
    realized_pnl: Decimal  # trading PnL of closed quantity, before fees and funding
    unrealized_pnl: Decimal  # the open position marked to the last mark price
    funding: list  # funding.FundingSettlement
    funding_total: Decimal  # + received, - paid
    funding_applied_to_account: bool
    starting_balance: Decimal
    final_balance: Decimal
    final_position_qty: Decimal
    final_mark: Decimal | None
    equity: list  # strategy.EquitySample
    counts: dict[str, int]  # records read per kind
    days_with_trades: list[dt.date]
    elapsed_s: float
    picture: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def net_pnl(self) -> Decimal:
        """realized - fees + funding + unrealized = final equity - starting balance."""
        return self.realized_pnl - self.fees + self.funding_total + self.unrealized_pnl

    @property
    def final_equity(self) -> Decimal:
        return self.final_balance + self.unrealized_pnl


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _build_hint(symbol: str, start: dt.date, end: dt.date, catalog: Path) -> str:
    return f"build it first with hedgegrid build --symbol {symbol} --start {start} --end {end} --catalog {catalog}"


def _overlapping_days(intervals: list[tuple[int, int]], start_ns: int, end_ns: int) -> list[dt.date]:
    days = set()
    for lo, hi in intervals:
        lo, hi = max(lo, start_ns), min(hi, end_ns - 1)
        for d in range(lo // DAY_NS, hi // DAY_NS + 1) if lo <= hi else ():
            days.add(dt.date(1970, 1, 1) + dt.timedelta(days=d))
    return sorted(days)


def run_backtest(
    catalog: Path | str,
    symbol: str,
    start: dt.date,
    end: dt.date,
    params: GridParams = GridParams(),
    venue: str = "BINANCE",
    say=None,
) -> BacktestResult:
    """Run the backtest; `say` (e.g. print) hears one line once the arguments and catalog are checked."""
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.config import (
        BacktestDataConfig,
        BacktestEngineConfig,
        BacktestRunConfig,
        BacktestVenueConfig,
        ImportableStrategyConfig,
        LoggingConfig,
    )
    from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate, QuoteTick, TradeTick
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from hedgegrid_assets.backtest.funding import FundingSettlementClock, settlement_configs
    from hedgegrid_assets.backtest.strategy import HedgeGridStrategy
    from hedgegrid_assets.names import checked
    from hedgegrid_assets.storage import S3Zone, is_object_uri, nautilus_catalog_args

    checked("symbol", symbol)
    checked("venue", venue)
    if params.oms_type not in ("NETTING", "HEDGING"):
        raise BacktestError(f"OMS type {params.oms_type!r}: NETTING or HEDGING")
    if end <= start:
        raise BacktestError(
            f"--end {end} must be after --start {start} (end is exclusive: --end {start + dt.timedelta(days=1)} for one day)"
        )
    if is_object_uri(catalog):  # s3://bucket/prefix: opened as Nautilus 1.231 can (storage.py)
        opened = nautilus_catalog_args(str(catalog))
        if not S3Zone(str(catalog)).exists("data"):
            raise BacktestError(
                f"{catalog}: not a catalog (no data/ under it): {_build_hint(symbol, start, end, catalog)}"
            )
    else:
        catalog = Path(catalog)
        opened = {"path": str(catalog)}
        if not (catalog / "data").is_dir():
            raise BacktestError(
                f"{catalog}: not a catalog (no data/ folder): {_build_hint(symbol, start, end, catalog)}"
            )
    instrument_id = f"{symbol}-PERP.{venue}"
    cat = ParquetDataCatalog(**opened)
    instruments = cat.instruments(instrument_ids=[instrument_id])
    if not instruments:
        known = sorted(str(i.id.symbol).removesuffix("-PERP") for i in cat.instruments())
        raise BacktestError(
            f"unknown symbol {symbol}: {catalog} has no instrument {instrument_id} (it has: {', '.join(known) or 'none'}); "
            + _build_hint(symbol, start, end, catalog)
        )
    instrument = instruments[0]
    step = instrument.size_increment.as_decimal()
    if Decimal(params.order_size) % step != 0:
        raise BacktestError(f"--size {params.order_size}: not a multiple of {symbol}'s size step {step}")
    start_ns, end_ns = _ns(start), _ns(end)
    kinds = {
        "trades": TradeTick,
        "quotes": QuoteTick,
        "mark_prices": MarkPriceUpdate,
        "funding_rates": FundingRateUpdate,
    }
    days = {
        name: _overlapping_days(cat.get_intervals(cls, instrument_id), start_ns, end_ns) for name, cls in kinds.items()
    }
    if not days["trades"]:
        raise BacktestError(
            f"no trades for {symbol} between {start} and {end} (end exclusive) in {catalog}: "
            + _build_hint(symbol, start, end, catalog)
        )
    present = [name for name in kinds if days[name]]
    notes = []
    every = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    missing = [d for d in every if d not in days["trades"]]
    if missing:
        notes.append(
            f"{len(missing)} day(s) of the range have no trades in the catalog: {', '.join(map(str, missing[:10]))}"
        )
    if not days["funding_rates"]:
        notes.append("no funding updates in the range: no funding settled")
    elif not days["mark_prices"]:
        notes.append("no mark prices in the range: funding settled at the last trade price")

    currency = instrument.get_settlement_currency().code
    strategy_config = {
        "instrument_id": instrument_id,
        "levels": params.levels,
        "step_bps": params.step_bps,
        "step_ticks": params.step_ticks,
        "order_size": params.order_size,
        "use_quotes": "quotes" in present,
        "hedging": params.oms_type == "HEDGING",
    }
    funding_module, funding_clock = settlement_configs(instrument_id, end_ns)
    config = BacktestRunConfig(
        venues=[
            BacktestVenueConfig(
                name=venue,
                oms_type=params.oms_type,
                account_type="MARGIN",
                base_currency=currency,
                starting_balances=[f"{params.starting_balance} {currency}"],
                default_leverage=params.leverage,
                modules=[funding_module],
            )
        ],
        data=[
            BacktestDataConfig(
                catalog_path=opened["path"],
                catalog_fs_protocol=opened.get("fs_protocol"),
                catalog_fs_storage_options=opened.get("fs_storage_options"),
                catalog_fs_rust_storage_options=opened.get("fs_rust_storage_options"),
                data_cls=f"{kinds[name].__module__}:{kinds[name].__name__}",
                instrument_id=instrument_id,
                start_time=start_ns,
                end_time=end_ns - 1,
            )
            for name in present
        ],
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            strategies=[
                ImportableStrategyConfig(
                    strategy_path="hedgegrid_assets.backtest.strategy:HedgeGridStrategy",
                    config_path="hedgegrid_assets.backtest.strategy:HedgeGridConfig",
                    config=strategy_config,
                )
            ],
            actors=[funding_clock],
        ),
        # The run reaches `end` itself, so a settlement on the range's last instant (the next
        # day's 00:00) is settled; data stops 1 ns before it.
        start=start_ns,
        end=end_ns,
        raise_exception=True,
        dispose_on_completion=False,  # keep the engine (strategy and account) to read the results
    )
    if say is not None:
        say(f"backtesting {instrument_id} {start} .. {end - dt.timedelta(days=1)} from {catalog} "
            f"({', '.join(present)}; {len(days['trades'])} day(s) with trades) ...")  # fmt: skip
    t0 = time.perf_counter()
    node = BacktestNode(configs=[config])
    try:
        node.run()
        engine = node.get_engine(config.id)
        (strategy,) = [s for s in engine.trader.strategies() if isinstance(s, HedgeGridStrategy)]
        (clock,) = [a for a in engine.trader.actors() if isinstance(a, FundingSettlementClock)]
        account = engine.portfolio.account(Venue(venue))
        cur = instrument.get_settlement_currency()
        final_balance = account.balance_total(cur).as_decimal()
        last = strategy.equity[-1] if strategy.equity else None
        counts = {
            "trades": strategy.trades_seen,
            "mark_prices": strategy.marks_seen,
            "funding_rates": clock.updates_seen,
        }
        funding = sorted(clock.settlements, key=lambda s: s.settlement_ns)
        fills = list(strategy.fills)
        grid = {k: p.as_decimal() for k, p in strategy.prices.items()}
        first_price = strategy.p0.as_decimal() if strategy.p0 is not None else None
        step = strategy.step
        if clock.updates_late:
            notes.append(f"{clock.updates_late} funding update(s) announced a settlement already past")
    finally:
        node.dispose()
    elapsed = time.perf_counter() - t0
    if counts["trades"] == 0:
        raise BacktestError(
            f"no trades for {symbol} between {start} and {end} (end exclusive) in {catalog} (its files hold no rows): "
            + _build_hint(symbol, start, end, catalog)
        )
    starting = Decimal(params.starting_balance)
    fees = sum((f.commission for f in fills), Decimal(0))
    funding_total = sum((s.payment for s in funding), Decimal(0))
    # The margin account's balance moves by realized PnL, fees and the funding applied to it.
    realized = final_balance - starting + fees - sum((s.payment for s in funding if s.applied_to_account), Decimal(0))
    return BacktestResult(
        symbol=symbol,
        instrument_id=instrument_id,
        catalog=catalog,
        start=start,
        end=end,
        params=params,
        oms_type=params.oms_type,
        currency=currency,
        first_price=first_price,
        step=step,
        grid=grid,
        fills=fills,
        fees=fees,
        realized_pnl=realized,
        unrealized_pnl=last.unrealized if last else Decimal(0),
        funding=funding,
        funding_total=funding_total,
        funding_applied_to_account=all(s.applied_to_account or s.payment == 0 for s in funding),
        starting_balance=starting,
        final_balance=final_balance,
        final_position_qty=last.position_qty if last else Decimal(0),
        final_mark=last.mark if last else None,
        equity=list(strategy.equity),
        counts=counts,
        days_with_trades=days["trades"],
        elapsed_s=elapsed,
        notes=notes,
    )
