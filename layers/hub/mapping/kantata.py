"""Canonical -> Kantata OX request bodies, and Kantata answers -> records and ids.

Kantata answers ``{"count", "results": [{"key", "id"}], "<collection>": {"<id>": {...}}, "meta": {...}}``:
``results`` gives the order, the collection holds the records by id.

The hub marks what it creates so a re-run finds it instead of creating it twice:
- a project (workspace) carries ``pshub:opportunity:{opportunity id}`` in its description, and is linked to
  the opportunity by an external reference (service ``pshub``, model ``Opportunity``);
- a WBS task (story) carries ``pshub:wbs:{code}`` as its description;
- a billing item (fixed fee item) is titled ``{milestone code} - {milestone name}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hub.mapping.fields import Field, FieldMap, date_out, lookup, money_cents_out
from hub.model import Milestone, Project, WbsTask

SERVICE_NAME = "pshub"
SERVICE_MODEL = "Opportunity"
SUBJECT_TYPE = "Workspace"
REFERENCE_STATUS = "synced"
PAGE_SIZE = 200  # Kantata's maximum per_page

STORY_TYPES = {"phase": "deliverable", "task": "task", "milestone": "milestone"}
"""Canonical WBS kind -> Kantata ``story_type``."""

WORKSPACE = FieldMap(
    Field("title", "name"),
    Field("currency", "currency"),
    Field("start_date", "start_date", dump=date_out),
    Field("due_date", "end_date", dump=date_out),
    Field("price_in_cents", "contract_value", dump=money_cents_out),
    constants={"budgeted": True},
)

STORY = FieldMap(
    Field("title", "name"),
    Field("story_type", "kind", dump=lookup(STORY_TYPES)),
    Field("start_date", "start_date", dump=date_out),
    Field("due_date", "due_date", dump=date_out),
    Field("budget_estimate_in_cents", "budget", dump=money_cents_out),
)

FIXED_FEE_ITEM = FieldMap(
    Field("amount_in_cents", "amount", dump=money_cents_out),
    Field("date", "due_date", dump=date_out),
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


def fixed_fee_item_title(milestone: Milestone) -> str:
    return f"{milestone.code} - {milestone.name}"


# --------------------------------------------------------------------------------------------- requests


def kantata_id(value: str) -> int | str:
    """Kantata documents ids as integers in request bodies; its answers carry them as strings."""
    return int(value) if value.isdigit() else value


def workspace_search_params(opportunity_crm_id: str, page: int = 1) -> dict[str, Any]:
    marker = project_marker(opportunity_crm_id)
    return {"search": f"description:'{marker}'", "per_page": PAGE_SIZE, "page": page}


def workspace_body(project: Project) -> dict[str, Any]:
    marker = project_marker(project.opportunity_crm_id)
    description = (
        f"{marker}\nCreated by the integration hub; keep the line above so re-runs find this project."
    )
    return {"workspace": {**WORKSPACE.dump(project), "description": description}}


def external_reference_params(opportunity_crm_id: str) -> dict[str, Any]:
    return {
        "subject_type": SUBJECT_TYPE,
        "service_name": SERVICE_NAME,
        "service_model": SERVICE_MODEL,
        "service_model_ref": opportunity_crm_id,
    }


def external_reference_body(workspace_id: str, opportunity_crm_id: str) -> dict[str, Any]:
    return {
        "external_reference": {
            "subject_type": SUBJECT_TYPE,
            "subject_id": kantata_id(workspace_id),
            "service_name": SERVICE_NAME,
            "service_model": SERVICE_MODEL,
            "service_model_ref": opportunity_crm_id,
            "status": REFERENCE_STATUS,
        }
    }


def story_params(workspace_id: str, page: int = 1) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "per_page": PAGE_SIZE, "page": page}


def story_body(workspace_id: str, task: WbsTask, parent_id: str | None) -> dict[str, Any]:
    story: dict[str, Any] = {"workspace_id": kantata_id(workspace_id), **STORY.dump(task)}
    if parent_id is not None:
        story["parent_id"] = kantata_id(parent_id)
    story["description"] = wbs_marker(task.code)
    return {"story": story}


def fixed_fee_item_params(workspace_id: str, page: int = 1) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "per_page": PAGE_SIZE, "page": page}


def fixed_fee_item_body(workspace_id: str, milestone: Milestone, story_id: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"workspace_id": kantata_id(workspace_id)}
    if story_id is not None:
        item["story_id"] = kantata_id(story_id)
    item["title"] = fixed_fee_item_title(milestone)
    item.update(FIXED_FEE_ITEM.dump(milestone))
    return {"fixed_fee_item": item}


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
