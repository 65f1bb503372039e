"""Shared fixtures: a real Dagster instance in a temporary DAGSTER_HOME and a built catalog."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from hedgegrid_assets.definitions import BUILD_JOB, build_definitions
from hedgegrid_assets.partitions import partition_key
from hedgegrid_assets.settings import SampleSettings, Settings

REPO = Path(__file__).resolve().parent.parent
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(autouse=True, scope="session")
def _no_user_settings(tmp_path_factory):
    """Tests never pick up a developer's hedgegrid.toml or HEDGEGRID_* variables."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("HEDGEGRID_")}
    for k in saved:
        del os.environ[k]
    os.environ["HEDGEGRID_SETTINGS_FILE"] = str(tmp_path_factory.mktemp("nosettings") / "absent.toml")
    yield
    os.environ.pop("HEDGEGRID_SETTINGS_FILE", None)
    os.environ.update(saved)


def make_settings(root: Path, **overrides) -> Settings:
    base = dict(
        symbols=SYMBOLS,
        start_date=DAYS[0],
        data_dir=root / "data",
        sample=SampleSettings(trades_per_day=4_000),
    )
    return Settings(**(base | overrides))


def make_instance(root: Path) -> DagsterInstance:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return DagsterInstance.from_config(str(home))


def materializations(result) -> dict:
    """A run's asset materializations by asset name."""
    return {
        ev.event_specific_data.materialization.asset_key.to_user_string(): ev.event_specific_data.materialization
        for ev in result.get_asset_materialization_events()
    }


@dataclass
class Built:
    settings: Settings
    instance: DagsterInstance
    results: dict

    @property
    def catalog(self) -> Path:
        return self.settings.catalog_path


def build(settings: Settings, instance: DagsterInstance, keys, job_name: str = BUILD_JOB, raise_on_error=True):
    job = build_definitions(settings).resolve_job_def(job_name)
    return {
        str(k): job.execute_in_process(
            partition_key=k, instance=instance, raise_on_error=raise_on_error, run_config=QUIET
        )
        for k in keys
    }


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    """2 days x 2 symbols of sample data built through Dagster into a temporary catalog."""
    root = tmp_path_factory.mktemp("built")
    settings = make_settings(root)
    instance = make_instance(root)
    keys = [partition_key(d, s) for d in DAYS for s in SYMBOLS]
    return Built(settings, instance, build(settings, instance, keys))
