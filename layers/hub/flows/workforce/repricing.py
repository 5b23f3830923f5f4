"""Re-price projects from the margin queue: planned cost and margin from the PSA's assignments, the workers'
effective-dated cost rates and the FX table, stored as a new margin version when it moved.

For each project of a batch (a project named by several messages is re-priced once, for its latest cause):

1. its profile (customer, legal entity, currency, billing schedule) from the planning table; a project the
   hub did not initiate has no billing schedule to price against: recorded IGNORED, with that reason;
2. its current assignments from the PSA, the assigned workers from the planning table (as the worker sync
   last applied them), the FX rates of their currencies into the project's;
3. :func:`margin_model`; a missing FX rate or a schedule in another currency parks the project with the
   pair and day (finance fixes the rates table and redrives);
4. if the model differs from the latest stored one, it is stored as the next version (a compare-and-set: a
   concurrent computation makes this one go round again), and announced: ``ProjectMarginChanged`` on the
   bus, a record in the analytics export and, when the margin falls below the project's floor (its own, or
   its legal entity's, or the hub's default), or falls further below it, ``ProjectMarginBelowFloor`` and an
   alert phrased for the delivery manager. The version is marked announced only once all of that went out;
   a retry announces an unannounced version again (the events' ids are fixed per project and version).

Throttled and transient PSA errors go back to the queue; nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from hub.connectors.ports import PsaResourcePort
from hub.errors import RETRYABLE, HubError, TransientError
from hub.flows.workforce.margin import FxTable, MarginModel, below_floor, margin_model
from hub.flows.workforce.projects import MARGIN_FLOW, Cause, MarginRequest, correlation_id_for
from hub.ledger import Ledger, Status
from hub.model.envelope import EventEnvelope
from hub.planning import PlanningStore, ProjectProfile, StoredMargin
from hub.redelivery import BatchMessages, Disposition, MessageOutcome


class Fate(StrEnum):
    REPRICED = "repriced"
    UNCHANGED = "unchanged"
    NOT_PLANNED = "not-planned"  # a project the hub did not initiate: no billing schedule to price against
    PARKED = "parked"
    RETRY = "retry"
    DUPLICATE = "duplicate"  # the same project again in this batch
    MALFORMED = "malformed"


@dataclass(frozen=True)
class MarginAlert:
    """A business alert for the project's delivery manager."""

    psa_project_id: str
    subject: str
    message: str


@dataclass
class RepricingDeps:
    psa: PsaResourcePort
    store: PlanningStore
    ledger: Ledger
    publish: Callable[..., None]  # EventPublisher.publish
    export: Callable[[Sequence[Mapping[str, Any]]], None]  # analytics export of ProjectMarginChanged
    alert: Callable[[MarginAlert], None]
    hold: Callable[[str, str, str], None]  # (body, reason, correlation id) into the DLQ
    default_floor: Decimal
    now: Callable[[], dt.datetime]


def reprice_batch(messages: Sequence[tuple[str, str]], deps: RepricingDeps) -> BatchMessages:
    """``messages``: (message id, body). One outcome per message."""
    outcome = BatchMessages()
    parsed: list[tuple[str, MarginRequest]] = []
    for message_id, body in messages:
        try:
            parsed.append((message_id, MarginRequest.model_validate_json(body)))
        except ValidationError as error:
            reason = f"not a margin request: {error.error_count()} problem(s)"
            deps.hold(body, reason, "")
            outcome.messages.append(
                MessageOutcome(message_id, Disposition.HELD_IN_DLQ, Fate.MALFORMED, reason)
            )
    latest: dict[str, tuple[str, MarginRequest]] = {}
    for message_id, request in sorted(parsed, key=lambda m: m[1].cause.at):
        earlier = latest.get(request.psa_project_id)
        if earlier is not None:  # the later cause is the one re-priced and recorded
            outcome.messages.append(
                MessageOutcome(earlier[0], Disposition.DONE, Fate.DUPLICATE, "re-priced once in this batch")
            )
        latest[request.psa_project_id] = (message_id, request)
    for message_id, request in latest.values():
        fate, reason = reprice(request, deps, body=request.model_dump_json())
        disposition = {
            Fate.RETRY: Disposition.RETRY,
            Fate.PARKED: Disposition.HELD_IN_DLQ,
        }.get(fate, Disposition.DONE)
        outcome.messages.append(MessageOutcome(message_id, disposition, fate, reason))
    return outcome


