"""Source config files (the seed project's JSON format) and landing of local files.

A config names, per data kind, the file to read:

    {"base_path": "/data/binance",
     "files": {"trades":  {"file_path": "{symbol}/trades-{date}.csv.gz", "columns": {...}, ...},
               "quotes":  {"file_path": "..."},
               "mark":    {"file_path": "..."},
               "funding": {"file_path": "..."}}}

- Kind keys: `trades`, `quotes`, `mark` (or `mark_prices`), `funding` (or `funding_rates`);
  a kind left out is simply not built (its frame is empty).
- `file_path` may hold `{date}` (YYYY-MM-DD), `{symbol}` (BTCUSDT) and `{symbol_lower}`
  (btcusdt). A path with `{date}` is one file per day; a path without it is one file that may
  span many days, and each partition keeps the rows whose `ts_init` falls on its UTC day.
- Relative paths are taken from `base_path`; a relative `base_path` from the folder of the
  config file (not the working directory, which differs between the CLI and Dagster).
- `"land": "copy"` (default) copies each file into the raw zone (a file feeding many
  partitions, with no `{date}` in its path, once: each partition links to that one copy, see
  raw_zone.py); `"hardlink"` links the original itself (no copy at all, falls back to a copy
  across file systems).
  A hard link shares the bytes with the original: a tool that later edits the original in
  place (a recorder appending to it) changes the landed copy too. The manifest's sha256 still
  records what was landed, but use `copy` for files that are still being written.
- `"format"`: `generic` (default, the above), `tardis` or `binance` (conventional file names
  under `base_path`, see sources/tardis_datasets.py and sources/binance.py).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hedgegrid_assets.errors import ConfigError
from hedgegrid_assets.frames import (
    FUNDING_RATES,
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)

# Config key -> kind (the seed format's names first).
KIND_KEYS: dict[str, DataKind] = {
    "trades": TRADES,
    "quotes": QUOTES,
    "mark": MARK_PRICES,
    "mark_prices": MARK_PRICES,
    "funding": FUNDING_RATES,
    "funding_rates": FUNDING_RATES,
    "deltas": ORDER_BOOK_DELTAS,  # L2 book deltas (jsonl: depthUpdate + depth snapshot lines)
    "order_book_deltas": ORDER_BOOK_DELTAS,
}
PLACEHOLDERS = ("{date}", "{symbol}", "{symbol_lower}")
LAND_MODES = ("copy", "hardlink")


@dataclass(frozen=True)
class FileSpec:
    key: str  # the config key ('trades', 'mark', 'funding')
    kind: DataKind
    template: str  # absolute path, placeholders unresolved
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def per_day(self) -> bool:
        """One file per day ({date} in the path); otherwise the file spans many days."""
        return "{date}" in self.template

    def path_for(self, part: PartitionContext) -> Path:
        return Path(resolve(self.template, part))


def resolve(template: str, part: PartitionContext) -> str:
    symbol = part.instrument.symbol
    return (
        template.replace("{date}", part.day.isoformat())
        .replace("{symbol_lower}", symbol.lower())
        .replace("{symbol}", symbol)
    )


@dataclass(frozen=True)
class SourceConfig:
    path: Path
    format: str
    base_path: Path
    land_mode: str
    files: tuple[FileSpec, ...]
    raw: dict = field(hash=False, compare=False, default_factory=dict)

    def spec(self, kind: DataKind) -> FileSpec | None:
        return next((f for f in self.files if f.kind is kind), None)


def load_config(path: str | Path, *, require_files: bool = True) -> SourceConfig:
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        raise ConfigError(f"source config file {path} not found") from None
    return _load(str(path), stat.st_mtime_ns, require_files)


@lru_cache(maxsize=16)
def _load(path_text: str, _mtime: int, require_files: bool) -> SourceConfig:
    path = Path(path_text)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"source config {path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"source config {path}: expected a JSON object at the top")
    fmt = str(raw.get("format", "generic")).lower()
    base = Path(os.path.expanduser(str(raw.get("base_path", "."))))
    if not base.is_absolute():
        base = path.parent / base
    land_mode = str(raw.get("land", "copy")).lower()
    if land_mode not in LAND_MODES:
        raise ConfigError(f"source config {path}: 'land' must be one of {', '.join(LAND_MODES)}, not {land_mode!r}")
    files: list[FileSpec] = []
    entries = raw.get("files", {}) or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"source config {path}: 'files' must be an object of kind -> file settings")
    seen: set[str] = set()
    for key, options in entries.items():
        if key not in KIND_KEYS:
            raise ConfigError(
                f"source config {path}: unknown kind {key!r} under 'files' (use trades, quotes, mark, funding, deltas)"
            )
        kind = KIND_KEYS[key]
        if kind.name in seen:
            raise ConfigError(f"source config {path}: {kind.name} is configured twice")
        seen.add(kind.name)
        if isinstance(options, str):
            options = {"file_path": options}
        if not isinstance(options, dict) or not options.get("file_path"):
            raise ConfigError(f"source config {path}: files.{key} needs a 'file_path'")
        template = os.path.expanduser(str(options["file_path"]))
        if not Path(template).is_absolute():
            template = str(base / template)
        files.append(FileSpec(key, kind, template, dict(options)))
    if require_files and fmt == "generic" and not files:
        raise ConfigError(f"source config {path}: 'files' names no file for trades, quotes, mark or funding")
    return SourceConfig(path, fmt, base, land_mode, tuple(files), raw)


# -- landing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFile:
    """One file to land for a partition."""

    source: Path  # the original
    name: str  # its name in the landing folder
    kinds: tuple[str, ...] = ()  # kinds parsed from it (kind names)
    required: bool = True  # an optional file may be absent: its kinds are then not offered that day
    what: str = ""  # for the missing-file message, e.g. "trades (files.trades.file_path)"
    shared: bool = False  # feeds many partitions (no {date} in its path): kept once in the raw zone


def landed_names(specs: list[FileSpec], part: PartitionContext) -> list[PlannedFile]:
    """Land each distinct file once, under its own name (prefixed by the key on a name clash)."""
    by_source: dict[Path, list[tuple[str, DataKind]]] = {}
    many_days: set[Path] = set()
    for spec in specs:
        src = spec.path_for(part)
        by_source.setdefault(src, []).append((spec.key, spec.kind))
        if not spec.per_day:
            many_days.add(src)
    names = [src.name for src in by_source]
    planned = []
    for src, users in by_source.items():
        name = src.name if names.count(src.name) == 1 else f"{users[0][0]}--{src.name}"
        keys = ", ".join(f"files.{k}.file_path" for k, _ in users)
        planned.append(PlannedFile(src, name, tuple(k.name for _, k in users), True, keys, src in many_days))
    return planned


def land_file(src: Path, dest: Path, mode: str) -> None:
    if mode == "hardlink":
        try:
            os.link(src, dest)
            return
        except OSError:
            pass  # another file system (or no links there): copy instead
    shutil.copyfile(src, dest)


def config_path_from_settings(settings) -> Path:
    """The config file the settings name for a file source; ConfigError when there is none."""
    if settings.source_config is None:
        raise ConfigError(
            f"source '{settings.source}' needs a config file: pass --config FILE to hedgegrid build, or set "
            "source_config (HEDGEGRID_SOURCE_CONFIG)"
        )
    return Path(settings.source_config).expanduser().resolve()
