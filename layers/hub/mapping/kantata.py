"""Canonical -> Kantata OX request bodies, and Kantata answers -> records and ids.

Kantata answers ``{"count", "results": [{"key", "id"}], "<collection>": {"<id>": {...}}, "meta": {...}}``:
``results`` gives the order, the collection holds the records by id.

The hub marks what it creates so a re-run finds it instead of creating it twice:
- a project (workspace) is linked to the opportunity by an external reference (service ``pshub``, model
  ``Opportunity``) embedded in the create call, and carries ``pshub:opportunity:{opportunity id}`` in its
  description as a safety net;
- a WBS task (story) carries ``pshub:wbs:{code}`` as its description;
- a billing milestone is titled ``{milestone code} - {milestone name}``;
- a project also carries ``pshub:entity:{legal entity code}`` in its description: the legal entity its time and
  expenses post to (see "time and expenses" below).

Money: Kantata's ``*_in_cents`` fields count the currency's subunits (its ``currency_base_unit``: 100 for most
currencies, 1 for zero-decimal ones such as JPY); a workspace's budget is created with ``price`` in currency
units (``price_in_cents`` is read-only).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from hub.errors import DataValidationError, field_problems
from hub.mapping.fields import Field, FieldMap, date_out, lookup
from hub.model import (
    ApprovalStatus,
    ExpenseCategory,
    ExpenseLine,
    Milestone,
    Money,
    Project,
    TimeEntry,
    WbsTask,
)

SERVICE_NAME = "pshub"
SERVICE_MODEL = "Opportunity"
SUBJECT_TYPE = "Workspace"
REFERENCE_STATUS = "successful"  # Kantata: pending | successful | failed
BILLING_TYPE = "fixed_date"  # canonical milestones have a due date (Kantata: fixed_date | upon_completion)
PAGE_SIZE = 200  # Kantata's maximum per_page

ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF"}
    | {"XOF", "XPF"}
)
"""ISO 4217 currencies without a minor unit: their Kantata ``currency_base_unit`` is 1, not 100."""


def _subunit_exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL_CURRENCIES else 2


def money_subunits_out(money: Money) -> int:
    """An amount as Kantata's ``*_in_cents`` integer: in the currency's subunits, rounded half up."""
    exponent = _subunit_exponent(money.currency)
    return int(money.amount.scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def money_units_out(money: Money) -> str:
    """An amount in currency units as a decimal string (``"125000.01"``): money never passes through float."""
    exponent = _subunit_exponent(money.currency)
    return str(money.amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP))


STORY_TYPES = {"phase": "deliverable", "task": "task", "milestone": "milestone"}
"""Canonical WBS kind -> Kantata ``story_type``."""

WORKSPACE = FieldMap(
    Field("title", "name"),
    Field("currency", "currency"),
    Field("start_date", "start_date", dump=date_out),
    Field("due_date", "end_date", dump=date_out),
    # Kantata takes the budget as ``price`` on create (``price_in_cents`` is read-only and ignored).
    Field("price", "contract_value", dump=money_units_out),
    constants={"budgeted": True},
)

STORY = FieldMap(
    Field("title", "name"),
    Field("story_type", "kind", dump=lookup(STORY_TYPES)),
    Field("start_date", "start_date", dump=date_out),
    Field("due_date", "due_date", dump=date_out),
    Field("budget_estimate_in_cents", "budget", dump=money_subunits_out),
)

BILLING_MILESTONE = FieldMap(
    Field("amount_in_cents", "amount", dump=money_subunits_out),
    Field("date_to_invoice", "due_date", dump=date_out),
    constants={"billing_type": BILLING_TYPE},
)


# ------------------------------------------------------------------------------------------------ markers


def project_marker(opportunity_crm_id: str) -> str:
    return f"pshub:opportunity:{opportunity_crm_id}"


def wbs_marker(code: str) -> str:
    return f"pshub:wbs:{code}"


def entity_marker(legal_entity_code: str) -> str:
    return f"pshub:entity:{legal_entity_code}"


def _marker_pattern(marker: str) -> re.Pattern[str]:
    # Whole-token match: pshub:wbs:1 must not match pshub:wbs:1.2, nor an id that merely starts alike.
    return re.compile(rf"(?<![\w:.]){re.escape(marker)}(?![\w.])")


def carries_marker(text: str | None, marker: str) -> bool:
    return bool(text) and _marker_pattern(marker).search(text or "") is not None


_WBS_CODE = re.compile(r"(?<![\w:.])pshub:wbs:([0-9]+(?:\.[0-9]+)*)(?![\w.])")


def wbs_code_of(story: Mapping[str, Any]) -> str | None:
    """The WBS code the hub put in a story's description, if any."""
    found = _WBS_CODE.search(str(story.get("description") or ""))
    return found.group(1) if found else None


