"""Which date|symbol partitions a file dropped in the landing folder belongs to.

In order of preference:
1. the source config's path templates (`files.<kind>.file_path` with `{date}`, `{symbol}`,
   `{symbol_lower}` placeholders) matched against the file's path;
2. a `YYYY-MM-DD` date and a symbol in the file's path relative to the landing folder
   (`2024-01-02/BTCUSDT-trades.csv`, `btcusdt_2024-01-02.jsonl.gz`), symbols case-insensitive;
3. the file's contents, read columnarly with polars: the first and last timestamp (a
   timestamp-like CSV column, or `E`/`T` of Binance JSONL messages) give the days, and a
   `symbol` column or the messages' `s` the symbols.

The result is a list of (day, symbol) pairs plus the reasons some were left out: days before
`start_date` or not yet closed, and symbols that are not configured.
"""

from __future__ import annotations

import bz2
import datetime as dt
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hedgegrid_assets.formats.binance.messages import decode_messages, read_lines
from hedgegrid_assets.settings import Settings

# What the sensor picks up; anything else (partial downloads, notes, checksums) is ignored.
SUFFIXES = (".csv", ".csv.gz", ".zip", ".bz2", ".jsonl", ".jsonl.gz")

_DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
# A token that looks like a USDT-M/COIN-M symbol, to tell "unknown symbol" from "no symbol".
_SYMBOL_LIKE = re.compile(r"^[A-Z0-9]{2,}(USDT|USDC|BUSD|FDUSD|USD)$")
# Column names that hold a time, most specific first (compared lower-case).
_TS_COLUMNS = (
    "timestamp", "ts_event", "transact_time", "trade_time", "event_time", "time", "open_time",
    "calc_time", "local_timestamp", "ts_init", "ts_recv", "ts", "datetime", "e", "t",
)  # fmt: skip
_SYMBOL_COLUMNS = ("symbol", "s", "instrument", "instrument_id")
# Plausible epoch values (2009..2100) per unit; ms first (Binance), then us (Tardis), ns, s.
_EPOCH_UNITS = (("ms", 1e3), ("us", 1e6), ("ns", 1e9), ("s", 1.0))
_EPOCH_LO, _EPOCH_HI = 1_230_768_000, 4_102_444_800


