"""Kantata OX time entries, expenses and their approvals (timesheet and expense report submissions).

Simulated vendor behaviour (Kantata OX API reference, developer.kantata.com):

* `GET|POST /time_entries` (bulk create: a `time_entries` list of up to 100), `GET|PUT|DELETE
  /time_entries/{id}`. Create needs `workspace_id`, `date_performed`, `time_in_minutes`; `billable` defaults to
  the task's flag, else true. Money in `rate_in_cents` (per hour), time in `time_in_minutes`.
* `GET|POST /expenses` (bulk: `expenses`, up to 100), `GET|PUT|DELETE /expenses/{id}`. Create needs
  `workspace_id`, `date`, `expense_category_id`, `category`, `amount_in_cents`. `GET /expense_categories`.
* Approval is not a field you set: an entry is `approved` when it is on an approved submission, or when its
  project does not require approvals. Submissions (one project each) are created with `line_item_ids` and move
  `pending -> approved | rejected | cancelled` through `PUT /timesheet_submissions/{id}/approve|reject|cancel`
  (`{"resolution": {"description"}}`) or in bulk with `POST /timesheet_approvals|timesheet_rejections|
  timesheet_cancellations` (`{"resolution": {"submission_ids": [...]}}`, answered `{"resolutions": [...]}`).
  Expense reports: `/expense_report_submissions` with the same three actions. An approved timesheet can still
  be rejected or cancelled (the approval is withdrawn), an approved expense report rejected (Kantata cancels only
  unapproved reports); a rejected or cancelled submission is final, and its entries can be submitted again.
  An entry on a pending or approved submission cannot be edited or deleted (422).
* list filters with Kantata's names: `approved` (for time entries ALWAYS processed as true, whatever value is
  given, as documented), `billable`, `workspace_id`, `workspace_ids`, `with_user_ids`, `updated_after`,
  `updated_before`, `created_after`, `created_before` (ISO 8601), `date_performed_between=YYYY-MM-DD:YYYY-MM-DD`,
  `in_active_submission`, `with_timesheet_id`, `invoiced`/`uninvoiced`, `from_archived_workspaces`, `only`;
  expenses: `approved`, `date_expensed_between`, `submitted`/`unsubmitted`, `reimbursable`,
  `with_expense_report_id`. `order=updated_at:asc|desc`, `created_at:...`, `date_performed:...` (time entries,
  default `date_performed:desc`) or `date:...` (expenses, default `date:desc`), ties broken by id.
* `include=workspace,story,user,active_submission,recent_submission,external_references` (expenses also
  `expense_category`) adds the related objects under their top-level keys (`workspaces`, `stories`, `users`,
  `timesheet_submissions` / `expense_report_submissions`, ...) and the `*_id` fields that point at them.
* timestamps are rendered to the second in the account's time zone (e.g. `2025-01-31T09:00:00-08:00`) but kept
  to the microsecond and strictly increasing per change, so `updated_after=<a rendered updated_at>` can return
  that same record again: a sweep must tolerate re-reads (and must overlap its window, never skip).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from local.sandboxes.base import Call, Reply, json_response
from local.sandboxes.kantata_common import (
    DEFAULT_PER_PAGE,
    _blank,
    _collection,
    _id_list,
    _id_text,
    _invalid,
    _is_date,
    _items,
    _member,
    _param,
    _system_error,
    _truthy,
    _validation,
    _window,
)

SUBMISSION_STATUSES = ("pending", "approved", "rejected", "cancelled")
ACTIVE_STATUSES = ("pending", "approved")
DEFAULT_EXPENSE_CATEGORIES = ("Travel", "Mileage", "Lodging", "Food", "Entertainment", "Other")
TIME_ENTRY_FIELDS = (
    "workspace_id",
    "date_performed",
    "time_in_minutes",
    "billable",
    "rate_in_cents",
    "cost_rate_in_cents",
    "notes",
    "story_id",
    "user_id",
    "role_id",
    "location",
    "taxable",
)
EXPENSE_FIELDS = (
    "workspace_id",
    "date",
    "expense_category_id",
    "category",
    "amount_in_cents",
    "notes",
    "billable",
    "reimbursable",
    "receipt_id",
    "story_id",
    "user_id",
    "vendor_id",
    "expense_budget_id",
    "taxable",
)
ACTIONS = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
RESOLUTION_TYPES = {"approved": "approval", "rejected": "rejection", "cancelled": "cancellation"}


class _Kind:
    """What differs between time entries and expenses (and their submissions)."""

    def __init__(
        self,
        *,
        key: str,
        singular: str,
        submission_key: str,
        submission_singular: str,
        submission_type: str,
        date_field: str,
        date_filter: str,
        default_order: str,
        orders: tuple[str, ...],
        line_ids_key: str,
        timesheet_filter: str,
        recent_filter: str,
    ) -> None:
        self.key = key
        self.singular = singular
        self.submission_key = submission_key
        self.submission_singular = submission_singular
        self.submission_type = submission_type
        self.date_field = date_field
        self.date_filter = date_filter
        self.default_order = default_order
        self.orders = orders
        self.line_ids_key = line_ids_key
        self.timesheet_filter = timesheet_filter
        self.recent_filter = recent_filter


TIME = _Kind(
    key="time_entries",
    singular="time_entry",
    submission_key="timesheet_submissions",
    submission_singular="timesheet_submission",
    submission_type="TimesheetSubmission",
    date_field="date_performed",
    date_filter="date_performed_between",
    default_order="date_performed:desc",
    orders=("created_at", "date_performed", "updated_at"),
    line_ids_key="time_entry_ids",
    timesheet_filter="with_timesheet_id",
    recent_filter="with_recent_timesheet_ids",
)
EXPENSE = _Kind(
    key="expenses",
    singular="expense",
    submission_key="expense_report_submissions",
    submission_singular="expense_report_submission",
    submission_type="ExpenseReportSubmission",
    date_field="date",
    date_filter="date_expensed_between",
    default_order="date:desc",
    orders=("created_at", "date", "updated_at", "amount"),
    line_ids_key="expense_ids",
    timesheet_filter="with_expense_report_id",
    recent_filter="with_recent_expense_report_ids",
)


class TimeExpenseMixin:
    """Time entries, expenses, users, expense categories and submissions for `KantataSandbox`.

    Relies on the sandbox's `_lock`, `_workspaces`, `_stories`, `_references`, `id_seed` and `_envelope`.
    """

    _lock: Any
    _workspaces: dict[str, dict[str, Any]]
    _stories: dict[str, dict[str, Any]]
    _references: dict[str, dict[str, Any]]
    id_seed: int
    time_zone: str
    approval_bumps_entry_updated_at: bool
    _clock: Callable[[], datetime]
    route: Callable[..., None]
    not_found_response: Callable[[Call], httpx.Response]
    _envelope: Callable[..., httpx.Response]

    # ------------------------------------------------------------------ state and routes
    def _reset_time_expense(self) -> None:
        self._tz: tzinfo = UTC if self.time_zone in ("UTC", "Etc/UTC") else ZoneInfo(self.time_zone)
        self._clock_offset = timedelta()
        self._last_stamp = datetime(1970, 1, 1, tzinfo=UTC)
        self._users: dict[str, dict[str, Any]] = {}
        self._time_entries: dict[str, dict[str, Any]] = {}
        self._expenses: dict[str, dict[str, Any]] = {}
        self._categories: dict[str, dict[str, Any]] = {}
        self._submissions: dict[str, dict[str, dict[str, Any]]] = {"time_entries": {}, "expenses": {}}
        self._approval_settings: dict[str, dict[str, bool]] = {}
        rng = random.Random(f"{self.id_seed}:time-and-expense")
        self._te_rng = rng
        self._te_next = {
            "users": rng.randrange(1_000_000, 2_000_000),
            "time_entries": rng.randrange(200_000_000, 300_000_000),
            "expenses": rng.randrange(40_000_000, 50_000_000),
            "expense_categories": rng.randrange(100_000, 200_000),
            "time_entries_submissions": rng.randrange(9_000_000, 10_000_000),
            "expenses_submissions": rng.randrange(3_000_000, 4_000_000),
            "resolutions": rng.randrange(60_000_000, 70_000_000),
        }
        self.api_user_id = self._insert_user("API User", "api.user@example.com")
        for name in DEFAULT_EXPENSE_CATEGORIES:
            category_id = self._te_id("expense_categories")
            self._categories[category_id] = {"id": category_id, "name": name, "deleted_at": None}

    def _register_time_expense_routes(self) -> None:
        for kind in (TIME, EXPENSE):
            self.route("GET", _collection(kind.key), self._line_item_handler(kind, self._list_line_items))
            self.route("POST", _collection(kind.key), self._line_item_handler(kind, self._create_line_items))
            self.route("GET", _member(kind.key), self._line_item_handler(kind, self._get_line_item))
            self.route("PUT", _member(kind.key), self._line_item_handler(kind, self._update_line_item))
            self.route("DELETE", _member(kind.key), self._line_item_handler(kind, self._delete_line_item))
            submissions = kind.submission_key
            self.route("GET", _collection(submissions), self._line_item_handler(kind, self._list_submissions))
            self.route(
                "POST", _collection(submissions), self._line_item_handler(kind, self._create_submission)
            )
            self.route("GET", _member(submissions), self._line_item_handler(kind, self._get_submission))
            for action in ACTIONS:
                self.route(
                    "PUT",
                    rf"/api/v1/{submissions}/(?P<id>\d+)/{action}(?:\.json)?",
                    self._resolution_handler(kind, action),
                )
        for path, action in (
            ("timesheet_approvals", "approve"),
            ("timesheet_rejections", "reject"),
            ("timesheet_cancellations", "cancel"),
        ):
            self.route("POST", _collection(path), self._bulk_resolution_handler(action))
        self.route("GET", _collection("expense_categories"), self._list_categories)
        self.route("GET", _collection("users"), self._list_users)
        self.route("GET", _member("users"), self._get_user)

    def _line_item_handler(
        self, kind: _Kind, handler: Callable[[_Kind, Call], httpx.Response]
    ) -> Callable[[Call], httpx.Response]:
        return lambda call: handler(kind, call)

    def _resolution_handler(self, kind: _Kind, action: str) -> Callable[[Call], httpx.Response]:
        return lambda call: self._resolve_one(kind, action, call)

    def _bulk_resolution_handler(self, action: str) -> Callable[[Call], httpx.Response]:
        return lambda call: self._resolve_many(action, call)

    # ------------------------------------------------------------------ clock and ids
    def now(self) -> datetime:
        """The sandbox's current time (the wall clock, or the injected clock, plus `advance_clock`)."""
        return self._clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock forward (e.g. past a sweep's watermark)."""
        with self._lock:
            self._clock_offset += timedelta(seconds=seconds)

    def _stamp(self, at: datetime | None = None) -> datetime:
        """A strictly increasing change time (microsecond precision)."""
        moment = (at or self.now()).astimezone(UTC)
        if moment <= self._last_stamp:
            moment = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = moment
        return moment

    def _render_time(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self._tz).replace(microsecond=0).isoformat()

    def _te_id(self, collection: str) -> str:
        value = self._te_next[collection]
        self._te_next[collection] += self._te_rng.randint(1, 9)
        return str(value)

    # ------------------------------------------------------------------ users and categories
    def _insert_user(self, full_name: str, email: str | None) -> str:
        user_id = self._te_id("users")
        self._users[user_id] = {
            "id": user_id,
            "full_name": full_name,
            "email_address": email or f"user{user_id}@example.com",
            "headline": "",
            "photo_path": None,
        }
        return user_id

    def _list_users(self, call: Call) -> httpx.Response:
        with self._lock:
            rows = sorted(self._users.values(), key=lambda u: int(u["id"]))
            only = _id_list(call.query.get("only"))
            if only is not None:
                rows = [u for u in rows if u["id"] in only]
            return self._page(call, "users", rows, render=dict)

    def _get_user(self, call: Call) -> httpx.Response:
        with self._lock:
            user = self._users.get(call.params["id"])
            if user is None:
                return self.not_found_response(call)
            return self._page(call, "users", [user], render=dict)

    def _list_categories(self, call: Call) -> httpx.Response:
        with self._lock:
            rows = sorted(self._categories.values(), key=lambda c: c["name"])
            return self._page(call, "expense_categories", rows, render=dict)

    # ------------------------------------------------------------------ line items: create, read, update, delete
    def _create_line_items(self, kind: _Kind, call: Call) -> httpx.Response:
        items, bulk = _items(call, kind.singular, kind.key, limit=100)
        with self._lock:
            prepared = [
                self._line_values(kind, item, index if bulk else None) for index, item in enumerate(items)
            ]
            errors = [e for _, item_errors in prepared for e in item_errors]
            if errors:
                raise _validation(errors)
            rows = [self._insert_line_item(kind, values) for values, _ in prepared]
            return self._line_page(kind, call, rows, total=len(rows))

    def _get_line_item(self, kind: _Kind, call: Call) -> httpx.Response:
        with self._lock:
            row = self._store(kind).get(call.params["id"])
            if row is None:
                return self.not_found_response(call)
            return self._line_page(kind, call, [row], total=1)

    def _update_line_item(self, kind: _Kind, call: Call) -> httpx.Response:
        data = _param(call, kind.singular)
        with self._lock:
            row = self._store(kind).get(call.params["id"])
            if row is None:
                return self.not_found_response(call)
            self._refuse_locked(kind, row)
            fields = TIME_ENTRY_FIELDS if kind is TIME else EXPENSE_FIELDS
            merged = {**{k: row.get(k) for k in fields if k in row}, **data}
            values, errors = self._line_values(kind, merged, None)
            if errors:
                raise _validation(errors)
            row.update(values)
            row["_updated"] = self._stamp()
            return self._line_page(kind, call, [row], total=1)

    def _delete_line_item(self, kind: _Kind, call: Call) -> httpx.Response:
        with self._lock:
            row = self._store(kind).get(call.params["id"])
            if row is None:
                return self.not_found_response(call)
            self._refuse_locked(kind, row)
            del self._store(kind)[row["id"]]
        return httpx.Response(204)

    def _refuse_locked(self, kind: _Kind, row: Mapping[str, Any]) -> None:
        submission = self._active_submission(kind, row)
        if submission is not None:
            noun = "Time entry" if kind is TIME else "Expense"
            raise _validation(
                [
                    _invalid(
                        "base",
                        f"{noun} cannot be changed while it is on a {submission['status']} submission",
                    )
                ]
            )

    def _line_values(
        self, kind: _Kind, data: Mapping[str, Any], index: int | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        workspace_id = _id_text(data.get("workspace_id"))
        workspace = self._workspaces.get(workspace_id or "")
        if workspace_id is None:
            errors.append(_invalid("workspace_id", "Workspace can't be blank", index))
        elif workspace is None:
            errors.append(_invalid("workspace_id", "Workspace must exist", index))
        date_field = kind.date_field
        label = "Date performed" if kind is TIME else "Date"
        if _blank(data.get(date_field)):
            errors.append(_invalid(date_field, f"{label} can't be blank", index))
        elif not _is_date(data.get(date_field)):
            errors.append(_invalid(date_field, f"{label} is not a valid date", index))
        story_id = _id_text(data.get("story_id"))
        story = self._stories.get(story_id or "")
        if story_id is not None and (story is None or story["workspace_id"] != workspace_id):
            errors.append(_invalid("story_id", "Story must be a task in the same project", index))
        user_id = _id_text(data.get("user_id")) or self.api_user_id
        if user_id not in self._users:
            errors.append(_invalid("user_id", "User must exist", index))
        for name in ("rate_in_cents", "cost_rate_in_cents", "receipt_id", "vendor_id", "expense_budget_id"):
            value = data.get(name)
            if value is not None and not _is_int(value):
                errors.append(_invalid(name, f"{_label(name)} is not a number", index))
        values: dict[str, Any] = {
            "workspace_id": workspace_id,
            date_field: data.get(date_field),
            "story_id": story_id,
            "user_id": user_id,
            "notes": data.get("notes") or "",
            "taxable": bool(data.get("taxable", False)),
        }
        billable_default = story["billable"] if story else True
        values["billable"] = (
            _truthy(data["billable"]) if data.get("billable") is not None else billable_default
        )
        currency = (workspace or {}).get("currency") or "USD"
        values.update(
            currency=currency,
            currency_symbol=currency,
            currency_base_unit=(workspace or {}).get("currency_base_unit") or 100,
        )
        if kind is TIME:
            minutes = data.get("time_in_minutes")
            if minutes is None:
                errors.append(_invalid("time_in_minutes", "Time in minutes can't be blank", index))
            elif not _is_int(minutes) or int(minutes) < 0:
                errors.append(_invalid("time_in_minutes", "Time in minutes is not a number", index))
            values.update(
                time_in_minutes=int(minutes) if _is_int(minutes) else minutes,
                rate_in_cents=_int_or(data.get("rate_in_cents"), 0),
                cost_rate_in_cents=_int_or(data.get("cost_rate_in_cents"), None),
                role_id=_id_text(data.get("role_id")),
                location=data.get("location"),
            )
        else:
            category_id = _id_text(data.get("expense_category_id"))
            if category_id is None:
                errors.append(_invalid("expense_category_id", "Expense category can't be blank", index))
            elif category_id not in self._categories:
                errors.append(_invalid("expense_category_id", "Expense category must exist", index))
            if _blank(data.get("category")):
                errors.append(_invalid("category", "Category can't be blank", index))
            amount = data.get("amount_in_cents")
            if amount is None:
                errors.append(_invalid("amount_in_cents", "Amount in cents can't be blank", index))
            elif not _is_int(amount):
                errors.append(_invalid("amount_in_cents", "Amount in cents is not a number", index))
            values.update(
                expense_category_id=category_id,
                category=data.get("category"),
                amount_in_cents=int(amount) if _is_int(amount) else amount,
                reimbursable=_truthy(data["reimbursable"]) if data.get("reimbursable") is not None else True,
                receipt_id=_id_text(data.get("receipt_id")),
                vendor_id=_id_text(data.get("vendor_id")),
                expense_budget_id=_id_text(data.get("expense_budget_id")),
            )
        return values, errors

    def _insert_line_item(self, kind: _Kind, values: Mapping[str, Any], at: datetime | None = None) -> dict:
        stamp = self._stamp(at)
        row = {
            "id": self._te_id(kind.key),
            **values,
            "is_invoiced": False,
            "_created": stamp,
            "_updated": stamp,
            "_active": None,
            "_recent": None,
        }
        self._store(kind)[row["id"]] = row
        return row

    def _store(self, kind: _Kind) -> dict[str, dict[str, Any]]:
        return self._time_entries if kind is TIME else self._expenses

    # ------------------------------------------------------------------ line items: listing
    def _list_line_items(self, kind: _Kind, call: Call) -> httpx.Response:
        query = call.query
        try:
            keep = self._line_filter(kind, query)
        except ValueError as error:
            return _system_error(400, str(error))
        with self._lock:
            rows = [row for row in self._store(kind).values() if keep(row)]
            rows.sort(key=self._order_key(kind, query.get("order")), reverse=self._descending(kind, query))
            limit, offset, page, per_page = _window(query)
            return self._line_page(
                kind, call, rows[offset : offset + limit], total=len(rows), page=page, per_page=per_page
            )

    def _line_filter(self, kind: _Kind, query: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
        tests: list[Callable[[Mapping[str, Any]], bool]] = []
        if "approved" in query:
            # Time entries: "always processed as true; the actual value you provide is ignored".
            wanted = True if kind is TIME else _truthy(query["approved"])
            tests.append(lambda r: self._approved(kind, r) == wanted)
        if query.get("billable") is not None:
            wanted_billable = _truthy(query["billable"])
            tests.append(lambda r: r["billable"] == wanted_billable)
        if query.get("reimbursable") is not None and kind is EXPENSE:
            wanted_reimbursable = _truthy(query["reimbursable"])
            tests.append(lambda r: r["reimbursable"] == wanted_reimbursable)
        for name, field in (("workspace_id", "workspace_id"),):
            if query.get(name):
                wanted_id = query[name]
                tests.append(lambda r, f=field, w=wanted_id: r[f] == w)
        workspace_ids = _id_list(query.get("workspace_ids"))
        if workspace_ids is not None:
            tests.append(lambda r: r["workspace_id"] in workspace_ids)
        user_ids = _id_list(query.get("with_user_ids"))
        if user_ids is not None:
            tests.append(lambda r: r["user_id"] in user_ids)
        only = _id_list(query.get("only"))
        if only is not None:
            tests.append(lambda r: r["id"] in only)
        for name, field, after in (
            ("updated_after", "_updated", True),
            ("updated_before", "_updated", False),
            ("created_after", "_created", True),
            ("created_before", "_created", False),
        ):
            if query.get(name):
                moment = self._parse_moment(name, query[name])
                if after:
                    tests.append(lambda r, f=field, m=moment: r[f] > m)
                else:
                    tests.append(lambda r, f=field, m=moment: r[f] < m)
        if query.get(kind.date_filter):
            low, _, high = query[kind.date_filter].partition(":")
            for bound in (low, high):
                if bound and not _is_date(bound):
                    raise ValueError(f"Invalid date range for {kind.date_filter}: {query[kind.date_filter]}")
            tests.append(
                lambda r: (not low or r[kind.date_field] >= low) and (not high or r[kind.date_field] <= high)
            )
        in_active = query.get("in_active_submission")
        if in_active is not None:
            wanted_active = _truthy(in_active)
            tests.append(lambda r: (self._active_submission(kind, r) is not None) == wanted_active)
        if kind is EXPENSE and "submitted" in query:
            tests.append(lambda r: self._active_submission(kind, r) is not None)
        if kind is EXPENSE and "unsubmitted" in query:
            tests.append(lambda r: self._active_submission(kind, r) is None)
        if query.get(kind.timesheet_filter):
            wanted_submission = query[kind.timesheet_filter]
            tests.append(lambda r: r["_active"] == wanted_submission)
        recent = _id_list(query.get(kind.recent_filter))
        if recent is not None:
            tests.append(lambda r: r["_recent"] in recent)
        if "invoiced" in query:
            tests.append(lambda r: r["is_invoiced"])
        if "uninvoiced" in query:
            tests.append(lambda r: not r["is_invoiced"])
        if not _truthy(query.get("from_archived_workspaces")):
            tests.append(lambda r: not self._workspaces.get(r["workspace_id"], {}).get("archived", False))
        return lambda row: all(test(row) for test in tests)

    def _parse_moment(self, name: str, text: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text.strip().replace(" ", "+") if "T" in text else text.strip())
        except ValueError:
            raise ValueError(f"Invalid datetime for {name}: {text}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._tz)
        return moment.astimezone(UTC)

    def _order_key(self, kind: _Kind, order: str | None) -> Callable[[Mapping[str, Any]], Any]:
        field, _, _ = (order or kind.default_order).partition(":")
        if field not in kind.orders:
            field = kind.default_order.partition(":")[0]
        source = {"created_at": "_created", "updated_at": "_updated", "amount": "amount_in_cents"}.get(
            field, field
        )
        return lambda r: (r[source], int(r["id"]))

    @staticmethod
    def _descending(kind: _Kind, query: Mapping[str, str]) -> bool:
        field, _, direction = (query.get("order") or kind.default_order).partition(":")
        if field not in kind.orders:
            direction = kind.default_order.partition(":")[2]
        return direction.lower() != "asc"

    # ------------------------------------------------------------------ rendering
    def _approved(self, kind: _Kind, row: Mapping[str, Any]) -> bool:
        if not self._requires_approval(kind, row["workspace_id"]):
            return True
        submission = self._active_submission(kind, row)
        return submission is not None and submission["status"] == "approved"

    def _requires_approval(self, kind: _Kind, workspace_id: str) -> bool:
        settings = self._approval_settings.get(workspace_id, {})
        return settings.get(kind.key, True)

    def _active_submission(self, kind: _Kind, row: Mapping[str, Any]) -> dict[str, Any] | None:
        if row.get("_active") is None:
            return None
        submission = self._submissions[kind.key].get(row["_active"])
        return submission if submission and submission["status"] in ACTIVE_STATUSES else None

    def _render_line_item(self, kind: _Kind, row: Mapping[str, Any], includes: set[str]) -> dict[str, Any]:
        body = {k: v for k, v in row.items() if not k.startswith("_")}
        body["created_at"] = self._render_time(row["_created"])
        body["updated_at"] = self._render_time(row["_updated"])
        body["approved"] = self._approved(kind, row)
        if "active_submission" in includes:
            body["active_submission_id"] = row["_active"] if self._active_submission(kind, row) else None
        if "recent_submission" in includes:
            body["recent_submission_id"] = row["_recent"]
        if "external_references" in includes:
            body["external_reference_ids"] = [r["id"] for r in self._references_of(kind, row["id"])]
        return body

    def _references_of(self, kind: _Kind, subject_id: str) -> list[dict[str, Any]]:
        subject_type = "TimeEntry" if kind is TIME else "Expense"
        return [
            r
            for r in self._references.values()
            if r["subject_type"] == subject_type and str(r["subject_id"]) == subject_id
        ]

    def _render_submission(self, kind: _Kind, submission: Mapping[str, Any], includes: set[str]) -> dict:
        body = {k: v for k, v in submission.items() if not k.startswith("_")}
        body["created_at"] = self._render_time(submission["_created"])
        body["updated_at"] = self._render_time(submission["_updated"])
        body["current_resolution_created_at_date"] = self._render_time(submission["_resolved"])
        if "time_entries" in includes or "expenses" in includes:
            body[kind.line_ids_key] = list(submission["_line_ids"])
        return body

    def _line_page(
        self,
        kind: _Kind,
        call: Call,
        rows: list[dict[str, Any]],
        *,
        total: int,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> httpx.Response:
        includes = _includes(call)
        rendered = [self._render_line_item(kind, row, includes) for row in rows]
        included = self._included(kind, rows, includes)
        return self._envelope(
            kind.key, rendered, total=total, page=page, per_page=per_page, included=included
        )

    def _included(self, kind: _Kind, rows: list[Mapping[str, Any]], includes: set[str]) -> dict[str, list]:
        included: dict[str, list[dict[str, Any]]] = {}
        if "workspace" in includes:
            ids = {r["workspace_id"] for r in rows}
            included["workspaces"] = [dict(w) for i, w in self._workspaces.items() if i in ids]
        if "story" in includes:
            ids = {r["story_id"] for r in rows if r["story_id"]}
            included["stories"] = [dict(s) for i, s in self._stories.items() if i in ids]
        if "user" in includes:
            ids = {r["user_id"] for r in rows}
            included["users"] = [dict(u) for i, u in self._users.items() if i in ids]
        if kind is EXPENSE and "expense_category" in includes:
            ids = {r["expense_category_id"] for r in rows}
            included["expense_categories"] = [dict(c) for i, c in self._categories.items() if i in ids]
        submission_ids: set[str] = set()
        if "active_submission" in includes:
            submission_ids |= {r["_active"] for r in rows if self._active_submission(kind, r)}
        if "recent_submission" in includes:
            submission_ids |= {r["_recent"] for r in rows if r["_recent"]}
        if submission_ids:
            store = self._submissions[kind.key]
            included[kind.submission_key] = [
                self._render_submission(kind, store[i], set()) for i in sorted(submission_ids) if i in store
            ]
        if "external_references" in includes:
            included["external_references"] = [
                dict(ref) for row in rows for ref in self._references_of(kind, row["id"])
            ]
        return included

    def _page(self, call: Call, key: str, rows: list[dict[str, Any]], *, render: Callable) -> httpx.Response:
        limit, offset, page, per_page = _window(call.query)
        window = [render(r) for r in rows[offset : offset + limit]]
        return self._envelope(key, window, total=len(rows), page=page, per_page=per_page)

    # ------------------------------------------------------------------ submissions
    def _create_submission(self, kind: _Kind, call: Call) -> httpx.Response:
        data = _param(call, kind.submission_singular)
        with self._lock:
            submission = self._submit(kind, data)
            return self._submission_page(kind, call, [submission])

    def _submit(self, kind: _Kind, data: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        workspace_id = _id_text(data.get("workspace_id"))
        if workspace_id is None:
            errors.append(_invalid("workspace_id", "Workspace can't be blank"))
        elif workspace_id not in self._workspaces:
            errors.append(_invalid("workspace_id", "Workspace must exist"))
        if _blank(data.get("title")):
            errors.append(_invalid("title", "Title can't be blank"))
        line_ids = data.get("line_item_ids")
        if not isinstance(line_ids, list) or not line_ids:
            errors.append(_invalid("line_item_ids", "Line items can't be blank"))
            line_ids = []
        store = self._store(kind)
        rows = []
        for raw in line_ids:
            row = store.get(str(raw))
            if row is None:
                errors.append(_invalid("line_item_ids", f"Line item {raw} does not exist"))
            elif row["workspace_id"] != workspace_id:
                errors.append(_invalid("line_item_ids", f"Line item {raw} is not in this project"))
            elif self._active_submission(kind, row) is not None:
                errors.append(_invalid("line_item_ids", f"Line item {raw} has already been submitted"))
            else:
                rows.append(row)
        if errors:
            raise _validation(errors)
        workspace = self._workspaces[workspace_id or ""]
        stamp = self._stamp()
        dates = sorted(date.fromisoformat(r[kind.date_field]) for r in rows)
        start = dates[0] - timedelta(days=dates[0].weekday())
        end = dates[-1] + timedelta(days=6 - dates[-1].weekday())
        total = sum(_line_total(kind, r) for r in rows)
        unit = workspace.get("currency_base_unit") or 100
        submission_id = self._te_id(f"{kind.key}_submissions")
        submission = {
            "id": submission_id,
            "title": data.get("title"),
            "comment": data.get("comment") or "",
            "status": "pending",
            "type": kind.submission_type,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "currency": workspace.get("currency") or "USD",
            "currency_symbol": workspace.get("currency") or "USD",
            "currency_base_unit": unit,
            "line_item_total_in_cents": total,
            "line_item_total_formatted": f"{total / unit:,.2f}",
            "resolution_description": None,
            "current_resolution_description": None,
            "current_resolution_creator_id": None,
            "permissions": {
                "can_cancel_submission": True,
                "can_approve_submission": True,
                "can_reject_submission": True,
                "can_resubmit_submission": False,
            },
            "user_id": _id_text(data.get("user_id")) or rows[0]["user_id"],
            "workspace_id": workspace_id,
            "_line_ids": [r["id"] for r in rows],
            "_created": stamp,
            "_updated": stamp,
            "_resolved": None,
        }
        self._submissions[kind.key][submission_id] = submission
        for row in rows:
            row["_active"] = submission_id
            row["_recent"] = submission_id
            row["_updated"] = self._stamp()
        return submission

    def _resolve_one(self, kind: _Kind, action: str, call: Call) -> httpx.Response:
        body = call.body if isinstance(call.body, dict) else {}
        description = (body.get("resolution") or {}).get("description") if isinstance(body, dict) else None
        with self._lock:
            submission = self._submissions[kind.key].get(call.params["id"])
            if submission is None:
                return self.not_found_response(call)
            error = _transition_error(kind, submission, ACTIONS[action])
            if error:
                raise _validation([_invalid("status", error)])
            self._resolve(kind, submission, ACTIONS[action], description)
            return self._submission_page(kind, call, [submission])

    def _resolve_many(self, action: str, call: Call) -> httpx.Response:
        data = _param(call, "resolution")
        ids = data.get("submission_ids")
        if not isinstance(ids, list) or not ids:
            raise _validation([_invalid("submission_ids", "Submission ids can't be blank")])
        with self._lock:
            submissions = []
            errors = []
            for raw in ids:
                submission = self._submissions["time_entries"].get(str(raw))
                if submission is None:
                    errors.append(_invalid("submission_ids", f"Timesheet submission {raw} does not exist"))
                    continue
                error = _transition_error(TIME, submission, ACTIONS[action])
                if error:
                    errors.append(_invalid("submission_ids", f"Timesheet submission {raw}: {error}"))
                submissions.append(submission)
            if errors:
                raise _validation(errors)
            resolutions = [
                self._resolve(TIME, s, ACTIONS[action], data.get("description")) for s in submissions
            ]
        return json_response(
            200, {"resolutions": resolutions}, content_type="application/json; charset=utf-8"
        )

    def _resolve(
        self, kind: _Kind, submission: dict[str, Any], status: str, description: str | None
    ) -> dict[str, Any]:
        """Apply an approval, rejection or cancellation; returns the Resolution object."""
        stamp = self._stamp()
        submission.update(
            status=status,
            resolution_description=description,
            current_resolution_description=description,
            current_resolution_creator_id=int(self.api_user_id),
            _resolved=stamp,
            _updated=stamp,
        )
        submission["permissions"].update(
            can_approve_submission=status == "pending",
            can_reject_submission=status in ACTIVE_STATUSES,
            can_cancel_submission=status in ACTIVE_STATUSES,
            can_resubmit_submission=status not in ACTIVE_STATUSES,
        )
        store = self._store(kind)
        for line_id in submission["_line_ids"]:
            row = store.get(line_id)
            if row is None:
                continue
            if status not in ACTIVE_STATUSES and row["_active"] == submission["id"]:
                row["_active"] = None
            if self.approval_bumps_entry_updated_at:
                row["_updated"] = self._stamp()
        resolution_id = self._te_id("resolutions")
        rendered = self._render_time(stamp)
        return {
            "id": int(resolution_id),
            "type": RESOLUTION_TYPES[status],
            "description": description,
            "target_type": kind.submission_type,
            "target_id": int(submission["id"]),
            "user_id": int(self.api_user_id),
            "account_id": 1,
            "current": True,
            "created_at": rendered,
            "updated_at": rendered,
        }

    def _get_submission(self, kind: _Kind, call: Call) -> httpx.Response:
        with self._lock:
            submission = self._submissions[kind.key].get(call.params["id"])
            if submission is None:
                return self.not_found_response(call)
            return self._submission_page(kind, call, [submission])

    def _list_submissions(self, kind: _Kind, call: Call) -> httpx.Response:
        query = call.query
        statuses = _id_list(query.get("statuses"))
        if statuses is not None:
            statuses = {
                "pending" if s == "new" else ("cancelled" if s == "canceled" else s) for s in statuses
            }
        workspace_ids = _id_list(query.get("workspace_ids"))
        user_ids = _id_list(query.get("user_ids"))
        only = _id_list(query.get("only"))
        try:
            after = (
                self._parse_moment("updated_after", query["updated_after"])
                if query.get("updated_after")
                else None
            )
        except ValueError as error:
            return _system_error(400, str(error))
        with self._lock:
            rows = [
                s
                for s in self._submissions[kind.key].values()
                if (statuses is None or s["status"] in statuses)
                and (workspace_ids is None or s["workspace_id"] in workspace_ids)
                and (user_ids is None or s["user_id"] in user_ids)
                and (only is None or s["id"] in only)
                and (not _truthy(query.get("active")) or s["status"] in ACTIVE_STATUSES)
                and (not _truthy(query.get("not_cancelled")) or s["status"] != "cancelled")
                and (after is None or s["_updated"] > after)
            ]
            descending = (query.get("order") or "date:desc").endswith(":desc")
            rows.sort(key=lambda s: (s["start_date"], int(s["id"])), reverse=descending)
            limit, offset, page, per_page = _window(query)
            return self._submission_page(
                kind, call, rows[offset : offset + limit], total=len(rows), page=page, per_page=per_page
            )

    def _submission_page(
        self,
        kind: _Kind,
        call: Call,
        rows: list[dict[str, Any]],
        *,
        total: int | None = None,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> httpx.Response:
        includes = _includes(call)
        rendered = [self._render_submission(kind, s, includes) for s in rows]
        included: dict[str, list] = {}
        if kind.key in includes:
            store = self._store(kind)
            lines = [store[i] for s in rows for i in s["_line_ids"] if i in store]
            included[kind.key] = [self._render_line_item(kind, r, set()) for r in lines]
        if "workspace" in includes:
            ids = {s["workspace_id"] for s in rows}
            included["workspaces"] = [dict(w) for i, w in self._workspaces.items() if i in ids]
        if "user" in includes:
            ids = {s["user_id"] for s in rows}
            included["users"] = [dict(u) for i, u in self._users.items() if i in ids]
        return self._envelope(
            kind.submission_key,
            rendered,
            total=len(rows) if total is None else total,
            page=page,
            per_page=per_page,
            included=included,
        )

    # ------------------------------------------------------------------ seeding (no API calls)
    def seed_user(self, full_name: str = "Sam Consultant", email_address: str | None = None) -> str:
        """A user of the account (who time and expenses belong to); returns its id."""
        with self._lock:
            return self._insert_user(full_name, email_address)

    def seed_users(self, count: int, prefix: str = "Consultant") -> list[str]:
        """`count` users named "{prefix} {n}"; deterministic ids."""
        with self._lock:
            return [self._insert_user(f"{prefix} {n}", None) for n in range(1, count + 1)]

    def set_workspace_approvals(self, workspace_id: str, *, time: bool = True, expenses: bool = True) -> None:
        """Whether the project requires time / expense approval (Kantata's project settings; default True)."""
        with self._lock:
            self._approval_settings[str(workspace_id)] = {"time_entries": time, "expenses": expenses}

    def seed_time_entry(self, workspace_id: str, **fields: Any) -> str:
        """One time entry, validated like the API; returns its id."""
        data = {
            "date_performed": "2025-01-06",
            "time_in_minutes": 480,
            **fields,
            "workspace_id": workspace_id,
        }
        return self._seed_line_item(TIME, data)

    def seed_expense(self, workspace_id: str, **fields: Any) -> str:
        """One expense, validated like the API (`receipt=True` attaches a receipt); returns its id."""
        data = {
            "date": "2025-01-06",
            "category": "Travel",
            "amount_in_cents": 12_500,
            **fields,
            "workspace_id": workspace_id,
        }
        if data.pop("receipt", False):
            data["receipt_id"] = data.get("receipt_id") or 900_000 + len(self._expenses)
        with self._lock:
            if "expense_category_id" not in data:
                data["expense_category_id"] = self._category_named(str(data["category"]))
        return self._seed_line_item(EXPENSE, data)

    def _seed_line_item(self, kind: _Kind, data: Mapping[str, Any]) -> str:
        with self._lock:
            values, errors = self._line_values(kind, data, None)
            if errors:
                raise ValueError(errors)
            return self._insert_line_item(kind, values)["id"]

    def seed_time_entries(
        self,
        workspace_id: str,
        count: int,
        *,
        user_ids: Iterable[str] | None = None,
        story_id: str | None = None,
        start: str = "2025-01-06",
        time_in_minutes: int = 480,
        rate_in_cents: int = 15_000,
        billable: bool = True,
        notes: str = "pshub seeded",
    ) -> list[str]:
        """`count` time entries fast (validated once, no API calls, deterministic ids): one per user per weekday
        from `start`, the users taking turns."""
        users = list(user_ids or [self.api_user_id])
        template = {
            "workspace_id": workspace_id,
            "date_performed": start,
            "time_in_minutes": time_in_minutes,
            "rate_in_cents": rate_in_cents,
            "billable": billable,
            "story_id": story_id,
            "notes": notes,
            "user_id": users[0],
        }
        with self._lock:
            values, errors = self._line_values(TIME, template, None)
            unknown = [u for u in users if u not in self._users]
            if errors or unknown:
                raise ValueError(errors or f"unknown users {unknown}")
            days = _weekdays(date.fromisoformat(start))
            ids = []
            for n in range(count):
                day = days(n // len(users))
                row = {**values, "user_id": users[n % len(users)], "date_performed": day.isoformat()}
                ids.append(self._insert_line_item(TIME, row)["id"])
            return ids

    def seed_expenses(
        self,
        workspace_id: str,
        count: int,
        *,
        user_ids: Iterable[str] | None = None,
        start: str = "2025-01-06",
        category: str = "Travel",
        amount_in_cents: int = 12_500,
        receipt: bool = True,
        billable: bool = True,
        notes: str = "pshub seeded",
    ) -> list[str]:
        """`count` expenses fast (validated once, deterministic ids), the users taking turns by weekday."""
        users = list(user_ids or [self.api_user_id])
        with self._lock:
            template = {
                "workspace_id": workspace_id,
                "date": start,
                "category": category,
                "expense_category_id": self._category_named(category),
                "amount_in_cents": amount_in_cents,
                "billable": billable,
                "notes": notes,
                "user_id": users[0],
            }
            values, errors = self._line_values(EXPENSE, template, None)
            unknown = [u for u in users if u not in self._users]
            if errors or unknown:
                raise ValueError(errors or f"unknown users {unknown}")
            days = _weekdays(date.fromisoformat(start))
            ids = []
            for n in range(count):
                row = {**values, "user_id": users[n % len(users)], "date": days(n // len(users)).isoformat()}
                if receipt:
                    row["receipt_id"] = str(800_000_000 + n)
                ids.append(self._insert_line_item(EXPENSE, row)["id"])
            return ids

    def _category_named(self, name: str) -> str:
        for category in self._categories.values():
            if category["name"] == name:
                return category["id"]
        category_id = self._te_id("expense_categories")
        self._categories[category_id] = {"id": category_id, "name": name, "deleted_at": None}
        return category_id

    def submit_time(self, entry_ids: Iterable[str], *, title: str = "Timesheet") -> list[str]:
        """Submit time entries for approval, one submission per project, user and week (Kantata's timesheets);
        returns the submission ids."""
        return self._seed_submissions(TIME, entry_ids, title)

    def submit_expenses(self, expense_ids: Iterable[str], *, title: str = "Expense report") -> list[str]:
        """Submit expenses as expense reports, one per project, user and week; returns their ids."""
        return self._seed_submissions(EXPENSE, expense_ids, title)

    def _seed_submissions(self, kind: _Kind, ids: Iterable[str], title: str) -> list[str]:
        with self._lock:
            groups: dict[tuple[str, str, date], list[str]] = {}
            for line_id in ids:
                row = self._store(kind).get(str(line_id))
                if row is None:
                    raise ValueError(f"no {kind.singular} {line_id}")
                day = date.fromisoformat(row[kind.date_field])
                week = day - timedelta(days=day.weekday())
                groups.setdefault((row["workspace_id"], row["user_id"], week), []).append(row["id"])
            try:
                return [
                    self._submit(
                        kind,
                        {"workspace_id": w, "user_id": u, "title": f"{title} {week}", "line_item_ids": lines},
                    )["id"]
                    for (w, u, week), lines in groups.items()
                ]
            except Reply as reply:
                raise ValueError(reply.response.json()["errors"]) from None

    def approve_time_entries(self, entry_ids: Iterable[str]) -> list[str]:
        """Submit and approve time entries at once; returns the submission ids."""
        submissions = self.submit_time(entry_ids)
        for submission_id in submissions:
            self.resolve_timesheet(submission_id, "approve")
        return submissions

    def approve_expenses(self, expense_ids: Iterable[str]) -> list[str]:
        """Submit and approve expenses at once; returns the expense report submission ids."""
        submissions = self.submit_expenses(expense_ids)
        for submission_id in submissions:
            self.resolve_expense_report(submission_id, "approve")
        return submissions

    def resolve_timesheet(self, submission_id: str, action: str, description: str | None = None) -> None:
        """Approve, reject or cancel a timesheet submission ("approve" | "reject" | "cancel")."""
        self._seed_resolution(TIME, submission_id, action, description)

    def resolve_expense_report(self, submission_id: str, action: str, description: str | None = None) -> None:
        """Approve, reject or cancel an expense report submission."""
        self._seed_resolution(EXPENSE, submission_id, action, description)

    def _seed_resolution(self, kind: _Kind, submission_id: str, action: str, description: str | None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACTIONS)}")
        with self._lock:
            submission = self._submissions[kind.key].get(str(submission_id))
            if submission is None:
                raise ValueError(f"no {kind.submission_singular} {submission_id}")
            error = _transition_error(kind, submission, ACTIONS[action])
            if error:
                raise ValueError(error)
            self._resolve(kind, submission, ACTIONS[action], description)

    def edit_time_entry(self, entry_id: str, **fields: Any) -> None:
        """Change a time entry as its owner would (a new version; locked entries refuse)."""
        self._edit(TIME, entry_id, fields)

    def edit_expense(self, expense_id: str, **fields: Any) -> None:
        self._edit(EXPENSE, expense_id, fields)

    def _edit(self, kind: _Kind, line_id: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            row = self._store(kind).get(str(line_id))
            if row is None:
                raise ValueError(f"no {kind.singular} {line_id}")
            try:
                self._refuse_locked(kind, row)
            except Reply as reply:
                raise ValueError(reply.response.json()["errors"]) from None
            row.update(fields)
            row["_updated"] = self._stamp()

    # ------------------------------------------------------------------ inspection
    def time_entries(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        """Every time entry as the API renders it (plus `active_submission_id` / `recent_submission_id`)."""
        return self._inspect(TIME, workspace_id)

    def time_entry(self, entry_id: str) -> dict[str, Any] | None:
        found = [e for e in self._inspect(TIME, None, only=str(entry_id))]
        return found[0] if found else None

    def expenses(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        return self._inspect(EXPENSE, workspace_id)

    def expense(self, expense_id: str) -> dict[str, Any] | None:
        found = self._inspect(EXPENSE, None, only=str(expense_id))
        return found[0] if found else None

    def _inspect(
        self, kind: _Kind, workspace_id: str | None, only: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            rows = [
                r
                for r in self._store(kind).values()
                if (workspace_id is None or r["workspace_id"] == str(workspace_id))
                and (only is None or r["id"] == only)
            ]
            return [self._render_line_item(kind, r, {"active_submission", "recent_submission"}) for r in rows]

    def timesheet_submissions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._render_submission(TIME, s, {"time_entries"})
                for s in self._submissions["time_entries"].values()
            ]

    def expense_report_submissions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._render_submission(EXPENSE, s, {"expenses"})
                for s in self._submissions["expenses"].values()
            ]

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(u) for u in self._users.values()]

    def expense_categories(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._categories.values()]

    def time_expense_state(self) -> dict[str, Any]:
        return {
            "users": self.users(),
            "time_entries": self.time_entries(),
            "expenses": self.expenses(),
            "timesheet_submissions": self.timesheet_submissions(),
            "expense_report_submissions": self.expense_report_submissions(),
        }


def _includes(call: Call) -> set[str]:
    return {part.strip() for part in call.query.get("include", "").split(",") if part.strip()}


def _transition_error(kind: _Kind, submission: Mapping[str, Any], target: str) -> str | None:
    """Why a submission cannot move to `target` (None when it can). Rejected and cancelled are final; an
    approved timesheet can be rejected or cancelled (approval withdrawn); an approved expense report can be
    rejected but not cancelled (Kantata cancels only unapproved expense reports)."""
    status = submission["status"]
    if status not in ACTIVE_STATUSES:
        return f"Submission has already been {status}"
    if status == "approved" and (target == "approved" or (kind is EXPENSE and target == "cancelled")):
        return f"Submission has already been approved and cannot be {target}"
    return None


def _int_or(value: Any, default: int | None) -> int | None:
    return int(value) if _is_int(value) else default


def _line_total(kind: _Kind, row: Mapping[str, Any]) -> int:
    if kind is EXPENSE:
        return int(row["amount_in_cents"])
    if not row["billable"]:
        return 0
    return round(int(row["time_in_minutes"]) * int(row["rate_in_cents"] or 0) / 60)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _weekdays(start: date) -> Callable[[int], date]:
    """n -> the n-th weekday on or after `start` (memoised: seeding thousands stays linear)."""
    cache: list[date] = []
    day = start

    def nth(n: int) -> date:
        nonlocal day
        while len(cache) <= n:
            while day.weekday() >= 5:
                day += timedelta(days=1)
            cache.append(day)
            day += timedelta(days=1)
        return cache[n]

    return nth
