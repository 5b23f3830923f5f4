"""Canonical -> Kantata OX request bodies, and Kantata answers -> records and ids.

Kantata answers ``{"count", "results": [{"key", "id"}], "<collection>": {"<id>": {...}}, "meta": {...}}``:
``results`` gives the order, the collection holds the records by id.

The hub marks what it creates so a re-run finds it instead of creating it twice:
- a project (workspace) is linked to the opportunity by an external reference (service ``pshub``, model
  ``Opportunity``) embedded in the create call, and carries ``pshub:opportunity:{opportunity id}`` in its
  description as a safety net;
- a WBS task (story) carries ``pshub:wbs:{code}`` as its description;
- a billing milestone is titled ``{milestone code} - {milestone name}``.

Money: Kantata's ``*_in_cents`` fields count the currency's subunits (its ``currency_base_unit``: 100 for most
currencies, 1 for zero-decimal ones such as JPY); a workspace's budget is created with ``price`` in currency
units (``price_in_cents`` is read-only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hub.mapping.fields import Field, FieldMap, date_out, lookup
from hub.model import Milestone, Money, Project, WbsTask

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
        f"{marker}\nCreated by the integration hub; keep the line above so re-runs find this project."
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
