"""Posting a batch of approved time entries or expense lines to the ERP of their legal entity.

For each item of the batch (a queue batch, from the PSA webhook or the sweep):
1. the ledger says whether this entry already posted: the same version is a duplicate (redelivery, sweep
   overlap, a DLQ redrive) and is skipped; an older posted version makes this one an *adjustment*, reported
   for finance and never posted a second time;
2. every check runs (``hub.flows.posting.checks``): not approved -> recorded as rejected (nothing to fix);
   any violation -> PARKED with every reason; a closed period under a ``hold`` policy -> HELD; else posted;
3. each postable item is *claimed* in the ledger (one conditional write on entry id + version, see
   ``Ledger.claim``) by this batch alone (each call of ``post_batch`` is its own claim owner): two batches
   holding copies of one entry (a webhook and the sweep, a redrive, two invocations in one container) never
   both post it; the one refused retries later and then finds it posted;
4. the claimed items go to the ERP port of their route in one call per system (the adapter batches where
   the ERP allows it); each result is recorded: posted -> COMPLETED with the ERP id and a ``TimePosted`` /
   ``ExpensePosted`` event; throttled or transient -> returned for the queue to redeliver (never parked for
   throttling alone); the ERP refusing the accounting period (``CLOSED_PERIOD``: closed after the calendar
   was read) -> the calendar is read again and the entry decided again (held, retried into the period now
   decided, or parked if the ERP refuses a period its own calendar shows open); any other error -> PARKED
   with its reason.

Nothing overwrites a posting: an outcome recorded after another batch completed the entry (a race) leaves
it COMPLETED and counts as a duplicate. A configuration or ERP calendar read that fails parks (or, if it can
be retried, retries) the entries of that legal entity only, never the batch.

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

from hub.connectors.ports import CLOSED_PERIOD, ErpPostingPort, PostExpense, PostingResult, PostTime
from hub.errors import RETRYABLE, DataValidationError, HubError, TransientError
from hub.events import EventPublisher
from hub.flows.posting import FLOW
from hub.flows.posting.checks import Outcome, check_expense_line, check_time_entry
from hub.flows.posting.messages import correlation_id_for
from hub.ledger import NOT_COMPLETED, Checkpoint, Ledger, Status
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

    def forget_calendar(self, route: Route) -> None:
        """The ERP refused a period the cached calendar shows open: read it again next time."""
        self._calendars.pop((route.erp_system, route.legal_entity.code), None)


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
        self.owner = (
            uuid.uuid4().hex
        )  # this batch's claims: no other batch, even in this container, shares it
        self.headers = deps.ledger.headers([correlation_id(i) for i in items])
        self._checkpoints: list[Checkpoint] = []

    def header(self, item: Item) -> dict[str, Any] | None:
        return self.headers.get(correlation_id(item))

    def settle(self, item: Item, status: Status, reason: str | None, *, release: bool = False) -> bool:
        """Record an outcome that posts nothing (parked, held, rejected); ``release`` ends this batch's claim.
        False when another batch completed the entry meanwhile: a posting is never overwritten."""
        cid = correlation_id(item)
        if cid not in self.headers:
            header, created = self.deps.ledger.open(cid, status=status, reason=reason, **_create_fields(item))
            self.headers[cid] = header
            if created:
                return True
        return self.deps.ledger.set_status(
            cid, status, reason=reason, only_if_in=NOT_COMPLETED, release=release
        )

    def claim(self, item: Item) -> bool:
        cid = correlation_id(item)
        return self.deps.ledger.claim(
            cid,
            version=item.version,
            owner=self.owner,
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


def post_batch(
    items: Sequence[Item], deps: PostingDeps, *, same_day: Sequence[TimeEntry] = ()
) -> BatchOutcome:
    """``same_day``: the PSA's other time entries of the batch's worker-days (any approval), for the
    daily-hours rule; the batch's own entries always count."""
    outcome = BatchOutcome()
    trail = _Trail(items, deps)
    decide = _Decider(deps, deps.now(), [*same_day, *(i for i in items if isinstance(i, TimeEntry))])
    to_post: dict[str, list[tuple[Item, Any]]] = defaultdict(list)  # erp system -> (item, post request)
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
        try:  # an unrouted entity, missing configuration or an unreadable calendar: this item, never the batch
            route, check, request = decide(item)
        except HubError as exc:
            if isinstance(exc, RETRYABLE):
                outcome.fates[_key(item)] = Fate.RETRY
                outcome.errors[_key(item)] = exc
            else:
                problems = getattr(exc, "problems", [])
                _park(item, f"{type(exc).__name__}: {exc.message}", exc.message, problems, trail, outcome)
            continue
        if check.outcome is Outcome.NOT_APPROVED:
            why = check.violations[0].message
            _settle(item, Status.IGNORED, Fate.REJECTED, why, trail, outcome)
        elif check.outcome is Outcome.PARK:
            reason = "; ".join(v.message for v in check.violations)
            _park(item, reason, reason, [v.as_problem() for v in check.violations], trail, outcome)
        elif check.outcome is Outcome.HOLD:
            why = check.decision.reason or "held: the accounting period is closed"
            _settle(item, Status.HELD, Fate.HELD, why, trail, outcome)
        elif trail.claim(item):
            to_post[route.erp_system].append((item, request))
        else:
            _refused(item, trail, outcome)
    if adjusted:
        deps.events.publish(*adjusted)
    for system, pairs in to_post.items():
        _post_to(system, pairs, trail, outcome, decide)
    trail.flush()
    return outcome


