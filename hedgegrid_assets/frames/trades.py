"""Trade ticks: one row per (aggregated) trade."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
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

# Physical order matches Nautilus's AggressorSide (0 none, 1 buyer, 2 seller), so
# `aggressor_side.to_physical()` is the catalog's uint8 column.
AGGRESSOR_SIDE = pl.Enum(["NO_AGGRESSOR", "BUYER", "SELLER"])


class TradesFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="Exchange trade time")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")
    price: pl.Float64 = pa.Field(gt=0)
    size: pl.Float64 = pa.Field(gt=0)
    aggressor_side: AGGRESSOR_SIDE = pa.Field(description="BUYER or SELLER: the taker's side")
    # Unique too: DataKind.unique_key below, checked with the other row rules.
    trade_id: pl.String = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    spec = part.instrument.spec
    return {"price": [on_grid(spec.tick_size)], "size": [on_grid(spec.step_size)]}


def _to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[TradeTick]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    pp, sp = instrument.price_precision, instrument.size_precision
    sides = [AggressorSide(v) for v in frame.get_column("aggressor_side").to_physical().to_list()]
    return [
        TradeTick(iid, Price(p, pp), Quantity(s, sp), side, TradeId(t), int(te), int(ti))
        for p, s, side, t, te, ti in zip(
            frame.get_column("price").to_list(),
            frame.get_column("size").to_list(),
            sides,
            frame.get_column("trade_id").to_list(),
            to_epoch_ns(frame, "ts_event"),
            to_epoch_ns(frame, "ts_init"),
            strict=True,
        )
    ]


def _to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    schema = nautilus_arrow_schema(
        TradeTick,
        nautilus_pyo3.TradeTick.get_metadata(
            nautilus_pyo3.InstrumentId.from_str(instrument.instrument_id),
            instrument.price_precision,
            instrument.size_precision,
        ),
    )
    columns = {
        "price": to_fixed_binary(frame.get_column("price"), instrument.price_precision),
        "size": to_fixed_binary(frame.get_column("size"), instrument.size_precision),
        "aggressor_side": frame.get_column("aggressor_side").to_physical().cast(pl.UInt8).to_arrow(),
        # Oldest compat level: large_string, whose cast to Nautilus's string is a cheap offset copy.
        "trade_id": frame.get_column("trade_id").to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pyarrow.string()),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=schema)


TRADES = DataKind(
    name="trades",
    cli_name="trades",
    description="Trade ticks (Nautilus TradeTick)",
    model=TradesFrame,
    nautilus_cls=TradeTick,
    partition_checks=_partition_checks,
    to_nautilus=_to_nautilus,
    to_arrow=_to_arrow,
    price_precision=lambda inst: inst.price_precision,
    positive=("price", "size"),
    finite=(),
    maxima=lambda inst: {
        "price": largest_writable(PRICE_MAX, inst.price_precision),
        "size": largest_writable(QUANTITY_MAX, inst.size_precision),
    },
    sane_maxima=lambda inst: {"price": inst.max_price, "size": inst.max_quantity},
    unique_key=("trade_id",),
)
