"""Importing hedgegrid_assets is what lets any process read and write FundingRateUpdate."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

READ = """
import sys
{imports}
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog
rates = ParquetDataCatalog(sys.argv[1]).query(FundingRateUpdate)
print(len(rates), rates[-1].rate, rates[-1].next_funding_ns)
"""


def read_in_fresh_process(catalog, imports: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", READ.format(imports=imports), str(catalog)], capture_output=True, text=True, timeout=120
    )


def test_fresh_process_reads_funding_after_importing_the_package(built):
    proc = read_in_fresh_process(built.catalog, "import hedgegrid_assets")
    assert proc.returncode == 0, proc.stderr
    count, rate, next_ns = proc.stdout.split()
    assert int(count) > 0 and Decimal(rate) != 0 and int(next_ns) > 0


def test_without_the_package_nautilus_cannot_read_them(built):
    proc = read_in_fresh_process(built.catalog, "")
    assert proc.returncode != 0 and "Cannot deserialize" in proc.stderr


def test_round_trip_keeps_every_field(tmp_path):
    iid = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    updates = [
        FundingRateUpdate(iid, Decimal("0.00010000"), 1_000, 1_005, 28_800_000_000_000),
        FundingRateUpdate(iid, Decimal("-0.00250000"), 2_000, 2_001, None),
    ]
    catalog = ParquetDataCatalog(str(tmp_path))
    catalog.write_data(updates)
    back = catalog.query(FundingRateUpdate)
    assert [(u.instrument_id, u.rate, u.ts_event, u.ts_init, u.next_funding_ns) for u in back] == [
        (u.instrument_id, u.rate, u.ts_event, u.ts_init, u.next_funding_ns) for u in updates
    ]
