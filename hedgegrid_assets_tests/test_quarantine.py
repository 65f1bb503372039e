"""Rows bad one by one are quarantined to a side file and counted; raw data stays as landed."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
from dagster import Definitions
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.assets import build_assets
from hedgegrid_assets.definitions import BUILD_JOB, build_job, build_resources
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.frames import TRADES
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource
from hedgegrid_assets.sources.sample import generate_day
from hedgegrid_assets_tests.conftest import QUIET, make_instance, make_settings

DAY = dt.date(2024, 1, 2)


class RecordingSource(MarketDataSource):
    """Lands one recorded file as is (stands in for a recorder's JSONL)."""

    path: str

    @property
    def name(self) -> str:
        return "recording"

    def land(self, request: LandingRequest) -> None:
        shutil.copy(self.path, request.dest / Path(self.path).name)

    def readers(self):
        return {k.name: (lambda files, part, k=k: binance_ws.read_kind(k, files)) for k in binance_ws.KINDS_DECODED}


def recording_with_defects(tmp_path: Path, settings) -> Path:
    from hedgegrid_assets.partitions import partition_context

    part = partition_context(partition_key(DAY, "BTCUSDT"), settings)
    lines = generate_day(part, 3_000, seed=3)["line"].to_list()
    trades = [i for i, line in enumerate(lines) if "@aggTrade" in line]
    ts, payload = lines[trades[10]].split(" ", 1)
    msg = json.loads(payload)
    bad = []
    # Each with a fresh trade id; 1e30 is more than Nautilus's fixed point holds (issue 10, point 5).
    for change in ({"p": "0.0"}, {"p": "NaN"}, {"q": "-0.001"}, {"p": "1e30"}):
        msg["data"]["a"] += 10_000_000
        bad.append(f"{ts} " + json.dumps({**msg, "data": {**msg["data"], **change}}))
    bad.append(lines[trades[20]])  # a replayed duplicate of an earlier trade
    stray = json.loads(lines[trades[30]].split(" ", 1)[1])
    stray["data"] |= {"a": stray["data"]["a"] + 20_000_000, "T": stray["data"]["T"] - 86_400_000}  # yesterday's
    bad.append(lines[trades[30]].split(" ", 1)[0] + " " + json.dumps(stray))
    path = tmp_path / "btcusdt-2024-01-02.jsonl.gz"
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines[: trades[40]] + bad + lines[trades[40] :]) + "\n")
    return path


def test_bad_rows_are_quarantined_counted_and_the_rest_is_written(tmp_path):
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    recording = recording_with_defects(tmp_path, settings)
    digest = hashlib.sha256(recording.read_bytes()).hexdigest()
    resources = build_resources(settings) | {"source": RecordingSource(path=str(recording))}
    defs = Definitions(assets=build_assets(settings), jobs=[build_job(settings)], resources=resources)
    result = defs.resolve_job_def(BUILD_JOB).execute_in_process(
        partition_key=partition_key(DAY, "BTCUSDT"), instance=make_instance(tmp_path), run_config=QUIET
    )
    assert result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "trades_schema")
    assert check.passed
    assert check.metadata["quarantined_rows"].value == 6
    assert check.metadata["quarantined_by_reason"].value == {
        "price not a positive number": 2,
        "price beyond what the catalog holds (1.70141e+13)": 1,
        "size not a positive number": 1,
        "duplicate trade_id": 1,
        "ts_event outside 2024-01-02": 1,
    }
    side = pl.read_parquet(settings.staging_dir / "quarantine" / "trades" / "2024-01-02" / "BTCUSDT.parquet")
    assert side.height == 6 and set(side.columns) == {*TRADES.columns, "reason"}
    # The catalog holds every other trade; the landed raw file is byte-for-byte the recording.
    all_trades = binance_ws.read_kind(TRADES, [recording])
    assert len(ParquetDataCatalog(str(settings.catalog_path)).trade_ticks()) == all_trades.height - 6
    (landed,) = (settings.raw_dir / "recording" / "2024-01-02" / "BTCUSDT").iterdir()
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == digest


def test_a_bad_row_does_not_make_a_good_one_with_its_id_a_duplicate():
    from hedgegrid_assets.checks import quarantine
    from hedgegrid_assets.frames.trades import AGGRESSOR_SIDE
    from hedgegrid_assets.partitions import partition_context
    from hedgegrid_assets.settings import Settings

    start = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    times = [start + dt.timedelta(seconds=i) for i in range(5)]
    frame = TRADES.conform(
        pl.DataFrame(
            {
                "ts_event": times,
                "ts_init": times,
                "price": [-5.0, 42000.1, 42000.2, 42000.3, 42000.4],
                "size": [0.1] * 5,
                "aggressor_side": ["BUYER"] * 5,
                "trade_id": ["2", "2", "3", "3", "4"],
            }
        ).with_columns(pl.col("aggressor_side").cast(AGGRESSOR_SIDE))
    )
    good, q = quarantine.split(TRADES, frame, partition_context("2024-01-02|BTCUSDT", Settings()))
    # Trade 2's bad copy goes for its price, its good copy stays; trade 3's repeat is the duplicate.
    assert good.select("trade_id", "price").rows() == [("2", 42000.1), ("3", 42000.2), ("4", 42000.4)]
    assert q.counts == {"duplicate trade_id": 1, "price not a positive number": 1}
    assert q.rows.select("trade_id", "reason").rows() == [
        ("2", "price not a positive number"),
        ("3", "duplicate trade_id"),
    ]


def test_values_beyond_the_fixed_point_are_quarantined_not_crashing_the_writer():
    from hedgegrid_assets.checks import quarantine
    from hedgegrid_assets.frames import MARK_PRICES
    from hedgegrid_assets.instruments import BINANCE_USDM_SPECS
    from hedgegrid_assets.partitions import partition_context
    from hedgegrid_assets.settings import Settings

    start = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    times = [start + dt.timedelta(seconds=i) for i in range(4)]
    marks = MARK_PRICES.conform(
        pl.DataFrame({"ts_event": times, "ts_init": times, "value": [42000.5, 1e11, 9e10, 9.9e7]})
    )
    good, q = quarantine.split(MARK_PRICES, marks, partition_context("2024-01-02|BTCUSDT", Settings()))
    # Marks carry 8 decimals: int64 units of 1e-8 end at 9.22e10. Below that, BTCUSDT's sane
    # bound (10^9 ticks of 0.10, unless instruments.BTCUSDT.max_price says otherwise) holds.
    assert good["value"].to_list() == [42000.5, 9.9e7]
    assert q.counts == {
        "value beyond what the catalog holds (9.22337e+10)": 1,
        "value beyond the instrument's bound (1e+08, instruments.BTCUSDT.max_price)": 1,
    }
    spec = BINANCE_USDM_SPECS["BTCUSDT"].model_copy(update={"max_price": "4529764"})  # Binance's maxPrice
    _, q = quarantine.split(
        MARK_PRICES, marks, partition_context("2024-01-02|BTCUSDT", Settings(instruments={"BTCUSDT": spec}))
    )
    assert q.counts["value beyond the instrument's bound (4.52976e+06, instruments.BTCUSDT.max_price)"] == 2