def reprice(request: MarginRequest, deps: RepricingDeps, *, body: str) -> tuple[Fate, str]:
    pid, cid = request.psa_project_id, request.correlation_id
    profile = deps.store.project(pid)
    if profile is None:
        reason = f"PSA project {pid} was not initiated by the hub: there is no billing schedule to price it against"
        _record(deps, pid, Status.IGNORED, reason)
        return Fate.NOT_PLANNED, reason
    try:
        assignments = deps.psa.project_assignments(pid)
        workers = deps.store.workers({a.worker_hcm_id for a in assignments})
        currency = profile.project.currency
        pairs = {(r.hourly.currency, currency) for w in workers.values() for r in w.cost_rates}
        model = margin_model(profile.project, pid, assignments, workers, FxTable(deps.store.fx_rates(pairs)))
    except HubError as error:
        if isinstance(error, RETRYABLE):
            return Fate.RETRY, error.message
        problems = getattr(error, "problems", [])
        named = "; ".join(f"{p.get('field')}: {p.get('problem')}" for p in problems)
        reason = f"{type(error).__name__}: {error.message}" + (f" ({named})" if named else "")
        _record(deps, pid, Status.PARKED, reason)
        deps.hold(body, reason, cid)
        return Fate.PARKED, reason
    floor = _floor(profile, deps)
    current = deps.store.latest_margin(pid)
    new = model.model_dump(mode="json")
    if current is not None and current.model == new:
        if not current.announced:  # stored by an earlier try whose events did not all go out
            previous = deps.store.margin(pid, current.version - 1) if current.version > 1 else None
            _announce(profile, current, previous, deps)
        return Fate.UNCHANGED, f"margin version {current.version} still holds"
    version = current.version + 1 if current else 1
    saved = deps.store.save_margin(
        pid,
        version=version,
        model=new,
        floor=floor,
        cause=request.cause.model_dump(mode="json"),
        computed_at=deps.now(),
    )
    if saved is None:
        return Fate.RETRY, "another computation stored a margin of this project first"
    deps.store.plan_on(pid, {a.worker_hcm_id for a in assignments})
    try:
        _announce(profile, saved, current, deps)
    except TransientError as error:  # the version is stored, unannounced: the retry announces it
        return Fate.RETRY, error.message
    _record(deps, pid, Status.COMPLETED, None, refs={"marginVersion": version})
    return Fate.REPRICED, f"margin version {version}"


def _floor(profile: ProjectProfile, deps: RepricingDeps) -> Decimal:
    if profile.floor is not None:
        return profile.floor
    entity = deps.store.entity_floor(profile.project.legal_entity_code)
    return entity if entity is not None else deps.default_floor


def _announce(
    profile: ProjectProfile, stored: StoredMargin, previous: StoredMargin | None, deps: RepricingDeps
) -> None:
    pid = profile.psa_project_id
    model = MarginModel.model_validate(stored.model)
    old = MarginModel.model_validate(previous.model) if previous else None
    floor = stored.floor if stored.floor is not None else deps.default_floor
    cause = Cause.model_validate(stored.cause)
    change = margin_changed(profile, model, old, stored.version, floor, cause)
    events = [_event(pid, "ProjectMarginChanged", stored.version, change)]
    alert = _alert_due(model, old, floor)
    if alert:
        events.append(_event(pid, "ProjectMarginBelowFloor", stored.version, change))
    deps.publish(*events)
    deps.export([change])
    if alert:
        deps.alert(delivery_manager_alert(profile, model, old, floor, cause))
    deps.store.announced(pid, stored.version)


def _alert_due(model: MarginModel, old: MarginModel | None, floor: Decimal) -> bool:
    """Below the floor now, and it was not before (or had no margin), or it fell further."""
    if not below_floor(model, floor):
        return False
    if old is None or old.margin_pct is None or not below_floor(old, floor):
        return True
    return model.margin_pct is not None and model.margin_pct < old.margin_pct