def billing_milestone_code(title: str) -> str:
    """The milestone code a title made by ``billing_milestone_title`` starts with."""
    return title.split(" - ", 1)[0].strip()


def billing_milestone_title(milestone: Milestone) -> str:
    return f"{milestone.code} - {milestone.name}"


# --------------------------------------------------------------------------------------------- requests


def kantata_id(value: str) -> int | str:
    """Kantata documents ids as integers in request bodies; its answers carry them as strings."""
    return int(value) if value.isdigit() else value


def workspace_search_params(opportunity_crm_id: str, page: int = 1) -> dict[str, Any]:
    marker = project_marker(opportunity_crm_id)
    return {"search": f"description:'{marker}'", "per_page": PAGE_SIZE, "page": page}


def workspace_body(project: Project) -> dict[str, Any]:
    """The workspace, with its external reference embedded: Kantata links it in the same call, so no crash
    can leave a workspace without its link."""
    marker = project_marker(project.opportunity_crm_id)
    description = (
        f"{marker}\n{entity_marker(project.legal_entity_code)}\nCreated by the integration hub; keep the lines "
        "above: re-runs find this project by them, and its time and expenses post to that legal entity."
    )
    return {
        "workspace": {
            **WORKSPACE.dump(project),
            "description": description,
            "external_reference": _reference(project.opportunity_crm_id),
        }
    }


def external_reference_params(opportunity_crm_id: str) -> dict[str, Any]:
    return {
        "subject_type": SUBJECT_TYPE,
        "service_name": SERVICE_NAME,
        "service_model": SERVICE_MODEL,
        "service_model_ref": opportunity_crm_id,
    }


def _reference(opportunity_crm_id: str) -> dict[str, Any]:
    return {
        "service_name": SERVICE_NAME,
        "service_model": SERVICE_MODEL,
        "service_model_ref": opportunity_crm_id,
        "status": REFERENCE_STATUS,
    }


def external_reference_body(workspace_id: str, opportunity_crm_id: str) -> dict[str, Any]:
    """For ``POST /external_references/create_or_update``: one reference per subject and service name, so
    sending it again updates it (safe to replay)."""
    return {
        "external_reference": {
            "subject_type": SUBJECT_TYPE,
            "subject_id": kantata_id(workspace_id),
            **_reference(opportunity_crm_id),
        }
    }


def references_workspace(reference: Mapping[str, Any], opportunity_crm_id: str) -> bool:
    """Whether a listed reference is the hub's link from a workspace to this opportunity (re-checked on the
    client: a filter the vendor ignores must not make another opportunity's reference match). A key the
    answer leaves out is trusted to the query's filter; a key that contradicts it is not."""
    wanted = external_reference_params(opportunity_crm_id)
    return reference.get("subject_id") is not None and all(
        reference.get(key) is None or str(reference[key]) == value for key, value in wanted.items()
    )


def story_params(workspace_id: str, page: int = 1) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "per_page": PAGE_SIZE, "page": page}


