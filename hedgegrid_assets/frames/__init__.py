"""Canonical frames: one module per data kind (schema, Nautilus class, conversion)."""

from hedgegrid_assets.frames.bars import BARS, EXCHANGE_BARS, MARK_BARS
from hedgegrid_assets.frames.funding_rates import FUNDING_RATES
from hedgegrid_assets.frames.kind import DataKind, PartitionContext
from hedgegrid_assets.frames.mark_prices import MARK_PRICES
from hedgegrid_assets.frames.order_book import ORDER_BOOK_DELTAS, ORDER_BOOK_DEPTH10
from hedgegrid_assets.frames.quotes import QUOTES
from hedgegrid_assets.frames.trades import TRADES

KINDS: dict[str, DataKind] = {
    k.name: k
    for k in (
        TRADES,
        QUOTES,
        BARS,
        EXCHANGE_BARS,
        MARK_BARS,
        MARK_PRICES,
        FUNDING_RATES,
        ORDER_BOOK_DELTAS,
        ORDER_BOOK_DEPTH10,
    )
}
KINDS_BY_CLI_NAME: dict[str, DataKind] = {k.cli_name: k for k in KINDS.values()}

__all__ = [
    "KINDS",
    "KINDS_BY_CLI_NAME",
    "DataKind",
    "PartitionContext",
    "TRADES",
    "QUOTES",
    "BARS",
    "EXCHANGE_BARS",
    "MARK_BARS",
    "MARK_PRICES",
    "FUNDING_RATES",
    "ORDER_BOOK_DELTAS",
    "ORDER_BOOK_DEPTH10",
]