def _settle(
    item: Item,
    status: Status,
    fate: Fate,
    why: str,
    trail: _Trail,
    outcome: BatchOutcome,
    *,
    claimed: bool = False,
) -> bool:
    """Record an outcome that posts nothing (``claimed``: and end this batch's claim on it); an entry another
    batch completed meanwhile stays COMPLETED, a duplicate."""
    if not trail.settle(item, status, why, release=claimed):
        _completed_meanwhile(item, trail, outcome)
        return False
    outcome.fates[_key(item)] = fate
    outcome.reasons[_key(item)] = why
    return True


def _park(
    item: Item,
    reason: str,
    why: str,
    problems: Sequence[Any],
    trail: _Trail,
    outcome: BatchOutcome,
) -> None:
    if _settle(item, Status.PARKED, Fate.PARKED, reason, trail, outcome):
        outcome.reasons[_key(item)] = why
        trail.checkpoint(item, "checks", "parked", {"problems": list(problems)})


def _completed_meanwhile(item: Item, trail: _Trail, outcome: BatchOutcome) -> None:
    outcome.fates[_key(item)] = Fate.DUPLICATE
    trail.checkpoint(item, "post", str(Fate.DUPLICATE), {"note": "completed by another batch meanwhile"})


class _Decider:
    """The checks of one batch: routes, calendars (and their failures) read once per legal entity."""

    def __init__(self, deps: PostingDeps, now: dt.datetime, time_entries: Sequence[TimeEntry]) -> None:
        self.deps, self.now, self.time_entries = deps, now, time_entries
        self._routes: dict[str, Route | HubError] = {}
        self._calendars: dict[str, AccountingCalendar | HubError] = {}

    def route(self, code: str) -> Route:
        return self._once(self._routes, code, lambda: self.deps.routing.resolve(code))

    def calendar(self, route: Route) -> AccountingCalendar:
        code = route.legal_entity.code

        def read() -> AccountingCalendar:
            try:
                return self.deps.calendar(route)
            except HubError as exc:
                exc.message = f"the accounting calendar of {code} could not be read: {exc.message}"
                raise

        return self._once(self._calendars, code, read)

    def forget_calendar(self, route: Route) -> None:
        self.deps.forget_calendar(route)
        self._calendars.pop(route.legal_entity.code, None)

    @staticmethod
    def _once(memo: dict[str, Any], key: str, read: Callable[[], Any]) -> Any:
        if key not in memo:
            try:
                memo[key] = read()
            except HubError as exc:
                memo[key] = exc
        if isinstance(memo[key], HubError):
            raise memo[key]
        return memo[key]

    def __call__(self, item: Item) -> tuple[Route, Any, Any]:
        route = self.route(item.legal_entity_code)
        entity: LegalEntity = route.legal_entity
        policy = self.deps.config.policy(entity.code)
        calendar = self.calendar(route)
        project = self.deps.config.project_status(item.project.psa_project_id)
        if isinstance(item, TimeEntry):
            task = self.deps.config.task_status(item.task.psa_task_id) if item.task else None
            check: Any = check_time_entry(
                item,
                entity=entity,
                policy=policy,
                calendar=calendar,
                now_utc=self.now,
                project_status=project,
                task_status=task,
                same_day_entries=self.time_entries,
            )
            request: Any = PostTime(entry=item, decision=check.decision, subsidiary_id=route.subsidiary_id)
            return route, check, request
        check = check_expense_line(
            item,
            entity=entity,
            policy=policy,
            calendar=calendar,
            tax_rules=self.deps.config.tax_rules(entity.code),
            now_utc=self.now,
            project_status=project,
        )
        request = (
            PostExpense(line=item, decision=check.decision, tax=check.tax, subsidiary_id=route.subsidiary_id)
            if check.tax
            else None
        )
        return route, check, request