def story_body(workspace_id: str, task: WbsTask, parent_id: str | None) -> dict[str, Any]:
    story: dict[str, Any] = {"workspace_id": kantata_id(workspace_id), **STORY.dump(task)}
    if parent_id is not None:
        story["parent_id"] = kantata_id(parent_id)
    story["description"] = wbs_marker(task.code)
    return {"story": story}


def billing_milestone_params(workspace_id: str, page: int = 1) -> dict[str, Any]:
    # Kantata filters billing milestones with ``workspace_ids`` (plural); ``workspace_id`` would be ignored.
    return {"workspace_ids": workspace_id, "per_page": PAGE_SIZE, "page": page}


def billing_milestone_body(workspace_id: str, milestone: Milestone, story_id: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"workspace_id": kantata_id(workspace_id)}
    if story_id is not None:
        item["story_id"] = kantata_id(story_id)
    item["title"] = billing_milestone_title(milestone)
    item.update(BILLING_MILESTONE.dump(milestone))
    return {"billing_milestone": item}


def belongs_to(record: Mapping[str, Any], workspace_id: str) -> bool:
    """Whether a listed story or milestone is in the workspace (re-checked: an ignored filter lists all)."""
    return str(record.get("workspace_id")) == str(workspace_id)


# ---------------------------------------------------------------------------------------------- answers


def records(answer: Any, collection: str) -> list[dict[str, Any]]:
    """The records of ``collection`` in the order of ``results``, each with its ``id`` as a string."""
    if not isinstance(answer, Mapping):
        return []
    by_id = answer.get(collection) or {}
    if not isinstance(by_id, Mapping):
        return []
    out: list[dict[str, Any]] = []
    results = answer.get("results")
    keys = (
        [str(ref.get("id")) for ref in results if isinstance(ref, Mapping) and ref.get("key") == collection]
        if isinstance(results, list)
        else [str(key) for key in by_id]
    )
    for key in keys:
        record = by_id.get(key)
        if record is None and key.isdigit():
            record = by_id.get(int(key))  # type: ignore[call-overload]
        if isinstance(record, Mapping):
            out.append({**record, "id": str(record.get("id", key))})
    return out


def created_id(answer: Any, collection: str) -> str | None:
    """The id of the record a create call answered with."""
    found = records(answer, collection)
    return found[0]["id"] if found else None


def has_more_pages(answer: Any, page: int, page_size: int = PAGE_SIZE) -> bool:
    """Whether a page after ``page`` exists: from ``meta.page_count``, else from a full page."""
    meta = answer.get("meta") if isinstance(answer, Mapping) else None
    if isinstance(meta, Mapping) and meta.get("page_count") is not None:
        try:
            return page < int(meta["page_count"])
        except (TypeError, ValueError):
            return False
    results = answer.get("results") if isinstance(answer, Mapping) else None
    return isinstance(results, list) and len(results) >= page_size


def validation_problems(answer: Any) -> list[dict[str, str]]:
    """Kantata's 422 ``errors`` as the hub's problems: one per field."""
    errors = answer.get("errors") if isinstance(answer, Mapping) else None
    problems: list[dict[str, str]] = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            problems.append(
                {"field": str(error.get("field") or "base"), "problem": str(error.get("message") or "")}
            )
    return problems


