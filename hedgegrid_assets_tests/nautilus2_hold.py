"""Run in the NautilusTrader 2.0 environment (by file path): a user's own 2.0 backtest, a strategy
that buys SIZE at market on the first trade and holds, over a 2.0 catalog, with the funding the
engine settles itself. Writes the position's funding adjustments to OUT as a JSON list of
{"ts": settlement ns, "payment": "<decimal>", "qty": position} (USDT, + received, - paid); a
file, not stdout, which the engine's own log shares.

    .venv-nautilus2/bin/python -P nautilus2_hold.py CATALOG INSTRUMENT_ID SIZE START_NS END_NS OUT
"""

from __future__ import annotations

import json
import sys


def main(catalog_path: str, instrument_id: str, size: str, start: int, end: int, out: str) -> None:
    from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.execution import FixedFeeModel
    from nautilus_trader.model import (
        AccountType,
        Currency,
        InstrumentId,
        Money,
        NautilusDataType,
        OmsType,
        OrderSide,
        Quantity,
        Venue,
    )
    from nautilus_trader.persistence import ParquetDataCatalog
    from nautilus_trader.trading import Strategy, StrategyConfig

    iid = InstrumentId.from_str(instrument_id)

    class Hold(Strategy):
        def __init__(self) -> None:
            super().__init__(StrategyConfig())
            self.sent = False

        def on_start(self) -> None:
            self.subscribe_trades(iid)

        def on_trade(self, tick) -> None:
            if not self.sent:
                self.sent = True
                self.submit_order(self.order_factory.market(iid, OrderSide.BUY, Quantity.from_str(size)))

    catalog = ParquetDataCatalog(catalog_path)
    usdt = Currency.from_str("USDT")
    engine = BacktestEngine(BacktestEngineConfig(bypass_logging=True))
    engine.add_venue(
        Venue(iid.venue.value), OmsType.NETTING, AccountType.MARGIN, [Money(100000, usdt)], base_currency=usdt,
        fee_model=FixedFeeModel(Money(0, usdt)),  # 2.0 needs one; fees are not what is compared here
    )  # fmt: skip
    for instrument in catalog.instruments(instrument_ids=[instrument_id]):
        engine.add_instrument(instrument)
    engine.add_data(
        list(catalog.query_trade_ticks(identifiers=[instrument_id]))
        + list(catalog.query_mark_price_updates(identifiers=[instrument_id]))
        + list(catalog.query(NautilusDataType.FundingRateUpdate, identifiers=[instrument_id]))
    )
    engine.add_strategy(Hold())
    engine.run(start=start, end=end)
    settled = [
        {"ts": a.ts_event, "payment": str(a.pnl_change.as_decimal()), "qty": str(position.quantity)}
        for position in engine.cache.positions()
        for a in position.adjustments()
        if str(a.adjustment_type) == "FUNDING"
    ]
    engine.dispose()
    with open(out, "w") as f:
        json.dump(settled, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
