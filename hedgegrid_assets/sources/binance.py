"""Source `binance`: Binance public data (data.binance.vision, futures/um), downloaded; and the
same files already on disk (`BinanceVisionSource`, the `csv` source with `"format": "binance"`).

The day's files at the site's own paths, each with its `.zip.CHECKSUM`:
daily `aggTrades` (or `trades`, setting `binance.trades`), `bookTicker` (optional: Binance
stopped publishing it for some symbols and days), `klines/1m` (optional), `markPriceKlines/1m`, and the monthly
`fundingRate` shared by the month's days (downloaded once). They go to the raw zone's download
cache, mirroring the site's tree (landing/download.py: streamed, resumable, retried, verified against
the CHECKSUM before they count, never fetched twice), and each partition's landing hard-links
them: from there on this is `BinanceVisionSource` (the `csv` source's `binance` format, files
already on disk) reading those files, same readers (formats/binance/public_data.py).

A 404 means "not published yet" for a day that closed less than PUBLISH_DAYS ago (retryable:
the daily schedule tries again later) and "no data" for an older day (the symbol was not
listed yet, or no longer); the monthly funding file appears only after its month, so a day of
the current month has no funding rates yet (absent, not failed) until the month's file exists.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import ClassVar

import polars as pl
from pydantic import Field

from hedgegrid_assets.errors import SourceError
from hedgegrid_assets.formats.binance.public_data import (
    CHECKSUM_SUFFIX,
    KLINES_LANDED,
    TABLES,
    TRADE_TYPES,
    check_member_symbol,
    kind_of_name,
    landed_klines,
    names,
    read_bars,
    read_funding,
    verify_checksum,
)
from hedgegrid_assets.formats.csv.reader import read_table
from hedgegrid_assets.frames import (
    EXCHANGE_BARS,
    FUNDING_RATES,
    MARK_BARS,
    MARK_PRICES,
    QUOTES,
    TRADES,
    DataKind,
    PartitionContext,
)  # fmt: skip
from hedgegrid_assets.landing.download import DownloadedFiles, Downloads, NotFound, missing_file
from hedgegrid_assets.landing.source_config import PlannedFile
from hedgegrid_assets.sources.base import LandingRequest, Reader
from hedgegrid_assets.sources.file_source import FileSource

VENDOR = "binance"
# data.binance.vision publishes a day's daily files during the next day.
PUBLISH_DAYS = 2


class BinanceVisionSource(FileSource):
    """data.binance.vision futures/um files found by their published names under base_path."""

    @property
    def name(self) -> str:
        return "csv"

    @property
    def trade_type(self) -> str | None:
        return self.choice("trades", TRADE_TYPES)

    def _find(self, name: str, data_type: str, part: PartitionContext, monthly: bool = False) -> Path:
        """The file under base_path, flat or in the site's tree; the flat path when nowhere."""
        base = self.config.base_path
        sym = part.instrument.symbol
        period = "monthly" if monthly else "daily"
        interval = ["1m"] if data_type in ("markPriceKlines", "klines") else []
        sub = Path("futures", "um", period, data_type, sym, *interval, name)
        for candidate in (base / name, base / sub, base / "data" / sub):
            if candidate.is_file():
                return candidate
        return base / name

    def plan(self, part: PartitionContext) -> list[PlannedFile]:
        n = names(part)
        trade_type = self.trade_type
        if trade_type is None:
            agg = self._find(n["aggTrades"], "aggTrades", part)
            plain = self._find(n["trades"], "trades", part)
            trade_type = "aggTrades" if agg.is_file() or not plain.is_file() else "trades"
        wanted = [
            (self._find(n[trade_type], trade_type, part), (TRADES.name,), True, f"Binance daily {trade_type}"),
            (self._find(n["bookTicker"], "bookTicker", part), (QUOTES.name,), False, "Binance daily bookTicker"),
            (self._find(n["markPriceKlines"], "markPriceKlines", part), (MARK_PRICES.name, MARK_BARS.name), True,
             "Binance daily markPriceKlines 1m"),
            (self._find(n["fundingRate"], "fundingRate", part, monthly=True), (FUNDING_RATES.name,), True,
             "Binance monthly fundingRate"),
        ]  # fmt: skip
        if (part.day + dt.timedelta(days=1)).month != part.day.month:
            nxt = self._find(n["fundingRate_next"], "fundingRate", part, monthly=True)
            wanted.append((nxt, (FUNDING_RATES.name,), False, "Binance monthly fundingRate (next month)"))
        klines = self._find(n["klines"], "klines", part)
        if klines.parent == self.config.base_path:  # not in the site's tree: only under its landed name, flat
            klines = self.config.base_path / landed_klines(part)
        wanted.append((klines, (EXCHANGE_BARS.name,), False, "Binance daily klines 1m"))
        planned = []
        for src, kinds, required, what in wanted:
            name = landed_klines(part) if EXCHANGE_BARS.name in kinds else src.name
            planned.append(PlannedFile(src, name, kinds, required, what))
            checksum = src.with_name(src.name + CHECKSUM_SUFFIX)
            planned.append(PlannedFile(checksum, name + CHECKSUM_SUFFIX, (), False, f"checksum of {src.name}"))
        return planned

    def verify_landed(self, landed: dict[str, Path], part: PartitionContext, log) -> None:
        for name, path in landed.items():
            if name.endswith(CHECKSUM_SUFFIX):
                continue
            checksum = landed.get(name + CHECKSUM_SUFFIX)
            if checksum is None:
                log(f"{name}: no {CHECKSUM_SUFFIX} file beside it; not verified")
                continue
            verify_checksum(path, checksum, published=name.replace(KLINES_LANDED, "-1m-"))
            log(f"{name}: sha256 matches {checksum.name}")

    def readers(self) -> dict[str, Reader]:
        kinds = (TRADES, QUOTES, EXCHANGE_BARS, MARK_BARS, MARK_PRICES, FUNDING_RATES)
        return {kind.name: partial(self._read, kind) for kind in kinds}

    def _read(self, kind: DataKind, files: list[Path], part: PartitionContext) -> pl.DataFrame:
        by_type: dict[str, list[Path]] = {}
        for f in sorted(Path(p) for p in files):
            what = kind_of_name(f.name)
            if what:
                by_type.setdefault(what, []).append(f)
        if kind is FUNDING_RATES:
            return read_funding(by_type.get("fundingRate", []), part)
        if kind in (EXCHANGE_BARS, MARK_BARS):
            return read_bars(kind, by_type.get("klines" if kind is EXCHANGE_BARS else "markPriceKlines", []), part)
        if kind is QUOTES:
            paths, table = by_type.get("bookTicker", []), TABLES["bookTicker"]
            if not paths:  # optional: a day without the file has no quotes
                return QUOTES.empty_frame()
        elif kind is MARK_PRICES:
            paths, table = by_type.get("markPriceKlines", []), TABLES["markPriceKlines"]
        else:
            trade_type = self.trade_type or ("aggTrades" if "aggTrades" in by_type else "trades")
            paths, table = by_type.get(trade_type, []), TABLES[trade_type]
        if not paths:
            raise SourceError(
                f"the raw zone for {part.day}|{part.instrument.symbol} has no Binance file for {kind.name} "
                f"(landed: {', '.join(sorted(Path(f).name for f in files)) or 'nothing'}): "
                "re-materialize raw_market_data"
            )
        frames = []
        for path in paths:
            check_member_symbol(path, part)
            frames.append(read_table(path, table, kind, part))
        return kind.conform(pl.concat(frames))


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
                    url + CHECKSUM_SUFFIX,
                    f"{planned.name}{CHECKSUM_SUFFIX}",
                    path=path.with_name(path.name + CHECKSUM_SUFFIX),
                )
                downloads.get(url, planned.name, check=lambda f, c=checksum: verify_checksum(f, c), path=path)
            except NotFound:
                if not planned.required:
                    request.log(f"{planned.what}: not on {self.endpoint} ({url.rsplit('/', 1)[1]}); none that day")
                    continue
                raise missing_file(
                    planned.what,
                    url,
                    part,
                    PUBLISH_DAYS,
                    "Binance publishes a day during the next one",
                    f"{part.instrument.symbol} had no data that day (not listed yet, or delisted)",
                ) from None
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
    return BinanceSource(
        endpoint=settings.binance.endpoint, trades=settings.binance.trades, raw_dir=str(settings.raw_dir)
    )
