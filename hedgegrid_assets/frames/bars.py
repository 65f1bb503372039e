"""1-minute bars (Nautilus `Bar`), three bar types, each a kind:

- `bars`: `BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL`, from the partition's own trades, for
  every source; aggregated as Nautilus's time-bar aggregator does with
  `time_bars_interval_type="right-open"`: the bar of minute [t, t+1m) holds the trades with
  t <= ts_event < t+1m and, as Nautilus stamps right-open bars, carries ts_event = t (its
  open) and ts_init = t+1m (its close, when it can first be known); a minute without trades
  after the first one repeats the last close with volume 0 (`time_bars_build_with_no_updates`);
  minutes before the day's first trade have no bar. Right-open minutes (as Binance klines
  are) put every trade of the day in a bar of the day, so a partition's bars lie in (day
  start, next day start] by ts_init; Nautilus's default, left-open (t, t+1m], differs only
  for trades exactly on a minute boundary.
- `exchange_bars`: Binance's 1-minute klines, `...-1-MINUTE-LAST-EXTERNAL`, and
- `mark_bars`: its mark-price klines, `...-1-MINUTE-MARK-EXTERNAL` (8 decimals, as marks),
  where a source has them (Binance public data), stamped the same way.

Checks: low <= open, close <= high, volume >= 0, the tick grid; minutes without a bar are
reported by a WARN check.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.core import nautilus_pyo3
from nautilus_trader.model.data import Bar, BarType
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
from hedgegrid_assets.frames.mark_prices import MARK_PRICE_PRECISION
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


def _consistent() -> pa.Check:
    def check(d) -> pl.LazyFrame:
        low, high = pl.col("low"), pl.col("high")
        return d.lazyframe.select(
            (low <= pl.min_horizontal("open", "close")) & (pl.max_horizontal("open", "close") <= high)
        )

    return pa.Check(check, name="low_le_open_close_le_high", error="not low <= open, close <= high")


def bar_kind(name: str, cli_name: str, spec: str, description: str, price_precision=None, derived=None) -> DataKind:
    """A 1-minute bar type as a kind: `spec` is Nautilus's bar spec and source
    ("1-MINUTE-LAST-INTERNAL"); `price_precision` (instrument -> int) defaults to the
    instrument's, whose tick grid the prices are then checked on."""
    on_tick_grid = price_precision is None
    precision = price_precision or (lambda inst: inst.price_precision)

    def partition_checks(part: PartitionContext) -> dict[str, list[pa.Check]]:
        tick, step = part.instrument.spec.tick_size, part.instrument.spec.step_size
        return {**({c: [on_grid(tick)] for c in OHLC} if on_tick_grid else {}), "volume": [on_grid(step)]}

    def to_nautilus(frame: pl.DataFrame, instrument: Instrument) -> list[Bar]:
        bar_type = BarType.from_str(_bar_type(instrument, spec))
        pp, sp = precision(instrument), instrument.size_precision
        return [
            Bar(bar_type, Price(o, pp), Price(h, pp), Price(lo, pp), Price(c, pp), Quantity(v, sp), int(te), int(ti))
            for o, h, lo, c, v, te, ti in zip(
                *(frame.get_column(col).to_list() for col in (*OHLC, "volume")),
                to_epoch_ns(frame, "ts_event"),
                to_epoch_ns(frame, "ts_init"),
                strict=True,
            )
        ]

    def to_arrow(frame: pl.DataFrame, instrument: Instrument) -> pyarrow.Table:
        pp, sp = precision(instrument), instrument.size_precision
        metadata = nautilus_pyo3.Bar.get_metadata(nautilus_pyo3.BarType.from_str(_bar_type(instrument, spec)), pp, sp)
        columns = {
            **{c: to_fixed_binary(frame.get_column(c), pp) for c in OHLC},
            "volume": to_fixed_binary(frame.get_column("volume"), sp),
            "ts_event": epoch_ns(frame.get_column("ts_event")),
            "ts_init": epoch_ns(frame.get_column("ts_init")),
        }
        return pyarrow.Table.from_pydict(columns, schema=nautilus_arrow_schema(Bar, metadata))

    return DataKind(
        name=name,
        cli_name=cli_name,
        description=f"{description} (Nautilus Bar, {spec})",
        model=BarsFrame,
        nautilus_cls=Bar,
        partition_checks=partition_checks,
        to_nautilus=to_nautilus,
        to_arrow=to_arrow,
        price_precision=precision,
        positive=OHLC,
        finite=("volume",),
        maxima=lambda inst: {
            **{c: largest_writable(PRICE_MAX, precision(inst)) for c in OHLC},
            "volume": largest_writable(QUANTITY_MAX, inst.size_precision),
        },
        row_rules=lambda part: [(pl.col("volume") < 0, "volume below zero")],
        unique_key=("ts_event",),
        receive_times=False,
        frame_checks=lambda: [_consistent()],
        stamped_at_close=True,
        bar_spec=spec,
        derived=derived,
    )


BARS = bar_kind("bars", "bars", "1-MINUTE-LAST-INTERNAL", "1-minute bars from the partition's trades",
                derived=(TRADES, from_trades))  # fmt: skip
# Binance's own 1-minute klines and mark-price klines (Binance public data), where a source has them.
EXCHANGE_BARS = bar_kind("exchange_bars", "klines", "1-MINUTE-LAST-EXTERNAL", "Binance 1-minute klines")
MARK_BARS = bar_kind(
    "mark_bars", "mark_klines", "1-MINUTE-MARK-EXTERNAL", "Binance 1-minute mark-price klines",
    price_precision=lambda inst: MARK_PRICE_PRECISION,
)  # fmt: skip
