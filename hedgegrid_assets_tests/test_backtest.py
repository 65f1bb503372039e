"""The built catalog drives a real NautilusTrader backtest.

A BacktestNode run (BINANCE venue, margin account) loads TradeTick, MarkPriceUpdate and
FundingRateUpdate from the catalog, and a probe strategy receives all three: as many of each
as the validated frames hold, with the same values.
"""

from __future__ import annotations

import polars as pl
import pytest
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
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.identifiers import InstrumentId, Venue

from .conftest import DAYS
from .probe_strategy import DataProbe

SYMBOL = "BTCUSDT"
INSTRUMENT_ID = "BTCUSDT-PERP.BINANCE"
KINDS = {"trades": TradeTick, "quotes": QuoteTick, "mark_prices": MarkPriceUpdate, "funding_rates": FundingRateUpdate}


def _frames(built, kind: str) -> list[pl.DataFrame]:
    return [pl.read_parquet(built.settings.staging_dir / kind / d.isoformat() / f"{SYMBOL}.parquet") for d in DAYS]


def _float(value) -> float:
    """A Price/Quantity as the float its decimal text reads as.

    `as_double()` is not exact on the 128-bit (high-precision) build: Price(40591.1) gives
    40591.100000000006, so go through the Decimal instead.
    """
    return float(value.as_decimal())


def _epoch_ns(frame: pl.DataFrame, column: str) -> list[int | None]:
    return frame.get_column(column).dt.epoch("ns").to_list()


def _run_config(built, strategy: str, config: dict, kinds, modules=(), actors=(), **run) -> BacktestRunConfig:
    return BacktestRunConfig(
        venues=[
            BacktestVenueConfig(
                name="BINANCE",
                oms_type="NETTING",
                account_type="MARGIN",
                base_currency="USDT",
                starting_balances=["100000 USDT"],
                modules=list(modules),
            )
        ],
        data=[
            BacktestDataConfig(
                catalog_path=str(built.catalog),
                data_cls=f"{cls.__module__}:{cls.__name__}",
                instrument_id=INSTRUMENT_ID,
            )
            for cls in kinds
        ],
        engine=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            strategies=[
                ImportableStrategyConfig(
                    strategy_path=f"hedgegrid_assets_tests.probe_strategy:{strategy}",
                    config_path=f"hedgegrid_assets_tests.probe_strategy:{strategy}Config",
                    config=config,
                )
            ],
            actors=list(actors),
        ),
        # Keep the engine (and so the strategy's state) after the run.
        dispose_on_completion=False,
        **run,
    )


@pytest.fixture(scope="module")
def backtest(built):
    """Run the backtest once; yield (engine, probe strategy). The node is disposed afterwards."""
    config = _run_config(built, "DataProbe", {"instrument_id": INSTRUMENT_ID}, KINDS.values())
    node = BacktestNode(configs=[config])
    results = node.run()
    assert len(results) == 1
    engine = node.get_engine(config.id)
    assert engine is not None
    strategies = engine.trader.strategies()
    assert len(strategies) == 1 and isinstance(strategies[0], DataProbe)
    yield engine, strategies[0]
    node.dispose()


def test_margin_account_on_binance(backtest):
    engine, _ = backtest
    account = engine.portfolio.account(Venue("BINANCE"))
    assert account is not None
    assert account.type == AccountType.MARGIN


@pytest.mark.parametrize("kind", list(KINDS))
def test_probe_receives_every_row(built, backtest, kind):
    _, probe = backtest
    expected = sum(f.height for f in _frames(built, kind))
    assert expected > 0
    assert probe.counts[kind] == expected
    assert probe.out_of_order[kind] == 0
    assert isinstance(probe.first[kind], KINDS[kind])
    assert probe.first[kind].instrument_id == InstrumentId.from_str(INSTRUMENT_ID)


def test_first_trade_matches_frame(built, backtest):
    _, probe = backtest
    frame = _frames(built, "trades")[0]
    tick = probe.first["trades"]
    assert tick.ts_init == _epoch_ns(frame, "ts_init")[0]
    assert tick.ts_event == _epoch_ns(frame, "ts_event")[0]
    assert _float(tick.price) == frame["price"][0]
    assert _float(tick.size) == frame["size"][0]
    assert tick.trade_id.value == frame["trade_id"][0]


def test_last_trade_and_mark_price_match_frame(built, backtest):
    _, probe = backtest
    trades = _frames(built, "trades")[-1]
    assert probe.last["trades"].ts_init == _epoch_ns(trades, "ts_init")[-1]
    assert _float(probe.last["trades"].price) == trades["price"][-1]
    marks = _frames(built, "mark_prices")
    assert probe.first["mark_prices"].ts_init == _epoch_ns(marks[0], "ts_init")[0]
    assert _float(probe.first["mark_prices"].value) == marks[0]["value"][0]
    assert probe.last["mark_prices"].ts_init == _epoch_ns(marks[-1], "ts_init")[-1]
    assert _float(probe.last["mark_prices"].value) == marks[-1]["value"][-1]


