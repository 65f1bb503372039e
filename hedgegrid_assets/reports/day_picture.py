"""A picture of one date|symbol day for its `catalog_report`: what the catalog now holds.

Panels (x: the UTC day in hours): traded price (per-minute last, with the minute's low-high
band) with the mark and the index price; the quoted spread in ticks; trades per minute; the
announced funding rate with the day's settlements marked (filled: a rate was known before it;
a red cross: none was); rows quarantined per kind and reason.

Trades, quotes, marks and funding are read back from the partition's catalog files (only the
columns drawn); the index price, which the catalog does not hold, and the quarantined rows
come from the staging zone. Every series is a per-minute polars aggregate, so a day of 5M
trades draws as 1,440 points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.objects import FIXED_PRECISION

from hedgegrid_assets.catalog.writer import partition_path
from hedgegrid_assets.checks import coverage
from hedgegrid_assets.checks.quarantine import quarantine_path
from hedgegrid_assets.frames import FUNDING_RATES, KINDS, MARK_PRICES, QUOTES, TRADES, PartitionContext
from hedgegrid_assets.frames.fixed_point import decimal_json_floats
from hedgegrid_assets.reports import png
from hedgegrid_assets.storage import S3Zone, is_object_uri

NS_PER_MINUTE = 60 * 10**9
NS_PER_HOUR = 3_600 * 10**9
PICTURE_KEY = "day_picture"


@dataclass(frozen=True)
class DaySeries:
    """Per-minute series, `hour` = hours since the day's 00:00 UTC (a float)."""

    trades: pl.DataFrame | None  # hour, last, low, high, trades
    marks: pl.DataFrame | None  # hour, mark
    index: pl.DataFrame | None  # hour, index
    spread: pl.DataFrame | None  # hour, mean_ticks, max_ticks
    funding: pl.DataFrame | None  # hour, rate (each announced update)
    settlements: list[tuple[float, float | None]]  # (hour, rate settled there or None if none known)
    quarantined: dict[str, int]  # "kind: reason" -> rows


def _fixed(column: pa.ChunkedArray) -> pl.Series:
    """Nautilus's 128-bit fixed-point Price/Quantity bytes (little-endian int128 = value x 10^16)
    as floats, from the two 64-bit halves with numpy: 5M prices in ~0.05 s, where Arrow's
    decimal128 -> float64 cast takes ~1 s. Float precision is plenty for a picture."""
    parts = []
    for chunk in column.chunks:
        words = np.frombuffer(chunk.buffers()[1], dtype="<i8")[2 * chunk.offset : 2 * (chunk.offset + len(chunk))]
        low, high = words[0::2].view("<u8").astype(np.float64), words[1::2].astype(np.float64)
        parts.append((high * 2.0**64 + low) / 10.0**FIXED_PRECISION)
    return pl.Series(np.concatenate(parts) if parts else np.empty(0))


def _catalog_columns(path: Path, fixed: list[str], plain: list[str]) -> pl.DataFrame | None:
    if not path.exists():
        return None
    table = pq.read_table(path, columns=[*fixed, *plain])
    return pl.DataFrame(
        [_fixed(table.column(c)).alias(c) for c in fixed] + [pl.Series(c, table.column(c)) for c in plain]
    )


def _minute(part: PartitionContext) -> pl.Expr:
    """ts_event (uint64 ns) -> the hour of its minute's start, for the x axis."""
    minute = (pl.col("ts_event").cast(pl.Int64) - part.start_ns) // NS_PER_MINUTE
    return (minute / 60).alias("hour")


def series(catalog_root: Path, staging_dir: Path, part: PartitionContext) -> DaySeries:
    root = Path(catalog_root)
    trades = _catalog_columns(partition_path(root, TRADES, part), ["price"], ["ts_event"])
    if trades is not None:
        trades = (
            trades.group_by(_minute(part))
            .agg(last=pl.col("price").last(), low=pl.col("price").min(), high=pl.col("price").max(), trades=pl.len())
            .sort("hour")
        )  # a catalog file is sorted by ts_init, which is close enough to ts_event for `last`
    marks = _catalog_columns(partition_path(root, MARK_PRICES, part), ["value"], ["ts_event"])
    if marks is not None:
        marks = marks.group_by(_minute(part)).agg(mark=pl.col("value").mean()).sort("hour")
    index = None
    staged_marks = Path(staging_dir) / MARK_PRICES.name / part.day.isoformat() / f"{part.instrument.symbol}.parquet"
    if staged_marks.exists():
        index = (
            pl.scan_parquet(staged_marks)
            .select(pl.col("ts_event").dt.epoch("ns").alias("ts_event"), "index_price")
            .drop_nulls("index_price")
            .group_by(_minute(part))
            .agg(index=pl.col("index_price").mean())
            .sort("hour")
            .collect()
        )
        index = index if index.height else None
    spread = _catalog_columns(partition_path(root, QUOTES, part), ["bid_price", "ask_price"], ["ts_event"])
    if spread is not None:
        tick = float(part.instrument.spec.tick_size)
        ticks = ((pl.col("ask_price") - pl.col("bid_price")) / tick).round(6)
        spread = spread.group_by(_minute(part)).agg(mean_ticks=ticks.mean(), max_ticks=ticks.max()).sort("hour")
    funding, settled = _funding(root, part)
    return DaySeries(trades, marks, index, spread, funding, settled, _quarantined(Path(staging_dir), part))


