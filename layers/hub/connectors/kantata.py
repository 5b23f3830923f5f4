"""Kantata OX (PSA) adapter: project shell, WBS and billing schedule, each created once however often it runs.

Idempotency is built from what Kantata itself holds, so it survives retries, crashes and redrives:

- ``ensure_project``: (1) the external reference linking a workspace to the opportunity
  (``GET /external_references``); else (2) a workspace carrying the hub's marker in its description but no
  link (left by an older run or a vendor that dropped the embedded reference), linked now; else (3) a new
  workspace created *with* its external reference embedded, so the link exists as soon as the workspace
  does. Links are made with ``POST /external_references/create_or_update`` (one reference per subject and
  service: replaying it updates, never duplicates). If concurrent runs each linked a workspace, every run
  settles on the first one. Creating a workspace is never replayed after an ambiguous failure (timeout,
  5xx): the next run finds it by its reference instead.
- ``ensure_wbs``: every story of the project is listed (all pages) and matched on ``pshub:wbs:{code}``; only
  the missing ones are created, parents first.
- ``ensure_billing_schedule``: the project's billing milestones (``billing_milestones``, listed with
  ``workspace_ids=``) are matched on their title ``{code} - {name}``.

Listed records are re-checked on the client (workspace, reference keys): Kantata ignores filters it does not
know, so a misspelt filter would otherwise match another project's records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from hub.connectors.http import (
    ApiClient,
    RetryPolicy,
    StaticBearer,
    classify_status,
    parse_json,
    retry_after_of,
)
from hub.errors import DataValidationError, HubError, PermanentError, ThrottledError, TransientError
from hub.mapping import kantata as km
from hub.model import BillingSchedule, Project, WbsTask

logger = logging.getLogger("hub.connectors.kantata")

SYSTEM = "kantata"
DEFAULT_BASE_URL = "https://api.mavenlink.com/api/v1"


def classify(response: httpx.Response) -> HubError | None:
    """Kantata's answer onto the taxonomy (status-driven; 422 names the fields from ``errors[].field``; 400
    is a missing or empty parameter). 429 may come without ``Retry-After``: the retry policy backs off."""
    status = response.status_code
    if status < 300:
        return None
    if status in (400, 422):
        problems = km.validation_problems(parse_json(response))
        return DataValidationError(
            "kantata rejected the data", problems=problems, system=SYSTEM, code=str(status)
        )
    if status == 429:
        return ThrottledError(
            "kantata rate limit", retry_after=retry_after_of(response), system=SYSTEM, code="429"
        )
    if status in (401, 403):
        return PermanentError(f"kantata refused the token ({status})", system=SYSTEM, code=str(status))
    return classify_status(response, system=SYSTEM)


class KantataPsa:
    """``PsaPort`` over the Kantata OX API v1 with a stored bearer token."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        system: str = SYSTEM,
    ) -> None:
        self._api = ApiClient(
            client, system=system, base_url=base_url, auth=StaticBearer(token), classify=classify, retry=retry
        )

    # -------------------------------------------------------------------------------------------- project

    def ensure_project(self, project: Project) -> str:
        crm_id = project.opportunity_crm_id
        linked = self._linked_workspace(crm_id)
        if linked is not None:
            return linked
        workspace_id = self._marked_workspace(crm_id)
        if workspace_id is None:
            # The reference is embedded: Kantata creates the link with the workspace, in the same call.
            answer = self._call("POST", "/workspaces.json", json=km.workspace_body(project))
            workspace_id = self._created(answer, "workspaces")
        else:
            self._link(workspace_id, crm_id)
        # Re-read: if concurrent runs each linked a workspace, every run settles on the first one.
        winner = self._linked_workspace(crm_id)
        if winner is None:
            # The embedded reference did not take: link explicitly rather than leave an orphan.
            self._link(workspace_id, crm_id)
            winner = workspace_id
        if winner != workspace_id:
            logger.warning(
                "another run linked a workspace to this opportunity first; using it",
                extra={"system": SYSTEM, "orphan_workspace_id": workspace_id, "workspace_id": winner},
            )
        return winner

    def _link(self, workspace_id: str, opportunity_crm_id: str) -> None:
        # create_or_update keeps one reference per workspace and service: safe to replay.
        self._call(
            "POST",
            "/external_references/create_or_update.json",
            json=km.external_reference_body(workspace_id, opportunity_crm_id),
            idempotent=True,
        )

    def _linked_workspace(self, opportunity_crm_id: str) -> str | None:
        """The workspace the opportunity's external reference points at (the first one, if several)."""
        wanted = km.external_reference_params(opportunity_crm_id)
        references = self._walk(
            "/external_references.json",
            lambda page: {**wanted, "per_page": km.PAGE_SIZE, "page": page},
            "external_references",
        )
        subjects = [
            str(ref["subject_id"]) for ref in references if km.references_workspace(ref, opportunity_crm_id)
        ]
        return min(subjects, key=_id_order) if subjects else None

    def _marked_workspace(self, opportunity_crm_id: str) -> str | None:
        """A workspace that carries the hub's marker but no link (re-checked client-side: the search is only a
        pre-filter, and a vendor that ignores it lists every workspace)."""
        marker = km.project_marker(opportunity_crm_id)
        workspaces = self._walk(
            "/workspaces.json",
            lambda page: km.workspace_search_params(opportunity_crm_id, page),
            "workspaces",
        )
        found = [w["id"] for w in workspaces if km.carries_marker(w.get("description"), marker)]
        return min(found, key=_id_order) if found else None

    # ------------------------------------------------------------------------------------------------ WBS

    def ensure_wbs(self, psa_project_id: str, wbs: tuple[WbsTask, ...]) -> dict[str, str]:
        ordered = _parents_first(wbs)
        existing: dict[str, str] = {}
        for story in self._walk(
            "/stories.json", lambda page: km.story_params(psa_project_id, page), "stories"
        ):
            if not km.belongs_to(story, psa_project_id):
                continue
            code = km.wbs_code_of(story)
            if code is not None and (
                code not in existing or _id_order(story["id"]) < _id_order(existing[code])
            ):
                existing[code] = story["id"]
        ids: dict[str, str] = {}
        for task in ordered:
            if task.code in existing:
                ids[task.code] = existing[task.code]
                continue
            parent_id = None
            if task.parent_code is not None:
                parent_id = ids.get(task.parent_code) or existing.get(task.parent_code)
            answer = self._call("POST", "/stories.json", json=km.story_body(psa_project_id, task, parent_id))
            ids[task.code] = self._created(answer, "stories")
        return ids

    # -------------------------------------------------------------------------------------------- billing

    def ensure_billing_schedule(
        self, psa_project_id: str, schedule: BillingSchedule, task_ids: dict[str, str]
    ) -> list[str]:
        existing: dict[str, str] = {}
        for item in self._walk(
            "/billing_milestones.json",
            lambda page: km.billing_milestone_params(psa_project_id, page),
            "billing_milestones",
        ):
            if not km.belongs_to(item, psa_project_id):
                continue
            # Matched on the milestone code that starts the title, not the whole title: a line item renamed
            # or a date moved between a park and its redrive must not create a second billing milestone.
            code = km.billing_milestone_code(str(item.get("title") or ""))
            if code not in existing or _id_order(item["id"]) < _id_order(existing[code]):
                existing[code] = item["id"]
        ids: list[str] = []
        for milestone in schedule.milestones:
            if milestone.code in existing:
                ids.append(existing[milestone.code])
                continue
            story_id = None
            if milestone.wbs_code is not None:
                story_id = task_ids.get(milestone.wbs_code)
                if story_id is None:
                    raise DataValidationError(
                        "milestone points at a WBS task the project does not have",
                        problems=[
                            {"field": f"milestones[{milestone.code}].wbs_code", "problem": "unknown WBS code"}
                        ],
                        system=SYSTEM,
                    )
            answer = self._call(
                "POST",
                "/billing_milestones.json",
                json=km.billing_milestone_body(psa_project_id, milestone, story_id),
            )
            created = self._created(answer, "billing_milestones")
            existing[milestone.code] = created
            ids.append(created)
        return ids

    # -------------------------------------------------------------------------------------------- helpers

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return parse_json(self._api.request(method, path, **kwargs))

    def _walk(
        self, path: str, params_for: Callable[[int], dict[str, Any]], collection: str
    ) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self._call("GET", path, params=params_for(page))
            yield from km.records(answer, collection)
            if not km.has_more_pages(answer, page):
                return
            page += 1

    @staticmethod
    def _created(answer: Any, collection: str) -> str:
        created = km.created_id(answer, collection)
        if created is None:
            raise TransientError(
                f"kantata answered a create without {collection}", system=SYSTEM, code="bad_body"
            )
        return created


