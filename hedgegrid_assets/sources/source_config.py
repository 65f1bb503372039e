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
  under `base_path`, see tardis_csv.py and binance_vision.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from hedgegrid_assets.frames import FUNDING_RATES, MARK_PRICES, ORDER_BOOK_DELTAS, QUOTES, TRADES, DataKind, PartitionContext
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource, SourceError
from hedgegrid_assets.sources.raw_zone import land_shared

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


class ConfigError(ValueError):
    """The config file itself is wrong (raised when the source is built, before any run)."""


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


class FileSource(MarketDataSource):
    """A source reading local files named by a config file (`config_path`)."""

    config_path: str

    @property
    def config(self) -> SourceConfig:
        return load_config(self.config_path)

    def choice(self, key: str, choices: dict[str, str]) -> str | None:
        """The config's `key` as one of `choices` (spelled in any case); None when absent or 'auto'."""
        value = self.config.raw.get(key)
        if value is None or str(value).lower() == "auto":
            return None
        try:
            return choices[str(value).lower()]
        except KeyError:
            allowed = " or ".join(sorted(set(choices.values())))
            raise ConfigError(f"source config {self.config.path}: {key!r} must be {allowed}, not {value!r}") from None

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        """The files to land for a partition (the originals)."""
        raise NotImplementedError

    def offers(self, kind: DataKind, part: PartitionContext) -> bool:
        """A reader for the kind, and a file for it in the partition's plan (a config may leave
        a kind out) that is required or is there (a day without its optional quotes file has no
        quotes: nothing expects them, nothing warns)."""
        return super().offers(kind, part) and any(
            kind.name in p.kinds and (p.required or p.source.is_file()) for p in self.plan(part)
        )

    def verify_landed(self, landed: dict[str, Path], part: PartitionContext, log) -> None:
        """Hook: check the landed copies (checksums) before the landing is committed."""

    def land(self, request: LandingRequest) -> dict[str, str]:
        part = request.part
        planned = self.plan(part)
        missing = [p for p in planned if p.required and not p.source.is_file()]
        if missing:
            p = missing[0]
            raise SourceError(
                f"no file for partition {part.day}|{part.instrument.symbol}: {p.source} does not exist"
                + (f" (from {p.what})" if p.what else "")
            )
        landed: dict[str, Path] = {}
        known: dict[str, str] = {}
        for p in planned:
            if not p.source.is_file():
                request.log(f"optional file {p.source} is absent; skipped")
                continue
            dest = request.dest / p.name
            how = self.config.land_mode
            try:
                if p.shared and how == "copy" and request.shared is not None:
                    known[p.name] = land_shared(p.source, request.shared, dest)
                    how = "one copy in the raw zone for every partition it feeds, linked"
                else:
                    land_file(p.source, dest, how)
            except OSError as err:
                raise SourceError(f"{p.source}: cannot be read ({err.strerror or err})") from None
            landed[p.name] = dest
            request.log(f"landed {p.source} as {p.name} ({dest.stat().st_size:,} bytes, {how})")
        try:
            self.verify_landed(landed, part, request.log)
        except SourceError as err:  # name the user's files, not copies in a folder about to vanish
            text = str(err)
            for p in planned:
                text = text.replace(str(request.dest / p.name), str(p.source))
            raise SourceError(text) from None
        return known

    @contextmanager
    def naming_originals(self, files: list[Path], part: PartitionContext) -> Iterator[None]:
        """A SourceError about a landed copy also names the file it was landed from."""
        try:
            yield
        except SourceError as err:
            text = str(err)
            try:
                originals = {p.name: p.source for p in self.plan(part)}
            except SourceError:
                raise err from None
            copies = []
            for f in files:
                source = originals.get(Path(f).name)
                if source is not None and str(f) in text:
                    text = text.replace(str(f), str(source))
                    copies.append(str(f))
            if copies:
                text += f" (read from the landed copy {', '.join(copies)})"
            raise SourceError(text) from None

    def read_frame_with_notes(
        self, kind: DataKind, files: list[Path], part: PartitionContext
    ) -> tuple[pl.DataFrame, dict]:
        with self.naming_originals(files, part):
            return super().read_frame_with_notes(kind, files, part)

    def inputs_of(self, kind: DataKind, files: list[Path], part: PartitionContext) -> list[str] | None:
        """The original files of today's plan that hold `kind`; None when none does (a config
        may leave a kind out)."""
        found = self.landed_for(kind, files, part)
        return [str(planned.source) for planned, _ in found] if found else None

    def landed_for(self, kind: DataKind, files: list[Path], part: PartitionContext) -> list[tuple[PlannedFile, Path]]:
        """The landed copies this kind reads, matched by name to today's plan."""
        by_name = {Path(f).name: Path(f) for f in files}
        out = []
        for p in self.plan(part):
            if kind.name not in p.kinds:
                continue
            if p.name in by_name:
                out.append((p, by_name[p.name]))
            elif p.required:
                raise SourceError(
                    f"the raw zone for {part.day}|{part.instrument.symbol} has no landed copy of {p.source.name} "
                    f"(landed: {', '.join(sorted(by_name)) or 'nothing'}); the source config changed since the "
                    "landing: re-materialize raw_market_data"
                )
        return out


def config_path_from_settings(settings) -> Path:
    """The config file the settings name for a file source; ConfigError when there is none."""
    if settings.source_config is None:
        raise ConfigError(
            f"source '{settings.source}' needs a config file: pass --config FILE to hedgegrid build, or set "
            "source_config (HEDGEGRID_SOURCE_CONFIG)"
        )
    return Path(settings.source_config).expanduser().resolve()
