"""The catalog's coverage as a picture: dates across, one row per symbol and kind.

A cell's colour is the rows its catalog file holds (log scale); light grey: no file of that
kind that day; salmon: a day missing in the symbol's range (no file of any kind); white:
outside the symbol's first and last day. A red cross marks a partition whose latest ERROR
check on that kind failed (its catalog write was refused), an orange triangle a failed WARN
check; checks on the partition's report (`catalog_report`) sit on a "report" row.
Computed from `catalog.status` (file footers and the instance's check history), never by
reading the data.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import numpy as np

from hedgegrid_assets.catalog.status import FailedCheck, Status
from hedgegrid_assets.frames import KINDS
from hedgegrid_assets.reports import png

REPORT_ROW = "report"
OUTSIDE, NO_FILE, GAP = 0, 1, 2
BACKGROUND = ["white", "0.88", "salmon"]


def _kind_of(asset: str) -> str:
    name = asset.removesuffix("_catalog")
    return name if name in KINDS else REPORT_ROW


def _day(partition: str) -> tuple[dt.date, str]:
    day, symbol = partition.split("|", 1)
    return dt.date.fromisoformat(day), symbol


def render(status: Status, failed: list[FailedCheck]) -> bytes:
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    failed_at = [(*_day(f.partition), _kind_of(f.asset), f.severity) for f in failed]
    days = {d for d, _ in status.rows} | {d for d, _, _, _ in failed_at}
    symbols = sorted({s for _, s in status.rows} | {s for _, s, _, _ in failed_at})
    kinds = list(status.kinds) or sorted({k for _, _, k, _ in failed_at if k != REPORT_ROW}, key=list(KINDS).index)
    if any(k == REPORT_ROW for _, _, k, _ in failed_at):
        kinds.append(REPORT_ROW)
    fig = png.figure(height_px=max(300, 130 + 22 * max(1, len(symbols) * len(kinds))))
    ax = fig.add_axes((0.17, 0.17, 0.74, 0.7))
    if not days:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "the catalog holds no partitions", ha="center", va="center", transform=ax.transAxes)
        return png.png_bytes(fig)

    first = min(days)
    n_days = (max(days) - first).days + 1
    labels = [f"{s} {k}" for s in symbols for k in kinds]
    row = {(s, k): i for i, (s, k) in enumerate((s, k) for s in symbols for k in kinds)}
    background = np.full((len(labels), n_days), OUTSIDE)
    counts = np.full((len(labels), n_days), np.nan)
    n_gaps = 0
    for symbol in symbols:
        # The symbol's range: its first to last day with a file or a failed check (a day whose
        # ERROR check failed may have no file at all: it is missing, and the cross says why).
        known = {d for d, s in status.rows if s == symbol} | {d for d, s, _, _ in failed_at if s == symbol}
        lo, hi = (min(known) - first).days, (max(known) - first).days
        rows_of = [row[(symbol, k)] for k in kinds if k != REPORT_ROW]
        background[rows_of, lo : hi + 1] = NO_FILE
        for i in range(lo, hi + 1):
            if (first + dt.timedelta(days=i), symbol) not in status.rows:
                background[rows_of, i] = GAP
                n_gaps += 1
    for (day, symbol), by_kind in status.rows.items():
        for kind, n in by_kind.items():
            if (symbol, kind) in row:
                counts[row[(symbol, kind)], (day - first).days] = math.log10(n + 1)

    extent = (-0.5, n_days - 0.5, len(labels) - 0.5, -0.5)
    ax.imshow(background, cmap=ListedColormap(BACKGROUND), vmin=0, vmax=2, aspect="auto", interpolation="nearest",
              extent=extent)  # fmt: skip
    top = max(1.0, float(np.nanmax(counts)) if np.isfinite(counts).any() else 1.0)
    shown = ax.imshow(np.ma.masked_invalid(counts), cmap="viridis", aspect="auto", interpolation="nearest",
                      extent=extent, vmin=0, vmax=top)  # fmt: skip
    colorbar = fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
    colorbar.set_label("rows (log10)", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    if n_days <= 16 and len(labels) <= 40:  # few cells: write the counts in them
        for (day, symbol), by_kind in status.rows.items():
            for kind, n in by_kind.items():
                if (symbol, kind) in row:
                    ax.text((day - first).days, row[(symbol, kind)], f"{n:,}", ha="center", va="center", fontsize=7,
                            color="black" if math.log10(n + 1) > 0.6 * top else "white")  # fmt: skip
    nudge = 0.33 if n_days <= 16 else 0.0  # beside the count written in the cell
    for severity, marker, color in (("ERROR", "x", "red"), ("WARN", "^", "darkorange")):
        at = [
            ((d - first).days + nudge, row[(s, k)]) for d, s, k, sev in failed_at if sev == severity and (s, k) in row
        ]
        if at:
            ax.plot(*zip(*at), linestyle="none", marker=marker, color=color, markersize=8, mew=2, markeredgecolor=color)

    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    for boundary in range(len(kinds), len(labels), len(kinds)):  # a line between symbols
        ax.axhline(boundary - 0.5, color="black", linewidth=0.8)
    step = max(1, math.ceil(n_days / 10))
    ax.set_xticks(range(0, n_days, step))
    ax.set_xticklabels([(first + dt.timedelta(days=i)).isoformat() for i in range(0, n_days, step)], fontsize=7,
                       rotation=30, ha="right")  # fmt: skip
    errors = sum(1 for f in failed if f.severity == "ERROR")
    ax.set_title(f"catalog coverage: {len(status.rows)} partition(s), {n_days} day(s) x {len(symbols)} symbol(s); "
                 f"{n_gaps} day(s) missing; {errors} ERROR and {len(failed) - errors} WARN check(s) failing",
                 fontsize=9, loc="left")  # fmt: skip
    fig.legend(
        handles=[
            Patch(color=BACKGROUND[NO_FILE], label="no file of this kind"),
            Patch(color=BACKGROUND[GAP], label="day missing"),
            Line2D([], [], linestyle="none", marker="x", color="red", mew=2, label="ERROR check failed"),
            Line2D([], [], linestyle="none", marker="^", color="darkorange", label="WARN check failed"),
        ],
        loc="lower center", ncols=4, fontsize=7, frameon=False,
    )  # fmt: skip
    return png.png_bytes(fig)


def write_picture(path: str | Path, status: Status, failed: list[FailedCheck]) -> str:
    """Write the coverage PNG at `path` (a file the user names, replaced whole); says where and how big."""
    target = Path(path)
    if not target.parent.is_dir():
        raise OSError(f"{target}: cannot write the picture there: no folder {target.parent}")
    data = render(status, failed)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return f"{target} ({len(data) / 1024:.1f} KB)"
