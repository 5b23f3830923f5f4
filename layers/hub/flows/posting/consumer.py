"""The posting queue's consumer, without Lambda: a batch of pointers in, one fate per message out.

1. Every message is a :class:`~hub.flows.posting.messages.PostingRequest` (kind and PSA id). A body that is not
   one cannot be retried into shape: it is held in the dead-letter queue with its reason at once.
2. The batch's entries are read again from the PSA, a few calls per batch (``line_items_by_id``), with the
   status of the projects and tasks they book to (``project_statuses`` / ``task_statuses``), and the rest of
   each time entry's worker-day (``time_entries_on_days``: the daily-hours rule sees the whole day, however its
   entries were batched). What posts is the entry as it is now: an approval withdrawn since the message was
   sent posts nothing.
   An entry the PSA no longer has is rejected (nothing to post); one that does not map is parked.
3. :func:`hub.flows.posting.service.post_batch` checks, claims and posts them, one ERP call per system.
4. Each message's fate becomes what the queue does with it:
   - posted, duplicate, adjustment, held, rejected: done (deleted);
   - parked: held in the dead-letter queue with its reason as message attributes, so ops see it in the
     console and redrive it once fixed (the ledger has every reason too);
   - throttled (the ERP or its concurrency budget was full): sent again with a growing delay and done, so
     throttling alone never walks a message to the dead-letter queue;
   - any other retryable failure (timeouts, 5xx, another consumer posting it right now): reported as a batch
     item failure; SQS redelivers it, and after ``maxReceiveCount`` receives holds it in the DLQ.

If the PSA itself cannot be read, nothing of the batch is decided: every message is retried (or, throttled,
sent again later).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from hub.connectors.ports import LineItems, LineKind
from hub.errors import (
    RETRYABLE,
    HubError,
    ThrottledError,
    TransientError,
    field_problems,
)
from hub.flows.posting.messages import PostingRequest, parse
from hub.flows.posting.service import (
    Fate,
    Item,
    PostingDeps,
    key_of,
    park_unmappable,
    post_batch,
    reject_missing,
)
from hub.model import ProjectStatus, TaskStatus, TimeEntry
from hub.redelivery import BatchMessages, Disposition, MessageOutcome, redelivery_delay


class PsaReader(Protocol):
    def line_items_by_id(self, kind: LineKind, psa_ids: Sequence[str]) -> LineItems: ...

    def project_statuses(self, psa_project_ids: Sequence[str]) -> dict[str, ProjectStatus]: ...

    def task_statuses(self, psa_task_ids: Sequence[str]) -> dict[str, TaskStatus]: ...

    def time_entries_on_days(self, worker_days: Iterable[tuple[str, dt.date]]) -> list[TimeEntry]: ...


class StatusBook(Protocol):
    """Where the checks read project and task statuses (``TableConfig``); primed per batch."""

    def stale_statuses(self, kind: str, ids: Sequence[str]) -> list[str]: ...

    def prime_statuses(self, kind: str, asked: Sequence[str], values: Mapping[str, Any]) -> None: ...


@dataclass
class ConsumerDeps:
    posting: PostingDeps
    psa: PsaReader
    statuses: StatusBook
    hold: Callable[[str, str, str | None], None]  # (message body, reason, correlation id) -> the DLQ
    resend: Callable[[PostingRequest, int], None]  # (request, delay seconds) -> the queue
    jitter: Callable[[], float] = field(default=random.random)


def consume(messages: Sequence[tuple[str, str]], deps: ConsumerDeps) -> BatchMessages:
    """``messages``: (message id, body) pairs of one batch."""
    outcome = BatchMessages()
    requests: list[tuple[str, str, PostingRequest]] = []
    for message_id, body in messages:
        try:
            requests.append((message_id, body, parse(body)))
        except (ValidationError, ValueError) as exc:
            problems = field_problems(exc) if isinstance(exc, ValidationError) else []
            reason = "not a posting request: " + (
                "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "body is not JSON"
            )
            deps.hold(body, reason, None)
            outcome.messages.append(
                MessageOutcome(message_id, Disposition.HELD_IN_DLQ, "malformed", reason=reason)
            )
    if not requests:
        return outcome
    try:
        fates, reasons, errors = _decide([r for _, _, r in requests], deps)
    except HubError as exc:
        if not isinstance(exc, RETRYABLE):
            raise
        for message_id, _, request in requests:
            outcome.messages.append(_retry(message_id, request, exc, deps))
        return outcome
    held: set[Key] = set()
    for message_id, body, request in requests:
        fate = fates[request.key]
        why = reasons.get(request.key)
        if fate is Fate.RETRY:
            outcome.messages.append(_retry(message_id, request, errors[request.key], deps))
        elif fate is Fate.PARKED and request.key not in held:  # one DLQ message per entry, not per copy
            held.add(request.key)
            deps.hold(body, why or "parked", request.correlation_id)
            outcome.messages.append(MessageOutcome(message_id, Disposition.HELD_IN_DLQ, fate, why))
        elif fate is Fate.PARKED:
            copy = "a copy of a message held in the dead-letter queue by this batch"
            outcome.messages.append(MessageOutcome(message_id, Disposition.DONE, Fate.DUPLICATE, copy))
        else:
            outcome.messages.append(MessageOutcome(message_id, Disposition.DONE, fate, why))
    return outcome


def _retry(message_id: str, request: PostingRequest, error: HubError, deps: ConsumerDeps) -> MessageOutcome:
    if isinstance(error, ThrottledError):
        delay = redelivery_delay(request.throttled, error.retry_after, deps.jitter())
        deps.resend(request.model_copy(update={"throttled": request.throttled + 1}), delay)
        return MessageOutcome(message_id, Disposition.RESENT, Fate.RETRY, reason=error.message)
    return MessageOutcome(message_id, Disposition.RETRY, Fate.RETRY, reason=error.message)


Key = tuple[str, str]


def _decide(
    requests: Sequence[PostingRequest], deps: ConsumerDeps
) -> tuple[dict[Key, Fate], dict[Key, str], dict[Key, HubError]]:
    fates: dict[Key, Fate] = {}
    reasons: dict[Key, str] = {}
    ids_by_kind: dict[LineKind, list[str]] = defaultdict(list)
    for request in requests:
        if request.psa_id not in ids_by_kind[request.kind]:
            ids_by_kind[request.kind].append(request.psa_id)
    items: list[Item] = []
    for kind, ids in ids_by_kind.items():
        read = deps.psa.line_items_by_id(kind, ids)
        for psa_id in read.missing:
            fates[(kind, psa_id)], reasons[(kind, psa_id)] = reject_missing(kind, psa_id, deps.posting)
        for psa_id, error in read.unmappable.items():
            reasons[(kind, psa_id)] = park_unmappable(kind, psa_id, error, deps.posting)
            fates[(kind, psa_id)] = Fate.PARKED
        items.extend(read.found.values())
    _prime_statuses(items, deps)
    days = sorted({(i.worker_id, i.work_date) for i in items if isinstance(i, TimeEntry)})
    same_day = deps.psa.time_entries_on_days(days) if days else []
    batch = post_batch(items, deps.posting, same_day=same_day)
    errors: dict[Key, HubError] = {}
    for item in items:
        kind = "time-entry" if isinstance(item, TimeEntry) else "expense"
        key = key_of(kind, item.psa_id, item.version)
        fates[(kind, item.psa_id)] = batch.fates[key]
        if key in batch.reasons:
            reasons[(kind, item.psa_id)] = batch.reasons[key]
        if key in batch.errors:
            errors[(kind, item.psa_id)] = batch.errors[key]
    for request in requests:  # an id the PSA answered for neither way: never silently done
        if request.key not in fates:
            fates[request.key] = Fate.RETRY
            errors[request.key] = TransientError(
                f"the PSA answered neither found nor missing for {request.kind} {request.psa_id}",
                system="psa",
                code="no_answer",
            )
    return fates, reasons, errors


def _prime_statuses(items: Sequence[Item], deps: ConsumerDeps) -> None:
    """Read the statuses the checks need in two batched calls, not one call per project or task."""
    projects = sorted({i.project.psa_project_id for i in items})
    tasks = sorted({i.task.psa_task_id for i in items if isinstance(i, TimeEntry) and i.task})
    stale = deps.statuses.stale_statuses("project", projects)
    if stale:
        deps.statuses.prime_statuses("project", stale, deps.psa.project_statuses(stale))
    stale = deps.statuses.stale_statuses("task", tasks)
    if stale:
        deps.statuses.prime_statuses("task", stale, deps.psa.task_statuses(stale))
