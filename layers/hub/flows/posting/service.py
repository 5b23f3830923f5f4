"""Posting a batch of approved time entries or expense lines to the ERP of their legal entity.

For each item of the batch (a queue batch, from the PSA webhook or the sweep):
1. the ledger says whether this entry already posted: the same version is a duplicate (redelivery, sweep
   overlap, a DLQ redrive) and is skipped; an older posted version makes this one an *adjustment*, reported
   for finance and never posted a second time;
2. every check runs (``hub.flows.posting.checks``): not approved -> recorded as rejected (nothing to fix);
   any violation -> PARKED with every reason; a closed period under a ``hold`` policy -> HELD; else posted;
3. each postable item is *claimed* in the ledger (one conditional write on entry id + version, see
   ``Ledger.claim``): two consumers holding copies of one entry (a webhook and the sweep, a redrive) never both
   post it; the one refused retries later and then finds it posted;
4. the claimed items go to the ERP port of their route in one call per system (the adapter batches where
   the ERP allows it); each result is recorded: posted -> COMPLETED with the ERP id and a ``TimePosted`` /
   ``ExpensePosted`` event; throttled or transient -> returned for the queue to redeliver (never parked for
   throttling alone); any other error -> PARKED with its reason.

The ledger keys every entry by its PSA id (one transaction per entry across versions), so the counting
in = posted + held + parked + rejected holds per batch and overall.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from hub.connectors.ports import ErpPostingPort, PostExpense, PostingResult, PostTime
from hub.errors import RETRYABLE, DataValidationError, HubError, TransientError
from hub.events import EventPublisher
from hub.flows.posting import FLOW
from hub.flows.posting.checks import Outcome, check_expense_line, check_time_entry
from hub.flows.posting.messages import correlation_id_for
from hub.ledger import Checkpoint, Ledger, Status
from hub.model import (
    AccountingCalendar,
    EventEnvelope,
    ExpenseLine,
    LegalEntity,
    PostingPolicy,
    ProjectStatus,
    TaskStatus,
    TaxRule,
    TimeEntry,
)
from hub.routing import Route, RoutingTable

Item = TimeEntry | ExpenseLine


class PostingConfig(Protocol):
    """The per-entity configuration and the PSA statuses the checks read."""

    def policy(self, legal_entity_code: str) -> PostingPolicy: ...

    def tax_rules(self, legal_entity_code: str) -> Sequence[TaxRule]: ...

    def project_status(self, psa_project_id: str) -> ProjectStatus: ...

    def task_status(self, psa_task_id: str) -> TaskStatus | None: ...


@dataclass
class PostingDeps:
    ledger: Ledger
    routing: RoutingTable
    config: PostingConfig
    erp: Callable[[str], ErpPostingPort]
    events: EventPublisher
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)  # this container, for ledger claims
    claim_lease_seconds: float = 300.0  # longer than one batch may take; a dead consumer's claim lapses
    calendar_ttl_seconds: float = 300.0  # a period closed or reopened in the ERP is seen within this
    clock: Callable[[], float] = time.monotonic
    _calendars: dict[tuple[str, str], tuple[float, AccountingCalendar]] = field(default_factory=dict)

    def calendar(self, route: Route) -> AccountingCalendar:
        key = (route.erp_system, route.legal_entity.code)
        cached = self._calendars.get(key)
        if cached is None or self.clock() - cached[0] >= self.calendar_ttl_seconds:
            calendar = self.erp(route.erp_system).accounting_calendar(
                route.legal_entity.code, subsidiary_id=route.subsidiary_id
            )
            cached = self._calendars[key] = (self.clock(), calendar)
        return cached[1]


class Fate(StrEnum):
    POSTED = "posted"
    DUPLICATE = "duplicate"
    ADJUSTMENT = "adjustment"
    HELD = "held"
    PARKED = "parked"
    REJECTED = "rejected"
    RETRY = "retry"  # throttled or transient: the queue redelivers it


@dataclass
class BatchOutcome:
    fates: dict[str, Fate] = field(default_factory=dict)  # "time-entry:4711#v3" (key_of) -> fate
    reasons: dict[str, str] = field(default_factory=dict)  # parked / held / rejected -> why, for a person
    errors: dict[str, HubError] = field(default_factory=dict)  # retry -> what the ERP (or the ledger) said

    @property
    def retry(self) -> list[str]:
        return [key for key, fate in self.fates.items() if fate is Fate.RETRY]

    def count(self, fate: Fate) -> int:
        return sum(1 for f in self.fates.values() if f is fate)


def kind_of(item: Item) -> str:
    return "time-entry" if isinstance(item, TimeEntry) else "expense"


def correlation_id(item: Item) -> str:
    return correlation_id_for(kind_of(item), item.psa_id)


def key_of(kind: str, psa_id: str, version: int) -> str:
    """An entry version's key in a :class:`BatchOutcome` (time entries and expenses are separate id spaces)."""
    return f"{kind}:{psa_id}#v{version}"


