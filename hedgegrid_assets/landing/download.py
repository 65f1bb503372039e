"""Downloading vendor files into the raw zone: streamed to disk, resumable, retried, once.

Both download sources (`binance`, `tardis-datasets`) fetch through `Downloads`, a cache in
the raw zone (`<data_dir>/raw/_downloads/<vendor>/<the URL's path>`):

- a file is streamed to `.partial/<name>` beside its place in 1 MiB chunks (never whole in
  memory) and renamed into place only when complete (its Content-Length met, and verified by
  the caller's check, e.g. a Binance CHECKSUM): a half-downloaded file never counts;
- a rerun resumes a partial file with an HTTP Range request (or restarts it when the server
  ignores the range);
- a complete file is never downloaded again: each partition's landing hard-links it (the
  monthly Binance funding file is fetched once for all its days);
- two builds needing one file take turns (an flock beside it), so it is fetched once;
- 429 and 5xx answers, timeouts and dropped connections are retried with exponential
  backoff (honouring Retry-After), then raised as TransientSourceError; 401/403 fail at once;
  404 is the caller's to explain (not published yet, or no data that day);
- progress (file, bytes, rate) goes to the run log, and bytes per chunk to `progress.transfer`
  (the CLI's download bar; a no-op when nothing listens). Request headers (an API key) are never
  logged, put in errors or written anywhere.

Plain `urllib` (standard library) rather than a vendor client: one downloader with the same
guarantees for both vendors; tardis-dev's `download_datasets` covers Tardis only and keeps
its own cache layout.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import http.client
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from hedgegrid_assets import progress
from hedgegrid_assets.errors import NotPublishedError, SourceError, TransientSourceError
from hedgegrid_assets.names import inside

CHUNK = 1 << 20
DOWNLOADS = "_downloads"
SUMMARY = "downloads:"  # how a landing's summary line starts (the CLI prints it)
USER_AGENT = "hedgegrid-downloader (+https://github.com/)"


class NotFound(SourceError):
    """HTTP 404: the caller says what it means (not published yet, or no data that day)."""


class Rejected(SourceError):
    """HTTP 401/403: the key is missing or not good for this file; retrying cannot help."""


@dataclass
class Retry:
    attempts: int = 6
    first_wait_s: float = 1.0
    max_wait_s: float = 60.0
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep


def cache_dir(raw_dir: Path, vendor: str) -> Path:
    return Path(raw_dir) / DOWNLOADS / vendor


@dataclass
class Downloads:
    """The raw zone's download cache of one vendor."""

    root: Path  # <data_dir>/raw
    vendor: str  # "binance", "tardis-datasets"
    log: Callable[[str], None]
    headers: dict[str, str] | None = None  # e.g. the API key: never logged
    retry: Retry | None = None
    fetched: list[tuple[int, float]] = field(default_factory=list)  # (bytes, seconds) per download
    cached: int = 0  # files already in the raw zone

    def summary(self) -> str:
        """`downloads: 3 file(s), 12.3 MB in 0.8s (15.4 MB/s); 2 already in the raw zone`"""
        size, took = sum(b for b, _ in self.fetched), sum(s for _, s in self.fetched)
        rate = f" ({size / 1e6 / took:,.1f} MB/s)" if took > 0 else ""
        return (f"{SUMMARY} {len(self.fetched)} file(s), {size / 1e6:,.1f} MB in {took:.1f}s{rate}; "
                f"{self.cached} already in the raw zone")  # fmt: skip

    @property
    def cache(self) -> Path:
        return cache_dir(self.root, self.vendor)

    def path_for(self, url: str) -> Path:
        parts = [p for p in urlsplit(url).path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise SourceError(f"not a file URL: {url}")
        return inside(self.cache, self.cache.joinpath(*parts))

    def get(
        self,
        url: str,
        what: str,
        check: Callable[[Path], None] | None = None,
        headers: dict | None = None,
        path: Path | None = None,
    ) -> Path:
        """The cached file for `url` (at `path` in the cache, default the URL's path),
        downloaded first if needed; `check(file)` must pass on a fresh download, under the
        file's own name, before it counts (it raises SourceError otherwise; nothing is kept)."""
        path = inside(self.cache, path) if path is not None else self.path_for(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(path.with_name(f".{path.name}.lock")):
            if path.is_file():
                self.cached += 1
                return path
            part = path.parent / ".partial" / path.name
            part.parent.mkdir(exist_ok=True)
            started = time.monotonic()
            size = _fetch(url, part, {**(self.headers or {}), **(headers or {})}, what, self.retry or Retry(), self.log)
            if check is not None:
                try:
                    check(part)
                except SourceError:
                    part.unlink(missing_ok=True)
                    raise
            os.replace(part, path)
            took = max(time.monotonic() - started, 1e-6)
            self.fetched.append((size, took))
            self.log(f"downloaded {what}: {size / 1e6:,.1f} MB in {took:.1f}s ({size / 1e6 / took:,.1f} MB/s)")
            return path


@contextmanager
def _exclusive(lock: Path):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fetch(url: str, part: Path, headers: dict, what: str, retry: Retry, log) -> int:
    """Stream `url` into `part` (resuming what is there); its final size. Errors and log lines
    never carry a header's value (a proxy could echo the key back in its reason)."""
    secrets = [v for v in headers.values() if v] + [v.split(" ", 1)[1] for v in headers.values() if " " in v]

    def masked(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    try:
        return _fetch_unmasked(url, part, headers, what, retry, lambda line: log(masked(line)))
    except SourceError as err:
        raise type(err)(masked(str(err))) from None


def _fetch_unmasked(url: str, part: Path, headers: dict, what: str, retry: Retry, log) -> int:
    where = f"{what} ({_shown(url)})"
    wait = retry.first_wait_s
    for attempt in range(1, retry.attempts + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=retry.timeout_s) as response:
                resumed = have and response.status == 206
                total = _expected_size(response, have if resumed else 0)
                done = have if resumed else 0
                with open(part, "ab" if resumed else "wb") as out:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        progress.transfer(what, done, total)  # the CLI's bar; nothing without a listener
                size = part.stat().st_size
                if total is not None and size != total:
                    raise http.client.IncompleteRead(b"", total - size)
                return size
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise NotFound(f"{where}: HTTP 404") from None
            if err.code in (401, 403):
                raise Rejected(f"{where}: HTTP {err.code} ({_reason(err)})") from None
            if err.code == 416 and have:  # the range starts at the end: the .part is whole already
                return have
            if err.code != 429 and err.code < 500:
                raise SourceError(f"{where}: HTTP {err.code} ({_reason(err)})") from None
            problem = f"HTTP {err.code}"
            wait = max(wait, _retry_after(err) or 0)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
            problem = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt == retry.attempts:
            raise TransientSourceError(f"{where}: {problem}, still after {attempt} attempts") from None
        log(f"{what}: {problem}; retrying in {wait:.0f}s (attempt {attempt + 1} of {retry.attempts})")
        retry.sleep(wait * random.uniform(0.8, 1.2))
        wait = min(wait * 2, retry.max_wait_s)
    raise AssertionError("unreachable")


def _expected_size(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reason(err: urllib.error.HTTPError) -> str:
    return str(err.reason or "").strip()[:120]


def _shown(url: str) -> str:
    """The URL without a query or credentials (what errors and logs may show)."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


class DownloadedFiles:
    """Mixed into a file source whose files are downloaded (sources `binance`, `tardis-datasets`):
    no config file; its base path is the vendor's download cache in the raw zone, and landings
    hard-link from there. The class says `vendor` and `file_format`; `_raw()` the config options."""

    vendor: ClassVar[str]
    file_format: ClassVar[str]

    @property
    def name(self) -> str:
        return self.vendor

    @property
    def cache(self) -> Path:
        return cache_dir(Path(self.raw_dir), self.vendor)

    @property
    def config(self):
        from hedgegrid_assets.landing.source_config import SourceConfig

        return SourceConfig(Path(f"<{self.vendor} source>"), self.file_format, self.cache, "hardlink", (), self._raw())


def missing_file(what: str, url: str, part, publish_days: int, when: str, none_then: str) -> SourceError:
    """What a 404 for a partition's file means: the day is too recent to be published yet
    (NotPublishedError: retried later), or there was no such data that day."""
    key = f"{part.day}|{part.instrument.symbol}"
    if (dt.datetime.now(dt.UTC).date() - part.day).days <= publish_days:
        return NotPublishedError(f"{what} for {key} is not published yet ({url}: HTTP 404); {when}: retried later")
    return SourceError(f"{what} for {key}: {url} does not exist (HTTP 404): {none_then}")
