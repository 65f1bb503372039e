"""`catalog_coverage`: the whole catalog's coverage picture in the UI (what `hedgegrid status
--picture` draws), as an observable source asset in the catalog group.

Observing it (its page's "Observe" button, or every 30 minutes while the automation sensor is
on) reads the catalog files' footers and the instance's check history, and attaches the picture
to the observation. An observation, not a materialization: the asset is a view of the catalog,
not something a build writes, and "Materialize all" stays one run of the partitioned graph
(an unpartitioned asset in it would turn that into a backfill).
"""

import warnings

from dagster import AutomationCondition, BetaWarning, DataVersion, ObserveResult, observable_source_asset

from hedgegrid_assets.catalog.status import failed_check_results, read
from hedgegrid_assets.reports.coverage_picture import render
from hedgegrid_assets.reports.png import markdown_image
from hedgegrid_assets.settings import Settings

# Observable source assets have been in Dagster since 1.0 and are still labelled beta in 1.13;
# we use them knowingly (as definitions.py does partitioned checks), so no warning at each load.
warnings.filterwarnings(
    "ignore", message="Function `observable_source_asset` is currently in beta", category=BetaWarning
)

COVERAGE_ASSET = "catalog_coverage"
PICTURE_KEY = "coverage_picture"
EVERY_30_MIN = (AutomationCondition.cron_tick_passed("*/30 * * * *") & ~AutomationCondition.in_progress()).with_label(
    "every 30 minutes"
)


def coverage_asset(settings: Settings):
    @observable_source_asset(
        name=COVERAGE_ASSET,
        group_name="catalog",
        automation_condition=EVERY_30_MIN,
        description="The catalog's coverage, dates x symbol x kind: rows per file, days missing, failed checks. "
        f"Observe it, then open the latest observation's {PICTURE_KEY}.",
    )
    def catalog_coverage(context) -> ObserveResult:
        status = read(settings.catalog_path)
        keys = context.repository_def.asset_graph.asset_check_keys
        failed = failed_check_results(
            context.instance, sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
        )
        png = render(status, failed)
        rows = sum(sum(by_kind.values()) for by_kind in status.rows.values())
        return ObserveResult(
            metadata={
                PICTURE_KEY: markdown_image(png, "catalog coverage"),
                "partitions": len(status.rows),
                "days_missing": sum(len(days) for days in status.gaps.values()),
                "failed_checks_error": sum(1 for f in failed if f.severity == "ERROR"),
                "failed_checks_warn": sum(1 for f in failed if f.severity != "ERROR"),
                "catalog": str(settings.catalog_path),
            },
            # A new version when what the catalog holds or what failed changes.
            data_version=DataVersion(f"{len(status.rows)}:{rows}:{len(failed)}"),
        )

    return catalog_coverage