def _post_to(
    system: str, pairs: list[tuple[Item, Any]], trail: _Trail, outcome: BatchOutcome, decide: _Decider
) -> None:
    """Post the claimed items of one ERP system, then record each result. The events of the posted items go
    out *before* they are recorded COMPLETED: if the bus refuses them, the items are retried (the ERP's
    upsert by external id makes the second post find the first record), so no posted entry misses its event."""
    deps = trail.deps
    try:
        results = _send(deps.erp(system), pairs)
    except HubError as failed:  # the whole call failed (sign-in, the adapter itself): each item alike
        results = [PostingResult(i.psa_id, i.version, error=failed) for i, _ in pairs]
    by_key = {(r.psa_id, r.version): r for r in results}
    posted: list[tuple[Item, PostingResult]] = []
    refused_period: list[tuple[Item, Any, HubError]] = []
    for item, request in pairs:
        result = by_key.get((item.psa_id, item.version))
        if result is None or (result.error is not None and isinstance(result.error, RETRYABLE)):
            error = result.error if result and result.error else TransientError("no answer", system=system)
            _retry(item, error, trail, outcome)
        elif result.error is not None and result.error.code == CLOSED_PERIOD:
            refused_period.append((item, request, result.error))
        elif result.error is not None:
            _park_refused(item, result.error, trail, outcome)
        else:
            posted.append((item, result))
    if refused_period:
        _decide_again(refused_period, trail, outcome, decide)
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


def _send(erp: ErpPostingPort, pairs: list[tuple[Item, Any]]) -> list[PostingResult]:
    times = [r for _, r in pairs if isinstance(r, PostTime)]
    expenses = [r for _, r in pairs if isinstance(r, PostExpense)]
    return (erp.post_time_entries(times) if times else []) + (
        erp.post_expense_lines(expenses) if expenses else []
    )


def _park_refused(item: Item, error: HubError, trail: _Trail, outcome: BatchOutcome) -> None:
    """The ERP refused the entry for good: parked with its reason (unless another batch posted it)."""
    reason = f"{type(error).__name__}: {error.message}"
    if _settle(item, Status.PARKED, Fate.PARKED, reason, trail, outcome, claimed=True):
        outcome.reasons[_key(item)] = error.message
        trail.checkpoint(item, "post", "parked", error.to_dict())


def _decide_again(
    refused: list[tuple[Item, Any, HubError]], trail: _Trail, outcome: BatchOutcome, decide: _Decider
) -> None:
    """The ERP refused the period of these entries: the period closed after the calendar was read. Read it
    again and decide again: held (the entity holds), retried into the period now decided (the queue
    redelivers it), or, when the ERP refuses a period its own calendar still shows open, parked."""
    for code in sorted({item.legal_entity_code for item, _, _ in refused}):
        decide.forget_calendar(decide.route(code))
    for item, request, error in refused:
        trail.checkpoint(item, "post", "period-refused", error.to_dict())
        try:
            _, check, again = decide(item)
        except HubError as exc:
            if isinstance(exc, RETRYABLE):
                _retry(item, exc, trail, outcome)
            else:
                _park_refused(item, exc, trail, outcome)
            continue
        if check.outcome is Outcome.HOLD:
            why = check.decision.reason or "held: the accounting period is closed"
            _settle(item, Status.HELD, Fate.HELD, why, trail, outcome, claimed=True)
        elif check.outcome is Outcome.POST and again.decision != request.decision:
            _retry(
                item,
                TransientError(
                    f"the ERP closed accounting period {request.decision.period}; "
                    f"decided again: {again.decision.reason}",
                    system="hub",
                    code=CLOSED_PERIOD,
                ),
                trail,
                outcome,
            )
        else:
            _park_refused(item, error, trail, outcome)


def _retry(item: Item, error: HubError, trail: _Trail, outcome: BatchOutcome) -> None:
    trail.deps.ledger.release(correlation_id(item), owner=trail.owner)
    trail.checkpoint(item, "post", "retry", error.to_dict())
    outcome.fates[_key(item)] = Fate.RETRY
    outcome.errors[_key(item)] = error


def _refused(item: Item, trail: _Trail, outcome: BatchOutcome) -> None:
    """The claim was refused: posted meanwhile (a duplicate), or another batch is posting it (retry)."""
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
