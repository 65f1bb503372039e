"""Source `binance`: Binance public data (data.binance.vision, futures/um), downloaded.

The day's files at the site's own paths, each with its `.zip.CHECKSUM`:
daily `aggTrades` (or `trades`, setting `binance.trades`), `bookTicker` (optional: Binance
stopped publishing it for some symbols and days), `klines/1m` (optional), `markPriceKlines/1m`, and the monthly
`fundingRate` shared by the month's days (downloaded once). They go to the raw zone's download
cache, mirroring the site's tree (download.py: streamed, resumable, retried, verified against
the CHECKSUM before they count, never fetched twice), and each partition's landing hard-links
them: from there on this is the `binance_vision` CSV source reading those files, same readers.

A 404 means "not published yet" for a day that closed less than PUBLISH_DAYS ago (retryable:
the daily schedule tries again later) and "no data" for an older day (the symbol was not
listed yet, or no longer); the monthly funding file appears only after its month, so a day of
the current month has no funding rates yet (absent, not failed) until the month's file exists.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from hedgegrid_assets.frames import PartitionContext
from hedgegrid_assets.sources.base import LandingRequest
from hedgegrid_assets.sources.binance_vision import (
    CHECKSUM_SUFFIX,
    BinanceVisionSource,
    landed_klines,
    names,
    verify_checksum,
)
from hedgegrid_assets.sources.download import DownloadedFiles, Downloads, NotFound, missing_file
from hedgegrid_assets.sources.source_config import PlannedFile

VENDOR = "binance"
# data.binance.vision publishes a day's daily files during the next day.
PUBLISH_DAYS = 2


class BinanceSource(DownloadedFiles, BinanceVisionSource):
    """data.binance.vision futures/um, downloaded into the raw zone (no key)."""

    vendor: ClassVar[str] = VENDOR
    file_format: ClassVar[str] = "binance"
    config_path: str = ""  # no config file: the files are the site's
    endpoint: str = Field("https://data.binance.vision", description="Binance public data site")
    trades: str = Field("aggTrades", description="aggTrades or trades")
    raw_dir: str = Field(description="the raw zone, whose download cache holds the files")

    def _raw(self) -> dict:
        return {"trades": self.trades}

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        planned = super().plan(part)
        if _month_open(part.day):  # the month's funding file does not exist yet: none that day
            planned = [p if "fundingRate" not in p.name else _optional(p) for p in planned]
        return planned

    def land(self, request: LandingRequest) -> dict[str, str]:
        part = request.part
        downloads = Downloads(Path(self.raw_dir), VENDOR, request.log)
        for planned in self.plan(part):
            if planned.name.endswith(CHECKSUM_SUFFIX):
                continue
            path = self._site_path(planned.name, part)  # the site's tree, in the cache (the plan looks there)
            url = f"{self.endpoint.rstrip('/')}/{path.relative_to(self.cache).as_posix()}"
            try:
                checksum = downloads.get(
                    url + CHECKSUM_SUFFIX, f"{planned.name}{CHECKSUM_SUFFIX}", path=path.with_name(path.name + CHECKSUM_SUFFIX)
                )
                downloads.get(url, planned.name, check=lambda f, c=checksum: verify_checksum(f, c), path=path)
            except NotFound:
                if not planned.required:
                    request.log(f"{planned.what}: not on {self.endpoint} ({url.rsplit('/', 1)[1]}); none that day")
                    continue
                raise missing_file(planned.what, url, part, PUBLISH_DAYS, "Binance publishes a day during the next one",
                                   f"{part.instrument.symbol} had no data that day (not listed yet, or delisted)") from None
        request.log(downloads.summary())
        return super().land(request)

    def _site_path(self, name: str, part: PartitionContext) -> Path:
        """`data/futures/um/{daily|monthly}/{type}/{SYMBOL}/[1m/]{published name}` under the cache
        (klines land under another name: both kline files are published as SYMBOL-1m-DATE.zip)."""
        published = names(part)
        if name == landed_klines(part):
            data_type, name = "klines", published["klines"]
        else:
            data_type = next(k for k, v in published.items() if v == name and k != "klines").removesuffix("_next")
        period = "monthly" if data_type == "fundingRate" else "daily"
        interval = ("1m",) if data_type in ("markPriceKlines", "klines") else ()
        return self.cache.joinpath("data", "futures", "um", period, data_type, part.instrument.symbol, *interval, name)



def _optional(p: PlannedFile) -> PlannedFile:
    return PlannedFile(p.source, p.name, p.kinds, False, p.what + " (after its month ends)", p.shared)


def _month_open(day: dt.date) -> bool:
    """The day's month has not ended (UTC), so its monthly file is not published yet."""
    today = dt.datetime.now(dt.UTC).date()
    return (day.year, day.month) >= (today.year, today.month)


def from_settings(settings) -> BinanceSource:
    return BinanceSource(endpoint=settings.binance.endpoint, trades=settings.binance.trades, raw_dir=str(settings.raw_dir))
