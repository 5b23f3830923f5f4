"""The worker queue's consumer, without Lambda: a batch of changed workers in, one fate per message out.

1. Every message is a :class:`~hub.flows.workforce.sync.WorkerMessage`; a body that is not one is held in the
   dead-letter queue with its reason at once.
2. One transaction per worker in the ledger (``worker:{hcm id}``); a change's version is the HCM's change
   instant (``changed_at``, in microseconds), so versions order. A message for a change already applied, or
   older than one applied (a DLQ redrive weeks later, two runs' overlap), is a duplicate: it changes nothing.
   Two messages for one worker in a batch: the latest change wins, the other is a duplicate.
3. Each new change is *claimed* for this batch (one conditional write), so two consumers holding copies of one
   change never both apply it.
4. The claimed workers go to the PSA in one call (:meth:`PsaResourcePort.upsert_resources`, batched by the
   adapter within the PSA's rate limit); per worker: created / updated / deactivated -> ``WorkerUpdated`` is
   published, then the change is recorded COMPLETED; unchanged -> COMPLETED, no event; throttled -> sent again
   with a growing delay (never to the DLQ for throttling alone); other retryable -> a batch item failure
   (SQS redelivers; after ``maxReceiveCount`` the DLQ); anything else -> PARKED with its reason, held in the
   DLQ where ops redrive it once fixed. One failing worker never blocks the rest of the batch.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from hub.connectors.ports import PsaResourcePort, ResourceResult
from hub.errors import RETRYABLE, HubError, ThrottledError, TransientError, field_problems
from hub.events import EventPublisher
from hub.flows.workforce import WORKER_SYNC_FLOW
from hub.flows.workforce.projects import Cause, MarginRequest
from hub.flows.workforce.sync import WorkerMessage, correlation_id_for
from hub.ledger import NOT_COMPLETED, Checkpoint, Ledger, Status
from hub.model import EventEnvelope
from hub.model.workforce import Worker
from hub.planning import PlanningStore
from hub.redelivery import BatchMessages, Disposition, MessageOutcome, redelivery_delay


class Fate(StrEnum):
    APPLIED = "applied"  # created, updated or deactivated in the PSA
    UNCHANGED = "unchanged"  # the PSA already had it
    DUPLICATE = "duplicate"
    PARKED = "parked"
    RETRY = "retry"
    MALFORMED = "malformed"


@dataclass
class WorkerConsumerDeps:
    ledger: Ledger
    psa: PsaResourcePort
    events: EventPublisher
    hold: Callable[[str, str, str | None], None]  # (body, reason, correlation id) -> the DLQ
    resend: Callable[
        [WorkerMessage, int, int], None
    ]  # (message, delay seconds, times throttled) -> the queue
    planning: PlanningStore  # the worker as applied, for margins; its future-dated changes
    reprice: Callable[[Sequence[MarginRequest]], object]  # -> the margin queue
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())
    claim_lease_seconds: float = 300.0
    jitter: Callable[[], float] = field(default=random.random)


def version_of(message: WorkerMessage) -> int:
    """A change's version (:attr:`WorkerMessage.version`): changes of one worker order by it."""
    return message.version


def consume_workers(messages: Sequence[tuple[str, str, int]], deps: WorkerConsumerDeps) -> BatchMessages:
    """``messages``: (message id, body, times throttled before) of one batch."""
    outcome = BatchMessages()
    latest: dict[str, tuple[str, WorkerMessage, int]] = {}
    for message_id, body, throttled in messages:
        try:
            message = WorkerMessage.model_validate_json(body)
            version_of(message)
        except (ValidationError, ValueError) as exc:
            problems = field_problems(exc) if isinstance(exc, ValidationError) else []
            reason = "not a worker message: " + (
                "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or str(exc)
            )
            deps.hold(body, reason, None)
            outcome.messages.append(
                MessageOutcome(message_id, Disposition.HELD_IN_DLQ, Fate.MALFORMED, reason)
            )
            continue
        hcm_id = message.worker.hcm_id
        kept = latest.get(hcm_id)
        if kept is not None and version_of(kept[1]) >= version_of(message):
            outcome.messages.append(_superseded(message_id))
            continue
        if kept is not None:
            outcome.messages.append(_superseded(kept[0]))
        latest[hcm_id] = (message_id, message, throttled)
    if latest:
        _apply(list(latest.values()), deps, outcome)
    return outcome


def _superseded(message_id: str) -> MessageOutcome:
    return MessageOutcome(
        message_id, Disposition.DONE, Fate.DUPLICATE, "a later change of this worker is in the same batch"
    )


