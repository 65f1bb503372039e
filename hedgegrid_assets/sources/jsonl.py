"""Recorded Binance USDT-M WebSocket messages (JSONL) -> canonical frames.

Config: the seed project's websocket format (paths and placeholders as in source_config.py):

    {"base_path": "/recordings",
     "files": {"trades":  {"file_path": "{symbol_lower}/{date}.jsonl.gz"},
               "mark":    {"file_path": "{symbol_lower}/{date}.jsonl.gz"},
               "funding": {"file_path": "{symbol_lower}/{date}.jsonl.gz"}},
     "trade_stream": "aggTrade"}

One file may carry every kind (it is landed once). Lines are the bare payload, the
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

from hedgegrid_assets.frames import TRADES, DataKind, PartitionContext
from hedgegrid_assets.sources import binance_ws, compressed
from hedgegrid_assets.sources.base import Reader, SourceError
from hedgegrid_assets.sources.binance_ws import LineStats
from hedgegrid_assets.sources.source_config import (
    ConfigError,
    FileSource,
    PlannedFile,
    config_path_from_settings,
    landed_names,
    load_config,
)

TRADE_STREAMS = {"aggtrade": "aggTrade", "aggtrades": "aggTrade", "trade": "trade", "trades": "trade"}


def _ms(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="ms").dt.cast_time_unit("ns").dt.replace_time_zone("UTC")


def read_recordings(
    kind: DataKind, files: list[Path], part: PartitionContext, *, multi_day: bool, trade_stream: str | None = None
) -> tuple[pl.DataFrame, LineStats]:
    """Recorded files -> (the kind's canonical frame for the partition, what was skipped)."""
    stats = LineStats()
    chunks = []
    for path in files:
        messages, file_stats = _read_one(Path(path), part.instrument.symbol)
        stats.add(file_stats)
        chunks.append(messages)
    if not chunks:
        return kind.empty_frame(), stats
    messages = pl.concat(chunks, how="vertical_relaxed")
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
    return kind.conform(lazy.collect()), stats


def _read_one(path: Path, symbol: str) -> tuple[pl.DataFrame, LineStats]:
    """One landed file's messages for `symbol`, decoded once for all the kinds read from it
    (each kind's asset asks in turn; the landed file never changes, its stat keys the memo)."""
    st = path.stat()
    messages, stats = _decoded(str(path), st.st_ino, st.st_size, st.st_mtime_ns, symbol)
    return messages, copy.deepcopy(stats)


@lru_cache(maxsize=1)  # one file: the next partition's file evicts it
def _decoded(path_text: str, _ino: int, _size: int, _mtime_ns: int, symbol: str) -> tuple[pl.DataFrame, LineStats]:
    path = Path(path_text)
    try:
        with compressed.opened(path, member_suffix=".jsonl") as opened:
            return binance_ws.read_recording(opened.path, opened.label, symbol)
    except SourceError:
        # A gzip stream cut short (the recorder stopped mid-write) is read up to where it ends;
        # checked only now, so complete files are decompressed once.
        if compressed.packing(path) != "gzip" or compressed.check_gzip(path):
            raise
    with compressed.salvaged(path) as opened:
        messages, stats = binance_ws.read_recording(opened.path, opened.label, symbol)
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
        frame, stats = read_recordings(kind, paths, part, multi_day=not spec.per_day, trade_stream=self._trade_stream())
        if stats.notable():
            get_dagster_logger().warning(
                f"{part.day}|{part.instrument.symbol} {kind.name}: {', '.join(p.name for p in paths)}: "
                f"{stats.describe()}"
            )
        return frame, stats.metadata()


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