def _funding(root: Path, part: PartitionContext) -> tuple[pl.DataFrame | None, list[tuple[float, float | None]]]:
    path = partition_path(root, FUNDING_RATES, part)
    if not path.exists():
        return None, []
    table = pq.read_table(path, columns=["ts_event", "rate", "next_funding_ns", "interval"])
    rates = pl.DataFrame(
        {
            "ts_event": pl.Series(table.column("ts_event")).cast(pl.Int64),
            "rate": decimal_json_floats(table.column("rate")),
            "next": pl.Series(table.column("next_funding_ns")).cast(pl.Int64),
            "interval": pl.Series(table.column("interval")),
        }
    ).sort("ts_event")
    interval = rates.get_column("interval").max() if rates.height else None
    # The rate that settles at each of the day's settlements: the last one announced for it before it.
    known = dict(
        rates.filter(pl.col("next") > pl.col("ts_event")).group_by("next").agg(pl.col("rate").last()).iter_rows()
    )
    settled = []
    for when in coverage.settlements(part, interval):
        ns = int(when.timestamp()) * 10**9
        settled.append(((ns - part.start_ns) / NS_PER_HOUR, known.get(ns)))
    drawn = rates.select(hour=(pl.col("ts_event") - part.start_ns) / NS_PER_HOUR, rate="rate")
    return drawn, settled


