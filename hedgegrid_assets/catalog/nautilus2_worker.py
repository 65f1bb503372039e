"""The NautilusTrader 2.0 side of `hedgegrid catalog migrate`, run in the 2.0 environment
(.venv-nautilus2) by file path: it imports only the standard library and nautilus_trader 2.0.

    .venv-nautilus2/bin/python hedgegrid_assets/catalog/nautilus2_worker.py LEGACY NEW OUT.json

Migrates the 1.x catalog at LEGACY into the empty folder NEW with 2.0's own
`migrate_from_legacy_parquet_path`, then reads every kind back through 2.0's queries and writes,
per 1.x data folder, the record count and a sample (see `sample`) to OUT.json. `normalize` and
`sample` are shared with the 1.231 side (catalog/migrate.py), so both sides are judged alike.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal

SAMPLE = 200  # records at each end of the time range

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


def sample(records: list) -> list[str]:
    """The records of the SAMPLE earliest and SAMPLE latest `ts_init` (every record sharing the
    cut-off times included, so the choice does not depend on the readers' order), normalized
    and sorted; every record when there are few."""
    if len(records) <= 2 * SAMPLE:
        chosen = records
    else:
        times = sorted(r.ts_init for r in records)
        low, high = times[SAMPLE - 1], times[-SAMPLE]
        chosen = [r for r in records if r.ts_init <= low or r.ts_init >= high]
    return sorted(normalize(r) for r in chosen)


def describe(records: list) -> dict:
    try:
        values = sample(records)
    except Exception as err:  # a class without to_dict on one side: counted, not compared
        return {"count": len(records), "sample": None, "why": f"{type(err).__name__}: {err}"}
    return {"count": len(records), "sample": values, "why": None}


def read_back(catalog, folder: str) -> list:
    name = READERS_2[folder]
    if name == "FundingRateUpdate":
        from nautilus_trader.model import NautilusDataType

        return list(catalog.query(NautilusDataType.FundingRateUpdate))
    return list(getattr(catalog, name)())


def main(legacy: str, new: str, out: str) -> None:
    from pathlib import Path

    from nautilus_trader.persistence import ParquetDataCatalog

    catalog = ParquetDataCatalog(new)
    # The catalog root, not its data/ folder (given data/, it finds nothing and returns 0).
    migrated = catalog.migrate_from_legacy_parquet_path(legacy)
    folders = sorted(p.name for p in (Path(legacy) / "data").iterdir() if p.is_dir())
    result = {"migrated": migrated, "kinds": {}, "unknown": [f for f in folders if f not in READERS_2]}
    for folder in folders:
        if folder in READERS_2:
            result["kinds"][folder] = describe(read_back(catalog, folder))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