def _key(item: Item) -> str:
    return key_of(kind_of(item), item.psa_id, item.version)


def _open_entry(kind: str, psa_id: str, deps: PostingDeps, summary: dict[str, Any]) -> dict[str, Any]:
    header, _ = deps.ledger.open(
        correlation_id_for(kind, psa_id),
        flow=FLOW,
        business_key=f"{kind}:{psa_id}",
        subject=psa_id,
        source="psa",
        summary=summary,
    )
    return header


def reject_missing(kind: str, psa_id: str, deps: PostingDeps) -> tuple[Fate, str]:
    """An entry the PSA no longer has (deleted before it posted): recorded as rejected, nothing to post.
    An entry already posted stays COMPLETED (finance reverses it in the ERP if needed): a duplicate."""
    header = _open_entry(kind, psa_id, deps, summary={"kind": kind})
    reason = f"the PSA no longer has {kind} {psa_id}: deleted before it posted"
    cid = correlation_id_for(kind, psa_id)
    if header["status"] == Status.COMPLETED:
        reason = (
            f"the PSA no longer has {kind} {psa_id}, which posted already: reverse it in the ERP if needed"
        )
        deps.ledger.checkpoint(cid, "read", "deleted-after-posting")
        return Fate.DUPLICATE, reason
    deps.ledger.set_status(cid, Status.IGNORED, reason=reason)
    return Fate.REJECTED, reason


def park_unmappable(kind: str, psa_id: str, error: DataValidationError, deps: PostingDeps) -> str:
    """An entry whose PSA record cannot become a canonical entry: parked with the fields at fault."""
    _open_entry(kind, psa_id, deps, summary={"kind": kind})
    cid = correlation_id_for(kind, psa_id)
    reason = f"the PSA record does not map: {error.message}"
    deps.ledger.set_status(cid, Status.PARKED, reason=reason)
    deps.ledger.checkpoint(cid, "read", "parked", detail={"problems": error.problems})
    return reason


class _Trail:
    """What a batch writes to the ledger and the bus, with as few calls as the outcome allows: headers read in
    one ``BatchGetItem`` per 100, a new entry recorded together with its first status (or its claim), the
    checkpoints in ``BatchWriteItem`` calls, the events in ``PutEvents`` calls of 10."""

    def __init__(self, items: Sequence[Item], deps: PostingDeps) -> None:
        self.deps = deps
        self.headers = deps.ledger.headers([correlation_id(i) for i in items])
        self._checkpoints: list[Checkpoint] = []

    def header(self, item: Item) -> dict[str, Any] | None:
        return self.headers.get(correlation_id(item))

    def settle(self, item: Item, status: Status, reason: str | None) -> None:
        """Record an outcome that posts nothing (parked, held, rejected)."""
        cid = correlation_id(item)
        if cid not in self.headers:
            header, created = self.deps.ledger.open(cid, status=status, reason=reason, **_create_fields(item))
            self.headers[cid] = header
            if created:
                return
        self.deps.ledger.set_status(cid, status, reason=reason)

    def claim(self, item: Item) -> bool:
        cid = correlation_id(item)
        return self.deps.ledger.claim(
            cid,
            version=item.version,
            owner=self.deps.owner,
            lease_seconds=self.deps.claim_lease_seconds,
            create=None if cid in self.headers else _create_fields(item),
        )

    def checkpoint(self, item: Item, step: str, outcome: str, detail: dict[str, Any] | None = None) -> None:
        self._checkpoints.append(Checkpoint(correlation_id(item), step, outcome, item.version, detail))

    def flush(self) -> None:
        self.deps.ledger.checkpoints(self._checkpoints)
        self._checkpoints = []