def _quarantined(staging_dir: Path, part: PartitionContext) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in KINDS.values():
        path = quarantine_path(staging_dir, kind, part)
        if path.exists():
            by_reason = pl.scan_parquet(path).group_by("reason").len().collect()
            counts |= {f"{kind.name}: {reason}": n for reason, n in by_reason.iter_rows()}
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _none(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.45")
    ax.set_yticks([])


def _hours_axis(ax, label: bool) -> None:
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.tick_params(labelbottom=label)  # shared x: only the lowest panel says the hours
    ax.grid(True, color="0.9", linewidth=0.6)


def render(s: DaySeries, part: PartitionContext) -> bytes:
    fig = png.figure()
    grid = fig.add_gridspec(4, 3, left=0.07, right=0.985, top=0.91, bottom=0.05, hspace=0.45, wspace=0.35)
    price = fig.add_subplot(grid[0:2, 0:2])
    spread = fig.add_subplot(grid[2, 0:2], sharex=price)
    count = fig.add_subplot(grid[3, 0:2], sharex=price)
    funding = fig.add_subplot(grid[0:2, 2])
    quarantine = fig.add_subplot(grid[2:4, 2])
    fig.suptitle(f"{part.day} | {part.instrument.symbol}  (UTC)", fontsize=12)

    if s.trades is not None and s.trades.height:
        hour = s.trades.get_column("hour").to_numpy()
        price.fill_between(hour, s.trades.get_column("low").to_numpy(), s.trades.get_column("high").to_numpy(),
                           step="post", color="tab:blue", alpha=0.2, linewidth=0, label="traded low-high")  # fmt: skip
        price.plot(hour, s.trades.get_column("last").to_numpy(), color="tab:blue", linewidth=0.8, label="traded (last)")
        # One artist for 1,440 minutes (bar() would make one patch each: a second of drawing),
        # outlined too, since a minute is narrower than a pixel.
        per_minute = np.zeros(24 * 60 + 1)  # every minute, those without trades at 0
        per_minute[np.rint(hour * 60).astype(np.int64)] = s.trades.get_column("trades").to_numpy()
        count.fill_between(np.arange(24 * 60 + 1) / 60, per_minute, step="post", color="tab:gray", linewidth=0.6)
    else:
        _none(count, "no trades")
    if s.marks is not None:
        price.plot(s.marks.get_column("hour").to_numpy(), s.marks.get_column("mark").to_numpy(),
                   color="tab:orange", linewidth=0.8, label="mark")  # fmt: skip
    if s.index is not None:
        price.plot(s.index.get_column("hour").to_numpy(), s.index.get_column("index").to_numpy(),
                   color="tab:green", linewidth=0.8, linestyle="--", label="index")  # fmt: skip
    if price.lines:
        price.legend(loc="upper left", fontsize=8, ncols=4, frameon=False)
    else:
        _none(price, "no trades, marks or index")
    price.set_title("price", fontsize=10, loc="left")
    _hours_axis(price, label=False)

    if s.spread is not None and s.spread.height:
        hour = s.spread.get_column("hour").to_numpy()
        spread.plot(hour, s.spread.get_column("mean_ticks").to_numpy(), color="tab:purple", linewidth=0.8)
        spread.set_ylim(bottom=0)
        widest = s.spread.get_column("max_ticks").max()
        spread.set_title(f"spread (ticks), per-minute mean; widest {widest:g}", fontsize=10, loc="left")
    else:
        _none(spread, "no quotes")
        spread.set_title("spread (ticks)", fontsize=10, loc="left")
    _hours_axis(spread, label=False)
    count.set_title("trades per minute", fontsize=10, loc="left")
    _hours_axis(count, label=True)

    if s.funding is not None and s.funding.height:
        hour = np.append(s.funding.get_column("hour").to_numpy(), 24.0)
        rate = s.funding.get_column("rate").to_numpy() * 100
        funding.step(hour, np.append(rate, rate[-1]), where="post", color="tab:blue", linewidth=1)
    done = [(at, rate * 100) for at, rate in s.settlements if rate is not None]
    missed = [at for at, rate in s.settlements if rate is None]
    for at, _ in s.settlements:
        funding.axvline(at, color="0.6", linewidth=0.6, linestyle=":")
    if done:
        funding.plot(*zip(*done), marker="o", color="tab:green", markersize=6, linestyle="none", label="settled")
    if missed:
        level = [rate[-1] if s.funding is not None and s.funding.height else 0.0] * len(missed)
        funding.plot(missed, level, marker="x", color="tab:red", markersize=9, mew=2, linestyle="none",
                     label="no rate known")  # fmt: skip
    if done or missed:
        funding.legend(loc="best", fontsize=7, frameon=False)
    if s.funding is None:
        _none(funding, "no funding rates")
    funding.set_title("funding rate (%) and settlements", fontsize=10, loc="left")
    funding.set_xlim(0, 24.5)
    funding.set_xticks(range(0, 25, 8))
    funding.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 8)])
    funding.ticklabel_format(axis="y", useOffset=False)
    funding.grid(True, color="0.9", linewidth=0.6)

    quarantine.set_title("quarantined rows", fontsize=10, loc="left")
    if s.quarantined:
        shown = list(s.quarantined.items())[:6]
        labels = [_short(reason) for reason, _ in shown][::-1]
        values = [n for _, n in shown][::-1]
        # Each reason written above its bar (as tick labels they would run into the panels beside).
        quarantine.barh(range(len(shown)), values, height=0.35, color="tab:red")
        quarantine.set_yticks([])
        for y, (label, n) in enumerate(zip(labels, values)):
            quarantine.text(0, y + 0.25, f"{label}: {n:,}", va="bottom", fontsize=7)
        quarantine.set_ylim(-0.5, len(shown) - 0.1)
        quarantine.set_xlim(0, max(values) * 1.05)
        quarantine.tick_params(axis="x", labelsize=7)
    else:
        quarantine.set_xticks([])
        quarantine.set_yticks([])
        _none(quarantine, "none")
    return png.png_bytes(fig)


def _short(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def picture(catalog_root: Path, staging_dir: Path, part: PartitionContext) -> tuple[bytes, float]:
    """(PNG, seconds it took)."""
    started = time.perf_counter()
    data = render(series(catalog_root, staging_dir, part), part)
    return data, time.perf_counter() - started


def metadata(catalog_root: Path, staging_dir: Path, part: PartitionContext) -> dict:
    """The report's picture entry, shown inline on the materialization in the UI."""
    data, seconds = picture(catalog_root, staging_dir, part)
    return {
        PICTURE_KEY: png.markdown_image(data, f"{part.day} {part.instrument.symbol}"),
        f"{PICTURE_KEY}_kb": round(len(data) / 1024, 1),
        f"{PICTURE_KEY}_seconds": round(seconds, 3),
    }


def report_metadata(context, settings, part: PartitionContext) -> dict:
    """`catalog_report`'s picture entries. A picture that cannot be drawn never fails the
    report (the catalog is fine): the entry says why, and so does the run log."""
    try:
        if is_object_uri(settings.catalog_path):  # a catalog in object storage: its partition, fetched
            from hedgegrid_assets.catalog.object_store import local_mirror

            with local_mirror(S3Zone(settings.catalog_path), part) as root:
                return metadata(root, settings.staging_dir, part)
        return metadata(settings.catalog_path, settings.staging_dir, part)
    except Exception as err:
        why = f"partition {part.day}|{part.instrument.symbol}: day picture not drawn: {type(err).__name__}: {err}"
        context.log.warning(why)
        return {PICTURE_KEY: why}
