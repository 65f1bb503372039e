"""Funding rates: one row per change of the announced rate or of the next funding time.

A row is what the exchange published at `ts_event`: the rate (as Binance publishes it, 8
decimals) that will settle at `next_funding_time`, and the minutes between settlements
(`interval`). The last row known before a settlement carries the rate that settled there.
Written in Nautilus's own `FundingRateUpdate` schema, so any Nautilus >= 1.225 reads it.
"""

from __future__ import annotations

from decimal import Decimal

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from hedgegrid_assets.frames.fixed_point import decimal_json_bytes, epoch_ns
from hedgegrid_assets.frames.kind import TIMESTAMP, DataKind, PartitionContext, nautilus_arrow_schema, to_epoch_ns
from hedgegrid_assets.instruments import Instrument

# Binance publishes funding rates with 8 decimals ("0.00010000").
FUNDING_RATE_DECIMALS = 8
INTERVAL = pl.UInt16  # minutes between settlements, as Nautilus's `interval` field


class FundingRatesFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="Exchange event time of the update")
    ts_init: TIMESTAMP = pa.Field(description="Local receive time")
    rate: pl.Float64 = pa.Field(description="Rate that settles at next_funding_time")
    next_funding_time: TIMESTAMP = pa.Field(nullable=True, description="When `rate` settles")
    interval: INTERVAL = pa.Field(gt=0, description="Minutes between settlements")

    class Config:
        strict = True


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    cap = float(part.instrument.spec.funding_rate_cap)
    return {"rate": [pa.Check.in_range(-cap, cap, error=f"funding rate beyond the exchange cap ±{cap}")]}


def _from_partition(part: PartitionContext) -> dict[str, pl.Expr]:
    """What a source may leave unsaid: the interval is the instrument's (bundled table or settings)."""
    return {"interval": pl.lit(part.instrument.spec.funding_interval_hours * 60, INTERVAL)}


def _to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[FundingRateUpdate]:
    iid = InstrumentId.from_str(instrument.instrument_id)
    return [
        FundingRateUpdate(
            instrument_id=iid,
            rate=Decimal(f"{r:.{FUNDING_RATE_DECIMALS}f}"),
            interval=iv,
            next_funding_ns=n,
            ts_event=int(te),
            ts_init=int(ti),
        )
        for r, iv, n, te, ti in zip(
            frame.get_column("rate").to_list(),
            frame.get_column("interval").to_list(),
            frame.get_column("next_funding_time").dt.epoch("ns").to_list(),
            to_epoch_ns(frame, "ts_event"),
            to_epoch_ns(frame, "ts_init"),
            strict=True,
        )
    ]


def _to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
    # Nautilus keeps the instrument id only in the file's metadata, as its own write_data does.
    schema = nautilus_arrow_schema(FundingRateUpdate, {"instrument_id": instrument.instrument_id})
    columns = {
        "rate": decimal_json_bytes(frame.get_column("rate"), FUNDING_RATE_DECIMALS),
        "interval": frame.get_column("interval").to_arrow(),
        "next_funding_ns": epoch_ns(frame.get_column("next_funding_time")),
        "ts_event": epoch_ns(frame.get_column("ts_event")),
        "ts_init": epoch_ns(frame.get_column("ts_init")),
    }
    return pyarrow.Table.from_pydict(columns, schema=schema)


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
    from_partition=_from_partition,
)


# A rate known this long before the settlement it is for, when a source gives only the rates
# as settled (Binance's monthly files, a CSV of settled rates): the latest moment it was
# (practically) known; putting it at the previous settlement would hand a backtest the final
# rate a whole interval early.
SETTLED_LEAD_MS = 1


def from_settlements(settled_at: pl.Expr) -> dict[str, pl.Expr]:
    """ts_event, ts_init and next_funding_time for rates given at their settlement times:
    next_funding_time the settlement (to the second: files can be a few ms late), known 1 ms
    before it."""
    settle = settled_at.dt.round("1s")
    known = settle - pl.duration(milliseconds=SETTLED_LEAD_MS)
    return {"ts_event": known, "ts_init": known, "next_funding_time": settle}


def are_settlements(frame: pl.DataFrame, part: PartitionContext) -> bool:
    """Rows without a next funding time whose times all fall on settlements (within a second
    of a multiple of the funding interval), a different settlement each, two or more: a list of
    settled rates (not, say, a few updates just after midnight)."""
    if frame.height < 2 or frame.get_column("next_funding_time").is_not_null().any():
        return False
    minutes = frame.get_column("interval").drop_nulls()
    interval_ns = int(minutes.max() if minutes.len() else part.instrument.spec.funding_interval_hours * 60) * 60 * 10**9
    ns = frame.get_column("ts_event").dt.epoch("ns")
    on_settlement = ((ns + 10**9) % interval_ns <= 2 * 10**9).all()
    return bool(on_settlement and ((ns + 10**9) // interval_ns).n_unique() == frame.height)
