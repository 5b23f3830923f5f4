"""Scheduled sweep (EventBridge, every 15 minutes): enqueue a pointer for every approved PSA entry changed since
the last run, to catch what a PSA webhook missed.

Input: the scheduled event (only its ``id`` is used, for the logs' correlation id), or ``{"kinds":
["expense"]}`` to re-run one kind by hand. Each kind (``time-entry``, ``expense``) runs with its own watermark
(``hub.flows.posting.sweep_run``); a kind that fails does not stop the other, and the invocation raises after
both ran, so the function's error alarm sees it. Output: ``{kind: report}`` (window, counts, the watermark it
advanced to, whether it completed and why not). Logs and metrics carry windows and counts only.

A run far behind (a first run looks back ``sweep_first_lookback_seconds``; an outage) reads window after window
of at most ``sweep_max_span_seconds`` until it has caught up with the time it started, or its deadline nears
(the next run continues from the watermark).

A scheduled run also hands every entry the ledger holds for a closed period (status HELD) back to the
consumer, which posts it once its period reopens (or rolls it to the next open one, as the entity's policy
says) and holds it again otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.flows.posting.messages import Kind, PostingRequest
from hub.flows.posting.sweep_run import (
    KINDS,
    MIN_REMAINING_SECONDS,
    Enqueue,
    SweepPsa,
    SweepReport,
    WatermarkPort,
    run_sweep,
)
from hub.observability import entry, logger, metrics
from hub.settings import PostingSweepSettings, load
from hub.sweeps.catch_up import seconds_left


class SweepFailed(Exception):
    """One or more kinds failed with an error (each logged with its kind); the others ran."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SweepDeps:
    psa: Callable[[], SweepPsa]
    store: WatermarkPort
    enqueue: Enqueue
    overlap: dt.timedelta
    max_span: dt.timedelta
    first_lookback: dt.timedelta
    clock: Callable[[], dt.datetime] = _utc_now
    min_remaining: float = MIN_REMAINING_SECONDS
    # Entries held for a closed period, looked at again every run (None: not wired, e.g. in a unit test).
    held: Callable[[], list[PostingRequest]] | None = None


@functools.lru_cache(maxsize=4)
def _psa(secret_value: str) -> SweepPsa:
    """One adapter (and its HTTP client) per secret *value*: a rotated secret gets a fresh adapter."""
    from hub.connectors.factory import psa_from_secret

    return psa_from_secret(json.loads(secret_value))


@functools.cache
def default_deps() -> SweepDeps:
    from aws_lambda_powertools.utilities import parameters

    from hub import aws
    from hub.flows.posting.messages import enqueue, held_requests
    from hub.ledger import Ledger
    from hub.sweeps.watermarks import WatermarkStore

    settings = load(PostingSweepSettings)
    sqs = aws.client("sqs")

    def psa() -> SweepPsa:
        secret = parameters.get_secret(settings.psa_secret_arn, max_age=300)  # rotation picked up in 5 min
        return _psa(secret if isinstance(secret, str) else json.dumps(secret))

    return SweepDeps(
        psa=psa,
        store=WatermarkStore(settings.ledger_table),
        enqueue=lambda requests: enqueue(sqs, settings.posting_queue_url, requests),
        overlap=dt.timedelta(seconds=settings.sweep_overlap_seconds),
        max_span=dt.timedelta(seconds=settings.sweep_max_span_seconds),
        first_lookback=dt.timedelta(seconds=settings.sweep_first_lookback_seconds),
        held=lambda: held_requests(Ledger(settings.ledger_table)),
    )


def _kinds(event: Any) -> list[Kind]:
    """Both kinds, or the ones an ops re-run names (``{"kinds": ["expense"]}``)."""
    asked = event.get("kinds") if isinstance(event, dict) else None
    if asked is None:
        return list(KINDS)
    if not isinstance(asked, list) or not asked or any(kind not in KINDS for kind in asked):
        raise ValueError(f"'kinds' must be a non-empty list of {', '.join(KINDS)}")
    return [kind for kind in KINDS if kind in asked]


def _log(report: SweepReport) -> None:
    logger.info(
        "sweep run",
        extra={
            "kind": report.kind,
            "window": report.window.model_dump(mode="json"),
            "counts": report.counts.model_dump(),
            "advanced_to": report.advanced_to.isoformat() if report.advanced_to else None,
            "complete": report.complete,
            "reason": report.reason,
        },
    )


def _catch_up(kind: Kind, deps: SweepDeps, deadline: Callable[[], float]) -> SweepReport:
    """Window after window (each at most ``max_span``) until the watermark reaches the time the run started,
    the deadline nears, or a window stops short. The report: the last window's, with the counts of all."""
    now = deps.clock()
    read = enqueued = unmappable = 0
    while True:
        report = run_sweep(
            kind,
            psa=deps.psa(),
            store=deps.store,
            enqueue=deps.enqueue,
            now=now,
            overlap=deps.overlap,
            max_span=deps.max_span,
            first_lookback=deps.first_lookback,
            deadline=deadline,
            min_remaining=deps.min_remaining,
        )
        read += report.counts.read
        enqueued += report.counts.enqueued
        unmappable += report.counts.unmappable
        caught_up = report.advanced_to is None or report.advanced_to >= now.replace(microsecond=0)
        if not report.complete or caught_up or deadline() < deps.min_remaining:
            counts = report.counts.model_copy(
                update={"read": read, "enqueued": enqueued, "unmappable": unmappable}
            )
            return report.model_copy(update={"counts": counts})


@entry(PostingSweepSettings, correlation_id_path="id")
def handler(event: dict[str, Any], context: Any, deps: SweepDeps | None = None) -> dict[str, Any]:
    kinds = _kinds(event)
    deps = deps or default_deps()
    deadline = seconds_left(context)
    logger.info("sweep started", extra={"event_id": event.get("id"), "kinds": kinds})
    reports: dict[str, Any] = {}
    failed: list[tuple[str, Exception]] = []
    enqueued = unmappable = incomplete = 0
    for kind in kinds:
        try:
            report = _catch_up(kind, deps, deadline)
        except Exception as error:  # the other kind still runs; raised below, after it
            logger.exception("sweep failed", extra={"kind": kind, "error": type(error).__name__})
            failed.append((kind, error))
            incomplete += 1
            continue
        _log(report)
        reports[kind] = report.model_dump(mode="json")
        enqueued += report.counts.enqueued
        unmappable += report.counts.unmappable
        incomplete += 0 if report.complete else 1
    if deps.held is not None and "kinds" not in event:  # a scheduled run, not an ops re-run of one kind
        try:
            held = deps.held()
            deps.enqueue(held)
            logger.info("held entries handed back for another look", extra={"requeued": len(held)})
            enqueued += len(held)
        except Exception as error:
            logger.exception("re-queueing held entries failed", extra={"error": type(error).__name__})
            failed.append(("held", error))
    metrics.add_metric(name="SweepEnqueued", unit="Count", value=enqueued)
    metrics.add_metric(name="SweepUnmappable", unit="Count", value=unmappable)
    metrics.add_metric(name="SweepIncomplete", unit="Count", value=incomplete)
    if failed:
        names = ", ".join(f"{kind} ({type(error).__name__})" for kind, error in failed)
        raise SweepFailed(f"the sweep failed for {names}") from failed[0][1]
    return reports
