"""What reading or landing input can raise; every message names the file, line or partition.

- `SourceError`: bad or missing input; permanent, the run fails at once.
- `TransientSourceError`: worth retrying (HTTP 429/5xx, a reset connection).
- `NotPublishedError`: the vendor has not published the day yet.
- `ConfigError`: a source config file itself is wrong (raised when the source is built).

The lowest layer of the input side: landing, vendor formats and sources all raise these.
"""

from __future__ import annotations


class SourceError(Exception):
    """Bad or missing input; the message names the file/line/partition and the problem.

    Permanent: retrying will not help, so the run fails at once.
    """


class TransientSourceError(SourceError):
    """A failure worth retrying (HTTP 429/5xx, connection reset): the raw asset's RetryPolicy retries it."""


class NotPublishedError(TransientSourceError):
    """The vendor has not published the day yet: worth trying again in a while (scheduled and
    sensor runs retry it later; a command-line build says so and stops)."""

    retry_after_s = 1800
    retries = 48  # every 30 min for a day


class ConfigError(ValueError):
    """The config file itself is wrong (raised when the source is built, before any run)."""