# ------------------------------------------------------------------------------ time and expenses (read)
#
# The hub only reads time entries and expenses. A Kantata line item maps to a canonical entry as follows:
#
# - ``psa_id``: the Kantata id; ``worker_id``: its ``user_id`` (the Kantata user);
# - ``version``: its ``updated_at`` as epoch microseconds (Kantata has no revision counter; it renders
#   ``updated_at`` to the second, so in practice a version is whole seconds times 10**6);
# - ``legal_entity_code``: the project's legal entity, from the ``pshub:entity:{code}`` line the hub writes into
#   the workspace's description when it creates the project (Kantata users carry no legal entity and the API
#   has no custom fields here); ops add the line by hand to a project the hub did not create;
# - ``project``: the workspace id and the hub's project external id (``sf-opp-{opportunity id}``), read from the
#   workspace's ``pshub`` external reference, else from its ``pshub:opportunity:`` marker;
# - ``task``: the story's id and the WBS code of its ``pshub:wbs:`` marker (no marker: no task);
# - approval: ``approved`` (on an approved submission, or a project that needs no approval) -> approved, at the
#   submission's resolution instant (else the entry's ``updated_at``); on a pending submission -> submitted;
#   last submission rejected -> rejected; last submission cancelled -> withdrawn (Kantata does not say whether a
#   cancelled submission had been approved: either way the entry must not post until approved again); never
#   submitted -> submitted (the canonical model has no "draft": it is "not approved yet");
# - time: ``time_in_minutes`` / 60 (exact when it is, else to 6 decimal places);
# - money: ``amount_in_cents`` in the currency's subunits (``currency_base_unit``), with the entry's currency;
# - an expense's supplier country: a ``pshub:country:{ISO code}`` marker in its notes, else the home country
#   of its legal entity (adapter configuration: Kantata records no country on an expense).
#
# Timestamps: Kantata renders them to the second in the account's time zone (with its offset). Windows are read
# in whole UTC seconds, so ``floor(t) >= after`` is ``t >= after`` and ``floor(t) < before`` is ``t < before``:
# a window ``[after, before)`` is read exactly, whatever the account's time zone.

ENTITY_CODE_PATTERN = r"[A-Z0-9][A-Z0-9_-]{0,31}"
_ENTITY = re.compile(rf"(?<![\w:.])pshub:entity:({ENTITY_CODE_PATTERN})(?![\w.-])")
_OPPORTUNITY = re.compile(r"(?<![\w:.])pshub:opportunity:([A-Za-z0-9]{15,18})(?![\w.])")
_COUNTRY = re.compile(r"(?<![\w:.])pshub:country:([A-Z]{2})(?![\w.])")
_SECOND = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NOTES_MAX = 4000

LINE_INCLUDES = "workspace,story,active_submission,recent_submission"
"""What a line item is read with: its project, its task and its submissions (approval)."""

EXPENSE_CATEGORIES: dict[str, ExpenseCategory] = {
    "travel": ExpenseCategory.TRAVEL,
    "airfare": ExpenseCategory.TRAVEL,
    "transportation": ExpenseCategory.TRAVEL,
    "mileage": ExpenseCategory.MILEAGE,
    "lodging": ExpenseCategory.LODGING,
    "hotel": ExpenseCategory.LODGING,
    "food": ExpenseCategory.MEALS,
    "meals": ExpenseCategory.MEALS,
    "entertainment": ExpenseCategory.CLIENT_ENTERTAINMENT,
    "client entertainment": ExpenseCategory.CLIENT_ENTERTAINMENT,
    "software": ExpenseCategory.SOFTWARE,
    "subcontractor": ExpenseCategory.SUBCONTRACTOR,
    "other": ExpenseCategory.OTHER,
}
"""Kantata expense category names (case-insensitive; the account's defaults and common additions) -> canonical.
An unknown name reaches the model as is and is refused: it is never guessed into ``other``."""

SUBMISSION_STATUS: dict[str, ApprovalStatus] = {
    "pending": ApprovalStatus.SUBMITTED,
    "new": ApprovalStatus.SUBMITTED,
    "rejected": ApprovalStatus.REJECTED,
    "cancelled": ApprovalStatus.WITHDRAWN,
    "canceled": ApprovalStatus.WITHDRAWN,
}
"""An entry that is not approved, by the status of its latest submission (none, or anything else: submitted)."""


# -- instants


