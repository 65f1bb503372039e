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
        self.counts: dict[str, int] = {"trades": 0, "quotes": 0, "mark_prices": 0, "funding_rates": 0}
        self.first: dict[str, object] = {}
        self.last: dict[str, object] = {}
        # ts_init must never go backwards within one stream.
        self.out_of_order: dict[str, int] = {"trades": 0, "quotes": 0, "mark_prices": 0, "funding_rates": 0}

    def on_start(self) -> None:
        self.subscribe_trade_ticks(self.instrument_id)
        self.subscribe_quote_ticks(self.instrument_id)
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

    def on_quote_tick(self, tick) -> None:
        self._record("quotes", tick)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self._record("mark_prices", mark_price)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self._record("funding_rates", funding_rate)

    def on_stop(self) -> None:
        # No unsubscribe: the probe's state is read after the run.
        pass


class BarProbeConfig(StrategyConfig, frozen=True):
    bar_type: str


class BarProbe(Strategy):
    """Subscribes to one bar type (Nautilus aggregates INTERNAL ones itself) and keeps every bar."""

    def __init__(self, config: BarProbeConfig) -> None:
        super().__init__(config)
        self.bars: list = []

    def on_start(self) -> None:
        from nautilus_trader.model.data import BarType

        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar) -> None:
        self.bars.append(bar)


class QuoteFillProbeConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    after_quotes: int = 100


class QuoteFillProbe(Strategy):
    """After some quotes, buys 1 lot with a limit order at the quoted ask; records the quote
    it priced from, the fill, and how many quotes it saw."""

    def __init__(self, config: QuoteFillProbeConfig) -> None:
        super().__init__(config)
        self.quotes = 0
        self.priced_from = None
        self.fills: list = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.config.instrument_id)

    def on_quote_tick(self, tick) -> None:
        self.quotes += 1
        if self.quotes == self.config.after_quotes:
            from nautilus_trader.model.enums import OrderSide

            instrument = self.cache.instrument(self.config.instrument_id)
            self.priced_from = tick
            order = self.order_factory.limit(
                self.config.instrument_id, OrderSide.BUY, instrument.make_qty(instrument.size_increment), tick.ask_price
            )
            self.submit_order(order)

    def on_order_filled(self, event) -> None:
        self.fills.append(event)

    def on_stop(self) -> None:
        pass


class BookFillProbeConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    after_batches: int = 50


class BookFillProbe(Strategy):
    """Over L2 deltas (the engine hands them over one by one; a batch ends at F_LAST): after some
    batches, buys 1 lot with a limit order at the book's best ask
    level; records that level (price, size), the fill and how many delta batches it saw."""

    def __init__(self, config: BookFillProbeConfig) -> None:
        super().__init__(config)
        self.batches = 0
        self.deltas = 0
        self.level = None
        self.fills: list = []

    def on_start(self) -> None:
        from nautilus_trader.model.enums import BookType

        self.subscribe_order_book_deltas(self.config.instrument_id, book_type=BookType.L2_MBP)

    def on_order_book_deltas(self, deltas) -> None:
        from nautilus_trader.model.enums import OrderSide

        self.deltas += len(deltas.deltas)
        if not deltas.deltas[-1].flags & 128:  # mid-batch: the book is not whole yet
            return
        self.batches += 1
        if self.batches == self.config.after_batches:
            book = self.cache.order_book(self.config.instrument_id)
            instrument = self.cache.instrument(self.config.instrument_id)
            self.level = (book.best_ask_price(), book.best_ask_size(), book.best_bid_price())
            order = self.order_factory.limit(
                self.config.instrument_id,
                OrderSide.BUY,
                instrument.make_qty(instrument.size_increment),
                book.best_ask_price(),
            )
            self.submit_order(order)

    def on_order_filled(self, event) -> None:
        self.fills.append(event)

    def on_stop(self) -> None:
        pass


class HoldProbeConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    size: str = "0.100"


class HoldProbe(Strategy):
    """A user's own strategy: buys `size` at market on the first trade and holds it to the end."""

    def __init__(self, config: HoldProbeConfig) -> None:
        super().__init__(config)
        self.fills: list = []

    def on_start(self) -> None:
        self.subscribe_trade_ticks(self.config.instrument_id)

    def on_trade_tick(self, tick: TradeTick) -> None:
        if not self.fills and not self.cache.orders_open():
            from nautilus_trader.model.enums import OrderSide
            from nautilus_trader.model.objects import Quantity

            self.submit_order(
                self.order_factory.market(self.config.instrument_id, OrderSide.BUY, Quantity.from_str(self.config.size))
            )

    def on_order_filled(self, event) -> None:
        self.fills.append(event)

    def on_stop(self) -> None:
        pass  # the position is read after the run