def test_funding_rates_match_frame(built, backtest):
    _, probe = backtest
    frames = _frames(built, "funding_rates")
    first, last = probe.first["funding_rates"], probe.last["funding_rates"]
    assert first.ts_init == _epoch_ns(frames[0], "ts_init")[0]
    assert float(first.rate) == pytest.approx(frames[0]["rate"][0], abs=1e-12)
    assert last.ts_init == _epoch_ns(frames[-1], "ts_init")[-1]
    assert float(last.rate) == pytest.approx(frames[-1]["rate"][-1], abs=1e-12)
    assert last.next_funding_ns == _epoch_ns(frames[-1], "next_funding_time")[-1]


def test_a_limit_order_fills_at_a_quoted_price(built):
    """Over quotes and trades, a limit buy at the quoted ask fills at that ask."""
    config = _run_config(built, "QuoteFillProbe", {"instrument_id": INSTRUMENT_ID, "after_quotes": 500},
                         [QuoteTick, TradeTick])  # fmt: skip
    node = BacktestNode(configs=[config])
    try:
        node.run()
        (probe,) = node.get_engine(config.id).trader.strategies()
        quotes = pl.concat(_frames(built, "quotes"))
        assert probe.quotes == quotes.height
        quoted = probe.priced_from
        assert quoted is not None and len(probe.fills) == 1
        fill = probe.fills[0]
        assert fill.last_px == quoted.ask_price and str(fill.last_qty) == "0.001"
        row = quotes.row(499, named=True)  # the 500th quote, as the frame holds it
        assert _float(quoted.ask_price) == row["ask_price"] and _float(quoted.bid_price) == row["bid_price"]
        assert quoted.ts_init == quotes["ts_init"].dt.epoch("ns")[499]
    finally:
        node.dispose()


def _ns(day) -> int:
    import datetime as dt

    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def hold_with_our_funding(built, start_ns: int, end_ns: int, size: str = "0.100"):
    """A user's own run config (a strategy that buys `size` and holds) with our funding settlement
    added: (the strategy's fills, the settlements our module applied)."""
    from hedgegrid_assets.backtest.funding import FundingSettlementClock, settlement_configs

    module, clock = settlement_configs(INSTRUMENT_ID, end_ns)  # what a user adds
    config = _run_config(
        built, "HoldProbe", {"instrument_id": INSTRUMENT_ID, "size": size},
        [TradeTick, MarkPriceUpdate, FundingRateUpdate], modules=[module], actors=[clock], start=start_ns, end=end_ns,
    )  # fmt: skip
    node = BacktestNode(configs=[config])
    try:
        node.run()
        engine = node.get_engine(config.id)
        (hold,) = engine.trader.strategies()
        (actor,) = [a for a in engine.trader.actors() if isinstance(a, FundingSettlementClock)]
        return list(hold.fills), list(actor.settlements)
    finally:
        node.dispose()


def test_your_own_run_config_gets_funding_from_our_module(built):
    """A user's own strategy and BacktestRunConfig (docs/backtest.md, "Your own strategy"): the two
    configs of `settlement_configs` added, a long held through 2024-01-01..02 pays or receives every
    settlement in (start, end], each -qty x mark x rate into the account."""
    import datetime as dt
    from decimal import Decimal

    from hedgegrid_assets.backtest.funding import payment_for

    start_ns, end_ns = _ns(DAYS[0]), _ns(DAYS[-1] + dt.timedelta(days=1))
    fills, settled = hold_with_our_funding(built, start_ns, end_ns)
    assert len({f.client_order_id for f in fills}) == 1  # one market order (filled in parts)
    assert sum(f.last_qty.as_decimal() for f in fills) == Decimal("0.100")
    funding = pl.concat(_frames(built, "funding_rates"))
    announced = sorted({t for t in _epoch_ns(funding, "next_funding_time") if t and start_ns < t <= end_ns})
    assert [s.settlement_ns for s in settled] == announced and len(announced) == 6  # 8-hourly, 2 days
    for s in settled:
        assert (s.position_qty, s.price_source, s.applied_to_account) == (Decimal("0.100"), "mark", True)
        assert s.payment == payment_for(s.position_qty, s.price, s.rate, 8) != 0
    # Applied to the balance: between two settlements it moves by exactly the later payment.
    for before, after in zip(settled, settled[1:], strict=False):
        assert after.balance_after - before.balance_after == after.payment
