"""The Dagster UI in a real browser: launch one partition from the asset graph and see it pass.

Starts `dg dev` (webserver + daemon, exactly what `make ui` runs, from inside its DAGSTER_HOME) on
127.0.0.1 with a free port, against a temporary DAGSTER_HOME holding the project's dagster.yaml
(QueuedRunCoordinator: the daemon launches the run) and a temporary data folder. Drives
Debian's headless Chromium with Playwright: opens the global asset lineage, clicks
"Materialize all…", picks 2024-01-02 x BTCUSDT in the partition dialog, launches, follows the
run to Success, then opens each frame asset's Checks tab and expects every check Succeeded for
that partition, opens the partition's day picture on catalog_report (the <img> decoded, 900x600)
and observes catalog_coverage to see its picture. The server's log must hold no warning but the
run-retry daemon's one-time notice on a new instance. Screenshots go to test-artifacts/ui-*.png.

Needs /usr/bin/chromium (Debian's `chromium` package; `make test` installs it). Never
downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from hedgegrid_assets.frames import KINDS
from hedgegrid_assets.settings import Settings
from hedgegrid_assets_tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
PARTITION = ("2024-01-02", "BTCUSDT")
# Without the background-networking flags Chromium keeps dialling Google on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
SERVER_START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: install Debian's chromium (`make test` does, as root)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started (webserver, daemon, code servers, run workers)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: a clean shutdown
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture
def dagster_ui(tmp_path):
    """`dg dev` on a temporary instance; yields (base URL, instance home, server log)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    _as_make_install_leaves_it(home)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEGRID_")}
    env |= {
        "DAGSTER_HOME": str(home),
        "HEDGEGRID_SETTINGS_FILE": str(tmp_path / "absent.toml"),  # no developer hedgegrid.toml
        "HEDGEGRID_DATA_DIR": str(tmp_path / "data"),
        # The sample's default: sparser days trip the WARN gap check on this partition.
        "HEDGEGRID_SAMPLE__TRADES_PER_DAY": "20000",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "dagster-dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            # As `make ui` starts it: from inside DAGSTER_HOME (the project root holds a dagster.yaml).
            [str(REPO / ".venv/bin/dg"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so all its children stop with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dg dev exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dg dev not serving after {SERVER_START_TIMEOUT_S} s:\n{_tail(log)}")
            time.sleep(1)
        print(f"dg dev serving {url} after {time.monotonic() - deadline + SERVER_START_TIMEOUT_S:.1f} s")
        yield url, home, log
    finally:
        _stop(proc)


def _as_make_install_leaves_it(home: Path) -> None:
    """The instance as `make install` leaves it: its run-retry cursors seeded (instance_setup.py)."""
    from dagster import DagsterInstance

    from hedgegrid_assets.automation.instance_setup import seed_run_retry_cursors

    with DagsterInstance.from_config(str(home)) as instance:
        assert len(seed_run_retry_cursors(instance)) == 2
        assert seed_run_retry_cursors(instance) == {}  # once


WARNING_LINE = re.compile(r"WARNING|Warning:|warnings\.warn")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _server_warnings(log: Path) -> list[str]:
    """Warnings in the server's output (webserver, daemon, code server), colours stripped."""
    lines = [ANSI.sub("", line) for line in log.read_text(errors="replace").splitlines()]
    return [line for line in lines if WARNING_LINE.search(line)]


def _show_markdown_image(page, entry: str, alt: str):
    """Open the metadata entry's "[Show Markdown]" dialog; return the <img> once the browser has
    decoded it (naturalWidth > 0: a data URI the UI stripped or mangled never gets there)."""
    from playwright.sync_api import expect

    row = page.locator("tr").filter(has=page.get_by_text(entry, exact=True)).first
    row.get_by_text("[Show Markdown]").click()
    image = page.get_by_role("dialog").locator(f'img[alt="{alt}"]')
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return image


def _settle(page, pattern: str, timeout_s: float = 20) -> None:
    """Wait (a while, not forever) for a transient text such as "Loading" to go, for a clean screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(re.compile(pattern)).first.wait_for(state="hidden", timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pass


def _frame_checks() -> dict[str, list[str]]:
    """The asset checks of each frame asset, from the definitions the server loads."""
    from hedgegrid_assets.definitions import build_definitions

    graph = build_definitions(Settings()).resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for key in graph.asset_check_keys:
        if key.asset_key.to_user_string() in KINDS:
            checks.setdefault(key.asset_key.to_user_string(), []).append(key.name)
    return {asset: sorted(names) for asset, names in sorted(checks.items())}


def test_materialize_one_partition_from_the_ui(dagster_ui):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, home, log = dagster_ui
    day, symbol = PARTITION
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("ui-*.png"):
        old.unlink()
    expected_checks = _frame_checks()
    assert set(expected_checks) == set(KINDS), expected_checks

    started = time.monotonic()

    def phase(name: str) -> None:  # shown with the output of a failed test
        print(f"[{time.monotonic() - started:6.1f} s] {name}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            phase("asset graph")
            # 1. The asset graph (global lineage) with its groups raw -> frames -> catalog.
            page.goto(f"{url}/asset-groups")
            expect(page.get_by_text("Global asset lineage").first).to_be_visible()
            materialize = page.get_by_role("button", name="Materialize all")
            expect(materialize).to_be_enabled()
            for group in ("raw", "frames", "catalog"):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            _settle(page, "fetching statuses")
            page.screenshot(path=ARTIFACTS / "ui-1-asset-graph.png")

            phase("launch dialog")
            # 2. Materialize all… -> partition dialog: date 2024-01-02, symbol BTCUSDT -> 1 run.
            materialize.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("Partition selection").first).to_be_visible()
            date_input = dialog.get_by_placeholder("ex: 2024-01-01", exact=False)
            date_input.fill(day)
            date_input.press("Enter")
            dialog.get_by_text("Select a partition or create one").click()
            page.get_by_role("menuitem", name=symbol).click()
            page.keyboard.press("Escape")  # close the symbol list, keep the dialog
            expect(dialog.get_by_text("1 partition", exact=True).first).to_be_visible()
            launch = dialog.get_by_role("button", name="Launch 1 run")
            expect(launch).to_be_enabled()
            page.screenshot(path=ARTIFACTS / "ui-2-launch-dialog.png")
            launch.click()

            phase("run")
            # 3. Follow the run from the toast to its page; the daemon dequeues and launches it.
            # Launching takes more than expect's default 5 s on a loaded machine.
            expect(page.get_by_text("Launched run").first).to_be_visible(timeout=30_000)
            try:
                page.get_by_role("link", name="View").or_(page.get_by_role("button", name="View")).first.click(
                    timeout=10_000
                )
                expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+"), timeout=20_000)
            except (AssertionError, PlaywrightTimeout):  # the toast went before the click: ask the instance
                with DagsterInstance.from_config(str(home)) as instance:
                    (run,) = instance.get_runs(limit=1)
                page.goto(f"{url}/runs/{run.run_id}")
            run_id_prefix = page.url.rstrip("/").rsplit("/", 1)[-1][:8]
            expect(page.get_by_text(f"partition: {day}|{symbol}").first).to_be_visible()
            try:
                expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
            except AssertionError:
                page.screenshot(path=ARTIFACTS / "ui-3-run-FAILED.png")
                with DagsterInstance.from_config(str(home)) as instance:
                    runs = [(r.run_id[:8], r.status.value) for r in instance.get_runs()]
                pytest.fail(f"run {run_id_prefix} did not succeed in the UI; runs: {runs}\n{_tail(log)}")
            page.screenshot(path=ARTIFACTS / "ui-3-run-success.png")

            phase("checks")
            # 4. Each frame asset's Checks tab: every check Succeeded for this partition.
            for asset, checks in expected_checks.items():
                page.goto(f"{url}/assets/{asset}?view=checks")
                expect(page.get_by_text(f"Checks ({len(checks)})").first).to_be_visible()
                for check in checks:
                    # The list entry: the check's name (title attribute) and its latest status beside it.
                    entry = page.get_by_title(check, exact=True).first.locator("xpath=..")
                    expect(entry).to_contain_text("Succeeded")
                # The selected check's latest execution: this partition, passed.
                expect(page.get_by_text(f"{day}|{symbol}", exact=True).first).to_be_visible()
                expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
                page.screenshot(path=ARTIFACTS / f"ui-4-checks-{asset}.png")

            phase("lineage")
            # 5. Lineage of trades: raw_market_data -> trades -> trades_catalog, checks all passed.
            page.goto(f"{url}/assets/trades?view=lineage")
            n = len(expected_checks["trades"])
            # The graph loads each node's checks on its own: under load that takes more than 5 s.
            expect(page.get_by_text(f"{n} / {n} Passed").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("trades_catalog", exact=True).first).to_be_visible()
            _settle(page, "^Loading")
            page.screenshot(path=ARTIFACTS / "ui-5-trades-lineage.png")

            phase("day picture")
            # 6. The partition's report carries its day's picture, rendered by the UI.
            page.goto(f"{url}/assets/catalog_report")
            expect(page.get_by_text(f"{day}|{symbol}", exact=True).first).to_be_visible()
            image = _show_markdown_image(page, "day_picture", f"{day} {symbol}")
            assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [900, 600]
            page.screenshot(path=ARTIFACTS / "ui-6-day-picture.png")
            page.get_by_role("dialog").get_by_role("button", name="Close").click()

            phase("coverage picture")
            # 7. The catalog's coverage: observe catalog_coverage, then its picture.
            # The automation sensor may be observing it already: wait for the button, observe (after
            # the build, so the picture holds the partition), wait for that run, then reload.
            page.goto(f"{url}/assets/catalog_coverage")
            observe = page.get_by_role("button", name=re.compile(r"Observe$")).first  # after its icon's name
            expect(observe).to_be_enabled(timeout=RUN_TIMEOUT_S * 1000)
            observe.click()
            expect(page.get_by_text("Launched run").first).to_be_visible(timeout=30_000)
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                with DagsterInstance.from_config(str(home)) as instance:
                    runs = [
                        r
                        for r in instance.get_runs(limit=5)
                        if AssetKey("catalog_coverage") in (r.asset_selection or ())
                    ]
                if runs and all(r.is_finished for r in runs):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the catalog_coverage observation did not finish: {[(r.run_id[:8], r.status.value) for r in runs]}"
                    )
                time.sleep(2)
            page.reload()
            expect(page.get_by_text("coverage_picture", exact=True).first).to_be_visible()
            image = _show_markdown_image(page, "coverage_picture", "catalog coverage")
            assert image.evaluate("i => i.naturalWidth") == 900
            page.screenshot(path=ARTIFACTS / "ui-7-coverage-picture.png")
            phase("done")
        except Exception as err:
            # Leave the evidence: what the page showed, and what the server said.
            try:
                page.screenshot(path=ARTIFACTS / "ui-failure.png")
            except Exception:
                pass
            raise AssertionError(f"{err}\n(page: {page.url}; test-artifacts/ui-failure.png)\n{_tail(log)}") from err
        finally:
            browser.close()

    # A fresh `dg dev` (what `make ui` runs) says no warning: not that `dagster dev` is superseded,
    # not that a dagster.yaml sits in the folder it starts from, nothing from the code location.
    assert _server_warnings(log) == [], "\n".join(_server_warnings(log))

    # The instance agrees with the page: the run launched from the UI built that partition and
    # every frame check passed. (Other runs, e.g. from automation conditions, are not ours.)
    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = [r for r in instance.get_runs() if r.run_id.startswith(run_id_prefix)]
        assert (run.tags.get("dagster/partition"), run.status) == (f"{day}|{symbol}", DagsterRunStatus.SUCCESS)
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
        ran = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in evaluations}
        expected = {(asset, check): True for asset, checks in expected_checks.items() for check in checks}
        assert {k: v for k, v in ran.items() if k in expected} == expected, ran
