"""Scheduled worker sync (EventBridge, hourly by default): queue every worker the HCM changed since the last
run, for the worker consumer to apply to the PSA's resource pool.

Input: the scheduled event (only its ``id`` is used, for the logs' correlation id). Output: one report per
window read (window, read, enqueued, unmappable, the watermark it advanced to and why not). A worker the
HCM has but that cannot be mapped is recorded PARKED in the ledger (``worker:{hcm id}``) with every column at
fault; ops list it with ``python -m local.ops parked``-style queries by status, and correcting it in the HCM
re-stamps it so the next run reads it. Logs and metrics carry counts and windows only, never worker data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.connectors.ports import HcmPort
from hub.errors import DataValidationError
from hub.flows.workforce.sync import Enqueue, Park, SyncRun, queue_due_changes, run_worker_sync
from hub.model.workforce import Worker
from hub.observability import entry, logger, metrics
from hub.settings import WorkerSyncSettings, load
from hub.sweeps.catch_up import seconds_left
from hub.sweeps.watermarks import WatermarkPort


class SyncIncomplete(Exception):
    """The HCM or the queue stopped the run before it caught up (the next run continues from the watermark)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SyncDeps:
    hcm: Callable[[], HcmPort]
    store: WatermarkPort
    enqueue: Enqueue
    park: Park
    overlap: dt.timedelta
    max_span: dt.timedelta
    first_lookback: dt.timedelta
    due: Callable[[dt.date], Sequence[Worker]]  # workers with a change taking effect that day, as applied
    clock: Callable[[], dt.datetime] = _utc_now


@functools.cache
def default_deps() -> SyncDeps:
    from hub import aws
    from hub.connectors.secret_bound import hcm_of, secret_reader
    from hub.flows.workforce.messages import enqueue_workers, park_unmappable
    from hub.ledger import Ledger
    from hub.planning import PlanningStore
    from hub.sweeps.watermarks import WatermarkStore

    settings = load(WorkerSyncSettings)
    sqs = aws.client("sqs")
    ledger = Ledger(settings.ledger_table)
    planning = PlanningStore(settings.planning_table)

    def park(hcm_id: str, error: DataValidationError) -> None:
        park_unmappable(ledger, hcm_id, error)

    return SyncDeps(
        hcm=hcm_of(secret_reader(settings.hcm_secret_arn)),
        store=WatermarkStore(settings.ledger_table),
        enqueue=lambda messages: enqueue_workers(sqs, settings.worker_queue_url, messages),
        park=park,
        overlap=dt.timedelta(seconds=settings.sync_overlap_seconds),
        max_span=dt.timedelta(seconds=settings.sync_max_span_seconds),
        first_lookback=dt.timedelta(seconds=settings.sync_first_lookback_seconds),
        due=lambda day: list(planning.workers(planning.due(day)).values()),
    )


@entry(WorkerSyncSettings, correlation_id_path="id")
def handler(event: dict[str, Any], context: Any, deps: SyncDeps | None = None) -> dict[str, Any]:
    deps = deps or default_deps()
    runs: list[SyncRun] = run_worker_sync(
        hcm=deps.hcm(),
        store=deps.store,
        enqueue=deps.enqueue,
        park=deps.park,
        now=deps.clock,
        overlap=deps.overlap,
        max_span=deps.max_span,
        first_lookback=deps.first_lookback,
        remaining=seconds_left(context),
    )
    for run in runs:
        logger.info("worker sync window", extra=run.model_dump(mode="json"))
    # The PSA holds only what is in effect today: changes dated today (a rate, a transfer, a hire, a leaver's
    # next day) that were applied earlier are applied again now.
    due = queue_due_changes(
        store=deps.store, due=deps.due, enqueue=deps.enqueue, today=deps.clock().astimezone(dt.UTC).date()
    )
    logger.info("effective-dated changes queued", extra=due.model_dump(mode="json"))
    metrics.add_metric(
        name="WorkersEnqueued", unit="Count", value=sum(r.enqueued for r in runs) + due.enqueued
    )
    metrics.add_metric(name="WorkersUnmappable", unit="Count", value=sum(r.unmappable for r in runs))
    stopped = [r.reason for r in runs if r.reason not in (None, "watermark-moved")]
    if due.reason == "enqueue-failed":
        stopped.append("effective-dated changes not queued")
    if stopped:
        raise SyncIncomplete(f"the worker sync stopped: {', '.join(str(s) for s in stopped)}")
    return {"runs": [r.model_dump(mode="json") for r in runs], "effective": due.model_dump(mode="json")}
