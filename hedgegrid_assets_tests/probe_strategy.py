"""A pure data probe for backtests: subscribes to one instrument's trades, mark prices and
funding rates and records what arrives (counts, first and last of each), placing no orders."""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate, TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class DataProbeConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId


class DataProbe(Strategy):
    def __init__(self, config: DataProbeConfig) -> None:
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.counts: dict[str, int] = {"trades": 0, "mark_prices": 0, "funding_rates": 0}
        self.first: dict[str, object] = {}
        self.last: dict[str, object] = {}
        # ts_init must never go backwards within one stream.
        self.out_of_order: dict[str, int] = {"trades": 0, "mark_prices": 0, "funding_rates": 0}

    def on_start(self) -> None:
        self.subscribe_trade_ticks(self.instrument_id)
        self.subscribe_mark_prices(self.instrument_id)
        self.subscribe_funding_rates(self.instrument_id)

    def _record(self, kind: str, data) -> None:
        if data.instrument_id != self.instrument_id:
            return
        prev = self.last.get(kind)
        if prev is not None and data.ts_init < prev.ts_init:
            self.out_of_order[kind] += 1
        self.counts[kind] += 1
        self.first.setdefault(kind, data)
        self.last[kind] = data

    def on_trade_tick(self, tick: TradeTick) -> None:
        self._record("trades", tick)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self._record("mark_prices", mark_price)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self._record("funding_rates", funding_rate)

    def on_stop(self) -> None:
        # No unsubscribe: the probe's state is read after the run.
        pass
