"""Names that become paths are refused where they enter; nothing is written, renamed or
deleted outside its zone (issue 10, point 1)."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from hedgegrid_assets.checks.quarantine import quarantine_path
from hedgegrid_assets.frames import TRADES
from hedgegrid_assets.frames.staging import FrameIOManager
from hedgegrid_assets.names import OutsideZoneError, UnsafeNameError, checked, inside
from hedgegrid_assets.partitions import partition_context, split_key
from hedgegrid_assets.settings import Settings
from hedgegrid_assets_tests.test_cli import BIN, run

EVIL = "../../../../VICTIM"


@pytest.mark.parametrize("symbol", [EVIL, "BTC/USDT", "btc usdt", ".", "..", "A", "BTCUSDT\x00", "X" * 41, ""])
def test_bad_symbols_are_refused_in_settings(symbol):
    with pytest.raises(ValidationError, match="invalid symbol"):
        Settings(symbols=[symbol or " "])
    with pytest.raises(ValidationError, match="invalid symbol"):
        Settings(instruments={symbol or " ": {"tick_size": "0.1", "step_size": "1"}})


def test_good_names_pass():
    assert [checked("symbol", s) for s in ("BTCUSDT", "1000PEPEUSDT", "BTCUSDT_250328")]
    s = Settings(symbols=["btcusdt"], venue="BINANCE")  # symbols are upper-cased first
    assert s.symbols == ["BTCUSDT"]


def test_bad_venue_exchange_and_env_symbols_are_refused(monkeypatch):
    with pytest.raises(ValidationError, match="invalid venue"):
        Settings(venue="../BINANCE")
    with pytest.raises(ValidationError, match="invalid exchange"):
        Settings(tardis={"exchange": "binance-futures/../../x"})
    monkeypatch.setenv("HEDGEGRID_SYMBOLS", f"BTCUSDT,{EVIL}")
    with pytest.raises(ValidationError, match="invalid symbol"):
        Settings()


def test_partition_keys_are_checked():
    with pytest.raises(ValueError, match=r"partition key '2024-01-01\|\.\./x' is not DATE\|SYMBOL: invalid symbol"):
        split_key("2024-01-01|../x")
    with pytest.raises(UnsafeNameError):
        partition_context("2024-01-01|BTC/USDT", Settings())


def test_inside_refuses_dot_dot_and_symlinks_out(tmp_path):
    zone, outside = tmp_path / "zone", tmp_path / "outside"
    zone.mkdir()
    outside.mkdir()
    assert inside(zone, zone / "a" / "b.parquet") == zone / "a" / "b.parquet"
    with pytest.raises(OutsideZoneError, match="outside"):
        inside(zone, zone / "a" / ".." / ".." / "outside" / "x")
    (zone / "trades").symlink_to(outside)
    with pytest.raises(OutsideZoneError):
        inside(zone, zone / "trades" / "x.parquet")
    # The staging and quarantine writers ask before they touch anything.
    with pytest.raises(OutsideZoneError):
        FrameIOManager(staging_dir=str(zone)).path("trades", "2024-01-02|BTCUSDT")
    (zone / "quarantine").symlink_to(outside)
    with pytest.raises(OutsideZoneError):
        quarantine_path(zone, TRADES, partition_context("2024-01-02|BTCUSDT", Settings()))
    assert list(outside.iterdir()) == []


def test_the_traversal_attempt_stops_at_the_command_line(tmp_path):
    """The adversarial case: a symbol defined in hedgegrid.toml as `../../../../VICTIM`, built
    with --symbol and a config whose file_path is `d{symbol}/t.csv`."""
    victim = tmp_path / "VICTIM"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    work = tmp_path / "a" / "b" / "c" / "d"
    work.mkdir(parents=True)
    (work / "hedgegrid.toml").write_text(f'[instruments."{EVIL}"]\ntick_size = "0.1"\nstep_size = "0.001"\n')
    config = work / "cfg.json"
    config.write_text(json.dumps({"base_path": str(work), "files": {"trades": {"file_path": "d{symbol}/t.csv"}}}))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    proc = run([str(BIN / "hedgegrid"), "build", "--source", "csv", "--config", str(config), "--symbol", EVIL,
                "--start", "2024-01-01", "--end", "2024-01-02", "--data-dir", str(work / "data")], work,
               HEDGEGRID_SETTINGS_FILE=str(work / "hedgegrid.toml"))  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "invalid symbol '../../../../VICTIM'" in proc.stderr and "Traceback" not in proc.stderr
    after = sorted(str(p) for p in tmp_path.rglob("*") if "dagster_home" not in str(p))
    assert after == [p for p in before if "dagster_home" not in p]
    assert (victim / "precious.txt").read_text() == "keep me" and os.listdir(victim) == ["precious.txt"]
