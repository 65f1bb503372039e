"""Settings: defaults run offline; env beats the TOML file; secrets are not settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from hedgegrid_assets.instruments import instrument_for
from hedgegrid_assets.settings import Settings


def test_defaults_run_the_sample_source(monkeypatch):
    s = Settings()
    assert s.source == "sample" and s.symbols == ["BTCUSDT", "ETHUSDT"]
    assert s.catalog_path == s.data_dir / "catalog" and s.start_date == dt.date(2024, 1, 1)


def test_toml_file_then_env_override(tmp_path, monkeypatch):
    toml = tmp_path / "hedgegrid.toml"
    toml.write_text(
        'symbols = ["SOLUSDT"]\nstart_date = 2023-06-01\n[sample]\ntrades_per_day = 900\n'
        '[instruments.PEPEUSDT]\ntick_size = "0.0000001"\nstep_size = "1"\n'
    )
    monkeypatch.setenv("HEDGEGRID_SETTINGS_FILE", str(toml))
    s = Settings()
    assert s.symbols == ["SOLUSDT"] and s.sample.trades_per_day == 900 and s.start_date == dt.date(2023, 6, 1)
    pepe = instrument_for("PEPEUSDT", s)
    assert (pepe.price_precision, pepe.size_precision, pepe.instrument_id) == (7, 0, "PEPEUSDT-PERP.BINANCE")

    monkeypatch.setenv("HEDGEGRID_SYMBOLS", "btcusdt, ethusdt")
    monkeypatch.setenv("HEDGEGRID_SAMPLE__TRADES_PER_DAY", "1234")
    monkeypatch.setenv("HEDGEGRID_CATALOG_DIR", str(tmp_path / "cat"))
    s = Settings()
    assert s.symbols == ["BTCUSDT", "ETHUSDT"] and s.sample.trades_per_day == 1234
    assert s.catalog_path == tmp_path / "cat"


def test_relative_paths_come_from_the_base_dir_when_set(tmp_path, monkeypatch):
    """`make ui` runs Dagster from inside .dagster/ with HEDGEGRID_BASE_DIR=<project>: the project's
    hedgegrid.toml and its relative paths, as `hedgegrid build` from the project reads them."""
    (tmp_path / "hedgegrid.toml").write_text('data_dir = "mydata"\nsource_config = "conf/src.json"\n')
    monkeypatch.delenv("HEDGEGRID_SETTINGS_FILE", raising=False)
    monkeypatch.chdir(tmp_path.parent)  # not where the settings are
    monkeypatch.setenv("HEDGEGRID_BASE_DIR", str(tmp_path))
    s = Settings()
    assert (s.data_dir, s.catalog_path, s.source_config) == (
        tmp_path / "mydata",
        tmp_path / "mydata" / "catalog",
        tmp_path / "conf" / "src.json",
    )
    monkeypatch.delenv("HEDGEGRID_BASE_DIR")
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == Path("mydata")  # unset: the working directory's, relative as given


def test_unknown_setting_is_an_error(tmp_path, monkeypatch):
    toml = tmp_path / "hedgegrid.toml"
    toml.write_text('symbol = "BTCUSDT"\n')
    monkeypatch.setenv("HEDGEGRID_SETTINGS_FILE", str(toml))
    with pytest.raises(ValidationError, match="symbol"):
        Settings()


def test_precisions_come_from_tick_and_step_sizes():
    s = Settings()
    btc = instrument_for("BTCUSDT", s)  # Binance says pricePrecision 2, but the tick is 0.10
    assert (btc.price_precision, btc.size_precision) == (1, 3)
    assert instrument_for("DOGEUSDT", s).price_precision == 5
