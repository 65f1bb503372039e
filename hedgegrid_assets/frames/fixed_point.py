"""Columnar conversion of float columns to Nautilus's 128-bit fixed-point values.

The PyPI wheel of nautilus_trader (1.220 to 1.231) is the high-precision build: prices and sizes are
little-endian int128 equal to value * 10**16 (`FIXED_PRECISION`). An Arrow decimal128(38, 16)
array has exactly that byte layout, so: round to the instrument's precision as int64 units,
reinterpret as decimal128(38, precision), rescale to 16 places (Arrow's C++ cast), and view
the buffer as binary(16). No Python object per row.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from nautilus_trader.model.objects import FIXED_PRECISION

DECIMAL = pa.decimal128(38, FIXED_PRECISION)
INT64_MAX = 2**63 - 1


def largest_writable(nautilus_max: float, precision: int) -> float:
    """The largest value a catalog column holds: Nautilus's own limit (PRICE_MAX,
    QUANTITY_MAX), and what `to_decimal`'s int64 units of 10**-precision can carry."""
    return min(nautilus_max, INT64_MAX / 10**precision)


def to_decimal(values: pl.Series, precision: int) -> pa.Array:
    """Floats rounded to `precision` places, as decimal128(38, FIXED_PRECISION).

    Half away from zero, as Nautilus's own `Price(value, precision)` rounds.
    """
    units = (values * 10**precision).round(0, mode="half_away_from_zero").cast(pl.Int64).to_arrow()
    return units.cast(pa.decimal128(38, 0)).view(pa.decimal128(38, precision)).cast(DECIMAL)


def to_fixed_binary(values: pl.Series, precision: int) -> pa.Array:
    """Floats as Nautilus `Price`/`Quantity` raw values: fixed_size_binary(16)."""
    return to_decimal(values, precision).view(pa.binary(16))


def decimal_json_bytes(values: pl.Series, places: int) -> pa.Array:
    """Floats rounded to `places` decimals as the bytes of a JSON string in plain notation
    (`b'"-0.00012345"'`): how Nautilus stores a `FundingRateUpdate.rate`. Never scientific
    notation, which Python's `str(Decimal)` gives below 1e-6 ("1E-8")."""
    units = pl.DataFrame({"u": (values * 10**places).round(0, mode="half_away_from_zero").cast(pl.Int64)})
    digits = pl.col("u").abs().cast(pl.String).str.zfill(places + 1)
    text = pl.concat_str(
        pl.lit('"'),
        pl.when(pl.col("u") < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        digits.str.head(-places),
        pl.lit("."),
        digits.str.tail(places),
        pl.lit('"'),
    )
    return units.select(text).to_series().to_arrow().cast(pa.binary())


def decimal_json_floats(values: pa.Array) -> pl.Series:
    """The inverse of `decimal_json_bytes`, as floats (for checks that read the catalog back)."""
    return pl.from_arrow(values.cast(pa.string())).str.strip_chars('"').cast(pl.Float64)


def epoch_ns(values: pl.Series) -> pa.Array:
    """A UTC ns timestamp column as Nautilus's uint64 epoch nanoseconds."""
    return values.dt.epoch("ns").cast(pl.UInt64).to_arrow()
