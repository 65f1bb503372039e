"""The NautilusTrader 2.0 side of `hedgegrid catalog migrate`, run in the 2.0 environment
(.venv-nautilus2) by file path: it imports only the standard library and nautilus_trader 2.0.

    .venv-nautilus2/bin/python -P hedgegrid_assets/catalog/nautilus2_worker.py LEGACY NEW WINDOWS.json OUT.json

Migrates the 1.x catalog at LEGACY into the empty folder NEW with 2.0's own
`migrate_from_legacy_parquet_path`, then reads back through 2.0's queries only the sample
windows catalog/migrate.py chose (per 1.x data folder, [identifier, start_ns, end_ns] of the
first and last file of each identifier: memory bounded by a file, not the catalog), and writes
the normalized records of each to OUT.json. `normalize` is shared with the 1.231 side, so both
sides are judged alike.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal

# 1.x data folder -> how 2.0 reads it back (the folder names differ between the formats).
READERS_2 = {
    "trade_tick": "query_trade_ticks",
    "quote_tick": "query_quote_ticks",
    "bar": "query_bars",
    "mark_price_update": "query_mark_price_updates",
    "index_price_update": "query_index_price_updates",
    "funding_rate_update": "FundingRateUpdate",
    "order_book_delta": "query_order_book_deltas",
    "order_book_deltas": "query_order_book_deltas",
    "order_book_depth10": "query_order_book_depths",
    "crypto_perpetual": "instruments",
}


def normalize(obj) -> str:
    """One record as canonical JSON, the same for 1.231's (Cython) and 2.0's (pyo3) objects."""
    d = type(obj).to_dict(obj)  # a staticmethod in 1.231, a method in 2.0: both take the object
    d.pop("type", None)
    if "aggressor_side" in d:  # 1.231 says BUYER/SELLER, 2.0 BUY/SELL: compare the enum values
        d["aggressor_side"] = int(obj.aggressor_side)
    if "rate" in d:  # a decimal: compare the value, not the trailing zeros
        d["rate"] = str(Decimal(str(d["rate"])).normalize())
    if "tick_scheme_name" in d:  # renamed in 2.0
        d["tick_scheme"] = d.pop("tick_scheme_name")
    if "info" in d:  # empty info: None in 1.231, {} in 2.0
        d["info"] = d["info"] or None
    for fee in ("maker_fee", "taker_fee"):  # 2.0's CryptoPerpetual has none: the migration drops them
        d.pop(fee, None)
    return json.dumps(d, sort_keys=True, default=str)


def read_window(catalog, folder: str, identifier: str, start: int, end: int) -> list:
    """The records of one 1.x file's window, read back through 2.0's own queries."""
    name = READERS_2[folder]
    if name == "instruments":
        return list(catalog.instruments(instrument_ids=[identifier]))
    if name == "FundingRateUpdate":
        from nautilus_trader.model import NautilusDataType

        return list(catalog.query(NautilusDataType.FundingRateUpdate, identifiers=[identifier], start=start, end=end))
    return list(getattr(catalog, name)(identifiers=[identifier], start=start, end=end))


def records(found: list) -> dict:
    """A window's records normalized and sorted, or why they cannot be compared."""
    try:
        return {"records": sorted(normalize(r) for r in found), "why": None}
    except Exception as err:  # a class without to_dict on one side: counted, not compared
        return {"records": None, "why": f"{type(err).__name__}: {err}"}


def main(legacy: str, new: str, windows_file: str, out: str) -> None:
    from pathlib import Path

    from nautilus_trader.persistence import ParquetDataCatalog

    catalog = ParquetDataCatalog(new)
    # The catalog root, not its data/ folder (given data/, it finds nothing and returns 0).
    migrated = catalog.migrate_from_legacy_parquet_path(legacy)
    windows = json.loads(Path(windows_file).read_text())
    result = {"migrated": migrated, "windows": {}}
    for folder, chosen in windows.items():
        result["windows"][folder] = [records(read_window(catalog, folder, *window)) for window in chosen]
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
