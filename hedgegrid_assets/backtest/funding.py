"""Funding settlement for backtests on NautilusTrader 1.231's Python engine, which delivers
`FundingRateUpdate`s to strategies but settles no funding on positions.

At each settlement time S that the catalog's funding updates announce (`next_funding_ns`, or
the next `interval` boundary when an update has none), the open position pays or receives

    payment = -position_qty * mark_price * rate          (USDT; + received, - paid)

so a long (qty > 0) pays a positive rate and a short receives it. `rate` is the last update
for S known before S, `mark_price` the last mark price known at S (ts_init <= S; the last
trade price when the catalog has no mark prices), `position_qty` the signed net position after
every fill up to S. The payment is rounded to the settlement currency's precision (USDT: 8).

Two pieces, because in 1.231 only a venue's simulation module can change an account balance
(`SimulatedExchange.adjust_account`, as Nautilus's own `FXRolloverInterestModule` does for FX
rollover) while only an actor the trader owns can set timers:

- `FundingSettlementClock` (actor): follows the funding updates, keeps the last one per
  settlement, and sets one time alert per settlement inside the backtest range. Nautilus fires
  an alert at S after every data point stamped <= S, so the position and mark then are those
  at S. When it fires it publishes the settlement on the message bus.
- `FundingSettlementModule` (venue module): computes the payment from the cache (position,
  mark) and applies it to the account balance with `adjust_account`, each S exactly once
  however many updates announced it; it publishes the `FundingSettlement` it applied, which
  the actor keeps in `settlements`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, ImportableActorConfig
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money

DUE_TOPIC = "hedgegrid.funding.due"  # actor -> module: settle S now
SETTLED_TOPIC = "hedgegrid.funding.settled"  # module -> actor: what was applied
DEFAULT_INTERVAL_MINUTES = 480


@dataclass(frozen=True)
class FundingDue:
    instrument_id: str
    settlement_ns: int
    rate: Decimal
    rate_ts_init: int  # the update whose rate settles (the last known before S)
    updates: int  # how many updates announced this settlement


@dataclass(frozen=True)
class FundingSettlement:
    instrument_id: str
    settlement_ns: int
    rate: Decimal
    rate_ts_init: int
    updates: int
    position_qty: Decimal  # signed net position at S
    price: Decimal  # mark price at S (or last trade price, see price_source)
    price_ts_init: int
    price_source: str  # "mark" | "last trade" | "none"
    payment: Decimal  # + received, - paid, in `currency`
    currency: str
    applied_to_account: bool
    balance_after: Decimal | None  # account total in `currency` right after


def payment_for(position_qty: Decimal, price: Decimal, rate: Decimal, precision: int) -> Decimal:
    """-qty * price * rate, rounded half-even to `precision` decimals (a long pays a positive rate)."""
    return (-position_qty * price * rate).quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_EVEN)


def settlement_of(update: FundingRateUpdate) -> int:
    """When `update`'s rate settles: its next_funding_ns, else the next interval boundary."""
    if update.next_funding_ns:
        return int(update.next_funding_ns)
    interval_ns = int(update.interval or DEFAULT_INTERVAL_MINUTES) * 60 * 1_000_000_000
    return (update.ts_event // interval_ns + 1) * interval_ns


class FundingSettlementClockConfig(ActorConfig, frozen=True):
    instrument_id: InstrumentId
    end_ns: int  # settlements at or before this time are settled (the range's end)


class FundingSettlementClock(Actor):
    """Schedules one settlement per announced settlement time inside the range; keeps what was applied."""

    def __init__(self, config: FundingSettlementClockConfig) -> None:
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.end_ns = config.end_ns
        self._last: dict[int, FundingRateUpdate] = {}  # settlement -> last update known for it
        self._count: dict[int, int] = {}
        self.updates_seen = 0
        self.updates_late = 0  # announced a settlement already past when received
        self.updates_beyond_range = 0  # announced a settlement after the range's end
        self.settlements: list[FundingSettlement] = []

    def on_start(self) -> None:
        self.subscribe_funding_rates(self.instrument_id)
        self.msgbus.subscribe(topic=f"{SETTLED_TOPIC}.{self.instrument_id}", handler=self.settlements.append)

    def on_funding_rate(self, update: FundingRateUpdate) -> None:
        if update.instrument_id != self.instrument_id:
            return
        self.updates_seen += 1
        settle = settlement_of(update)
        if settle <= update.ts_init:
            self.updates_late += 1
            return
        if settle > self.end_ns:
            self.updates_beyond_range += 1
            return
        if settle not in self._last:  # the first update for S schedules it, once
            self.clock.set_time_alert_ns(f"funding-{settle}", settle, self._due)
        self._last[settle] = update
        self._count[settle] = self._count.get(settle, 0) + 1

    def _due(self, event) -> None:
        settle = int(event.name.removeprefix("funding-"))
        update = self._last[settle]
        self.msgbus.publish(
            topic=f"{DUE_TOPIC}.{self.instrument_id}",
            msg=FundingDue(
                str(self.instrument_id), settle, Decimal(str(update.rate)), int(update.ts_init), self._count[settle]
            ),
        )

    def on_stop(self) -> None:
        pass  # keep the subscription: the settlements are read after the run


class FundingSettlementModuleConfig(SimulationModuleConfig, frozen=True):
    instrument_id: InstrumentId


class FundingSettlementModule(SimulationModule):
    """Pays or charges each due settlement into the venue account, once per settlement time."""

    def __init__(self, config: FundingSettlementModuleConfig) -> None:
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.settled: dict[int, FundingSettlement] = {}
        self.duplicates_ignored = 0

    def register_venue(self, exchange) -> None:
        super().register_venue(exchange)
        self.msgbus.subscribe(topic=f"{DUE_TOPIC}.{self.instrument_id}", handler=self._settle)

    def _price(self) -> tuple[Decimal, int, str]:
        mark = self.cache.mark_price(self.instrument_id)
        if mark is not None:
            return mark.value.as_decimal(), int(mark.ts_init), "mark"
        trade = self.cache.trade_tick(self.instrument_id)
        if trade is not None:
            return trade.price.as_decimal(), int(trade.ts_init), "last trade"
        return Decimal(0), 0, "none"

    def _settle(self, due: FundingDue) -> None:
        if due.settlement_ns in self.settled:  # exactly once per settlement time
            self.duplicates_ignored += 1
            return
        instrument = self.cache.instrument(self.instrument_id)
        currency = instrument.get_settlement_currency()
        qty = sum(
            (p.signed_decimal_qty() for p in self.cache.positions_open(instrument_id=self.instrument_id)), Decimal(0)
        )
        price, price_ts, source = self._price()
        payment = payment_for(qty, price, due.rate, currency.precision)
        applied = False
        if payment != 0:
            self.exchange.adjust_account(Money(payment, currency))
            applied = True
        account = self.cache.account_for_venue(self.instrument_id.venue)
        balance = account.balance_total(currency) if account is not None else None
        settlement = FundingSettlement(
            instrument_id=str(self.instrument_id),
            settlement_ns=due.settlement_ns,
            rate=due.rate,
            rate_ts_init=due.rate_ts_init,
            updates=due.updates,
            position_qty=qty,
            price=price,
            price_ts_init=price_ts,
            price_source=source,
            payment=payment,
            currency=currency.code,
            applied_to_account=applied,
            balance_after=balance.as_decimal() if balance is not None else None,
        )
        self.settled[due.settlement_ns] = settlement
        self.msgbus.publish(topic=f"{SETTLED_TOPIC}.{self.instrument_id}", msg=settlement)

    def process(self, ts_now: int) -> None:
        pass  # settlements arrive from the clock actor's alerts

    def log_diagnostics(self, logger) -> None:
        total = sum((s.payment for s in self.settled.values()), Decimal(0))
        logger.info(f"Funding settlements: {len(self.settled)}, total {total}")

    def reset(self) -> None:
        self.settled = {}
        self.duplicates_ignored = 0


def settlement_configs(instrument_id: str, end_ns: int) -> tuple[ImportableActorConfig, ImportableActorConfig]:
    """What a BacktestRunConfig of your own adds to settle funding on 1.231: (the venue module for
    `BacktestVenueConfig(modules=[...])`, the actor for `BacktestEngineConfig(actors=[...])`).
    `end_ns` is the run's `end` (settlements up to and including it are paid: (start, end])."""
    module = ImportableActorConfig(
        actor_path=f"{__name__}:FundingSettlementModule",
        config_path=f"{__name__}:FundingSettlementModuleConfig",
        config={"instrument_id": instrument_id},
    )
    clock = ImportableActorConfig(
        actor_path=f"{__name__}:FundingSettlementClock",
        config_path=f"{__name__}:FundingSettlementClockConfig",
        config={"instrument_id": instrument_id, "end_ns": end_ns},
    )
    return module, clock
