"""Forward guard: does our catalog survive NautilusTrader 2.0's legacy migration unchanged?

Run from the repo root with the project's venv (nautilus_trader 1.231 is the reference reader):

    .venv/bin/python tools/nautilus2_forward_guard.py                  # builds a fresh sample catalog
    .venv/bin/python tools/nautilus2_forward_guard.py --catalog data/catalog

Steps: build a 2-symbol, 2-day sample catalog with `hedgegrid build` into a temporary folder
(unless --catalog is given); in the NautilusTrader 2.0 environment `make install` builds
(.venv-nautilus2/, from envs/nautilus2/uv.lock), for each kind on its own and
then for the whole catalog, copy the files to a scratch legacy catalog and run
`ParquetDataCatalog(new).migrate_from_legacy_parquet_path(<legacy catalog root>)`
(dry_run first), read every record back and compare it field by field with what 1.231 reads
from the original files. Prints one row per kind; exits 1 if any kind fails.
`make test` runs it on the test suite's sample catalog (test_nautilus2.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # both environments read records the same way: `catalog migrate`'s normalize
from hedgegrid_assets.catalog.nautilus2_worker import normalize  # noqa: E402  (stdlib and nautilus_trader only)

NT2_VERSION = "2.0.0rc6"
NT2_VENV = ROOT / ".venv-nautilus2"  # made by `make install` from envs/nautilus2/uv.lock
# Legacy (1.x) directory under data/ -> label. Instruments are all CryptoPerpetual here.
KINDS = {
    "trade_tick": "trades",
    "mark_price_update": "mark prices",
    "funding_rate_update": "funding rates",
    "crypto_perpetual": "instruments",
}


# Fields 2.0's model no longer has (migration drops them): reported, not counted as a difference.
DROPPED_IN_2 = {"crypto_perpetual": {"maker_fee", "taker_fee"}}


# ---------------------------------------------------------------- nautilus_trader 2.0 side


def read_v2(catalog, kind: str) -> list:
    from nautilus_trader.model import NautilusDataType

    return {
        "trade_tick": catalog.query_trade_ticks,
        "mark_price_update": catalog.query_mark_price_updates,
        "funding_rate_update": lambda: catalog.query(NautilusDataType.FundingRateUpdate),
        "crypto_perpetual": catalog.instruments,
    }[kind]()


def migrate(legacy_root: Path, dirs: list[str], read_kind: str | None) -> dict:
    """Copy `dirs` of the legacy catalog to scratch, migrate them, read `read_kind` back."""
    from nautilus_trader.persistence import ParquetDataCatalog

    out: dict = {"dry_run": None, "migrated": None, "records": None, "error": None}
    with tempfile.TemporaryDirectory() as scratch:
        old, new = Path(scratch, "legacy"), Path(scratch, "new")
        for d in dirs:
            shutil.copytree(legacy_root / "data" / d, old / "data" / d)
        new.mkdir()
        catalog = ParquetDataCatalog(str(new))
        try:
            # The catalog root, not its data/ folder (given data/, it finds nothing and returns 0).
            out["dry_run"] = catalog.migrate_from_legacy_parquet_path(str(old), dry_run=True)
            out["migrated"] = catalog.migrate_from_legacy_parquet_path(str(old))
            if read_kind:
                out["records"] = [normalize(o) for o in read_v2(catalog, read_kind)]
        except Exception as err:
            out["error"] = short_error(err)
    return out


def short_error(err: Exception) -> str:
    """First two lines of an error (the preflight repeats one line per file)."""
    lines = f"{type(err).__name__}: {err}".strip().splitlines()
    more = f" (+{len(lines) - 2} more lines)" if len(lines) > 2 else ""
    return " ".join(line.strip() for line in lines[:2]) + more


def worker(legacy_root: Path, result_file: Path) -> None:
    present = [k for k in KINDS if (legacy_root / "data" / k).is_dir()]
    results = {k: migrate(legacy_root, [k], k) for k in present}
    results["ALL"] = migrate(legacy_root, sorted(p.name for p in (legacy_root / "data").iterdir()), None)
    result_file.write_text(json.dumps(results))


# ---------------------------------------------------------------- nautilus_trader 1.231 side


def read_v1(catalog_root: Path, kind: str) -> list[str]:
    from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    try:  # older package versions registered a home-made funding serializer on import
        import hedgegrid_assets  # noqa: F401
    except Exception:
        pass
    catalog = ParquetDataCatalog(str(catalog_root))
    read = {
        "trade_tick": lambda ids: catalog.trade_ticks(instrument_ids=ids),
        "mark_price_update": lambda ids: catalog.query(MarkPriceUpdate, identifiers=ids),
        "funding_rate_update": lambda ids: catalog.query(FundingRateUpdate, identifiers=ids),
        "crypto_perpetual": lambda ids: catalog.instruments(instrument_ids=ids),
    }[kind]
    # One instrument at a time: 1.231 reading funding of several instruments in one query labels
    # every row with the first file's instrument_id (the id lives only in each file's metadata).
    ids = sorted(p.name for p in (catalog_root / "data" / kind).iterdir())
    return [normalize(o) for iid in ids for o in read([iid])]


def ensure_nt2_env() -> Path:
    """The NautilusTrader 2.0 environment `make install` builds from envs/nautilus2/uv.lock."""
    python = NT2_VENV / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('nautilus_trader'))"]
    found = subprocess.run(probe, capture_output=True, text=True).stdout.strip() if python.exists() else None
    if found != NT2_VERSION:
        sys.exit(
            f"{NT2_VENV}: nautilus_trader {found or 'not installed'}, not {NT2_VERSION}: run `make install` "
            "(it installs the 2.0 environment from envs/nautilus2/uv.lock)"
        )
    return python


def build_sample_catalog(tmp: Path) -> Path:
    home = tmp / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEGRID_")}  # defaults only
    env["DAGSTER_HOME"] = str(home)
    cmd = [
        str(Path(sys.executable).with_name("hedgegrid")),
        "build",
        "--source",
        "sample",
        "--symbol",
        "BTCUSDT",
        "--symbol",
        "ETHUSDT",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-03",
        "--data-dir",
        str(tmp / "data"),
    ]
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)  # cwd: no hedgegrid.toml
    if done.returncode:
        sys.exit(f"hedgegrid build failed:\n{done.stdout}\n{done.stderr}")
    return tmp / "data" / "catalog"


def schema_of(catalog_root: Path, kind: str) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def name(t):
        return f"dictionary<{t.index_type},{t.value_type}>" if pa.types.is_dictionary(t) else str(t)

    first = next((catalog_root / "data" / kind).rglob("*.parquet"), None)
    return ", ".join(f"{f.name}: {name(f.type)}" for f in pq.read_schema(first)) if first else "(no file)"


def compare(v1: list[str], v2: list[str]) -> str | None:
    """None when identical (as multisets of records), else what differs."""
    a, b = Counter(v1), Counter(v2)
    only1, only2 = a - b, b - a
    if not only1 and not only2:
        return None
    example = lambda c: next(iter(c), "-")  # noqa: E731
    return (
        f"{sum(only1.values())} record(s) only in 1.231, {sum(only2.values())} only in 2.0; "
        f"e.g. 1.231 {example(only1)} vs 2.0 {example(only2)}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", type=Path, help="check this existing catalog root instead of building one")
    ap.add_argument("--worker", nargs=2, type=Path, metavar=("CATALOG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:  # inside the nautilus_trader 2.0 venv
        worker(*args.worker)
        return 0

    with tempfile.TemporaryDirectory(prefix="nt2-guard-") as tmp_name:
        tmp = Path(tmp_name)
        catalog = args.catalog.resolve() if args.catalog else build_sample_catalog(tmp)
        nt2 = ensure_nt2_env()
        out = tmp / "nt2-result.json"
        subprocess.run([str(nt2), __file__, "--worker", str(catalog), str(out)], check=True)
        return report(catalog, json.loads(out.read_text()))  # inside `with`: a built catalog still exists


def report(catalog: Path, results: dict) -> int:
    import nautilus_trader

    print(f"\ncatalog {catalog}: nautilus_trader {nautilus_trader.__version__} (reference) vs {NT2_VERSION}\n")
    row = "{:<14} {:>8} {:>9} {:>9} {:>9}  {:<9}  {}"
    print(row.format("kind", "dry-run", "migrated", "rows 1.x", "rows 2.0", "identical", "error"))
    failed, notes = False, []
    for kind, r in results.items():
        label = KINDS.get(kind, "whole catalog")
        problem = r["error"]
        v1 = v2 = None
        if kind != "ALL":
            v2 = r["records"]
            try:
                v1 = read_v1(catalog, kind)
            except Exception as err:
                problem = "; ".join(filter(None, [problem, f"1.231 cannot read it: {short_error(err)}"]))
            if problem is None:
                dropped = DROPPED_IN_2.get(kind, set())
                v1 = (
                    [
                        json.dumps({k: v for k, v in json.loads(rec).items() if k not in dropped}, sort_keys=True)
                        for rec in v1
                    ]
                    if dropped
                    else v1
                )
                problem = compare(v1, v2)
                if dropped and problem is None:
                    notes.append(f"{label}: 2.0 has no {', '.join(sorted(dropped))}; the migration drops them")
        identical = "-" if kind == "ALL" else ("yes" if problem is None else "no")
        failed |= problem is not None
        print(
            row.format(
                label,
                "ok" if r["dry_run"] is not None else "FAILED",
                "yes" if r["migrated"] is not None else "no",
                "-" if v1 is None else len(v1),
                "-" if v2 is None else len(v2),
                identical,
                problem or "",
            )
        )
        if problem and kind != "ALL":
            print(f"{'':<14} our file: {schema_of(catalog, kind)}")
    for note in notes:
        print(f"note: {note}")
    print("\nFAILED: see the error column" if failed else "\nOK: every kind migrates and reads back identically")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