def _id_order(value: str) -> tuple[int, int | str]:
    """Kantata ids are increasing integers: the lowest is the first created (strings after, for safety)."""
    return (0, int(value)) if value.isdigit() else (1, value)


def _parents_first(wbs: tuple[WbsTask, ...]) -> list[WbsTask]:
    """The tasks ordered parents before children; unknown parents and cycles are data errors."""
    by_code: dict[str, WbsTask] = {}
    problems: list[dict[str, str]] = []
    for task in wbs:
        if task.code in by_code:
            problems.append({"field": f"wbs[{task.code}].code", "problem": "duplicate WBS code"})
        by_code[task.code] = task
    for task in wbs:
        if task.parent_code is not None and task.parent_code not in by_code:
            problems.append({"field": f"wbs[{task.code}].parent_code", "problem": "parent not in the WBS"})
    if problems:
        raise DataValidationError("the WBS is inconsistent", problems=problems, system=SYSTEM)
    ordered: list[WbsTask] = []
    state: dict[str, str] = {}

    def visit(task: WbsTask) -> None:
        mark = state.get(task.code)
        if mark == "done":
            return
        if mark == "visiting":
            raise DataValidationError(
                "the WBS has a cycle",
                problems=[{"field": f"wbs[{task.code}].parent_code", "problem": "cycle"}],
                system=SYSTEM,
            )
        state[task.code] = "visiting"
        if task.parent_code is not None:
            visit(by_code[task.parent_code])
        state[task.code] = "done"
        ordered.append(task)

    for task in wbs:
        visit(task)
    return ordered
