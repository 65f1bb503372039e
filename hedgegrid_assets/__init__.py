"""hedgegrid data platform: market data -> NautilusTrader catalog, as Dagster assets.

Importing the package registers the FundingRateUpdate Arrow serialization with Nautilus, so
any process that imports it can write and read funding rates in the catalog. That is all an
import does: the Dagster `defs` (what `dagster ... -m hedgegrid_assets` loads) are built on
first access, so a backtest or a script pays nothing for Dagster.
"""

from hedgegrid_assets.catalog.funding_serialization import register as _register_funding_rates

_register_funding_rates()


def __getattr__(name: str):
    if name == "defs":
        from hedgegrid_assets.definitions import build_definitions
        from hedgegrid_assets.settings import load_settings

        globals()["defs"] = value = build_definitions(load_settings())
        return value
    raise AttributeError(f"module 'hedgegrid_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
