"""Recorded Binance USDT-M WebSocket messages (JSONL) -> canonical frames.

Config: the seed project's websocket format (paths and placeholders as in landing/source_config.py):

    {"base_path": "/recordings",
     "files": {"trades":  {"file_path": "{symbol_lower}/{date}.jsonl.gz"},
               "mark":    {"file_path": "{symbol_lower}/{date}.jsonl.gz"},
               "funding": {"file_path": "{symbol_lower}/{date}.jsonl.gz"}},
     "trade_stream": "aggTrade"}

One file may carry every kind (it is landed once). `"deltas"` builds the L2 book
(`order_book_deltas`) from `depthUpdate` lines and REST depth snapshot lines (formats/binance/depth.py;
the line shape is in docs/sources.md); named or not, depth lines are decoded only when it is. Lines are the bare payload, the
combined-stream envelope or a Tardis replay line `<receive time> <json>`; `.jsonl` or
`.jsonl.gz`. `ts_init` is the line's receive time (the replay prefix, or a recorder's
top-level `local_timestamp`/`recv_ts`/... field) when it has one, otherwise the event time `E`.
`trade_stream`: `aggTrade` or `trade`; by default aggTrade messages when the file has any,
else trade messages (a file with both would otherwise count every trade twice).

Not fatal, counted and logged as a warning (and returned by `read_frame_with_notes`): blank
lines, a truncated last line (a recorder stopped mid-write; a gzip stream cut short is read up
to where it ends), messages of other event types, messages for other symbols. Duplicate
trades (same id, e.g. replayed after a reconnect) are left in the frame for the quarantine
step, which drops and counts them. Messages are selected per partition by the day of ts_init
when the file spans many days (no `{date}` in its path).
"""

from __future__ import annotations

import copy
from functools import lru_cache, partial
from pathlib import Path

import polars as pl
from dagster import get_dagster_logger

from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.formats.binance import depth as binance_depth
from hedgegrid_assets.formats.binance import messages as binance_messages
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.formats.binance.ws import LineStats
from hedgegrid_assets.frames import ORDER_BOOK_DELTAS, TRADES, DataKind, PartitionContext
from hedgegrid_assets.landing import compressed
from hedgegrid_assets.landing.source_config import PlannedFile, config_path_from_settings, landed_names, load_config
from hedgegrid_assets.sources.base import Reader
from hedgegrid_assets.sources.file_source import FileSource

TRADE_STREAMS = {"aggtrade": "aggTrade", "aggtrades": "aggTrade", "trade": "trade", "trades": "trade"}


def _ms(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="ms").dt.cast_time_unit("ns").dt.replace_time_zone("UTC")


def read_recordings(
    kind: DataKind,
    files: list[Path],
    part: PartitionContext,
    *,
    multi_day: bool,
    trade_stream: str | None = None,
    book: bool = False,
) -> tuple[pl.DataFrame, LineStats, binance_depth.BookStats | None]:
    """Recorded files -> (the kind's canonical frame for the partition, what was skipped, and
    for the book how it was built). `book`: decode the depth messages too (the config names
    the order book, so they are not events no kind reads)."""
    stats = LineStats()
    chunks = []
    events = binance_messages.LIGHT_EVENTS + (binance_messages.DEPTH_EVENTS if book else ())
    for path in files:
        messages, file_stats = _read_one(Path(path), part.instrument.symbol, events)
        stats.add(file_stats)
        chunks.append(messages.with_columns(file=pl.lit(Path(path).name)) if kind is ORDER_BOOK_DELTAS else messages)
    if not chunks:
        return kind.empty_frame(), stats, None
    messages = pl.concat(chunks, how="vertical_relaxed")
    if kind is ORDER_BOOK_DELTAS:
        # The book is built over the whole recording (a day's book continues the day before's),
        # then cut to the partition's day.
        label = ", ".join(Path(p).name for p in files)
        window = (part.start, part.end) if multi_day else None
        frame, book_stats = binance_depth.build_deltas(messages, label, window)
        return kind.conform(frame), stats, book_stats
    if multi_day:
        ts_init = pl.coalesce("recv_ts", _ms("E"))
        messages = messages.filter(ts_init.is_between(part.start, part.end, closed="left"))
    if kind is TRADES:
        event = trade_stream
        if event is None:
            events = set(messages.get_column("e").unique().to_list())
            event = "aggTrade" if "aggTrade" in events or "trade" not in events else "trade"
        lazy = binance_ws.trades(messages.lazy(), event)
    else:
        lazy = binance_ws.PARSERS[kind.name](messages.lazy())
    return kind.conform(lazy.collect()), stats, None


