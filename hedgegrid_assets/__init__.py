"""hedgegrid data platform: market data -> NautilusTrader catalog, as Dagster assets.

Importing the package registers the FundingRateUpdate Arrow serialization with Nautilus, so
any process that imports it can write and read funding rates in the catalog.
"""

import warnings

from dagster import PreviewWarning

from hedgegrid_assets.catalog.funding_serialization import register as _register_funding_rates

# Partitioned asset checks are "preview" in Dagster 1.13 but are what keeps a check from
# loading every partition (dagster issue 27747); we rely on them knowingly.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning)

_register_funding_rates()

from hedgegrid_assets.definitions import build_definitions  # noqa: E402
from hedgegrid_assets.settings import load_settings  # noqa: E402

defs = build_definitions(load_settings())
