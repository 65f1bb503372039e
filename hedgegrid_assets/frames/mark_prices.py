"""Mark prices: Binance's markPrice stream (one update a second), with the index price beside
each mark where the source gives it (markPrice `i`, Tardis `index_price`)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import MarkPriceUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import PRICE_MAX, Price

from hedgegrid_assets.frames.fixed_point import epoch_ns, largest_writable, to_fixed_binary
from hedgegrid_assets.frames.kind import TIMESTAMP, DataKind, PartitionContext, nautilus_arrow_schema, to_epoch_ns
from hedgegrid_assets.instruments import Instrument

# Binance sends mark prices with 8 decimals whatever the tick size ("11857.56000000"),
# and Nautilus's Binance adapter keeps them as given.
MARK_PRICE_PRECISION = 8


class MarkPricesFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="Exchange event time (E)")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")
    value: pl.Float64 = pa.Field(gt=0, description="Mark price")
    # Checked against the mark (WARN beyond a band) but not written to the catalog:
    # nautilus_trader 1.231 writes IndexPriceUpdate and cannot read it back.
    index_price: pl.Float64 = pa.Field(gt=0, nullable=True, description="Index price, where the source gives it")

    class Config:
        strict = True


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    # The band against traded prices needs the trades frame: see checks/cross_kind.py.
    return {}


def _to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[MarkPriceUpdate]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    return [
        MarkPriceUpdate(iid, Price(v, MARK_PRICE_PRECISION), int(te), int(ti))
        for v, te, ti in zip(
            frame.get_column("value").to_list(),
            to_epoch_ns(frame, "ts_event"),
            to_epoch_ns(frame, "ts_init"),
            strict=True,
        )
    ]


def _to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    schema = nautilus_arrow_schema(
        MarkPriceUpdate,
        nautilus_pyo3.MarkPriceUpdate.get_metadata(
            nautilus_pyo3.InstrumentId.from_str(instrument.instrument_id), MARK_PRICE_PRECISION
        ),
    )
    columns = {
        "value": to_fixed_binary(frame.get_column("value"), MARK_PRICE_PRECISION),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=schema)


MARK_PRICES = DataKind(
    name="mark_prices",
    cli_name="mark",
    description="Mark prices (Nautilus MarkPriceUpdate)",
    model=MarkPricesFrame,
    nautilus_cls=MarkPriceUpdate,
    partition_checks=_partition_checks,
    to_nautilus=_to_nautilus,
    to_arrow=_to_arrow,
    price_precision=lambda inst: MARK_PRICE_PRECISION,
    positive=("value",),
    finite=(),
    maxima=lambda inst: {"value": largest_writable(PRICE_MAX, MARK_PRICE_PRECISION)},
    sane_maxima=lambda inst: {"value": inst.max_price},
)