def _read_one(path: Path, symbol: str, events: tuple[str, ...]) -> tuple[pl.DataFrame, LineStats]:
    """One landed file's messages for `symbol`, decoded once for all the kinds read from it
    (each kind's asset asks in turn; the landed file never changes, its stat keys the memo)."""
    st = path.stat()
    messages, stats = _decoded(str(path), st.st_ino, st.st_size, st.st_mtime_ns, symbol, events)
    return messages, copy.deepcopy(stats)


@lru_cache(maxsize=1)  # one file: the next partition's file evicts it
def _decoded(
    path_text: str, _ino: int, _size: int, _mtime_ns: int, symbol: str, events: tuple[str, ...]
) -> tuple[pl.DataFrame, LineStats]:
    path = Path(path_text)
    try:
        with compressed.opened(path, member_suffix=".jsonl") as opened:
            return binance_ws.read_recording(opened.path, opened.label, symbol, events)
    except SourceError:
        # A gzip stream cut short (the recorder stopped mid-write) is read up to where it ends;
        # checked only now, so complete files are decompressed once.
        if compressed.packing(path) != "gzip" or compressed.check_gzip(path):
            raise
    with compressed.salvaged(path) as opened:
        messages, stats = binance_ws.read_recording(opened.path, opened.label, symbol, events)
    stats.truncated_gzip = 1
    return messages, stats


class JsonlSource(FileSource):
    """Recorded WebSocket JSONL files named in the config file."""

    @property
    def name(self) -> str:
        return "jsonl"

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        return landed_names(list(self.config.files), part)

    def _trade_stream(self) -> str | None:
        return self.choice("trade_stream", TRADE_STREAMS)

    def readers(self) -> dict[str, Reader]:
        return {kind.name: partial(self._read, kind) for kind in binance_ws.KINDS_DECODED}

    def _read(self, kind: DataKind, files: list[Path], part: PartitionContext) -> tuple[pl.DataFrame, dict]:
        """The frame plus counts of what was skipped (metadata for the run)."""
        spec = self.config.spec(kind)
        if spec is None:
            return kind.empty_frame(), {}
        paths = [path for _, path in self.landed_for(kind, files, part)]
        book = self.config.spec(ORDER_BOOK_DELTAS) is not None
        frame, stats, book_stats = read_recordings(
            kind, paths, part, multi_day=not spec.per_day, trade_stream=self._trade_stream(), book=book
        )
        where = f"{part.day}|{part.instrument.symbol} {kind.name}: {', '.join(p.name for p in paths)}"
        if stats.notable():
            get_dagster_logger().warning(f"{where}: {stats.describe()}")
        if book_stats is not None and book_stats.notable():
            get_dagster_logger().warning(f"{where}: {book_stats.describe()}")
        return frame, stats.metadata() | (book_stats.metadata() if book_stats is not None else {})


def from_settings(settings) -> JsonlSource:
    path = config_path_from_settings(settings)
    cfg = load_config(path, require_files=False)  # a broken config fails here, when the code location loads
    if cfg.format != "generic":
        raise ConfigError(
            f"source config {path}: format {cfg.format!r} is a CSV layout (use --source csv); the jsonl source "
            "reads a config naming its files under 'files'"
        )
    load_config(path)
    return JsonlSource(config_path=str(path))
