"""The CSV sources (generic with the seed config, Tardis datasets, data.binance.vision): fixtures in
the exact real shapes, generated here, and the catalog's values equal what the files say,
through Dagster in process, `hedgegrid build` and `dagster asset materialize`.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import hashlib
import io
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest

from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, TRADES
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.binance import BinanceVisionSource
from hedgegrid_assets.sources.csv import GenericCsvSource
from hedgegrid_assets.sources.registry import build_source
from hedgegrid_assets.sources.tardis_datasets import TardisCsvSource
from hedgegrid_assets_tests.conftest import build, make_instance, make_settings
from hedgegrid_assets_tests.test_cli import BIN, dagster_materialize, run
from hedgegrid_assets_tests.test_jsonl_source import (
    DAY,
    Truth,
    catalog_funding,
    catalog_marks,
    catalog_trades,
    check_evaluations,
    iso_us,
    land,
    make_truth,
    part_for,
    write_config,
)

# -- writing files in their real packing -------------------------------------------------------


def write_packed(path: Path, text: str, member: str | None = None) -> Path:
    """`text` as path's suffix says: .gz, .zip (one member named like the file), .bz2 or plain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(member or path.with_suffix(".csv").name, data)
        path.write_bytes(buf.getvalue())
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(data))
    else:
        path.write_bytes(data)
    return path


