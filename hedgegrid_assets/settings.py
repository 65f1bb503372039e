"""Everything a user sets, in one place.

Values come, highest priority first, from environment variables (`HEDGEGRID_<NAME>`,
nested fields with `__`, e.g. `HEDGEGRID_SAMPLE__TRADES_PER_DAY=50000`), then from a TOML
file (`hedgegrid.toml` in the working directory, or the file named by `HEDGEGRID_SETTINGS_FILE`),
then from the defaults below, which run the offline sample source with no settings at all.

Secrets never live here: the Tardis key is read from `TARDIS_API_KEY` through Dagster's
`EnvVar` by the source resource (see `sources/tardis.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hedgegrid_assets.names import checked
from hedgegrid_assets.storage import URI_PATTERN, is_object_uri, scratch_for

# Repo root when running from a checkout; generated data lives under it unless configured.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The folder relative paths in settings (and the settings file's own name) are taken from, when
# set; else the working directory. `make ui` sets it: Dagster runs from inside .dagster/ there.
BASE_DIR_ENV = "HEDGEGRID_BASE_DIR"
PATH_FIELDS = ("source_config", "data_dir", "catalog_dir", "work_dir", "landing_dir")


def _from_base(path: Path) -> Path:
    base = os.environ.get(BASE_DIR_ENV)
    return Path(base) / path if base and not path.is_absolute() else path


# `s3://bucket/prefix`: a zone in object storage (storage.py), kept as the URI string.
ObjectUri = Annotated[str, StringConstraints(pattern=URI_PATTERN)]
SourceName = Literal["sample", "tardis", "tardis-datasets", "binance", "csv", "jsonl"]


class InstrumentSpec(BaseModel):
    """Exchange specs of one USDT-M perpetual (Binance `/fapi/v1/exchangeInfo`)."""

    tick_size: str
    step_size: str
    min_notional: str = "5"
    maker_fee: str = "0.0002"
    taker_fee: str = "0.0005"
    margin_init: str = "0.05"
    margin_maint: str = "0.025"
    # Clamp on the funding rate (Binance `/fapi/v1/fundingInfo` adjustedFundingRateCap).
    funding_rate_cap: str = "0.03"
    funding_interval_hours: int = 8
    # Sane bounds: larger prices or sizes are quarantined as impossible for the instrument
    # (Binance PRICE_FILTER.maxPrice, LOT_SIZE.maxQty); unset, 10^9 ticks and 10^9 steps.
    max_price: str | None = None
    max_quantity: str | None = None


class SampleSettings(BaseModel):
    """The offline synthetic source."""

    trades_per_day: int = Field(20_000, gt=0, description="Mean number of trades per symbol-day.")
    seed: int = Field(7, description="Base seed; each symbol and day derives its own from it.")


class TardisSettings(BaseModel):
    """Tardis.dev replay API. The key itself comes only from the `TARDIS_API_KEY` env var."""

    endpoint: str = Field("https://api.tardis.dev", description="Replay API base (TARDIS_ENDPOINT wins).")
    exchange: str = "binance-futures"
    trade_channel: Literal["aggTrade", "trade"] = "aggTrade"
    quotes: bool = Field(True, description="Replay bookTicker too (quote ticks; several times the trades' volume).")
    book: bool = Field(
        False, description="Replay depth + depthSnapshot too (order book deltas; the heaviest channels)."
    )
    datasets_endpoint: str = Field(
        "https://datasets.tardis.dev",
        description="CSV datasets host of source tardis-datasets (TARDIS_DATASETS_ENDPOINT wins).",
    )

    @field_validator("exchange")
    @classmethod
    def _safe_exchange(cls, value: str) -> str:
        return checked("exchange", value)


class BinanceSettings(BaseModel):
    """Binance public data (source `binance`): no key."""

    endpoint: str = Field("https://data.binance.vision", description="Site of the files (HEDGEGRID_BINANCE__ENDPOINT).")
    trades: Literal["aggTrades", "trades"] = Field("aggTrades", description="Daily aggTrades or trades files.")


class ChecksSettings(BaseModel):
    """Thresholds of the validation checks."""

    max_trade_gap_minutes: float = Field(10.0, description="WARN when trades pause longer than this.")
    max_receive_latency_s: float = Field(60.0, description="ERROR when ts_init - ts_event exceeds this.")
    max_clock_skew_s: float = Field(1.0, description="ERROR when ts_init is earlier than ts_event by more.")
    mark_price_band: float = Field(0.05, description="ERROR when mark price strays further from trades (fraction).")
    index_price_band: float = Field(
        0.01, gt=0, description="WARN when mark price strays further from the index (fraction)."
    )
    max_quarantined_share: float = Field(
        0.5, ge=0, le=1, description="ERROR when quarantine takes more of a partition's rows than this (fraction)."
    )


class Settings(BaseSettings):
    """All user settings: docs/settings.md has every one with its environment variable and default."""

    model_config = SettingsConfigDict(
        env_prefix="HEDGEGRID_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    symbols: Annotated[list[str], NoDecode] = Field(
        ["BTCUSDT", "ETHUSDT"], description="Binance USDT-M symbols to build."
    )
    start_date: dt.date = Field(dt.date(2024, 1, 1), description="First day of the date partitions.")
    source: SourceName = Field("sample", description="Where raw data comes from.")
    source_config: Path | None = Field(
        None, description="Source config file (csv/jsonl: the seed project's JSON format)."
    )
    data_dir: Path | ObjectUri = Field(
        PROJECT_ROOT / "data", description="Raw and staging zones live under here (a folder, or s3://bucket/prefix)."
    )
    catalog_dir: Path | ObjectUri | None = Field(
        None, description="Nautilus catalog root (a folder, or s3://bucket/prefix); default <data_dir>/catalog."
    )
    work_dir: Path | None = Field(
        None,
        description="Local scratch when data_dir is in object storage (landings before upload, staged frames); "
        "default: the system's temp folder.",
    )
    lock_lease_seconds: float = Field(
        120.0, gt=0, description="Object storage: a partition lock not renewed for this long is taken over."
    )
    catalog_writer: Literal["arrow", "nautilus"] = Field(
        "arrow",
        description="How frames become catalog files: arrow (direct, columnar) or nautilus "
        "(ParquetDataCatalog.write_data, the slower reference implementation).",
    )
    venue: str = "BINANCE"
    lock_wait_seconds: float = Field(
        3600.0, ge=0, description="How long a build waits for another build of the same partition to finish."
    )
    allow_empty: bool = Field(
        False,
        description="Accept a kind the source offers coming out with no rows (and then replace the day's catalog "
        "file with nothing). Off: an empty input fails the partition and the catalog day stays as it was.",
    )
    instruments: dict[str, InstrumentSpec] = Field(
        default_factory=dict, description="Overrides/additions to the bundled Binance specs, by symbol."
    )
    sample: SampleSettings = SampleSettings()
    tardis: TardisSettings = TardisSettings()
    binance: BinanceSettings = BinanceSettings()
    checks: ChecksSettings = ChecksSettings()
    # Automation (hedgegrid_assets/automation): the daily schedule and the file-drop sensor.
    schedule_time: dt.time = Field(
        # 07:00: after Tardis (about 06:00) and Binance (during the next day) publish the day;
        # a day not published yet is retried every 30 min by the download sources.
        dt.time(7, 0),
        description="UTC time of day (HH:MM) the daily schedule requests the previous day's partitions.",
    )
    landing_dir: Path | None = Field(
        None,
        description="Folder the file-drop sensor watches for CSV/JSONL files; default: the csv/jsonl source "
        "config's base_path, else none (the sensor stays idle).",
    )
    landing_settle_seconds: float = Field(
        10.0,
        ge=0,
        description="The sensor leaves files changed more recently than this alone (still being written or copied).",
    )
    automation_running: bool = Field(
        False, description="Start the schedule and the sensor RUNNING; default STOPPED until turned on in the UI."
    )

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        # `HEDGEGRID_SYMBOLS=BTCUSDT,ETHUSDT` as well as JSON lists.
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else [s for s in value.split(",") if s.strip()]
        if isinstance(value, list):
            value = [str(s).strip().upper() for s in value]
        return value

    @field_validator("symbols")
    @classmethod
    def _safe_symbols(cls, value: list[str]) -> list[str]:
        return [checked("symbol", s) for s in value]

    @field_validator("instruments")
    @classmethod
    def _safe_instrument_symbols(cls, value: dict[str, InstrumentSpec]) -> dict[str, InstrumentSpec]:
        for symbol in value:
            checked("symbol", symbol)
        return value

    @field_validator("venue")
    @classmethod
    def _safe_venue(cls, value: str) -> str:
        return checked("venue", value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _from_base(Path(os.environ.get("HEDGEGRID_SETTINGS_FILE", "hedgegrid.toml")))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @model_validator(mode="after")
    def _relative_paths_from_base(self) -> Settings:
        """With HEDGEGRID_BASE_DIR set, relative folders and files are taken from there, not from the
        working directory (`make ui` runs Dagster from inside .dagster/ and sets it to the project)."""
        if os.environ.get(BASE_DIR_ENV):
            for name in PATH_FIELDS:
                value = getattr(self, name)
                if isinstance(value, Path) and not value.is_absolute():
                    object.__setattr__(self, name, _from_base(value))
        return self

    @property
    def catalog_path(self) -> Path | str:
        """A folder, or an `s3://` URI (storage.py)."""
        if self.catalog_dir is not None:
            return self.catalog_dir
        return f"{self.data_dir.rstrip('/')}/catalog" if is_object_uri(self.data_dir) else self.data_dir / "catalog"

    @property
    def local_data_dir(self) -> Path:
        """The data zones' local folder: data_dir itself, or for data_dir in object storage
        this machine's scratch (its raw zone, manifests and locks are in the bucket)."""
        return scratch_for(self.data_dir, self.work_dir) if is_object_uri(self.data_dir) else self.data_dir

    @property
    def raw_dir(self) -> Path:
        return self.local_data_dir / "raw"

    @property
    def staging_dir(self) -> Path:
        return self.local_data_dir / "staging"

    @property
    def locks_dir(self) -> Path:
        return self.local_data_dir / "locks"


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Settings of this process (env + file + defaults), read once."""
    return Settings()
