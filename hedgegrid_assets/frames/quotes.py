"""Quote ticks: the top of the book (best bid and ask, price and size), Nautilus `QuoteTick`.

From Binance `bookTicker` (recordings, Tardis replays, the sample source, Binance public data)
and Tardis `quotes` / `book_ticker` CSV datasets. A crossed or locked quote (bid >= ask) is
quarantined, counted by reason; prices must sit on the tick grid and sizes on the step grid.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import PRICE_MAX, QUANTITY_MAX, Price, Quantity

from hedgegrid_assets.frames.fixed_point import epoch_ns, largest_writable, to_fixed_binary
from hedgegrid_assets.frames.kind import (
    TIMESTAMP,
    DataKind,
    PartitionContext,
    nautilus_arrow_schema,
    on_grid,
    to_epoch_ns,
)
from hedgegrid_assets.instruments import Instrument

PRICES = ("bid_price", "ask_price")
SIZES = ("bid_size", "ask_size")
CROSSED = "crossed or locked quote (bid >= ask)"


class QuotesFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="Exchange time of the book change")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")
    bid_price: pl.Float64 = pa.Field(gt=0)
    ask_price: pl.Float64 = pa.Field(gt=0)
    bid_size: pl.Float64 = pa.Field(gt=0)
    ask_size: pl.Float64 = pa.Field(gt=0)

    class Config:
        strict = True


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    spec = part.instrument.spec
    return {**{c: [on_grid(spec.tick_size)] for c in PRICES}, **{c: [on_grid(spec.step_size)] for c in SIZES}}


def _to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[QuoteTick]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    pp, sp = instrument.price_precision, instrument.size_precision
    return [
        QuoteTick(iid, Price(bp, pp), Price(ap, pp), Quantity(bs, sp), Quantity(az, sp), int(te), int(ti))
        for bp, ap, bs, az, te, ti in zip(
            *(frame.get_column(c).to_list() for c in (*PRICES, *SIZES)),
            to_epoch_ns(frame, "ts_event"),
            to_epoch_ns(frame, "ts_init"),
            strict=True,
        )
    ]


def _to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    schema = nautilus_arrow_schema(
        QuoteTick,
        nautilus_pyo3.QuoteTick.get_metadata(
            nautilus_pyo3.InstrumentId.from_str(instrument.instrument_id),
            instrument.price_precision,
            instrument.size_precision,
        ),
    )
    columns = {
        **{c: to_fixed_binary(frame.get_column(c), instrument.price_precision) for c in PRICES},
        **{c: to_fixed_binary(frame.get_column(c), instrument.size_precision) for c in SIZES},
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=schema)


QUOTES = DataKind(
    name="quotes",
    cli_name="quotes",
    description="Top-of-book quotes (Nautilus QuoteTick)",
    model=QuotesFrame,
    nautilus_cls=QuoteTick,
    partition_checks=_partition_checks,
    to_nautilus=_to_nautilus,
    to_arrow=_to_arrow,
    price_precision=lambda inst: inst.price_precision,
    positive=(*PRICES, *SIZES),
    maxima=lambda inst: {
        **{c: largest_writable(PRICE_MAX, inst.price_precision) for c in PRICES},
        **{c: largest_writable(QUANTITY_MAX, inst.size_precision) for c in SIZES},
    },
    sane_maxima=lambda inst: {**{c: inst.max_price for c in PRICES}, **{c: inst.max_quantity for c in SIZES}},
    row_rules=lambda part: [(pl.col("bid_price") >= pl.col("ask_price"), CROSSED)],
    # A quote repeated exactly (same times and values) is a replayed duplicate.
    unique_key=("ts_event", "ts_init", *PRICES, *SIZES),
)
