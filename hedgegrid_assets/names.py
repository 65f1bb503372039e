"""Names that become parts of paths, checked where they enter; and the guard every write,
rename and delete passes first.

A symbol, venue or exchange is part of folder and file names (`raw/<source>/<date>/<SYMBOL>/`,
`<SYMBOL>-PERP.<VENUE>`), so each is held to a strict pattern wherever it comes from: settings
(defaults, TOML, environment), the command line (through settings), Dagster partition keys.
`inside` then proves each path the project touches lies in its zone (raw, staging, catalog),
symlinks resolved, so that no name or link can make it write, rename or delete elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

PATTERNS = {
    # Binance symbols: BTCUSDT, 1000PEPEUSDT, BTCUSDT_250328
    "symbol": (re.compile(r"[A-Z0-9][A-Z0-9_]{1,39}"), "2-40 characters A-Z, 0-9 and _, e.g. BTCUSDT"),
    # Nautilus venues: BINANCE
    "venue": (
        re.compile(r"[A-Z][A-Z0-9_]{1,19}"),
        "2-20 characters A-Z, 0-9 and _, starting with a letter, e.g. BINANCE",
    ),
    # Tardis exchange ids: binance-futures
    "exchange": (re.compile(r"[a-z0-9][a-z0-9-]{1,39}"), "2-40 characters a-z, 0-9 and -, e.g. binance-futures"),
}


class UnsafeNameError(ValueError):
    pass


class OutsideZoneError(Exception):
    pass


def checked(what: str, value: str) -> str:
    """`value` if it is a valid `what` ("symbol", "venue", "exchange"), else UnsafeNameError."""
    pattern, rule = PATTERNS[what]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UnsafeNameError(f"invalid {what} {value!r}: a {what} is {rule}")
    return value


def inside(zone: Path, path: Path) -> Path:
    """`path` itself, once proven to lie inside `zone` (both resolved, symlinks followed)."""
    zone_real, path_real = Path(zone).resolve(), Path(path).resolve()
    if path_real != zone_real and not path_real.is_relative_to(zone_real):
        raise OutsideZoneError(f"refusing to touch {path}: it resolves to {path_real}, outside {zone_real}")
    return Path(path)
