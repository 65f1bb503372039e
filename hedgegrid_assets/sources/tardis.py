"""Tardis.dev replay source: a UTC day of Binance USDT-M channels, landed as received.

`TardisClient.replay` downloads the day minute by minute (one gzip slice per request, cached
on disk, retried by the client: 429 after 61 s, other errors with 2**n backoff, 5 attempts);
we ask for undecoded lines and write them straight into one gzip NDJSON file of replay lines
(`<28-char local ts> <exchange JSON>`), the format `binance_ws` already parses columnarly.

Channels: `aggTrade` (or `trade`, see settings) and `markPrice` (mark price `p`, funding rate
`r` that settles at `T`), `bookTicker` unless `quotes` is off, and with `book` on `depth` +
`depthSnapshot` (the diff stream and Tardis's REST snapshots: order book deltas, built by
binance_depth; off by default: a BTCUSDT day of depth is many times the rest). `ts_init` is the
replay line's local timestamp, `ts_event` the exchange time (`T` for trades, `E` for markPrice
and depth).

The API key comes only from `TARDIS_API_KEY` through Dagster's `EnvVar`, so the UI shows the
variable's name; the field is excluded from repr and never logged or put in an error.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import tempfile
import urllib.error
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import polars as pl
from dagster import EnvVar, get_dagster_logger
from pydantic import Field
from tardis_client import Channel, TardisClient

from hedgegrid_assets.errors import SourceError, TransientSourceError
from hedgegrid_assets.formats.binance import depth as binance_depth
from hedgegrid_assets.formats.binance import ws as binance_ws
from hedgegrid_assets.frames import ORDER_BOOK_DELTAS, QUOTES, DataKind, PartitionContext
from hedgegrid_assets.settings import TardisSettings
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource, Reader

KEY_ENV = "TARDIS_API_KEY"
ENDPOINT_ENV = "TARDIS_ENDPOINT"
MINUTES_PER_DAY = 1440
_WRITE_BATCH = 20_000  # lines joined per gzip write


def from_settings(settings: TardisSettings) -> TardisSource:
    """The configured resource. An unset key is allowed (first days of months are free), but a
    Dagster EnvVar must resolve, so the field is bound to the EnvVar only when the variable is set."""
    return TardisSource(
        api_key=EnvVar(KEY_ENV) if os.environ.get(KEY_ENV) else None,
        endpoint=os.environ.get(ENDPOINT_ENV) or settings.endpoint,
        exchange=settings.exchange,
        trade_channel=settings.trade_channel,
        quotes=settings.quotes,
        book=settings.book,
    )


class TardisSource(MarketDataSource):
    """Binance USDT-M channels replayed from Tardis.dev (needs network and, mostly, a key)."""

    api_key: str | None = Field(
        None, repr=False, description=f"Tardis.dev API key: bind EnvVar('{KEY_ENV}'), never a literal"
    )
    endpoint: str = Field("https://api.tardis.dev", description=f"Replay API base URL ({ENDPOINT_ENV} overrides)")
    exchange: str = Field("binance-futures", description="Tardis exchange id")
    trade_channel: str = Field("aggTrade", description="aggTrade or trade")
    quotes: bool = Field(True, description="replay bookTicker too (quote ticks; several times the trades' volume)")
    book: bool = Field(False, description="replay depth + depthSnapshot too (order book deltas; the heaviest channel)")

    @property
    def name(self) -> str:
        return "tardis"

    @property
    def channels(self) -> list[str]:
        book = ["depth", "depthSnapshot"] if self.book else []
        return [self.trade_channel, *(["bookTicker"] if self.quotes else []), *book, "markPrice"]

    def land(self, request: LandingRequest) -> None:
        part = request.part
        where = f"{self.exchange} {part.instrument.symbol} {part.day}"
        if self.trade_channel not in ("aggTrade", "trade"):
            raise SourceError(f"{where}: trade_channel must be aggTrade or trade, not {self.trade_channel!r}")
        if not self.api_key:
            if part.day.day != 1:
                raise SourceError(
                    f"{KEY_ENV} is not set: only the first day of each month is free on Tardis.dev; "
                    f"set {KEY_ENV} to replay {where}"
                )
            request.log(f"{KEY_ENV} is not set: replaying {where} as a free first day of the month")
        path = request.dest / f"{self.exchange}_{part.day:%Y-%m-%d}_{part.instrument.symbol}.ndjson.gz"
        host = urlsplit(self.endpoint).hostname  # never the URL: a proxy URL may carry credentials
        request.log(f"replaying {' + '.join(self.channels)} for {where} from {host}")
        # The client's slice cache lives beside the landing folder (same disk, hidden), never in it.
        prefix = f".{request.dest.name.lstrip('.')}.tardis-cache-"
        with tempfile.TemporaryDirectory(prefix=prefix, dir=request.dest.parent) as cache:
            try:
                lines = asyncio.run(self._replay(part, path, Path(cache), request.log))
            except urllib.error.HTTPError as err:
                raise self._http_error(err, where) from None
            except (aiohttp.ClientError, TimeoutError) as err:
                reason = f"{type(err).__name__} {err}".rstrip()
                raise TransientSourceError(f"{where}: cannot reach {host}: {reason}") from None
        request.log(f"replayed {lines:,} lines into {path.name}")

    async def _replay(self, part: PartitionContext, path: Path, cache: Path, log) -> int:
        client = TardisClient(endpoint=self.endpoint.rstrip("/"), cache_dir=str(cache))
        client.api_key = self.api_key or ""  # set after __init__, which debug-logs its arguments
        symbol = part.instrument.symbol.lower()
        replay = client.replay(
            exchange=self.exchange,
            from_date=part.start.replace(tzinfo=None).isoformat(),
            to_date=part.end.replace(tzinfo=None).isoformat(),
            filters=[Channel(channel, [symbol]) for channel in self.channels],
            decode_response=False,
            with_disconnects=True,
        )
        count, hour, batch = 0, b"00", []
        # mtime=0: the gzip header carries no write time, so a re-download lands identical bytes.
        with gzip.GzipFile(path, "wb", compresslevel=5, mtime=0) as out:
            async for item in replay:
                if item is None:  # a recorder disconnect: keep the empty line, the parser skips it
                    batch.append(b"\n")
                    continue
                ts, message = item  # bytes: the 28-char local timestamp, the JSON with its newline
                line = ts + b" " + message
                batch.append(line if line.endswith(b"\n") else line + b"\n")
                if ts[11:13] != hour:  # progress once per hour of data
                    hour = ts[11:13]
                    log(f"{part.instrument.symbol} {part.day}: minutes done {int(hour) * 60}/{MINUTES_PER_DAY}")
                if len(batch) >= _WRITE_BATCH:
                    out.write(b"".join(batch))
                    count += len(batch)
                    batch.clear()
            out.write(b"".join(batch))
            count += len(batch)
        log(f"{part.instrument.symbol} {part.day}: minutes done {MINUTES_PER_DAY}/{MINUTES_PER_DAY}")
        return count

    def _http_error(self, err: urllib.error.HTTPError, where: str) -> SourceError:
        minute = re.search(r"[?&]offset=(\d+)", err.url or "")
        at = f" at {int(minute[1]) // 60:02d}:{int(minute[1]) % 60:02d} UTC" if minute else ""
        body = str(err.msg or "")[:200]
        if self.api_key:
            body = body.replace(self.api_key, "***")  # in case a proxy echoes the header
        if err.code == 401:
            if not self.api_key:
                return SourceError(f"{where}: Tardis.dev refused access without a key (HTTP 401); set {KEY_ENV}")
            return SourceError(
                f"{where}: Tardis.dev rejected the API key in {KEY_ENV} (HTTP 401: {body}); "
                "check the key and that its plan covers this exchange and date"
            )
        if err.code == 429 or err.code >= 500:
            return TransientSourceError(
                f"{where}: Tardis.dev answered HTTP {err.code}{at} after the client's retries: {body}"
            )
        return SourceError(f"{where}: Tardis.dev answered HTTP {err.code}{at}: {body}")

    def readers(self) -> dict[str, Reader]:
        left_out = {*([] if self.quotes else [QUOTES.name]), *([] if self.book else [ORDER_BOOK_DELTAS.name])}
        kinds = [k for k in binance_ws.KINDS_DECODED if k.name not in left_out]
        return {kind.name: partial(self._read, kind) for kind in kinds}

    def _read(
        self, kind: DataKind, files: list[Path], part: PartitionContext
    ) -> pl.DataFrame | tuple[pl.DataFrame, dict]:
        if kind is ORDER_BOOK_DELTAS:
            return self._read_book(files, part)
        try:
            return binance_ws.read_kind(kind, files, trade_event=self.trade_channel)
        except pl.exceptions.PolarsError as err:
            names = ", ".join(f.name for f in files)
            raise SourceError(f"{names}: cannot parse Tardis replay lines for {kind.name}: {err}") from None

    def _read_book(self, files: list[Path], part: PartitionContext) -> tuple[pl.DataFrame, dict]:
        """Deltas from the depth + depthSnapshot lines, and how the book was built (gaps...)."""
        names = ", ".join(f.name for f in files)
        try:
            frame, stats = binance_depth.read_replay(files)
        except pl.exceptions.PolarsError as err:
            raise SourceError(
                f"{names}: cannot parse Tardis replay lines for {ORDER_BOOK_DELTAS.name}: {err}"
            ) from None
        if stats.notable():
            get_dagster_logger().warning(f"{part.day}|{part.instrument.symbol} {ORDER_BOOK_DELTAS.name}: {names}: "
                                         f"{stats.describe()}")  # fmt: skip
        return ORDER_BOOK_DELTAS.conform(frame), stats.metadata()