def csv_text(header: list[str] | None, rows: list[list]) -> str:
    lines = ([",".join(header)] if header else []) + [",".join("" if v is None else str(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


def ms_text(ms: int, fmt: str) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime(fmt)


def expected_trades(truth: Truth, ts_init: str = "T", side=None, ids=None) -> list[tuple]:
    """Catalog rows (price, size, side, id, ts_event ns, ts_init ns) in ts_init order."""
    rows = []
    for i, tr in enumerate(truth.trades):
        init = tr["T"] * 1_000_000 if ts_init == "T" else tr["recv_us"] * 1000
        s = side(tr) if side else ("SELLER" if tr["m"] else "BUYER")
        rows.append((float(tr["p"]), float(tr["q"]), s, ids(i, tr) if ids else str(tr["a"]), tr["T"] * 1_000_000, init))
    return sorted(rows, key=lambda r: r[5])


def frame_rows(frame: pl.DataFrame, kind) -> list[tuple]:
    f = frame.with_columns(pl.col(c).dt.epoch("ns") for c in ("ts_event", "ts_init"))
    if kind is TRADES:
        f = f.with_columns(pl.col("aggressor_side").cast(pl.String))
        return list(f.select("price", "size", "aggressor_side", "trade_id", "ts_event", "ts_init").iter_rows())
    if kind is FUNDING_RATES:
        f = f.with_columns(pl.col("next_funding_time").dt.epoch("ns"))
        return list(f.select("rate", "next_funding_time", "ts_event", "ts_init").iter_rows())
    return list(f.select("value", "ts_event", "ts_init").iter_rows())


# -- generic CSV, seed config --------------------------------------------------------------------


def seed_files(root: Path, truth: Truth) -> Path:
    """Per-day files in three different dialects, described by the seed project's config format."""
    d, sym = truth.day, truth.symbol
    trades = [[ms_text(t["T"], "%Y-%m-%d %H:%M:%S.%f"), t["p"], t["q"], "Sell" if t["m"] else "BUY", t["a"], "x"]
              for t in truth.trades]  # fmt: skip
    write_packed(
        root / "in" / sym / f"trades_{d}.csv.gz", csv_text(["Time", "Price", "Qty", "Side", "TradeId", "Note"], trades)
    )
    marks = [[m["E"], m["p"]] for m in truth.marks]  # epoch ms, unit from magnitude
    write_packed(root / "in" / sym / f"mark_{d}.csv", csv_text(["ts", "markPrice"], marks))
    funding = [[iso_us(f["E"] * 1000, 6), f["r"], ms_text(f["T"], "%Y-%m-%dT%H:%M:%S+00:00")] for f in truth.funding]
    write_packed(root / "in" / sym / f"funding_{d}.csv.zip", csv_text(["datetime", "rate", "nextFundingTime"], funding))
    return write_config(root / "seed.json", {
        "base_path": "in",
        "files": {
            "trades": {"file_path": "{symbol}/trades_{date}.csv.gz",
                       "columns": {"timestamp": "Time", "price": "Price", "size": "Qty", "aggressor_side": "Side",
                                   "trade_id": "TradeId"},
                       "timestamp_format": "%Y-%m-%d %H:%M:%S.%f"},
            "mark": {"file_path": "{symbol}/mark_{date}.csv", "columns": {"timestamp": "ts", "mark_price": "markPrice"}},
            "funding": {"file_path": "{symbol}/funding_{date}.csv.zip",
                        "columns": {"timestamp": "datetime", "funding_rate": "rate",
                                    "next_funding_time": "nextFundingTime"}},
        },
    })  # fmt: skip


def test_seed_config_per_day_files_through_dagster(tmp_path):
    truth = make_truth(n_trades=150, mark_every_s=300)
    cfg = seed_files(tmp_path, truth)
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=cfg)
    result = build(settings, make_instance(tmp_path), [partition_key(DAY, "BTCUSDT")])[
        str(partition_key(DAY, "BTCUSDT"))
    ]
    checks = check_evaluations(result)
    assert all(
        checks[c].passed
        for c in ("trades_schema", "mark_prices_schema", "funding_rates_schema", "mark_prices_near_trades")
    )
    cat = settings.catalog_path
    assert catalog_trades(cat) == expected_trades(truth)
    assert catalog_marks(cat) == [(float(m["p"]), m["E"] * 1_000_000, m["E"] * 1_000_000) for m in truth.marks]
    assert catalog_funding(cat) == [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["E"] * 1_000_000) for f in truth.funding
    ]
    # Raw zone: the three files exactly as found.
    raw = settings.raw_dir / "csv" / "2024-01-02" / "BTCUSDT"
    assert sorted(p.name for p in raw.iterdir()) == [
        "funding_2024-01-02.csv.zip",
        "mark_2024-01-02.csv",
        "trades_2024-01-02.csv.gz",
    ]
    assert (raw / "mark_2024-01-02.csv").read_bytes() == (
        tmp_path / "in" / "BTCUSDT" / "mark_2024-01-02.csv"
    ).read_bytes()


def test_multi_day_file_guessed_columns_buyer_maker_and_derived_ids(tmp_path):
    """One bz2 file over two days, columns unmapped (guessed), is_buyer_maker flags, no trade id,
    a receive-time column: each partition keeps its ts_init day."""
    days = [DAY, DAY + dt.timedelta(days=1)]
    truths = [make_truth(d, n_trades=120, mark_every_s=600) for d in days]
    all_trades = [t for tr in truths for t in tr.trades]
    rows = [
        [t["T"] * 1000, t["recv_us"], t["p"], t["q"], str(t["m"]).lower(), "BTCUSDT"] for t in all_trades
    ]  # µs epoch
    write_packed(
        tmp_path / "all.csv.bz2",
        csv_text(["transact_time", "local_timestamp", "PRICE", "quantity", "is_buyer_maker", "symbol"], rows),
    )
    marks = [[iso_us(m["E"] * 1000, 3), m["p"]] for tr in truths for m in tr.marks]
    write_packed(tmp_path / "marks.csv", csv_text(["time", "mark_price"], marks))
    cfg = write_config(tmp_path / "c.json", {"base_path": str(tmp_path), "land": "hardlink",
                                             "files": {"trades": {"file_path": "all.csv.bz2"}, "mark": {"file_path": "marks.csv", "symbol": "BTCUSDT"}}})  # fmt: skip
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=cfg)
    results = build(settings, make_instance(tmp_path), [partition_key(d, "BTCUSDT") for d in days])
    assert all(r.success for r in results.values())
    line_of = {t["a"]: i + 2 for i, t in enumerate(all_trades)}  # header is line 1
    expected = [
        row for tr in truths for row in expected_trades(tr, ts_init="recv", ids=lambda i, t: f"L{line_of[t['a']]}")
    ]
    assert catalog_trades(settings.catalog_path) == expected
    assert [m[0] for m in catalog_marks(settings.catalog_path)] == [float(m["p"]) for tr in truths for m in tr.marks]
    assert catalog_funding(settings.catalog_path) == []  # not configured: nothing, and no error
    # Landed by hard link: the same bytes, no copy.
    landed = settings.raw_dir / "csv" / "2024-01-03" / "BTCUSDT" / "all.csv.bz2"
    assert landed.stat().st_ino == (tmp_path / "all.csv.bz2").stat().st_ino


