"""Kantata time entries and expenses -> canonical entries: the field maps on records in Kantata's documented
shape, and the adapter's reading (filters, pages that shift under it, filters Kantata ignores, records that
cannot be mapped) against the Kantata sandbox in-process and hand-written answers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import PAGE_OVERLAP, KantataPsa, Unmappable
from hub.errors import DataValidationError, PermanentError, TransientError
from hub.flows.initiation.planning import project_external_id
from hub.mapping import kantata as km
from hub.model import ApprovalStatus, ExpenseCategory, Money
from local.sandboxes import KantataSandbox
from tests.unit.connectors.test_kantata_adapter import project

UTC = dt.UTC
TOKEN = "kantata-sandbox-token"
BASE = "https://api.mavenlink.com/api/v1"
OPP = "006Dn00000A1b2cAAB"
T0 = dt.datetime(2025, 1, 31, 17, 0, 0, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)


# ------------------------------------------------------------------------------------ Kantata records

WORKSPACE = {
    "id": "36463343",
    "title": "Acme - ERP rollout",
    "description": f"pshub:opportunity:{OPP}\npshub:entity:UK01\nCreated by the integration hub",
    "currency": "GBP",
}
STORY = {"id": "856448162", "workspace_id": "36463343", "title": "Configure", "description": "pshub:wbs:2.1"}
APPROVED_SHEET = {
    "id": "9000001",
    "status": "approved",
    "updated_at": "2025-01-31T09:30:00-08:00",
    "current_resolution_created_at_date": "2025-01-31T09:30:00-08:00",
}


def time_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "id": "267112830",
        "workspace_id": "36463343",
        "story_id": "856448162",
        "user_id": "1522916",
        "date_performed": "2025-01-27",
        "time_in_minutes": 450,
        "billable": True,
        "rate_in_cents": 15000,
        "notes": "workshop",
        "currency": "GBP",
        "currency_base_unit": 100,
        "approved": True,
        "created_at": "2025-01-31T08:59:59-08:00",
        "updated_at": "2025-01-31T09:00:00-08:00",
        "active_submission_id": "9000001",
        "recent_submission_id": "9000001",
    }
    record.update(overrides)
    return record


def expense_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "id": "42898810",
        "workspace_id": "36463343",
        "story_id": None,
        "user_id": "1522916",
        "date": "2025-01-27",
        "category": "Lodging",
        "expense_category_id": "100003",
        "amount_in_cents": 12345,
        "currency": "GBP",
        "currency_base_unit": 100,
        "receipt_id": "900001",
        "billable": True,
        "reimbursable": True,
        "notes": "",
        "approved": True,
        "updated_at": "2025-01-31T09:00:00-08:00",
        "active_submission_id": "3000001",
        "recent_submission_id": "3000001",
    }
    record.update(overrides)
    return record


def answer_with(kind: km.LineKind, record: dict[str, Any], *submissions: dict[str, Any], **extra) -> dict:
    """A Kantata answer carrying ``record`` and its included objects (``include=workspace,story,...``)."""
    answer = {
        "count": 1,
        "results": [{"key": kind.collection, "id": record["id"]}],
        kind.collection: {record["id"]: record},
        "workspaces": {WORKSPACE["id"]: WORKSPACE},
        "stories": {STORY["id"]: STORY},
        kind.submissions: {s["id"]: s for s in submissions},
    }
    answer.update(extra)
    return answer


def load(kind: km.LineKind, record: dict[str, Any], *submissions, home=None, external_id="default", **extra):
    answer = answer_with(kind, record, *submissions, **extra)
    external = project_external_id(OPP) if external_id == "default" else external_id
    context = km.line_context(
        kind, record, answer, project_external_id=external, home_countries=home or {"UK01": "GB"}
    )
    return km.line_item(kind, record, context)


# ----------------------------------------------------------------------------------------- time entries


def test_a_kantata_time_entry_maps_to_a_canonical_entry_with_its_project_task_entity_and_hours():
    entry = load(km.TIME, time_record(), APPROVED_SHEET)

    assert entry.psa_id == "267112830" and entry.worker_id == "1522916"
    assert entry.legal_entity_code == "UK01"
    assert (entry.project.psa_project_id, entry.project.external_id) == ("36463343", f"sf-opp-{OPP}")
    assert entry.task is not None and (entry.task.psa_task_id, entry.task.wbs_code) == ("856448162", "2.1")
    assert entry.hours == Decimal("7.5") and entry.work_date == dt.date(2025, 1, 27) and entry.billable
    assert entry.approval_status is ApprovalStatus.APPROVED
    assert entry.approved_at == dt.datetime(2025, 1, 31, 17, 30, tzinfo=UTC)
    assert entry.notes == "workshop"


def test_the_version_is_updated_at_in_epoch_microseconds_the_same_instant_in_any_zone():
    pacific = load(km.TIME, time_record(updated_at="2025-01-31T09:00:00-08:00"), APPROVED_SHEET)
    utc = load(km.TIME, time_record(updated_at="2025-01-31T17:00:00+00:00"), APPROVED_SHEET)
    later = load(km.TIME, time_record(updated_at="2025-01-31T17:00:01Z"), APPROVED_SHEET)

    assert pacific.version == utc.version == int(T0.timestamp()) * 1_000_000
    assert later.version == pacific.version + 1_000_000


def test_a_timestamp_without_an_offset_is_read_in_the_accounts_time_zone():
    record = {**time_record(updated_at="2025-01-31T09:00:00"), "_time_zone": "America/Los_Angeles"}

    assert km.instant_in(record["updated_at"], "America/Los_Angeles") == T0
    assert km.TIME_ENTRY.load(record)["version"] == int(T0.timestamp()) * 1_000_000


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [(480, Decimal("8")), (45, Decimal("0.75")), (50, Decimal("0.833333")), (1, Decimal("0.016667"))],
)
def test_hours_are_minutes_over_sixty_exact_when_they_can_be(minutes, hours):
    assert km.hours_from_minutes(minutes) == hours
    assert load(km.TIME, time_record(time_in_minutes=minutes), APPROVED_SHEET).hours == hours


SUBMITTED = {"id": "9000002", "status": "pending", "updated_at": "2025-01-31T09:00:00-08:00"}
REJECTED = {**SUBMITTED, "id": "9000003", "status": "rejected"}
CANCELLED = {**SUBMITTED, "id": "9000004", "status": "cancelled"}


@pytest.mark.parametrize(
    ("fields", "submissions", "status", "approved_at"),
    [
        ({}, [APPROVED_SHEET], ApprovalStatus.APPROVED, dt.datetime(2025, 1, 31, 17, 30, tzinfo=UTC)),
        (  # a project that needs no approval: approved as saved
            {"active_submission_id": None, "recent_submission_id": None},
            [],
            ApprovalStatus.APPROVED,
            T0,
        ),
        (
            {"approved": False, "active_submission_id": "9000002", "recent_submission_id": "9000002"},
            [SUBMITTED],
            ApprovalStatus.SUBMITTED,
            None,
        ),
        (
            {"approved": False, "active_submission_id": None, "recent_submission_id": "9000003"},
            [REJECTED],
            ApprovalStatus.REJECTED,
            None,
        ),
        (
            {"approved": False, "active_submission_id": None, "recent_submission_id": "9000004"},
            [CANCELLED],
            ApprovalStatus.WITHDRAWN,
            None,
        ),
        (
            {"approved": False, "active_submission_id": None, "recent_submission_id": None},
            [],
            ApprovalStatus.SUBMITTED,
            None,
        ),
    ],
    ids=["approved", "no approval needed", "pending", "rejected", "cancelled", "never submitted"],
)
def test_the_approval_status_comes_from_the_entrys_submissions(fields, submissions, status, approved_at):
    entry = load(km.TIME, time_record(**fields), *submissions)

    assert entry.approval_status is status and entry.approved_at == approved_at


def test_a_story_without_the_hubs_wbs_marker_is_no_task_and_no_story_is_no_task():
    foreign = {**STORY, "description": "someone's task"}

    assert load(km.TIME, time_record(), APPROVED_SHEET, stories={STORY["id"]: foreign}).task is None
    assert load(km.TIME, time_record(story_id=None), APPROVED_SHEET).task is None


# --------------------------------------------------------------------------------------------- expenses


def test_a_kantata_expense_maps_to_a_canonical_line_with_money_from_its_subunits():
    line = load(km.EXPENSES, expense_record(), {**APPROVED_SHEET, "id": "3000001"})

    assert line.gross == Money(amount=Decimal("123.45"), currency="GBP")
    assert line.category is ExpenseCategory.LODGING and line.receipt_attached and line.billable
    assert line.supplier_country == "GB" and line.legal_entity_code == "UK01"
    assert line.approval_status is ApprovalStatus.APPROVED and line.expense_date == dt.date(2025, 1, 27)


@pytest.mark.parametrize(
    ("cents", "currency", "base_unit", "amount"),
    [
        (12345, "GBP", 100, Decimal("123.45")),
        (5000, "JPY", 1, Decimal("5000")),
        (12345, "KWD", 1000, Decimal("12.345")),
        (5000, "JPY", None, Decimal("5000")),  # no base unit in the answer: the currency's own
        (99, "USD", None, Decimal("0.99")),
    ],
)
def test_money_is_read_in_the_currencys_subunits(cents, currency, base_unit, amount):
    record = {"currency": currency, "currency_base_unit": base_unit}

    assert km.money_from_subunits(cents, record) == {"amount": amount, "currency": currency}


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("Travel", ExpenseCategory.TRAVEL),
        ("mileage", ExpenseCategory.MILEAGE),
        ("Food", ExpenseCategory.MEALS),
        ("Entertainment", ExpenseCategory.CLIENT_ENTERTAINMENT),
        (" Other ", ExpenseCategory.OTHER),
    ],
)
def test_kantata_expense_categories_map_case_insensitively(name, category):
    assert load(km.EXPENSES, expense_record(category=name)).category is category


def test_the_supplier_country_is_the_notes_marker_else_the_entitys_home_country():
    marked = load(km.EXPENSES, expense_record(notes="Hotel in Dublin pshub:country:IE"))
    unmarked = load(km.EXPENSES, expense_record(receipt_id=None))

    assert marked.supplier_country == "IE"
    assert unmarked.supplier_country == "GB" and unmarked.receipt_attached is False


# ---------------------------------------------------------------------------------------- unmappable


def problems_of(kind, record, *submissions, **kwargs) -> dict[str, str]:
    with pytest.raises(DataValidationError) as caught:
        load(kind, record, *submissions, **kwargs)
    assert caught.value.code == "unmappable"
    return {p["field"]: p["problem"] for p in caught.value.problems}


def test_a_project_without_a_legal_entity_or_a_hub_link_cannot_be_mapped_and_says_how_to_fix_it():
    unmarked = {**WORKSPACE, "description": "an old project"}

    problems = problems_of(
        km.TIME, time_record(), APPROVED_SHEET, external_id=None, workspaces={WORKSPACE["id"]: unmarked}
    )

    assert "pshub:entity:<code>" in problems["legal_entity_code"]
    assert "not linked" in problems["project.external_id"]


@pytest.mark.parametrize(
    ("kind", "record", "field"),
    [
        (km.TIME, time_record(time_in_minutes=0), "hours"),
        (km.TIME, time_record(time_in_minutes=25 * 60), "hours"),
        (km.TIME, time_record(story_id="404"), "task"),
        (km.EXPENSES, expense_record(category="Team building"), "category"),
        (km.EXPENSES, expense_record(amount_in_cents=-500), "gross"),
        (km.TIME, time_record(updated_at="yesterday"), "version"),
    ],
    ids=["zero minutes", "over a day", "task not readable", "unknown category", "a credit", "bad timestamp"],
)
def test_a_line_item_the_canonical_model_refuses_cannot_be_mapped(kind, record, field):
    sheet = APPROVED_SHEET if kind is km.TIME else {**APPROVED_SHEET, "id": "3000001"}

    assert field in problems_of(kind, record, sheet)


def test_an_expense_of_an_entity_without_a_home_country_and_no_marker_cannot_be_mapped():
    problems = problems_of(km.EXPENSES, expense_record(), home={"US01": "US"})

    assert "pshub:country:<ISO code>" in problems["supplier_country"]


# --------------------------------------------------------------------------------------------- markers


def test_the_project_the_hub_creates_carries_its_legal_entity_which_is_read_back():
    body = km.workspace_body(project())

    assert km.legal_entity_of(body["workspace"]) == "UK01"
    assert km.carries_marker(body["workspace"]["description"], km.project_marker(OPP))


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("pshub:entity:US01", "US01"),
        ("notes\npshub:entity:JP-01 more", "JP-01"),
        ("xpshub:entity:US01", None),
        ("pshub:entity:us01", None),
        ("pshub:entity:", None),
    ],
)
def test_the_legal_entity_marker_is_read_only_as_a_whole_token(description, code):
    assert km.legal_entity_of({"description": description}) == code


def test_the_external_id_comes_from_the_hubs_reference_else_from_the_marker():
    reference = {"subject_type": "Workspace", "service_name": "pshub", "service_model": "Opportunity"}
    other_opp = "006Dn00000Z9y8xAAA"

    linked = km.project_external_id_of([{**reference, "service_model_ref": other_opp}], WORKSPACE)
    marked = km.project_external_id_of([], WORKSPACE)
    foreign = km.project_external_id_of(
        [{**reference, "service_name": "other", "service_model_ref": "x"}], {}
    )

    assert linked == project_external_id(other_opp) and marked == project_external_id(OPP) and foreign is None


# ------------------------------------------------------------------------------------ the adapter


def no_wait() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None)


def adapter(transport: httpx.BaseTransport, **kwargs) -> KantataPsa:
    return KantataPsa(
        httpx.Client(transport=transport),
        token=TOKEN,
        retry=no_wait(),
        home_countries={"UK01": "GB"},
        **kwargs,
    )


@pytest.fixture
def clock():
    return [T0]


@pytest.fixture
def kantata(clock) -> KantataSandbox:
    return KantataSandbox(time_zone="America/Los_Angeles", clock=lambda: clock[0])


def seed_project(kantata: KantataSandbox) -> tuple[str, str]:
    workspace = kantata.seed_workspace(title="Acme", currency="GBP", description="pshub:entity:UK01")
    kantata.seed_external_reference(
        subject_type="Workspace", subject_id=workspace, service_model="Opportunity", service_model_ref=OPP
    )
    return workspace, kantata.seed_story(workspace, title="Configure", description="pshub:wbs:2.1")


def test_the_sweep_asks_kantata_for_approved_entries_of_the_window_in_utc_a_second_early(kantata, clock):
    seed_project(kantata)
    after = dt.datetime(2025, 1, 31, 8, 58, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))

    list(adapter(kantata.transport()).approved_time_entries(updated_after=after, updated_before=T0 + MIN))

    [listing] = kantata.calls("GET", "/time_entries")
    assert listing.query["approved"] == "true"
    assert listing.query["updated_after"] == "2025-01-31T16:57:59+00:00"
    assert listing.query["updated_before"] == "2025-01-31T17:01:00+00:00"
    assert listing.query["order"] == "updated_at:asc" and listing.query["from_archived_workspaces"] == "true"
    assert set(listing.query["include"].split(",")) >= {"workspace", "story", "active_submission"}
    [approvals] = kantata.calls("GET", "/timesheet_submissions")
    assert approvals.query["statuses"] == "approved"


def test_a_naive_or_inverted_window_is_refused_before_anything_is_read(kantata):
    psa = adapter(kantata.transport())

    with pytest.raises(ValueError, match="timezone-aware"):
        psa.approved_time_entries(updated_after=T0.replace(tzinfo=None), updated_before=T0)
    with pytest.raises(ValueError, match="before it starts"):
        psa.approved_expenses(updated_after=T0, updated_before=T0 - MIN)
    assert kantata.call_count() == 0


class AfterEach(httpx.BaseTransport):
    """The sandbox, with something happening in Kantata after each answer (people approve while we read)."""

    def __init__(self, sandbox: KantataSandbox, hook) -> None:
        self.inner = sandbox.transport()
        self.hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.hook(request)
        return response


def test_entries_leaving_the_listing_between_two_pages_make_the_walk_step_back_not_skip(kantata, clock):
    workspace = kantata.seed_workspace(
        title="Acme", currency="GBP", description="pshub:entity:UK01", requires_time_approval=False
    )
    kantata.seed_external_reference(
        subject_type="Workspace", subject_id=workspace, service_model="Opportunity", service_model_ref=OPP
    )
    ids = kantata.seed_time_entries(workspace, 600, user_ids=kantata.seed_users(5))  # approved as saved
    clock[0] = T0 + MIN
    edited: list[str] = []

    def edit_the_first_entries(request: httpx.Request) -> None:
        first_page = (
            request.url.path.endswith("/time_entries.json") and request.url.params.get("offset") == "0"
        )
        if first_page and not edited:  # once: 25 entries already read are edited and leave the window
            for entry_id in ids[:25]:
                kantata.edit_time_entry(entry_id, notes="edited while the sweep reads")
                edited.append(entry_id)

    psa = adapter(AfterEach(kantata, edit_the_first_entries))
    read = [e.psa_id for e in psa.approved_time_entries(updated_after=T0 - MIN, updated_before=clock[0])]

    assert len(edited) == 25 > PAGE_OVERLAP
    assert set(ids) <= set(read)  # nothing skipped (the edited ones were read before they changed)
    assert len(read) == len(set(read))  # and nothing handed on twice
    offsets = [c.query["offset"] for c in kantata.calls("GET", "/time_entries") if "only" not in c.query]
    assert offsets.count("0") == 2  # it stepped back to re-read


def test_a_listing_that_never_settles_ends_in_a_transient_error():
    calls = {"n": 0}

    def always_new(request: httpx.Request) -> httpx.Response:
        if "external_references" in request.url.path:
            return httpx.Response(200, json={"count": 0, "results": [], "meta": {"page_count": 0}})
        calls["n"] += 1
        rows = {str(calls["n"] * 1000 + i): time_record(id=str(calls["n"] * 1000 + i)) for i in range(200)}
        return httpx.Response(
            200,
            json={
                "count": 10_000,
                "results": [{"key": "time_entries", "id": k} for k in rows],
                "time_entries": rows,
            },
        )

    skipped: list[Unmappable] = []
    psa = adapter(httpx.MockTransport(always_new))

    with pytest.raises(TransientError) as caught:
        list(
            psa.approved_time_entries(updated_after=T0, updated_before=T0 + MIN, on_unmappable=skipped.append)
        )
    assert caught.value.code == "unstable_list"


def test_entries_outside_the_window_or_unapproved_are_dropped_when_kantata_ignores_the_filters():
    inside = time_record(id="1", updated_at="2025-01-31T09:00:30-08:00")
    before = time_record(id="2", updated_at="2025-01-31T08:59:59-08:00")
    at_the_end = time_record(id="3", updated_at="2025-01-31T09:01:00-08:00")
    unapproved = time_record(id="4", approved=False, active_submission_id=None, recent_submission_id=None)
    rows = [inside, before, at_the_end, unapproved]

    def ignores_filters(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/time_entries.json"):
            body = answer_with(km.TIME, inside, APPROVED_SHEET)
            body.update(results=[{"key": "time_entries", "id": r["id"]} for r in rows])
            body["time_entries"] = {r["id"]: r for r in rows}
            return httpx.Response(200, json=body)
        if path.endswith("/timesheet_submissions.json"):
            return httpx.Response(200, json={"count": 0, "results": [], "timesheet_submissions": {}})
        return httpx.Response(200, json={"count": 0, "results": []})

    read = list(
        adapter(httpx.MockTransport(ignores_filters)).approved_time_entries(
            updated_after=T0, updated_before=T0 + MIN
        )
    )

    assert [e.psa_id for e in read] == ["1"]


def test_an_unmappable_entry_is_handed_to_the_callback_and_the_sweep_goes_on(kantata, clock):
    workspace, story = seed_project(kantata)
    foreign = kantata.seed_workspace(title="Not the hub's", currency="GBP")
    good = kantata.seed_time_entries(workspace, 3, story_id=story)
    bad = kantata.seed_time_entries(foreign, 1)
    kantata.approve_time_entries(good + bad)
    clock[0] = T0 + MIN
    psa = adapter(kantata.transport())
    window = {"updated_after": T0 - MIN, "updated_before": clock[0]}
    parked: list[Unmappable] = []

    read = [e.psa_id for e in psa.approved_time_entries(**window, on_unmappable=parked.append)]

    assert sorted(read) == sorted(good)
    [problem] = parked
    assert (problem.kind, problem.psa_id) == ("time entry", bad[0])
    assert {p["field"] for p in problem.error.problems} == {"legal_entity_code", "project.external_id"}
    with pytest.raises(DataValidationError):
        list(psa.approved_time_entries(**window))


def test_a_deleted_entry_cannot_be_re_read(kantata):
    with pytest.raises(PermanentError):
        adapter(kantata.transport()).time_entry("123456")


def test_an_expense_approved_long_after_it_was_entered_is_caught_through_its_expense_report(kantata, clock):
    workspace, _ = seed_project(kantata)
    [expense] = kantata.seed_expenses(workspace, 1, category="Food", amount_in_cents=4860)
    [report] = kantata.submit_expenses([expense])
    clock[0] = T0 + dt.timedelta(days=3)
    kantata.resolve_expense_report(report, "approve")
    clock[0] += MIN

    [line] = list(
        adapter(kantata.transport()).approved_expenses(
            updated_after=T0 + dt.timedelta(days=3) - MIN, updated_before=clock[0]
        )
    )

    assert line.psa_id == expense and line.category is ExpenseCategory.MEALS
    assert line.gross == Money(amount=Decimal("48.60"), currency="GBP")
    assert line.approved_at == T0 + dt.timedelta(days=3)
    assert line.version == int(T0.timestamp()) * 1_000_000  # the approval is not an edit
