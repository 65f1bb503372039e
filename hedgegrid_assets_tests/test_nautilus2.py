"""NautilusTrader 2.0 from its own locked environment (.venv-nautilus2, `make install`, issue 25
point 3): our 1.x catalog goes through 2.0's own legacy migration and reads back, record for
record, what 1.231 reads (tools/nautilus2_forward_guard.py, run on the suite's sample catalog);
`hedgegrid catalog migrate SRC DST` (issue 25 point 4) makes a verified 2.0 catalog of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hedgegrid_assets_tests.conftest import REPO

NT2_PYTHON = REPO / ".venv-nautilus2" / "bin" / "python"


def test_the_second_environment_holds_the_pinned_nautilus_2():
    probe = "import importlib.metadata as m, nautilus_trader; print(m.version('nautilus_trader'))"
    found = subprocess.run([str(NT2_PYTHON), "-c", probe], capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == "2.0.0rc6"
    # ...and the main environment keeps 1.231.
    import nautilus_trader

    assert nautilus_trader.__version__ == "1.231.0"


def test_our_catalog_migrates_into_nautilus_2_unchanged(built):
    guard = subprocess.run(
        [sys.executable, str(REPO / "tools" / "nautilus2_forward_guard.py"), "--catalog", str(built.catalog)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert guard.returncode == 0, guard.stdout[-3000:] + guard.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in guard.stdout.splitlines() if line.strip()}
    for kind in ("trades", "mark", "funding", "instruments"):
        assert "yes" in rows[kind], guard.stdout  # identical to what 1.231 reads


def _files(root):
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_catalog_migrate_makes_a_verified_nautilus_2_catalog(built, tmp_path, capsys):
    from hedgegrid_assets.catalog.provenance import PROVENANCE_FILE, IncompatibleCatalogError, check_writable
    from hedgegrid_assets.cli import main

    before = _files(built.catalog)
    dst = tmp_path / "nt2-catalog"
    assert main(["catalog", "migrate", str(built.catalog), str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"{dst}: a NautilusTrader 2.0 catalog" in out
    # Every kind the sample writes, each count equal to 1.231's, values compared at both ends.
    kinds = ["bar", "crypto_perpetual", "funding_rate_update", "mark_price_update", "order_book_deltas"]
    kinds += ["quote_tick", "trade_tick"]
    for kind in kinds:
        assert f"  {kind}: " in out and "(values equal)" in out.split(f"  {kind}: ")[1].splitlines()[0], out
    assert _files(built.catalog) == before  # the source is only read
    assert sorted(p.name for p in (dst / "data").iterdir()) == [
        "bars", "crypto_perpetual", "funding_rates", "mark_prices", "order_book_deltas", "quotes", "trades",
    ]  # fmt: skip
    assert json.loads((dst / PROVENANCE_FILE).read_text())["catalog_format"] == "nautilus-2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left
    # NautilusTrader 2.0 itself reads it: as many trades as 1.231 reads from the source.
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    trades_1x = len(ParquetDataCatalog(str(built.catalog)).trade_ticks())
    count = (
        "import sys; from nautilus_trader.persistence import ParquetDataCatalog; "
        "print(len(ParquetDataCatalog(sys.argv[1]).query_trade_ticks()))"
    )
    read = subprocess.run([str(NT2_PYTHON), "-c", count, str(dst)], capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr[-2000:]
    assert int(read.stdout) == trades_1x > 0
    # A 1.x build into it is refused, naming what it is.
    with pytest.raises(IncompatibleCatalogError, match="is a NautilusTrader 2.0 catalog"):
        check_writable(dst)


def test_catalog_migrate_refuses_and_writes_nothing(built, tmp_path, capsys, monkeypatch):
    from hedgegrid_assets.cli import main

    full = tmp_path / "full"
    (full / "something").mkdir(parents=True)
    not_a_catalog = tmp_path / "plain"
    not_a_catalog.mkdir()
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    newer = tmp_path / "newer"
    (newer / "data" / "trades").mkdir(parents=True)
    cases = [
        ([str(built.catalog), str(full)], "not empty; migrate into a new or empty folder"),
        ([str(empty), str(tmp_path / "a")], "holds no NautilusTrader 1.x data folder (found: nothing)"),
        ([str(newer), str(tmp_path / "a")], "holds NautilusTrader 2.0 folders (trades), not a 1.x catalog"),
        ([str(built.catalog), str(built.catalog / "inside")], "inside the catalog being migrated"),
        ([str(not_a_catalog), str(tmp_path / "a")], "not a NautilusTrader catalog (no data/ folder in it)"),
    ]
    for args, said in cases:
        assert main(["catalog", "migrate", *args]) == 2
        assert said in capsys.readouterr().err
    assert not (built.catalog / "inside").exists() and not (tmp_path / "a").exists()
    # 2.0 failing half-way: no DST, no work folder, not even the parents it made for DST.
    monkeypatch.setenv("HEDGEGRID_NAUTILUS2_PYTHON", "/bin/false")
    assert main(["catalog", "migrate", str(built.catalog), str(tmp_path / "deep" / "b")]) == 2
    assert "NautilusTrader 2.0 could not migrate" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full", "newer", "plain"]


def test_funding_settles_the_same_in_both_engines(built, tmp_path):
    """The same 1.x catalog and its 2.0 twin (catalog migrate), the same position (0.1 BTC bought at
    the first trade and held through 2024-01-01..02): every settlement our 1.231 module pays equals
    the one NautilusTrader 2.0's engine settles itself, in time and payment, (start, end] both."""
    import datetime as dt
    from decimal import Decimal

    from hedgegrid_assets.catalog.migrate import migrate
    from hedgegrid_assets_tests.conftest import DAYS
    from hedgegrid_assets_tests.test_backtest import INSTRUMENT_ID, _ns, hold_with_our_funding

    start_ns, end_ns = _ns(DAYS[0]), _ns(DAYS[-1] + dt.timedelta(days=1))
    twin = tmp_path / "nt2"
    migrate(built.catalog, twin)
    ran = subprocess.run(
        [str(NT2_PYTHON), "-P", str(REPO / "hedgegrid_assets_tests" / "nautilus2_hold.py"), str(twin), INSTRUMENT_ID,
         "0.100", str(start_ns), str(end_ns), str(tmp_path / "settled.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    theirs = json.loads((tmp_path / "settled.json").read_text())
    _, ours = hold_with_our_funding(built, start_ns, end_ns)
    assert len(ours) == 6  # 08:00, 16:00, 00:00 x 2 days, the last at the range's end itself
    assert [(s.settlement_ns, s.payment) for s in ours] == [(t["ts"], Decimal(t["payment"])) for t in theirs]
    assert {t["qty"] for t in theirs} == {"0.100"}
