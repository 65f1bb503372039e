"""Funding rates: one row per change of the announced rate or of the next funding time."""

from __future__ import annotations

from decimal import Decimal

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from hedgegrid_assets.catalog.fixed_point import epoch_ns, to_decimal
from hedgegrid_assets.catalog.funding_serialization import FUNDING_RATE_SCHEMA
from hedgegrid_assets.frames.kind import TIMESTAMP, DataKind, PartitionContext, to_epoch_ns
from hedgegrid_assets.instruments import Instrument

# Binance publishes funding rates with 8 decimals ("0.00010000").
FUNDING_RATE_DECIMALS = 8


class FundingRatesFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="Exchange event time of the update")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")
    rate: pl.Float64 = pa.Field(description="Rate that settles at next_funding_time")
    next_funding_time: TIMESTAMP = pa.Field(nullable=True, description="When `rate` settles")

    class Config:
        strict = True


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    cap = float(part.instrument.spec.funding_rate_cap)
    return {"rate": [pa.Check.in_range(-cap, cap, error=f"funding rate beyond the exchange cap ±{cap}")]}


def _to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[FundingRateUpdate]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    nxt = frame.get_column("next_funding_time").dt.epoch("ns").to_list()
    return [
        FundingRateUpdate(iid, Decimal(f"{r:.{FUNDING_RATE_DECIMALS}f}"), int(te), int(ti), n)
        for r, te, ti, n in zip(
            frame.get_column("rate").to_list(),
            to_epoch_ns(frame, "ts_event"),
            to_epoch_ns(frame, "ts_init"),
            nxt,
            strict=True,
        )
    ]


def _to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    columns = {
        "instrument_id": pyarrow.array([instrument.instrument_id] * frame.height, pyarrow.string()),
        "rate": to_decimal(frame.get_column("rate"), FUNDING_RATE_DECIMALS),
        "next_funding_ns": epoch_ns(frame.get_column("next_funding_time")),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=FUNDING_RATE_SCHEMA)


FUNDING_RATES = DataKind(
    name="funding_rates",
    cli_name="funding",
    description="Funding rates (Nautilus FundingRateUpdate)",
    model=FundingRatesFrame,
    nautilus_cls=FundingRateUpdate,
    partition_checks=_partition_checks,
    to_nautilus=_to_nautilus,
    to_arrow=_to_arrow,
    price_precision=lambda inst: FUNDING_RATE_DECIMALS,
    positive=(),
    finite=("rate",),
)