def _apply(
    batch: list[tuple[str, WorkerMessage, int]], deps: WorkerConsumerDeps, outcome: BatchMessages
) -> None:
    owner = uuid.uuid4().hex  # this batch's claims
    cids = [correlation_id_for(m.worker.hcm_id) for _, m, _ in batch]
    headers = deps.ledger.headers(cids)
    checkpoints: list[Checkpoint] = []
    claimed: list[tuple[str, WorkerMessage, int]] = []
    for message_id, message, throttled in batch:
        worker, cid = message.worker, message.correlation_id
        applied = ((headers.get(cid) or {}).get("refs") or {}).get("postedVersion")
        if applied is not None and int(applied) >= version_of(message):
            outcome.messages.append(
                MessageOutcome(message_id, Disposition.DONE, Fate.DUPLICATE, "this change is applied already")
            )
            continue
        if deps.ledger.claim(
            cid,
            version=version_of(message),
            owner=owner,
            lease_seconds=deps.claim_lease_seconds,
            create=None if cid in headers else _create_fields(worker),
        ):
            claimed.append((message_id, message, throttled))
        else:  # applied meanwhile, or another batch is applying it now: SQS hands it back later
            outcome.messages.append(
                MessageOutcome(
                    message_id, Disposition.RETRY, Fate.RETRY, "another consumer holds this worker"
                )
            )
    if not claimed:
        return
    try:
        results = deps.psa.upsert_resources([m.worker for _, m, _ in claimed], today=deps.today())
    except HubError as failed:  # the whole call: each worker alike
        results = [ResourceResult(m.worker.hcm_id, error=failed) for _, m, _ in claimed]
    by_id = {r.hcm_id: r for r in results}
    applied_now: list[tuple[str, WorkerMessage, ResourceResult]] = []
    for message_id, message, throttled in claimed:
        worker, cid = message.worker, message.correlation_id
        result = by_id.get(worker.hcm_id) or ResourceResult(
            worker.hcm_id, error=TransientError("the PSA answered nothing for this worker", system="psa")
        )
        if result.error is not None and isinstance(result.error, RETRYABLE):
            deps.ledger.release(cid, owner=owner)
            checkpoints.append(Checkpoint(cid, "upsert", "retry", detail=result.error.to_dict()))
            outcome.messages.append(_retry(message_id, message, throttled, result.error, deps))
        elif result.error is not None:
            reason = f"{type(result.error).__name__}: {result.error.message}"
            if deps.ledger.set_status(
                cid, Status.PARKED, reason=reason, only_if_in=NOT_COMPLETED, release=True
            ):
                checkpoints.append(Checkpoint(cid, "upsert", "parked", detail=result.error.to_dict()))
                deps.hold(message.model_dump_json(), reason, cid)
                outcome.messages.append(
                    MessageOutcome(message_id, Disposition.HELD_IN_DLQ, Fate.PARKED, reason)
                )
            else:
                outcome.messages.append(MessageOutcome(message_id, Disposition.DONE, Fate.DUPLICATE))
        else:
            applied_now.append((message_id, message, result))
    try:
        deps.events.publish(
            *(_worker_updated(m, r, deps.today()) for _, m, r in applied_now if r.outcome != "unchanged")
        )
        keep_for_planning([m for _, m, _ in applied_now], deps)
    except TransientError as error:  # the bus or the margin queue refused: apply again later (unchanged then)
        for message_id, message, _ in applied_now:
            deps.ledger.release(message.correlation_id, owner=owner)
            outcome.messages.append(MessageOutcome(message_id, Disposition.RETRY, Fate.RETRY, error.message))
        deps.ledger.checkpoints(checkpoints)
        return
    for message_id, message, result in applied_now:
        deps.ledger.set_status(
            message.correlation_id,
            Status.COMPLETED,
            refs={
                "postedVersion": version_of(message),
                "psaUserId": result.psa_user_id,
                "outcome": result.outcome,
            },
            release=True,
        )
        checkpoints.append(Checkpoint(message.correlation_id, "upsert", result.outcome))
        fate = Fate.UNCHANGED if result.outcome == "unchanged" else Fate.APPLIED
        outcome.messages.append(MessageOutcome(message_id, Disposition.DONE, fate, result.outcome))
    deps.ledger.checkpoints(checkpoints)


def _retry(
    message_id: str, message: WorkerMessage, throttled: int, error: HubError, deps: WorkerConsumerDeps
) -> MessageOutcome:
    if isinstance(error, ThrottledError):
        deps.resend(message, redelivery_delay(throttled, error.retry_after, deps.jitter()), throttled + 1)
        return MessageOutcome(message_id, Disposition.RESENT, Fate.RETRY, error.message)
    return MessageOutcome(message_id, Disposition.RETRY, Fate.RETRY, error.message)


