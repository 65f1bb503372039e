"""Source `tardis-datasets`: Tardis.dev downloadable CSV datasets, downloaded.

`{endpoint}/v1/{exchange}/{data_type}/{YYYY}/{MM}/{DD}/{SYMBOL}.csv.gz` for the data types the
kinds need: `trades`, `derivative_ticker` (mark prices, funding) and `quotes` (optional: a
symbol or day without it has no quotes), with `tardis.book` on also `incremental_book_L2` and
`book_snapshot_25` (optional; hundreds of MB a BTCUSDT day: off by default), with `Authorization: Bearer $TARDIS_API_KEY` (through
Dagster's EnvVar; the first day of each month is free and asked without it). They go to the raw
zone's download cache under Tardis's conventional names (landing/download.py: streamed, resumable,
retried on 429/5xx, never fetched twice) and each partition's landing hard-links them: from
there on this is `TardisCsvSource` (the `csv` source's `tardis` format) reading those files,
same readers (formats/tardis/datasets.py).

401/403 fail at once, naming the variable, never the key. A 404 is "not published yet" for a
day that closed less than PUBLISH_DAYS ago (Tardis publishes a day around 06:00 UTC the next
day; retried later), "no data" for an older one. TARDIS_DATASETS_ENDPOINT wins over settings.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import ClassVar

import polars as pl
from dagster import EnvVar
from pydantic import Field

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.tardis import book as tardis_book
from hedgegrid_assets.formats.tardis.datasets import QUOTE_TYPES, file_name, read_file
from hedgegrid_assets.frames import (
    FUNDING_RATES,
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    ORDER_BOOK_DEPTH10,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)  # fmt: skip
from hedgegrid_assets.landing.download import DownloadedFiles, Downloads, NotFound, Rejected, missing_file
from hedgegrid_assets.landing.source_config import PlannedFile
from hedgegrid_assets.sources.base import LandingRequest, Reader
from hedgegrid_assets.sources.file_source import FileSource
from hedgegrid_assets.sources.tardis import KEY_ENV

VENDOR = "tardis-datasets"
ENDPOINT_ENV = "TARDIS_DATASETS_ENDPOINT"
PUBLISH_DAYS = 1
REQUIRED = ("trades", "derivative_ticker")
BOOK_TYPES = ("incremental_book_L2", "book_snapshot_25")


class TardisCsvSource(FileSource):
    """Tardis CSV datasets found by their conventional names under base_path."""

    @property
    def name(self) -> str:
        return "csv"

    @property
    def exchange(self) -> str:
        return str(self.config.raw.get("exchange", "binance-futures"))

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        base = self.config.base_path
        quotes = next((t for t in QUOTE_TYPES if (base / file_name(self.exchange, t, part)).is_file()), QUOTE_TYPES[0])
        snaps = next((t for t in tardis_book.SNAPSHOT_TYPES if (base / file_name(self.exchange, t, part)).is_file()),
                     tardis_book.SNAPSHOT_TYPES[0])  # fmt: skip
        return [
            PlannedFile(base / file_name(self.exchange, "trades", part), file_name(self.exchange, "trades", part),
                        (TRADES.name,), True, "Tardis trades"),
            PlannedFile(base / file_name(self.exchange, "derivative_ticker", part),
                        file_name(self.exchange, "derivative_ticker", part),
                        (MARK_PRICES.name, FUNDING_RATES.name), True, "Tardis derivative_ticker"),
            PlannedFile(base / file_name(self.exchange, quotes, part), file_name(self.exchange, quotes, part),
                        (QUOTES.name,), False, f"Tardis {quotes}"),
            PlannedFile(base / file_name(self.exchange, "incremental_book_L2", part),
                        file_name(self.exchange, "incremental_book_L2", part),
                        (ORDER_BOOK_DELTAS.name,), False, "Tardis incremental_book_L2"),
            PlannedFile(base / file_name(self.exchange, snaps, part), file_name(self.exchange, snaps, part),
                        (ORDER_BOOK_DEPTH10.name,), False, f"Tardis {snaps}"),
        ]  # fmt: skip

    def readers(self) -> dict[str, Reader]:
        kinds = (TRADES, QUOTES, MARK_PRICES, FUNDING_RATES, ORDER_BOOK_DELTAS, ORDER_BOOK_DEPTH10)
        return {kind.name: partial(self._read, kind) for kind in kinds}

    def _read(self, kind: DataKind, files: list[Path], part: PartitionContext) -> pl.DataFrame:
        frames = [read_file(kind, path, part) for _, path in self.landed_for(kind, files, part)]
        return kind.conform(pl.concat(frames)) if frames else kind.empty_frame()


class TardisDatasetsSource(DownloadedFiles, TardisCsvSource):
    """Tardis.dev CSV datasets, downloaded into the raw zone."""

    vendor: ClassVar[str] = VENDOR
    file_format: ClassVar[str] = "tardis"
    config_path: str = ""  # no config file: the files are Tardis's
    api_key: str | None = Field(None, repr=False, description=f"bind EnvVar('{KEY_ENV}'), never a literal")
    endpoint: str = Field("https://datasets.tardis.dev", description=f"datasets host ({ENDPOINT_ENV} overrides)")
    exchange_id: str = Field("binance-futures", description="Tardis exchange id")
    raw_dir: str = Field(description="the raw zone, whose download cache holds the files")
    book: bool = Field(False, description="download incremental_book_L2 and book_snapshot_25 too (order book)")

    def _raw(self) -> dict:
        return {"exchange": self.exchange_id}

    def land(self, request: LandingRequest) -> dict[str, str]:
        part = request.part
        free = part.day.day == 1
        if not self.api_key and not free:
            raise SourceError(
                f"{KEY_ENV} is not set: only the first day of each month is free on Tardis.dev; "
                f"set {KEY_ENV} to download {self.exchange_id} {part.instrument.symbol} {part.day}"
            )
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key and not free else {}
        downloads = Downloads(Path(self.raw_dir), VENDOR, request.log, headers=headers)
        for data_type in (*REQUIRED, QUOTE_TYPES[0], *(BOOK_TYPES if self.book else ())):
            url = f"{self.endpoint.rstrip('/')}/v1/{self.exchange_id}/{data_type}/{part.day:%Y/%m/%d}/{part.instrument.symbol}.csv.gz"
            name = file_name(self.exchange_id, data_type, part)
            try:
                downloads.get(url, name, path=self.cache / name)
            except NotFound:
                if data_type not in REQUIRED:
                    request.log(f"Tardis {data_type}: none for {part.instrument.symbol} {part.day}")
                    continue
                raise missing_file(
                    f"Tardis {data_type}",
                    url,
                    part,
                    PUBLISH_DAYS,
                    "Tardis publishes a day around 06:00 UTC the next day",
                    f"{self.exchange_id} has no {part.instrument.symbol} data that day",
                ) from None
            except Rejected as err:
                raise SourceError(
                    f"{err}: Tardis.dev refused the key in {KEY_ENV} for {data_type}; check the key and that its "
                    "plan covers this exchange and date"
                ) from None
        request.log(downloads.summary())
        return super().land(request)


def from_settings(settings) -> TardisDatasetsSource:
    """The configured resource; the key is bound to the EnvVar only when the variable is set."""
    return TardisDatasetsSource(
        api_key=EnvVar(KEY_ENV) if os.environ.get(KEY_ENV) else None,
        endpoint=os.environ.get(ENDPOINT_ENV) or settings.tardis.datasets_endpoint,
        exchange_id=settings.tardis.exchange,
        raw_dir=str(settings.raw_dir),
        book=settings.tardis.book,
    )
