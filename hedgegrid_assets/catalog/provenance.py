"""Which format a catalog is in: `hedgegrid-catalog.json` at its root.

Written with every build: the catalog format (an integer that changes only when something
already written would need rewriting), the nautilus_trader and hedgegrid versions that wrote
it, and each kind's class, directory and Arrow schema. A build into a catalog of an older
format refuses and names the command that upgrades it; one of a newer format refuses too.

Formats:
1. hedgegrid 0.1 (nautilus_trader 1.220): funding rates in a home-made schema (an
   `instrument_id` column, `rate` as decimal128) that nautilus_trader >= 1.223 cannot read;
   instruments with dictionary-encoded strings (NautilusTrader 2.0's migration refuses them).
   Catalogs of that release carry no provenance file; they are told by their funding files.
2. Nautilus's own schemas throughout (nautilus_trader 1.231).
"""

from __future__ import annotations

import json
import os
import uuid
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import pyarrow.parquet as pq
from nautilus_trader.persistence.funcs import class_to_filename

from hedgegrid_assets.frames import FUNDING_RATES, KINDS
from hedgegrid_assets.instruments import BINANCE_USDM_SPECS, Instrument
from hedgegrid_assets.storage import S3Zone, is_object_uri

PROVENANCE_FILE = "hedgegrid-catalog.json"
# A NautilusTrader 2.0 catalog (`hedgegrid catalog migrate`) says so in its provenance file.
NAUTILUS_2 = "nautilus-2"
FORMAT = 2
LEGACY_FUNDING_COLUMN = "instrument_id"  # format 1's funding files have it; Nautilus's have it in metadata


class IncompatibleCatalogError(Exception):
    pass


def describe() -> dict:
    """What this code writes (the provenance file's content)."""
    kinds = {}
    for kind in KINDS.values():
        schema = kind.to_arrow(kind.empty_frame(), _probe_instrument()).schema
        kinds[kind.name] = {
            "class": kind.nautilus_cls.__name__,
            "directory": f"data/{class_to_filename(kind.nautilus_cls)}",
            "schema": {f.name: str(f.type) for f in schema},
        }
    return {
        "format": FORMAT,
        "written_by": {"hedgegrid": version("hedgegrid-assets"), "nautilus_trader": version("nautilus_trader")},
        "kinds": kinds,
        "instruments": {"class": "CryptoPerpetual", "directory": "data/crypto_perpetual"},
    }


@lru_cache(maxsize=1)
def _text() -> str:
    """The provenance file's text: the same for the whole process, made once (every catalog
    write records it)."""
    return json.dumps(describe(), indent=2, sort_keys=True) + "\n"


def _probe_instrument() -> Instrument:
    """Any instrument will do: a schema's columns do not depend on it (only its metadata does)."""
    return Instrument("BTCUSDT", "BINANCE", BINANCE_USDM_SPECS["BTCUSDT"])


def legacy_funding_files(root: Path) -> list[Path]:
    """Funding files in format 1's home-made schema."""
    directory = root / "data" / class_to_filename(FUNDING_RATES.nautilus_cls)
    return sorted(p for p in directory.glob("*/*.parquet") if LEGACY_FUNDING_COLUMN in pq.read_schema(p).names)


def catalog_format(root: Path) -> int | None:
    """The format of the catalog at `root`; None when nothing says (a new or foreign catalog)."""
    path = root / PROVENANCE_FILE
    if path.exists():
        try:
            found = json.loads(path.read_text())
            if found.get("catalog_format") == NAUTILUS_2:
                raise IncompatibleCatalogError(
                    f"the catalog at {root} is a NautilusTrader 2.0 catalog (catalog_format {NAUTILUS_2}, made by "
                    "`hedgegrid catalog migrate`); this hedgegrid builds NautilusTrader 1.x catalogs: build into "
                    "another --catalog"
                )
            return int(found["format"])
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise IncompatibleCatalogError(
                f"{path}: unreadable provenance file ({err}); restore or delete it"
            ) from None
    return 1 if legacy_funding_files(root) else None


def check_writable(root: Path) -> None:
    """Refuse to add partitions to a catalog of another format, naming what fixes it."""
    if is_object_uri(root):
        return check_writable_in(S3Zone(root))
    found = catalog_format(root)
    if found is None or found == FORMAT:
        return
    if found < FORMAT:
        raise IncompatibleCatalogError(
            f"the catalog at {root} is in hedgegrid's catalog format {found} (funding rates in a schema "
            f"nautilus_trader >= 1.223 cannot read); this hedgegrid writes format {FORMAT}. "
            f"Upgrade it in place first: hedgegrid catalog upgrade {root}"
        )
    raise IncompatibleCatalogError(
        f"the catalog at {root} is in catalog format {found}, written by a newer hedgegrid; this one writes "
        f"format {FORMAT}: upgrade hedgegrid, or build into another --catalog"
    )


def record(root: Path) -> None:
    """Write the provenance file (atomically) unless it already says exactly this."""
    path = root / PROVENANCE_FILE
    text = _text()
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- provenance, in the bucket ------------------------------------------------------------------
def check_writable_in(zone: S3Zone) -> None:
    """check_writable for a catalog in object storage (its provenance object)."""
    body = zone.get(PROVENANCE_FILE)
    if body is None:
        return
    try:
        said = json.loads(body[0])
        if said.get("catalog_format") == NAUTILUS_2:
            raise IncompatibleCatalogError(
                f"the catalog at {zone} is a NautilusTrader 2.0 catalog (catalog_format {NAUTILUS_2}); this "
                "hedgegrid builds NautilusTrader 1.x catalogs: build into another --catalog"
            )
        found = int(said["format"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise IncompatibleCatalogError(
            f"{zone}/{PROVENANCE_FILE}: unreadable provenance file ({err}); restore or delete it"
        ) from None
    if found != FORMAT:
        raise IncompatibleCatalogError(
            f"the catalog at {zone} is in catalog format {found}; this hedgegrid writes format {FORMAT}: "
            "build into another --catalog"
        )
