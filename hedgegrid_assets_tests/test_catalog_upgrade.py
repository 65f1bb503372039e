"""Catalog provenance and `hedgegrid catalog upgrade`: a catalog built by hedgegrid 0.1
(nautilus_trader 1.220, funding in a home-made schema) is refused by a build, and rewritten
in place, resumably, into a catalog nautilus_trader 1.231 reads whole."""

from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets.catalog import provenance, upgrade
from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets_tests.conftest import DAYS, build, make_instance, make_settings
from hedgegrid_assets_tests.test_cli import BIN, run

IID = "BTCUSDT-PERP.BINANCE"
# hedgegrid 0.1's funding schema, as its funding_serialization.py wrote it.
LEGACY_FUNDING = pa.schema(
    [
        pa.field("instrument_id", pa.string(), nullable=False),
        pa.field("rate", pa.decimal128(38, 16), nullable=False),
        pa.field("next_funding_ns", pa.uint64(), nullable=True),
        pa.field("ts_event", pa.uint64(), nullable=False),
        pa.field("ts_init", pa.uint64(), nullable=False),
    ],
    metadata={"type": "FundingRateUpdate"},
)


def make_legacy(root, instrument) -> None:
    """Turn a freshly built catalog into what hedgegrid 0.1 left: format-1 funding files,
    instruments as 1.220's write_data wrote them (dictionary strings, no lot_size column), no
    provenance file."""
    for path in sorted((root / "data" / "funding_rate_update").glob("*/*.parquet")):
        new = pq.read_table(path)
        rates = pl.from_arrow(new.column("rate").cast(pa.string())).str.strip_chars('"').cast(pl.Decimal(38, 16))
        legacy = {
            "instrument_id": [new.schema.metadata[b"instrument_id"].decode()] * new.num_rows,
            "rate": rates.to_arrow(),
            **{c: new.column(c) for c in ("next_funding_ns", "ts_event", "ts_init")},
        }
        pq.write_table(pa.Table.from_pydict(legacy, schema=LEGACY_FUNDING), path)
    (written,) = (root / "data" / "crypto_perpetual").glob("*/*.parquet")
    scratch = root.parent / "scratch"
    ParquetDataCatalog(str(scratch)).write_data([instrument])
    (raw,) = (scratch / "data" / "crypto_perpetual").glob("*/*.parquet")
    old = pq.read_table(raw)
    pq.write_table(old.drop_columns(["lot_size"]).replace_schema_metadata(old.schema.metadata), written)
    (root / provenance.PROVENANCE_FILE).unlink()


def test_build_refuses_a_legacy_catalog_and_upgrade_rewrites_it_resumably(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, symbols=["BTCUSDT"])
    keys = [partition_key(d, "BTCUSDT") for d in DAYS]
    build(settings, make_instance(tmp_path), keys)
    root = settings.catalog_path
    written = json.loads((root / provenance.PROVENANCE_FILE).read_text())
    assert written["format"] == provenance.FORMAT == 2
    assert written["written_by"]["nautilus_trader"] == "1.231.0"
    assert written["kinds"]["funding_rates"]["schema"]["rate"] == "binary"
    expected = ParquetDataCatalog(str(root)).query(FundingRateUpdate, identifiers=[IID])
    assert len(expected) > 0

    make_legacy(root, instrument_for("BTCUSDT", settings).nautilus)
    assert provenance.catalog_format(root) == 1
    (legacy_inst,) = ParquetDataCatalog(str(root)).instruments()
    assert CryptoPerpetual.to_dict(legacy_inst)["lot_size"] is None  # as 1.231 reads a 1.220 file
    with pytest.raises(KeyError):  # what nautilus_trader 1.231 makes of format 1
        ParquetDataCatalog(str(root)).query(FundingRateUpdate, identifiers=[IID])

    # A build refuses, before any run, and names the command that fixes it.
    proc = run([str(BIN / "hedgegrid"), "build", "--symbol", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02",
                "--catalog", str(root), "--data-dir", str(tmp_path / "data")], tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"Upgrade it in place first: hedgegrid catalog upgrade {root}" in proc.stderr
    # So does a Dagster run (UI, daemon, dagster asset materialize), at the catalog write.
    result = build(settings, make_instance(tmp_path), keys[:1], raise_on_error=False)[str(keys[0])]
    assert not result.success
    failures = [ev.step_failure_data.user_failure_data.description for ev in result.get_step_failure_events()]
    assert failures and all("hedgegrid catalog upgrade" in f for f in failures)

    # An upgrade killed after its first file: one file new, one old, a temporary left behind.
    real = upgrade._replace_durably
    calls = []

    def killed_on_second(table, path):
        calls.append(path)
        if len(calls) == 2:
            upgrade._tmp_for(path).write_bytes(b"half written")
            raise KeyboardInterrupt("kill -9")
        real(table, path)

    monkeypatch.setattr(upgrade, "_replace_durably", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        upgrade.upgrade(root, settings)
    monkeypatch.setattr(upgrade, "_replace_durably", real)
    assert len(provenance.legacy_funding_files(root)) == 1
    assert provenance.catalog_format(root) == 1

    proc = run([str(BIN / "hedgegrid"), "catalog", "upgrade", str(root)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 temporary file(s)" in proc.stdout
    assert "format 1 -> format 2; rewrote 1 funding file(s) and 1 instrument file(s)" in proc.stdout
    assert not list((root / "data").rglob(".*.tmp"))

    back = ParquetDataCatalog(str(root)).query(FundingRateUpdate, identifiers=[IID])
    fields = lambda u: (Decimal(u.rate), u.interval, u.next_funding_ns, u.ts_event, u.ts_init)  # noqa: E731
    assert [fields(u) for u in back] == [fields(u) for u in expected]
    assert [u.rate for u in back] == [u.rate for u in expected]  # the same text, "0.00010123"
    (inst,) = (root / "data" / "crypto_perpetual").glob("*/*.parquet")
    assert not [f for f in pq.read_schema(inst) if pa.types.is_dictionary(f.type)]
    (back_inst,) = ParquetDataCatalog(str(root)).instruments()
    assert CryptoPerpetual.to_dict(back_inst) == CryptoPerpetual.to_dict(instrument_for("BTCUSDT", settings).nautilus)
    assert provenance.catalog_format(root) == 2

    again = run([str(BIN / "hedgegrid"), "catalog", "upgrade", str(root)], tmp_path)
    assert again.returncode == 0 and "(already current)" in again.stdout
    build(settings, make_instance(tmp_path), keys[:1])  # and builds go on into it


def test_a_newer_format_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / provenance.PROVENANCE_FILE).write_text(json.dumps({"format": provenance.FORMAT + 1}))
    with pytest.raises(provenance.IncompatibleCatalogError, match="written by a newer hedgegrid"):
        provenance.check_writable(tmp_path)
    with pytest.raises(upgrade.UpgradeError, match="newer than this hedgegrid"):
        upgrade.upgrade(tmp_path, make_settings(tmp_path))