def _create_fields(item: Item) -> dict[str, Any]:
    kind = kind_of(item)
    return {
        "flow": FLOW,
        "business_key": f"{kind}:{item.psa_id}",
        "subject": item.psa_id,
        "source": "psa",
        "summary": {"kind": kind, "entity": item.legal_entity_code, "worker": item.worker_id},
    }


def post_batch(items: Sequence[Item], deps: PostingDeps) -> BatchOutcome:
    outcome = BatchOutcome()
    now = deps.now()
    trail = _Trail(items, deps)
    routes: dict[str, Route] = {}  # legal entity -> route, read once per batch
    to_post: dict[str, list[tuple[Item, Any]]] = defaultdict(list)  # erp system -> (item, post request)
    time_entries = [i for i in items if isinstance(i, TimeEntry)]
    adjusted: list[EventEnvelope] = []
    for item in items:
        header = trail.header(item) or {}
        posted = (header.get("refs") or {}).get("postedVersion")
        if header.get("status") == Status.COMPLETED and posted is not None:
            fate = Fate.DUPLICATE if int(posted) >= item.version else Fate.ADJUSTMENT
            if fate is Fate.ADJUSTMENT:
                adjusted.append(_adjustment(item, int(posted)))
            trail.checkpoint(item, "post", str(fate))
            outcome.fates[_key(item)] = fate
            continue
        try:  # an unrouted entity or missing configuration parks this item, never the batch
            route, check, request = _checked(item, deps, now, time_entries, routes)
        except DataValidationError as exc:
            trail.settle(item, Status.PARKED, f"DataValidationError: {exc.message}")
            trail.checkpoint(item, "checks", "parked", {"problems": exc.problems})
            outcome.fates[_key(item)] = Fate.PARKED
            outcome.reasons[_key(item)] = exc.message
            continue
        problems = [v.as_problem() for v in check.violations]
        if check.outcome is Outcome.NOT_APPROVED:
            trail.settle(item, Status.IGNORED, problems[0]["problem"])
            outcome.fates[_key(item)] = Fate.REJECTED
            outcome.reasons[_key(item)] = problems[0]["problem"]
        elif check.outcome is Outcome.PARK:
            reason = "; ".join(v.message for v in check.violations)
            trail.settle(item, Status.PARKED, reason)
            trail.checkpoint(item, "checks", "parked", {"problems": problems})
            outcome.fates[_key(item)] = Fate.PARKED
            outcome.reasons[_key(item)] = reason
        elif check.outcome is Outcome.HOLD:
            trail.settle(item, Status.HELD, check.decision.reason)
            outcome.fates[_key(item)] = Fate.HELD
            outcome.reasons[_key(item)] = check.decision.reason or "held: the accounting period is closed"
        elif trail.claim(item):
            to_post[route.erp_system].append((item, request))
        else:
            _refused(item, trail, outcome)
    if adjusted:
        deps.events.publish(*adjusted)
    for system, pairs in to_post.items():
        _post_to(system, pairs, trail, outcome)
    trail.flush()
    return outcome


def _post_to(system: str, pairs: list[tuple[Item, Any]], trail: _Trail, outcome: BatchOutcome) -> None:
    """Post the claimed items of one ERP system, then record each result. The events of the posted items go
    out *before* they are recorded COMPLETED: if the bus refuses them, the items are retried (the ERP's
    upsert by external id makes the second post find the first record), so no posted entry misses its event."""
    deps = trail.deps
    erp = deps.erp(system)
    times = [r for _, r in pairs if isinstance(r, PostTime)]
    expenses = [r for _, r in pairs if isinstance(r, PostExpense)]
    results = (erp.post_time_entries(times) if times else []) + (
        erp.post_expense_lines(expenses) if expenses else []
    )
    by_key = {(r.psa_id, r.version): r for r in results}
    posted: list[tuple[Item, PostingResult]] = []
    for item, _ in pairs:
        key = _key(item)
        result = by_key.get((item.psa_id, item.version))
        if result is None or (result.error is not None and isinstance(result.error, RETRYABLE)):
            error = result.error if result and result.error else TransientError("no answer", system=system)
            _retry(item, error, trail, outcome)
        elif result.error is not None:
            reason = f"{type(result.error).__name__}: {result.error.message}"
            deps.ledger.set_status(correlation_id(item), Status.PARKED, reason=reason, release=True)
            trail.checkpoint(item, "post", "parked", result.error.to_dict())
            outcome.fates[key] = Fate.PARKED
            outcome.reasons[key] = result.error.message
        else:
            posted.append((item, result))
    try:
        deps.events.publish(*(_posted_event(item, system, result) for item, result in posted))
    except TransientError as error:
        for item, _ in posted:
            _retry(item, error, trail, outcome)
        return
    for item, result in posted:
        deps.ledger.set_status(
            correlation_id(item),
            Status.COMPLETED,
            reason=None,
            refs={"postedVersion": item.version, "erpSystem": system, "erpId": result.erp_id},
            release=True,
        )
        trail.checkpoint(item, "post", "ok", {"erpId": result.erp_id})
        outcome.fates[_key(item)] = Fate.POSTED


