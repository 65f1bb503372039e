"""Runs that cover several partitions at once (backfills with a single-run backfill policy).

A step then sees `context.partition_keys` and our IO managers pass {partition key: value}.
Dagster 1.13 attributes a yielded AssetCheckResult to the step's single partition, so for a
batch we log one AssetCheckEvaluation per partition (what the UI shows per partition) and
yield one summary result per check (what blocking uses). Blocking is therefore per batch:
one partition failing an ERROR check holds back the catalog write of its whole batch.
Single-partition runs (UI materialize, schedule, sensor, `hedgegrid build`) block per partition.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

from dagster import AssetCheckEvaluation, AssetCheckResult, AssetKey

T = TypeVar("T")


def keys_of(context) -> list[str]:
    return [str(k) for k in context.partition_keys]


def by_key[T](keys: list[str], value: T | Mapping[str, T]) -> dict[str, T]:
    """An input as {key: value}: one partition arrives bare, several as a dict."""
    return dict(value) if len(keys) > 1 else {keys[0]: value}  # type: ignore[arg-type]


def as_output[T](values: dict[str, T]) -> T | dict[str, T]:
    return next(iter(values.values())) if len(values) == 1 else values


def emit_checks(
    context, asset: str, results: dict[str, list[AssetCheckResult]], blocking: set[str]
) -> Iterator[AssetCheckResult]:
    if len(results) == 1:
        yield from next(iter(results.values()))
        return
    # Asset-check contexts log events through their op context.
    log_event = context.log_event if hasattr(context, "log_event") else context.op_execution_context.log_event
    summary: dict[str, list[tuple[str, AssetCheckResult]]] = {}
    for key, checks in results.items():
        for r in checks:
            log_event(
                AssetCheckEvaluation(
                    asset_key=AssetKey(asset),
                    check_name=r.check_name,
                    passed=r.passed,
                    metadata=r.metadata,
                    severity=r.severity,
                    description=r.description,
                    blocking=r.check_name in blocking,
                    partition=key,
                )
            )
            summary.setdefault(r.check_name, []).append((key, r))
    for name, rs in summary.items():
        failed = [k for k, r in rs if not r.passed]
        yield AssetCheckResult(
            check_name=name,
            passed=not failed,
            severity=rs[0][1].severity,
            description=f"{len(rs) - len(failed)} of {len(rs)} partitions passed (batch summary)",
            metadata={"partitions": len(rs), "failed_partitions": failed},
        )
