"""A stand-in for data.binance.vision and Tardis's datasets host: a real HTTP server on
127.0.0.1 serving files at their real paths, with the faults the downloaders must survive.

`server.put(path, data)` publishes a file; `server.fail(path, 429, 500, ...)` makes its next
requests answer those statuses first (429 with Retry-After: 1); `server.drop(path, n)` cuts
the body after n bytes once (a dropped connection); `server.slow(path, s)` pauses s seconds
before the body, once. Range requests are honoured (206). With `key` set, paths under `/v1/` need
`Authorization: Bearer <key>` except on the first day of a month (Tardis's free days).
Every request is recorded: (path, status, range, whether it carried the key).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    path: str
    status: int
    range: str | None
    authorized: bool


class FakeVendor:
    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[int]] = {}
        self.drops: dict[str, int] = {}
        self.pauses: dict[str, float] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def fail(self, path: str, *statuses: int) -> None:
        self.faults.setdefault(path, []).extend(statuses)

    def drop(self, path: str, after_bytes: int) -> None:
        self.drops[path] = after_bytes

    def slow(self, path: str, seconds: float) -> None:
        self.pauses[path] = seconds

    def served(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FakeVendor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                auth = self.headers.get("Authorization") or ""
                authorized = vendor.key is not None and auth == f"Bearer {vendor.key}"
                rng = self.headers.get("Range")
                with vendor._lock:
                    queued = vendor.faults.get(path) or []
                    status = queued.pop(0) if queued else None
                if status is None and vendor.key is not None and path.startswith("/v1/"):
                    free = re.search(r"/\d{4}/\d{2}/01/", path) is not None
                    if not authorized and not free:
                        status = 401 if not auth else 403
                data = vendor.files.get(path)
                if status is None and data is None:
                    status = 404
                vendor.requests.append(Seen(path, status or (206 if rng else 200), rng, authorized))
                if status is not None:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    body = f'{{"message": "HTTP {status}"}}'.encode()
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                start = 0
                if rng:
                    m = re.fullmatch(r"bytes=(\d+)-", rng)
                    start = int(m.group(1)) if m else 0
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = data[start:]
                with vendor._lock:
                    drop = vendor.drops.pop(path, None)  # once, on a request that serves the body
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                with vendor._lock:
                    pause = vendor.pauses.pop(path, None)  # once
                if pause:
                    time.sleep(pause)
                if drop is not None:
                    self.wfile.write(body[:drop])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler
