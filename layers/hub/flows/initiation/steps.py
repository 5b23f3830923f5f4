"""The project-initiation steps that the state machine runs, one call each, with a checkpoint per call.

Each step takes the execution's state (``correlationId``, ``attempt``, ``opportunity`` and the results of
the steps before it) and returns its own result, which the ASL stores under the step's result path.
Typed errors (``hub.errors``) propagate so the ASL can retry the transient ones and park the rest.
Steps with effects outside the hub are idempotent twice over: the vendors' upserts by external id, and a
Powertools idempotency record keyed on the step, the opportunity and its version, so a replay of an
already successful step returns the stored result without calling the vendor again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.connectors.ports import CrmPort, ErpPort, PsaPort
from hub.errors import (
    RETRYABLE,
    DataValidationError,
    HubError,
    PermanentError,
    TransientError,
    field_problems,
)
from hub.events import EventPublisher
from hub.flows.initiation.planning import plan_project
from hub.flows.initiation.rules import describe, problems_for_initiation
from hub.ledger import Ledger, Status
from hub.model import EventEnvelope, Opportunity, Project
from hub.observability import logger
from hub.planning import PlanningStore
from hub.routing import RoutingTable

State = Mapping[str, Any]
Result = dict[str, Any]
IdempotentWrap = Callable[[str, Callable[[State], Result]], Callable[[State], Result]]

CRM_STATUS_ACTIVE = "Project Active"
CRM_STATUS_PARKED = "Integration Error"


@dataclass
class StepDeps:
    ledger: Ledger
    routing: RoutingTable
    events: EventPublisher
    crm: Callable[[], CrmPort]
    psa: Callable[[], PsaPort]
    erp: Callable[[str], ErpPort]
    planning: PlanningStore  # the project as initiated, for its planned margin
    idempotent: IdempotentWrap | None = None
    _wrapped: dict[str, Callable[[State], Result]] = field(default_factory=dict)


def _opportunity(state: State) -> Opportunity:
    return Opportunity.model_validate(state["opportunity"])


def _project(state: State) -> Project:
    project = plan_project(_opportunity(state))
    psa = state.get("psa") or {}
    return project.model_copy(update={"psa_project_id": psa.get("projectId")})


# -- the steps --------------------------------------------------------------------------------------------
def hydrate(state: State, deps: StepDeps) -> Result:
    """Read the full opportunity (account, line items) when the notification carried only its header."""
    return deps.crm().get_opportunity(state["opportunity"]["crm_id"]).model_dump(mode="json")


def validate(state: State, deps: StepDeps) -> Result:
    opp = _opportunity(state)
    problems = problems_for_initiation(opp)
    if problems:
        raise DataValidationError(
            f"cannot start a project for {opp.crm_id}: {describe(problems)}",
            problems=problems,
            code="MISSING_COMMERCIAL_FIELDS",
        )
    return {"valid": True}


def enrich(state: State, deps: StepDeps) -> Result:
    opp = _opportunity(state)
    assert opp.legal_entity_code is not None and opp.account is not None
    service_line = next((i.service_line for i in opp.line_items if i.service_line), None)
    route = deps.routing.resolve(opp.legal_entity_code, service_line=service_line)
    return {
        "legalEntity": route.legal_entity.model_dump(mode="json"),
        "erpSystem": route.erp_system,
        "subsidiaryId": route.subsidiary_id,
        "migrationWave": route.migration_wave,
        "knownCustomerId": deps.routing.customer_id(opp.account.crm_id, route.erp_system),
    }


def upsert_customer(state: State, deps: StepDeps) -> Result:
    opp = _opportunity(state)
    route = state["route"]
    assert opp.account is not None and opp.amount is not None
    customer_id = deps.erp(route["erpSystem"]).upsert_customer(
        opp.account, subsidiary_id=route["subsidiaryId"], currency=opp.account.currency or opp.amount.currency
    )
    deps.routing.remember_customer(opp.account.crm_id, route["erpSystem"], customer_id)
    return {"erpCustomerId": customer_id}


def create_psa_project(state: State, deps: StepDeps) -> Result:
    project = _project(state)
    return {"projectId": deps.psa().ensure_project(project), "externalId": project.external_id}


def create_wbs(state: State, deps: StepDeps) -> Result:
    project = _project(state)
    task_ids = deps.psa().ensure_wbs(state["psa"]["projectId"], project.wbs)
    return {"taskIds": task_ids, "count": len(task_ids)}


def create_billing_schedule(state: State, deps: StepDeps) -> Result:
    project = _project(state)
    item_ids = deps.psa().ensure_billing_schedule(
        state["psa"]["projectId"], project.billing_schedule, state["wbs"]["taskIds"]
    )
    # What the margin flow prices the project's staffing against (an idempotent put: a retry rewrites it).
    deps.planning.put_project(project, state["psa"]["projectId"])
    return {"itemIds": item_ids, "count": len(item_ids)}


def provision_erp_project(state: State, deps: StepDeps) -> Result:
    project = _project(state)
    route = state["route"]
    erp_project_id = deps.erp(route["erpSystem"]).upsert_project(
        project, customer_id=state["customer"]["erpCustomerId"], subsidiary_id=route["subsidiaryId"]
    )
    return {"erpProjectId": erp_project_id}


def write_back_crm(state: State, deps: StepDeps) -> Result:
    opp = _opportunity(state)
    deps.crm().write_back(
        opp.crm_id,
        status=CRM_STATUS_ACTIVE,
        psa_project_id=state["psa"]["projectId"],
        erp_customer_id=state["customer"]["erpCustomerId"],
    )
    return {"status": CRM_STATUS_ACTIVE}


def _refs(state: State) -> dict[str, Any]:
    return {
        "psaProjectId": (state.get("psa") or {}).get("projectId"),
        "erpSystem": (state.get("route") or {}).get("erpSystem"),
        "erpCustomerId": (state.get("customer") or {}).get("erpCustomerId"),
        "erpProjectId": (state.get("erp") or {}).get("erpProjectId"),
    }


def event_id(correlation_id: str, event_type: str, attempt: int) -> str:
    """Deterministic: a re-publish after a retry carries the same id, so subscribers can drop it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub:{correlation_id}:{event_type}:{attempt}"))


