"""What defines a data kind, and the partition context its frames are checked against.

A kind is one `DataKind` value: its name (also the asset name of its validated frame), its
canonical frame schema (a pandera polars `DataFrameModel`), the checks that depend on the
partition (day window, instrument grid, caps), its Nautilus class and how a frame becomes
Nautilus objects. The asset plumbing, checks and catalog IO manager work from this value
alone, so a new kind is a new module in this package plus its parsing in the sources.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
import pyarrow
from nautilus_trader.serialization.arrow.schema import NAUTILUS_ARROW_SCHEMA
from pandera.api.polars.types import PolarsData

from hedgegrid_assets.instruments import Instrument
from hedgegrid_assets.settings import ChecksSettings

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
TIMESTAMP = pl.Datetime(time_unit="ns", time_zone="UTC")


@dataclass(frozen=True)
class PartitionContext:
    """One date|symbol partition: the UTC day and the instrument the frame belongs to."""

    day: dt.date
    instrument: Instrument
    checks: ChecksSettings

    @property
    def start_ns(self) -> int:
        return int(dt.datetime.combine(self.day, dt.time(), dt.UTC).timestamp()) * NS_PER_S

    @property
    def end_ns(self) -> int:
        """First nanosecond of the next day (exclusive end)."""
        return self.start_ns + NS_PER_DAY

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.day, dt.time(), dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)


@dataclass(frozen=True)
class DataKind:
    name: str  # asset name of the validated frame, e.g. "trades"
    cli_name: str  # what `hedgegrid build --data-types` calls it
    description: str
    model: type[pa.DataFrameModel]
    nautilus_cls: type
    # Checks that need the partition (grid, caps): column -> extra pandera checks.
    partition_checks: Callable[[PartitionContext], dict[str, list[pa.Check]]]
    # Frame -> Nautilus objects sorted by ts_init (the reference catalog path).
    to_nautilus: Callable[[pl.DataFrame, Instrument], list]
    # Frame -> Arrow table in Nautilus's own schema and metadata (the direct catalog path).
    to_arrow: Callable[[pl.DataFrame, Instrument], pyarrow.Table]
    # Precision written to the catalog file's metadata for the price-like column.
    price_precision: Callable[[Instrument], int]
    # Row-by-row defects that are quarantined rather than failing the partition:
    # these columns must be finite and > 0 (or just finite) ...
    positive: tuple[str, ...] = ()
    finite: tuple[str, ...] = ()
    # ... and no larger than what the catalog holds for the instrument (column -> maximum) ...
    maxima: Callable[[Instrument], dict[str, float]] = lambda instrument: {}
    # ... and no larger than is sane for the instrument (its max price / quantity) ...
    sane_maxima: Callable[[Instrument], dict[str, float]] = lambda instrument: {}
    # ... and not defective as a whole row (e.g. a crossed quote): (condition, reason) ...
    row_rules: Callable[[PartitionContext], list[tuple[pl.Expr, str]]] = lambda part: []
    # ... and rows repeating this key are duplicates (the first one is kept); () for none.
    unique_key: tuple[str, ...] = ("ts_event", "ts_init")
    # Columns a source may leave null, filled from the partition (the instrument's specs).
    from_partition: Callable[[PartitionContext], dict[str, pl.Expr]] = lambda part: {}
    # Bars are known at their close: ts_init (which Nautilus files and queries by) of a day's
    # bars lies in (day start, next day start], ts_event (the bar's open) in the day, so that
    # every trade of the day falls in a bar of the day (right-open minutes [t, t+1m)).
    stamped_at_close: bool = False
    # ts_init is a receive time to check against ts_event (not for bars: close vs open).
    receive_times: bool = True
    # Checks across a row's columns (a bar's low <= open, close <= high).
    frame_checks: Callable[[], list[pa.Check]] = lambda: []
    # The catalog identifier beside the instrument id: a bar type's "1-MINUTE-LAST-INTERNAL".
    bar_spec: str | None = None
    # A kind computed from another kind's validated frame (bars from trades) rather than read
    # from the source: (that kind, frame -> this kind's frame).
    derived: tuple[DataKind, Callable[[pl.DataFrame, PartitionContext], pl.DataFrame]] | None = None

    def catalog_id(self, instrument: Instrument) -> str:
        """The identifier Nautilus files this kind under: the instrument id, or the bar type."""
        return f"{instrument.instrument_id}-{self.bar_spec}" if self.bar_spec else instrument.instrument_id

    def window(self, part: PartitionContext) -> tuple[int, int]:
        """First and last ns the partition's file holds (Nautilus's file name interval)."""
        if self.stamped_at_close:
            return part.start_ns + 1, part.end_ns
        return part.start_ns, part.end_ns - 1

    def in_window(self, column: str, part: PartitionContext) -> pl.Expr:
        c = pl.col(column)
        if self.stamped_at_close and column == "ts_init":
            return (c > part.start) & (c <= part.end)
        return (c >= part.start) & (c < part.end)

    @property
    def catalog_asset(self) -> str:
        """The asset of this kind's catalog files, e.g. "trades_catalog"."""
        return f"{self.name}_catalog"

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)

    def schema(self, part: PartitionContext) -> pa.DataFrameSchema:
        """The canonical schema plus the checks every kind shares and the partition's own."""
        schema = self.model.to_schema()
        extra = {
            "ts_event": [within_day(self, "ts_event", part)],
            "ts_init": [within_day(self, "ts_init", part)],
            **self.partition_checks(part),
        }
        schema = schema.update_columns(
            {col: {"checks": [*schema.columns[col].checks, *checks]} for col, checks in extra.items()}
        )
        schema.checks = [
            *schema.checks,
            *self.frame_checks(),
            sorted_by_ts_init(),
            *([receive_latency(part.checks)] if self.receive_times else []),
            *([unique_key(self.unique_key)] if self.unique_key else []),
        ]
        return schema

    def complete(self, frame: pl.DataFrame, part: PartitionContext) -> pl.DataFrame:
        """Fill what the source left unsaid from the partition (e.g. a funding interval)."""
        fills = self.from_partition(part)
        if not fills:
            return frame
        return frame.with_columns(pl.col(name).fill_null(value) for name, value in fills.items())

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())

    def polars_schema(self) -> pl.Schema:
        return pl.Schema({name: col.dtype.type for name, col in self.model.to_schema().columns.items()})

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Canonical column order and types, sorted by ts_init (stable: keeps receive order).
        A column the model lets be null may be left out: it is all null then."""
        nullable = {n for n, col in self.model.to_schema().columns.items() if col.nullable}
        frame = frame.select(
            pl.col(n).cast(t) if n in frame.columns or n not in nullable else pl.lit(None, t).alias(n)
            for n, t in self.polars_schema().items()
        )
        if frame.get_column("ts_init").is_sorted():  # the usual case: no sorted copy of a big day
            return frame
        return frame.sort("ts_init", maintain_order=True)


# -- checks shared by every kind ------------------------------------------------------------


def within_day(kind: DataKind, column: str, part: PartitionContext) -> pa.Check:
    start, end = part.start, part.end
    at_close = kind.stamped_at_close and column == "ts_init"
    shown = (
        f"({start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}]"
        if at_close
        else f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
    )
    return pa.Check(
        lambda d: d.lazyframe.select(kind.in_window(column, part)),
        name="within_partition_day",
        error=f"timestamp outside the partition's UTC day {shown}",
    )


def on_grid(increment: str) -> pa.Check:
    """Value is a whole multiple of the tick/step size (to 1e-6 of an increment)."""
    step = float(increment)

    def check(d: PolarsData) -> pl.LazyFrame:
        ticks = pl.col(d.key) / step
        return d.lazyframe.select((ticks - ticks.round()).abs() <= 1e-6)

    return pa.Check(check, name=f"on_grid({increment})", error=f"not a multiple of {increment}")


def key_expr(columns: tuple[str, ...]) -> pl.Expr:
    return pl.col(columns[0]) if len(columns) == 1 else pl.struct(list(columns))


def surely_distinct(frame: pl.DataFrame | pl.LazyFrame, columns: tuple[str, ...]) -> bool:
    """True when the rows' key is certainly distinct: its 64-bit hashes all are (a collision can
    only make this False, never wrongly True). About 5x cheaper than an exact search for
    duplicates of millions of strings, which then runs only when this says False."""
    return frame.lazy().select(key_expr(columns).hash().n_unique() == pl.len()).collect().item()


def unique_key(columns: tuple[str, ...]) -> pa.Check:
    """No two rows share the kind's key (pandera's `unique=` field, with a hash pass first)."""

    def check(d: PolarsData):
        if surely_distinct(d.lazyframe, columns):
            return True
        return d.lazyframe.select(key_expr(columns).is_duplicated().not_())

    return pa.Check(check, name=f"unique({'/'.join(columns)})", error=f"duplicate {'/'.join(columns)}")


def sorted_by_ts_init() -> pa.Check:
    def check(d: PolarsData) -> pl.LazyFrame:
        prev = pl.col("ts_init").shift(1)
        return d.lazyframe.select(prev.is_null() | (pl.col("ts_init") >= prev))

    return pa.Check(check, name="sorted_by_ts_init", error="ts_init goes backwards")


def receive_latency(cfg: ChecksSettings) -> pa.Check:
    """ts_init is the receive time: not before the event (beyond clock skew), not absurdly late."""
    lo = -int(cfg.max_clock_skew_s * NS_PER_S)
    hi = int(cfg.max_receive_latency_s * NS_PER_S)

    def check(d: PolarsData) -> pl.LazyFrame:
        lag = (pl.col("ts_init") - pl.col("ts_event")).dt.total_nanoseconds()
        return d.lazyframe.select(lag.is_between(lo, hi))

    return pa.Check(
        check,
        name="ts_init_after_ts_event",
        error=f"ts_init - ts_event outside [{-cfg.max_clock_skew_s}s, {cfg.max_receive_latency_s}s]",
    )


def nautilus_arrow_schema(cls: type, metadata: dict) -> pyarrow.Schema:
    """Nautilus's own Arrow schema for `cls` with a file's metadata: an upgrade that changes it
    changes our files too, and the differential tests against `write_data` then fail loudly.
    The metadata keys are sorted (Nautilus's `get_metadata` gives them in hash order, which
    changes from process to process), so a rebuild writes byte-identical files."""
    return NAUTILUS_ARROW_SCHEMA[cls].with_metadata(dict(sorted(metadata.items())))


def to_epoch_ns(frame: pl.DataFrame, column: str):
    """A timestamp column as a numpy uint64 array of epoch nanoseconds (zero-copy when possible)."""
    return frame.get_column(column).dt.epoch("ns").cast(pl.UInt64).to_numpy()
