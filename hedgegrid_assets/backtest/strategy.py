"""A small hedge-grid strategy for Binance USDT-M perpetuals.

Around the first traded price P0 it lays `levels` levels on each side, `step` apart (a whole
number of ticks: `step_ticks`, or `step_bps` of P0 rounded to ticks), so every level is on the
instrument's tick grid: L(k) = P0 + k * step, k = -levels..-1, 1..levels.

- Long grid (below P0): level k buys `order_size` at L(k); once filled it sells that size at
  the level above, L(k+1); once that fills, the level re-arms its buy.
- Short grid (above P0): level k sells at L(k); once filled it buys back at L(k-1); then
  re-arms its sell.

Every order is a post-only GTC limit, so it rests on the book and fills at its own price as a
maker. An order that would cross the book when placed (the market jumped past it) waits and is
placed as soon as it would rest again (`waiting`).

The venue runs NETTING (Binance's one-way mode: one net position, the long and short grids
are this strategy's own bookkeeping) or, with `hedging`, HEDGING (Binance's hedge mode): each
level's entry opens its own position and its exit, which carries that position id, closes it.
NautilusTrader 1.231's BacktestVenueConfig runs both; fills, funding and net PnL come out the
same (funding depends only on the net position), realized and unrealized PnL split differently
(net average cost vs per level).

It also samples the equity every `equity_interval_secs` (account balance + the open position
marked to the last mark price) and keeps every fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pandas as pd
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import MarkPriceUpdate, QuoteTick, TradeTick
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class HedgeGridConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    levels: int = 10
    step_ticks: int | None = None  # wins over step_bps when given
    step_bps: float = 20.0
    order_size: str = "0.010"
    equity_interval_secs: int = 60
    use_quotes: bool = True  # whether quotes are in the data (decides how "would cross" is judged)
    hedging: bool = False  # the venue runs HEDGING: each level's cycle is its own position


@dataclass(frozen=True)
class Fill:
    ts_event: int
    side: str  # BUY | SELL
    price: Decimal
    qty: Decimal
    level: int  # grid level index k
    leg: str  # "long entry" | "long exit" | "short entry" | "short exit"
    liquidity: str  # MAKER | TAKER
    commission: Decimal
    commission_currency: str
    client_order_id: str


@dataclass(frozen=True)
class EquitySample:
    ts: int
    balance: Decimal  # account total (settlement currency): starting balance + realized PnL - fees + funding
    unrealized: Decimal  # open position marked to the last mark price
    position_qty: Decimal
    mark: Decimal | None

    @property
    def equity(self) -> Decimal:
        return self.balance + self.unrealized


class HedgeGridStrategy(Strategy):
    def __init__(self, config: HedgeGridConfig) -> None:
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.instrument = None
        self.p0 = None  # first traded price (Price)
        self.step = None  # Decimal, in price units (a whole number of ticks)
        self.prices: dict[int, object] = {}  # k -> Price of level k (k = 0 is P0)
        self.level_state: dict[int, str] = {}  # k -> "entry" | "exit": which of its orders is working or waiting
        self.order_level: dict[str, int] = {}  # client order id -> k
        self.level_position: dict[int, object] = {}  # HEDGING: k -> the PositionId its entry opened
        self.waiting: set[int] = set()  # levels whose order would cross the book: placed when it would rest
        self.fills: list[Fill] = []
        self.equity: list[EquitySample] = []
        self.trades_seen = 0
        self.marks_seen = 0
        self.rejected_post_only = 0

    # -- set-up -----------------------------------------------------------------------------

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.instrument is None:
            raise RuntimeError(f"no instrument {self.instrument_id} in the cache")
        self.size = self.instrument.make_qty(Decimal(self.config.order_size))
        self.subscribe_trade_ticks(self.instrument_id)
        if self.config.use_quotes:
            self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_mark_prices(self.instrument_id)

    def _lay_grid(self, first) -> None:
        tick = self.instrument.price_increment.as_decimal()
        self.p0 = first
        p0 = first.as_decimal()
        if self.config.step_ticks:
            ticks = int(self.config.step_ticks)
        else:
            ticks = max(1, round(p0 * Decimal(str(self.config.step_bps)) / Decimal(10_000) / tick))
        self.step = ticks * tick
        n = int(self.config.levels)
        for k in range(-n, n + 1):
            price = p0 + k * self.step
            if price > 0:
                self.prices[k] = self.instrument.make_price(price)
        for k in self.prices:
            if k != 0:
                self.level_state[k] = "entry"
                self._place(k)
        start = pd.Timestamp(self.clock.timestamp_ns(), unit="ns", tz="UTC").floor("min")
        self.clock.set_timer(
            "equity", timedelta(seconds=self.config.equity_interval_secs), start_time=start.to_pydatetime(),
            callback=lambda event: self._sample(event.ts_event),
        )  # fmt: skip
        self._sample(self.clock.timestamp_ns())

    # -- orders -----------------------------------------------------------------------------

    def _order_for(self, k: int) -> tuple[OrderSide, object, str]:
        """The side, price and leg of level k's working order in its current state."""
        entry = self.level_state[k] == "entry"
        if k < 0:  # long grid
            return (
                (OrderSide.BUY, self.prices[k], "long entry")
                if entry
                else (OrderSide.SELL, self.prices[k + 1], "long exit")
            )
        return (
            (OrderSide.SELL, self.prices[k], "short entry")
            if entry
            else (OrderSide.BUY, self.prices[k - 1], "short exit")
        )

    def _would_cross(self, side: OrderSide, price) -> bool:
        quote = self.cache.quote_tick(self.instrument_id) if self.config.use_quotes else None
        if quote is not None:
            return price >= quote.ask_price if side == OrderSide.BUY else price <= quote.bid_price
        trade = self.cache.trade_tick(self.instrument_id)
        if trade is None:
            return False
        return price >= trade.price if side == OrderSide.BUY else price <= trade.price

    def _place(self, k: int) -> None:
        side, price, _ = self._order_for(k)
        if self._would_cross(side, price):
            self.waiting.add(k)
            return
        self.waiting.discard(k)
        order = self.order_factory.limit(
            self.instrument_id, side, self.size, price, time_in_force=TimeInForce.GTC, post_only=True
        )
        self.order_level[order.client_order_id.value] = k
        # HEDGING: an exit closes the position its level's entry opened; an entry opens a new one.
        position_id = self.level_position.get(k) if self.config.hedging and self.level_state[k] == "exit" else None
        self.submit_order(order, position_id=position_id)

    def _retry_waiting(self) -> None:
        for k in sorted(self.waiting):
            side, price, _ = self._order_for(k)
            if not self._would_cross(side, price):
                self._place(k)

    # -- data -------------------------------------------------------------------------------

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.trades_seen += 1
        if self.p0 is None:
            self._lay_grid(tick.price)
        elif self.waiting:
            self._retry_waiting()

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self.p0 is not None and self.waiting:
            self._retry_waiting()

    def on_mark_price(self, mark: MarkPriceUpdate) -> None:
        self.marks_seen += 1

    # -- events -----------------------------------------------------------------------------

    def on_order_filled(self, event) -> None:
        k = self.order_level.get(event.client_order_id.value)
        if k is None:
            return
        _, _, leg = self._order_for(k)
        self.fills.append(
            Fill(
                ts_event=int(event.ts_event),
                side="BUY" if event.order_side == OrderSide.BUY else "SELL",
                price=event.last_px.as_decimal(),
                qty=event.last_qty.as_decimal(),
                level=k,
                leg=leg,
                liquidity=event.liquidity_side.name,
                commission=event.commission.as_decimal(),
                commission_currency=event.commission.currency.code,
                client_order_id=event.client_order_id.value,
            )
        )
        if self.level_state[k] == "entry" and event.position_id is not None:
            self.level_position[k] = event.position_id
        order = self.cache.order(event.client_order_id)
        if order is not None and order.is_closed:  # fully filled: the level flips and re-arms
            self.level_state[k] = "exit" if self.level_state[k] == "entry" else "entry"
            self._place(k)

    def on_order_rejected(self, event) -> None:
        self._requeue(event)

    def on_order_canceled(self, event) -> None:
        if self.is_running:  # not our own cancel at stop: the venue refused to rest it
            self._requeue(event)

    def _requeue(self, event) -> None:
        k = self.order_level.pop(event.client_order_id.value, None)
        if k is not None:
            self.rejected_post_only += 1
            self.waiting.add(k)

    # -- equity -----------------------------------------------------------------------------

    def _sample(self, ts: int) -> None:
        account = self.portfolio.account(self.instrument_id.venue)
        if account is None:
            return
        currency = self.instrument.get_settlement_currency()
        balance = account.balance_total(currency).as_decimal()
        mark = self.cache.mark_price(self.instrument_id)
        trade = self.cache.trade_tick(self.instrument_id)
        price = mark.value if mark is not None else (trade.price if trade is not None else None)
        qty = Decimal(0)
        unrealized = Decimal(0)
        for position in self.cache.positions_open(instrument_id=self.instrument_id):
            qty += position.signed_decimal_qty()
            if price is not None:
                px = price.as_decimal()
                unrealized += position.signed_decimal_qty() * (px - Decimal(str(position.avg_px_open)))
        self.equity.append(
            EquitySample(int(ts), balance, unrealized, qty, price.as_decimal() if price is not None else None)
        )

    def on_stop(self) -> None:
        if self.p0 is not None:
            self._sample(self.clock.timestamp_ns())
        self.cancel_all_orders(self.instrument_id)