def publish_activated(state: State, deps: StepDeps) -> Result:
    opp = _opportunity(state)
    cid = state["correlationId"]
    attempt = int(state.get("attempt", 1))
    refs = _refs(state)
    assert opp.amount is not None and opp.billing_type is not None
    event = EventEnvelope(
        id=event_id(cid, "ProjectActivated", attempt),
        type="ProjectActivated",
        correlationid=cid,
        subject=opp.crm_id,
        data={
            "opportunityId": opp.crm_id,
            "projectExternalId": state["psa"]["externalId"],
            **refs,
            "legalEntity": opp.legal_entity_code,
            "billingType": str(opp.billing_type),
            "contractValue": {"amount": str(opp.amount.rounded().amount), "currency": opp.amount.currency},
            "attempt": attempt,
        },
    )
    deps.events.publish(event)
    return {"eventId": event.id}


def _complete(state: State, deps: StepDeps) -> None:
    """COMPLETED is set outside the cached step, so a replay that skips the publish still completes."""
    deps.ledger.set_status(
        state["correlationId"],
        Status.COMPLETED,
        refs=_refs(state),
        only_if_in=frozenset({Status.RECEIVED, Status.QUEUED, Status.RUNNING}),
    )


def _reason(error: Mapping[str, Any] | None) -> tuple[str, str]:
    """(error name, readable message) from the ASL Catch output ``{"Error", "Cause"}``."""
    if not error:
        return "Unknown", "stopped without an error description"
    name = str(error.get("Error", "Unknown"))
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage") or cause
    except (TypeError, ValueError):
        message = cause
    return name, str(message)[:1000]


def park(state: State, deps: StepDeps) -> Result:
    """Stop with the reason: ledger PARKED and a TransactionParked event (a completed deal stays completed)."""
    cid = state["correlationId"]
    attempt = int(state.get("attempt", 1))
    name, message = _reason(state.get("error"))
    reason = f"{name}: {message}"
    done = [step for step in ("route", "customer", "psa", "wbs", "billing", "erp", "crm") if step in state]
    moved = deps.ledger.set_status(
        cid,
        Status.PARKED,
        reason=reason,
        refs=_refs(state),
        only_if_in=frozenset({Status.RECEIVED, Status.QUEUED, Status.RUNNING}),
    )
    if not moved:
        header = deps.ledger.header(cid) or {}
        if header.get("status") == Status.COMPLETED:
            return {"alreadyCompleted": True, "reason": reason, "error": name}
    opp_id = state["opportunity"]["crm_id"]
    deps.events.publish(
        EventEnvelope(
            id=event_id(cid, "TransactionParked", attempt),
            type="TransactionParked",
            correlationid=cid,
            subject=opp_id,
            data={
                "flow": "project-initiation",
                "opportunityId": opp_id,
                "error": name,
                "reason": message,
                "completedSteps": done,
                "attempt": attempt,
                "resumable": True,
            },
        )
    )
    return {"reason": reason, "error": name, "completedSteps": done}