def instant_in(text: Any, time_zone: str | None = None) -> dt.datetime | None:
    """A Kantata timestamp as an aware instant; one without an offset is read in the account's time zone."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(time_zone))
    return moment


def _zone(name: str | None) -> dt.tzinfo:
    return dt.UTC if name in (None, "", "UTC", "Etc/UTC") else ZoneInfo(str(name))


def instant_out(moment: dt.datetime) -> str:
    """An instant for a Kantata filter: UTC, to the second, with its offset (``2025-01-31T17:00:00+00:00``)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def epoch_microseconds(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def window_bounds(updated_after: dt.datetime, updated_before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window in whole UTC seconds, widened (never narrowed) to them: ``after`` floored, ``before`` ceiled.
    Naive datetimes are refused: a window is a pair of instants, not wall-clock readings."""
    for name, moment in (("updated_after", updated_after), ("updated_before", updated_before)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    after = updated_after.astimezone(dt.UTC).replace(microsecond=0)
    before = updated_before.astimezone(dt.UTC)
    if before.microsecond:
        before = before.replace(microsecond=0) + _SECOND
    if before < after:
        raise ValueError(f"the window ends ({before}) before it starts ({after})")
    return after, before


def in_window(text: Any, after: dt.datetime, before: dt.datetime, time_zone: str | None = None) -> bool:
    """Whether a rendered timestamp lies in ``[after, before)`` (whole-second bounds, see above)."""
    moment = instant_in(text, time_zone)
    return moment is not None and after <= moment < before


# -- request parameters


def changed_params(after: dt.datetime, before: dt.datetime) -> dict[str, Any]:
    """Approved line items changed in ``[after, before)``. Kantata's ``updated_after`` is strict, so it is sent a
    second early (the extra second is dropped on the client); archived projects' entries post too."""
    return {
        "approved": "true",
        "updated_after": instant_out(after - _SECOND),
        "updated_before": instant_out(before),
        "order": "updated_at:asc",
        "include": LINE_INCLUDES,
        "from_archived_workspaces": "true",
    }


def approvals_params(kind: LineKind, after: dt.datetime) -> dict[str, Any]:
    """Submissions approved (or otherwise changed) since ``after``, with the ids of their line items. Kantata
    lists submissions with ``updated_after`` only: the window's end is checked on the client."""
    return {
        "statuses": "approved",
        "updated_after": instant_out(after - _SECOND),
        "include": kind.collection,
        "order": "date:asc",
    }


def only_params(ids: list[str], *, approved_only: bool = True) -> dict[str, Any]:
    """Line items by id (at most ``PAGE_SIZE``: one page holds them all), with what they are mapped with.
    ``approved_only=False`` reads them whatever their approval (for time entries Kantata processes any
    ``approved`` value as true, so the filter is left out rather than sent as false)."""
    params: dict[str, Any] = {
        "only": ",".join(ids),
        "include": LINE_INCLUDES,
        "from_archived_workspaces": "true",
    }
    if approved_only:
        params["approved"] = "true"
    return params


def worker_day_params(user_ids: list[str], day: dt.date) -> dict[str, Any]:
    """Every time entry of these users on ``day``, whatever its approval (a worker's day is checked whole)."""
    return {
        "with_user_ids": ",".join(user_ids),
        "date_performed_between": f"{day.isoformat()}:{day.isoformat()}",
        "include": LINE_INCLUDES,
        "from_archived_workspaces": "true",
    }


def member_params() -> dict[str, Any]:
    return {"include": LINE_INCLUDES}


def workspace_reference_params(workspace_id: str, page: int = 1) -> dict[str, Any]:
    """The hub's external reference of a workspace (whichever opportunity it names)."""
    return {
        "subject_type": SUBJECT_TYPE,
        "subject_id": workspace_id,
        "service_name": SERVICE_NAME,
        "service_model": SERVICE_MODEL,
        "per_page": PAGE_SIZE,
        "page": page,
    }


# -- anchors (what identifies a record's place in a listing; see ``KantataPsa._scan``)


def change_anchor(record: Mapping[str, Any]) -> tuple[str, str]:
    """A line item listed by ``updated_at``: its id and the ``updated_at`` it was listed with."""
    return (str(record.get("id")), str(record.get("updated_at")))


def submission_anchor(record: Mapping[str, Any]) -> tuple[str, str]:
    """A submission listed by date: its id and start date (neither changes)."""
    return (str(record.get("id")), str(record.get("start_date")))


# -- answers


def included(answer: Any, collection: str) -> dict[str, dict[str, Any]]:
    """Records of ``collection`` an answer carries (its own or included with ``include=``), by id."""
    by_id = answer.get(collection) if isinstance(answer, Mapping) else None
    if not isinstance(by_id, Mapping):
        return {}
    return {str(key): dict(value) for key, value in by_id.items() if isinstance(value, Mapping)}


def included_one(answer: Any, collection: str, record_id: Any) -> dict[str, Any] | None:
    """One record of ``collection`` an answer carries, by id (a copy), or None: a line item's project, task
    or submission, found without copying every record the answer includes (a page of 200 line items would
    otherwise copy all of them once per item)."""
    if record_id in (None, ""):
        return None
    by_id = answer.get(collection) if isinstance(answer, Mapping) else None
    value = by_id.get(str(record_id)) if isinstance(by_id, Mapping) else None
    return dict(value) if isinstance(value, Mapping) else None


def line_ids(submission: Mapping[str, Any], kind: LineKind) -> list[str]:
    ids = submission.get(kind.line_ids)
    return [str(i) for i in ids] if isinstance(ids, list) else []


def is_approved(record: Mapping[str, Any]) -> bool:
    return record.get("approved") is True


def legal_entity_of(workspace: Mapping[str, Any] | None) -> str | None:
    found = _ENTITY.search(str((workspace or {}).get("description") or ""))
    return found.group(1) if found else None


def hub_project_external_id(opportunity_crm_id: str) -> str:
    """The hub's project external id (as ``hub.flows.initiation.planning.project_external_id`` makes it)."""
    return f"sf-opp-{opportunity_crm_id}"


def project_external_id_of(
    references: list[Mapping[str, Any]], workspace: Mapping[str, Any] | None
) -> str | None:
    """The hub's project external id of a workspace: from its ``pshub`` external reference (the link the hub
    made), else from the ``pshub:opportunity:`` marker of its description; None when neither is there."""
    for reference in references:
        wanted = {"service_name": SERVICE_NAME, "service_model": SERVICE_MODEL, "subject_type": SUBJECT_TYPE}
        if all(reference.get(k) is None or str(reference[k]) == v for k, v in wanted.items()) and (
            reference.get("service_model_ref") not in (None, "")
        ):
            return hub_project_external_id(str(reference["service_model_ref"]))
    found = _OPPORTUNITY.search(str((workspace or {}).get("description") or ""))
    return hub_project_external_id(found.group(1)) if found else None


def supplier_country_of(
    record: Mapping[str, Any], legal_entity_code: str | None, home_countries: Mapping[str, str]
) -> str | None:
    found = _COUNTRY.search(str(record.get("notes") or ""))
    if found:
        return found.group(1)
    return home_countries.get(legal_entity_code) if legal_entity_code else None


# -- loaders (vendor value, whole record with its related objects) -> canonical value


def _text(value: Any, _record: Mapping[str, Any]) -> Any:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else value


def _version(value: Any, record: Mapping[str, Any]) -> Any:
    moment = instant_in(value, record.get("_time_zone"))
    return epoch_microseconds(moment) if moment is not None else value


def _legal_entity(workspace: Any, _record: Mapping[str, Any]) -> str | None:
    return legal_entity_of(workspace) if isinstance(workspace, Mapping) else None


def _task(story: Any, _record: Mapping[str, Any]) -> dict[str, Any] | None:
    code = wbs_code_of(story) if isinstance(story, Mapping) else None
    return {"psa_task_id": str(story["id"]), "wbs_code": code} if code is not None else None


def approval_of(record: Mapping[str, Any]) -> tuple[ApprovalStatus, dt.datetime | None]:
    """The approval status of a line item read with its submissions (``_active_submission`` /
    ``_recent_submission``), and the instant it was approved."""
    time_zone = record.get("_time_zone")
    active = record.get("_active_submission") or None
    recent = record.get("_recent_submission") or None
    if is_approved(record):
        if active is not None and active.get("status") == "approved":
            when = active.get("current_resolution_created_at_date") or active.get("updated_at")
        else:  # the project needs no approval: an entry is approved as it is saved
            when = record.get("updated_at")
        return ApprovalStatus.APPROVED, instant_in(when, time_zone)
    latest = active or recent
    status = str(latest.get("status")) if latest is not None else ""
    return SUBMISSION_STATUS.get(status, ApprovalStatus.SUBMITTED), None


def _approval_status(_approved: Any, record: Mapping[str, Any]) -> ApprovalStatus:
    return approval_of(record)[0]


def _approved_at(_approved: Any, record: Mapping[str, Any]) -> dt.datetime | None:
    return approval_of(record)[1]


def _notes(value: Any, _record: Mapping[str, Any]) -> Any:
    return value[:NOTES_MAX] if isinstance(value, str) else value


def hours_from_minutes(minutes: Any, _record: Mapping[str, Any] | None = None) -> Any:
    """Minutes as decimal hours: exact when it is (45 -> 0.75), else to 6 decimal places (50 -> 0.833333)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        return minutes
    hours = Decimal(minutes) / 60
    if minutes % 3 == 0:  # 60 = 2 * 2 * 3 * 5: the quotient is a finite decimal exactly when 3 divides
        return hours
    return hours.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def money_from_subunits(amount: Any, record: Mapping[str, Any]) -> Any:
    """``*_in_cents`` + the record's ``currency`` (and ``currency_base_unit``) -> Money arguments."""
    currency = record.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return {"amount": amount, "currency": currency}
    unit = record.get("currency_base_unit")
    if isinstance(unit, bool) or not isinstance(unit, int) or unit < 1:
        unit = 10 ** _subunit_exponent(currency)
    exponent = len(str(unit)) - 1
    value = Decimal(amount).scaleb(-exponent) if unit == 10**exponent else Decimal(amount) / unit
    return {"amount": value, "currency": currency}


def _category(value: Any, _record: Mapping[str, Any]) -> Any:
    return EXPENSE_CATEGORIES.get(value.strip().casefold(), value) if isinstance(value, str) else value


def _receipt_attached(_id: Any, record: Mapping[str, Any]) -> bool:
    return record.get("receipt_id") not in (None, "")


_LINE = (
    Field("id", "psa_id", load=_text, direction="load"),
    Field("updated_at", "version", load=_version, direction="load"),
    Field("user_id", "worker_id", load=_text, direction="load"),
    Field("_workspace", "legal_entity_code", load=_legal_entity, direction="load"),
    Field("workspace_id", "project.psa_project_id", load=_text, direction="load"),
    Field("_project_external_id", "project.external_id", direction="load"),
    Field("approved", "approval_status", load=_approval_status, direction="load"),
    Field("approved", "approved_at", load=_approved_at, direction="load"),
    Field("notes", "notes", load=_notes, direction="load"),
)

TIME_ENTRY = FieldMap(
    *_LINE,
    Field("_story", "task", load=_task, direction="load"),
    Field("date_performed", "work_date", direction="load"),
    Field("time_in_minutes", "hours", load=hours_from_minutes, direction="load"),
    Field("billable", "billable", direction="load"),
)
"""Kantata time entry (with its related objects, see ``line_context``) -> ``TimeEntry`` arguments."""

EXPENSE = FieldMap(
    *_LINE,
    Field("date", "expense_date", direction="load"),
    Field("category", "category", load=_category, direction="load"),
    Field("amount_in_cents", "gross", load=money_from_subunits, direction="load"),
    Field("_supplier_country", "supplier_country", direction="load"),
    # Read from ``id`` (always there) so a missing ``receipt_id`` still loads, as False.
    Field("receipt_id", "receipt_attached", load=_receipt_attached, load_from=("id",), direction="load"),
    Field("billable", "billable", direction="load"),
)
"""Kantata expense (with its related objects) -> ``ExpenseLine`` arguments."""


@dataclass(frozen=True)
class LineKind:
    """What differs between time entries and expenses as the adapter reads them."""

    label: str
    collection: str
    submissions: str
    line_ids: str
    fields: FieldMap
    model: type[TimeEntry] | type[ExpenseLine]


TIME = LineKind(
    "time entry", "time_entries", "timesheet_submissions", "time_entry_ids", TIME_ENTRY, TimeEntry
)
EXPENSES = LineKind("expense", "expenses", "expense_report_submissions", "expense_ids", EXPENSE, ExpenseLine)


def line_context(
    kind: LineKind,
    record: Mapping[str, Any],
    answer: Any,
    *,
    project_external_id: str | None,
    home_countries: Mapping[str, str] | None = None,
    time_zone: str | None = None,
) -> dict[str, Any]:
    """The related objects a line item is mapped with, from the answer it came in (``include=``)."""
    workspace = included_one(answer, "workspaces", record.get("workspace_id"))
    context: dict[str, Any] = {
        "_workspace": workspace,
        "_story": included_one(answer, "stories", record.get("story_id")),
        "_active_submission": included_one(answer, kind.submissions, record.get("active_submission_id")),
        "_recent_submission": included_one(answer, kind.submissions, record.get("recent_submission_id")),
        "_project_external_id": project_external_id,
        "_time_zone": time_zone,
    }
    if kind is EXPENSES:
        context["_supplier_country"] = supplier_country_of(
            record, legal_entity_of(workspace), home_countries or {}
        )
    return context


def _context_problems(kind: LineKind, source: Mapping[str, Any]) -> list[dict[str, str]]:
    """What the related objects lack, said so that the person who can fix it in Kantata knows what to do."""
    problems: list[dict[str, str]] = []
    workspace = source.get("_workspace")
    workspace_id = source.get("workspace_id")
    if not isinstance(workspace, Mapping):
        problems.append({"field": "project", "problem": f"project {workspace_id} could not be read"})
        return problems
    name = f"project {workspace.get('title')!r} ({workspace_id})"
    if legal_entity_of(workspace) is None:
        problems.append(
            {
                "field": "legal_entity_code",
                "problem": f"{name} names no legal entity: add a line 'pshub:entity:<code>' to its description",
            }
        )
    if source.get("_project_external_id") is None:
        problems.append(
            {
                "field": "project.external_id",
                "problem": f"{name} is not linked to a project of the hub (no pshub external reference, no "
                "pshub:opportunity marker)",
            }
        )
    if source.get("story_id") not in (None, "") and not isinstance(source.get("_story"), Mapping):
        problems.append({"field": "task", "problem": f"task {source.get('story_id')} could not be read"})
    if kind is EXPENSES and source.get("_supplier_country") is None and legal_entity_of(workspace):
        problems.append(
            {
                "field": "supplier_country",
                "problem": "Kantata records no supplier country: add 'pshub:country:<ISO code>' to the expense "
                f"notes, or configure the home country of {legal_entity_of(workspace)}",
            }
        )
    return problems


def line_item(
    kind: LineKind, record: Mapping[str, Any], context: Mapping[str, Any]
) -> TimeEntry | ExpenseLine:
    """A Kantata line item as a canonical entry; ``DataValidationError`` naming every problem when it cannot be
    one (nothing is guessed: the caller parks it with the reasons)."""
    source = {**record, **context}
    problems = _context_problems(kind, source)
    arguments = kind.fields.load(source)
    try:
        entry = kind.model(**arguments)
    except ValidationError as error:
        reported = {p["field"] for p in problems}
        problems += [p for p in field_problems(error) if p["field"] not in reported]
    else:
        if not problems:
            return entry
    raise DataValidationError(
        f"kantata {kind.label} {record.get('id')} cannot be read as a canonical entry",
        problems=problems,
        system="kantata",
        code="unmappable",
    )
