"""The worker queue's messages: sending changed workers, and parking the ones the HCM cannot map."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from hub.errors import DataValidationError
from hub.flows.workforce import WORKER_SYNC_FLOW
from hub.flows.workforce.sync import WorkerMessage, correlation_id_for
from hub.ledger import Ledger, Status
from hub.queues import send_all

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def enqueue_workers(sqs: Any, queue_url: str, messages: Sequence[WorkerMessage]) -> int:
    """Each worker once (the latest change of one worker wins), ten a call; TransientError if some could not
    be queued."""
    latest: dict[str, WorkerMessage] = {}
    for message in sorted(messages, key=_order):
        latest[message.worker.hcm_id] = message
    return send_all(
        sqs,
        queue_url,
        [(m.model_dump_json(), m.correlation_id) for m in latest.values()],
        what="worker change(s)",
    )


def _order(message: WorkerMessage) -> tuple[dt.datetime, dt.date]:
    return (message.worker.changed_at or _NEVER, message.effective_on or dt.date.min)


def park_unmappable(ledger: Ledger, hcm_id: str, error: DataValidationError) -> str:
    """A worker the HCM has but that cannot be a canonical worker: PARKED in the ledger with every column at
    fault, also when an earlier change of the worker was applied (the PSA keeps that state; this change is
    what waits). The reason, for the logs."""
    cid = correlation_id_for(hcm_id)
    named = "; ".join(f"{p['field']}: {p['problem']}" for p in error.problems)
    reason = f"the HCM record does not map: {error.message}" + (f" ({named})" if named else "")
    header, created = ledger.open(
        cid,
        flow=WORKER_SYNC_FLOW,
        business_key=f"worker:{hcm_id}",
        subject=hcm_id,
        source="hcm",
        status=Status.PARKED,
        reason=reason,
    )
    if not created:
        ledger.set_status(cid, Status.PARKED, reason=reason)
    ledger.checkpoint(cid, "map", "parked", detail={"problems": error.problems})
    return reason