def is_landing_file(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith((".", "~")) and name.endswith(SUFFIXES)


@dataclass(frozen=True)
class FileMapping:
    """The partitions of one file, and why others were left out."""

    pairs: list[tuple[dt.date, str]]
    skipped: list[str] = field(default_factory=list)
    how: str = ""


# ---------------------------------------------------------------------------------------------
# 1. Source config templates


@dataclass(frozen=True)
class SourceLayout:
    base_path: Path | None
    templates: tuple[re.Pattern, ...]


def source_layout(settings: Settings) -> SourceLayout:
    """The file source config's base_path and path templates (none without a usable config).

    Read by the sources' own loader, so relative paths resolve exactly as the runs will
    (base_path from the config file's folder, file paths from base_path).
    """
    from hedgegrid_assets.errors import ConfigError
    from hedgegrid_assets.landing.source_config import load_config

    if settings.source_config is None:
        return SourceLayout(None, ())
    try:
        config = load_config(settings.source_config, require_files=False)
    except ConfigError:
        return SourceLayout(None, ())
    return SourceLayout(config.base_path, tuple(template_regex(f.template) for f in config.files))


def template_regex(template: str) -> re.Pattern:
    """`trades/{symbol}/{date}.csv` -> a regex matching the end of a file path, with named groups."""
    groups = {"date": r"\d{4}-\d{2}-\d{2}", "symbol": r"[A-Za-z0-9]+", "symbol_lower": r"[a-z0-9]+"}
    out, seen = [], set()
    for literal, name in re.findall(r"([^{]*)(?:\{(\w*)\})?", template.replace("\\", "/")):
        out.append(re.escape(literal))
        if name not in groups:
            out.append(r"[^/]*?" if name else "")  # a placeholder the sources do not fill
        elif name in seen:
            out.append(f"(?P={name})")  # the same value again
        else:
            out.append(f"(?P<{name}>{groups[name]})")
            seen.add(name)
    return re.compile(r"(?:^|/)" + "".join(out) + r"(?:\.gz|\.bz2|\.zip)?$")


def _from_templates(path: Path, layout: SourceLayout) -> tuple[dt.date, str] | None:
    texts = {path.absolute().as_posix(), path.resolve().as_posix()}
    for regex in layout.templates:
        m = next((m for m in map(regex.search, texts) if m), None)
        if not m:
            continue
        groups = m.groupdict()
        symbol = groups.get("symbol") or groups.get("symbol_lower")
        if groups.get("date") and symbol:
            day = _parse_date(groups["date"])
            if day:
                return day, symbol.upper()
    return None


# ---------------------------------------------------------------------------------------------
# 2. Date and symbol in the path


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def dates_in_name(rel: str) -> set[dt.date]:
    return {d for d in (_parse_date(t) for t in _DATE.findall(rel)) if d}


def symbols_in_name(rel: str, configured: Iterable[str]) -> tuple[set[str], set[str]]:
    """(configured symbols in the path, symbol-like tokens that are not configured)."""
    configured = {s.upper() for s in configured}
    tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", rel) if t}
    known = tokens & configured
    unknown = {t for t in tokens - configured if _SYMBOL_LIKE.match(t) and not t.isdigit()}
    return known, unknown


# ---------------------------------------------------------------------------------------------
# 3. The file's contents


@dataclass(frozen=True)
class Contents:
    first: dt.datetime
    last: dt.datetime
    symbols: frozenset[str]


def _strip_compression(name: str) -> str:
    for suffix in (".gz", ".bz2", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@contextmanager
def _plain_file(path: Path) -> Iterator[tuple[Path, str]]:
    """The file as something polars scans (plain or gzip), and its inner format ('csv'|'jsonl')."""
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if not members:
                raise ValueError("empty zip archive")
            member = next(
                (m for m in members if _strip_compression(m.lower()).endswith((".csv", ".jsonl"))), members[0]
            )
            fmt = "jsonl" if _strip_compression(member.lower()).endswith(".jsonl") else "csv"
            out = Path(tmp) / f"member.{fmt}"
            with zf.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield out, fmt
        return
    if name.endswith(".bz2"):
        inner = name[: -len(".bz2")]
        fmt = "jsonl" if _strip_compression(inner).endswith(".jsonl") else "csv"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"file.{fmt}"
            with bz2.open(path, "rb") as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield out, fmt
        return
    yield path, "jsonl" if _strip_compression(name).endswith(".jsonl") else "csv"


def _epoch_to_datetime(lo: float, hi: float) -> tuple[dt.datetime, dt.datetime] | None:
    for _, per_second in _EPOCH_UNITS:
        if _EPOCH_LO <= lo / per_second <= _EPOCH_HI and _EPOCH_LO <= hi / per_second <= _EPOCH_HI:
            return dt.datetime.fromtimestamp(lo / per_second, tz=dt.UTC), dt.datetime.fromtimestamp(
                hi / per_second, tz=dt.UTC
            )
    return None


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(dt.datetime.fromisoformat(value.strip().replace(" ", "T")))
        except ValueError:
            return None
    return None


def _range_of(lo: object, hi: object) -> tuple[dt.datetime, dt.datetime] | None:
    if lo is None or hi is None:
        return None
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not isinstance(lo, bool):
        return _epoch_to_datetime(float(lo), float(hi))
    first, last = _as_datetime(lo), _as_datetime(hi)
    return (first, last) if first and last else None


def _columns_range(lf: pl.LazyFrame) -> Contents | None:
    """First/last time and symbols of a table: named time columns first, then any epoch-like integer."""
    schema = lf.collect_schema()
    by_lower = {name.lower(): name for name in schema.names()}
    named = [by_lower[c] for c in _TS_COLUMNS if c in by_lower]
    numeric = [n for n, t in schema.items() if t.is_numeric() and n not in named]
    candidates = named + numeric
    if not candidates:
        return None
    symbol_col = next(
        (by_lower[c] for c in _SYMBOL_COLUMNS if c in by_lower and schema[by_lower[c]] == pl.String), None
    )
    exprs = [
        e for i, c in enumerate(candidates) for e in (pl.col(c).min().alias(f"lo{i}"), pl.col(c).max().alias(f"hi{i}"))
    ]
    if symbol_col:
        exprs.append(pl.col(symbol_col).drop_nulls().unique().head(100).implode().alias("symbols"))
    row = lf.select(exprs).collect().row(0, named=True)
    symbols = frozenset(str(s).upper() for s in (row.get("symbols") or []))
    for i in range(len(candidates)):
        found = _range_of(row[f"lo{i}"], row[f"hi{i}"])
        if found:
            return Contents(found[0], found[1], symbols)
    return None


def _csv_contents(path: Path) -> Contents | None:
    options = dict(infer_schema_length=1000, ignore_errors=True, truncate_ragged_lines=True)
    lf = pl.scan_csv(path, **options)
    names = lf.collect_schema().names()
    if names and all(re.fullmatch(r"-?[\d.eE+]+", n) for n in names):
        # No header (older data.binance.vision files): the first row is data.
        lf = pl.scan_csv(path, has_header=False, **options)
    return _columns_range(lf)


def _jsonl_contents(path: Path) -> Contents | None:
    # A truncated last line (recorder killed mid-write) must not hide the rest.
    lines = read_lines(path).filter(pl.col("line").str.strip_chars_end().str.ends_with("}"))
    messages = decode_messages(lines)
    row = (
        messages.select(
            *[e for c in ("E", "T") for e in (pl.col(c).min().alias(f"{c}_lo"), pl.col(c).max().alias(f"{c}_hi"))],
            recv_lo=pl.col("recv_ts").min(),
            recv_hi=pl.col("recv_ts").max(),
            symbols=pl.col("s").drop_nulls().unique().head(100).implode(),
        )
        .collect()
        .row(0, named=True)
    )
    symbols = frozenset(str(s).upper() for s in (row["symbols"] or []))
    # Event time first: `T` of a markPrice message is the NEXT funding time, not the message's.
    for lo, hi in (("E_lo", "E_hi"), ("T_lo", "T_hi"), ("recv_lo", "recv_hi")):
        found = _range_of(row[lo], row[hi])
        if found:
            return Contents(found[0], found[1], symbols)
    # Not Binance-shaped: read it as generic JSON lines.
    return _columns_range(pl.scan_ndjson(path, infer_schema_length=1000, ignore_errors=True))


def read_contents(path: Path) -> Contents | None:
    """The first/last timestamp (UTC) and the symbols in a landing file, or None if it has no time."""
    with _plain_file(path) as (plain, fmt):
        return _jsonl_contents(plain) if fmt == "jsonl" else _csv_contents(plain)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# ---------------------------------------------------------------------------------------------


def map_file(path: Path, landing_dir: Path, settings: Settings, layout: SourceLayout, today: dt.date) -> FileMapping:
    """The date|symbol partitions a landing file feeds. Raises on a file polars cannot read."""
    configured = [s.upper() for s in settings.symbols]
    skipped: list[str] = []

    span: tuple[dt.date, dt.date] | None = None  # first and last day, inclusive
    symbols: list[str] = []
    how = ""
    hit = _from_templates(path, layout)
    if hit:
        span, symbols, how = (hit[0], hit[0]), [hit[1]], "source config path template"
    else:
        try:
            rel = path.resolve().relative_to(landing_dir.resolve()).as_posix()
        except ValueError:
            rel = path.name
        name_days = dates_in_name(rel)
        known, unknown = symbols_in_name(rel, configured)
        if len(name_days) == 1:
            (day,) = name_days
            span, how = (day, day), "date in the file name"
        if known:
            symbols = sorted(known)
            how = (how + ", symbol in the file name").lstrip(", ")
        elif unknown:
            return FileMapping([], [f"symbol {', '.join(sorted(unknown))} is not configured ({', '.join(configured)})"])
        if span is None or not symbols:
            contents = read_contents(path)
            if span is None:
                if contents is None:
                    return FileMapping([], ["no date in the file name and no timestamps in the file"])
                span = (contents.first.astimezone(dt.UTC).date(), contents.last.astimezone(dt.UTC).date())
                how = (how + ", time range read from the file").lstrip(", ")
            if not symbols:
                if contents and contents.symbols:
                    symbols = sorted(contents.symbols & set(configured))
                    if not symbols:
                        names = ", ".join(sorted(contents.symbols))
                        return FileMapping(
                            [], [f"file holds symbols {names}, none configured ({', '.join(configured)})"]
                        )
                    how += ", symbols read from the file"
                else:
                    symbols = configured
                    how += ", no symbol named: all configured symbols"

    first_ok, last_ok = settings.start_date, today - dt.timedelta(days=1)
    pairs = []
    for symbol in symbols:
        if symbol not in configured:
            skipped.append(f"symbol {symbol} is not configured ({', '.join(configured)})")
            continue
        if span[0] < first_ok:
            early = f"{span[0]}..{min(span[1], first_ok - dt.timedelta(days=1))}"
            skipped.append(f"{early} x {symbol}: before start_date {first_ok}")
        if span[1] > last_ok:
            skipped.append(f"{max(span[0], today)}..{span[1]} x {symbol}: the UTC day has not closed yet")
        pairs += [(day, symbol) for day in days_between(max(span[0], first_ok), min(span[1], last_ok))]
    return FileMapping(pairs, skipped, how)
