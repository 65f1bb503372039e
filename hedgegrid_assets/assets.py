"""The asset graph: per date|symbol partition, raw -> validated frame per kind -> catalog.

    raw_market_data ─┬─> trades ──────> trades_catalog ───────┐
                     ├─> mark_prices ─> mark_prices_catalog ──┼─ (Nautilus catalog)
                     └─> funding_rates > funding_rates_catalog┘
    instrument_catalog (the symbol's CryptoPerpetual, written idempotently)

Everything here is generic over `DataKind`; kinds are listed in `frames/__init__.py`.
"""


from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetCheckExecutionContext,
    AssetsDefinition,
    Backoff,
    Failure,
    Jitter,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    asset_check,
)

from hedgegrid_assets.catalog.writer import CatalogPartition
from hedgegrid_assets.checks import coverage, quarantine
from hedgegrid_assets.checks.validation import run_schema, schema_check_name
from hedgegrid_assets.frames import FUNDING_RATES, KINDS, MARK_PRICES, TRADES, DataKind
from hedgegrid_assets.partitions import partition_context, partitions_def
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource, SourceError, TransientSourceError
from hedgegrid_assets.sources.raw_zone import RawLanding, land_atomically, landing_dir

RAW_ASSET = "raw_market_data"
INSTRUMENT_ASSET = "instrument_catalog"

# Non-blocking WARN checks computed with each kind's frame.
WARN_CHECKS = {
    TRADES.name: [(coverage.TRADE_GAP_CHECK, coverage.trade_gap, "No gap longer than the limit without trades")],
    FUNDING_RATES.name: [
        (coverage.FUNDING_COVERAGE_CHECK, coverage.funding_coverage, "Each settlement of the day has a rate known before it")
    ],
}


def catalog_asset_name(kind: DataKind) -> str:
    return f"{kind.name}_catalog"


