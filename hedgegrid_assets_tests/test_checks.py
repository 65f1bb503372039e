"""Each validation rule catches its defect and reports it with counts and sample rows."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from hedgegrid_assets.checks import coverage
from hedgegrid_assets.checks.validation import run_schema
from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES, PartitionContext
from hedgegrid_assets.frames.trades import AGGRESSOR_SIDE
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.settings import Settings

DAY = dt.date(2024, 1, 2)
START = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


@pytest.fixture
def part() -> PartitionContext:
    s = Settings()
    return PartitionContext(DAY, instrument_for("BTCUSDT", s), s.checks)


def trades(n=5, **changes) -> pl.DataFrame:
    base = {
        "ts_event": [START + i * S for i in range(n)],
        "ts_init": [START + i * S + dt.timedelta(milliseconds=5) for i in range(n)],
        "price": [42000.1 + i / 10 for i in range(n)],
        "size": [0.001 * (i + 1) for i in range(n)],
        "aggressor_side": ["BUYER", "SELLER"] * (n // 2) + ["BUYER"] * (n % 2),
        "trade_id": [str(i) for i in range(n)],
    }
    for col, (row, value) in changes.items():
        base[col][row] = value
    return TRADES.conform(pl.DataFrame(base).with_columns(pl.col("aggressor_side").cast(AGGRESSOR_SIDE)))


def test_clean_frame_passes(part):
    result = run_schema(TRADES, trades(), part)
    assert result.passed and result.metadata["failure_count"].value == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"price": (2, 42000.15)}, "not a multiple of 0.10"),
        ({"size": (1, 0.0015)}, "not a multiple of 0.001"),
        ({"price": (3, -1.0)}, "greater_than(0)"),
        ({"price": (3, float("nan"))}, "not_nullable"),
        ({"trade_id": (4, "0")}, "duplicate trade_id"),
        ({"ts_event": (0, START - S)}, "outside the partition's UTC day"),
        ({"ts_init": (4, START + dt.timedelta(days=1))}, "outside the partition's UTC day"),
        ({"ts_init": (2, START + 2 * S + dt.timedelta(minutes=5))}, "ts_init - ts_event outside"),
        ({"ts_init": (2, START + 2 * S - dt.timedelta(seconds=3))}, "ts_init - ts_event outside"),
    ],
)
def test_each_defect_fails_with_sample_rows(part, changes, expected):
    frame = trades(**changes)
    result = run_schema(TRADES, frame, part)
    assert not result.passed and result.severity.value == "ERROR"
    assert expected in result.metadata["failures_by_check"].value
    assert result.metadata["failure_count"].value >= 1
    sample = result.metadata["failing_rows_sample"].value
    assert sample.startswith("| row |") and "failed" in sample


def test_unsorted_frame_fails(part):
    frame = trades()
    swapped = pl.concat([frame[1:2], frame[0:1], frame[2:]])  # bypass conform()'s sort
    result = run_schema(TRADES, swapped, part)
    assert not result.passed and "ts_init goes backwards" in result.metadata["failures_by_check"].value


def test_wrong_dtype_fails(part):
    frame = trades().with_columns(pl.col("size").cast(pl.Float32))
    assert not run_schema(TRADES, frame, part).passed


def funding(rates, next_hours, at_hours) -> pl.DataFrame:
    return FUNDING_RATES.conform(
        pl.DataFrame(
            {
                "ts_event": [START + dt.timedelta(hours=h) for h in at_hours],
                "ts_init": [START + dt.timedelta(hours=h, milliseconds=3) for h in at_hours],
                "rate": rates,
                "next_funding_time": [START + dt.timedelta(hours=h) for h in next_hours],
                "interval": [480] * len(rates),
            }
        )
    )


def test_funding_rate_cap(part):
    frame = funding([0.0001, 0.05], [8, 8], [0, 1])
    result = run_schema(FUNDING_RATES, frame, part)
    assert not result.passed and "beyond the exchange cap" in result.metadata["failures_by_check"].value


def test_funding_settlement_coverage_warns(part):
    covered = coverage.funding_coverage(funding([1e-4, 1e-4, 1e-4], [8, 16, 24], [0, 9, 17]), part)
    assert covered.passed and covered.metadata["uncovered"].value == 0
    missing = coverage.funding_coverage(funding([1e-4, 1e-4], [8, 24], [0, 17]), part)
    assert not missing.passed and missing.severity.value == "WARN"
    assert missing.metadata["uncovered_settlements"].value == ["2024-01-02T16:00:00+00:00"]


def test_trade_gap_warns_with_where(part):
    frame = trades(n=3)  # three trades at 00:00:00-00:00:02, then nothing until midnight
    result = coverage.trade_gap(frame, part)
    assert not result.passed and result.severity.value == "WARN"
    assert result.metadata["largest_gap_minutes"].value == pytest.approx(24 * 60 - 2 / 60, abs=1e-3)
    assert result.metadata["gap_from"].value == "2024-01-02T00:00:02+00:00"


def test_mark_price_band(part):
    t = trades()
    marks = MARK_PRICES.conform(
        pl.DataFrame({"ts_event": [START, START + S], "ts_init": [START, START + S], "value": [42000.0, 47000.0]})
    )
    result = coverage.mark_price_band(marks, t, part)
    assert not result.passed and result.metadata["failure_count"].value == 1
    assert "47000" in result.metadata["failing_rows_sample"].value


def test_mark_index_band_warns(part):
    marks = MARK_PRICES.conform(
        pl.DataFrame(
            {
                "ts_event": [START + i * S for i in range(4)],
                "ts_init": [START + i * S for i in range(4)],
                "value": [42000.0, 42100.0, 42000.0, 43000.0],
                "index_price": [41990.0, 42000.0, None, 42000.0],  # 0.02%, 0.24%, none, 2.4%
            }
        )
    )
    result = coverage.mark_index_band(marks, part)
    assert not result.passed and result.severity.value == "WARN"
    assert result.metadata["compared"].value == 3 and result.metadata["failure_count"].value == 1
    assert "43000" in result.metadata["failing_rows_sample"].value
    assert coverage.mark_index_band(marks.head(3), part).passed
    no_index = coverage.mark_index_band(marks.with_columns(index_price=None), part)
    assert no_index.passed and no_index.description == "the source gives no index price"


def test_funding_without_interval_fails_the_schema(part):
    frame = funding([0.0001], [8], [0]).with_columns(interval=pl.lit(None, pl.UInt16))
    assert not run_schema(FUNDING_RATES, frame, part).passed
    assert FUNDING_RATES.complete(frame, part).get_column("interval").to_list() == [480]


def test_unique_key_hash_pass_never_hides_a_duplicate(part):
    from hedgegrid_assets.frames.kind import surely_distinct

    frame = trades(n=6)
    assert surely_distinct(frame, ("trade_id",)) and surely_distinct(frame, ("ts_event", "ts_init"))
    dup = trades(n=6, trade_id=(5, "2"))
    assert not surely_distinct(dup, ("trade_id",))
    result = run_schema(TRADES, dup, part)
    assert not result.passed and result.metadata["failing_rows"].value == 2  # both rows named
    # A mark repeated at the same (ts_event, ts_init) is a duplicate key for marks.
    marks = MARK_PRICES.conform(
        pl.DataFrame({"ts_event": [START, START], "ts_init": [START, START], "value": [1.0, 1.0]})
    )
    assert not surely_distinct(marks, MARK_PRICES.unique_key)
    assert "duplicate ts_event/ts_init" in run_schema(MARK_PRICES, marks, part).metadata["failures_by_check"].value


def test_a_partition_mostly_quarantined_fails(part):
    frame = trades(n=2)
    few = run_schema(TRADES, frame, part, quarantined={"price not a positive number": 1})
    assert few.passed  # a bad row of three: set aside, the partition stands
    most = run_schema(TRADES, frame, part, quarantined={"ts_event outside 2024-01-02": 3})
    assert not most.passed and most.severity.value == "ERROR"
    assert most.description.startswith("3 of 5 rows quarantined (ts_event outside 2024-01-02: 3): more than 50%")
    everything = run_schema(TRADES, frame.head(0), part, quarantined={"duplicate trade_id": 4})
    assert not everything.passed and everything.description.startswith("4 of 4 rows quarantined")
