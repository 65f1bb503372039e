"""Instrument definitions: Binance USDT-M perpetual specs -> Nautilus `CryptoPerpetual`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from hedgegrid_assets.settings import InstrumentSpec, Settings

# Binance USDT-M exchangeInfo filters (PRICE_FILTER.tickSize, LOT_SIZE.stepSize,
# MIN_NOTIONAL.notional) for common symbols. Override or extend with `instruments` in settings.
BINANCE_USDM_SPECS: dict[str, InstrumentSpec] = {
    "BTCUSDT": InstrumentSpec(tick_size="0.10", step_size="0.001", min_notional="100"),
    "ETHUSDT": InstrumentSpec(tick_size="0.01", step_size="0.001", min_notional="20"),
    "BNBUSDT": InstrumentSpec(tick_size="0.010", step_size="0.01"),
    "SOLUSDT": InstrumentSpec(tick_size="0.0100", step_size="1"),
    "XRPUSDT": InstrumentSpec(tick_size="0.0001", step_size="0.1"),
    "DOGEUSDT": InstrumentSpec(tick_size="0.000010", step_size="1"),
    "ADAUSDT": InstrumentSpec(tick_size="0.00010", step_size="1"),
    "LTCUSDT": InstrumentSpec(tick_size="0.01", step_size="0.001", min_notional="20"),
    "LINKUSDT": InstrumentSpec(tick_size="0.001", step_size="0.01", min_notional="20"),
    "AVAXUSDT": InstrumentSpec(tick_size="0.0010", step_size="1"),
}

# Instruments are written with this ts_init so that rewriting one replaces its file instead of
# adding a version (the catalog returns one instrument per distinct ts_init).
INSTRUMENT_TS_INIT = 0
# Default sane bound of prices and sizes, in ticks and steps: BTCUSDT 1e8 USDT and 1e6 BTC,
# far beyond any real print (Binance sets ticks near 1e-4..1e-5 of the price).
SANE_UNITS = 10**9
# Nautilus's Binance perpetual ids: BTCUSDT-PERP.BINANCE
PERP_SUFFIX = "-PERP."


def _precision(increment: str) -> int:
    """Decimal places of a tick/step size: '0.10' -> 1, '0.001' -> 3, '1' -> 0."""
    exponent = Decimal(increment).normalize().as_tuple().exponent
    return max(0, -int(exponent))


@dataclass(frozen=True)
class Instrument:
    symbol: str
    venue: str
    spec: InstrumentSpec

    @property
    def instrument_id(self) -> str:
        return f"{self.symbol}{PERP_SUFFIX}{self.venue}"

    @property
    def max_price(self) -> float:
        """Above this a price is impossible for the instrument (quarantined)."""
        return float(self.spec.max_price or Decimal(self.spec.tick_size) * SANE_UNITS)

    @property
    def max_quantity(self) -> float:
        return float(self.spec.max_quantity or Decimal(self.spec.step_size) * SANE_UNITS)

    @property
    def price_precision(self) -> int:
        return _precision(self.spec.tick_size)

    @property
    def size_precision(self) -> int:
        return _precision(self.spec.step_size)

    @property
    def quote(self) -> str:
        return "USDT"

    @property
    def base(self) -> str:
        return self.symbol.removesuffix(self.quote)

    @cached_property
    def nautilus(self):
        """The `CryptoPerpetual` as Nautilus sees it (fixed ts_event/ts_init, see above)."""
        from nautilus_trader.model.currencies import Currency
        from nautilus_trader.model.identifiers import InstrumentId, Symbol
        from nautilus_trader.model.instruments import CryptoPerpetual
        from nautilus_trader.model.objects import Money, Price, Quantity

        quote = Currency.from_str(self.quote)
        return CryptoPerpetual(
            instrument_id=InstrumentId.from_str(self.instrument_id),
            raw_symbol=Symbol(self.symbol),
            base_currency=Currency.from_str(self.base),
            quote_currency=quote,
            settlement_currency=quote,
            is_inverse=False,
            price_precision=self.price_precision,
            size_precision=self.size_precision,
            price_increment=Price(Decimal(self.spec.tick_size), self.price_precision),
            size_increment=Quantity(Decimal(self.spec.step_size), self.size_precision),
            min_quantity=Quantity(Decimal(self.spec.step_size), self.size_precision),
            min_notional=Money(Decimal(self.spec.min_notional), quote),
            margin_init=Decimal(self.spec.margin_init),
            margin_maint=Decimal(self.spec.margin_maint),
            maker_fee=Decimal(self.spec.maker_fee),
            taker_fee=Decimal(self.spec.taker_fee),
            ts_event=INSTRUMENT_TS_INIT,
            ts_init=INSTRUMENT_TS_INIT,
        )


def symbol_of(instrument_id: str) -> str:
    """'BTCUSDT-PERP.BINANCE' -> 'BTCUSDT' (the inverse of `Instrument.instrument_id`)."""
    return instrument_id.split(PERP_SUFFIX, 1)[0]


class UnknownSymbolError(ValueError):
    pass


def instrument_for(symbol: str, settings: Settings) -> Instrument:
    """The instrument of `symbol`: settings override the bundled table."""
    spec = settings.instruments.get(symbol) or BINANCE_USDM_SPECS.get(symbol)
    if spec is None:
        known = ", ".join(sorted({*BINANCE_USDM_SPECS, *settings.instruments}))
        raise UnknownSymbolError(
            f"no instrument spec for symbol {symbol!r}: add it under [instruments.{symbol}] "
            f"in hedgegrid.toml (tick_size, step_size). Known: {known}"
        )
    return Instrument(symbol=symbol, venue=settings.venue, spec=spec)
