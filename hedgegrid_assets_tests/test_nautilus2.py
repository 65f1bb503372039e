"""NautilusTrader 2.0 from its own locked environment (.venv-nautilus2, `make install`, issue 25
point 3): our 1.x catalog goes through 2.0's own legacy migration and reads back, record for
record, what 1.231 reads (tools/nautilus2_forward_guard.py, run on the suite's sample catalog)."""

from __future__ import annotations

import subprocess
import sys

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
