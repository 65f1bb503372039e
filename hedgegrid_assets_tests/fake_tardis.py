"""A real HTTP server on 127.0.0.1 speaking the Tardis.dev replay API, for offline tests.

`GET /v1/data-feeds/<exchange>?from=<iso>&offset=<minute>&filters=<json>` answers one
minute of replay lines (`<28-char local ts> <exchange JSON>`) as a gzip body, only for the
requested channels and (lower-case) symbols. It checks `Authorization: Bearer <key>`: an
empty header is accepted only for the first day of a month (Tardis's free days), anything
else is a 401. Faults (429, 500, ...) are injected per minute offset.

    with FakeTardis(api_key="k") as server:
        server.add_lines(generate_day(part, 2000, seed=1, book=False))
        ... TardisClient(endpoint=server.url) ...
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import polars as pl

# `{"stream":"btcusdt@markPrice@1s",...` -> symbol `btcusdt`, channel `markPrice`.
_STREAM = r'"stream":"([a-z0-9_]+)@([A-Za-z]+)'
# binance-futures channel names the API accepts (a subset); others are a 400 as on Tardis.
CHANNELS = {"trade", "aggTrade", "markPrice", "bookTicker", "depth", "depthSnapshot"}


@dataclass(frozen=True)
class Request:
    exchange: str
    minute: dt.datetime
    filters: list[dict]
    authorization: str
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The client opens up to 60 connections at once; with the default backlog of 5 some SYNs
    # are dropped and a request can stall past the client's 60 s timeout.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # the client hangs up mid-answer when it gives up (401, cancelled tasks): not our failure


class FakeTardis:
    def __init__(self, api_key: str, exchange: str = "binance-futures"):
        self.api_key = api_key
        self.exchange = exchange
        self.requests: list[Request] = []
        self._minutes: dict[str, pl.DataFrame] = {}  # 'YYYY-MM-DDTHH:MM' -> line, symbol, channel
        self._bodies: dict[tuple, bytes] = {}  # (minute, filters) -> gzip body
        self._faults: dict[int, list[int]] = defaultdict(list)  # offset -> statuses to answer first
        self._persistent: dict[int, int] = {}  # offset -> status answered forever
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeTardis:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- data and faults ---------------------------------------------------------------------

    def add_lines(self, lines: pl.DataFrame) -> None:
        """Serve these replay lines too (a `line` column; any channels and symbols)."""
        stream = pl.col("line").str.extract_groups(_STREAM)
        new = lines.select(
            "line",
            minute=pl.col("line").str.slice(0, 16),
            symbol=stream.struct.field("1"),
            channel=stream.struct.field("2"),
        )
        if new["symbol"].null_count():
            raise ValueError("every line needs a local timestamp and a combined-stream envelope")
        both = pl.concat([*self._minutes.values(), new]).sort(pl.col("line").str.slice(0, 28), maintain_order=True)
        self._minutes = {k[0]: v for k, v in both.partition_by("minute", as_dict=True, maintain_order=True).items()}
        self._bodies.clear()

    def add_disconnect_after(self, line: str) -> None:
        """Insert an empty line (a recorder disconnect) right after `line` (after all add_lines)."""
        minute = line[:16]
        frame = self._minutes[minute]
        at = frame["line"].to_list().index(line) + 1
        gap = pl.DataFrame({"line": [""], "minute": [minute], "symbol": [None], "channel": [None]}, schema=frame.schema)
        self._minutes[minute] = pl.concat([frame.head(at), gap, frame.slice(at)])
        self._bodies.clear()

    def reset(self) -> None:
        """Forget requests and injected faults (the data stays)."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._persistent.clear()

    def fail(self, offset: int, *statuses: int) -> None:
        """Answer the next requests for minute `offset` with these statuses, then normally."""
        self._faults[offset].extend(statuses)

    def fail_always(self, offset: int, status: int) -> None:
        self._persistent[offset] = status

    # -- the API -----------------------------------------------------------------------------

    def _answer(self, path: str, headers) -> tuple[int, bytes]:
        url = urlsplit(path)
        if not url.path.startswith("/v1/data-feeds/"):
            return 404, b'{"message":"not found"}'
        exchange = url.path.rsplit("/", 1)[1]
        query = parse_qs(url.query)
        try:
            start = dt.datetime.fromisoformat(query["from"][0])
            offset = int(query["offset"][0])
            filters = json.loads(query.get("filters", ["[]"])[0])
        except (KeyError, ValueError):
            return 400, b'{"message":"invalid from/offset/filters"}'
        if any(f.get("channel") not in CHANNELS for f in filters):
            return 400, json.dumps({"message": f"invalid channel in filters {filters}"}).encode()
        minute = start + dt.timedelta(minutes=offset)
        auth = headers.get("Authorization", "")
        with self._lock:
            status = self._persistent.get(offset) or (self._faults[offset].pop(0) if self._faults[offset] else 200)
            if status == 200 and exchange != self.exchange:
                status = 400
            elif status == 200 and auth != f"Bearer {self.api_key}" and not (auth == "" and minute.day == 1):
                status = 401
            self.requests.append(Request(exchange, minute, filters, auth, status))
        if status == 401:
            return 401, b'{"code":100,"message":"Invalid API key provided"}'
        if status != 200:
            return status, json.dumps({"message": f"HTTP {status} (injected)"}).encode()
        wanted = tuple((f["channel"], s) for f in filters for s in f.get("symbols") or [None])
        key = (f"{minute:%Y-%m-%dT%H:%M}", wanted)
        if key not in self._bodies:  # answers are immutable once data is added: cache them
            self._bodies[key] = gzip.compress(self._lines(*key).encode(), compresslevel=1)
        return 200, self._bodies[key]

    def _lines(self, minute: str, wanted: tuple) -> str:
        frame = self._minutes.get(minute)
        if frame is None:
            return ""  # an empty minute is an empty gzip body
        keep = pl.col("line") == ""  # disconnect markers go to every subscriber
        for channel, symbol in wanted:
            keep |= (pl.col("channel") == channel) & (pl.lit(True) if symbol is None else pl.col("symbol") == symbol)
        return "".join(line + "\n" for line in frame.filter(keep if wanted else pl.lit(True))["line"].to_list())

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp expects
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def do_GET(self):
                status, body = server._answer(self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-ndjson" if status == 200 else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler
