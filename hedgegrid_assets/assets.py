"""The asset graph: per date|symbol partition, raw -> validated frame per kind -> catalog.

    raw_market_data ─┬─> trades ──────> trades_catalog ───────┐ one step (catalog_commit):
                     ├─> mark_prices ─> mark_prices_catalog ──┤ a partition's kinds enter
                     └─> funding_rates > funding_rates_catalog┘ the catalog together
    instrument_catalog (the symbol's CryptoPerpetual, written idempotently)

Everything here is generic over `DataKind`; kinds are listed in `frames/__init__.py`.
Every asset takes one partition or a batch of them (`context.partition_keys`, see batching.py),
so backfills run as few, large runs. Frames and catalog assets follow the raw asset
(eager automation), but only once the blocking checks of what they read have passed.
"""

from collections.abc import Iterator
from functools import partial

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    Output,
    RetryPolicy,
    RetryRequested,
    asset,
    multi_asset,
)

from hedgegrid_assets.batching import as_output, by_key, emit_checks, keys_of
from hedgegrid_assets.catalog import completeness
from hedgegrid_assets.catalog.writer import CatalogCommit
from hedgegrid_assets.checks import book_sequence, coverage, quarantine
from hedgegrid_assets.checks.validation import run_schema, schema_check_name
from hedgegrid_assets.errors import NotPublishedError, SourceError, TransientSourceError
from hedgegrid_assets.faults import refused_write
from hedgegrid_assets.frames import (
    BARS,
    EXCHANGE_BARS,
    FUNDING_RATES,
    KINDS,
    MARK_BARS,
    MARK_PRICES,
    ORDER_BOOK_DELTAS,
    TRADES,
    DataKind,
    PartitionContext,
)
from hedgegrid_assets.frames.staging import FrameHandoff, StagedFrames
from hedgegrid_assets.landing.raw_zone import SHARED, RawLanding, land_atomically, landing_dir
from hedgegrid_assets.locks import PartitionLock  # every asset holds it: one builder per partition
from hedgegrid_assets.partitions import partition_context, partitions_def
from hedgegrid_assets.reports import day_picture
from hedgegrid_assets.settings import Settings
from hedgegrid_assets.sources.base import LandingRequest, MarketDataSource
from hedgegrid_assets.sources.registry import POOLS
from hedgegrid_assets.storage import S3Zone, is_object_uri

RAW_ASSET = "raw_market_data"
INSTRUMENT_ASSET = "instrument_catalog"
REPORT_ASSET = "catalog_report"

# Non-blocking WARN checks computed with each kind's frame.
WARN_CHECKS = {
    TRADES.name: [(coverage.TRADE_GAP_CHECK, coverage.trade_gap, "No gap longer than the limit without trades")],
    MARK_PRICES.name: [
        (coverage.INDEX_BAND_CHECK, coverage.mark_index_band, "Mark prices within the band around the index price")
    ],
    **{
        k.name: [
            (
                f"{k.name}_every_minute",
                partial(coverage.bar_minutes, check_name=f"{k.name}_every_minute"),
                "Every minute of the day has a bar",
            )
        ]
        for k in (BARS, EXCHANGE_BARS, MARK_BARS)
    },
    FUNDING_RATES.name: [
        (
            coverage.FUNDING_COVERAGE_CHECK,
            coverage.funding_coverage,
            "Each settlement of the day has a rate known before it",
        )
    ],
    # From the reader's notes (a check function with `uses_notes` gets them): gaps are not in the frame.
    ORDER_BOOK_DELTAS.name: [(book_sequence.SEQUENCE_CHECK, book_sequence.sequence_gaps, book_sequence.DESCRIPTION)],
}

# One run per backfill batch instead of one per partition: Dagster splits multi-partition
# backfills per date (all symbols of a date in one run); `--partition-range` takes any rectangle.
BACKFILL = BackfillPolicy.single_run()
# Follow the raw data (eager), for any date: landed files are usually history, and plain eager
# only looks at the latest day. Never past a failed blocking check upstream.
FOLLOW_RAW = (
    AutomationCondition.eager().without(AutomationCondition.in_latest_time_window())
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("follow raw (eager, any date, upstream checks passed)")


def catalog_asset_name(kind: DataKind) -> str:
    return kind.catalog_asset


def _metadata(context, asset: str, per_key: dict[str, dict]) -> dict:
    """Each partition's own metadata, in the same shape however it was built: a single
    partition's is the output's; a batch's is attached to each partition's materialization
    (so Dagster's per-partition plots work), the output then carries none of its own."""
    if len(per_key) == 1:
        return next(iter(per_key.values()))
    for key, meta in per_key.items():
        context.add_asset_metadata(meta, asset_key=asset, partition_key=key)
    return {}


def build_assets(settings: Settings) -> list:
    parts = partitions_def(settings)

    @asset(
        name=RAW_ASSET,
        partitions_def=parts,
        backfill_policy=BACKFILL,
        # Transient source errors (rate limits, 5xx) are retried with backoff; permanent ones
        # (bad key, missing file) fail at once (Failure(allow_retries=False) below).
        retry_policy=RetryPolicy(max_retries=3, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
        # Vendor downloads share a pool (limit in dagster.yaml) so backfills respect rate limits.
        pool=POOLS.get(settings.source),
        io_manager_key="raw_io_manager",
        group_name="raw",
        kinds={"file"},
        description="The partition's source files, landed exactly as received (never edited).",
    )
    def raw_market_data(context: AssetExecutionContext, source: MarketDataSource, partition_lock: PartitionLock):
        landings, meta = {}, {}
        for key in keys_of(context):
            landings[key] = landing = _land(context, source, key, settings)
            meta[key] = {
                "source": source.name,
                "directory": MetadataValue.path(landing.directory),
                "files": [f.name for f in landing.files],
                "bytes": landing.total_bytes,
                "sha256": {f.name: f.sha256 for f in landing.files},
            }
        return Output(as_output(landings), metadata=_metadata(context, RAW_ASSET, meta))

    kind_assets = [a for kind in KINDS.values() for a in _kind_assets(kind, parts, settings)]
    return [
        raw_market_data,
        *kind_assets,
        _catalog_step(parts, settings),
        _instrument_asset(parts, settings),
        _report_asset(parts, settings),
    ]


def _land(context, source: MarketDataSource, key: str, settings: Settings) -> RawLanding:
    part = partition_context(key, settings)
    shared = settings.raw_dir / SHARED
    request = lambda tmp: source.land(LandingRequest(part, tuple(KINDS.values()), tmp, context.log.info, shared))  # noqa: E731
    try:
        return land_atomically(landing_dir(settings.raw_dir, source.name, key), source.name, request)
    except NotPublishedError as err:
        tags = context.run.tags if context.run else {}
        if any(t in tags for t in ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill")):
            # The daily schedule asks early; try again in a while, for up to a day.
            raise RetryRequested(max_retries=err.retries, seconds_to_wait=err.retry_after_s) from err
        raise Failure(description=f"partition {key}: {err}", allow_retries=False) from None
    except TransientSourceError as err:  # the only errors the RetryPolicy may retry
        raise Failure(description=f"partition {key}: {err}", allow_retries=True) from err
    except SourceError as err:
        raise Failure(description=f"partition {key}: {err}", allow_retries=False) from None
    except OSError as err:  # our own disk refused (no space, read-only): say where
        kept = "The partition's earlier landing, if any, and its catalog files are as they were"
        raise Failure(
            description=refused_write(key, "the raw landing", err.filename or settings.raw_dir, err, kept),
            allow_retries=False,
        ) from None
    except Exception as err:  # a bug or an unexpected failure: retrying would only delay it
        raise Failure(description=f"partition {key}: {type(err).__name__}: {err}", allow_retries=False) from err


def _frame_metadata(kind: DataKind, frame: pl.DataFrame, part: PartitionContext) -> dict:
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
    schema_check = schema_check_name(kind)
    blocking = {schema_check}
    specs = [
        AssetCheckSpec(
            schema_check,
            asset=kind.name,
            blocking=True,
            partitions_def=parts,
            description=f"pandera {kind.model.__name__} plus the partition's day, grid and caps (blocks the catalog write)",
        ),
        *[AssetCheckSpec(name, asset=kind.name, partitions_def=parts, description=d) for name, _, d in warn_checks],
    ]
    ins = {"raw": AssetIn(RAW_ASSET)}
    if kind.derived is not None:  # computed from another kind's validated frame (bars from trades)
        ins["upstream"] = AssetIn(kind.derived[0].name)
    if kind is MARK_PRICES:
        # Checked against the traded prices; computed here (not as a separate check) so that
        # automation sees it among the asset's blocking checks.
        ins["trades"] = AssetIn(TRADES.name)
        blocking.add(coverage.MARK_BAND_CHECK)
        specs.append(
            AssetCheckSpec(
                coverage.MARK_BAND_CHECK,
                asset=kind.name,
                blocking=True,
                partitions_def=parts,
                description=f"Mark prices within {settings.checks.mark_price_band:.0%} of the nearest trade",
            )
        )

    @asset(
        name=kind.name,
        partitions_def=parts,
        backfill_policy=BACKFILL,
        automation_condition=FOLLOW_RAW,
        ins=ins,
        check_specs=specs,
        io_manager_key="frame_io_manager",
        group_name="frames",
        kinds={"polars"},
        description=f"{kind.description}: validated canonical frame.",
    )
    def frame_asset(
        context: AssetExecutionContext, raw, source: MarketDataSource, partition_lock: PartitionLock, **compare
    ) -> Iterator:
        keys = keys_of(context)
        frames, meta, checks = {}, {}, {}
        trades_by_key = by_key(keys, compare["trades"]) if "trades" in compare else {}
        upstream = by_key(keys, compare["upstream"]) if "upstream" in compare else {}
        for key, landing in by_key(keys, raw).items():
            frames[key], meta[key], checks[key] = _validated_frame(
                kind, key, landing, source, settings, warn_checks, upstream.get(key)
            )
            if key in trades_by_key:
                part = partition_context(key, settings)
                checks[key].append(coverage.mark_price_band(frames[key], trades_by_key[key], part))
        handoff, frames = FrameHandoff(frames), None  # the IO manager empties it (see FrameHandoff)
        yield Output(handoff, metadata=_metadata(context, kind.name, meta))
        yield from emit_checks(context, kind.name, checks, blocking=blocking)

    return [frame_asset]


def _catalog_step(parts, settings: Settings) -> AssetsDefinition:
    """One step writes every kind's catalog asset of a partition, in one commit: it runs only
    when each kind's frame passed its blocking checks, so one failing kind keeps them all out."""

    @multi_asset(
        name="catalog_commit",
        outs={
            kind.catalog_asset: AssetOut(
                io_manager_key="catalog_io_manager",
                is_required=False,
                group_name="catalog",
                kinds={"parquet"},
                automation_condition=FOLLOW_RAW,
                description=f"{kind.description} in the Nautilus catalog: one file per partition, "
                "committed together with the partition's other kinds.",
            )
            for kind in KINDS.values()
        },
        ins={kind.name: AssetIn(kind.name, input_manager_key="staged_frames") for kind in KINDS.values()},
        deps=[INSTRUMENT_ASSET],
        internal_asset_deps={
            kind.catalog_asset: {AssetKey(kind.name), AssetKey(INSTRUMENT_ASSET)} for kind in KINDS.values()
        },
        partitions_def=parts,
        backfill_policy=BACKFILL,
        can_subset=True,
    )
    def catalog_commit(
        context: AssetExecutionContext, source: MarketDataSource, partition_lock: PartitionLock, **staged: StagedFrames
    ):
        selected = {key.path[-1] for key in context.selected_asset_keys}
        kinds = [kind for kind in KINDS.values() if kind.catalog_asset in selected]
        commit = CatalogCommit(
            kinds=kinds,
            parts={key: partition_context(key, settings) for key in keys_of(context)},
            frame=lambda kind, key: staged[kind.name].read(key),
            source=source.name,
        )
        for kind in kinds:  # every output is the same commit: the first one writes it
            yield Output(commit, output_name=kind.catalog_asset)

    return catalog_commit


def _offered(kind: DataKind, source: MarketDataSource, part: PartitionContext) -> bool:
    """The source gives the kind, or what it is computed from (bars: trades)."""
    return _offered(kind.derived[0], source, part) if kind.derived else source.offers(kind, part)


def _validated_frame(
    kind: DataKind, key: str, landing: RawLanding, source: MarketDataSource, settings, warn_checks, upstream=None
):
    part = partition_context(key, settings)
    if kind.derived is not None:
        frame = kind.derived[1](upstream, part)
        return _checked_frame(kind, frame, {}, part, settings, warn_checks)
    if not source.offers(kind, part):  # absent for this source: nothing to read, nothing to warn about
        frame, meta, checks = _checked_frame(kind, kind.empty_frame(), {}, part, settings, [])
        said = f"source '{source.name}' does not offer {kind.name} for this partition"
        checks += [AssetCheckResult(check_name=name, passed=True, severity=AssetCheckSeverity.WARN, description=said)
                   for name, _, _ in warn_checks]  # fmt: skip
        return frame, meta | {"offered": False}, checks
    if landing.source != source.name:
        raise Failure(
            description=f"partition {key}: raw data was landed by source '{landing.source}' but the configured "
            f"source is '{source.name}'; re-materialize {RAW_ASSET} first",
            allow_retries=False,
        )
    try:
        frame, notes = source.read_frame_with_notes(kind, landing.paths, part)
    except SourceError as err:
        raise Failure(description=f"partition {key}: {err}", allow_retries=False) from None
    inputs = source.inputs_of(kind, landing.paths, part) if frame.is_empty() else None
    if inputs is not None and not settings.allow_empty:
        raise Failure(
            description=f"partition {key}: no {kind.name} rows in {', '.join(inputs) or 'no file'}: an empty input is not an empty day, so "
            "nothing was written and the catalog keeps this day as it was. Check the input, or rebuild with "
            "--allow-empty (HEDGEGRID_ALLOW_EMPTY=true) to write the day as empty",
            allow_retries=False,
        )
    return _checked_frame(kind, frame, notes, part, settings, warn_checks)


def _checked_frame(kind: DataKind, frame: pl.DataFrame, notes: dict, part: PartitionContext, settings, warn_checks):
    """Completed from the partition, bad rows quarantined, then the checks."""
    frame = kind.complete(frame, part)
    frame, quarantined = quarantine.split(kind, frame, part)
    side_file = quarantine.save(settings.staging_dir, kind, part, quarantined)
    q_meta = {
        "quarantined_rows": quarantined.total,
        "quarantined_by_reason": quarantined.counts,
        "quarantine_file": MetadataValue.path(str(side_file)) if side_file else "(none)",
        **({"skipped_while_parsing": MetadataValue.json(notes)} if notes else {}),
    }
    schema = run_schema(kind, frame, part, extra_metadata=q_meta, quarantined=quarantined.counts)
    checks = [schema, *[fn(frame, part, notes) if getattr(fn, "uses_notes", False) else fn(frame, part)
                        for _, fn, _ in warn_checks]]  # fmt: skip
    return frame, _frame_metadata(kind, frame, part) | q_meta, checks


def _instrument_asset(parts, settings: Settings) -> AssetsDefinition:
    @asset(
        name=INSTRUMENT_ASSET,
        partitions_def=parts,
        backfill_policy=BACKFILL,
        automation_condition=FOLLOW_RAW,
        deps=[RAW_ASSET],
        io_manager_key="catalog_io_manager",
        group_name="catalog",
        kinds={"parquet"},
        description="The symbol's CryptoPerpetual (bundled Binance specs, overridable in settings).",
    )
    def instrument_catalog(context: AssetExecutionContext, partition_lock: PartitionLock):
        return as_output({key: partition_context(key, settings).instrument.nautilus for key in keys_of(context)})

    return instrument_catalog


def _report_asset(parts, settings: Settings) -> AssetsDefinition:
    @asset(
        name=REPORT_ASSET,
        partitions_def=parts,
        backfill_policy=BACKFILL,
        automation_condition=FOLLOW_RAW,
        deps=[INSTRUMENT_ASSET, *[catalog_asset_name(k) for k in KINDS.values()]],
        check_specs=[
            AssetCheckSpec(
                completeness.COMPLETE_CHECK,
                asset=REPORT_ASSET,
                partitions_def=parts,
                description="Every kind and the instrument are in the catalog, no long trade gap, funding covered",
            )
        ],
        group_name="catalog",
        kinds={"nautilus"},
        description="Completeness of the partition in the catalog, read back from the catalog files.",
    )
    def catalog_report(
        context: AssetExecutionContext, source: MarketDataSource, partition_lock: PartitionLock
    ) -> Iterator:
        meta, checks = {}, {}
        for key in keys_of(context):
            part = partition_context(key, settings)
            offered = {kind.name for kind in KINDS.values() if _offered(kind, source, part)}
            if is_object_uri(settings.catalog_path):  # read back through a local mirror of the partition
                from hedgegrid_assets.catalog import object_store

                meta[key], check = object_store.report(S3Zone(settings.catalog_path), part, offered)
            else:
                meta[key], check = completeness.report(settings.catalog_path, part, offered)
            meta[key] |= day_picture.report_metadata(context, settings, part)  # the day, drawn
            checks[key] = [check]
        yield MaterializeResult(metadata=_metadata(context, REPORT_ASSET, meta))
        yield from emit_checks(context, REPORT_ASSET, checks, blocking=set())

    return catalog_report
