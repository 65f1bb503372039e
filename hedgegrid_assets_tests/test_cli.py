"""The command lines users run: `hedgegrid build` and `dagster asset materialize`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from hedgegrid_assets_tests.conftest import REPO

BIN = Path(sys.executable).parent
TODAY = dt.datetime.now(dt.UTC).date()


def run(args: list[str], tmp_path: Path, **env) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    config = (REPO / "dagster.yaml").read_text()
    if not (home / "dagster.yaml").exists() or (home / "dagster.yaml").read_text() != config:
        (home / "dagster.yaml").write_text(config)  # not rewritten under a concurrent run of the same home
    # No settings or Tardis key of the machine's own leak in: only what the test gives.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEGRID_", "TARDIS_"))}
    full_env |= {
        "DAGSTER_HOME": str(home),
        "HEDGEGRID_SETTINGS_FILE": str(tmp_path / "absent.toml"),
        "HEDGEGRID_SAMPLE__TRADES_PER_DAY": "3000",
        **env,
    }
    return subprocess.run(args, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=300)


def dagster_materialize(tmp_path: Path, *partitions: str, **env) -> subprocess.CompletedProcess:
    """`dagster asset materialize` of the whole graph for `--partition K` / `--partition-range A...B`
    into `tmp_path/d`; asserts it succeeded."""
    proc = run([str(BIN / "dagster"), "asset", "materialize", "-m", "hedgegrid_assets", "--select", "*", *partitions],
               tmp_path, HEDGEGRID_DATA_DIR=str(tmp_path / "d"), **env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_build_range_prints_progress_summary_and_records_runs(tmp_path):
    proc = run(
        [
            str(BIN / "hedgegrid"),
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
            "--data-types",
            "trades,funding",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        tmp_path,
        HEDGEGRID_CHECKS__MAX_TRADE_GAP_MINUTES="0.5",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # WARN checks do not fail a partition but are said under it.
    assert out.count("      warning: trades_gap on trades: largest gap without trades") == 4
    for key in ("2024-01-01|BTCUSDT", "2024-01-01|ETHUSDT", "2024-01-02|BTCUSDT", "2024-01-02|ETHUSDT"):
        assert f"] {key}  ok  trades=" in out
    assert "[4/4]" in out and "mark_prices=" not in out
    assert f"catalog: {tmp_path / 'd' / 'catalog'}" in out
    catalog = ParquetDataCatalog(str(tmp_path / "d" / "catalog"))
    assert len(catalog.instruments()) == 2
    assert len(catalog.trade_ticks()) > 4 * 2000
    assert not (tmp_path / "d" / "catalog" / "data" / "mark_price_update").exists()
    # Runs and their checks are in the DAGSTER_HOME instance.
    instance = DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    assert len(instance.get_runs()) == 4
    assert instance.get_latest_materialization_event(AssetKey("trades_catalog")) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-01-03", "--end", "2024-01-01"], "--end 2024-01-01 must be after --start 2024-01-03"),
        (["--start", "2024-13-01", "--end", "2024-01-02"], "not a date (YYYY-MM-DD): '2024-13-01'"),
        (
            ["--start", "2024-01-01", "--end", "2024-01-02", "--symbol", "NOPEUSDT"],
            "no instrument spec for symbol 'NOPEUSDT'",
        ),
        (["--start", "2024-01-01", "--end", "2024-01-02", "--data-types", "trades,book"], "unknown data type(s) book"),
        # Nothing the UI would not list: symbols and days come from the settings.
        (
            ["--start", "2024-01-01", "--end", "2024-01-02", "--symbol", "SOLUSDT"],
            "SOLUSDT not among the settings' symbols (BTCUSDT, ETHUSDT)",
        ),
        (["--start", "2023-12-31", "--end", "2024-01-02"], "--start 2023-12-31 is before start_date 2024-01-01"),
        (["--start", "2024-01-01", "--end", "2024-01-02", "--source", "ftp"], "invalid choice: 'ftp'"),
        (
            ["--start", str(TODAY - dt.timedelta(days=2)), "--end", str(TODAY + dt.timedelta(days=1))],
            f"has not closed yet (UTC); the last day to build is {TODAY - dt.timedelta(days=1)} (--end {TODAY})",
        ),
    ],
)
def test_bad_arguments_fail_cleanly(tmp_path, args, message):
    proc = run([str(BIN / "hedgegrid"), "build", *args], tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


def test_failed_partition_exits_nonzero_with_one_line_reason(tmp_path):
    proc = run(
        [
            str(BIN / "hedgegrid"),
            "build",
            "--symbol",
            "BTCUSDT",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--data-types",
            "trades",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        tmp_path,
        HEDGEGRID_CHECKS__MAX_RECEIVE_LATENCY_S="0.005",
    )
    assert proc.returncode == 1
    # Which check, how many rows, an example: on the partition's line and in the closing summary.
    reason = "rows fail validation: ts_init - ts_event outside [-1.0s, 0.005s] ("
    assert "2024-01-01|BTCUSDT  FAILED  check trades_schema on trades failed: " in proc.stdout and reason in proc.stdout
    # The terminal gets the summary only: the run's log with its stack traces is in the instance.
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "1 of 1 partition(s) failed:" and len(lines) == 2 and reason in lines[1], proc.stderr


def test_help_documents_every_flag(tmp_path):
    proc = run([str(BIN / "hedgegrid"), "build", "--help"], tmp_path)
    for flag in ("--source", "--symbol", "--start", "--end", "--data-types", "--config", "--catalog", "--data-dir"):
        assert flag in proc.stdout
    assert "build" in run([str(BIN / "hedgegrid"), "--help"], tmp_path).stdout


def test_dagster_asset_materialize_whole_chain_with_default_settings(tmp_path):
    proc = dagster_materialize(tmp_path, "--partition", "2024-01-02|BTCUSDT")
    log = proc.stdout + proc.stderr
    for check in ("trades_schema", "mark_prices_schema", "funding_rates_schema", "mark_prices_near_trades"):
        assert f"Asset check '{check}'" in log and "passed" in log
    catalog = ParquetDataCatalog(str(tmp_path / "d" / "catalog"))
    assert [i.id.value for i in catalog.instruments()] == ["BTCUSDT-PERP.BINANCE"]
    ticks = catalog.trade_ticks()
    assert ticks and all(1704153600_000_000_000 <= t.ts_init < 1704240000_000_000_000 for t in ticks)


def test_status_shows_rows_gaps_and_failed_checks(tmp_path):
    for start, end in (("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-04")):
        proc = run([str(BIN / "hedgegrid"), "build", "--symbol", "BTCUSDT", "--start", start, "--end", end,
                    "--data-dir", str(tmp_path / "d")], tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    proc = run([str(BIN / "hedgegrid"), "status", "--data-dir", str(tmp_path / "d")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 partition(s)" in out and "BTCUSDT: 1 day(s) missing in its range: 2024-01-02" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("2024-01-03|BTCUSDT"))
    staged = pl.read_parquet(tmp_path / "d" / "staging" / "trades" / "2024-01-03" / "BTCUSDT.parquet")
    assert f"{staged.height:,}" in line.split()[1]
    # The sample's quiet minutes fail the (WARN) every-minute check of bars: listed per partition.
    assert "failed checks (latest per partition):" in out
    assert "2024-01-03|BTCUSDT: bars_every_minute on bars (WARN)" in out, out


def test_one_instance_per_catalog(tmp_path):
    """The UI's instance describes one catalog: a build into another catalog with it is refused
    before any run (and so is a build without an instance into a catalog one describes); the
    catalog's own instance builds it."""
    args = lambda data: [str(BIN / "hedgegrid"), "build", "--source", "sample", "--symbol", "BTCUSDT",  # noqa: E731
                         "--start", "2024-01-02", "--end", "2024-01-03", "--data-dir", str(tmp_path / data)]  # fmt: skip
    first = run(args("data"), tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    home = (tmp_path / "dagster_home").resolve()
    assert json.loads((tmp_path / "data" / "catalog" / ".hedgegrid-instance.json").read_text()) == {
        "dagster_home": str(home)
    }
    other = run(args("other-data"), tmp_path)
    assert other.returncode == 2
    assert (
        f"the Dagster instance at {home} describes the catalog {(tmp_path / 'data' / 'catalog').resolve()}"
        in other.stderr
    )
    assert not (tmp_path / "other-data" / "catalog" / "data").exists()
    own = tmp_path / "other"
    own.mkdir()
    ok = run(args("other-data"), own)  # its own DAGSTER_HOME (other/dagster_home)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    again = run(args("data"), own)
    assert again.returncode == 2 and f"set DAGSTER_HOME={home}" in again.stderr