@pytest.mark.parametrize(
    ("header", "render", "options", "step_ms"),
    [
        ("ts", lambda ms: str(ms // 1000), {}, 1000),  # seconds
        ("ts", lambda ms: f"{ms // 1000}.{ms % 1000:03d}", {}, 1),  # decimal seconds
        ("ts", lambda ms: str(ms), {}, 1),  # ms
        ("ts", lambda ms: str(ms * 1000), {}, 1),  # µs
        ("ts", lambda ms: str(ms * 1_000_000), {}, 1),  # ns
        ("ts", lambda ms: str(ms), {"timestamp_unit": "ms"}, 1),  # explicit unit
        ("ts", lambda ms: str(ms // 1000), {"timestamp_format": "s"}, 1000),
        ("date", lambda ms: ms_text(ms, "%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z", {}, 1),  # ISO, Z
        (
            "date",
            lambda ms: (dt.datetime.fromtimestamp(ms / 1000, dt.UTC) + dt.timedelta(hours=2)).strftime(
                "%Y-%m-%d %H:%M:%S.%f+02:00"
            ),
            {},
            1,
        ),
        ("date", lambda ms: ms_text(ms, "%d/%m/%Y %H:%M:%S.%f"), {"timestamp_format": "%d/%m/%Y %H:%M:%S.%f"}, 1),
        # ISO rows may differ in separator and offset from row to row: each value is read on its own.
        (
            "date",
            lambda ms: ms_text(ms, "%Y-%m-%d %H:%M:%S.%f") if ms % 2 else ms_text(ms, "%Y-%m-%dT%H:%M:%S.%f+00:00"),
            {},
            1,
        ),
        ("date", lambda ms: ms_text(ms - ms % 60_000, "%Y-%m-%dt%H:%Mz"), {}, 60_000),  # minutes, lower-case t and z
    ],
)
def test_timestamp_spellings(tmp_path, header, render, options, step_ms):
    truth = make_truth(n_trades=20)
    rows = [[render(t["T"]), t["p"], t["q"], "b" if not t["m"] else "S", t["a"]] for t in truth.trades]
    path = write_packed(tmp_path / "t.csv", csv_text([header, "px", "amount", "taker_side", "tid"], rows))
    cfg = write_config(
        tmp_path / "c.json",
        {"base_path": str(tmp_path), "symbol": "BTCUSDT", "files": {"trades": {"file_path": "t.csv", **options}}},
    )
    frame = GenericCsvSource(config_path=str(cfg)).read_frame(TRADES, [path], part_for())
    expected_ms = [t["T"] // step_ms * step_ms for t in truth.trades]  # written to the second/minute
    assert frame["ts_event"].dt.epoch("ns").to_list() == [ms * 1_000_000 for ms in expected_ms]
    assert frame["aggressor_side"].cast(pl.String).to_list() == ["SELLER" if t["m"] else "BUYER" for t in truth.trades]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip", ".bz2"])
def test_every_packing(tmp_path, suffix):
    truth = make_truth(n_trades=10)
    rows = [[t["T"], t["p"], t["q"], t["m"], t["a"]] for t in truth.trades]
    path = write_packed(tmp_path / f"t{suffix}", csv_text(["time", "price", "size", "m", "id"], rows))
    cfg = write_config(
        tmp_path / "c.json",
        {"base_path": str(tmp_path), "symbol": "BTCUSDT", "files": {"trades": {"file_path": path.name}}},
    )
    frame = GenericCsvSource(config_path=str(cfg)).read_frame(TRADES, [path], part_for())
    assert frame_rows(frame, TRADES) == expected_trades(truth)


# -- Tardis datasets ---------------------------------------------------------------------------


TARDIS_TRADES = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
TARDIS_TICKER = ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate",
                 "predicted_funding_rate", "open_interest", "last_price", "index_price", "mark_price"]  # fmt: skip


def tardis_files(root: Path, truth: Truth) -> tuple[list[dict], list[dict]]:
    """The day's two Tardis files; returns the expected (mark rows, funding rows)."""
    sym, d = truth.symbol, truth.day
    trades = [["binance-futures", sym, t["T"] * 1000, t["recv_us"], t["a"], "sell" if t["m"] else "buy", t["p"], t["q"]]
              for t in truth.trades]  # fmt: skip
    trades.append(
        [
            "binance-futures",
            sym,
            truth.start_ms * 1000 + 7,
            truth.start_ms * 1000 + 900,
            1,
            "unknown",
            truth.trades[0]["p"],
            "0.001",
        ]
    )
    write_packed(root / f"binance-futures_trades_{d}_{sym}.csv.gz", csv_text(TARDIS_TRADES, trades))
    rows, marks, funding = [], [], []
    for i, m in enumerate(truth.marks):
        ts, local = m["E"] * 1000, m["recv_us"]
        # Sparse rows: the mark price alone, then (every other minute) open interest alone,
        # funding fields only when they change, a row repeating the mark with a new index price.
        rows.append(["binance-futures", sym, ts, local, None, None, None, None, None, None, m["p"]])
        marks.append(m)
        if i % 2:
            rows.append(["binance-futures", sym, ts, local + 1, None, None, None, 1000 + i, None, None, None])
        if i % 5 == 0:
            rows.append(["binance-futures", sym, ts, local + 2, None, None, None, None, None, "42000.5", m["p"]])
        if m in truth.funding:
            rows.append(["binance-futures", sym, ts, local + 3, m["T"] * 1000, m["r"], m["r"], None, None, None, None])
            funding.append({**m, "recv_us": local + 3})
        elif i % 7 == 0:  # the same rate and time again: not a change
            rows.append(["binance-futures", sym, ts, local + 3, m["T"] * 1000, m["r"], None, None, None, None, None])
    write_packed(root / f"binance-futures_derivative_ticker_{d}_{sym}.csv.gz", csv_text(TARDIS_TICKER, rows))
    return marks, funding


def test_tardis_datasets_values(tmp_path):
    truth = make_truth(n_trades=80, mark_every_s=900)
    marks, funding = tardis_files(tmp_path / "tardis", truth)
    cfg = write_config(tmp_path / "t.json", {"format": "tardis", "base_path": "tardis"})
    source = build_source(Settings(source="csv", source_config=cfg))
    assert isinstance(source, TardisCsvSource)
    landed = land(source, tmp_path / "landing")
    assert [p.name for p in landed] == [
        "binance-futures_derivative_ticker_2024-01-02_BTCUSDT.csv.gz",
        "binance-futures_trades_2024-01-02_BTCUSDT.csv.gz",
    ]
    trades = frame_rows(source.read_frame(TRADES, landed, part_for()), TRADES)
    unknown = (
        float(truth.trades[0]["p"]),
        0.001,
        "NO_AGGRESSOR",
        "1",
        truth.start_ms * 1_000_000 + 7000,
        truth.start_ms * 1_000_000 + 900_000,
    )
    assert trades == sorted([*expected_trades(truth, ts_init="recv"), unknown], key=lambda r: r[5])
    assert frame_rows(source.read_frame(MARK_PRICES, landed, part_for()), MARK_PRICES) == [
        (float(m["p"]), m["E"] * 1_000_000, m["recv_us"] * 1000) for m in marks
    ]
    assert frame_rows(source.read_frame(FUNDING_RATES, landed, part_for()), FUNDING_RATES) == [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["recv_us"] * 1000) for f in funding
    ]


def test_tardis_through_dagster_asset_materialize(tmp_path):
    truth = make_truth(n_trades=80, mark_every_s=900)
    marks, funding = tardis_files(tmp_path / "tardis", truth)
    cfg = write_config(tmp_path / "t.json", {"format": "tardis", "base_path": str(tmp_path / "tardis")})
    dagster_materialize(
        tmp_path,
        "--partition",
        "2024-01-02|BTCUSDT",
        HEDGEGRID_SOURCE="csv",
        HEDGEGRID_SOURCE_CONFIG=str(cfg),
        HEDGEGRID_SYMBOLS="BTCUSDT",
    )
    cat = tmp_path / "d" / "catalog"
    assert [r[1:] for r in catalog_trades(cat)][-3:] == [r[1:] for r in expected_trades(truth, ts_init="recv")][-3:]
    assert len(catalog_trades(cat)) == len(truth.trades) + 1
    assert catalog_marks(cat) == [(float(m["p"]), m["E"] * 1_000_000, m["recv_us"] * 1000) for m in marks]
    assert catalog_funding(cat) == [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["recv_us"] * 1000) for f in funding
    ]


# -- data.binance.vision ---------------------------------------------------------------------------


def sha_file(path: Path) -> Path:
    out = path.with_name(path.name + ".CHECKSUM")
    out.write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return out


def binance_files(root: Path, truth: Truth, trades_type: str = "aggTrades", header: bool = True, tree: bool = True,
                  funding_settlements: list[tuple[int, str]] | None = None, funding_hours: int = 8) -> None:  # fmt: skip
    sym, d = truth.symbol, truth.day
    um = root / "data" / "futures" / "um" if tree else root

    def at(period, data_type, *extra):
        return um / period / data_type / sym / Path(*extra) if tree else root

    if trades_type == "aggTrades":
        head = [
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "transact_time",
            "is_buyer_maker",
        ]
        rows = [[t["a"], t["p"], t["q"], t["a"] * 3, t["a"] * 3 + 1, t["T"], str(t["m"]).lower()] for t in truth.trades]
    else:
        head = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
        rows = [
            [t["a"], t["p"], t["q"], f"{float(t['p']) * float(t['q']):.6f}", t["T"], str(t["m"]).lower()]
            for t in truth.trades
        ]
    z = write_packed(
        at("daily", trades_type) / f"{sym}-{trades_type}-{d}.zip", csv_text(head if header else None, rows)
    )
    sha_file(z)
    klines = []
    for k in range(1440):
        open_ms = truth.start_ms + k * 60_000
        price = truth.marks[min(k * 60_000 // (86_400_000 // len(truth.marks)), len(truth.marks) - 1)]["p"]
        klines.append([open_ms, price, price, price, price, 0, open_ms + 59_999, 0, 60, 0, 0, 0])
    kh = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
          "taker_buy_volume", "taker_buy_quote_volume", "ignore"]  # fmt: skip
    sha_file(
        write_packed(
            at("daily", "markPriceKlines", "1m") / f"{sym}-1m-{d}.zip", csv_text(kh if header else None, klines)
        )
    )
    by_month: dict[str, list] = {}
    for calc, rate in funding_settlements or []:
        month = dt.datetime.fromtimestamp(calc / 1000, dt.UTC).strftime("%Y-%m")
        by_month.setdefault(month, []).append([calc, funding_hours, rate])
    for month, rows in by_month.items():
        rows.reverse()  # real monthly files are not always sorted
        sha_file(write_packed(at("monthly", "fundingRate") / f"{sym}-fundingRate-{month}.zip",
                              csv_text(["calc_time", "funding_interval_hours", "last_funding_rate"], rows)))  # fmt: skip
    return klines


def test_binance_vision_month_end_through_dagster(tmp_path):
    """Jan 31: headerless trades zip (the old shape), klines, the January and February funding
    files (the midnight settlement is in February's), checksums verified; values match."""
    day = dt.date(2024, 1, 31)
    truth = make_truth(day, n_trades=100, mark_every_s=600)
    start = truth.start_ms
    settlements = [(start - 8 * 3_600_000, "0.00010000"), (start + 3, "0.00011000"), (start + 8 * 3_600_000 + 4, "0.00012000"),
                   (start + 16 * 3_600_000, "-0.00003000"), (start + 24 * 3_600_000 + 2, "0.00013000"),
                   (start + 32 * 3_600_000, "0.00014000")]  # fmt: skip
    klines = binance_files(tmp_path / "bv", truth, trades_type="trades", header=False, funding_settlements=settlements)
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": "bv"})
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=day, source="csv", source_config=cfg)
    key = partition_key(day, "BTCUSDT")
    result = build(settings, make_instance(tmp_path), [key])[str(key)]
    checks = check_evaluations(result)
    assert checks["funding_rates_settlements_covered"].passed, checks["funding_rates_settlements_covered"].metadata
    assert checks["mark_prices_near_trades"].passed and checks["trades_schema"].passed
    raw = settings.raw_dir / "csv" / "2024-01-31" / "BTCUSDT"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        f"{n}{c}" for n in ("BTCUSDT-trades-2024-01-31.zip", "BTCUSDT-1m-2024-01-31.zip", "BTCUSDT-fundingRate-2024-01.zip",
                            "BTCUSDT-fundingRate-2024-02.zip") for c in ("", ".CHECKSUM"))  # fmt: skip
    cat = settings.catalog_path
    assert catalog_trades(cat) == expected_trades(truth)
    marks = catalog_marks(cat)
    assert len(marks) == 1440 and marks[0] == (
        float(klines[0][4]),
        (start + 59_999) * 1_000_000,
        (start + 59_999) * 1_000_000,
    )
    hour = 3_600_000_000_000
    s0 = start * 1_000_000
    assert catalog_funding(cat) == [
        (0.00012, s0 + 8 * hour, s0 + 8 * hour - 1_000_000, s0 + 8 * hour - 1_000_000),
        (-0.00003, s0 + 16 * hour, s0 + 16 * hour - 1_000_000, s0 + 16 * hour - 1_000_000),
        (0.00013, s0 + 24 * hour, s0 + 24 * hour - 1_000_000, s0 + 24 * hour - 1_000_000),
    ]


def test_binance_vision_funding_interval_comes_from_the_file(tmp_path):
    """A 4-hourly symbol: the monthly file's funding_interval_hours wins over the bundled 8 h."""
    day = dt.date(2024, 1, 2)
    truth = make_truth(day, n_trades=50, mark_every_s=3600)
    start = truth.start_ms
    settlements = [(start + h * 3_600_000, f"0.000{h + 10:02d}00") for h in range(4, 25, 4)]
    binance_files(tmp_path / "bv", truth, funding_settlements=settlements, funding_hours=4)
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": "bv"})
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=day, source="csv", source_config=cfg)
    key = partition_key(day, "BTCUSDT")
    coverage = check_evaluations(build(settings, make_instance(tmp_path), [key])[str(key)])[
        "funding_rates_settlements_covered"
    ]
    assert coverage.passed and coverage.metadata["settlements"].value == 6  # every 4 h, judged by the data's interval
    hour = 3_600_000_000_000
    assert catalog_funding(settings.catalog_path, interval=240) == [
        (float(rate), calc * 1_000_000, calc * 1_000_000 - 1_000_000, calc * 1_000_000 - 1_000_000)
        for calc, rate in settlements
    ]
    assert len(settlements) == 6 and settlements[-1][0] * 1_000_000 == start * 1_000_000 + 24 * hour


def test_binance_vision_flat_aggtrades_with_header(tmp_path):
    truth = make_truth(n_trades=40, mark_every_s=3600)
    binance_files(tmp_path, truth, trades_type="aggTrades", header=True, tree=False,
                  funding_settlements=[(truth.start_ms + 8 * 3_600_000, "0.0001")])  # fmt: skip
    (tmp_path / "BTCUSDT-trades-2024-01-02.zip").write_bytes(b"not used: aggTrades wins")
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": str(tmp_path)})
    source = build_source(Settings(source="csv", source_config=cfg))
    assert isinstance(source, BinanceVisionSource)
    landed = land(source, tmp_path / "landing")
    assert "BTCUSDT-trades-2024-01-02.zip" not in {p.name for p in landed}
    assert frame_rows(source.read_frame(TRADES, landed, part_for()), TRADES) == expected_trades(truth)


# -- the command lines -----------------------------------------------------------------------------


def built_counts(stdout: str, key: str) -> dict[str, str]:
    """Kind -> rows written, from `hedgegrid build`'s line for a partition built ok (the line
    lists every kind built, so the test names only the kinds it is about)."""
    line = next((ln for ln in stdout.splitlines() if f"{key}  ok  " in ln), None)
    assert line is not None, stdout
    return dict(re.findall(r"(\w+)=([\d,]+)", line))


def test_seed_config_through_hedgegrid_build(tmp_path):
    truth = make_truth(n_trades=100, mark_every_s=600)
    cfg = seed_files(tmp_path / "csvin", truth)
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "csv", "--config", str(cfg), "--symbol", "BTCUSDT",
                "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "d")], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = built_counts(proc.stdout, "2024-01-02|BTCUSDT")
    assert counts["trades"] == "100" and counts["mark_prices"] == "144" and "funding_rates" in counts
    assert counts.get("quotes", "0") == "0"  # the config names no quotes file
    cat = tmp_path / "d" / "catalog"
    assert catalog_trades(cat) == expected_trades(truth)
    assert catalog_funding(cat) == [
        (float(f["r"]), f["T"] * 1_000_000, f["E"] * 1_000_000, f["E"] * 1_000_000) for f in truth.funding
    ]


def test_binance_vision_through_hedgegrid_build(tmp_path):
    truth = make_truth(n_trades=100, mark_every_s=600)
    binance_files(
        tmp_path / "bv",
        truth,
        funding_settlements=[(truth.start_ms + h * 3_600_000, "0.00010000") for h in (8, 16, 24)],
    )
    cfg = write_config(tmp_path / "b.json", {"format": "binance", "base_path": str(tmp_path / "bv")})
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "csv", "--config", str(cfg), "--symbol", "BTCUSDT",
                "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / "d")], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = built_counts(proc.stdout, "2024-01-02|BTCUSDT")
    assert (counts["trades"], counts["mark_prices"], counts["funding_rates"]) == ("100", "1,440", "3")
    assert counts.get("quotes", "0") == "0"  # no bookTicker file that day
    assert catalog_trades(tmp_path / "d" / "catalog") == expected_trades(truth)


def test_a_file_feeding_many_partitions_is_copied_once(tmp_path):
    """Default "land": "copy" of a multi-day file: one copy in the raw zone, each partition's
    landing a link to it; the original can change without touching what was landed."""
    import json as _json

    days = [DAY, DAY + dt.timedelta(days=1)]
    truths = [make_truth(d, n_trades=40) for d in days]
    rows = [[t["T"], t["p"], t["q"], "buy", t["a"]] for tr in truths for t in tr.trades]
    original = write_packed(tmp_path / "in" / "all.csv", csv_text(["time", "price", "qty", "side", "id"], rows))
    cfg = write_config(
        tmp_path / "c.json", {"base_path": "in", "files": {"trades": {"file_path": "all.csv", "symbol": "BTCUSDT"}}}
    )
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], start_date=DAY, source="csv", source_config=cfg)
    instance = make_instance(tmp_path)
    assert all(r.success for r in build(settings, instance, [partition_key(d, "BTCUSDT") for d in days]).values())
    landed = [settings.raw_dir / "csv" / d.isoformat() / "BTCUSDT" / "all.csv" for d in days]
    kept = list((settings.raw_dir / "_shared").glob("*/all.csv"))
    assert len(kept) == 1 and kept[0].read_bytes() == original.read_bytes()
    assert {p.stat().st_ino for p in landed} == {kept[0].stat().st_ino} != {original.stat().st_ino}
    manifest = _json.loads((settings.raw_dir / "_manifests" / days[0].isoformat() / "BTCUSDT.json").read_text())
    assert manifest["files"][0]["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert len(catalog_trades(settings.catalog_path)) == 80

    # The original is rewritten: the next landing keeps a new copy; what was landed stays as it was.
    before = landed[1].read_bytes()
    original.write_text(original.read_text() + f"{truths[0].trades[-1]['T'] + 1},42000.1,0.001,sell,999999\n")
    assert build(settings, instance, [partition_key(days[0], "BTCUSDT")])[
        str(partition_key(days[0], "BTCUSDT"))
    ].success
    assert len(list((settings.raw_dir / "_shared").glob("*/all.csv"))) == 2
    assert landed[1].read_bytes() == before and landed[0].read_bytes() == original.read_bytes()


def test_a_plain_csv_of_settled_rates_gets_its_settlement_times(tmp_path):
    """(time, rate) rows on the settlement hours and no next funding time: each row is the
    rate that settled then; it is known 1 ms before, so each settlement of the day is covered
    but the next midnight's (in the next day's file), and the day's own 00:00 belongs to the
    day before."""
    g = truth_start = int(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp() * 1000)
    rows = [[g + 3, "0.00010000"], [g + 8 * 3_600_000 + 1, "0.00012000"], [g + 16 * 3_600_000, "-0.00003000"]]
    write_packed(tmp_path / "in" / "funding.csv", csv_text(["time", "rate"], rows))
    trades = [[g + 1000 * i, "42000.1", "0.010", "buy", i] for i in range(1, 6)]
    write_packed(tmp_path / "in" / "trades.csv", csv_text(["time", "price", "size", "side", "id"], trades))
    cfg = write_config(tmp_path / "c.json", {"base_path": "in", "symbol": "BTCUSDT", "files": {
        "trades": {"file_path": "trades.csv"}, "funding": {"file_path": "funding.csv"}}})  # fmt: skip
    settings = make_settings(tmp_path, symbols=["BTCUSDT"], source="csv", source_config=cfg)
    key = partition_key(DAY, "BTCUSDT")
    result = build(settings, make_instance(tmp_path), [key])[str(key)]
    checks = check_evaluations(result)
    coverage = checks["funding_rates_settlements_covered"]
    assert coverage.description == "2 of 3 settlements have a rate known before them"
    assert coverage.metadata["uncovered_settlements"].value == ["2024-01-03T00:00:00+00:00"]
    hour, ms = 3_600_000_000_000, 1_000_000
    s0 = truth_start * ms
    assert catalog_funding(settings.catalog_path) == [
        (0.00012, s0 + 8 * hour, s0 + 8 * hour - ms, s0 + 8 * hour - ms),
        (-0.00003, s0 + 16 * hour, s0 + 16 * hour - ms, s0 + 16 * hour - ms),
    ]
    notes = checks["funding_rates_schema"].metadata["skipped_while_parsing"].value
    assert notes == {"rows_read_as_settled_rates": 2, "settlements_of_the_previous_day": 1}
