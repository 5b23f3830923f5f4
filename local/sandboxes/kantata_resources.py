"""Kantata OX resource pool and resource planning: people, their attributes, project resources and assignments.

What the hub needs from Kantata to (1) keep the resource pool in step with the HCM and (2) read project assignments
to compute planned cost. Written from the Kantata OX API reference (developer.kantata.com/kantata/specification; the
public OpenAPI contract as mirrored in github.com/api-evangelist/mavenlink, `openapi/mavenlink-*-api-openapi.yml`).

People (account members):

* there is no `POST /users`: people join through `POST /account_invitations` (`email_address`, `full_name` required;
  `permission`, `default_role_id`, `cost_rate_in_cents`, `bill_rate_in_cents`, `billability_target`, `headline`, an
  embedded `external_reference`; bulk `account_invitations` up to 50). The invitee is a User at once (`invitee`),
  readable by id, but only becomes an account member (an `account_membership`) when they accept the e-mailed link,
  which no API does: the sandbox's `accept_invitation(id)` plays the person. `GET|PUT|DELETE
  /account_invitations/{id}`, `PUT .../{id}/resend`; the list shows pending invitations unless `only_pending=false`.
* `GET /users[/{id}]`, `GET /users/me`, `PUT /users/{id}` (`full_name`, `headline`, `email_address`, embedded
  `external_reference`). `GET /users` only lists people who take part in a project (a named project resource, or
  time / expenses logged) unless `on_my_account=true`; people whose membership is disabled only with
  `show_disabled=true`. Filters: `only`, `by_email_address(es)`, `by_full_name`, `participant_in`, `belonging_to_orgs`
  (`geo,geo;dept,dept`), `with_organizations`, `updated_after` / `updated_before` (and `created_*`), the
  `external_reference_*` filters (`service_name`, `service_model`, `service_model_ref(s)`, `status`, ...),
  `has_external_references`, `without_external_reference_service_name`; `order=alphabetical:asc|desc` (default asc).
  `include=account_membership,external_references,skill_memberships,skills,custom_field_values,role,manager`.
* `GET /account_memberships[/{id}]`, `PUT /account_memberships/{id}` (`permission`, `default_role_id`,
  `cost_rate_in_cents`, `bill_rate_in_cents`, `manager_id`, ...), `PUT /account_memberships/{id}/disable` and
  `/enable` (a disabled member keeps every record: `disabled_at` is set; lists and the show route leave it out
  unless `only_inactive=true` or `is_active=false`). `DELETE /account_memberships/{id}` exists (it moves the person
  to an account of their own, Kantata advises disabling instead) and is simulated so a test can prove the hub never
  calls it. `user_id` and friends are only rendered when included (`include=user,...`), as documented.
* cost: `account_membership.cost_rate_in_cents` is the default cost rate (account currency); `GET|POST /cost_rates`
  (one per member and currency: a POST for an existing pair overrides it; bulk `cost_rates` up to 100), `PUT|DELETE
  /cost_rates/{id}`. NOT effective-dated: "updating a cost rate will set the cost rate for future work; existing
  time entries will not be affected" (each time entry keeps its own `cost_rate_in_cents`). Kantata has no API for a
  dated cost-rate history, so the hub must push a change on (or after) its effective date itself.
* department / geography: `GET|POST /organizations` (two trees, `Department` and `Geography`; a new one needs a
  `parent_id`; the roots are seeded as "Departments" / "Geographies", names assumed), `GET|POST
  /organization_memberships` (`department_id`, `geography_id`, `member_id`, `member_type` User|Workspace, all
  required), `PUT|DELETE /organization_memberships/{id}`. Kantata has no cost-centre or legal-entity field: use a
  User custom field or the geography tree (a convention, not a Kantata concept).
* `GET /custom_fields` (seeded with `seed_custom_field`; creating fields by API is not simulated) and `GET|POST
  /custom_field_values` (`subject_type` required to list; POST creates or overrides the value of a subject's field,
  bulk `custom_field_values` up to 100; value types string, number, date, currency `[cents, "USD"]`, single / multi
  `[choice ids]`, a new single / multi value gets a new id), `PUT|DELETE /custom_field_values/{id}`.
* skills: `GET /skill_categories` (seeded: Skill, Language, Certification, Other; read-only here), `GET|POST /skills`
  (`name`, `max_level` 1 or 5, `skill_category_id` required), `GET|PUT|DELETE /skills/{id}`, `GET|POST
  /skill_memberships` (`skill_id`, `user_id`, `level` 0-5 within the skill's `max_level`; at most 200 skills a user;
  bulk up to 200), `GET|PUT|DELETE /skill_memberships/{id}`.
* roles: `GET|POST /roles`, `GET /roles/{id}` (seeded: Consultant, Project Manager, Solution Architect).
* standard calendar: `GET|POST /workweeks` (the account default workweek, versions from a Sunday; seeded Monday to
  Friday 480 minutes from 2000-01-02), `GET|POST /workweek_memberships` (`user_id`; `start_date` a Sunday, default the
  current week's; per-day `*_minutes`, a day not given takes the account default's, an assumption), `GET|PUT|DELETE
  /workweek_memberships/{id}`; a membership's `end_date` is the day before the user's next one. `GET|POST
  /holiday_calendars`, `GET|POST /holiday_calendar_memberships` (`holiday_calendar_id`, `user_id`, `start_date`),
  `PUT|DELETE /holiday_calendar_memberships/{id}`. The holidays themselves (`/holidays`, holiday calendar
  associations) and time off are not simulated.

Planning (what planned cost is computed from):

* `GET|POST /workspace_resources` (a role on a project: `workspace_id` required; `user_id` for a named resource,
  none for an unnamed placeholder, which then needs `role_id`; a named one defaults to the member's default role;
  bulk up to 200), `GET|PUT|DELETE /workspace_resources/{id}`. Unnamed resources are listed only with
  `include_unnamed=true` / `only_unnamed=true`. Deleting a resource deletes its assignments and their daily hours
  outright (nothing is left for an `updated_after` sweep to see); the last resource of a member's primary role in a
  project cannot be deleted (422). `optional_fields=resource_cost_rate,resource_bill_rate`.
* `GET|POST /assignments` (`story_id` and `resource_id` or `assignee_id`; `estimated_minutes`; `allocated_minutes` is
  the sum of the assignment's daily hours), `GET|PUT|DELETE /assignments/{id}`. Assignments are never deleted: DELETE
  (or `current=false`) unassigns. Lists leave out unassigned ones only when asked (`current=true`), leave out
  assignments of unnamed resources unless `include_unnamed=true`, and of archived tasks / projects unless
  `in_unarchived_stories=false` / `in_unarchived_workspaces=false`. Filters `assignee_id`, `resource_id`, `story_id`,
  `workspace_id`, `updated_after`..., `order=created_at|updated_at:asc|desc` (default `created_at:desc`).
  `include=assignee,story,story_allocation_days,external_references` (`story_allocation_days` needs `plannable=true`).
* daily scheduled hours: `GET|POST /story_allocation_days` (`assignment_id`, `date`, `minutes`; one per assignment and
  day), `GET|PUT|DELETE /story_allocation_days/{id}`, `DELETE /story_allocation_days?ids=1,2` (all or nothing, up to
  100). Lists include days of unassigned assignments (`current` false) unless `current=true`; filters
  `assignment_id`, `assignee_id`, `story_id`, `workspace_id`, `date_between=YYYY-MM-DD:YYYY-MM-DD`, `updated_after`...;
  default order `updated_at:desc`. `assignment_id`, `story_id`, `workspace_id` are rendered only when included.

Timestamps come from the sandbox clock (`now()`, `advance_clock`), strictly increasing, rendered to the second in the
account's time zone, like time entries. Undocumented, and assumed here the cautious way (a sweep must not rely on
them): changing an assignment's daily hours does not move the assignment's `updated_at`
(`allocation_changes_bump_assignment_updated_at = True` to change that), unassigning does not move its days'
`updated_at` although their `current` changes, and giving a resource another user does not move its assignments'.
A nightly sweep should therefore read assignments, story allocation days and workspace resources, each with
`updated_after` and an overlap, and still cannot see hard deletes.

Not in Kantata's API (so not here): an effective-dated cost rate, a legal entity or cost centre field, creating a
member without an invitation, accepting an invitation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from local.sandboxes.base import Call, Reply
from local.sandboxes.kantata_common import (
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
from local.sandboxes.kantata_time import TimeExpenseMixin, _includes, _is_int

Row = dict[str, Any]
Render = Callable[[Row, set[str]], Row]
Included = Callable[[list[Row], set[str]], dict[str, list[Row]]]
Handler = Callable[[Call], httpx.Response]

PERMISSIONS = (
    "administrator",
    "reports_viewer_with_cost",
    "reports_viewer",
    "project_lead",
    "project_creator",
    "collaborator",
    "external_collaborator",
    "punch_clock",
)
INVITATION_PERMISSIONS = tuple(p for p in PERMISSIONS if p != "external_collaborator")
LEAD_PERMISSIONS = ("administrator", "project_lead")
DEFAULT_ROLES = ("Consultant", "Project Manager", "Solution Architect")
SKILL_CATEGORIES = ("Skill", "Language", "Certification", "Other")
SKILL_MAX_LEVELS = (1, 5)
MAX_SKILLS_PER_USER = 200
MAX_SKILLS_PER_ACCOUNT = 5000
ORGANIZATION_ROOTS = {"Department": "Departments", "Geography": "Geographies"}
MEMBER_TYPES = {"user": "User", "workspace": "Workspace"}
DAYS = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)  # a Kantata week starts Sunday
DEFAULT_WEEK = {"sunday": 0, "monday": 480, "tuesday": 480, "wednesday": 480, "thursday": 480, "friday": 480}
DEFAULT_WORKWEEK_START = "2000-01-02"  # a Sunday
MINUTES_PER_DAY = 1440
VALUE_TYPES = ("string", "number", "date", "currency", "single", "multi")
CUSTOM_FIELD_SUBJECTS = ("Estimate", "Resource", "Story", "User", "Workspace", "WorkspaceGroup")
INVITATION_DAYS = 30  # assumption: Kantata does not document how long an invitation stays valid
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


class ResourcesMixin(TimeExpenseMixin):
    """People, their attributes, project resources, assignments and daily scheduled hours for `KantataSandbox`.

    Extends `TimeExpenseMixin` (users live there): it wraps `_reset_time_expense` and `_register_time_expense_routes`
    and overrides `_insert_user` (every account user gets an account membership) and the `/users` handlers. Relies on
    the sandbox's `_envelope`, `_reference_errors`, `_upsert_reference`, `account_currency` and `id_seed`.

    Lookups a 10,000-member account makes per row are indexed, each index kept by the code that inserts or
    deletes in its store: users by e-mail address (`_users_by_email`), organization memberships by member
    (`_org_memberships_of`), custom field values by subject (`_values_by_subject`), pending invitations
    (`_pending`, kept in creation order so their default listing needs no sort). Each keeps its store's order,
    so answers are the same as a scan's.
    """

    account_currency: str
    _reference_errors: Callable[..., list[dict[str, Any]]]
    _upsert_reference: Callable[[Mapping[str, Any]], dict[str, Any]]
    allocation_changes_bump_assignment_updated_at: bool = False

    # ------------------------------------------------------------------ state and routes
    def _reset_time_expense(self) -> None:
        self._reset_resource_stores()
        super()._reset_time_expense()
        owner = self._memberships[self._membership_of[self.api_user_id]]
        owner.update(permission="administrator", is_owner=True)
        self._seed_resource_defaults()
        # What a fresh account holds does not count as a change: a test may set the clock back after
        # creating the sandbox, and the first change it makes must be stamped at that earlier time.
        self._last_stamp = _EPOCH

    def _reset_resource_stores(self) -> None:
        rng = random.Random(f"{self.id_seed}:resources")
        self._rs_rng = rng
        self._rs_next = {
            name: rng.randrange(low, low * 2)
            for name, low in (
                ("account_memberships", 3_000_000),
                ("account_invitations", 400_000),
                ("cost_rates", 600_000),
                ("roles", 70_000),
                ("skill_categories", 9_000),
                ("skills", 50_000),
                ("skill_memberships", 900_000),
                ("organizations", 20_000),
                ("organization_memberships", 700_000),
                ("workweeks", 30_000),
                ("workweek_memberships", 80_000),
                ("holiday_calendars", 5_000),
                ("holiday_calendar_memberships", 60_000),
                ("custom_fields", 400_000),
                ("custom_field_choices", 800_000),
                ("custom_field_values", 10_000_000),
                ("workspace_resources", 8_000_000),
                ("assignments", 90_000_000),
                ("story_allocation_days", 500_000_000),
            )
        }
        self._memberships: dict[str, Row] = {}
        self._membership_of: dict[str, str] = {}  # user id -> account membership id
        self._users_by_email: dict[str, set[str]] = {}  # lower-cased e-mail address -> ids of its users
        self._user_stamps: dict[str, list[datetime]] = {}  # user id -> [created, updated]
        self._invitations: dict[str, Row] = {}
        self._pending: dict[str, Row] = {}  # the invitations still pending, oldest first
        # Whether `_invitations` (so `_pending`) holds them in `created_at` order, ties by id: true as long as
        # each new one is stamped after the last (the sandbox's change times only increase), checked per insert.
        self._invitations_in_created_order = True
        self._cost_rates: dict[str, Row] = {}
        self._roles: dict[str, Row] = {}
        self._skill_categories: dict[str, Row] = {}
        self._skills: dict[str, Row] = {}
        self._skill_memberships: dict[str, Row] = {}
        self._organizations: dict[str, Row] = {}
        self._org_memberships: dict[str, Row] = {}
        # (member_type, member_id) -> that member's organization memberships, oldest first
        self._org_memberships_of: dict[tuple[str, str], dict[str, Row]] = {}
        self._workweeks: dict[str, Row] = {}
        self._workweek_memberships: dict[str, Row] = {}
        self._holiday_calendars: dict[str, Row] = {}
        self._holiday_memberships: dict[str, Row] = {}
        self._custom_fields: dict[str, Row] = {}
        self._custom_field_choices: dict[str, Row] = {}
        self._custom_field_values: dict[str, Row] = {}
        # (subject_type, subject id) -> that subject's custom field values, oldest first
        self._values_by_subject: dict[tuple[str, str], dict[str, Row]] = {}
        self._resources: dict[str, Row] = {}
        self._assignments: dict[str, Row] = {}
        self._allocation_days: dict[str, Row] = {}

    def _seed_resource_defaults(self) -> None:
        for name in DEFAULT_ROLES:
            self._insert_role(name)
        for name in SKILL_CATEGORIES:
            category = self._new_row("skill_categories", {"name": name})
            self._skill_categories[category["id"]] = category
        for kind, name in ORGANIZATION_ROOTS.items():
            self._insert_organization(name, kind, None)
        self._insert_workweek(DEFAULT_WORKWEEK_START, DEFAULT_WEEK, default=True)

    def _register_time_expense_routes(self) -> None:
        super()._register_time_expense_routes()  # its /users routes call this class's _list_users / _get_user
        self.route("GET", _collection("users/me"), self._get_me)
        self.route("PUT", _member("users"), self._update_user)
        crud: list[tuple[str, Handler, Handler | None, Handler | None, Handler | None, Handler | None]] = [
            # collection, list, create, show, update, delete
            (
                "account_invitations",
                self._list_invitations,
                self._create_invitations,
                self._get_invitation,
                self._update_invitation,
                self._delete_invitation,
            ),
            (
                "account_memberships",
                self._list_memberships,
                None,
                self._get_membership,
                self._update_membership,
                self._delete_membership,
            ),
            (
                "cost_rates",
                self._list_cost_rates,
                self._create_cost_rates,
                None,
                self._update_cost_rate,
                self._delete_cost_rate,
            ),
            ("roles", self._list_roles, self._create_roles, self._get_role, None, None),
            ("skill_categories", self._list_skill_categories, None, None, None, None),
            (
                "skills",
                self._list_skills,
                self._create_skills,
                self._get_skill,
                self._update_skill,
                self._delete_skill,
            ),
            (
                "skill_memberships",
                self._list_skill_memberships,
                self._create_skill_memberships,
                self._get_skill_membership,
                self._update_skill_membership,
                self._delete_skill_membership,
            ),
            (
                "organizations",
                self._list_organizations,
                self._create_organizations,
                self._get_organization,
                None,
                None,
            ),
            (
                "organization_memberships",
                self._list_org_memberships,
                self._create_org_memberships,
                self._get_org_membership,
                self._update_org_membership,
                self._delete_org_membership,
            ),
            ("workweeks", self._list_workweeks, self._create_workweek, self._get_workweek, None, None),
            (
                "workweek_memberships",
                self._list_workweek_memberships,
                self._create_workweek_membership,
                self._get_workweek_membership,
                self._update_workweek_membership,
                self._delete_workweek_membership,
            ),
            (
                "holiday_calendars",
                self._list_holiday_calendars,
                self._create_holiday_calendar,
                self._get_holiday_calendar,
                None,
                None,
            ),
            (
                "holiday_calendar_memberships",
                self._list_holiday_memberships,
                self._create_holiday_membership,
                self._get_holiday_membership,
                self._update_holiday_membership,
                self._delete_holiday_membership,
            ),
            ("custom_fields", self._list_custom_fields, None, None, None, None),
            (
                "custom_field_values",
                self._list_custom_field_values,
                self._create_custom_field_values,
                None,
                self._update_custom_field_value,
                self._delete_custom_field_value,
            ),
            (
                "workspace_resources",
                self._list_resources,
                self._create_resources,
                self._get_resource,
                self._update_resource,
                self._delete_resource,
            ),
            (
                "assignments",
                self._list_assignments,
                self._create_assignment,
                self._get_assignment,
                self._update_assignment,
                self._delete_assignment,
            ),
            (
                "story_allocation_days",
                self._list_allocation_days,
                self._create_allocation_day,
                self._get_allocation_day,
                self._update_allocation_day,
                self._delete_allocation_day,
            ),
        ]
        for name, listing, create, show, update, delete in crud:
            for method, pattern, handler in (
                ("GET", _collection(name), listing),
                ("POST", _collection(name), create),
                ("GET", _member(name), show),
                ("PUT", _member(name), update),
                ("DELETE", _member(name), delete),
            ):
                if handler is not None:
                    self.route(method, pattern, handler)
        self.route("DELETE", _collection("story_allocation_days"), self._delete_allocation_days)
        self.route(
            "PUT", r"/api/v1/account_invitations/(?P<id>\d+)/resend(?:\.json)?", self._resend_invitation
        )
        for action in ("disable", "enable"):
            self.route(
                "PUT",
                rf"/api/v1/account_memberships/(?P<id>\d+)/{action}(?:\.json)?",
                self._membership_action(action),
            )

    def _membership_action(self, action: str) -> Callable[[Call], httpx.Response]:
        return lambda call: self._set_membership_active(call, enable=action == "enable")

    # ------------------------------------------------------------------ rows, ids, rendering, listing
    def _rs_id(self, collection: str) -> str:
        value = self._rs_next[collection]
        self._rs_next[collection] += self._rs_rng.randint(1, 9)
        return str(value)

    def _new_row(self, collection: str, values: Mapping[str, Any]) -> Row:
        stamp = self._stamp()
        return {"id": self._rs_id(collection), **values, "_created": stamp, "_updated": stamp}

    def _touch(self, row: Row) -> None:
        row["_updated"] = self._stamp()

    def _public(self, row: Mapping[str, Any]) -> Row:
        """The row without its private (`_`) keys, with `created_at` / `updated_at` rendered."""
        body = {k: v for k, v in row.items() if not k.startswith("_")}
        body["created_at"] = self._render_time(row["_created"])
        body["updated_at"] = self._render_time(row["_updated"])
        return body

    def _moments(self, query: Mapping[str, str]) -> list[Callable[[datetime, datetime], bool]]:
        """`created_after|before`, `updated_after|before` as tests on (created, updated); a bad value is a 400."""
        tests: list[Callable[[datetime, datetime], bool]] = []
        for name in ("created_after", "created_before", "updated_after", "updated_before"):
            if not query.get(name):
                continue
            try:
                moment = self._parse_moment(name, query[name])
            except ValueError as error:
                raise Reply(_system_error(400, str(error))) from None
            tests.append(
                _moment_test(moment, created=name.startswith("created"), after=name.endswith("after"))
            )
        return tests

    def _listing(
        self,
        call: Call,
        key: str,
        rows: Iterable[Row],
        *,
        render: Render,
        orders: Mapping[str, Callable[[Row], Any]],
        default_order: str,
        included: Included | None = None,
        stamps: Callable[[Row], tuple[datetime, datetime]] | None = None,
        ordered_by: str | None = None,
    ) -> httpx.Response:
        """Kantata's list answer: `only`, created/updated filters, `order`, `page`/`per_page`, `include`.

        `ordered_by`: the order (one of `orders`) the rows already come in, ascending, ties broken by id (as the
        sort would put them), so that a page of that order needs no sort.
        """
        query = call.query
        moments = self._moments(query)
        only = _id_list(query.get("only"))
        stamp_of = stamps or (lambda r: (r["_created"], r["_updated"]))
        if only is None and not moments:
            selected = list(rows)
        else:
            selected = [
                r
                for r in rows
                if (only is None or r["id"] in only) and all(test(*stamp_of(r)) for test in moments)
            ]
        field, _, direction = (query.get("order") or default_order).partition(":")
        if field not in orders:
            field, _, direction = default_order.partition(":")
        sort_key = orders[field]
        if field != ordered_by:
            selected.sort(
                key=lambda r: (_sortable(sort_key(r)), int(r["id"])), reverse=direction.lower() == "desc"
            )
        elif direction.lower() == "desc":  # every key differs (the ids do): descending is ascending reversed
            selected.reverse()
        limit, offset, page, per_page = _window(query)
        window = selected[offset : offset + limit]
        includes = _includes(call)
        return self._envelope(
            key,
            [render(r, includes) for r in window],
            total=len(selected),
            page=page,
            per_page=per_page,
            included=included(window, includes) if included else None,
        )

    def _answer(
        self, call: Call, key: str, rows: list[Row], *, render: Render, included: Included | None = None
    ) -> httpx.Response:
        """A show / create / update answer in the same envelope."""
        includes = _includes(call)
        return self._envelope(
            key,
            [render(r, includes) for r in rows],
            included=included(rows, includes) if included else None,
        )

    def _found(self, store: Mapping[str, Row], call: Call) -> Row:
        row = store.get(call.params["id"])
        if row is None:
            raise Reply(self.not_found_response(call))
        return row

    def _embedded_reference(
        self, data: Mapping[str, Any], subject_type: str, index: int | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """An embedded `external_reference` (validated with a placeholder subject)."""
        reference = data.get("external_reference")
        if reference is None:
            return None, []
        if not isinstance(reference, dict):
            return None, [_invalid("external_reference", "External reference is invalid", index)]
        candidate = {**reference, "subject_type": subject_type, "subject_id": 0}
        errors = self._reference_errors(candidate, check_subject=False, prefix="external_reference.")
        for error in errors:
            if index is not None:
                error["index"] = index
        return dict(reference), errors

    def _link(self, reference: Mapping[str, Any] | None, subject_type: str, subject_id: str) -> None:
        if reference is not None:
            self._upsert_reference({**reference, "subject_type": subject_type, "subject_id": subject_id})

    def _references_to(self, subject_type: str, subject_id: str) -> list[Row]:
        return [
            r
            for r in self._references.values()
            if r["subject_type"] == subject_type and str(r["subject_id"]) == subject_id
        ]

    def _reference_test(self, subject_type: str, query: Mapping[str, str]) -> Callable[[str], bool] | None:
        """Kantata's `external_reference_*` filters on a subject's references (None when none is given)."""
        exact = {
            f"external_reference_{name}": name
            for name in (
                "service_name",
                "service_model",
                "service_model_ref",
                "status",
                "external_status",
                "external_message",
            )
        }
        wanted = {field: query[param] for param, field in exact.items() if query.get(param)}
        refs = _id_list(query.get("external_reference_service_model_refs"))
        has = query.get("has_external_references")
        without = query.get("without_external_reference_service_name")
        if not wanted and refs is None and has is None and not without:
            return None
        by_subject: dict[str, list[Row]] = {}
        for reference in self._references.values():
            if reference["subject_type"] == subject_type:
                by_subject.setdefault(str(reference["subject_id"]), []).append(reference)

        def keep(subject_id: str) -> bool:
            references = by_subject.get(subject_id, [])
            if has is not None and bool(references) != _truthy(has):
                return False
            if without and any(r["service_name"] == without for r in references):
                return False
            if wanted or refs is not None:
                return any(
                    all(str(r.get(field)) == value for field, value in wanted.items())
                    and (refs is None or str(r["service_model_ref"]) in refs)
                    for r in references
                )
            return True

        return keep

    # ------------------------------------------------------------------ users
    def _insert_user(self, full_name: str, email: str | None) -> str:
        """Every user added to the account is an account member (collaborator unless changed)."""
        user_id = self._insert_invitee(full_name, email)
        self._add_membership(user_id, {})
        return user_id

    def _insert_invitee(self, full_name: str, email: str | None) -> str:
        user_id = super()._insert_user(full_name, email)
        self._index_email(user_id)
        self._stamp_user(user_id, created=True)
        return user_id

    def _index_email(self, user_id: str, previous: str | None = None) -> None:
        """Keep `_users_by_email` in step with a user's (new or changed) address."""
        if previous is not None:
            holders = self._users_by_email[previous.lower()]
            holders.discard(user_id)
            if not holders:
                del self._users_by_email[previous.lower()]
        self._users_by_email.setdefault(self._users[user_id]["email_address"].lower(), set()).add(user_id)

    def _stamp_user(self, user_id: str, *, created: bool = False) -> None:
        stamp = self._stamp()
        if created or user_id not in self._user_stamps:
            self._user_stamps[user_id] = [stamp, stamp]
        else:
            self._user_stamps[user_id][1] = stamp

    def _user_stamp_pair(self, user: Row) -> tuple[datetime, datetime]:
        created, updated = self._user_stamps.get(user["id"], [_EPOCH, _EPOCH])
        return created, updated

    def _add_membership(self, user_id: str, settings: Mapping[str, Any]) -> Row:
        membership = self._new_row(
            "account_memberships",
            {
                "permission": settings.get("permission") or "collaborator",
                "bill_rate_in_cents": settings.get("bill_rate_in_cents"),
                "cost_rate_in_cents": None,
                "billability_target": settings.get("billability_target"),
                "default_read_only": bool(settings.get("default_read_only", False)),
                "collaborator_only_license": False,
                "manager_can_approve": False,
                "manager_can_edit_skills": False,
                "should_show_alert_on_timesheet_submission": False,
                "is_backup_approver": False,
                "is_owner": False,
                "_user": user_id,
                "_role": settings.get("default_role_id"),
                "_manager": None,
                "_disabled": None,
            },
        )
        self._memberships[membership["id"]] = membership
        self._membership_of[user_id] = membership["id"]
        if settings.get("cost_rate_in_cents") is not None:
            self._set_cost_rate(membership, self.account_currency, int(settings["cost_rate_in_cents"]))
        return membership

    def _membership(self, user_id: str) -> Row | None:
        membership_id = self._membership_of.get(user_id)
        return self._memberships.get(membership_id) if membership_id else None

    def _active_member(self, user_id: str | None) -> bool:
        membership = self._membership(user_id or "")
        return membership is not None and membership["_disabled"] is None

    def _participants(self) -> set[str]:
        """Users taking part in a project: a named resource, or time / expenses logged."""
        ids = {r["_user"] for r in self._resources.values() if r["_user"]}
        ids |= {e["user_id"] for e in self._time_entries.values()}
        ids |= {e["user_id"] for e in self._expenses.values()}
        return ids

    def _list_users(self, call: Call) -> httpx.Response:
        query = call.query
        with self._lock:
            tests: list[Callable[[Row], bool]] = []
            if _truthy(query.get("on_my_account")):
                tests.append(lambda u: u["id"] in self._membership_of)
            else:
                participants = self._participants()
                tests.append(lambda u: u["id"] in participants)
            if not _truthy(query.get("show_disabled")):
                tests.append(lambda u: self._membership(u["id"]) is None or self._active_member(u["id"]))
            if query.get("participant_in"):
                workspace_id = query["participant_in"]
                named = {r["_user"] for r in self._resources.values() if r["_workspace"] == workspace_id}
                tests.append(lambda u: u["id"] in named)
            if query.get("by_email_address"):
                email = query["by_email_address"].strip().lower()
                tests.append(lambda u: u["email_address"].lower() == email)
            emails = _id_list(query.get("by_email_addresses"))
            if emails is not None:
                lowered = {e.lower() for e in emails}
                tests.append(lambda u: u["email_address"].lower() in lowered)
            if query.get("by_full_name"):
                part = query["by_full_name"].lower()
                tests.append(lambda u: part in u["full_name"].lower())
            if query.get("belonging_to_orgs") is not None:
                tests.append(self._org_test(query["belonging_to_orgs"]))
            if query.get("with_organizations") is not None:
                with_orgs = _truthy(query["with_organizations"])
                tests.append(lambda u: (self._org_membership_of("User", u["id"]) is not None) == with_orgs)
            references = self._reference_test("User", query)
            if references is not None:
                tests.append(lambda u: references(u["id"]))
            rows = [u for u in self._user_candidates(query) if all(test(u) for test in tests)]
            return self._listing(
                call,
                "users",
                rows,
                render=self._render_user,
                orders={"alphabetical": lambda u: u["full_name"].lower()},
                default_order="alphabetical:asc",
                included=self._user_included,
                stamps=self._user_stamp_pair,
            )

    def _user_candidates(self, query: Mapping[str, str]) -> Iterable[Row]:
        """The users a `/users` list can answer, narrowed by `only` and the e-mail filters through the indexes
        (every filter is still applied to each of them, and the listing sorts them: the answer is the same)."""
        wanted: set[str] | None = _id_list(query.get("only"))
        emails = _id_list(query.get("by_email_addresses"))
        if query.get("by_email_address"):
            emails = (emails or set()) | {query["by_email_address"].strip()}
        if emails is not None:
            holders = {u for e in emails for u in self._users_by_email.get(e.lower(), ())}
            wanted = holders if wanted is None else wanted & holders
        if wanted is None:
            return self._users.values()
        return [self._users[u] for u in wanted if u in self._users]

    def _org_test(self, spec: str) -> Callable[[Row], bool]:
        """`belonging_to_orgs=geo,geo;dept,dept`: a user in any of the geographies and any of the departments."""
        geographies_part, _, departments_part = spec.partition(";")
        geographies = _id_list(geographies_part) or set()
        departments = _id_list(departments_part) or set()

        def keep(user: Row) -> bool:
            membership = self._org_membership_of("User", user["id"])
            if membership is None:
                return False
            return (not geographies or self._within(membership["_geography"], geographies)) and (
                not departments or self._within(membership["_department"], departments)
            )

        return keep

    def _within(self, organization_id: str, wanted: set[str]) -> bool:
        organization = self._organizations.get(organization_id)
        return organization is not None and bool(
            ({organization_id} | set(organization["ancestor_ids"])) & wanted
        )

    def _get_user(self, call: Call) -> httpx.Response:
        with self._lock:
            user = self._found(self._users, call)
            return self._answer(call, "users", [user], render=self._render_user, included=self._user_included)

    def _get_me(self, call: Call) -> httpx.Response:
        with self._lock:
            user = self._users[self.api_user_id]
            return self._answer(call, "users", [user], render=self._render_user, included=self._user_included)

    def _update_user(self, call: Call) -> httpx.Response:
        data = _param(call, "user")
        with self._lock:
            user = self._found(self._users, call)
            errors: list[dict[str, Any]] = []
            if "full_name" in data and _blank(data["full_name"]):
                errors.append(_invalid("full_name", "Full name can't be blank"))
            if "email_address" in data:
                errors += self._email_errors(data["email_address"], user["id"], None)
            reference, reference_errors = self._embedded_reference(data, "User", None)
            errors += reference_errors
            if errors:
                raise _validation(errors)
            previous = user["email_address"]
            for name in ("full_name", "email_address"):
                if name in data:
                    user[name] = str(data[name]).strip()
            self._index_email(user["id"], previous)
            if "headline" in data:
                user["headline"] = data["headline"] or ""
            self._link(reference, "User", user["id"])
            self._stamp_user(user["id"])
            return self._answer(call, "users", [user], render=self._render_user, included=self._user_included)

    def _email_errors(self, value: Any, user_id: str | None, index: int | None) -> list[dict[str, Any]]:
        if _blank(value):
            return [_invalid("email_address", "Email address can't be blank", index)]
        if not isinstance(value, str) or not EMAIL.match(value.strip()):
            return [_invalid("email_address", "Email address is invalid", index)]
        if any(holder != user_id for holder in self._users_by_email.get(value.strip().lower(), ())):
            return [_invalid("email_address", "Email address has already been taken", index)]
        return []

    def _render_user(self, user: Row, includes: set[str]) -> Row:
        body = dict(user)
        membership = self._membership(user["id"])
        if "account_membership" in includes:
            body["account_membership_id"] = membership["id"] if membership else None
        if "external_references" in includes:
            body["external_reference_ids"] = [r["id"] for r in self._references_to("User", user["id"])]
        if "skill_memberships" in includes or "skills" in includes:
            skills = [m for m in self._skill_memberships.values() if m["_user"] == user["id"]]
            if "skill_memberships" in includes:
                body["skill_membership_ids"] = [m["id"] for m in skills]
            if "skills" in includes:
                body["skill_ids"] = [m["_skill"] for m in skills]
        if "custom_field_values" in includes:
            body["custom_field_value_ids"] = [v["id"] for v in self._values_of("User", user["id"])]
        if "role" in includes:
            body["role_id"] = membership["_role"] if membership else None
        if "manager" in includes:
            body["manager_id"] = membership["_manager"] if membership else None
        return body

    def _user_included(self, users: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        memberships = [m for m in (self._membership(u["id"]) for u in users) if m is not None]
        if "account_membership" in includes:
            included["account_memberships"] = [self._render_membership(m, set()) for m in memberships]
        if "external_references" in includes:
            included["external_references"] = [
                dict(r) for u in users for r in self._references_to("User", u["id"])
            ]
        ids = {u["id"] for u in users}
        skills = [m for m in self._skill_memberships.values() if m["_user"] in ids]
        if "skill_memberships" in includes:
            included["skill_memberships"] = [self._render_skill_membership(m, set()) for m in skills]
        if "skills" in includes:
            included["skills"] = [self._render_skill(self._skills[m["_skill"]], set()) for m in skills]
        if "custom_field_values" in includes:
            included["custom_field_values"] = [
                self._render_value(v, set()) for u in users for v in self._values_of("User", u["id"])
            ]
        if "role" in includes:
            included["roles"] = [
                self._render_role(self._roles[m["_role"]], set()) for m in memberships if m["_role"]
            ]
        if "manager" in includes:
            included["users"] = [dict(self._users[m["_manager"]]) for m in memberships if m["_manager"]]
        return included

    # ------------------------------------------------------------------ account invitations
    def _create_invitations(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "account_invitation", "account_invitations", limit=50)
        with self._lock:
            errors: list[dict[str, Any]] = []
            prepared = []
            emails: set[str] = set()
            for index, item in enumerate(items):
                position = index if bulk else None
                values, item_errors = self._invitation_values(item, position, creating=True)
                email = str(item.get("email_address") or "").strip().lower()
                if email and email in emails:
                    item_errors.append(
                        _invalid("email_address", "Email address has already been taken", position)
                    )
                emails.add(email)
                reference, reference_errors = self._embedded_reference(item, "User", position)
                errors += item_errors + reference_errors
                prepared.append((item, values, reference))
            if errors:
                raise _validation(errors)
            invitations = []
            for item, values, reference in prepared:
                user_id = self._insert_invitee(
                    str(item["full_name"]).strip(), str(item["email_address"]).strip()
                )
                self._users[user_id]["headline"] = item.get("headline") or ""
                self._link(reference, "User", user_id)
                invitation = self._new_row(
                    "account_invitations",
                    {
                        "full_name": str(item["full_name"]).strip(),
                        "email_address": str(item["email_address"]).strip(),
                        "headline": item.get("headline") or "",
                        **values,
                        "pending": True,
                        "expiration_date": (self.now().date() + timedelta(days=INVITATION_DAYS)).isoformat(),
                        "_invitee": user_id,
                        "_inviter": self.api_user_id,
                    },
                )
                self._store_invitation(invitation)
                invitations.append(invitation)
            return self._answer(
                call,
                "account_invitations",
                invitations,
                render=self._render_invitation,
                included=self._invitation_included,
            )

    def _store_invitation(self, invitation: Row) -> None:
        """A new invitation, pending; noting if it broke the creation order (it cannot while stamps increase)."""
        if self._invitations:
            last = next(reversed(self._invitations.values()))
            if (last["_created"], int(last["id"])) >= (invitation["_created"], int(invitation["id"])):
                self._invitations_in_created_order = False
        self._invitations[invitation["id"]] = invitation
        self._pending[invitation["id"]] = invitation

    def _invitation_values(
        self, data: Mapping[str, Any], index: int | None, *, creating: bool
    ) -> tuple[Row, list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        if creating:
            if _blank(data.get("full_name")):
                errors.append(_invalid("full_name", "Full name can't be blank", index))
            errors += self._email_errors(data.get("email_address"), None, index)
        permission = data.get("permission", "collaborator")
        if permission not in INVITATION_PERMISSIONS:
            errors.append(_invalid("permission", "Permission is not included in the list", index))
        errors += _number_errors(
            data, ("bill_rate_in_cents", "cost_rate_in_cents", "billability_target"), index
        )
        role_id = _id_text(data.get("default_role_id"))
        if role_id is not None and role_id not in self._roles:
            errors.append(_invalid("default_role_id", "Default role must exist", index))
        values: Row = {"permission": permission, "_role": role_id}
        for name in ("bill_rate_in_cents", "cost_rate_in_cents", "billability_target"):
            values[name] = int(data[name]) if _is_int(data.get(name)) else None
        values["default_read_only"] = _truthy(data.get("default_read_only", False))
        return values, errors

    def _list_invitations(self, call: Call) -> httpx.Response:
        pending_only = call.query.get("only_pending") is None or _truthy(call.query["only_pending"])
        name = (call.query.get("by_full_name") or "").lower()
        with self._lock:
            candidates = self._pending if pending_only else self._invitations  # both oldest first
            if name:
                rows = [i for i in candidates.values() if name in i["full_name"].lower()]
            else:
                rows = list(candidates.values())
            return self._listing(
                call,
                "account_invitations",
                rows,
                render=self._render_invitation,
                orders={
                    "created_at": lambda i: i["_created"],
                    "full_name": lambda i: i["full_name"].lower(),
                    "permission": lambda i: i["permission"],
                    "expiration_date": lambda i: i["expiration_date"],
                    "cost_rate": lambda i: i["cost_rate_in_cents"],
                    "bill_rate": lambda i: i["bill_rate_in_cents"],
                },
                default_order="created_at:desc",
                included=self._invitation_included,
                ordered_by="created_at" if self._invitations_in_created_order else None,
            )

    def _get_invitation(self, call: Call) -> httpx.Response:
        with self._lock:
            invitation = self._found(self._invitations, call)
            return self._answer(
                call,
                "account_invitations",
                [invitation],
                render=self._render_invitation,
                included=self._invitation_included,
            )

    def _update_invitation(self, call: Call) -> httpx.Response:
        data = _param(call, "account_invitation")
        with self._lock:
            invitation = self._found(self._invitations, call)
            values, errors = self._invitation_values(
                {**self._invitation_fields(invitation), **data}, None, creating=False
            )
            if not invitation["pending"]:
                errors.append(_invalid("base", "Invitation has already been accepted"))
            if errors:
                raise _validation(errors)
            invitation.update(values)
            self._touch(invitation)
            return self._answer(
                call,
                "account_invitations",
                [invitation],
                render=self._render_invitation,
                included=self._invitation_included,
            )

    @staticmethod
    def _invitation_fields(invitation: Row) -> Row:
        fields = (
            "permission",
            "bill_rate_in_cents",
            "cost_rate_in_cents",
            "billability_target",
            "default_read_only",
        )
        return {**{name: invitation[name] for name in fields}, "default_role_id": invitation["_role"]}

    def _resend_invitation(self, call: Call) -> httpx.Response:
        with self._lock:
            invitation = self._found(self._invitations, call)
            if not invitation["pending"]:
                raise _validation([_invalid("base", "Invitation has already been accepted")])
            invitation["expiration_date"] = (self.now().date() + timedelta(days=INVITATION_DAYS)).isoformat()
            self._touch(invitation)
            return self._answer(call, "account_invitations", [invitation], render=self._render_invitation)

    def _delete_invitation(self, call: Call) -> httpx.Response:
        with self._lock:
            invitation = self._found(self._invitations, call)
            del self._invitations[invitation["id"]]
            self._pending.pop(invitation["id"], None)
        return httpx.Response(204)

    def _render_invitation(self, invitation: Row, includes: set[str]) -> Row:
        body = self._public(invitation)
        if "invitee" in includes:
            body["invitee_id"] = invitation["_invitee"]
        if "inviter" in includes:
            body["inviter_id"] = invitation["_inviter"]
        if "default_role" in includes:
            body["default_role_id"] = invitation["_role"]
        return body

    def _invitation_included(self, invitations: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        users = []
        if "invitee" in includes:
            users += [self._users[i["_invitee"]] for i in invitations]
        if "inviter" in includes:
            users += [self._users[i["_inviter"]] for i in invitations]
        if users:
            included["users"] = [dict(u) for u in users]
        if "default_role" in includes:
            included["roles"] = [
                self._render_role(self._roles[i["_role"]], set()) for i in invitations if i["_role"]
            ]
        return included

    # ------------------------------------------------------------------ account memberships
    def _list_memberships(self, call: Call) -> httpx.Response:
        query = call.query
        keep_status = _status_test(query)
        user_ids = _id_list(query.get("with_user_ids"))
        name = (query.get("by_full_name") or "").lower()
        with self._lock:
            rows = [
                m
                for m in self._memberships.values()
                if keep_status(m)
                and (not query.get("by_user_id") or m["_user"] == query["by_user_id"])
                and (user_ids is None or m["_user"] in user_ids)
                and name in self._users[m["_user"]]["full_name"].lower()
            ]
            return self._listing(
                call,
                "account_memberships",
                rows,
                render=self._render_membership,
                orders={
                    "created_at": lambda m: m["_created"],
                    "updated_at": lambda m: m["_updated"],
                    "full_name": lambda m: self._users[m["_user"]]["full_name"].lower(),
                    "permission": lambda m: m["permission"],
                    "cost_rate": lambda m: m["cost_rate_in_cents"],
                    "bill_rate": lambda m: m["bill_rate_in_cents"],
                    "role": lambda m: self._roles[m["_role"]]["name"] if m["_role"] else None,
                },
                default_order="created_at:desc",
                included=self._membership_included,
            )

    def _get_membership(self, call: Call) -> httpx.Response:
        """Disabled members answer 404 unless asked for with `is_active=false` (or `only_inactive=true`)."""
        with self._lock:
            membership = self._found(self._memberships, call)
            if not _status_test(call.query)(membership):
                return self.not_found_response(call)
            return self._membership_answer(call, membership)

    def _membership_answer(self, call: Call, membership: Row) -> httpx.Response:
        return self._answer(
            call,
            "account_memberships",
            [membership],
            render=self._render_membership,
            included=self._membership_included,
        )

    def _update_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "account_membership")
        with self._lock:
            membership = self._found(self._memberships, call)
            errors: list[dict[str, Any]] = []
            if "permission" in data and data["permission"] not in PERMISSIONS:
                errors.append(_invalid("permission", "Permission is not included in the list"))
            errors += _number_errors(
                data, ("bill_rate_in_cents", "cost_rate_in_cents", "billability_target"), None
            )
            role_id = _id_text(data.get("default_role_id"))
            if role_id is not None and role_id not in self._roles:
                errors.append(_invalid("default_role_id", "Default role must exist"))
            manager_id = _id_text(data.get("manager_id"))
            if manager_id is not None and (
                manager_id == membership["_user"] or manager_id not in self._membership_of
            ):
                errors.append(_invalid("manager_id", "Manager must be another member of the account"))
            if errors:
                raise _validation(errors)
            for name in (
                "permission",
                "billability_target",
                "bill_rate_in_cents",
                "default_read_only",
                "manager_can_approve",
                "manager_can_edit_skills",
                "should_show_alert_on_timesheet_submission",
            ):
                if name in data:
                    value = data[name]
                    membership[name] = (
                        int(value) if name.endswith(("_cents", "_target")) and value is not None else value
                    )
            if "default_role_id" in data:
                membership["_role"] = role_id
            if "manager_id" in data:
                membership["_manager"] = manager_id
            if data.get("cost_rate_in_cents") is not None:
                self._set_cost_rate(membership, self.account_currency, int(data["cost_rate_in_cents"]))
            self._touch(membership)
            return self._membership_answer(call, membership)

    def _set_membership_active(self, call: Call, *, enable: bool) -> httpx.Response:
        with self._lock:
            membership = self._found(self._memberships, call)
            try:
                self._switch_membership(membership, enable=enable)
            except ValueError as error:
                raise _validation([_invalid("base", str(error))]) from None
            return self._membership_answer(call, membership)

    def _switch_membership(self, membership: Row, *, enable: bool) -> None:
        """Disable (keeping every record, `disabled_at` set) or enable again. Re-disabling a disabled member or
        enabling an active one is refused (422), an assumption: Kantata does not document it."""
        if enable:
            if membership["_disabled"] is None:
                raise ValueError("Account membership is already active")
            membership["_disabled"] = None
        else:
            if membership["is_owner"]:
                raise ValueError("The account owner cannot be disabled")
            if membership["_disabled"] is not None:
                raise ValueError("Account membership is already disabled")
            membership["_disabled"] = self._stamp()
        self._touch(membership)
        self._stamp_user(membership["_user"])

    def _delete_membership(self, call: Call) -> httpx.Response:
        """Removes the person from the account (Kantata moves them to an account of their own)."""
        with self._lock:
            membership = self._found(self._memberships, call)
            if membership["is_owner"]:
                raise _validation([_invalid("base", "The account owner cannot be removed")])
            del self._memberships[membership["id"]]
            del self._membership_of[membership["_user"]]
            self._stamp_user(membership["_user"])
        return httpx.Response(204)

    def _render_membership(self, membership: Row, includes: set[str]) -> Row:
        body = self._public(membership)
        permission = membership["permission"]
        body.update(
            disabled_at=self._render_time(membership["_disabled"]),
            is_administrator=permission == "administrator",
            is_project_lead=permission in LEAD_PERMISSIONS,
            is_punch_clock_user=permission == "punch_clock",
            can_create_workspace=permission in (*LEAD_PERMISSIONS, "project_creator"),
            can_view_reports=permission in ("administrator", "reports_viewer_with_cost", "reports_viewer"),
        )
        if "user" in includes:
            body["user_id"] = membership["_user"]
        if "default_role" in includes:
            body["default_role_id"] = membership["_role"]
        if "manager" in includes:
            body["manager_id"] = membership["_manager"]
        if "cost_rates" in includes:
            body["cost_rate_ids"] = [r["id"] for r in self._rates_of(membership["id"])]
        if "skill_memberships" in includes:
            body["skill_membership_ids"] = [
                m["id"] for m in self._skill_memberships.values() if m["_user"] == membership["_user"]
            ]
        if "effective_workweek" in includes:
            body["effective_workweek_id"] = self._effective_workweek(membership["_user"], self.now().date())[
                "id"
            ]
        return body

    def _membership_included(self, memberships: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        users: list[Row] = []
        if "user" in includes:
            users += [self._users[m["_user"]] for m in memberships]
        if "manager" in includes:
            users += [self._users[m["_manager"]] for m in memberships if m["_manager"]]
        if users:
            included["users"] = [dict(u) for u in users]
        if "default_role" in includes:
            included["roles"] = [
                self._render_role(self._roles[m["_role"]], set()) for m in memberships if m["_role"]
            ]
        if "cost_rates" in includes:
            included["cost_rates"] = [
                self._render_cost_rate(r, set()) for m in memberships for r in self._rates_of(m["id"])
            ]
        if "skill_memberships" in includes:
            owners = {m["_user"] for m in memberships}
            included["skill_memberships"] = [
                self._render_skill_membership(s, set())
                for s in self._skill_memberships.values()
                if s["_user"] in owners
            ]
        if "effective_workweek" in includes:
            today = self.now().date()
            included["workweeks"] = [
                self._render_workweek(self._effective_workweek(m["_user"], today), set()) for m in memberships
            ]
        return included

    # ------------------------------------------------------------------ cost rates
    def _rates_of(self, membership_id: str) -> list[Row]:
        return [r for r in self._cost_rates.values() if r["_membership"] == membership_id]

    def _set_cost_rate(self, membership: Row, currency: str, amount: int) -> Row:
        """One rate per member and currency: a second one overrides the first (as Kantata's POST does)."""
        existing = next((r for r in self._rates_of(membership["id"]) if r["currency"] == currency), None)
        if existing is None:
            existing = self._new_row(
                "cost_rates",
                {"currency": currency, "amount_in_subunits": amount, "_membership": membership["id"]},
            )
            self._cost_rates[existing["id"]] = existing
        elif existing["amount_in_subunits"] != amount:
            existing["amount_in_subunits"] = amount
            self._touch(existing)
        if currency == self.account_currency and membership["cost_rate_in_cents"] != amount:
            membership["cost_rate_in_cents"] = amount
            self._touch(membership)
        return existing

    def _create_cost_rates(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "cost_rate", "cost_rates", limit=100)
        with self._lock:
            errors: list[dict[str, Any]] = []
            for index, item in enumerate(items):
                position = index if bulk else None
                membership_id = _id_text(item.get("account_membership_id"))
                if membership_id is None:
                    errors.append(
                        _invalid("account_membership_id", "Account membership can't be blank", position)
                    )
                elif membership_id not in self._memberships:
                    errors.append(
                        _invalid("account_membership_id", "Account membership must exist", position)
                    )
                currency = item.get("currency")
                if _blank(currency):
                    errors.append(_invalid("currency", "Currency can't be blank", position))
                elif not isinstance(currency, str) or not CURRENCY.match(currency):
                    errors.append(_invalid("currency", "Currency is not included in the list", position))
                errors += _amount_errors(item, position)
            if errors:
                raise _validation(errors)
            rates = [
                self._set_cost_rate(
                    self._memberships[str(item["account_membership_id"])],
                    str(item["currency"]),
                    int(item["amount_in_subunits"]),
                )
                for item in items
            ]
            return self._answer(
                call, "cost_rates", rates, render=self._render_cost_rate, included=self._rate_included
            )

    def _list_cost_rates(self, call: Call) -> httpx.Response:
        with self._lock:
            return self._listing(
                call,
                "cost_rates",
                list(self._cost_rates.values()),
                render=self._render_cost_rate,
                orders={"created_at": lambda r: r["_created"]},
                default_order="created_at:asc",
                included=self._rate_included,
            )

    def _update_cost_rate(self, call: Call) -> httpx.Response:
        data = _param(call, "cost_rate")
        with self._lock:
            rate = self._found(self._cost_rates, call)
            errors = _amount_errors(data, None)
            if errors:
                raise _validation(errors)
            self._set_cost_rate(
                self._memberships[rate["_membership"]], rate["currency"], int(data["amount_in_subunits"])
            )
            return self._answer(
                call, "cost_rates", [rate], render=self._render_cost_rate, included=self._rate_included
            )

    def _delete_cost_rate(self, call: Call) -> httpx.Response:
        with self._lock:
            rate = self._found(self._cost_rates, call)
            del self._cost_rates[rate["id"]]
            membership = self._memberships.get(rate["_membership"])
            if membership is not None and rate["currency"] == self.account_currency:
                membership["cost_rate_in_cents"] = None
                self._touch(membership)
        return httpx.Response(204)

    def _render_cost_rate(self, rate: Row, includes: set[str]) -> Row:
        body = self._public(rate)
        membership = self._memberships.get(rate["_membership"])
        user_id = membership["_user"] if membership else None
        body["account_membership_id"] = int(rate["_membership"])
        body["in_use"] = any(
            r["_user"] == user_id
            and self._workspaces.get(r["_workspace"], {}).get("currency") == rate["currency"]
            for r in self._resources.values()
        )
        return body

    def _rate_included(self, rates: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        if "account_membership" not in includes:
            return {}
        members = [
            self._memberships[r["_membership"]] for r in rates if r["_membership"] in self._memberships
        ]
        return {"account_memberships": [self._render_membership(m, set()) for m in members]}

    # ------------------------------------------------------------------ roles
    def _insert_role(self, name: str) -> Row:
        role = self._new_row("roles", {"name": name, "_deleted": None})
        self._roles[role["id"]] = role
        return role

    def _render_role(self, role: Row, includes: set[str]) -> Row:
        body = self._public(role)
        body["deleted_at"] = self._render_time(role["_deleted"])
        if "external_references" in includes:
            body["external_reference_ids"] = [r["id"] for r in self._references_to("Role", role["id"])]
        return body

    def _list_roles(self, call: Call) -> httpx.Response:
        active_only = call.query.get("only_active") is None or _truthy(call.query["only_active"])
        matching = (call.query.get("matching") or "").lower()
        with self._lock:
            rows = [
                r
                for r in self._roles.values()
                if (not active_only or r["_deleted"] is None) and matching in r["name"].lower()
            ]
            return self._listing(
                call,
                "roles",
                rows,
                render=self._render_role,
                orders={"alphabetical": lambda r: r["name"].lower()},
                default_order="alphabetical:asc",
            )

    def _get_role(self, call: Call) -> httpx.Response:
        with self._lock:
            return self._answer(call, "roles", [self._found(self._roles, call)], render=self._render_role)

    def _create_roles(self, call: Call) -> httpx.Response:
        data = _param(call, "role")
        with self._lock:
            errors = self._name_errors(data.get("name"), self._roles.values(), None)
            reference, reference_errors = self._embedded_reference(data, "Role", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            role = self._insert_role(str(data["name"]).strip())
            self._link(reference, "Role", role["id"])
            return self._answer(call, "roles", [role], render=self._render_role)

    @staticmethod
    def _name_errors(
        name: Any, existing: Iterable[Row], index: int | None, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        if _blank(name):
            return [_invalid("name", "Name can't be blank", index)]
        wanted = str(name).strip().lower()
        if any(
            r["name"].lower() == wanted and r["id"] != exclude and not r.get("_deleted") for r in existing
        ):
            return [_invalid("name", "Name has already been taken", index)]
        return []

    # ------------------------------------------------------------------ skills
    def _list_skill_categories(self, call: Call) -> httpx.Response:
        with self._lock:
            return self._listing(
                call,
                "skill_categories",
                list(self._skill_categories.values()),
                render=lambda c, _: self._public(c),
                orders={"alphabetical": lambda c: c["name"].lower()},
                default_order="alphabetical:asc",
            )

    def _skill_values(
        self, data: Mapping[str, Any], index: int | None, exclude: str | None
    ) -> tuple[Row, list[dict[str, Any]]]:
        errors = self._name_errors(data.get("name"), self._skills.values(), index, exclude)
        level = data.get("max_level")
        if level is None or not _is_int(level) or int(level) not in SKILL_MAX_LEVELS:
            errors.append(_invalid("max_level", "Max level must be 1 or 5", index))
        category_id = _id_text(data.get("skill_category_id"))
        if category_id is None:
            errors.append(_invalid("skill_category_id", "Skill category can't be blank", index))
        elif category_id not in self._skill_categories:
            errors.append(_invalid("skill_category_id", "Skill category must exist", index))
        values = {
            "name": str(data.get("name") or "").strip(),
            "description": data.get("description") or "",
            "max_level": str(level),
            "_category": category_id,
        }
        return values, errors

    def _create_skills(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "skill", "skills", limit=200)
        with self._lock:
            prepared = [
                self._skill_values(item, index if bulk else None, None) for index, item in enumerate(items)
            ]
            errors = [e for _, item_errors in prepared for e in item_errors]
            references = [
                self._embedded_reference(item, "Skill", i if bulk else None) for i, item in enumerate(items)
            ]
            errors += [e for _, reference_errors in references for e in reference_errors]
            names = [values["name"].lower() for values, _ in prepared]
            if len(set(names)) != len(names):
                errors.append(_invalid("name", "Name has already been taken"))
            if len(self._skills) + len(items) > MAX_SKILLS_PER_ACCOUNT:
                errors.append(
                    _invalid("base", f"An account cannot have more than {MAX_SKILLS_PER_ACCOUNT} skills")
                )
            if errors:
                raise _validation(errors)
            skills = [self._new_row("skills", values) for values, _ in prepared]
            for skill, (reference, _) in zip(skills, references, strict=True):
                self._skills[skill["id"]] = skill
                self._link(reference, "Skill", skill["id"])
            return self._answer(
                call, "skills", skills, render=self._render_skill, included=self._skill_included
            )

    def _list_skills(self, call: Call) -> httpx.Response:
        categories = _id_list(call.query.get("skill_category_ids"))
        matching = (call.query.get("matching") or "").lower()
        with self._lock:
            rows = [
                s
                for s in self._skills.values()
                if (categories is None or s["_category"] in categories) and matching in s["name"].lower()
            ]
            return self._listing(
                call,
                "skills",
                rows,
                render=self._render_skill,
                orders={"alphabetical": lambda s: s["name"].lower()},
                default_order="alphabetical:asc",
                included=self._skill_included,
            )

    def _get_skill(self, call: Call) -> httpx.Response:
        with self._lock:
            skill = self._found(self._skills, call)
            return self._answer(
                call, "skills", [skill], render=self._render_skill, included=self._skill_included
            )

    def _update_skill(self, call: Call) -> httpx.Response:
        data = _param(call, "skill")
        with self._lock:
            skill = self._found(self._skills, call)
            current = {
                "name": skill["name"],
                "max_level": skill["max_level"],
                "skill_category_id": skill["_category"],
                "description": skill["description"],
            }
            values, errors = self._skill_values({**current, **data}, None, skill["id"])
            if errors:
                raise _validation(errors)
            skill.update(values)
            self._touch(skill)
            return self._answer(
                call, "skills", [skill], render=self._render_skill, included=self._skill_included
            )

    def _delete_skill(self, call: Call) -> httpx.Response:
        """Deleting a skill removes it from everyone who had it (an assumption)."""
        with self._lock:
            skill = self._found(self._skills, call)
            del self._skills[skill["id"]]
            for membership_id in [
                m["id"] for m in self._skill_memberships.values() if m["_skill"] == skill["id"]
            ]:
                del self._skill_memberships[membership_id]
        return httpx.Response(204)

    def _render_skill(self, skill: Row, includes: set[str]) -> Row:
        body = self._public(skill)
        if "skill_category" in includes:
            body["skill_category_id"] = skill["_category"]
        if "external_references" in includes:
            body["external_reference_ids"] = [r["id"] for r in self._references_to("Skill", skill["id"])]
        return body

    def _skill_included(self, skills: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "skill_category" in includes:
            included["skill_categories"] = [
                self._public(self._skill_categories[s["_category"]]) for s in skills
            ]
        if "external_references" in includes:
            included["external_references"] = [
                dict(r) for s in skills for r in self._references_to("Skill", s["id"])
            ]
        return included

    def _create_skill_memberships(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "skill_membership", "skill_memberships", limit=200)
        with self._lock:
            errors: list[dict[str, Any]] = []
            taken = {(m["_user"], m["_skill"]) for m in self._skill_memberships.values()}
            counts: dict[str, int] = {}
            for m in self._skill_memberships.values():
                counts[m["_user"]] = counts.get(m["_user"], 0) + 1
            for index, item in enumerate(items):
                position = index if bulk else None
                skill_id = _id_text(item.get("skill_id"))
                user_id = _id_text(item.get("user_id"))
                if skill_id is None:
                    errors.append(_invalid("skill_id", "Skill can't be blank", position))
                elif skill_id not in self._skills:
                    errors.append(_invalid("skill_id", "Skill must exist", position))
                if user_id is None:
                    errors.append(_invalid("user_id", "User can't be blank", position))
                elif user_id not in self._users:
                    errors.append(_invalid("user_id", "User must exist", position))
                if skill_id in self._skills:
                    errors += self._level_errors(item.get("level", 0), self._skills[skill_id], position)
                if (user_id, skill_id) in taken:
                    errors.append(_invalid("skill_id", "Skill has already been taken", position))
                taken.add((user_id, skill_id))
                if user_id is not None:
                    counts[user_id] = counts.get(user_id, 0) + 1
                    if counts[user_id] > MAX_SKILLS_PER_USER:
                        errors.append(
                            _invalid(
                                "base", f"A user cannot have more than {MAX_SKILLS_PER_USER} skills", position
                            )
                        )
            if errors:
                raise _validation(errors)
            created = [
                self._insert_skill_membership(str(i["user_id"]), str(i["skill_id"]), int(i.get("level") or 0))
                for i in items
            ]
            return self._answer(
                call,
                "skill_memberships",
                created,
                render=self._render_skill_membership,
                included=self._skill_membership_included,
            )

    @staticmethod
    def _level_errors(level: Any, skill: Row, index: int | None) -> list[dict[str, Any]]:
        if not _is_int(level) or not 0 <= int(level) <= int(skill["max_level"]):
            return [_invalid("level", f"Level must be between 0 and {skill['max_level']}", index)]
        return []

    def _insert_skill_membership(self, user_id: str, skill_id: str, level: int) -> Row:
        membership = self._new_row(
            "skill_memberships",
            {"level": level, "_user": user_id, "_skill": skill_id, "_creator": self.api_user_id},
        )
        self._skill_memberships[membership["id"]] = membership
        return membership

    def _list_skill_memberships(self, call: Call) -> httpx.Response:
        query = call.query
        user_ids = _id_list(query.get("user_ids"))
        skill_ids = _id_list(query.get("by_skill_ids"))
        if query.get("by_skill_id"):
            skill_ids = (skill_ids or set()) | {query["by_skill_id"]}
        skill_name = (query.get("by_skill_name") or "").lower()
        active_only = _truthy(query.get("active_account_members_only"))
        with self._lock:
            rows = [
                m
                for m in self._skill_memberships.values()
                if (user_ids is None or m["_user"] in user_ids)
                and (skill_ids is None or m["_skill"] in skill_ids)
                and skill_name in self._skills[m["_skill"]]["name"].lower()
                and (not active_only or self._active_member(m["_user"]))
            ]
            return self._listing(
                call,
                "skill_memberships",
                rows,
                render=self._render_skill_membership,
                orders={
                    "created_at": lambda m: m["_created"],
                    "skill_name": lambda m: self._skills[m["_skill"]]["name"].lower(),
                    "full_name": lambda m: self._users[m["_user"]]["full_name"].lower(),
                },
                default_order="created_at:desc",
                included=self._skill_membership_included,
            )

    def _get_skill_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._skill_memberships, call)
            return self._answer(
                call,
                "skill_memberships",
                [membership],
                render=self._render_skill_membership,
                included=self._skill_membership_included,
            )

    def _update_skill_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "skill_membership")
        with self._lock:
            membership = self._found(self._skill_memberships, call)
            errors = self._level_errors(data.get("level", 0), self._skills[membership["_skill"]], None)
            if errors:
                raise _validation(errors)
            membership["level"] = int(data.get("level") or 0)
            self._touch(membership)
            return self._answer(
                call,
                "skill_memberships",
                [membership],
                render=self._render_skill_membership,
                included=self._skill_membership_included,
            )

    def _delete_skill_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._skill_memberships, call)
            del self._skill_memberships[membership["id"]]
        return httpx.Response(204)

    def _render_skill_membership(self, membership: Row, includes: set[str]) -> Row:
        body = self._public(membership)
        skill = self._skills[membership["_skill"]]
        body.update(cached_skill_name=skill["name"], max_level=int(skill["max_level"]))
        for name, key in (("skill", "_skill"), ("user", "_user"), ("creator", "_creator")):
            if name in includes:
                body[f"{name}_id"] = membership[key]
        return body

    def _skill_membership_included(self, memberships: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "skill" in includes:
            included["skills"] = [self._render_skill(self._skills[m["_skill"]], set()) for m in memberships]
        users = [m["_user"] for m in memberships] if "user" in includes else []
        users += [m["_creator"] for m in memberships] if "creator" in includes else []
        if users:
            included["users"] = [dict(self._users[u]) for u in users]
        return included

    # ------------------------------------------------------------------ organizations (departments, geographies)
    def _insert_organization(self, name: str, kind: str, parent_id: str | None) -> Row:
        parent = self._organizations.get(parent_id or "")
        ancestors = [*parent["ancestor_ids"], parent["id"]] if parent else []
        organization = self._new_row(
            "organizations", {"name": name, "type": kind, "parent_id": parent_id, "ancestor_ids": ancestors}
        )
        self._organizations[organization["id"]] = organization
        return organization

    def _root_organization(self, kind: str) -> str:
        return next(
            o["id"] for o in self._organizations.values() if o["type"] == kind and o["parent_id"] is None
        )

    def _create_organizations(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "organization", "organizations", limit=100)
        with self._lock:
            errors: list[dict[str, Any]] = []
            names: set[str] = set()
            for index, item in enumerate(items):
                position = index if bulk else None
                errors += self._name_errors(item.get("name"), self._organizations.values(), position)
                name = str(item.get("name") or "").strip().lower()
                if name and name in names:
                    errors.append(_invalid("name", "Name has already been taken", position))
                names.add(name)
                parent_id = _id_text(item.get("parent_id"))
                if parent_id is None:
                    errors.append(_invalid("parent_id", "Parent can't be blank", position))
                elif parent_id not in self._organizations:
                    errors.append(_invalid("parent_id", "Parent must exist", position))
            if errors:
                raise _validation(errors)
            created = []
            for item in items:
                parent_id = str(item["parent_id"])
                created.append(
                    self._insert_organization(
                        str(item["name"]).strip(), self._organizations[parent_id]["type"], parent_id
                    )
                )
            return self._answer(call, "organizations", created, render=lambda o, _: self._public(o))

    def _list_organizations(self, call: Call) -> httpx.Response:
        kind = call.query.get("type")
        matching = (call.query.get("matching") or "").lower()
        with self._lock:
            rows = [
                o
                for o in self._organizations.values()
                if (not kind or o["type"].lower() == kind.lower()) and matching in o["name"].lower()
            ]
            return self._listing(
                call,
                "organizations",
                rows,
                render=lambda o, _: self._public(o),
                orders={"alphabetical": lambda o: o["name"].lower(), "created_at": lambda o: o["_created"]},
                default_order="alphabetical:asc",
            )

    def _get_organization(self, call: Call) -> httpx.Response:
        with self._lock:
            organization = self._found(self._organizations, call)
            return self._answer(call, "organizations", [organization], render=lambda o, _: self._public(o))

    def _org_membership_of(self, member_type: str, member_id: str) -> Row | None:
        """The member's oldest organization membership (through the index)."""
        return next(iter(self._org_memberships_of.get((member_type, member_id), {}).values()), None)

    def _org_errors(self, data: Mapping[str, Any], index: int | None) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        for field, kind in (("department_id", "Department"), ("geography_id", "Geography")):
            organization_id = _id_text(data.get(field))
            label = field.removesuffix("_id").capitalize()
            if organization_id is None:
                errors.append(_invalid(field, f"{label} can't be blank", index))
            elif self._organizations.get(organization_id, {}).get("type") != kind:
                errors.append(_invalid(field, f"{label} must be a {kind.lower()}", index))
        return errors

    def _create_org_memberships(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "organization_membership", "organization_memberships", limit=100)
        with self._lock:
            errors: list[dict[str, Any]] = []
            members: set[tuple[str, str]] = set()
            for index, item in enumerate(items):
                position = index if bulk else None
                errors += self._org_errors(item, position)
                member_type = MEMBER_TYPES.get(str(item.get("member_type") or "").lower())
                member_id = _id_text(item.get("member_id"))
                if member_type is None:
                    errors.append(
                        _invalid("member_type", "Member type is not included in the list", position)
                    )
                if member_id is None:
                    errors.append(_invalid("member_id", "Member can't be blank", position))
                elif member_type is not None:
                    store = self._users if member_type == "User" else self._workspaces
                    if member_id not in store:
                        errors.append(_invalid("member_id", "Member must exist", position))
                    elif (
                        self._org_membership_of(member_type, member_id) or (member_type, member_id) in members
                    ):
                        errors.append(_invalid("member_id", "Member has already been taken", position))
                    members.add((member_type, member_id))
            if errors:
                raise _validation(errors)
            created = [
                self._insert_org_membership(
                    MEMBER_TYPES[str(i["member_type"]).lower()],
                    str(i["member_id"]),
                    str(i["department_id"]),
                    str(i["geography_id"]),
                )
                for i in items
            ]
            return self._answer(
                call,
                "organization_memberships",
                created,
                render=self._render_org_membership,
                included=self._org_membership_included,
            )

    def _insert_org_membership(
        self, member_type: str, member_id: str, department_id: str, geography_id: str
    ) -> Row:
        membership = self._new_row(
            "organization_memberships",
            {
                "member_id": member_id,
                "member_type": member_type,
                "primary": True,
                "_department": department_id,
                "_geography": geography_id,
            },
        )
        self._org_memberships[membership["id"]] = membership
        self._org_memberships_of.setdefault((member_type, member_id), {})[membership["id"]] = membership
        if member_type == "User":
            self._stamp_user(member_id)
        return membership

    def _list_org_memberships(self, call: Call) -> httpx.Response:
        query = call.query
        member_type = MEMBER_TYPES.get((query.get("member_type") or "").lower())
        with self._lock:
            candidates: Iterable[Row] = self._org_memberships.values()
            if query.get("member_id"):  # the member's own, through the index (the listing sorts them)
                candidates = [
                    m
                    for kind in MEMBER_TYPES.values()
                    for m in self._org_memberships_of.get((kind, query["member_id"]), {}).values()
                ]
            rows = [
                m
                for m in candidates
                if (not query.get("member_id") or m["member_id"] == query["member_id"])
                and (member_type is None or m["member_type"] == member_type)
                and (not query.get("department_id") or m["_department"] == query["department_id"])
                and (not query.get("geography_id") or m["_geography"] == query["geography_id"])
                and (query.get("primary") is None or m["primary"] == _truthy(query["primary"]))
            ]
            return self._listing(
                call,
                "organization_memberships",
                rows,
                render=self._render_org_membership,
                orders={"created_at": lambda m: m["_created"], "updated_at": lambda m: m["_updated"]},
                default_order="created_at:asc",
                included=self._org_membership_included,
            )

    def _get_org_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._org_memberships, call)
            return self._answer(
                call,
                "organization_memberships",
                [membership],
                render=self._render_org_membership,
                included=self._org_membership_included,
            )

    def _update_org_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "organization_membership")
        with self._lock:
            membership = self._found(self._org_memberships, call)
            merged = {
                "department_id": membership["_department"],
                "geography_id": membership["_geography"],
                **data,
            }
            errors = self._org_errors(merged, None)
            if errors:
                raise _validation(errors)
            membership["_department"] = str(merged["department_id"])
            membership["_geography"] = str(merged["geography_id"])
            self._touch(membership)
            if membership["member_type"] == "User":
                self._stamp_user(membership["member_id"])
            return self._answer(
                call,
                "organization_memberships",
                [membership],
                render=self._render_org_membership,
                included=self._org_membership_included,
            )

    def _delete_org_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._org_memberships, call)
            del self._org_memberships[membership["id"]]
            member = (membership["member_type"], membership["member_id"])
            del self._org_memberships_of[member][membership["id"]]
            if not self._org_memberships_of[member]:
                del self._org_memberships_of[member]
        return httpx.Response(204)

    def _render_org_membership(self, membership: Row, includes: set[str]) -> Row:
        body = self._public(membership)
        if "department" in includes:
            body["department_id"] = membership["_department"]
        if "geography" in includes:
            body["geography_id"] = membership["_geography"]
        return body

    def _org_membership_included(self, memberships: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        ids = [m["_department"] for m in memberships] if "department" in includes else []
        ids += [m["_geography"] for m in memberships] if "geography" in includes else []
        return {"organizations": [self._public(self._organizations[i]) for i in ids]} if ids else {}

    # ------------------------------------------------------------------ workweeks (standard calendar)
    def _insert_workweek(self, start_date: str, minutes: Mapping[str, int], *, default: bool) -> Row:
        values: Row = {"default": default, "start_date": start_date, "end_date": None}
        values.update({f"{day}_minutes": int(minutes.get(day, 0)) for day in DAYS})
        values["total_minutes"] = sum(values[f"{day}_minutes"] for day in DAYS)
        workweek = self._new_row("workweeks", values)
        self._workweeks[workweek["id"]] = workweek
        if default:
            self._close_default_workweeks()
        return workweek

    def _close_default_workweeks(self) -> None:
        """Each default workweek runs until the day before the next one starts."""
        defaults = sorted(
            (w for w in self._workweeks.values() if w["default"]), key=lambda w: w["start_date"]
        )
        for current, following in _with_next(defaults):
            end = _day_before(following["start_date"]) if following else None
            if current["end_date"] != end:
                current["end_date"] = end
                self._touch(current)

    def _minutes_errors(self, data: Mapping[str, Any], index: int | None) -> list[dict[str, Any]]:
        errors = []
        for day in DAYS:
            value = data.get(f"{day}_minutes")
            if value is not None and (not _is_int(value) or not 0 <= int(value) <= MINUTES_PER_DAY):
                errors.append(
                    _invalid(
                        f"{day}_minutes", f"{day.capitalize()} minutes must be between 0 and 1440", index
                    )
                )
        return errors

    @staticmethod
    def _sunday_errors(value: Any) -> list[dict[str, Any]]:
        if not _is_date(value):
            return [_invalid("start_date", "Start date is not a valid date")]
        if date.fromisoformat(value).weekday() != 6:
            return [_invalid("start_date", "Start date must be a Sunday")]
        return []

    def _create_workweek(self, call: Call) -> httpx.Response:
        data = _param(call, "workweek")
        with self._lock:
            errors = self._sunday_errors(data.get("start_date")) + self._minutes_errors(data, None)
            if not errors and any(
                w["default"] and w["start_date"] == data["start_date"] for w in self._workweeks.values()
            ):
                errors.append(_invalid("start_date", "Start date has already been taken"))
            if errors:
                raise _validation(errors)
            minutes = {day: int(data.get(f"{day}_minutes") or 0) for day in DAYS}
            workweek = self._insert_workweek(str(data["start_date"]), minutes, default=True)
            return self._answer(call, "workweeks", [workweek], render=self._render_workweek)

    def _list_workweeks(self, call: Call) -> httpx.Response:
        """Only the account's default workweeks (a member's own workweeks come with their membership)."""
        effective = call.query.get("effective_date")
        with self._lock:
            rows = [
                w
                for w in self._workweeks.values()
                if w["default"] and (not effective or w["end_date"] is None or w["end_date"] >= effective)
            ]
            return self._listing(
                call,
                "workweeks",
                rows,
                render=self._render_workweek,
                orders={"start_date": lambda w: w["start_date"], "created_at": lambda w: w["_created"]},
                default_order="start_date:asc",
            )

    def _get_workweek(self, call: Call) -> httpx.Response:
        with self._lock:
            return self._answer(
                call, "workweeks", [self._found(self._workweeks, call)], render=self._render_workweek
            )

    def _render_workweek(self, workweek: Row, includes: set[str]) -> Row:
        body = self._public(workweek)
        if "workweek_memberships" in includes:
            body["workweek_membership_ids"] = [
                m["id"] for m in self._workweek_memberships.values() if m["_workweek"] == workweek["id"]
            ]
        return body

    def _default_workweek(self, day: date) -> Row:
        defaults = [
            w for w in self._workweeks.values() if w["default"] and w["start_date"] <= day.isoformat()
        ]
        return max(defaults, key=lambda w: w["start_date"])

    def _effective_workweek(self, user_id: str, day: date) -> Row:
        """The member's own workweek in effect on `day`, else the account default's."""
        own = [
            m
            for m in self._workweek_memberships.values()
            if m["_user"] == user_id and m["start_date"] <= day.isoformat()
        ]
        if own:
            return self._workweeks[max(own, key=lambda m: m["start_date"])["_workweek"]]
        return self._default_workweek(day)

    def available_minutes(self, user_id: str, day: date | str) -> int:
        """The minutes the user's workweek makes available on `day` (holidays and time off are not simulated)."""
        moment = date.fromisoformat(day) if isinstance(day, str) else day
        with self._lock:
            workweek = self._effective_workweek(str(user_id), moment)
            return int(workweek[f"{DAYS[(moment.weekday() + 1) % 7]}_minutes"])

    def _create_workweek_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "workweek_membership")
        with self._lock:
            membership = self._add_workweek_membership(data)
            return self._answer(
                call,
                "workweek_memberships",
                [membership],
                render=self._render_workweek_membership,
                included=self._workweek_membership_included,
            )

    def _add_workweek_membership(self, data: Mapping[str, Any]) -> Row:
        user_id = _id_text(data.get("user_id"))
        errors: list[dict[str, Any]] = []
        if user_id is None:
            errors.append(_invalid("user_id", "User can't be blank"))
        elif user_id not in self._users:
            errors.append(_invalid("user_id", "User must exist"))
        start = data.get("start_date") or _sunday_on_or_before(self.now().date()).isoformat()
        errors += self._sunday_errors(start) + self._minutes_errors(data, None)
        if not errors and any(
            m["_user"] == user_id and m["start_date"] == start for m in self._workweek_memberships.values()
        ):
            errors.append(_invalid("start_date", "Start date has already been taken"))
        if errors:
            raise _validation(errors)
        base = self._default_workweek(date.fromisoformat(start))
        minutes = {
            day: int(data[f"{day}_minutes"])
            if data.get(f"{day}_minutes") is not None
            else base[f"{day}_minutes"]
            for day in DAYS
        }
        workweek = self._insert_workweek(start, minutes, default=False)
        membership = self._new_row(
            "workweek_memberships",
            {
                "start_date": start,
                "end_date": None,
                "user_id": int(user_id or 0),
                "_user": user_id,
                "_workweek": workweek["id"],
            },
        )
        self._workweek_memberships[membership["id"]] = membership
        self._close_workweek_memberships(str(user_id))
        return membership

    def _close_workweek_memberships(self, user_id: str) -> None:
        own = sorted(
            (m for m in self._workweek_memberships.values() if m["_user"] == user_id),
            key=lambda m: m["start_date"],
        )
        for current, following in _with_next(own):
            end = _day_before(following["start_date"]) if following else None
            if current["end_date"] != end:
                current["end_date"] = end
                self._workweeks[current["_workweek"]]["end_date"] = end
                self._touch(current)

    def _list_workweek_memberships(self, call: Call) -> httpx.Response:
        user_ids = _id_list(call.query.get("user_ids"))
        effective = call.query.get("effective_date")
        with self._lock:
            rows = [
                m
                for m in self._workweek_memberships.values()
                if (user_ids is None or m["_user"] in user_ids)
                and (
                    not effective
                    or (
                        m["start_date"] <= effective and (m["end_date"] is None or m["end_date"] >= effective)
                    )
                )
            ]
            return self._listing(
                call,
                "workweek_memberships",
                rows,
                render=self._render_workweek_membership,
                orders={"start_date": lambda m: m["start_date"]},
                default_order="start_date:asc",
                included=self._workweek_membership_included,
            )

    def _get_workweek_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._workweek_memberships, call)
            return self._answer(
                call,
                "workweek_memberships",
                [membership],
                render=self._render_workweek_membership,
                included=self._workweek_membership_included,
            )

    def _update_workweek_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "workweek_membership")
        with self._lock:
            membership = self._found(self._workweek_memberships, call)
            errors = self._minutes_errors(data, None)
            if "start_date" in data:
                errors += self._sunday_errors(data["start_date"])
                if not errors and any(
                    m["_user"] == membership["_user"]
                    and m["start_date"] == data["start_date"]
                    and m is not membership
                    for m in self._workweek_memberships.values()
                ):
                    errors.append(_invalid("start_date", "Start date has already been taken"))
            if errors:
                raise _validation(errors)
            workweek = self._workweeks[membership["_workweek"]]
            for day in DAYS:
                if data.get(f"{day}_minutes") is not None:
                    workweek[f"{day}_minutes"] = int(data[f"{day}_minutes"])
            workweek["total_minutes"] = sum(workweek[f"{day}_minutes"] for day in DAYS)
            if "start_date" in data:
                membership["start_date"] = workweek["start_date"] = data["start_date"]
            self._touch(workweek)
            self._touch(membership)
            self._close_workweek_memberships(membership["_user"])
            return self._answer(
                call,
                "workweek_memberships",
                [membership],
                render=self._render_workweek_membership,
                included=self._workweek_membership_included,
            )

    def _delete_workweek_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._workweek_memberships, call)
            del self._workweek_memberships[membership["id"]]
            self._workweeks.pop(membership["_workweek"], None)
            self._close_workweek_memberships(membership["_user"])
        return httpx.Response(204)

    def _render_workweek_membership(self, membership: Row, includes: set[str]) -> Row:
        body = self._public(membership)
        if "workweek" in includes:
            body["workweek_id"] = membership["_workweek"]
        return body

    def _workweek_membership_included(
        self, memberships: list[Row], includes: set[str]
    ) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "workweek" in includes:
            included["workweeks"] = [
                self._render_workweek(self._workweeks[m["_workweek"]], set()) for m in memberships
            ]
        if "user" in includes:
            included["users"] = [dict(self._users[m["_user"]]) for m in memberships]
        return included

    # ------------------------------------------------------------------ holiday calendars
    def _create_holiday_calendar(self, call: Call) -> httpx.Response:
        data = _param(call, "holiday_calendar")
        with self._lock:
            errors = self._name_errors(data.get("name"), self._holiday_calendars.values(), None)
            if errors:
                raise _validation(errors)
            calendar = self._insert_holiday_calendar(str(data["name"]).strip())
            return self._answer(call, "holiday_calendars", [calendar], render=self._render_holiday_calendar)

    def _insert_holiday_calendar(self, name: str) -> Row:
        calendar = self._new_row("holiday_calendars", {"name": name, "default": not self._holiday_calendars})
        self._holiday_calendars[calendar["id"]] = calendar
        return calendar

    @staticmethod
    def _render_holiday_calendar(calendar: Row, includes: set[str]) -> Row:
        return {"id": calendar["id"], "name": calendar["name"], "default": calendar["default"]}

    def _list_holiday_calendars(self, call: Call) -> httpx.Response:
        with self._lock:
            return self._listing(
                call,
                "holiday_calendars",
                list(self._holiday_calendars.values()),
                render=self._render_holiday_calendar,
                orders={"alphabetical": lambda c: c["name"].lower()},
                default_order="alphabetical:asc",
            )

    def _get_holiday_calendar(self, call: Call) -> httpx.Response:
        with self._lock:
            calendar = self._found(self._holiday_calendars, call)
            return self._answer(call, "holiday_calendars", [calendar], render=self._render_holiday_calendar)

    def _holiday_membership_errors(self, data: Mapping[str, Any], *, creating: bool) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        fields = (
            ("start_date", "Start date"),
            ("holiday_calendar_id", "Holiday calendar"),
            ("user_id", "User"),
        )
        for field, label in fields:
            if (creating or field in data) and _blank(data.get(field)):
                errors.append(_invalid(field, f"{label} can't be blank"))
        if not _blank(data.get("start_date")) and not _is_date(data.get("start_date")):
            errors.append(_invalid("start_date", "Start date is not a valid date"))
        calendar_id = _id_text(data.get("holiday_calendar_id"))
        if calendar_id is not None and calendar_id not in self._holiday_calendars:
            errors.append(_invalid("holiday_calendar_id", "Holiday calendar must exist"))
        user_id = _id_text(data.get("user_id"))
        if creating and user_id is not None and user_id not in self._users:
            errors.append(_invalid("user_id", "User must exist"))
        return errors

    def _create_holiday_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "holiday_calendar_membership")
        with self._lock:
            errors = self._holiday_membership_errors(data, creating=True)
            if errors:
                raise _validation(errors)
            membership = self._insert_holiday_membership(
                str(data["user_id"]), str(data["holiday_calendar_id"]), str(data["start_date"])
            )
            return self._answer(
                call,
                "holiday_calendar_memberships",
                [membership],
                render=self._render_holiday_membership,
                included=self._holiday_membership_included,
            )

    def _insert_holiday_membership(self, user_id: str, calendar_id: str, start: str) -> Row:
        membership = self._new_row(
            "holiday_calendar_memberships",
            {
                "start_date": start,
                "end_date": None,
                "user_id": int(user_id),
                "_user": user_id,
                "_calendar": calendar_id,
            },
        )
        self._holiday_memberships[membership["id"]] = membership
        self._close_holiday_memberships(user_id)
        return membership

    def _close_holiday_memberships(self, user_id: str) -> None:
        own = sorted(
            (m for m in self._holiday_memberships.values() if m["_user"] == user_id),
            key=lambda m: m["start_date"],
        )
        for current, following in _with_next(own):
            end = _day_before(following["start_date"]) if following else None
            if current["end_date"] != end:
                current["end_date"] = end
                self._touch(current)

    def _list_holiday_memberships(self, call: Call) -> httpx.Response:
        query = call.query
        with self._lock:
            rows = [
                m
                for m in self._holiday_memberships.values()
                if (not query.get("by_user_id") or m["_user"] == query["by_user_id"])
                and (
                    not query.get("by_holiday_calendar_id")
                    or m["_calendar"] == query["by_holiday_calendar_id"]
                )
            ]
            return self._listing(
                call,
                "holiday_calendar_memberships",
                rows,
                render=self._render_holiday_membership,
                orders={"start_date": lambda m: m["start_date"]},
                default_order="start_date:desc",
                included=self._holiday_membership_included,
            )

    def _get_holiday_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._holiday_memberships, call)
            return self._answer(
                call,
                "holiday_calendar_memberships",
                [membership],
                render=self._render_holiday_membership,
                included=self._holiday_membership_included,
            )

    def _update_holiday_membership(self, call: Call) -> httpx.Response:
        data = _param(call, "holiday_calendar_membership")
        with self._lock:
            membership = self._found(self._holiday_memberships, call)
            errors = self._holiday_membership_errors(data, creating=False)
            if errors:
                raise _validation(errors)
            if "start_date" in data:
                membership["start_date"] = data["start_date"]
            if "holiday_calendar_id" in data:
                membership["_calendar"] = str(data["holiday_calendar_id"])
            self._touch(membership)
            self._close_holiday_memberships(membership["_user"])
            return self._answer(
                call,
                "holiday_calendar_memberships",
                [membership],
                render=self._render_holiday_membership,
                included=self._holiday_membership_included,
            )

    def _delete_holiday_membership(self, call: Call) -> httpx.Response:
        with self._lock:
            membership = self._found(self._holiday_memberships, call)
            del self._holiday_memberships[membership["id"]]
            self._close_holiday_memberships(membership["_user"])
        return httpx.Response(204)

    def _render_holiday_membership(self, membership: Row, includes: set[str]) -> Row:
        body = self._public(membership)
        today = self.now().date().isoformat()
        body["in_use"] = membership["start_date"] <= today and (
            membership["end_date"] is None or today <= membership["end_date"]
        )
        if "holiday_calendar" in includes:
            body["holiday_calendar_id"] = membership["_calendar"]
        return body

    def _holiday_membership_included(
        self, memberships: list[Row], includes: set[str]
    ) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "holiday_calendar" in includes:
            included["holiday_calendars"] = [
                self._render_holiday_calendar(self._holiday_calendars[m["_calendar"]], set())
                for m in memberships
            ]
        if "user" in includes:
            included["users"] = [dict(self._users[m["_user"]]) for m in memberships]
        return included

    # ------------------------------------------------------------------ custom fields and values
    def _list_custom_fields(self, call: Call) -> httpx.Response:
        subject_type = call.query.get("subject_type")
        matching = (call.query.get("matching") or "").lower()
        with self._lock:
            rows = [
                f
                for f in self._custom_fields.values()
                if (not subject_type or f["subject_type"] == subject_type) and matching in f["name"].lower()
            ]
            return self._listing(
                call,
                "custom_fields",
                rows,
                render=self._render_custom_field,
                orders={"name": lambda f: f["name"].lower(), "updated_at": lambda f: f["_updated"]},
                default_order="name:asc",
                included=self._custom_field_included,
            )

    def _render_custom_field(self, field: Row, includes: set[str]) -> Row:
        body = self._public(field)
        if "choices" in includes:
            body["choice_ids"] = list(field["_choices"])
        return body

    def _custom_field_included(self, fields: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        if "choices" not in includes:
            return {}
        return {
            "custom_field_choices": [
                self._public(self._custom_field_choices[c]) for f in fields for c in f["_choices"]
            ]
        }

    def _values_of(self, subject_type: str, subject_id: str) -> list[Row]:
        """The subject's custom field values, oldest first (through the index)."""
        return list(self._values_by_subject.get((subject_type, subject_id), {}).values())

    def _store_value(self, value: Row) -> None:
        self._custom_field_values[value["id"]] = value
        subject = (value["subject_type"], value["_subject"])
        self._values_by_subject.setdefault(subject, {})[value["id"]] = value

    def _drop_value(self, value: Row) -> None:
        del self._custom_field_values[value["id"]]
        subject = (value["subject_type"], value["_subject"])
        del self._values_by_subject[subject][value["id"]]
        if not self._values_by_subject[subject]:
            del self._values_by_subject[subject]

    def _subject_store(self, subject_type: str) -> Mapping[str, Row] | None:
        return {
            "User": self._users,
            "Workspace": self._workspaces,
            "Story": self._stories,
            "Resource": self._resources,
        }.get(subject_type)

    def _value_errors(self, data: Mapping[str, Any], index: int | None) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        subject_type = data.get("subject_type")
        if _blank(subject_type):
            errors.append(_invalid("subject_type", "Subject type can't be blank", index))
        elif subject_type not in CUSTOM_FIELD_SUBJECTS:
            errors.append(_invalid("subject_type", "Subject type is not included in the list", index))
        subject_id = _id_text(data.get("subject_id"))
        store = self._subject_store(str(subject_type))
        if subject_id is None:
            errors.append(_invalid("subject_id", "Subject can't be blank", index))
        elif store is not None and subject_id not in store:
            errors.append(_invalid("subject_id", "Subject must exist", index))
        field_id = _id_text(data.get("custom_field_id"))
        field = self._custom_fields.get(field_id or "")
        if field_id is None:
            errors.append(_invalid("custom_field_id", "Custom field can't be blank", index))
        elif field is None:
            errors.append(_invalid("custom_field_id", "Custom field must exist", index))
        elif field["subject_type"] != subject_type:
            errors.append(_invalid("custom_field_id", f"Custom field is not a {subject_type} field", index))
        if field is not None and "value" not in data:
            errors.append(_invalid("value", "Value can't be blank", index))
        elif field is not None:
            errors += self._typed_value_errors(field, data["value"], index)
        return errors

    def _typed_value_errors(self, field: Row, value: Any, index: int | None) -> list[dict[str, Any]]:
        kind = field["value_type"]
        valid = {
            "string": isinstance(value, str),
            "number": _is_int(value) or (isinstance(value, float) and not isinstance(value, bool)),
            "date": _is_date(value),
            "currency": isinstance(value, list)
            and len(value) == 2
            and _is_int(value[0])
            and isinstance(value[1], str)
            and bool(CURRENCY.match(value[1])),
            "single": isinstance(value, list) and len(value) == 1,
            "multi": isinstance(value, list) and len(value) >= 1,
        }[kind]
        if valid and kind in ("single", "multi"):
            valid = all(str(choice) in field["_choices"] for choice in value)
        return [] if valid else [_invalid("value", f"Value is not a valid {kind} value", index)]

    def _create_custom_field_values(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "custom_field_value", "custom_field_values", limit=100)
        with self._lock:
            errors = [
                e
                for index, item in enumerate(items)
                for e in self._value_errors(item, index if bulk else None)
            ]
            if errors:
                raise _validation(errors)
            values = [
                self._set_value(
                    str(i["subject_type"]), str(i["subject_id"]), str(i["custom_field_id"]), i["value"]
                )
                for i in items
            ]
            return self._answer(
                call, "custom_field_values", values, render=self._render_value, included=self._value_included
            )

    def _set_value(self, subject_type: str, subject_id: str, field_id: str, value: Any) -> Row:
        """Create or override a subject's value of a field; a new choice value replaces the old one (new id)."""
        field = self._custom_fields[field_id]
        existing = next(
            (v for v in self._values_of(subject_type, subject_id) if v["_field"] == field_id), None
        )
        if field["value_type"] in ("single", "multi") or existing is None:
            if existing is not None:
                self._drop_value(existing)
            existing = self._new_row(
                "custom_field_values",
                {"subject_type": subject_type, "_subject": subject_id, "_field": field_id, "value": value},
            )
            self._store_value(existing)
        else:
            existing["value"] = value
            self._touch(existing)
        if subject_type == "User":
            self._stamp_user(subject_id)
        return existing

    def _list_custom_field_values(self, call: Call) -> httpx.Response:
        query = call.query
        if _blank(query.get("subject_type")):
            return _system_error(400, "param is missing or the value is empty: subject_type")
        subjects = _id_list(query.get("with_subject_id"))
        fields = _id_list(query.get("with_custom_field_id"))
        with self._lock:
            candidates: Iterable[Row] = self._custom_field_values.values()
            if subjects is not None:  # the subjects' own, through the index (the listing sorts them)
                candidates = [
                    v
                    for subject in subjects
                    for v in self._values_by_subject.get((query["subject_type"], subject), {}).values()
                ]
            rows = [
                v
                for v in candidates
                if v["subject_type"] == query["subject_type"]
                and (subjects is None or v["_subject"] in subjects)
                and (fields is None or v["_field"] in fields)
            ]
            return self._listing(
                call,
                "custom_field_values",
                rows,
                render=self._render_value,
                orders={
                    "created_at": lambda v: v["_created"],
                    "updated_at": lambda v: v["_updated"],
                    "subject_id": lambda v: int(v["_subject"]),
                },
                default_order="created_at:asc",
                included=self._value_included,
            )

    def _update_custom_field_value(self, call: Call) -> httpx.Response:
        data = _param(call, "custom_field_value")
        with self._lock:
            value = self._found(self._custom_field_values, call)
            field = self._custom_fields[value["_field"]]
            errors = (
                [_invalid("value", "Value can't be blank")]
                if "value" not in data
                else self._typed_value_errors(field, data["value"], None)
            )
            if errors:
                raise _validation(errors)
            value["value"] = data["value"]
            self._touch(value)
            return self._answer(
                call, "custom_field_values", [value], render=self._render_value, included=self._value_included
            )

    def _delete_custom_field_value(self, call: Call) -> httpx.Response:
        with self._lock:
            value = self._found(self._custom_field_values, call)
            self._drop_value(value)
        return httpx.Response(204)

    def _render_value(self, value: Row, includes: set[str]) -> Row:
        body = self._public(value)
        field = self._custom_fields[value["_field"]]
        body.update(
            account_id=1,
            can_edit=True,
            custom_field_name=field["name"],
            display_value=self._display_value(field, value["value"]),
            subject_id=int(value["_subject"]),
            type=field["value_type"],
        )
        if "custom_field" in includes:
            body["custom_field_id"] = value["_field"]
        if "selected_choices" in includes:
            body["selected_choice_ids"] = (
                [str(c) for c in value["value"]] if field["value_type"] in ("single", "multi") else []
            )
        return body

    def _display_value(self, field: Row, value: Any) -> str:
        kind = field["value_type"]
        if kind in ("single", "multi"):
            return ", ".join(self._custom_field_choices[str(c)]["label"] for c in value)
        if kind == "currency":
            return f"{Decimal(int(value[0])) / 100:.2f} {value[1]}"
        return str(value)

    def _value_included(self, values: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "custom_field" in includes:
            included["custom_fields"] = [
                self._render_custom_field(self._custom_fields[v["_field"]], set()) for v in values
            ]
        if "selected_choices" in includes:
            included["custom_field_choices"] = [
                self._public(self._custom_field_choices[str(c)])
                for v in values
                if self._custom_fields[v["_field"]]["value_type"] in ("single", "multi")
                for c in v["value"]
            ]
        return included

    # ------------------------------------------------------------------ workspace resources (roles on projects)
    def _resource_values(
        self, data: Mapping[str, Any], index: int | None, existing: Row | None
    ) -> tuple[Row, list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        workspace_id = existing["_workspace"] if existing else _id_text(data.get("workspace_id"))
        if workspace_id is None:
            errors.append(_invalid("workspace_id", "Workspace can't be blank", index))
        elif workspace_id not in self._workspaces:
            errors.append(_invalid("workspace_id", "Workspace must exist", index))
        user_id = (
            _id_text(data["user_id"]) if "user_id" in data else (existing["_user"] if existing else None)
        )
        if user_id is not None and user_id not in self._users:
            errors.append(_invalid("user_id", "User must exist", index))
        elif user_id is not None and not self._active_member(user_id):
            errors.append(_invalid("user_id", "User must be an active member of the account", index))
        role_id = (
            _id_text(data["role_id"]) if "role_id" in data else (existing["_role"] if existing else None)
        )
        if role_id is None and user_id is not None:
            membership = self._membership(user_id)
            role_id = membership["_role"] if membership else None
        if role_id is None and user_id is None:
            errors.append(
                _invalid("role_id", "Role can't be blank", index)
            )  # an unnamed resource needs a role
        elif role_id is not None and role_id not in self._roles:
            errors.append(_invalid("role_id", "Role must exist", index))
        if (
            not errors
            and user_id is not None
            and any(
                r["_workspace"] == workspace_id
                and r["_user"] == user_id
                and r["_role"] == role_id
                and r is not existing
                for r in self._resources.values()
            )
        ):
            errors.append(_invalid("role_id", "User already has this role in the project", index))
        return {"_workspace": workspace_id, "_user": user_id, "_role": role_id}, errors

    def _insert_resource(self, values: Row, label: str | None = None) -> Row:
        if label is None and values["_role"] is None:
            label = self._users[values["_user"]]["full_name"]
        elif label is None:
            same = sum(
                1
                for r in self._resources.values()
                if r["_workspace"] == values["_workspace"] and r["_role"] == values["_role"]
            )
            label = f"{self._roles[values['_role']]['name']} {same + 1}"
        resource = self._new_row("workspace_resources", {"label": label, **values})
        self._resources[resource["id"]] = resource
        return resource

    def _create_resources(self, call: Call) -> httpx.Response:
        items, bulk = _items(call, "workspace_resource", "workspace_resources", limit=200)
        with self._lock:
            prepared = []
            errors: list[dict[str, Any]] = []
            for index, item in enumerate(items):
                position = index if bulk else None
                values, item_errors = self._resource_values(item, position, None)
                reference, reference_errors = self._embedded_reference(item, "WorkspaceResource", position)
                errors += item_errors + reference_errors
                prepared.append((values, reference))
            if errors:
                raise _validation(errors)
            resources = []
            for values, reference in prepared:
                resource = self._insert_resource(values)
                self._link(reference, "WorkspaceResource", resource["id"])
                resources.append(resource)
            return self._answer(
                call,
                "workspace_resources",
                resources,
                render=self._resource_renderer(call),
                included=self._resource_included,
            )

    def _list_resources(self, call: Call) -> httpx.Response:
        query = call.query
        only_unnamed = _truthy(query.get("only_unnamed"))
        with_unnamed = only_unnamed or _truthy(query.get("include_unnamed"))
        matching = (query.get("matching") or "").lower()
        references = self._reference_test("WorkspaceResource", query)
        with self._lock:
            rows = [
                r
                for r in self._resources.values()
                if (with_unnamed or r["_user"] is not None)
                and (not only_unnamed or r["_user"] is None)
                and (not query.get("workspace_id") or r["_workspace"] == query["workspace_id"])
                and (not query.get("user_id") or r["_user"] == query["user_id"])
                and (not query.get("role_id") or r["_role"] == query["role_id"])
                and (
                    not matching
                    or matching
                    in f"{self._resource_name(r)} {self._roles.get(r['_role'] or '', {}).get('name', '')}".lower()
                )
                and (references is None or references(r["id"]))
            ]
            return self._listing(
                call,
                "workspace_resources",
                rows,
                render=self._resource_renderer(call),
                orders={
                    "updated_at": lambda r: r["_updated"],
                    "created_at": lambda r: r["_created"],
                    "alphabetically": lambda r: self._resource_name(r).lower(),
                    "alphabetical": lambda r: self._resource_name(r).lower(),
                },
                default_order="updated_at:desc",
                included=self._resource_included,
            )

    def _get_resource(self, call: Call) -> httpx.Response:
        with self._lock:
            resource = self._found(self._resources, call)
            return self._answer(
                call,
                "workspace_resources",
                [resource],
                render=self._resource_renderer(call),
                included=self._resource_included,
            )

    def _update_resource(self, call: Call) -> httpx.Response:
        """A new user or role for a resource; its assignments (and their daily hours) follow the resource."""
        data = _param(call, "workspace_resource")
        with self._lock:
            resource = self._found(self._resources, call)
            values, errors = self._resource_values(data, None, resource)
            if "label" in data and _blank(data["label"]):
                errors.append(_invalid("label", "Label can't be blank"))
            reference, reference_errors = self._embedded_reference(data, "WorkspaceResource", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            role_changed = values["_role"] != resource["_role"]
            resource.update(values)
            if data.get("label"):
                resource["label"] = str(data["label"])
            elif role_changed and data.get("auto_update_label") and values["_role"]:
                resource["label"] = self._roles[values["_role"]]["name"]
            self._link(reference, "WorkspaceResource", resource["id"])
            self._touch(resource)
            return self._answer(
                call,
                "workspace_resources",
                [resource],
                render=self._resource_renderer(call),
                included=self._resource_included,
            )

    def _delete_resource(self, call: Call) -> httpx.Response:
        with self._lock:
            resource = self._found(self._resources, call)
            try:
                self._remove_resource(resource)
            except ValueError as error:
                raise _validation([_invalid("base", str(error))]) from None
        return httpx.Response(204)

    def _remove_resource(self, resource: Row) -> None:
        """Delete a resource with its assignments and their daily hours, unless it is the last resource of the
        member's primary role in the project."""
        user_id = resource["_user"]
        if user_id is not None:
            membership = self._membership(user_id)
            primary = membership["_role"] if membership else None
            same = [
                r
                for r in self._resources.values()
                if r["_workspace"] == resource["_workspace"]
                and r["_user"] == user_id
                and r["_role"] == primary
            ]
            if resource["_role"] == primary and same == [resource]:
                raise ValueError(
                    "The last resource of a member's primary role in a project cannot be deleted"
                )
        for assignment in [a for a in self._assignments.values() if a["_resource"] == resource["id"]]:
            for day_id in [
                d["id"] for d in self._allocation_days.values() if d["_assignment"] == assignment["id"]
            ]:
                del self._allocation_days[day_id]
            del self._assignments[assignment["id"]]
        del self._resources[resource["id"]]

    def _resource_name(self, resource: Row) -> str:
        return self._users[resource["_user"]]["full_name"] if resource["_user"] else resource["label"]

    def _resource_renderer(self, call: Call) -> Render:
        optional = _optional_fields(call)
        return lambda resource, includes: self._render_resource(resource, includes, optional)

    def _render_resource(self, resource: Row, includes: set[str], optional: set[str]) -> Row:
        body = self._public(resource)
        role_name = self._roles[resource["_role"]]["name"] if resource["_role"] else None
        workspace = self._workspaces[resource["_workspace"]]
        user = self._users.get(resource["_user"] or "")
        body.update(
            display_label=user["full_name"] if user else resource["label"],
            full_name=user["full_name"] if user else None,
            photo_path=user["photo_path"] if user else None,
            role_name=role_name,
            role_initials="".join(word[0] for word in role_name.split())[:3].upper() if role_name else None,
            workspace_id=int(resource["_workspace"]),
            workspace_title=workspace["title"],
        )
        membership = self._membership(resource["_user"] or "")
        if "resource_cost_rate" in optional:
            rate = next(
                (
                    r
                    for r in (self._rates_of(membership["id"]) if membership else [])
                    if r["currency"] == workspace.get("currency")
                ),
                None,
            )
            body["resource_cost_rate"] = rate["amount_in_subunits"] if rate else None
        if "resource_bill_rate" in optional:
            body["resource_bill_rate"] = membership["bill_rate_in_cents"] if membership else None
        if "user" in includes:
            body["user_id"] = resource["_user"]
        if "role" in includes:
            body["role_id"] = resource["_role"]
        if "external_references" in includes:
            body["external_reference_ids"] = [
                r["id"] for r in self._references_to("WorkspaceResource", resource["id"])
            ]
        if "custom_field_values" in includes:
            body["custom_field_value_ids"] = [v["id"] for v in self._values_of("Resource", resource["id"])]
        if "organization_membership" in includes:
            org = self._org_membership_of("User", resource["_user"] or "")
            body["organization_membership_id"] = org["id"] if org else None
        return body

    def _resource_included(self, resources: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "user" in includes:
            included["users"] = [dict(self._users[r["_user"]]) for r in resources if r["_user"]]
        if "role" in includes:
            included["roles"] = [
                self._render_role(self._roles[r["_role"]], set()) for r in resources if r["_role"]
            ]
        if "workspace" in includes:
            included["workspaces"] = [dict(self._workspaces[r["_workspace"]]) for r in resources]
        if "external_references" in includes:
            included["external_references"] = [
                dict(ref) for r in resources for ref in self._references_to("WorkspaceResource", r["id"])
            ]
        if "custom_field_values" in includes:
            included["custom_field_values"] = [
                self._render_value(v, set()) for r in resources for v in self._values_of("Resource", r["id"])
            ]
        if "organization_membership" in includes:
            orgs = [self._org_membership_of("User", r["_user"] or "") for r in resources]
            included["organization_memberships"] = [self._render_org_membership(o, set()) for o in orgs if o]
        return included

    # ------------------------------------------------------------------ assignments
    def _assignment_values(
        self, data: Mapping[str, Any], existing: Row | None
    ) -> tuple[Row, list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        story_id = existing["_story"] if existing else _id_text(data.get("story_id"))
        story = self._stories.get(story_id or "")
        if story_id is None:
            errors.append(_invalid("story_id", "Story can't be blank"))
        elif story is None:
            errors.append(_invalid("story_id", "Story must exist"))
        resource_id = existing["_resource"] if existing else None
        if data.get("resource_id") is not None:
            resource_id = _id_text(data["resource_id"])
            resource = self._resources.get(resource_id or "")
            if resource is None:
                errors.append(_invalid("resource_id", "Resource must exist"))
            elif story is not None and resource["_workspace"] != story["workspace_id"]:
                errors.append(_invalid("resource_id", "Resource must be in the task's project"))
        elif data.get("assignee_id") is not None:
            assignee_id = _id_text(data["assignee_id"])
            resource_id = self._resource_for(assignee_id, story["workspace_id"]) if story else None
            if assignee_id not in self._users:
                errors.append(_invalid("assignee_id", "Assignee must exist"))
            elif story is not None and resource_id is None:
                errors.append(_invalid("assignee_id", "Assignee must be a resource in the task's project"))
        elif existing is None:
            errors.append(_invalid("resource_id", "Resource can't be blank"))
        estimated = data.get("estimated_minutes", existing["estimated_minutes"] if existing else None)
        if estimated is not None and (not _is_int(estimated) or int(estimated) < 0):
            errors.append(
                _invalid("estimated_minutes", "Estimated minutes must be greater than or equal to 0")
            )
        current = (
            _truthy(data["current"])
            if data.get("current") is not None
            else (existing or {}).get("current", True)
        )
        if (
            not errors
            and current
            and any(
                a["_story"] == story_id
                and a["_resource"] == resource_id
                and a["current"]
                and a is not existing
                for a in self._assignments.values()
            )
        ):
            errors.append(_invalid("resource_id", "Resource has already been assigned to this task"))
        values = {
            "_story": story_id,
            "_resource": resource_id,
            "current": current,
            "estimated_minutes": int(estimated) if estimated is not None and _is_int(estimated) else None,
        }
        return values, errors

    def _resource_for(self, user_id: str | None, workspace_id: str) -> str | None:
        """The user's resource in the project: the one of their primary role, else their first."""
        own = [
            r for r in self._resources.values() if r["_user"] == user_id and r["_workspace"] == workspace_id
        ]
        if not own:
            return None
        membership = self._membership(user_id or "")
        primary = membership["_role"] if membership else None
        return next((r["id"] for r in own if r["_role"] == primary), own[0]["id"])

    def _create_assignment(self, call: Call) -> httpx.Response:
        data = _param(call, "assignment")
        with self._lock:
            values, errors = self._assignment_values(data, None)
            reference, reference_errors = self._embedded_reference(data, "Assignment", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            assignment = self._new_row("assignments", values)
            self._assignments[assignment["id"]] = assignment
            self._link(reference, "Assignment", assignment["id"])
            return self._assignment_answer(call, [assignment])

    def _assignment_answer(self, call: Call, rows: list[Row]) -> httpx.Response:
        return self._answer(
            call, "assignments", rows, render=self._render_assignment, included=self._assignment_included
        )

    @staticmethod
    def _check_plannable(call: Call) -> None:
        """Kantata: `include=story_allocation_days` requires `plannable=true` (a 400 here is an assumption)."""
        if "story_allocation_days" in _includes(call) and not _truthy(call.query.get("plannable")):
            raise Reply(
                _system_error(400, "The plannable filter must be true to include story_allocation_days")
            )

    def _list_assignments(self, call: Call) -> httpx.Response:
        query = call.query
        self._check_plannable(call)
        with_unnamed = _truthy(query.get("include_unnamed"))
        unarchived_stories = query.get("in_unarchived_stories") is None or _truthy(
            query["in_unarchived_stories"]
        )
        unarchived_workspaces = query.get("in_unarchived_workspaces") is None or _truthy(
            query["in_unarchived_workspaces"]
        )
        references = self._reference_test("Assignment", query)
        with self._lock:
            rows = []
            for assignment in self._assignments.values():
                resource = self._resources[assignment["_resource"]]
                story = self._stories[assignment["_story"]]
                workspace = self._workspaces[story["workspace_id"]]
                if (
                    (with_unnamed or resource["_user"] is not None)
                    and (not _truthy(query.get("current")) or assignment["current"])
                    and (not _truthy(query.get("uncurrent")) or not assignment["current"])
                    and (not unarchived_stories or not story["archived"])
                    and (not unarchived_workspaces or not workspace.get("archived", False))
                    and (not query.get("assignee_id") or resource["_user"] == query["assignee_id"])
                    and (not query.get("resource_id") or assignment["_resource"] == query["resource_id"])
                    and (not query.get("story_id") or assignment["_story"] == query["story_id"])
                    and (not query.get("workspace_id") or story["workspace_id"] == query["workspace_id"])
                    and (references is None or references(assignment["id"]))
                ):
                    rows.append(assignment)
            return self._listing(
                call,
                "assignments",
                rows,
                render=self._render_assignment,
                orders={"created_at": lambda a: a["_created"], "updated_at": lambda a: a["_updated"]},
                default_order="created_at:desc",
                included=self._assignment_included,
            )

    def _get_assignment(self, call: Call) -> httpx.Response:
        self._check_plannable(call)
        with self._lock:
            return self._assignment_answer(call, [self._found(self._assignments, call)])

    def _update_assignment(self, call: Call) -> httpx.Response:
        data = _param(call, "assignment")
        with self._lock:
            assignment = self._found(self._assignments, call)
            values, errors = self._assignment_values(data, assignment)
            reference, reference_errors = self._embedded_reference(data, "Assignment", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            assignment.update(values)
            self._link(reference, "Assignment", assignment["id"])
            self._touch(assignment)
            return self._assignment_answer(call, [assignment])

    def _delete_assignment(self, call: Call) -> httpx.Response:
        """Unassigns: the assignment stays, `current` false (Kantata never deletes assignments)."""
        with self._lock:
            assignment = self._found(self._assignments, call)
            if assignment["current"]:
                assignment["current"] = False
                self._touch(assignment)
        return httpx.Response(204)

    def _days_of(self, assignment_id: str) -> list[Row]:
        return sorted(
            (d for d in self._allocation_days.values() if d["_assignment"] == assignment_id),
            key=lambda d: d["date"],
        )

    def _render_assignment(self, assignment: Row, includes: set[str]) -> Row:
        body = self._public(assignment)
        days = self._days_of(assignment["id"])
        body["allocated_minutes"] = sum(d["minutes"] for d in days)
        body["resource_id"] = int(assignment["_resource"])
        if "assignee" in includes:
            body["assignee_id"] = self._resources[assignment["_resource"]]["_user"]
        if "story" in includes:
            body["story_id"] = assignment["_story"]
        if "story_allocation_days" in includes:
            body["story_allocation_day_ids"] = [d["id"] for d in days]
        if "external_references" in includes:
            body["external_reference_ids"] = [
                r["id"] for r in self._references_to("Assignment", assignment["id"])
            ]
        return body

    def _assignment_included(self, assignments: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        if "assignee" in includes:
            users = [self._resources[a["_resource"]]["_user"] for a in assignments]
            included["users"] = [dict(self._users[u]) for u in users if u]
        if "story" in includes:
            included["stories"] = [dict(self._stories[a["_story"]]) for a in assignments]
        if "story_allocation_days" in includes:
            included["story_allocation_days"] = [
                self._render_day(d, set()) for a in assignments for d in self._days_of(a["id"])
            ]
        if "external_references" in includes:
            included["external_references"] = [
                dict(r) for a in assignments for r in self._references_to("Assignment", a["id"])
            ]
        return included

    # ------------------------------------------------------------------ daily scheduled hours (story allocation days)
    def _day_errors(self, data: Mapping[str, Any], *, creating: bool) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        if creating:
            assignment_id = _id_text(data.get("assignment_id"))
            assignment = self._assignments.get(assignment_id or "")
            if assignment_id is None:
                errors.append(_invalid("assignment_id", "Assignment can't be blank"))
            elif assignment is None:
                errors.append(_invalid("assignment_id", "Assignment must exist"))
            elif not assignment["current"]:
                errors.append(_invalid("assignment_id", "Assignment must be active"))
            if _blank(data.get("date")):
                errors.append(_invalid("date", "Date can't be blank"))
            elif not _is_date(data["date"]):
                errors.append(_invalid("date", "Date is not a valid date"))
            elif assignment is not None and any(
                d["date"] == data["date"] for d in self._days_of(assignment["id"])
            ):
                errors.append(_invalid("date", "Date has already been taken"))
        minutes = data.get("minutes")
        if minutes is None:
            errors.append(_invalid("minutes", "Minutes can't be blank"))
        elif not _is_int(minutes) or not 0 <= int(minutes) <= MINUTES_PER_DAY:
            errors.append(_invalid("minutes", "Minutes must be between 0 and 1440"))
        return errors

    def _insert_day(self, assignment: Row, day: str, minutes: int) -> Row:
        row = self._new_row(
            "story_allocation_days", {"date": day, "minutes": minutes, "_assignment": assignment["id"]}
        )
        self._allocation_days[row["id"]] = row
        return row

    def _allocation_changed(self, assignment: Row) -> None:
        if self.allocation_changes_bump_assignment_updated_at:
            self._touch(assignment)

    def _create_allocation_day(self, call: Call) -> httpx.Response:
        data = _param(call, "story_allocation_day")
        with self._lock:
            errors = self._day_errors(data, creating=True)
            reference, reference_errors = self._embedded_reference(data, "StoryAllocationDay", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            assignment = self._assignments[str(data["assignment_id"])]
            row = self._insert_day(assignment, str(data["date"]), int(data["minutes"]))
            self._link(reference, "StoryAllocationDay", row["id"])
            self._allocation_changed(assignment)
            return self._answer(
                call, "story_allocation_days", [row], render=self._render_day, included=self._day_included
            )

    def _list_allocation_days(self, call: Call) -> httpx.Response:
        query = call.query
        low, _, high = (query.get("date_between") or ":").partition(":")
        for bound in (low, high):
            if bound and not _is_date(bound):
                return _system_error(400, f"Invalid date range for date_between: {query['date_between']}")
        with_unnamed = _truthy(query.get("include_unnamed"))
        unarchived_stories = query.get("in_unarchived_stories") is None or _truthy(
            query["in_unarchived_stories"]
        )
        unarchived_workspaces = query.get("in_unarchived_workspaces") is None or _truthy(
            query["in_unarchived_workspaces"]
        )
        references = self._reference_test("StoryAllocationDay", query)
        with self._lock:
            rows = []
            for day in self._allocation_days.values():
                assignment = self._assignments[day["_assignment"]]
                resource = self._resources[assignment["_resource"]]
                story = self._stories[assignment["_story"]]
                if (
                    (with_unnamed or resource["_user"] is not None)
                    and (not _truthy(query.get("current")) or assignment["current"])
                    and (not _truthy(query.get("uncurrent")) or not assignment["current"])
                    and (not unarchived_stories or not story["archived"])
                    and (
                        not unarchived_workspaces
                        or not self._workspaces[story["workspace_id"]].get("archived")
                    )
                    and (not query.get("assignment_id") or day["_assignment"] == query["assignment_id"])
                    and (not query.get("assignee_id") or resource["_user"] == query["assignee_id"])
                    and (not query.get("story_id") or assignment["_story"] == query["story_id"])
                    and (not query.get("workspace_id") or story["workspace_id"] == query["workspace_id"])
                    and (not low or day["date"] >= low)
                    and (not high or day["date"] <= high)
                    and (references is None or references(day["id"]))
                ):
                    rows.append(day)
            return self._listing(
                call,
                "story_allocation_days",
                rows,
                render=self._render_day,
                orders={
                    "updated_at": lambda d: d["_updated"],
                    "created_at": lambda d: d["_created"],
                    "date": lambda d: d["date"],
                    "id": lambda d: int(d["id"]),
                },
                default_order="updated_at:desc",
                included=self._day_included,
            )

    def _get_allocation_day(self, call: Call) -> httpx.Response:
        with self._lock:
            day = self._found(self._allocation_days, call)
            return self._answer(
                call, "story_allocation_days", [day], render=self._render_day, included=self._day_included
            )

    def _update_allocation_day(self, call: Call) -> httpx.Response:
        data = _param(call, "story_allocation_day")
        with self._lock:
            day = self._found(self._allocation_days, call)
            errors = self._day_errors(data, creating=False)
            reference, reference_errors = self._embedded_reference(data, "StoryAllocationDay", None)
            if errors or reference_errors:
                raise _validation(errors + reference_errors)
            day["minutes"] = int(data["minutes"])
            self._link(reference, "StoryAllocationDay", day["id"])
            self._touch(day)
            self._allocation_changed(self._assignments[day["_assignment"]])
            return self._answer(
                call, "story_allocation_days", [day], render=self._render_day, included=self._day_included
            )

    def _delete_allocation_day(self, call: Call) -> httpx.Response:
        with self._lock:
            day = self._found(self._allocation_days, call)
            del self._allocation_days[day["id"]]
            self._allocation_changed(self._assignments[day["_assignment"]])
        return httpx.Response(204)

    def _delete_allocation_days(self, call: Call) -> httpx.Response:
        """`DELETE /story_allocation_days?ids=1,2` (or `{"ids": "1,2"}`): all or nothing, up to 100."""
        body = call.body if isinstance(call.body, dict) else {}
        raw = call.query.get("ids") or body.get("ids")
        if isinstance(raw, list):
            raw = ",".join(str(i) for i in raw)
        ids = sorted(_id_list(raw if isinstance(raw, str) else None) or set())
        if not ids or len(ids) > 100:
            return _system_error(400, "ids must list 1 to 100 daily scheduled hours")
        with self._lock:
            missing = [i for i in ids if i not in self._allocation_days]
            if missing:
                raise _validation(
                    [
                        _invalid("ids", f"Daily scheduled hours {i} could not be deleted: not found")
                        for i in missing
                    ]
                )
            for day_id in ids:
                day = self._allocation_days.pop(day_id)
                self._allocation_changed(self._assignments[day["_assignment"]])
        return httpx.Response(204)

    def _render_day(self, day: Row, includes: set[str]) -> Row:
        body = self._public(day)
        assignment = self._assignments[day["_assignment"]]
        body["current"] = assignment["current"]
        if "assignment" in includes:
            body["assignment_id"] = assignment["id"]
        if "story" in includes:
            body["story_id"] = assignment["_story"]
        if "workspace" in includes:
            body["workspace_id"] = self._stories[assignment["_story"]]["workspace_id"]
        if "external_references" in includes:
            body["external_reference_ids"] = [
                r["id"] for r in self._references_to("StoryAllocationDay", day["id"])
            ]
        return body

    def _day_included(self, days: list[Row], includes: set[str]) -> dict[str, list[Row]]:
        included: dict[str, list[Row]] = {}
        assignments = [self._assignments[d["_assignment"]] for d in days]
        if "assignment" in includes:
            included["assignments"] = [self._render_assignment(a, set()) for a in assignments]
        if "story" in includes:
            included["stories"] = [dict(self._stories[a["_story"]]) for a in assignments]
        if "workspace" in includes:
            included["workspaces"] = [
                dict(self._workspaces[self._stories[a["_story"]]["workspace_id"]]) for a in assignments
            ]
        if "external_references" in includes:
            included["external_references"] = [
                dict(r) for d in days for r in self._references_to("StoryAllocationDay", d["id"])
            ]
        return included

    # ------------------------------------------------------------------ seeding and changes (no API calls)
    def seed_member(
        self,
        full_name: str = "Sam Consultant",
        email_address: str | None = None,
        *,
        external_id: str | None = None,
        **options: Any,
    ) -> str:
        """One account member (see `seed_members` for the options); returns the user id."""
        ids = self._seed_members([(full_name, email_address, external_id)], **options)
        return ids[0]

    def seed_members(
        self,
        count: int,
        *,
        prefix: str = "Worker",
        external_ids: Sequence[str] | None = None,
        **options: Any,
    ) -> list[str]:
        """`count` account members named "{prefix} {n}" (n from 1), fast (no API calls) and with repeatable ids.

        Options: `external_ids` (one per member: an external reference with `service_name` / `service_model`,
        default "pshub" / "Worker"), `permission`, `role` (a role name or id: the default role), `cost_rate_in_cents`
        (the default cost rate), `bill_rate_in_cents`, `department_id`, `geography_id` (organization ids; the
        roots when only one is given), `workweek` ({"monday": 480, ...} from `workweek_start`, a Sunday).
        """
        if external_ids is not None and len(external_ids) != count:
            raise ValueError(f"external_ids has {len(external_ids)} ids for {count} members")
        people = [
            (f"{prefix} {n}", None, external_ids[n - 1] if external_ids is not None else None)
            for n in range(1, count + 1)
        ]
        return self._seed_members(people, **options)

    def _seed_members(
        self,
        people: Sequence[tuple[str, str | None, str | None]],
        *,
        service_name: str = "pshub",
        service_model: str = "Worker",
        permission: str = "collaborator",
        role: str | None = None,
        cost_rate_in_cents: int | None = None,
        bill_rate_in_cents: int | None = None,
        department_id: str | None = None,
        geography_id: str | None = None,
        workweek: Mapping[str, int] | None = None,
        workweek_start: str | None = None,
    ) -> list[str]:
        with self._lock:
            if permission not in PERMISSIONS:
                raise ValueError(f"permission must be one of {PERMISSIONS}")
            role_id = self._role_id(role) if role is not None else None
            organizations = None
            if department_id is not None or geography_id is not None:
                organizations = {
                    "department_id": department_id or self._root_organization("Department"),
                    "geography_id": geography_id or self._root_organization("Geography"),
                }
                errors = self._org_errors(organizations, None)
                if errors:
                    raise ValueError(errors)
            ids = []
            for full_name, email, external_id in people:
                user_id = self._insert_user(full_name, email)
                membership = self._membership(user_id)
                assert membership is not None
                membership.update(permission=permission, bill_rate_in_cents=bill_rate_in_cents, _role=role_id)
                if cost_rate_in_cents is not None:
                    self._set_cost_rate(membership, self.account_currency, int(cost_rate_in_cents))
                if organizations is not None:
                    self._insert_org_membership(
                        "User", user_id, organizations["department_id"], organizations["geography_id"]
                    )
                if workweek is not None:
                    self._add_workweek_membership(
                        {
                            "user_id": user_id,
                            "start_date": workweek_start or DEFAULT_WORKWEEK_START,
                            **{f"{day}_minutes": minutes for day, minutes in workweek.items()},
                        }
                    )
                if external_id is not None:
                    self._upsert_reference(
                        {
                            "subject_type": "User",
                            "subject_id": user_id,
                            "service_name": service_name,
                            "service_model": service_model,
                            "service_model_ref": external_id,
                            "status": "successful",
                        }
                    )
                ids.append(user_id)
            return ids

    def _role_id(self, role: str) -> str:
        if role in self._roles:
            return role
        found = next((r["id"] for r in self._roles.values() if r["name"] == role), None)
        return found if found is not None else self._insert_role(role)["id"]

    def accept_invitation(self, invitation_id: str) -> str:
        """The invitee accepts (what the e-mailed link does; there is no API for it): they become an account member
        with the invitation's permission, role and rates. Returns the user id."""
        with self._lock:
            invitation = self._invitations.get(str(invitation_id))
            if invitation is None:
                raise ValueError(f"no account invitation {invitation_id}")
            if not invitation["pending"]:
                raise ValueError(f"account invitation {invitation_id} was already accepted")
            invitation["pending"] = False
            del self._pending[invitation["id"]]
            self._touch(invitation)
            user_id = str(invitation["_invitee"])
            self._add_membership(user_id, {**self._invitation_fields(invitation)})
            self._stamp_user(user_id)
            return user_id

    def disable_member(self, user_id: str) -> None:
        """Make a member inactive as an administrator does (every record stays)."""
        self._switch_member(user_id, enable=False)

    def enable_member(self, user_id: str) -> None:
        self._switch_member(user_id, enable=True)

    def _switch_member(self, user_id: str, *, enable: bool) -> None:
        with self._lock:
            membership = self._membership(str(user_id))
            if membership is None:
                raise ValueError(f"user {user_id} is not a member of the account")
            self._switch_membership(membership, enable=enable)

    def seed_role(self, name: str) -> str:
        with self._lock:
            return self._role_id(name)

    def seed_skill(
        self, name: str, *, max_level: int = 5, category: str = "Skill", description: str = ""
    ) -> str:
        with self._lock:
            category_id = next(
                (c["id"] for c in self._skill_categories.values() if c["name"] == category), None
            )
            values, errors = self._skill_values(
                {
                    "name": name,
                    "max_level": max_level,
                    "skill_category_id": category_id,
                    "description": description,
                },
                None,
                None,
            )
            if errors:
                raise ValueError(errors)
            skill = self._new_row("skills", values)
            self._skills[skill["id"]] = skill
            return skill["id"]

    def seed_skill_membership(self, user_id: str, skill_id: str, level: int = 0) -> str:
        with self._lock:
            if str(user_id) not in self._users or str(skill_id) not in self._skills:
                raise ValueError("unknown user or skill")
            errors = self._level_errors(level, self._skills[str(skill_id)], None)
            if errors:
                raise ValueError(errors)
            return self._insert_skill_membership(str(user_id), str(skill_id), level)["id"]

    def seed_organization(self, name: str, *, kind: str = "Department", parent_id: str | None = None) -> str:
        """A department or geography (`kind`, Kantata's `type`) under the tree's root unless `parent_id` is given."""
        if kind not in ORGANIZATION_ROOTS:
            raise ValueError(f"kind must be one of {tuple(ORGANIZATION_ROOTS)}")
        with self._lock:
            parent = parent_id or self._root_organization(kind)
            if self._organizations.get(parent, {}).get("type") != kind:
                raise ValueError(f"parent {parent} is not a {kind}")
            return self._insert_organization(name, kind, parent)["id"]

    def seed_custom_field(
        self,
        name: str,
        *,
        subject_type: str = "User",
        value_type: str = "string",
        choices: Iterable[str] = (),
    ) -> str:
        """A custom field (e.g. a User "Cost centre" or "Legal entity"); choice ids via `custom_field_choices`."""
        if subject_type not in CUSTOM_FIELD_SUBJECTS or value_type not in VALUE_TYPES:
            raise ValueError("unknown subject_type or value_type")
        with self._lock:
            field = self._new_row(
                "custom_fields",
                {"name": name, "subject_type": subject_type, "value_type": value_type, "_choices": []},
            )
            for position, label in enumerate(choices):
                choice = self._new_row(
                    "custom_field_choices",
                    {"label": label, "position": position, "custom_field_id": field["id"]},
                )
                self._custom_field_choices[choice["id"]] = choice
                field["_choices"].append(choice["id"])
            self._custom_fields[field["id"]] = field
            return field["id"]

    def custom_field_choices(self, field_id: str) -> dict[str, str]:
        """label -> choice id of a seeded choice field."""
        with self._lock:
            field = self._custom_fields[str(field_id)]
            return {self._custom_field_choices[c]["label"]: c for c in field["_choices"]}

    def seed_custom_field_value(self, subject_type: str, subject_id: str, field_id: str, value: Any) -> str:
        with self._lock:
            data = {
                "subject_type": subject_type,
                "subject_id": subject_id,
                "custom_field_id": field_id,
                "value": value,
            }
            errors = self._value_errors(data, None)
            if errors:
                raise ValueError(errors)
            return self._set_value(subject_type, str(subject_id), str(field_id), value)["id"]

    def seed_holiday_calendar(self, name: str) -> str:
        with self._lock:
            return self._insert_holiday_calendar(name)["id"]

    def seed_resource(self, workspace_id: str, user_id: str | None = None, *, role: str | None = None) -> str:
        """A named (or, without `user_id`, unnamed) resource on a project; `role` is a role name or id."""
        with self._lock:
            data: dict[str, Any] = {"workspace_id": workspace_id, "user_id": user_id}
            if role is not None:
                data["role_id"] = self._role_id(role)
            values, errors = self._resource_values(data, None, None)
            if errors:
                raise ValueError(errors)
            return self._insert_resource(values)["id"]

    def assign(
        self,
        user_id: str,
        story_id: str,
        *,
        hours_per_day: float | Decimal | str,
        start: str,
        end: str,
        estimated_minutes: int | None = None,
    ) -> str:
        """Assign a member to a task for `hours_per_day` on each working day (their workweek) from `start` to `end`
        (inclusive), as a resource manager does: the member's project resource is created when missing. The
        estimate defaults to the hours scheduled. Returns the assignment id."""
        with self._lock:
            story = self._stories.get(str(story_id))
            if story is None:
                raise ValueError(f"no story {story_id}")
            resource_id = self._resource_for(str(user_id), story["workspace_id"])
            if resource_id is None:
                values, errors = self._resource_values(
                    {"workspace_id": story["workspace_id"], "user_id": str(user_id)}, None, None
                )
                if errors:
                    raise ValueError(errors)
                resource_id = self._insert_resource(values)["id"]
            values, errors = self._assignment_values(
                {"story_id": str(story_id), "resource_id": resource_id}, None
            )
            if errors:
                raise ValueError(errors)
            assignment = self._new_row("assignments", values)
            self._assignments[assignment["id"]] = assignment
            minutes = _minutes(hours_per_day)
            for day in self._working_days(str(user_id), start, end):
                self._insert_day(assignment, day, minutes)
            total = sum(d["minutes"] for d in self._days_of(assignment["id"]))
            assignment["estimated_minutes"] = total if estimated_minutes is None else int(estimated_minutes)
            return assignment["id"]

    def change_assignment(
        self,
        assignment_id: str,
        *,
        hours_per_day: float | Decimal | str | None = None,
        start: str | None = None,
        end: str | None = None,
        estimated_minutes: int | None = None,
        user_id: str | None = None,
    ) -> None:
        """Change an assignment as a delivery manager does: new hours a day and / or dates re-plan its daily hours
        (days that leave the window are deleted, the others created or updated), `user_id` hands it to another member
        (their project resource, created when missing). Stamps `updated_at` from the sandbox clock."""
        with self._lock:
            assignment = self._assignments.get(str(assignment_id))
            if assignment is None:
                raise ValueError(f"no assignment {assignment_id}")
            story = self._stories[assignment["_story"]]
            if user_id is not None:
                resource_id = self._resource_for(str(user_id), story["workspace_id"])
                if resource_id is None:
                    values, errors = self._resource_values(
                        {"workspace_id": story["workspace_id"], "user_id": str(user_id)}, None, None
                    )
                    if errors:
                        raise ValueError(errors)
                    resource_id = self._insert_resource(values)["id"]
                assignment["_resource"] = resource_id
            days = self._days_of(assignment["id"])
            previous_total = sum(d["minutes"] for d in days)
            if hours_per_day is not None or start is not None or end is not None:
                if not days and (start is None or end is None or hours_per_day is None):
                    raise ValueError("an assignment without daily hours needs hours_per_day, start and end")
                minutes = _minutes(hours_per_day) if hours_per_day is not None else days[0]["minutes"]
                low = start or days[0]["date"]
                high = end or days[-1]["date"]
                owner = self._resources[assignment["_resource"]]["_user"] or ""
                wanted = set(self._working_days(owner, low, high))
                by_date = {d["date"]: d for d in days}
                for day in days:
                    if day["date"] not in wanted:
                        del self._allocation_days[day["id"]]
                for day_text in sorted(wanted):
                    existing = by_date.get(day_text)
                    if existing is None:
                        self._insert_day(assignment, day_text, minutes)
                    elif existing["minutes"] != minutes:
                        existing["minutes"] = minutes
                        self._touch(existing)
            total = sum(d["minutes"] for d in self._days_of(assignment["id"]))
            if estimated_minutes is not None:
                assignment["estimated_minutes"] = int(estimated_minutes)
            elif assignment["estimated_minutes"] == previous_total:
                assignment["estimated_minutes"] = total
            self._touch(assignment)

    def remove_assignment(self, assignment_id: str) -> None:
        """Unassign (Kantata never deletes assignments): `current` becomes false, the daily hours stay."""
        with self._lock:
            assignment = self._assignments.get(str(assignment_id))
            if assignment is None:
                raise ValueError(f"no assignment {assignment_id}")
            assignment["current"] = False
            self._touch(assignment)

    def _working_days(self, user_id: str, start: str, end: str) -> list[str]:
        if not (_is_date(start) and _is_date(end)) or end < start:
            raise ValueError(f"bad date range {start}..{end}")
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        days = []
        day = first
        while day <= last:
            workweek = (
                self._effective_workweek(user_id, day)
                if user_id in self._users
                else self._default_workweek(day)
            )
            if workweek[f"{DAYS[(day.weekday() + 1) % 7]}_minutes"] > 0:
                days.append(day.isoformat())
            day += timedelta(days=1)
        return days

    # ------------------------------------------------------------------ inspection
    def account_memberships(self) -> list[Row]:
        every = {"user", "default_role", "manager"}
        with self._lock:
            return [self._render_membership(m, every) for m in self._memberships.values()]

    def account_invitations(self) -> list[Row]:
        with self._lock:
            return [
                self._render_invitation(i, {"invitee", "inviter", "default_role"})
                for i in self._invitations.values()
            ]

    def cost_rates(self) -> list[Row]:
        with self._lock:
            return [self._render_cost_rate(r, set()) for r in self._cost_rates.values()]

    def roles(self) -> list[Row]:
        with self._lock:
            return [self._render_role(r, set()) for r in self._roles.values()]

    def skills(self) -> list[Row]:
        with self._lock:
            return [self._render_skill(s, {"skill_category"}) for s in self._skills.values()]

    def skill_memberships(self) -> list[Row]:
        with self._lock:
            return [
                self._render_skill_membership(m, {"skill", "user"}) for m in self._skill_memberships.values()
            ]

    def organizations(self) -> list[Row]:
        with self._lock:
            return [self._public(o) for o in self._organizations.values()]

    def organization_memberships(self) -> list[Row]:
        with self._lock:
            return [
                self._render_org_membership(m, {"department", "geography"})
                for m in self._org_memberships.values()
            ]

    def workweek_memberships(self) -> list[Row]:
        with self._lock:
            return [
                self._render_workweek_membership(m, {"workweek"}) for m in self._workweek_memberships.values()
            ]

    def holiday_calendar_memberships(self) -> list[Row]:
        with self._lock:
            return [
                self._render_holiday_membership(m, {"holiday_calendar"})
                for m in self._holiday_memberships.values()
            ]

    def custom_field_values(self) -> list[Row]:
        with self._lock:
            return [self._render_value(v, {"custom_field"}) for v in self._custom_field_values.values()]

    def workspace_resources(self, workspace_id: str | None = None) -> list[Row]:
        with self._lock:
            return [
                self._render_resource(r, {"user", "role"}, set())
                for r in self._resources.values()
                if workspace_id is None or r["_workspace"] == str(workspace_id)
            ]

    def assignments(self, workspace_id: str | None = None) -> list[Row]:
        """Every assignment as the API renders it, plus `assignee_id`, `story_id` and `story_allocation_day_ids`."""
        with self._lock:
            return [
                self._render_assignment(a, {"assignee", "story", "story_allocation_days"})
                for a in self._assignments.values()
                if workspace_id is None or self._stories[a["_story"]]["workspace_id"] == str(workspace_id)
            ]

    def assignment(self, assignment_id: str) -> Row | None:
        with self._lock:
            found = self._assignments.get(str(assignment_id))
            return (
                self._render_assignment(found, {"assignee", "story", "story_allocation_days"})
                if found
                else None
            )

    def story_allocation_days(self, assignment_id: str | None = None) -> list[Row]:
        with self._lock:
            return [
                self._render_day(d, {"assignment", "story", "workspace"})
                for d in self._allocation_days.values()
                if assignment_id is None or d["_assignment"] == str(assignment_id)
            ]

    def resources_state(self) -> dict[str, Any]:
        return {
            "account_memberships": self.account_memberships(),
            "account_invitations": self.account_invitations(),
            "cost_rates": self.cost_rates(),
            "organization_memberships": self.organization_memberships(),
            "skill_memberships": self.skill_memberships(),
            "workweek_memberships": self.workweek_memberships(),
            "holiday_calendar_memberships": self.holiday_calendar_memberships(),
            "custom_field_values": self.custom_field_values(),
            "workspace_resources": self.workspace_resources(),
            "assignments": self.assignments(),
            "story_allocation_days": self.story_allocation_days(),
        }

    def time_expense_state(self) -> dict[str, Any]:
        return {**super().time_expense_state(), **self.resources_state()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sortable(value: Any) -> tuple[bool, Any]:
    """Sort keys with None last (ascending)."""
    return (value is None, value if value is not None else 0)


def _with_next(rows: Sequence[Row]) -> Iterable[tuple[Row, Row | None]]:
    """Each row with the one after it (None for the last)."""
    return ((row, rows[index + 1] if index + 1 < len(rows) else None) for index, row in enumerate(rows))


def _moment_test(moment: datetime, *, created: bool, after: bool) -> Callable[[datetime, datetime], bool]:
    def test(created_at: datetime, updated_at: datetime) -> bool:
        value = created_at if created else updated_at
        return value > moment if after else value < moment

    return test


def _status_test(query: Mapping[str, str]) -> Callable[[Row], bool]:
    """Account membership status filters: active only by default; `only_inactive=true`; `is_active=false` (any)."""
    if _truthy(query.get("only_inactive")):
        return lambda m: m["_disabled"] is not None
    if query.get("is_active") is not None and not _truthy(query["is_active"]):
        return lambda m: True
    return lambda m: m["_disabled"] is None


def _number_errors(data: Mapping[str, Any], names: Iterable[str], index: int | None) -> list[dict[str, Any]]:
    return [
        _invalid(name, f"{name.replace('_', ' ').capitalize()} is not a number", index)
        for name in names
        if data.get(name) is not None and not _is_int(data[name])
    ]


def _amount_errors(data: Mapping[str, Any], index: int | None) -> list[dict[str, Any]]:
    amount = data.get("amount_in_subunits")
    if amount is None:
        return [_invalid("amount_in_subunits", "Amount in subunits can't be blank", index)]
    if not _is_int(amount):
        return [_invalid("amount_in_subunits", "Amount in subunits is not a number", index)]
    if int(amount) < 0:
        return [
            _invalid("amount_in_subunits", "Amount in subunits must be greater than or equal to 0", index)
        ]
    return []


def _optional_fields(call: Call) -> set[str]:
    raw = ",".join(call.query.get(key, "") for key in ("optional_fields", "optional_fields[]"))
    return {part.strip() for part in raw.split(",") if part.strip()}


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _sunday_on_or_before(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _minutes(hours: float | Decimal | str) -> int:
    minutes = Decimal(str(hours)) * 60
    if minutes < 0 or minutes > MINUTES_PER_DAY:
        raise ValueError(f"hours_per_day must be between 0 and 24, got {hours}")
    return int(minutes.to_integral_value())
