"""Kantata OX (PSA) simulator: API v1 workspaces, stories, billing milestones and external references.

Simulated vendor behaviour (Kantata OX API documentation, developer.kantata.com):

* base `/api/v1`, every path with or without `.json`; `Authorization: Bearer` required, otherwise 401
  `{"errors":[{"type":"oauth","message":"Invalid OAuth 2 Request"}]}`.
* the response format of every read and write: `count`, `results` ([{key, id}] in order), the collection keyed
  by id (ids are strings), and `meta` {count, page_count, page_number, page_size}.
* pagination `page`/`per_page` (default 20, at most 200; a smaller or junk value falls back to 20) or
  `limit`/`offset` when both are given; `only=1,2` fetches by id without 404s; unknown filters are ignored.
* errors: `{"errors":[{"type":"validation","field":..,"message":..}]}` with 422 for model validation, `system`
  errors for 400/404/429/5xx.
* `POST /workspaces` (title required; `price` is required for budgeted projects; an embedded
  `external_reference` is created with the project), `GET /workspaces[/{id}]`.
* `GET|POST /stories` (story_type task | milestone | deliverable | issue; bulk create with a `stories` list;
  archived stories listed only with `archived=include|only`), `GET /stories/{id}`.
* a workspace's `status` is `{color, key, message}` (new ones: grey / 300 / "Not Started"); a story's `state` is
  `not started | started | needs info | completed` (issues: `new | reopened | in progress | blocked | fixed |
  duplicate | can't repro | resolved | won't fix`). Both are changed through the admin surface
  (`set_workspace_status`, `archive_workspace`, `set_story_state`, `archive_story`, or `seed()`).
* `GET|POST /billing_milestones` (the project's billing schedule; money as `amount_in_cents`; list filter
  `workspace_ids`).
* `GET /external_references` (`subject_type` required) and `POST /external_references/create_or_update`:
  one reference per subject and `service_name` (a second one for the same subject and service updates it);
  `status` is pending | successful | failed. `DELETE /external_references/{id}`.
* creates answer 200 (as documented), not 201. 429 when throttled or over the concurrency limit.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from local.sandboxes.base import Call, Faults, Sandbox, json_response, utc_now
from local.sandboxes.kantata_common import (
    DEFAULT_PER_PAGE,
    _as_dict,
    _blank,
    _collection,
    _date_errors,
    _decimal,
    _id_list,
    _id_text,
    _invalid,
    _is_date,
    _items,
    _matches,
    _member,
    _now,
    _param,
    _system_error,
    _truthy,
    _validation,
    _window,
)
from local.sandboxes.kantata_resources import ResourcesMixin
from local.sandboxes.kantata_time import TimeExpenseMixin

STORY_TYPES = ("task", "milestone", "deliverable", "issue")
CREATOR_ROLES = ("maven", "consultant", "buyer", "client")
REFERENCE_STATUSES = ("pending", "successful", "failed")
BILLING_TYPES = ("fixed_date", "upon_completion")
SUBJECT_TYPES = (
    "Assignment",
    "BillingMilestone",
    "CustomField",
    "CustomFieldChoice",
    "CustomFieldSet",
    "CustomFieldValue",
    "Estimate",
    "EstimateScenario",
    "EstimateScenarioResource",
    "Expense",
    "ExpenseBudget",
    "Invoice",
    "Participation",
    "Post",
    "RateCard",
    "Role",
    "Skill",
    "StatusReport",
    "Story",
    "StoryAllocationDay",
    "Submission",
    "SurveyAnswer",
    "SurveyQuestion",
    "SurveyResponse",
    "SurveyTemplate",
    "TimeEntry",
    "TimeOffEntry",
    "User",
    "Vendor",
    "Workspace",
    "WorkspaceAllocation",
    "WorkspaceGroup",
    "WorkspaceResource",
)
# currency -> subunits per unit (the workspace's currency_base_unit)
CURRENCIES = {
    "USD": 100,
    "EUR": 100,
    "GBP": 100,
    "CAD": 100,
    "AUD": 100,
    "NZD": 100,
    "CHF": 100,
    "SEK": 100,
    "NOK": 100,
    "DKK": 100,
    "SGD": 100,
    "INR": 100,
    "ZAR": 100,
    "JPY": 1,
}
MAX_STORY_DEPTH = 4
TASK_STATES = ("not started", "started", "needs info", "completed")
ISSUE_STATES = (
    "new",
    "reopened",
    "in progress",
    "blocked",
    "fixed",
    "duplicate",
    "can't repro",
    "resolved",
    "won't fix",
)
# Project status label -> color (Kantata: gray not yet started, light green close to starting, green in progress,
# yellow in progress with a pending action, red a blocker or ended, blue finished). Only "Not Started" = 300 is a
# known status key; the colors of "On Hold" and "Cancelled" are assumptions.
PROJECT_STATUS_COLORS = {
    "Not Started": "grey",
    "In Progress": "green",
    "On Hold": "yellow",
    "Completed": "blue",
    "Cancelled": "red",
}
PROJECT_STATUS_KEYS = {"Not Started": "300"}


class KantataSandbox(ResourcesMixin, TimeExpenseMixin, Sandbox):
    """One Kantata OX account.

    Args:
        tokens: bearer tokens the account accepts (OAuth tokens obtained out of band).
        account_currency: the currency a budgeted workspace gets when none is given.
        retry_after_seconds: the `Retry-After` sent with 429 answers (None to send none).
        faults / concurrency_limit: see `Sandbox`; over the limit answers 429.
        id_seed: seed of the id generator, so ids are repeatable.
        time_zone: the account's time zone (IANA name); time entry, expense and submission timestamps are
            rendered in it, and a `updated_after` without an offset is read in it.
        clock: the time source of those timestamps (default: the wall clock, UTC); see also `advance_clock`.
        approval_bumps_entry_updated_at: whether approving / rejecting / cancelling a submission also moves the
            `updated_at` of its entries. Kantata does not document it; the default (False) is the cautious
            assumption: a sweep that only watches entries' `updated_at` then misses late approvals.
    """

    vendor = "kantata"

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("kantata-sandbox-token",),
        account_currency: str = "USD",
        retry_after_seconds: int | None = 1,
        faults: Faults | None = None,
        concurrency_limit: int | None = None,
        id_seed: int = 0,
        time_zone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        approval_bumps_entry_updated_at: bool = False,
    ) -> None:
        self.initial_tokens = tuple(tokens)
        self.account_currency = account_currency
        self.retry_after_seconds = retry_after_seconds
        self.id_seed = id_seed
        self.time_zone = time_zone
        self._clock = clock or utc_now
        self.approval_bumps_entry_updated_at = approval_bumps_entry_updated_at
        super().__init__(faults=faults, concurrency_limit=concurrency_limit)

    # ------------------------------------------------------------------ state and routes
    def _reset_state(self) -> None:
        self._tokens = set(self.initial_tokens)
        self._workspaces: dict[str, dict[str, Any]] = {}
        self._stories: dict[str, dict[str, Any]] = {}
        self._milestones: dict[str, dict[str, Any]] = {}
        self._references: dict[str, dict[str, Any]] = {}
        rng = random.Random(self.id_seed)
        self._id_rng = rng
        self._next_id = {
            "workspaces": rng.randrange(30_000_000, 40_000_000),
            "stories": rng.randrange(800_000_000, 900_000_000),
            "billing_milestones": rng.randrange(5_000_000, 6_000_000),
            "external_references": rng.randrange(70_000_000, 80_000_000),
        }
        self._reset_time_expense()

    def _register_routes(self) -> None:
        self.route("GET", _collection("workspaces"), self._list_workspaces)
        self.route("POST", _collection("workspaces"), self._create_workspace)
        self.route("GET", _member("workspaces"), self._get_workspace)
        self.route("GET", _collection("stories"), self._list_stories)
        self.route("POST", _collection("stories"), self._create_stories)
        self.route("GET", _member("stories"), self._get_story)
        self.route("GET", _collection("billing_milestones"), self._list_milestones)
        self.route("POST", _collection("billing_milestones"), self._create_milestones)
        self.route("GET", _collection("external_references"), self._list_references)
        self.route(
            "POST", _collection("external_references/create_or_update"), self._create_or_update_reference
        )
        self.route("DELETE", _member("external_references"), self._delete_reference)
        self._register_time_expense_routes()

    # ------------------------------------------------------------------ vendor answers
    def authorize(self, call: Call) -> httpx.Response | None:
        if call.bearer_token() not in self._tokens:
            return json_response(
                401,
                {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]},
                content_type="application/json; charset=utf-8",
            )
        return None

    def not_found_response(self, call: Call) -> httpx.Response:
        return _system_error(404, "Page Not Found")

    def throttled_response(self, call: Call) -> httpx.Response:
        headers = {} if self.retry_after_seconds is None else {"Retry-After": str(self.retry_after_seconds)}
        return _system_error(
            429, "Too many requests. Please retry your request after a small delay.", headers
        )

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return self.throttled_response(call)

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        message = (
            "Service is unavailable" if status == 503 else "Something went wrong. Please try again later."
        )
        return _system_error(status, message)

    # ------------------------------------------------------------------ workspaces
    def _create_workspace(self, call: Call) -> httpx.Response:
        data = _param(call, "workspace")
        values, errors = self._workspace_values(data)
        reference = data.get("external_reference")
        if reference is not None:
            errors += self._reference_errors(
                {**_as_dict(reference), "subject_type": "Workspace", "subject_id": 0},
                check_subject=False,
                prefix="external_reference.",
            )
        if errors:
            raise _validation(errors)
        with self._lock:
            workspace = self._insert_workspace(values)
            if reference is not None:
                self._upsert_reference(
                    {**reference, "subject_type": "Workspace", "subject_id": int(workspace["id"])}
                )
        return self._envelope("workspaces", [workspace])

    def _workspace_values(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        if _blank(data.get("title")):
            errors.append(_invalid("title", "Please give your project a title"))
        creator_role = data.get("creator_role", "maven")
        if creator_role not in CREATOR_ROLES:
            errors.append(_invalid("creator_role", "Please select a role for this project"))
        budgeted = _truthy(data.get("budgeted", True))
        currency = data.get("currency") or self.account_currency
        if currency not in CURRENCIES:
            errors.append(_invalid("currency", "Currency is not included in the list"))
        price = _decimal(data.get("price"))
        if budgeted and _blank(data.get("price")):
            errors.append(_invalid("price", "Price is required for a budgeted project"))
        elif not _blank(data.get("price")) and price is None:
            errors.append(_invalid("price", "Price is not a number"))
        errors += _date_errors(data, "start_date", "due_date")
        unit = CURRENCIES.get(currency, 100)
        values = {
            "title": data.get("title"),
            "description": data.get("description") or "",
            "budgeted": budgeted,
            "currency": currency,
            "currency_symbol": currency,
            "currency_base_unit": unit,
            "price": f"{price:.2f}" if budgeted and price is not None else None,
            "price_in_cents": int(price * unit) if budgeted and price is not None else None,
            "start_date": data.get("start_date"),
            "due_date": data.get("due_date"),
            "effective_due_date": data.get("due_date"),
            "creator_role": creator_role,
        }
        return values, errors

    def _insert_workspace(self, values: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        workspace = {
            "id": self._take_id("workspaces"),
            **values,
            "archived": False,
            "percentage_complete": 0,
            "over_budget": False,
            "access_level": "invitation",
            "status": {"color": "grey", "key": "300", "message": "Not Started"},
            "created_at": now,
            "updated_at": now,
        }
        self._workspaces[workspace["id"]] = workspace
        return workspace

    def _get_workspace(self, call: Call) -> httpx.Response:
        with self._lock:
            workspace = self._workspaces.get(call.params["id"])
            if workspace is None or workspace["archived"]:
                return self.not_found_response(call)
            return self._envelope("workspaces", [workspace])

    def _list_workspaces(self, call: Call) -> httpx.Response:
        """Archived projects are left out unless `archived=include|only` or `include_archived=true`."""
        default = "include" if _truthy(call.query.get("include_archived")) else "exclude"
        archived = call.query.get("archived", default)
        keep = {"include": lambda w: True, "only": lambda w: w["archived"]}.get(
            archived, lambda w: not w["archived"]
        )
        with self._lock:
            rows = [w for w in self._workspaces.values() if keep(w)]
            return self._paginated(call, "workspaces", rows)

    # ------------------------------------------------------------------ stories
    def _create_stories(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "story", "stories", limit=300)
        with self._lock:
            prepared = [self._story_values(item, index if bulk else None) for index, item in enumerate(items)]
            errors = [e for _, item_errors in prepared for e in item_errors]
            if errors:
                raise _validation(errors)
            stories = [self._insert_story(values) for values, _ in prepared]
        return self._envelope("stories", stories)

    def _story_values(self, data: Mapping[str, Any], index: int | None) -> tuple[dict[str, Any], list[dict]]:
        errors: list[dict[str, Any]] = []
        if _blank(data.get("title")):
            errors.append(_invalid("title", "Title can't be blank", index))
        workspace_id = _id_text(data.get("workspace_id"))
        if workspace_id is None:
            errors.append(_invalid("workspace_id", "Workspace can't be blank", index))
        elif workspace_id not in self._workspaces:
            errors.append(_invalid("workspace_id", "Workspace must exist", index))
        story_type = data.get("story_type", "task")
        if story_type not in STORY_TYPES:
            errors.append(_invalid("story_type", "Story type is not included in the list", index))
        parent = self._stories.get(_id_text(data.get("parent_id")) or "")
        if data.get("parent_id") is not None:
            if parent is None or parent["workspace_id"] != workspace_id:
                errors.append(_invalid("parent_id", "Parent must be a task in the same project", index))
            elif parent["ancestry_depth"] >= MAX_STORY_DEPTH:
                errors.append(_invalid("parent_id", "Subtasks can only be nested 4 levels deep", index))
        budget = data.get("budget_estimate_in_cents")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
            errors.append(
                _invalid("budget_estimate_in_cents", "Budget estimate in cents is not a number", index)
            )
        errors += [
            {**e, **({"index": index} if index is not None else {})}
            for e in _date_errors(data, "start_date", "due_date")
        ]
        ancestors = [*parent["ancestor_ids"], parent["id"]] if parent else []
        values = {
            "title": data.get("title"),
            "description": data.get("description") or "",
            "story_type": story_type,
            "workspace_id": workspace_id,
            "parent_id": parent["id"] if parent else None,
            "root_id": ancestors[0] if ancestors else None,
            "ancestor_ids": ancestors,
            "ancestry_depth": len(ancestors),
            "start_date": data.get("start_date"),
            "due_date": data.get("due_date"),
            "budget_estimate_in_cents": budget,
        }
        return values, errors

    def _insert_story(self, values: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        position = sum(1 for s in self._stories.values() if s["workspace_id"] == values["workspace_id"]) + 1
        story = {
            "id": self._take_id("stories"),
            **values,
            "state": "not started",
            "archived": False,
            "billable": True,
            "fixed_fee": False,
            "position": position,
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        }
        self._stories[story["id"]] = story
        return story

    def _get_story(self, call: Call) -> httpx.Response:
        with self._lock:
            story = self._stories.get(call.params["id"])
            if story is None:
                return self.not_found_response(call)
            return self._envelope("stories", [story])

    def _list_stories(self, call: Call) -> httpx.Response:
        """Archived stories are left out unless `archived=include|only` (Kantata's filter)."""
        query = call.query
        keep = {"include": lambda s: True, "only": lambda s: s["archived"]}.get(
            query.get("archived", "exclude"), lambda s: not s["archived"]
        )
        with self._lock:
            rows = [
                s
                for s in self._stories.values()
                if keep(s)
                and _matches(query.get("workspace_id"), s["workspace_id"])
                and _matches(query.get("story_type"), s["story_type"])
                and (not _truthy(query.get("parents_only")) or s["parent_id"] is None)
            ]
            return self._paginated(call, "stories", rows)

    # ------------------------------------------------------------------ billing milestones
    def _create_milestones(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "billing_milestone", "billing_milestones", limit=100)
        with self._lock:
            prepared = [
                self._milestone_values(item, index if bulk else None) for index, item in enumerate(items)
            ]
            errors = [e for _, item_errors in prepared for e in item_errors]
            if errors:
                raise _validation(errors)
            milestones = [self._insert_milestone(values) for values, _ in prepared]
        return self._envelope("billing_milestones", milestones)

    def _milestone_values(
        self, data: Mapping[str, Any], index: int | None
    ) -> tuple[dict[str, Any], list[dict]]:
        errors: list[dict[str, Any]] = []
        workspace_id = _id_text(data.get("workspace_id"))
        if workspace_id is None or workspace_id not in self._workspaces:
            message = "Workspace can't be blank" if workspace_id is None else "Workspace must exist"
            errors.append(_invalid("workspace_id", message, index))
        if _blank(data.get("title")):
            errors.append(_invalid("title", "Title can't be blank", index))
        amount = data.get("amount_in_cents")
        if isinstance(amount, bool) or not isinstance(amount, int):
            errors.append(_invalid("amount_in_cents", "Amount in cents is not a number", index))
        billing_type = data.get("billing_type", "fixed_date")
        if billing_type not in BILLING_TYPES:
            errors.append(_invalid("billing_type", "Billing type is not included in the list", index))
        story_id = _id_text(data.get("story_id"))
        if billing_type == "upon_completion" and story_id is None:
            errors.append(_invalid("story_id", "Story can't be blank", index))
        if story_id is not None and self._stories.get(story_id, {}).get("workspace_id") != workspace_id:
            errors.append(_invalid("story_id", "Story must be a task in the same project", index))
        if billing_type == "fixed_date" and _blank(data.get("date_to_invoice")):
            errors.append(_invalid("date_to_invoice", "Date to invoice can't be blank", index))
        elif not _blank(data.get("date_to_invoice")) and not _is_date(data.get("date_to_invoice")):
            errors.append(_invalid("date_to_invoice", "Date to invoice is not a valid date", index))
        values = {
            "title": data.get("title"),
            "amount_in_cents": amount,
            "date_to_invoice": data.get("date_to_invoice"),
            "billing_type": billing_type,
            "workspace_id": workspace_id,
            "story_id": story_id,
            "invoice_id": None,
        }
        return values, errors

    def _insert_milestone(self, values: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        milestone = {
            "id": self._take_id("billing_milestones"),
            **values,
            "created_at": now,
            "updated_at": now,
        }
        self._milestones[milestone["id"]] = milestone
        return milestone

    def _list_milestones(self, call: Call) -> httpx.Response:
        workspace_ids = _id_list(call.query.get("workspace_ids"))
        story_ids = _id_list(call.query.get("story_ids"))
        with self._lock:
            rows = [
                m
                for m in self._milestones.values()
                if (workspace_ids is None or m["workspace_id"] in workspace_ids)
                and (story_ids is None or m["story_id"] in story_ids)
            ]
            return self._paginated(call, "billing_milestones", rows)

    # ------------------------------------------------------------------ external references
    def _list_references(self, call: Call) -> httpx.Response:
        query = call.query
        if _blank(query.get("subject_type")):
            return _system_error(400, "param is missing or the value is empty: subject_type")
        keys = (
            "subject_type",
            "subject_id",
            "service_name",
            "service_model",
            "service_model_ref",
            "status",
            "external_status",
            "external_message",
        )
        with self._lock:
            rows = [r for r in self._references.values() if all(_matches(query.get(k), r[k]) for k in keys)]
            return self._paginated(call, "external_references", rows, order_field="last_synced_at")

    def _create_or_update_reference(self, call: Call) -> httpx.Response:
        data = _param(call, "external_reference")
        with self._lock:
            errors = self._reference_errors(data, check_subject=True)
            if errors:
                raise _validation(errors)
            reference = self._upsert_reference(data)
        return self._envelope("external_references", [reference])

    def _reference_errors(
        self, data: Mapping[str, Any], *, check_subject: bool, prefix: str = ""
    ) -> list[dict[str, Any]]:
        errors = [
            _invalid(prefix + name, f"{name.replace('_', ' ').capitalize()} can't be blank")
            for name in ("subject_type", "subject_id", "service_name", "service_model", "service_model_ref")
            if _blank(data.get(name))
        ]
        if not _blank(data.get("subject_type")) and data["subject_type"] not in SUBJECT_TYPES:
            errors.append(_invalid(prefix + "subject_type", "Subject type is not included in the list"))
        if data.get("status") is not None and data["status"] not in REFERENCE_STATUSES:
            errors.append(_invalid(prefix + "status", "Status is not included in the list"))
        if (
            check_subject
            and not errors
            and not self._subject_exists(data["subject_type"], data["subject_id"])
        ):
            errors.append(_invalid(prefix + "subject", "Subject must exist"))
        return errors

    def _subject_exists(self, subject_type: str, subject_id: Any) -> bool:
        stores = {
            "Workspace": self._workspaces,
            "Story": self._stories,
            "BillingMilestone": self._milestones,
            "TimeEntry": self._time_entries,
            "Expense": self._expenses,
        }
        store = stores.get(subject_type)
        return True if store is None else _id_text(subject_id) in store

    def _upsert_reference(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """One reference per (subject, service_name): a second one for the same pair updates the first."""
        subject_id = int(data["subject_id"])
        existing = next(
            (
                r
                for r in self._references.values()
                if (r["subject_type"], r["subject_id"], r["service_name"])
                == (data["subject_type"], subject_id, data["service_name"])
            ),
            None,
        )
        now = _now()
        changes = {
            "service_model": data["service_model"],
            "service_model_ref": str(data["service_model_ref"]),
            "last_synced_at": now,
            "updated_at": now,
        }
        for optional in ("status", "external_status", "external_link", "external_message", "locked"):
            if optional in data:
                changes[optional] = data[optional]
        if existing is not None:
            existing.update(changes)
            return existing
        reference = {
            "id": self._take_id("external_references"),
            "subject_type": data["subject_type"],
            "subject_id": subject_id,
            "service_name": data["service_name"],
            "status": "pending",
            "external_status": None,
            "external_link": None,
            "external_message": None,
            "locked": False,
            "created_at": now,
            **changes,
        }
        self._references[reference["id"]] = reference
        return reference

    def _delete_reference(self, call: Call) -> httpx.Response:
        with self._lock:
            if self._references.pop(call.params["id"], None) is None:
                return self.not_found_response(call)
        return httpx.Response(204)

    # ------------------------------------------------------------------ response format
    def _paginated(
        self, call: Call, key: str, rows: list[dict[str, Any]], *, order_field: str = "updated_at"
    ) -> httpx.Response:
        only = _id_list(call.query.get("only"))
        if only is not None:
            rows = [r for r in rows if r["id"] in only]
        rows = sorted(rows, key=lambda r: (r[order_field] or "", int(r["id"])), reverse=True)
        limit, offset, page, per_page = _window(call.query)
        return self._envelope(
            key, rows[offset : offset + limit], total=len(rows), page=page, per_page=per_page
        )

    @staticmethod
    def _envelope(
        key: str,
        records: list[dict[str, Any]],
        *,
        total: int | None = None,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        included: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> httpx.Response:
        count = len(records) if total is None else total
        body = {
            "count": count,
            "results": [{"key": key, "id": r["id"]} for r in records],
            key: {r["id"]: dict(r) for r in records},
            "meta": {
                "count": count,
                "page_count": math.ceil(count / per_page) if count else 0,
                "page_number": page if count else 0,
                "page_size": per_page,
            },
        }
        for included_key, rows in (included or {}).items():
            body.setdefault(included_key, {}).update({r["id"]: dict(r) for r in rows})
        return json_response(200, body, content_type="application/json; charset=utf-8")

    def _take_id(self, collection: str) -> str:
        value = self._next_id[collection]
        self._next_id[collection] += self._id_rng.randint(1, 9)
        return str(value)

    # ------------------------------------------------------------------ seeding and inspection
    def issue_token(self) -> str:
        token = secrets.token_hex(32)
        with self._lock:
            self._tokens.add(token)
        return token

    def revoke_token(self, token: str) -> None:
        """A revoked token answers 401 (the user withdrew the application's access)."""
        with self._lock:
            self._tokens.discard(token)

    def seed_workspace(self, **fields: Any) -> str:
        """Create a workspace directly (validated like the API); returns its id."""
        data = {"title": "Acme - Implementation", "price": 0, **fields}
        archived = bool(data.pop("archived", False))
        requires_time = bool(data.pop("requires_time_approval", True))
        requires_expenses = bool(data.pop("requires_expense_approval", True))
        with self._lock:
            values, errors = self._workspace_values(data)
            if errors:
                raise ValueError(errors)
            workspace = self._insert_workspace(values)
            workspace["archived"] = archived
            self._approval_settings[workspace["id"]] = {
                "time_entries": requires_time,
                "expenses": requires_expenses,
            }
            return workspace["id"]

    def seed_story(self, workspace_id: str, **fields: Any) -> str:
        with self._lock:
            values, errors = self._story_values(
                {"title": "Task", **fields, "workspace_id": workspace_id}, None
            )
            if errors:
                raise ValueError(errors)
            return self._insert_story(values)["id"]

    def seed_external_reference(self, **fields: Any) -> str:
        data = {"service_name": "pshub", "subject_type": "Workspace", **fields}
        with self._lock:
            errors = self._reference_errors(data, check_subject=True)
            if errors:
                raise ValueError(errors)
            return self._upsert_reference(data)["id"]

    def set_workspace_status(
        self, workspace_id: str, message: str, *, color: str | None = None, key: str | None = None
    ) -> None:
        """Set a project's status as a person does in Kantata (e.g. "On Hold", "Completed", "Cancelled");
        `color` / `key` default to the sandbox's table (any other label needs a color)."""
        if color is None and message not in PROJECT_STATUS_COLORS:
            raise ValueError(f"unknown project status {message!r}: give its color")
        with self._lock:
            workspace = self._workspaces.get(str(workspace_id))
            if workspace is None:
                raise ValueError(f"no workspace {workspace_id}")
            workspace["status"] = {
                "color": color or PROJECT_STATUS_COLORS[message],
                "key": key if key is not None else PROJECT_STATUS_KEYS.get(message),
                "message": message,
            }
            workspace["updated_at"] = _now()

    def archive_workspace(self, workspace_id: str, archived: bool = True) -> None:
        """Archive (or restore) a project: archived projects leave listings unless asked for."""
        with self._lock:
            workspace = self._workspaces.get(str(workspace_id))
            if workspace is None:
                raise ValueError(f"no workspace {workspace_id}")
            workspace["archived"] = archived
            workspace["updated_at"] = _now()

    def set_story_state(self, story_id: str, state: str) -> None:
        """Set a task's state (`completed` closes it); the states allowed depend on its story type."""
        with self._lock:
            story = self._stories.get(str(story_id))
            if story is None:
                raise ValueError(f"no story {story_id}")
            allowed = ISSUE_STATES if story["story_type"] == "issue" else TASK_STATES
            if state not in allowed:
                raise ValueError(f"state must be one of {allowed} for a {story['story_type']}")
            story["state"] = state
            story["updated_at"] = _now()

    def archive_story(self, story_id: str, archived: bool = True) -> None:
        with self._lock:
            story = self._stories.get(str(story_id))
            if story is None:
                raise ValueError(f"no story {story_id}")
            story["archived"] = archived
            story["updated_at"] = _now()

    def workspaces(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(w) for w in self._workspaces.values()]

    def workspace(self, workspace_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._workspaces.get(str(workspace_id))
            return dict(found) if found else None

    def stories(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(s)
                for s in self._stories.values()
                if workspace_id is None or s["workspace_id"] == str(workspace_id)
            ]

    def billing_milestones(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(m)
                for m in self._milestones.values()
                if workspace_id is None or m["workspace_id"] == str(workspace_id)
            ]

    def external_references(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._references.values()]

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"users": n, "workspaces": [{fields..., "stories": [fields...], "time_entries": {"count", "approve",
        ...seed_time_entries args}, "expenses": {"count", "approve", ...seed_expenses args}}],
        "external_references": [fields...], "workspace_statuses": [{"workspace_id", "message"?, "color"?, "key"?,
        "archived"?}], "story_states": [{"story_id", "state"?, "archived"?}]}. Seeded time and expenses belong to
        the seeded users in turn. The last two change existing records (close a project or task mid-run)."""
        created: dict[str, Any] = {
            "users": self.seed_users(int(payload.get("users", 0))),
            "workspaces": [],
            "stories": [],
            "time_entries": [],
            "expenses": [],
            "external_references": [],
        }
        users = created["users"] or None
        nested = ("stories", "time_entries", "expenses")
        for workspace in payload.get("workspaces", []):
            fields = {k: v for k, v in workspace.items() if k not in nested}
            workspace_id = self.seed_workspace(**fields)
            created["workspaces"].append(workspace_id)
            created["stories"] += [self.seed_story(workspace_id, **s) for s in workspace.get("stories", [])]
            for key, seed_many, approve in (
                ("time_entries", self.seed_time_entries, self.approve_time_entries),
                ("expenses", self.seed_expenses, self.approve_expenses),
            ):
                if key in workspace:
                    options = dict(workspace[key])
                    ids = seed_many(
                        workspace_id,
                        int(options.pop("count", 1)),
                        user_ids=users,
                        **{k: v for k, v in options.items() if k != "approve"},
                    )
                    if options.get("approve"):
                        approve(ids)
                    created[key] += ids
        created["external_references"] = [
            self.seed_external_reference(**r) for r in payload.get("external_references", [])
        ]
        created["workspace_statuses"] = [
            self._apply_workspace_status(c) for c in payload.get("workspace_statuses", [])
        ]
        created["story_states"] = [self._apply_story_state(c) for c in payload.get("story_states", [])]
        return created

    def _apply_workspace_status(self, change: Mapping[str, Any]) -> str:
        workspace_id = str(change["workspace_id"])
        if change.get("message") is not None:
            self.set_workspace_status(
                workspace_id, str(change["message"]), color=change.get("color"), key=change.get("key")
            )
        if change.get("archived") is not None:
            self.archive_workspace(workspace_id, bool(change["archived"]))
        return workspace_id

    def _apply_story_state(self, change: Mapping[str, Any]) -> str:
        story_id = str(change["story_id"])
        if change.get("state") is not None:
            self.set_story_state(story_id, str(change["state"]))
        if change.get("archived") is not None:
            self.archive_story(story_id, bool(change["archived"]))
        return story_id

    def state(self) -> dict[str, Any]:
        return {
            "workspaces": self.workspaces(),
            "stories": self.stories(),
            "billing_milestones": self.billing_milestones(),
            "external_references": self.external_references(),
            **self.time_expense_state(),
        }
