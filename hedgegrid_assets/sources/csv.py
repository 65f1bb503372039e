"""Generic CSV files named in a JSON config -> canonical frames (read by formats/csv/reader.py).

Config (the seed project's format, see landing/source_config.py for paths and placeholders):

    {"base_path": "data",
     "files": {
       "trades":  {"file_path": "BTCUSDT-trades.csv.gz",
                   "columns": {"timestamp": "time", "price": "price", "size": "qty",
                               "aggressor_side": "is_buyer_maker", "trade_id": "id"},
                   "timestamp_format": "%Y-%m-%d %H:%M:%S.%f"},
       "quotes":  {"file_path": "...", "columns": {"timestamp": ..., "bid_price": ..., "ask_price": ...,
                                                   "bid_size": ..., "ask_size": ...}},
       "mark":    {"file_path": "...", "columns": {"timestamp": ..., "mark_price": ...}},
       "funding": {"file_path": "...", "columns": {"timestamp": ..., "funding_rate": ...,
                                                   "next_funding_time": ...}},
       "deltas":  {"file_path": "..._incremental_book_L2_{date}_{symbol}.csv.gz"}}}

`deltas` (L2 order book deltas) takes no column roles: its file must have Tardis's
`incremental_book_L2` columns (exchange,symbol,timestamp,local_timestamp,is_snapshot,side,
price,amount), read by tardis_book as the Tardis format reads it.

Per file, all optional but `file_path`:
- `columns`: role -> column name (or 0-based index). Roles: `timestamp`, `local_timestamp`
  (receive time, becomes ts_init; else ts_init = timestamp), `symbol`, and per kind `price`,
  `size`, `aggressor_side`, `trade_id` / `bid_price`, `ask_price`, `bid_size`, `ask_size`
  (quotes: one per row, the best bid and ask) / `mark_price` / `funding_rate`,
  `next_funding_time`. Unmapped roles are guessed from the header, case-insensitively (see
  csv_reader.GUESSES).
- `timestamp_format`: a strftime format, `iso`, or an epoch unit; `timestamp_unit` (s, ms,
  us, ns) fixes the epoch unit. Without them each timestamp column is detected: epoch numbers
  (unit from magnitude) or ISO strings. The format applies to every timestamp column of the file.
- `has_header` (default true), `column_names` (for headerless files), `separator` (`,`).
- `symbol`: the symbol the file holds, when neither its path nor its columns say so (a
  partition of another symbol then fails instead of reading it).
- `side_is_buyer_maker`: true/false to say how to read the side column (default: from its
  name; true/false values are read as buyer-is-maker anyway).

Values: sides are buy/sell in any case, b/s, or a buyer-is-maker flag (true = the aggressor
SOLD; a column named is_buyer_maker/buyer_maker/m may also hold 1/0); 'unknown' or empty is
NO_AGGRESSOR. Without a trade id column each trade gets the stable id `L<line>`, its line
number in the file. Empty numbers become null (quarantined later as not positive, as is a
crossed or locked quote, bid >= ask); text that is not a number, a timestamp that does not
parse, or an unknown side fails the partition with the file, line and value. With a
`symbol` column, rows of other symbols are skipped; a file with rows of other symbols only is
an error. A path without `{symbol}` that names another symbol (`ETHUSDT-trades.csv` for
BTCUSDT) is an error, and so is a file that says its symbol nowhere (no column, no
`{symbol}`, no symbol in its name, no `symbol` option): otherwise every symbol would be built
from the same rows.

A file spanning many days (no `{date}` in its path) keeps the rows whose ts_init falls on the
partition's UTC day: every row belongs to exactly one partition, the same one a per-day file
split by receive time (as Tardis splits its files) would put it in.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from pathlib import Path

import polars as pl

from hedgegrid_assets.errors import ConfigError, SourceError
from hedgegrid_assets.formats import parsing
from hedgegrid_assets.formats.csv.reader import ROLES, Table, read_table
from hedgegrid_assets.formats.tardis import book as tardis_book
from hedgegrid_assets.frames import (
    FUNDING_RATES,
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)  # fmt: skip
from hedgegrid_assets.frames.funding_rates import are_settlements, from_settlements
from hedgegrid_assets.instruments import BINANCE_USDM_SPECS
from hedgegrid_assets.landing.source_config import PlannedFile, landed_names, load_config
from hedgegrid_assets.sources.base import Reader
from hedgegrid_assets.sources.file_source import FileSource


class GenericCsvSource(FileSource):
    """CSV files named in the config file, one per kind (see the module docstring)."""

    @property
    def name(self) -> str:
        return "csv"

    def _table(self, kind: DataKind, part: PartitionContext) -> Table | None:
        spec = self.config.spec(kind)
        if spec is None:
            return None
        table = Table.from_options(spec.options, not spec.per_day, f"source config {self.config.path} files.{spec.key}")
        said = (spec.options.get("symbol") or self.config.raw.get("symbol") or "{symbol" in spec.template
                or part.instrument.symbol in path_words(spec.path_for(part)))  # fmt: skip
        return replace(table, needs_symbol_column=not said)

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        cfg = self.config
        symbol = part.instrument.symbol
        for spec in cfg.files:
            declared = spec.options.get("symbol") or cfg.raw.get("symbol")
            if declared and parsing.norm_symbol_text(str(declared)) != symbol:
                raise SourceError(
                    f"{spec.path_for(part)} is for {declared} (files.{spec.key}.symbol in {cfg.path}), not {symbol}: "
                    f"it is a file for another symbol"
                )
            named = None if declared or "{symbol" in spec.template else symbol_in_path(spec.path_for(part))
            if named and named != symbol:
                raise SourceError(
                    f"{spec.path_for(part)} is for {named} (its path says so), not {symbol}: it is a file for another "
                    f"symbol; put {{symbol}} in files.{spec.key}.file_path ({cfg.path}) to read each symbol's own file"
                )
        return landed_names(list(cfg.files), part)

    def readers(self) -> dict[str, Reader]:
        kinds = (TRADES, QUOTES, MARK_PRICES, FUNDING_RATES, ORDER_BOOK_DELTAS)
        return {kind.name: partial(self._read, kind) for kind in kinds}

    def _read(self, kind: DataKind, files: list[Path], part: PartitionContext) -> tuple[pl.DataFrame, dict]:
        if kind is ORDER_BOOK_DELTAS:
            frames = [tardis_book.read_incremental_l2(path, part) for _, path in self.landed_for(kind, files, part)]
            return (kind.conform(pl.concat(frames)) if frames else kind.empty_frame()), {}
        table = self._table(kind, part)
        if table is None:
            return kind.empty_frame(), {}
        notes: dict = {}
        landed = self.landed_for(kind, files, part)
        frames = [read_table(path, table, kind, part, notes=notes) for _, path in landed]
        frame = kind.conform(pl.concat(frames)) if frames else kind.empty_frame()
        if kind is FUNDING_RATES and are_settlements(frame, part):
            # A plain list of settled rates (time, rate): each is the rate for that settlement.
            settled = frame.with_columns(**from_settlements(pl.col("ts_event")))
            frame = kind.conform(settled.filter(pl.col("ts_init") >= part.start))
            notes["rows_read_as_settled_rates"] = frame.height
            if settled.height > frame.height:  # the day's 00:00 settlement was the previous day's to know
                notes["settlements_of_the_previous_day"] = settled.height - frame.height
        return frame, notes


def path_words(path: Path) -> set[str]:
    """'data/btcusdt/BTCUSDT-2024-01-05.csv' -> {'DATA', 'BTCUSDT', '2024', '01', '05', 'CSV'}."""
    return set(re.split(r"[^0-9A-Z]+", str(path).upper()))


def symbol_in_path(path: Path) -> str | None:
    """A bundled spec's symbol named by a word of the path ('BTCUSDT-2024-01-05.csv', 'btcusdt/x.csv')."""
    found = sorted(path_words(path) & BINANCE_USDM_SPECS.keys())
    return found[0] if len(found) == 1 else None


def from_config(path: Path) -> GenericCsvSource:
    """The generic source for a config whose format is generic (registry.py chooses the format).
    Its files, column roles and timestamp settings are checked now, not mid-run."""
    cfg = load_config(path)
    for spec in cfg.files:
        where = f"source config {cfg.path} files.{spec.key}"
        if spec.kind is ORDER_BOOK_DELTAS:
            if spec.options.get("columns"):
                raise ConfigError(f"{where}: takes no column roles: the file must have Tardis's incremental_book_L2 "
                                  f"columns ({','.join(tardis_book.L2_COLUMNS)})")  # fmt: skip
            continue
        table = Table.from_options(spec.options, not spec.per_day, where)
        required, optional = ROLES[spec.kind.name]
        unknown = [r for r in table.columns if r not in (*required, *optional)]
        if unknown:
            raise ConfigError(
                f"{where}: unknown column role(s) {', '.join(unknown)}; roles: {', '.join(required + optional)}"
            )
    return GenericCsvSource(config_path=str(path))