def margin_changed(
    profile: ProjectProfile,
    model: MarginModel,
    old: MarginModel | None,
    version: int,
    floor: Decimal,
    cause: Cause,
) -> dict[str, Any]:
    """The ``ProjectMarginChanged`` data (also the analytics record): amounts as strings, no personal data."""
    project = profile.project
    return {
        "psaProjectId": profile.psa_project_id,
        "projectExternalId": project.external_id,
        "opportunityCrmId": project.opportunity_crm_id,
        "legalEntity": project.legal_entity_code,
        "currency": model.currency,
        "version": version,
        "plannedHours": str(model.hours),
        "plannedRevenue": str(model.revenue.amount),
        "plannedCost": str(model.cost.amount),
        "plannedMargin": str(model.margin.amount),
        "marginPct": None if model.margin_pct is None else str(model.margin_pct),
        "previousMarginPct": None if old is None or old.margin_pct is None else str(old.margin_pct),
        "floorPct": str(floor),
        "belowFloor": below_floor(model, floor),
        "unpricedHours": str(sum((u.hours for u in model.unpriced), Decimal(0))),
        "costByWorker": {k: str(v.amount) for k, v in model.cost_by_worker.items()},
        "cause": cause.model_dump(mode="json"),
    }


def delivery_manager_alert(
    profile: ProjectProfile, model: MarginModel, old: MarginModel | None, floor: Decimal, cause: Cause
) -> MarginAlert:
    project = profile.project
    was = "no planned margin before" if old is None else f"was {_pct(old.margin_pct)}"
    moves = _largest_moves(model, old)
    lines = [
        f"The planned margin of project {project.name} for {project.customer.name} is now "
        f"{_pct(model.margin_pct)} ({was}), below its floor of {_pct(floor)}.",
        f"Planned revenue {_money(model.revenue.amount)} {model.currency}, planned cost "
        f"{_money(model.cost.amount)} {model.currency} for {model.hours} planned hours.",
        f"What changed: {cause.detail}.",
    ]
    if moves:
        lines.append("Largest planned-cost changes: " + ", ".join(moves) + ".")
    if model.unpriced:
        hours = sum((u.hours for u in model.unpriced), Decimal(0))
        lines.append(
            f"{hours} planned hours could not be priced (first: {model.unpriced[0].reason}); the margin "
            "leaves them out."
        )
    lines.append(
        f"What to do: review the staffing plan of the project in Kantata (workspace {profile.psa_project_id}): "
        "who is assigned, their hours and their cost rates; or agree a change to the billing schedule with "
        "finance."
    )
    return MarginAlert(
        psa_project_id=profile.psa_project_id,
        subject=f"Planned margin below floor: {project.name} ({_pct(model.margin_pct)})"[:100],
        message="\n".join(lines),
    )


def _largest_moves(model: MarginModel, old: MarginModel | None, top: int = 3) -> list[str]:
    before = {k: v.amount for k, v in (old.cost_by_worker.items() if old else ())}
    after = {k: v.amount for k, v in model.cost_by_worker.items()}
    deltas = {k: after.get(k, Decimal(0)) - before.get(k, Decimal(0)) for k in {*before, *after}}
    ranked = sorted((d for d in deltas.items() if d[1] != 0), key=lambda kv: (-abs(kv[1]), kv[0]))
    return [f"worker {k} {'+' if d > 0 else '-'}{_money(abs(d))} {model.currency}" for k, d in ranked[:top]]


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _event(pid: str, what: str, version: int, data: dict[str, Any]) -> EventEnvelope:
    cid = correlation_id_for(pid)
    return EventEnvelope(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub:{cid}:{what}:{version}")),
        type=what,
        correlationid=cid,
        subject=pid,
        data=data,
    )


def _record(
    deps: RepricingDeps,
    pid: str,
    status: Status,
    reason: str | None,
    *,
    refs: Mapping[str, Any] | None = None,
) -> None:
    cid = correlation_id_for(pid)
    _, created = deps.ledger.open(
        cid,
        flow=MARGIN_FLOW,
        business_key=f"project:{pid}",
        subject=pid,
        source="psa",
        status=status,
        reason=reason,
    )
    if not created or refs:
        deps.ledger.set_status(cid, status, reason=reason, refs=refs)
    deps.ledger.checkpoint(cid, "reprice", str(status).lower(), detail={"reason": reason} if reason else None)
