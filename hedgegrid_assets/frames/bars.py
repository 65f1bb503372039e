"""1-minute bars (Nautilus `Bar`): from the partition's own trades, for every source.

`BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL`, aggregated as Nautilus's time-bar aggregator
does with `time_bars_interval_type="right-open"`: the bar of minute [t, t+1m) holds the
trades with t <= ts_event < t+1m and, as Nautilus stamps right-open bars, carries
ts_event = t (its open) and ts_init = t+1m (its close, when it can first be known); a minute without trades after the first one repeats the
last close with volume 0 (`time_bars_build_with_no_updates`); minutes before the day's first
trade have no bar. Right-open minutes (as Binance klines are) put every trade of the day in
a bar of the day, so a partition's bars lie in (day start, next day start]; Nautilus's
default, left-open (t, t+1m], differs only for trades exactly on a minute boundary.

Checks: low <= open, close <= high, volume >= 0, on the tick grid; minutes without a bar are
reported by a WARN check.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.objects import PRICE_MAX, QUANTITY_MAX, Price, Quantity

from hedgegrid_assets.catalog.fixed_point import epoch_ns, largest_writable, to_fixed_binary
from hedgegrid_assets.frames.kind import TIMESTAMP, DataKind, PartitionContext, nautilus_arrow_schema, on_grid, to_epoch_ns
from hedgegrid_assets.frames.trades import TRADES
from hedgegrid_assets.instruments import Instrument

OHLC = ("open", "high", "low", "close")
MINUTE = "1m"


class BarsFrame(pa.DataFrameModel):
    ts_event: TIMESTAMP = pa.Field(description="The bar's open (the minute it covers)")
    ts_init: TIMESTAMP = pa.Field(description="The bar's close (when it can first be known)")
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume: pl.Float64 = pa.Field(ge=0)

    class Config:
        strict = True


def from_trades(trades: pl.DataFrame, part: PartitionContext) -> pl.DataFrame:
    """The day's 1-minute bars from its validated trades (see the module docstring)."""
    if trades.is_empty():
        return BARS.empty_frame()
    units = 10**part.instrument.size_precision
    by_event = trades.select("ts_event", "price", "size").sort("ts_event", maintain_order=True)
    bars = by_event.group_by_dynamic("ts_event", every=MINUTE, closed="left", label="right").agg(
        open=pl.col("price").first(),
        high=pl.col("price").max(),
        low=pl.col("price").min(),
        close=pl.col("price").last(),
        # Summed in whole steps: exact, as Nautilus sums Quantity values.
        volume=(pl.col("size") * units).round().cast(pl.Int64).sum() / units,
    )
    closes = pl.datetime_range(
        bars.get_column("ts_event").min(), part.end, interval=MINUTE, time_unit="ns", time_zone="UTC", eager=True
    )
    filled = pl.DataFrame({"ts_event": closes}).join(bars, on="ts_event", how="left")
    last = pl.col("close").forward_fill()
    return BARS.conform(
        filled.select(
            ts_event=pl.col("ts_event") - pl.duration(minutes=1),
            ts_init=pl.col("ts_event"),
            open=pl.col("open").fill_null(last),
            high=pl.col("high").fill_null(last),
            low=pl.col("low").fill_null(last),
            close=last,
            volume=pl.col("volume").fill_null(0.0),
        )
    )


def _bar_type(instrument: Instrument, spec: str) -> str:
    return f"{instrument.instrument_id}-{spec}"


def _partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
    tick, step = part.instrument.spec.tick_size, part.instrument.spec.step_size
    return {**{c: [on_grid(tick)] for c in OHLC}, "volume": [on_grid(step)]}


def _consistent() -> pa.Check:
    def check(d) -> pl.LazyFrame:
        low, high = pl.col("low"), pl.col("high")
        return d.lazyframe.select(
            (low <= pl.min_horizontal("open", "close")) & (pl.max_horizontal("open", "close") <= high)
        )

    return pa.Check(check, name="low_le_open_close_le_high", error="not low <= open, close <= high")


def _to_nautilus(spec: str):
    def convert(frame: pl.DataFrame, instrument: Instrument) -> list[Bar]:
        bar_type = BarType.from_str(_bar_type(instrument, spec))
        pp, sp = instrument.price_precision, instrument.size_precision
        return [
            Bar(bar_type, Price(o, pp), Price(h, pp), Price(lo, pp), Price(c, pp), Quantity(v, sp), int(te), int(ti))
            for o, h, lo, c, v, te, ti in zip(
                *(frame.get_column(col).to_list() for col in (*OHLC, "volume")),
                to_epoch_ns(frame, "ts_event"),
                to_epoch_ns(frame, "ts_init"),
                strict=True,
            )
        ]

    return convert


def _to_arrow(spec: str):
    def convert(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
        pp, sp = instrument.price_precision, instrument.size_precision
        metadata = nautilus_pyo3.Bar.get_metadata(nautilus_pyo3.BarType.from_str(_bar_type(instrument, spec)), pp, sp)
        columns = {
            **{c: to_fixed_binary(frame.get_column(c), pp) for c in OHLC},
            "volume": to_fixed_binary(frame.get_column("volume"), sp),
            "ts_event": epoch_ns(frame.get_column("ts_event")),
            "ts_init": epoch_ns(frame.get_column("ts_init")),
        }
        return pyarrow.Table.from_pydict(columns, schema=nautilus_arrow_schema(Bar, metadata))

    return convert


INTERNAL = "1-MINUTE-LAST-INTERNAL"

BARS = DataKind(
    name="bars",
    cli_name="bars",
    description=f"1-minute bars from the partition's trades (Nautilus Bar, {INTERNAL})",
    model=BarsFrame,
    nautilus_cls=Bar,
    partition_checks=_partition_checks,
    to_nautilus=_to_nautilus(INTERNAL),
    to_arrow=_to_arrow(INTERNAL),
    price_precision=lambda inst: inst.price_precision,
    positive=OHLC,
    finite=("volume",),
    maxima=lambda inst: {
        **{c: largest_writable(PRICE_MAX, inst.price_precision) for c in OHLC},
        "volume": largest_writable(QUANTITY_MAX, inst.size_precision),
    },
    row_rules=lambda part: [(pl.col("volume") < 0, "volume below zero")],
    unique_key=("ts_event",),
    receive_times=False,
    frame_checks=lambda: [_consistent()],
    stamped_at_close=True,
    bar_spec=INTERNAL,
    derived=(TRADES, from_trades),
)