def _create_fields(worker: Worker) -> dict[str, Any]:
    return {
        "flow": WORKER_SYNC_FLOW,
        "business_key": f"worker:{worker.hcm_id}",
        "subject": worker.hcm_id,
        "source": "hcm",
        "summary": {"workerType": str(worker.worker_type)},
    }


def _worker_updated(message: WorkerMessage, result: ResourceResult, today: dt.date) -> EventEnvelope:
    """``WorkerUpdated``: who changed and how, never personal data (no name)."""
    worker = message.worker
    placement = worker.placement_on(today) or worker.placements[-1]
    rate = worker.rate_on(today)
    cid = correlation_id_for(worker.hcm_id)
    return EventEnvelope(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub:{cid}:WorkerUpdated:{version_of(message)}")),
        type="WorkerUpdated",
        correlationid=cid,
        subject=worker.hcm_id,
        data={
            "hcmId": worker.hcm_id,
            "psaUserId": result.psa_user_id,
            "change": result.outcome,
            "workerType": str(worker.worker_type),
            "legalEntity": placement.legal_entity_code,
            "costCentre": placement.cost_centre,
            "active": worker.active_on(today),
            "costRate": {"amount": str(rate.hourly.amount), "currency": rate.hourly.currency}
            if rate
            else None,
            "changedAt": worker.changed_at.isoformat() if worker.changed_at else None,
        },
    )


def keep_for_planning(messages: Sequence[WorkerMessage], deps: WorkerConsumerDeps) -> None:
    """After the PSA has them: keep each worker as the margin flow prices them, remember the days its
    future-dated changes take effect (the PSA holds only today's), and re-price the projects a worker is
    planned on when its cost rates or working dates changed."""
    today = deps.today()
    before = deps.planning.workers(m.worker.hcm_id for m in messages)
    due: dict[dt.date, list[str]] = {}
    requests: list[MarginRequest] = []
    for message in messages:
        worker = message.worker
        deps.planning.put_worker(worker, version_of(message))
        for day in effective_days(worker):
            if day > today:
                due.setdefault(day, []).append(worker.hcm_id)
        old = before.get(worker.hcm_id)
        if old is None or not _prices_differ(old, worker):
            continue
        cause = Cause(
            kind="worker",
            detail=describe_change(old, worker),
            worker_hcm_id=worker.hcm_id,
            at=worker.changed_at or dt.datetime.now(dt.UTC),
        )
        requests.extend(
            MarginRequest(psa_project_id=pid, cause=cause) for pid in deps.planning.projects_of(worker.hcm_id)
        )
    for day, ids in sorted(due.items()):
        deps.planning.due_on(day, ids)
    if requests:
        deps.reprice(requests)


def effective_days(worker: Worker) -> set[dt.date]:
    """The days the PSA's view of the worker changes: each rate and placement, the hire, the day after the
    last day (deactivated then)."""
    days = {r.effective_from for r in worker.cost_rates} | {p.effective_from for p in worker.placements}
    days.add(worker.hire_date)
    if worker.end_date is not None:
        days.add(worker.end_date + dt.timedelta(days=1))
    return days


def _prices_differ(old: Worker, new: Worker) -> bool:
    return (old.cost_rates, old.hire_date, old.end_date) != (new.cost_rates, new.hire_date, new.end_date)


def describe_change(old: Worker, new: Worker) -> str:
    """The change, for the delivery manager: the worker by HCM id only."""
    parts: list[str] = []
    known = {(r.effective_from, r.hourly) for r in old.cost_rates}  # closing a rate is not a change of it
    added = [r for r in new.cost_rates if (r.effective_from, r.hourly) not in known]
    for rate in added:
        was = old.rate_on(rate.effective_from)
        before = f" (was {was.hourly.amount} {was.hourly.currency}/h)" if was else ""
        parts.append(
            f"the cost rate of worker {new.hcm_id} is {rate.hourly.amount} {rate.hourly.currency}/h from "
            f"{rate.effective_from}{before}"
        )
    if not added and old.cost_rates != new.cost_rates:
        parts.append(f"the cost-rate history of worker {new.hcm_id} was corrected in the HCM")
    if old.end_date != new.end_date:
        parts.append(
            f"worker {new.hcm_id} leaves after {new.end_date}"
            if new.end_date
            else f"worker {new.hcm_id} no longer has a last day"
        )
    if old.hire_date != new.hire_date:
        parts.append(f"worker {new.hcm_id} starts on {new.hire_date}")
    return "; ".join(parts)[:500] or f"worker {new.hcm_id} changed in the HCM"