def build_assets(settings: Settings) -> list:
    parts = partitions_def(settings)

    @asset(
        name=RAW_ASSET,
        partitions_def=parts,
        # Transient source errors (rate limits, 5xx) get retried with backoff; see below.
        retry_policy=RetryPolicy(max_retries=3, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
        # Vendor downloads share a pool (limit set in dagster.yaml) so backfills respect rate limits.
        pool="tardis" if settings.source == "tardis" else None,
        io_manager_key="raw_io_manager",
        group_name="raw",
        kinds={"file"},
        description="The partition's source files, landed exactly as received (never edited).",
    )
    def raw_market_data(context: AssetExecutionContext, source: MarketDataSource):
        part = partition_context(context.partition_key, settings)
        directory = landing_dir(settings.raw_dir, source.name, context.partition_key)
        request = lambda tmp: source.land(LandingRequest(part, tuple(KINDS.values()), tmp, context.log.info))  # noqa: E731
        try:
            landing = land_atomically(directory, source.name, request)
        except SourceError as err:
            transient = isinstance(err, TransientSourceError)
            raise Failure(description=f"partition {context.partition_key}: {err}", allow_retries=transient) from None
        return Output(
            landing,
            metadata={
                "source": source.name,
                "directory": MetadataValue.path(landing.directory),
                "files": [f.name for f in landing.files],
                "bytes": landing.total_bytes,
                "sha256": {f.name: f.sha256 for f in landing.files},
            },
        )

    return [raw_market_data, *[a for kind in KINDS.values() for a in _kind_assets(kind, parts, settings)],
            _instrument_asset(parts, settings), _mark_band_check(parts, settings)]


def _frame_metadata(kind: DataKind, frame: pl.DataFrame, part) -> dict:
    meta: dict = {"rows": frame.height}
    if frame.height:
        meta |= {
            "first_ts_event": str(frame.get_column("ts_event").min()),
            "last_ts_event": str(frame.get_column("ts_event").max()),
            "first_ts_init": str(frame.get_column("ts_init").min()),
            "last_ts_init": str(frame.get_column("ts_init").max()),
        }
    if kind is TRADES and frame.height:
        gap, frm, _ = coverage.largest_gap(frame.get_column("ts_event"), part)
        meta |= {"largest_trade_gap_s": round(gap.total_seconds(), 3), "largest_trade_gap_from": frm.isoformat()}
    return meta


def _kind_assets(kind: DataKind, parts, settings: Settings) -> list[AssetsDefinition]:
    warn_checks = WARN_CHECKS.get(kind.name, [])
    specs = [
        AssetCheckSpec(
            schema_check_name(kind),
            asset=kind.name,
            blocking=True,
            partitions_def=parts,
            description=f"pandera {kind.model.__name__} plus the partition's day, grid and caps (blocks the catalog write)",
        ),
        *[AssetCheckSpec(name, asset=kind.name, partitions_def=parts, description=d) for name, _, d in warn_checks],
    ]

    @asset(
        name=kind.name,
        partitions_def=parts,
        ins={"raw": AssetIn(RAW_ASSET)},
        check_specs=specs,
        io_manager_key="frame_io_manager",
        group_name="frames",
        kinds={"polars"},
        description=f"{kind.description}: validated canonical frame.",
    )
    def frame_asset(context: AssetExecutionContext, raw: RawLanding, source: MarketDataSource) -> Iterator:
        part = partition_context(context.partition_key, settings)
        if raw.source != source.name:
            raise Failure(
                description=f"partition {context.partition_key}: raw data was landed by source '{raw.source}' but the "
                f"configured source is '{source.name}'; re-materialize {RAW_ASSET} first"
            )
        try:
            frame = source.read_frame(kind, raw.paths, part)
        except SourceError as err:
            raise Failure(description=f"partition {context.partition_key}: {err}", allow_retries=False) from None
        frame, quarantined = quarantine.split(kind, frame, part)
        side_file = quarantine.save(settings.staging_dir, kind, part, quarantined)
        q_meta = {
            "quarantined_rows": quarantined.total,
            "quarantined_by_reason": quarantined.counts,
            "quarantine_file": MetadataValue.path(str(side_file)) if side_file else "(none)",
        }
        yield Output(frame, metadata=_frame_metadata(kind, frame, part) | q_meta)
        yield run_schema(kind, frame, part, extra_metadata=q_meta)
        for _, fn, _ in warn_checks:
            yield fn(frame, part)

    @asset(
        name=catalog_asset_name(kind),
        partitions_def=parts,
        ins={"frame": AssetIn(kind.name)},
        deps=[INSTRUMENT_ASSET],
        io_manager_key="catalog_io_manager",
        group_name="catalog",
        kinds={"parquet"},
        description=f"{kind.description} in the Nautilus catalog: one file per partition.",
    )
    def catalog_asset(context: AssetExecutionContext, frame: pl.DataFrame) -> CatalogPartition:
        return CatalogPartition(kind, partition_context(context.partition_key, settings), frame)

    return [frame_asset, catalog_asset]


def _instrument_asset(parts, settings: Settings) -> AssetsDefinition:
    @asset(
        name=INSTRUMENT_ASSET,
        partitions_def=parts,
        io_manager_key="catalog_io_manager",
        group_name="catalog",
        kinds={"parquet"},
        description="The symbol's CryptoPerpetual (bundled Binance specs, overridable in settings).",
    )
    def instrument_catalog(context: AssetExecutionContext):
        return partition_context(context.partition_key, settings).instrument.nautilus

    return instrument_catalog


def _mark_band_check(parts, settings: Settings):
    @asset_check(
        asset=MARK_PRICES.name,
        name=coverage.MARK_BAND_CHECK,
        additional_ins={"trades": AssetIn(TRADES.name)},
        blocking=True,
        partitions_def=parts,
        description=f"Mark prices within {settings.checks.mark_price_band:.0%} of the nearest trade",
    )
    def mark_prices_near_trades(
        context: AssetCheckExecutionContext, mark_prices: pl.DataFrame, trades: pl.DataFrame
    ) -> AssetCheckResult:
        return coverage.mark_price_band(mark_prices, trades, partition_context(context.partition_key, settings))

    return mark_prices_near_trades