def notify_crm_parked(state: State, deps: StepDeps) -> Result:
    """The people the deal belongs to see on the opportunity why it has no project yet (best effort)."""
    reason = (state.get("parked") or {}).get("reason") or "parked"
    deps.crm().write_back(state["opportunity"]["crm_id"], status=CRM_STATUS_PARKED, error=reason[:255])
    return {"status": CRM_STATUS_PARKED}


STEPS: dict[str, Callable[[State, StepDeps], Result]] = {
    "hydrate": hydrate,
    "validate": validate,
    "enrich": enrich,
    "upsert_customer": upsert_customer,
    "create_psa_project": create_psa_project,
    "create_wbs": create_wbs,
    "create_billing_schedule": create_billing_schedule,
    "provision_erp_project": provision_erp_project,
    "write_back_crm": write_back_crm,
    "publish_activated": publish_activated,
    "park": park,
    "notify_crm_parked": notify_crm_parked,
}
# Steps whose effects leave the hub: each runs at most once per opportunity version (see module doc).
IDEMPOTENT_STEPS = frozenset(
    {
        "upsert_customer",
        "create_psa_project",
        "create_wbs",
        "create_billing_schedule",
        "provision_erp_project",
        "write_back_crm",
        "publish_activated",
    }
)


def idempotency_key(step: str, state: State) -> dict[str, str]:
    opp = state["opportunity"]
    return {"step": step, "opportunity": opp["crm_id"], "version": str(opp.get("last_modified"))}


def _summary(result: Result) -> dict[str, Any]:
    """What the checkpoint keeps of a result: ids and counts, never whole records."""
    return {k: v for k, v in result.items() if isinstance(v, str | int | bool) or v is None}


def run_step(step: str, state: State, deps: StepDeps) -> Result:
    if step not in STEPS:
        raise DataValidationError(
            f"unknown step {step!r}", problems=[{"field": "step", "problem": "unknown"}]
        )
    cid = state["correlationId"]
    attempt = int(state.get("attempt", 1))
    implementation = STEPS[step]

    def direct(s: State) -> Result:
        return implementation(s, deps)

    call: Callable[[State], Result] = direct
    if deps.idempotent is not None and step in IDEMPOTENT_STEPS:
        if step not in deps._wrapped:
            deps._wrapped[step] = deps.idempotent(step, direct)
        call = deps._wrapped[step]
    try:
        try:
            result = call(state)
        except HubError:
            raise
        except Exception as exc:
            logger.warning(
                "step raised outside the taxonomy",
                extra={"step": step, "error": type(exc).__name__},
                exc_info=True,
            )
            raise _classified(exc) from exc
    except HubError as exc:
        outcome = "retry" if isinstance(exc, RETRYABLE) else "failed"
        detail: dict[str, Any] = dict(exc.to_dict())
        if isinstance(exc, DataValidationError):
            detail["problems"] = exc.problems
        deps.ledger.checkpoint(cid, step, outcome, attempt=attempt, detail=detail)
        raise
    if step == "publish_activated":
        _complete(state, deps)
    deps.ledger.checkpoint(
        cid, step, "parked" if step == "park" else "ok", attempt=attempt, detail=_summary(result)
    )
    return result


def _classified(exc: Exception) -> HubError:
    """Errors from libraries, mapped onto the taxonomy (the ASL retries or parks on the class name)."""
    kind = type(exc).__name__
    module = type(exc).__module__ or ""
    if kind == "ValidationError" and module.startswith("pydantic"):
        problems = field_problems(exc)
        return DataValidationError(
            "the record does not fit the canonical model: "
            + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            problems=problems,
            code="MAPPING",
        )
    if module.startswith(("botocore", "boto3", "urllib3")):
        return TransientError(f"AWS call failed: {kind}", system="aws", code=kind)
    return PermanentError(f"unexpected {kind} in the hub (a bug): see the logs", system="hub", code=kind)
