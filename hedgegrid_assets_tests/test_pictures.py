"""Pictures: each partition's day on its catalog_report, and the catalog's coverage.

Drawn from a real built catalog (the session's sample build); the PNGs are decoded and
measured. The browser test (test_ui_browser.py) checks that the UI shows the day's picture.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import polars as pl
import pyarrow.parquet as pq
from PIL import Image

from hedgegrid_assets.catalog.writer import partition_path
from hedgegrid_assets.frames import TRADES
from hedgegrid_assets.partitions import partition_context
from hedgegrid_assets.reports import day_picture
from hedgegrid_assets_tests.conftest import REPO, materializations

ARTIFACTS = REPO / "test-artifacts"
MAX_BYTES = 60 * 1024


def _png_of(markdown: str) -> bytes:
    (data,) = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown).groups()
    return base64.b64decode(data)


def test_every_report_carries_its_day_as_a_small_png(built):
    for key, result in built.results.items():
        meta = materializations(result)["catalog_report"].metadata
        png = _png_of(meta[day_picture.PICTURE_KEY].value)
        image = Image.open(io.BytesIO(png))
        assert (image.format, image.size) == ("PNG", (900, 600)), key
        assert len(png) < MAX_BYTES, (key, len(png))
        assert meta[f"{day_picture.PICTURE_KEY}_kb"].value == round(len(png) / 1024, 1)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "day-picture.png").write_bytes(png)


def test_the_series_are_the_catalog_per_minute(built):
    key = next(iter(built.results))
    part = partition_context(key, built.settings)
    s = day_picture.series(built.catalog, built.settings.staging_dir, part)
    rows = pq.ParquetFile(partition_path(built.catalog, TRADES, part)).metadata.num_rows
    assert s.trades.get_column("trades").sum() == rows  # every catalog trade counted once
    assert s.trades.get_column("hour").is_between(0, 24, closed="left").all()
    assert (s.trades.get_column("low") <= s.trades.get_column("last")).all()
    assert (s.trades.get_column("last") <= s.trades.get_column("high")).all()
    assert s.marks.height == s.index.height == 1440  # a mark (and its index) every second
    assert (s.spread.get_column("mean_ticks") >= 1).all()  # never crossed or locked in the catalog
    assert [at for at, _ in s.settlements] == [8.0, 16.0, 24.0]
    assert all(rate is not None for _, rate in s.settlements)


def test_quarantine_and_missed_settlements_are_drawn(built, tmp_path):
    """A day with rows set aside and a settlement nobody announced: the picture still draws,
    fast, and stays small."""
    key = next(iter(built.results))
    part = partition_context(key, built.settings)
    s = day_picture.series(built.catalog, built.settings.staging_dir, part)
    s = day_picture.DaySeries(
        s.trades, s.marks, None, None, s.funding.filter(pl.col("hour") < 12), [(8.0, 0.0001), (16.0, None), (24.0, None)],
        {"trades: ts_event outside 2024-01-01": 120, "quotes: bid_price >= ask_price (crossed or locked)": 7},
    )  # fmt: skip
    png = day_picture.render(s, part)
    assert Image.open(io.BytesIO(png)).size == (900, 600) and len(png) < MAX_BYTES
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "day-picture-quarantine.png").write_bytes(png)
    data, seconds = day_picture.picture(built.catalog, built.settings.staging_dir, part)
    print(f"day picture: {len(data) / 1024:.1f} KB in {seconds:.3f} s (warm process)")
    assert seconds < 2.0  # 0.3-0.5 s measured on the 2-core machine; generous under load


def test_status_draws_the_coverage_with_failed_checks(built, tmp_path, monkeypatch, capsys):
    """`hedgegrid status --picture PATH` on the built catalog and its instance."""
    from hedgegrid_assets import cli
    from hedgegrid_assets.catalog import status as catalog_status
    from hedgegrid_assets.reports import coverage_picture

    monkeypatch.setenv("DAGSTER_HOME", str(built.settings.data_dir.parent / "dagster_home"))
    out = tmp_path / "coverage.png"
    assert cli.main(["status", "--data-dir", str(built.settings.data_dir), "--picture", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"picture: {out} (" in printed
    image = Image.open(out)
    assert image.format == "PNG" and image.width == 900 and out.stat().st_size < MAX_BYTES
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "coverage-picture.png").write_bytes(out.read_bytes())

    # A gap and a refused day draw too: a day missing between two built ones, an ERROR cross on it.
    status = catalog_status.read(built.catalog)
    (day, symbol), _ = next(iter(sorted(status.rows.items())))
    later = day + dt.timedelta(days=3)
    status.rows[(later, symbol)] = {"trades": 10}
    failed = [
        catalog_status.FailedCheck(f"{day + dt.timedelta(days=2)}|{symbol}", "trades_schema", "trades", "ERROR", "x")
    ]
    png = coverage_picture.render(status, failed)
    assert Image.open(io.BytesIO(png)).size[0] == 900


def test_status_picture_into_a_missing_folder_says_so(built, tmp_path, capsys):
    from hedgegrid_assets import cli

    target = tmp_path / "no-such-folder" / "coverage.png"
    assert cli.main(["status", "--data-dir", str(built.settings.data_dir), "--picture", str(target)]) == 1
    assert f"no folder {target.parent}" in capsys.readouterr().err


def test_fixed_point_prices_decode_as_arrow_does():
    """The picture's numpy decode of Nautilus's 128-bit prices equals Arrow's decimal cast
    (chunked, sliced, 1 to 8 decimals, up to 1e11)."""
    import numpy as np
    import pyarrow as pa

    from hedgegrid_assets.frames.fixed_point import DECIMAL, to_fixed_binary

    values = pl.Series(np.abs(np.random.default_rng(7).normal(0, 1e6, 10_000)).round(1) + 0.1)
    for places in (1, 8):
        col = pa.chunked_array(
            [to_fixed_binary(values[:6000], places), to_fixed_binary(values[6000:] * 1e4, places)]
        ).slice(3)
        arrow = pl.Series(pa.chunked_array([c.view(DECIMAL).cast(pa.float64()) for c in col.chunks]))
        assert ((day_picture._fixed(col) - arrow).abs() <= arrow.abs() * 1e-15).all()
