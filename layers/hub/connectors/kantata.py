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

Time and expenses (``PsaTimePort``, read only; the mapping is in ``hub.mapping.kantata``):

- ``approved_time_entries`` / ``approved_expenses`` read a window ``[updated_after, updated_before)`` in two
  passes: (1) approved line items whose ``updated_at`` is in the window; (2) submissions (timesheets, expense
  reports) approved in the window, whose line items are then read by id: Kantata need not move an entry's
  ``updated_at`` when its submission is approved, so an approval that came after the entry's last change is
  found through its submission. An entry is yielded once per call, whichever pass finds it.
- Listings are read with ``limit``/``offset`` pages that overlap by ``PAGE_OVERLAP`` records, and each page must
  contain a record already read at the same place (same id and sort key): when records leave a listing between
  two pages (an approval withdrawn, an entry edited), the offsets shift and a plain offset walk would skip a
  record; here the walk steps back and re-reads instead (``MAX_REWINDS``, then ``TransientError``).
- A record that cannot be mapped (no legal entity on its project, zero minutes, an unknown expense category...)
  raises ``DataValidationError`` with every problem, or, with ``on_unmappable=``, is handed to that callback
  and the walk goes on (the sweep parks it; it never silently disappears).
- ``time_entry`` / ``expense`` re-read one line item with its current approval (withdrawn shows here).
- ``line_items_by_id`` re-reads many line items as they are now (any approval status), ``PAGE_SIZE`` ids a call
  with ``only=`` (the helper the sweep's second pass uses too); ids Kantata does not return are ``missing``
  (deleted), ones it returns but that cannot be mapped are ``unmappable``. A project's external reference is
  read once per call, however many of its entries are asked for.
- ``project_statuses`` / ``task_statuses`` read workspaces / stories by id the same way (archived ones
  included) and map their status (``hub.mapping.kantata_status``); an id Kantata does not return is absent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import httpx

from hub.connectors.http import (
    ApiClient,
    RetryPolicy,
    StaticBearer,
    classify_status,
    parse_json,
    retry_after_of,
)
from hub.connectors.ports import LineItems, LineKind
from hub.errors import DataValidationError, HubError, PermanentError, ThrottledError, TransientError
from hub.mapping import kantata as km
from hub.mapping import kantata_status as ks
from hub.model import BillingSchedule, ExpenseLine, Project, ProjectStatus, TaskStatus, TimeEntry, WbsTask

logger = logging.getLogger("hub.connectors.kantata")

SYSTEM = "kantata"
DEFAULT_BASE_URL = "https://api.mavenlink.com/api/v1"
PAGE_OVERLAP = 10  # records each page of a time or expense listing shares with the page before it
MAX_REWINDS = 20  # steps back one listing may take (records leaving it under the walk) before giving up
LINE_KINDS: dict[str, km.LineKind] = {"time-entry": km.TIME, "expense": km.EXPENSES}


@dataclass(frozen=True)
class Unmappable:
    """A line item the adapter could not map: its kind (``time entry`` / ``expense``), id and the problems."""

    kind: str
    psa_id: str
    error: DataValidationError


OnUnmappable = Callable[[Unmappable], None]


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
    """``PsaPort`` and ``PsaTimePort`` over the Kantata OX API v1 with a stored bearer token."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        system: str = SYSTEM,
        home_countries: Mapping[str, str] | None = None,
        account_time_zone: str = "UTC",
    ) -> None:
        """``home_countries``: legal entity code -> ISO country, the supplier country of an expense whose notes
        name none (Kantata records none). ``account_time_zone``: the account's IANA time zone, for a timestamp
        Kantata would render without an offset (it renders them with one)."""
        self._api = ApiClient(
            client, system=system, base_url=base_url, auth=StaticBearer(token), classify=classify, retry=retry
        )
        self._home_countries = dict(home_countries or {})
        self._time_zone = account_time_zone

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

    # ------------------------------------------------------------------------------ time and expenses

    def approved_time_entries(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: OnUnmappable | None = None,
    ) -> Iterator[TimeEntry]:
        entries = self._approved(km.TIME, updated_after, updated_before, on_unmappable)
        return cast(Iterator[TimeEntry], entries)

    def approved_expenses(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: OnUnmappable | None = None,
    ) -> Iterator[ExpenseLine]:
        lines = self._approved(km.EXPENSES, updated_after, updated_before, on_unmappable)
        return cast(Iterator[ExpenseLine], lines)

    def time_entry(self, psa_id: str) -> TimeEntry:
        return cast(TimeEntry, self._line_item(km.TIME, psa_id))

    def expense(self, psa_id: str) -> ExpenseLine:
        return cast(ExpenseLine, self._line_item(km.EXPENSES, psa_id))

    def _approved(
        self,
        kind: km.LineKind,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: OnUnmappable | None,
    ) -> Iterator[TimeEntry | ExpenseLine]:
        after, before = km.window_bounds(updated_after, updated_before)  # checked now, not at first next()
        return self._approved_in(kind, after, before, on_unmappable)

    def _approved_in(
        self, kind: km.LineKind, after: dt.datetime, before: dt.datetime, on_unmappable: OnUnmappable | None
    ) -> Iterator[TimeEntry | ExpenseLine]:
        if after == before:
            return
        zone = self._time_zone
        done: set[str] = set()
        projects: dict[str, str | None] = {}
        # 1. Approved line items changed in the window.
        for record, answer in self._scan(
            f"/{kind.collection}.json", km.changed_params(after, before), kind.collection, km.change_anchor
        ):
            if record["id"] in done or not km.is_approved(record):
                continue
            if not km.in_window(record.get("updated_at"), after, before, zone):
                continue  # re-checked: a filter Kantata ignored must not widen the window
            done.add(record["id"])
            entry = self._map(kind, record, answer, projects, on_unmappable)
            if entry is not None:
                yield entry
        # 2. Submissions approved in the window: their entries may have changed long before.
        late: dict[str, None] = {}
        for submission, _ in self._scan(
            f"/{kind.submissions}.json",
            km.approvals_params(kind, after),
            kind.submissions,
            km.submission_anchor,
        ):
            if submission.get("status") != "approved":
                continue
            if not km.in_window(submission.get("updated_at"), after, before, zone):
                continue
            late.update((line_id, None) for line_id in km.line_ids(submission, kind) if line_id not in done)
        for record, answer in self._by_id(kind, list(late), approved_only=True):
            if record["id"] in done or not km.is_approved(record):
                continue  # approval withdrawn since: not approved now
            done.add(record["id"])
            entry = self._map(kind, record, answer, projects, on_unmappable)
            if entry is not None:
                yield entry

    def line_items_by_id(self, kind: LineKind, psa_ids: Sequence[str]) -> LineItems:
        line_kind = LINE_KINDS.get(kind)
        if line_kind is None:
            raise ValueError(f"unknown line item kind {kind!r} (expected one of {sorted(LINE_KINDS)})")
        wanted = list(dict.fromkeys(str(psa_id) for psa_id in psa_ids))
        found: dict[str, TimeEntry | ExpenseLine] = {}
        unmappable: dict[str, DataValidationError] = {}
        projects: dict[str, str | None] = {}  # one external reference lookup per project, for the whole call

        def park(item: Unmappable) -> None:
            unmappable[item.psa_id] = item.error

        for record, answer in self._by_id(line_kind, wanted, approved_only=False):
            entry = self._map(line_kind, record, answer, projects, park)
            if entry is not None:
                found[record["id"]] = entry
        missing = tuple(psa_id for psa_id in wanted if psa_id not in found and psa_id not in unmappable)
        return LineItems(found=found, missing=missing, unmappable=unmappable)

    def time_entries_on_days(self, worker_days: Iterable[tuple[str, dt.date]]) -> list[TimeEntry]:
        """Every time entry of these workers on these days, whatever its approval: one listing per day (of
        that day's workers, ``PAGE_SIZE`` users a call), so a worker's day is checked whole however its
        entries were batched. Entries that do not map are left out (they are parked when they come to post)."""
        by_day: dict[dt.date, set[str]] = defaultdict(set)
        for worker_id, day in worker_days:
            by_day[day].add(str(worker_id))
        projects: dict[str, str | None] = {}
        found: dict[str, TimeEntry] = {}
        for day, workers in sorted(by_day.items()):
            users = sorted(workers)
            for start in range(0, len(users), km.PAGE_SIZE):
                params = {
                    **km.worker_day_params(users[start : start + km.PAGE_SIZE], day),
                    "per_page": km.PAGE_SIZE,
                }
                for answer in self._pages("/time_entries.json", partial(_on_page, params)):
                    for record in km.records(answer, km.TIME.collection):
                        entry = self._map(km.TIME, record, answer, projects, lambda _: None)
                        if (
                            isinstance(entry, TimeEntry)
                            and entry.work_date == day
                            and entry.worker_id in workers
                        ):
                            found[entry.psa_id] = entry
        return list(found.values())

    def project_statuses(self, psa_project_ids: Sequence[str]) -> dict[str, ProjectStatus]:
        return {
            record["id"]: ks.project_status_of(record)
            for record, _ in self._only(
                "/workspaces.json", "workspaces", psa_project_ids, ks.workspace_status_params
            )
        }

    def task_statuses(self, psa_task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        return {
            record["id"]: ks.task_status_of(record)
            for record, _ in self._only("/stories.json", "stories", psa_task_ids, ks.story_status_params)
        }

    def _by_id(
        self, kind: km.LineKind, ids: Sequence[str], *, approved_only: bool
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Line items by id with what they are mapped with (``approved_only``: only approved ones)."""
        return self._only(
            f"/{kind.collection}.json",
            kind.collection,
            ids,
            lambda chunk: km.only_params(chunk, approved_only=approved_only),
        )

    def _only(
        self,
        path: str,
        collection: str,
        ids: Sequence[str],
        params_for: Callable[[list[str]], dict[str, Any]],
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Records of a collection by id, ``PAGE_SIZE`` ids a call with ``only=`` (one page holds a chunk's
        records, so a chunk is one call), each once, with the answer it came in. Records Kantata returns that
        were not asked for (a filter it ignored) are dropped."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        emitted: set[str] = set()
        for start in range(0, len(wanted), km.PAGE_SIZE):
            chunk = wanted[start : start + km.PAGE_SIZE]
            asked = set(chunk)
            params = {**params_for(chunk), "per_page": km.PAGE_SIZE}
            for answer in self._pages(path, partial(_on_page, params)):
                for record in km.records(answer, collection):
                    if record["id"] in asked and record["id"] not in emitted:
                        emitted.add(record["id"])
                        yield record, answer

    def _line_item(self, kind: km.LineKind, psa_id: str) -> TimeEntry | ExpenseLine:
        answer = self._call(
            "GET",
            f"/{kind.collection}/{{id}}.json",
            path_params={"id": psa_id},
            params=km.member_params(),
        )
        found = [r for r in km.records(answer, kind.collection) if r["id"] == str(psa_id)]
        if not found:
            raise PermanentError(f"kantata has no {kind.label} {psa_id}", system=SYSTEM, code="not_found")
        entry = self._map(kind, found[0], answer, {}, None)
        assert entry is not None  # without on_unmappable, _map raises instead
        return entry

    def _map(
        self,
        kind: km.LineKind,
        record: dict[str, Any],
        answer: Any,
        projects: dict[str, str | None],
        on_unmappable: OnUnmappable | None,
    ) -> TimeEntry | ExpenseLine | None:
        workspace_id = str(record.get("workspace_id") or "")
        if workspace_id and workspace_id not in projects:
            workspace = km.included_one(answer, "workspaces", workspace_id)
            references = list(
                self._walk(
                    "/external_references.json",
                    lambda page: km.workspace_reference_params(workspace_id, page),
                    "external_references",
                )
            )
            mine: list[Mapping[str, Any]] = [
                r for r in references if str(r.get("subject_id")) == workspace_id
            ]
            projects[workspace_id] = km.project_external_id_of(mine, workspace)
        context = km.line_context(
            kind,
            record,
            answer,
            project_external_id=projects.get(workspace_id),
            home_countries=self._home_countries,
            time_zone=self._time_zone,
        )
        try:
            return km.line_item(kind, record, context)
        except DataValidationError as error:
            if on_unmappable is None:
                raise
            logger.warning(
                "kantata line item cannot be mapped; handed to the caller",
                extra={"system": SYSTEM, "kind": kind.label, "fields": [p["field"] for p in error.problems]},
            )
            on_unmappable(Unmappable(kind=kind.label, psa_id=str(record.get("id")), error=error))
            return None

    def _scan(
        self,
        path: str,
        params: dict[str, Any],
        collection: str,
        anchor: Callable[[dict[str, Any]], Hashable],
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Every record of a listing once, with the answer it came in, safe against records leaving the listing
        while it is walked.

        Pages of ``PAGE_SIZE`` overlap by ``PAGE_OVERLAP``. A page after the first must contain a record already
        read with the same anchor (id and sort key): then every record sorted before the page's end has been
        read (records only move later in the order or leave it while the walk runs; ones that arrive are
        changes after the window's start that the next window reads). A page without one means records left the
        listing and the offsets slid past unread records: the walk steps back a page and reads again.
        """
        stride = km.PAGE_SIZE - PAGE_OVERLAP
        offset = 0
        rewinds = 0
        anchors: set[Hashable] = set()
        emitted: set[str] = set()
        while True:
            answer = self._call("GET", path, params={**params, "limit": km.PAGE_SIZE, "offset": offset})
            rows = km.records(answer, collection)
            keys = {anchor(row) for row in rows}
            if offset > 0 and not keys & anchors:
                rewinds += 1
                if rewinds > MAX_REWINDS:
                    raise TransientError(
                        f"kantata {collection} kept changing while being read",
                        system=SYSTEM,
                        code="unstable_list",
                    )
                logger.info("kantata listing moved while read; stepping back", extra={"system": SYSTEM})
                offset = max(0, offset - stride)
                continue
            anchors |= keys
            for row in rows:
                if row["id"] not in emitted:
                    emitted.add(row["id"])
                    yield row, answer
            if len(rows) < km.PAGE_SIZE:
                return
            offset += stride

    # -------------------------------------------------------------------------------------------- helpers

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return parse_json(self._api.request(method, path, **kwargs))

    def _walk(
        self, path: str, params_for: Callable[[int], dict[str, Any]], collection: str
    ) -> Iterator[dict[str, Any]]:
        for answer in self._pages(path, params_for):
            yield from km.records(answer, collection)

    def _pages(self, path: str, params_for: Callable[[int], dict[str, Any]]) -> Iterator[Any]:
        """Every page of a listing (``page``/``per_page``), as Kantata answered it."""
        page = 1
        while True:
            answer = self._call("GET", path, params=params_for(page))
            yield answer
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


def _on_page(params: dict[str, Any], page: int) -> dict[str, Any]:
    return {**params, "page": page}


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
