"""hedgegrid data platform: market data -> NautilusTrader catalog, as Dagster assets.

The catalog is written in NautilusTrader's own formats: a backtest reads it with
nautilus_trader alone and never needs to import this package. Importing it does nothing but
define names; the Dagster `defs` (what `dagster ... -m hedgegrid_assets` loads) are built on
first access, so a script that imports a helper pays nothing for Dagster.
"""


def __getattr__(name: str):
    if name == "defs":
        from hedgegrid_assets.definitions import build_definitions
        from hedgegrid_assets.settings import load_settings

        globals()["defs"] = value = build_definitions(load_settings())
        return value
    raise AttributeError(f"module 'hedgegrid_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
