"""Scheduled assignment sweep (EventBridge, nightly): queue every PSA project whose assignments, daily hours
or project resources changed since the last run, for the margin consumer to re-price
(``hub.flows.workforce.assignment_sweep``; the assignment webhook does the same as changes happen, the sweep
catches what it missed).

Input: the scheduled event (only its ``id`` is used, for the logs' correlation id). Output: one report per
window read (window, projects found and queued, the watermark it advanced to, and why not). A run far behind
(a first run looks back ``sweep_first_lookback_seconds``; an outage) reads window after window of at most
``sweep_max_span_seconds`` until it has caught up, or its deadline nears (the next run continues from the
watermark). A PSA outage or throttling, or a margin queue refusing the messages, leaves the watermark where
it was and fails the invocation, so the function's error alarm sees it. Logs and metrics carry windows and
counts only.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.connectors.ports import PsaResourcePort
from hub.flows.workforce.assignment_sweep import Enqueue, SweepRun, run_assignment_sweep
from hub.observability import entry, logger, metrics
from hub.settings import AssignmentSweepSettings, load
from hub.sweeps.catch_up import WATERMARK_MOVED, seconds_left
from hub.sweeps.watermarks import WatermarkPort


class SweepIncomplete(Exception):
    """The PSA or the queue stopped the run before it caught up (the next run continues from the watermark)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SweepDeps:
    psa: PsaResourcePort
    store: WatermarkPort
    enqueue: Enqueue
    overlap: dt.timedelta
    max_span: dt.timedelta
    first_lookback: dt.timedelta
    clock: Callable[[], dt.datetime] = _utc_now


@functools.cache
def default_deps() -> SweepDeps:
    from hub import aws
    from hub.connectors.secret_bound import SecretResources, secret_reader
    from hub.flows.workforce.projects import enqueue_projects
    from hub.sweeps.watermarks import WatermarkStore

    settings = load(AssignmentSweepSettings)
    sqs = aws.client("sqs")
    return SweepDeps(
        psa=SecretResources(secret_reader(settings.psa_secret_arn)),  # a rotated secret is used at once
        store=WatermarkStore(settings.ledger_table),
        enqueue=lambda requests: enqueue_projects(sqs, settings.margin_queue_url, requests),
        overlap=dt.timedelta(seconds=settings.sweep_overlap_seconds),
        max_span=dt.timedelta(seconds=settings.sweep_max_span_seconds),
        first_lookback=dt.timedelta(seconds=settings.sweep_first_lookback_seconds),
    )


@entry(AssignmentSweepSettings, correlation_id_path="id")
def handler(event: dict[str, Any], context: Any, deps: SweepDeps | None = None) -> dict[str, Any]:
    deps = deps or default_deps()
    runs: list[SweepRun] = run_assignment_sweep(
        psa=deps.psa,
        store=deps.store,
        enqueue=deps.enqueue,
        now=deps.clock,
        overlap=deps.overlap,
        max_span=deps.max_span,
        first_lookback=deps.first_lookback,
        remaining=seconds_left(context),
    )
    for run in runs:
        logger.info("assignment sweep window", extra=run.model_dump(mode="json"))
    metrics.add_metric(name="AssignmentProjectsEnqueued", unit="Count", value=sum(r.enqueued for r in runs))
    stopped = [r.reason for r in runs if r.reason not in (None, WATERMARK_MOVED)]
    if stopped:
        metrics.add_metric(name="AssignmentSweepIncomplete", unit="Count", value=1)
        raise SweepIncomplete(f"the assignment sweep stopped: {', '.join(str(s) for s in stopped)}")
    return {"runs": [r.model_dump(mode="json") for r in runs]}
