"""`hedgegrid catalog upgrade PATH`: rewrite a catalog of an older format in place.

Format 1 -> 2 (see provenance.py): each funding file is rewritten in Nautilus's own
`FundingRateUpdate` schema (the rate as its exact decimal text, the interval from the
instrument's settings, the instrument id in the metadata), and each instrument file that is
not in 1.231's `CryptoPerpetual` schema (1.220 wrote no `lot_size`, and dictionary-encoded
strings) is read with Nautilus and written again as a build writes it. Trades and mark prices
are already in Nautilus's format and are not touched.

Safe in place: every file is converted into a unique temporary name beside it, checked
(same rows, same rates to the last digit), flushed to disk and renamed over the old one, so a
reader sees the old file or the new one, never a mix. Resumable: a file already in the new
format is skipped, so after a crash the same command finishes the job; temporary files a
crash left behind are removed. The provenance file is written last.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.serialization.arrow.implementations.instruments import SCHEMAS as INSTRUMENT_SCHEMAS

from hedgegrid_assets.catalog import provenance
from hedgegrid_assets.catalog.writer import COMPRESSION, write_instrument
from hedgegrid_assets.frames.funding_rates import FUNDING_RATE_DECIMALS
from hedgegrid_assets.frames.kind import nautilus_arrow_schema
from hedgegrid_assets.instruments import UnknownSymbolError, instrument_for, symbol_of
from hedgegrid_assets.settings import Settings

TMP_MARK = ".upgrade-"


class UpgradeError(Exception):
    pass


@dataclass
class UpgradeReport:
    funding_files: list[Path] = field(default_factory=list)
    instrument_files: list[Path] = field(default_factory=list)
    stale_temporaries: int = 0
    format_before: int | None = None


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{uuid.uuid4().hex}.tmp")


def _replace_durably(table: pa.Table, path: Path) -> None:
    tmp = _tmp_for(path)
    try:
        pq.write_table(table, tmp, compression=COMPRESSION)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def _interval_minutes(instrument_id: str, settings: Settings, path: Path) -> int:
    try:
        return instrument_for(symbol_of(instrument_id), settings).spec.funding_interval_hours * 60
    except UnknownSymbolError as err:
        raise UpgradeError(f"{path}: {err}") from None


def upgrade_funding_file(path: Path, settings: Settings) -> pa.Table:
    """A format-1 funding file as the table of Nautilus's own schema (not yet written)."""
    old = pq.read_table(path)
    ids = old.column(provenance.LEGACY_FUNDING_COLUMN).unique().to_pylist()
    if len(ids) != 1:
        raise UpgradeError(f"{path}: expected one instrument id, found {ids}")
    (instrument_id,) = ids
    rates = pl.from_arrow(old.column("rate"))  # decimal128(38, 16), written with 8 places
    # As a build writes them (8 places, as Binance publishes), unless a rate has more digits.
    fits = rates.cast(pl.Decimal(38, FUNDING_RATE_DECIMALS)).cast(rates.dtype).equals(rates)
    text = rates.cast(pl.Decimal(38, FUNDING_RATE_DECIMALS if fits else 16)).cast(pl.String)
    if not text.cast(rates.dtype).equals(rates):  # the decimal text must be the very number
        raise UpgradeError(f"{path}: a rate does not convert exactly to its decimal text")
    schema = nautilus_arrow_schema(FundingRateUpdate, {"instrument_id": instrument_id})
    interval = _interval_minutes(instrument_id, settings, path)
    columns = {
        "rate": ('"' + text + '"').to_arrow().cast(pa.binary()),
        "interval": pa.array([interval] * old.num_rows, pa.uint16()),
        "next_funding_ns": old.column("next_funding_ns"),
        "ts_event": old.column("ts_event"),
        "ts_init": old.column("ts_init"),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def _outdated_instrument_files(root: Path) -> list[Path]:
    """Instrument files not in the schema a build writes: other columns, or dictionary strings."""
    current = INSTRUMENT_SCHEMAS[CryptoPerpetual].names

    def outdated(path: Path) -> bool:
        schema = pq.read_schema(path)
        return schema.names != current or any(pa.types.is_dictionary(f.type) for f in schema)

    return sorted(p for p in (root / "data" / "crypto_perpetual").glob("*/*.parquet") if outdated(p))


def upgrade_instrument_file(root: Path, path: Path) -> None:
    """Read the file's instrument with Nautilus and write it as a build does (same file name:
    the fixed ts_init). A field the old schema lacked takes Nautilus's default, as the
    instrument had when it was built (hedgegrid 0.1 never set `lot_size`: Nautilus's 1)."""
    found = ParquetDataCatalog(str(root)).instruments(instrument_ids=[path.parent.name])
    if len(found) != 1:
        raise UpgradeError(f"{path}: expected one instrument version, found {len(found)}")
    fields = CryptoPerpetual.to_dict(found[0])
    if fields.get("lot_size") is None:
        fields["lot_size"] = "1"
    written = write_instrument(root, CryptoPerpetual.from_dict(fields))
    if written != path:
        raise UpgradeError(f"{path}: rewritten as {written.name}, not in place")


def _remove_stale_temporaries(root: Path) -> int:
    stale = [p for p in (root / "data").glob(f"*/*/.*{TMP_MARK}*.tmp")]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def upgrade(root: Path, settings: Settings, progress: Callable[[str], None] = lambda _: None) -> UpgradeReport:
    if not (root / "data").is_dir():
        raise UpgradeError(f"{root} is not a Nautilus catalog (no data/ folder)")
    report = UpgradeReport(format_before=provenance.catalog_format(root))
    if report.format_before is not None and report.format_before > provenance.FORMAT:
        raise UpgradeError(f"{root} is in catalog format {report.format_before}, newer than this hedgegrid's")
    report.stale_temporaries = _remove_stale_temporaries(root)
    for path in provenance.legacy_funding_files(root):
        _replace_durably(upgrade_funding_file(path, settings), path)
        report.funding_files.append(path)
        progress(f"funding rates: {path.relative_to(root)}")
    for path in _outdated_instrument_files(root):
        upgrade_instrument_file(root, path)
        report.instrument_files.append(path)
        progress(f"instrument: {path.relative_to(root)}")
    provenance.record(root)
    return report