def _retry(item: Item, error: HubError, trail: _Trail, outcome: BatchOutcome) -> None:
    trail.deps.ledger.release(correlation_id(item), owner=trail.deps.owner)
    trail.checkpoint(item, "post", "retry", error.to_dict())
    outcome.fates[_key(item)] = Fate.RETRY
    outcome.errors[_key(item)] = error


def _refused(item: Item, trail: _Trail, outcome: BatchOutcome) -> None:
    """The claim was refused: posted meanwhile (a duplicate), or another consumer is posting it (retry)."""
    header = trail.deps.ledger.header(correlation_id(item)) or {}
    posted = (header.get("refs") or {}).get("postedVersion")
    if posted is not None and int(posted) >= item.version:
        outcome.fates[_key(item)] = Fate.DUPLICATE
        trail.checkpoint(item, "post", str(Fate.DUPLICATE))
    else:
        outcome.fates[_key(item)] = Fate.RETRY
        outcome.errors[_key(item)] = TransientError(
            "another consumer is posting this entry now", system="hub", code="claimed"
        )


def _checked(
    item: Item,
    deps: PostingDeps,
    now: dt.datetime,
    time_entries: Sequence[TimeEntry],
    routes: dict[str, Route],
) -> tuple[Any, Any, Any]:
    if item.legal_entity_code not in routes:
        routes[item.legal_entity_code] = deps.routing.resolve(item.legal_entity_code)
    route = routes[item.legal_entity_code]
    entity: LegalEntity = route.legal_entity
    policy = deps.config.policy(entity.code)
    calendar = deps.calendar(route)
    project = deps.config.project_status(item.project.psa_project_id)
    if isinstance(item, TimeEntry):
        task = deps.config.task_status(item.task.psa_task_id) if item.task else None
        check: Any = check_time_entry(
            item,
            entity=entity,
            policy=policy,
            calendar=calendar,
            now_utc=now,
            project_status=project,
            task_status=task,
            same_day_entries=time_entries,
        )
        return route, check, PostTime(entry=item, decision=check.decision, subsidiary_id=route.subsidiary_id)
    check = check_expense_line(
        item,
        entity=entity,
        policy=policy,
        calendar=calendar,
        tax_rules=deps.config.tax_rules(entity.code),
        now_utc=now,
        project_status=project,
    )
    request = (
        PostExpense(line=item, decision=check.decision, tax=check.tax, subsidiary_id=route.subsidiary_id)
        if check.tax
        else None
    )
    return route, check, request


def _posted_event(item: Item, system: str, result: PostingResult) -> EventEnvelope:
    return _event(item, "Posted", erpSystem=system, erpId=result.erp_id, version=item.version)


def _adjustment(item: Item, posted_version: int) -> EventEnvelope:
    return _event(
        item,
        "Adjusted",
        postedVersion=posted_version,
        newVersion=item.version,
        note="edited after posting: finance adjusts the ERP; the hub does not post it twice",
    )


def _event(item: Item, what: str, **data: Any) -> EventEnvelope:
    """``TimePosted`` / ``ExpenseAdjusted`` ...: one envelope, its id fixed by entry, event and version."""
    cid = correlation_id(item)
    event_type = ("Time" if isinstance(item, TimeEntry) else "Expense") + what
    return EventEnvelope(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub:{cid}:{event_type}:{item.version}")),
        type=event_type,
        correlationid=cid,
        subject=item.psa_id,
        data={"psaId": item.psa_id, "legalEntity": item.legal_entity_code, **data},
    )
