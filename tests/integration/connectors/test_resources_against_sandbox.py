"""The Kantata resource adapter against the Kantata sandbox in-process: the HCM's workers kept in step with the
resource pool (invited, updated where they differ, disabled after their last day, enabled on a rehire), and the
projects' assignments read back with their daily hours and the workers' HCM ids.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.kantata_resources import KantataResources
from hub.connectors.ports import PsaResourcePort
from hub.errors import DataValidationError, ThrottledError
from hub.mapping import kantata_resources as rm
from hub.model.workforce import StandardCalendar
from local.sandboxes import KantataSandbox
from local.sandboxes.base import Faults
from tests.support.workforce_builders import placement, rate, worker

pytestmark = pytest.mark.disable_socket

TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
TODAY = dt.date(2026, 3, 4)  # a Wednesday
NEXT_MONTH = dt.date(2026, 4, 1)
T0 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
WRITES = ("POST", "PUT", "DELETE")


@pytest.fixture
def kantata() -> KantataSandbox:
    sandbox = KantataSandbox(tokens=[TOKEN], clock=lambda: T0)
    # What an administrator sets up once: the User custom fields and the departments.
    for name in ("Legal Entity", "Cost Centre", "HCM ID"):
        sandbox.seed_custom_field(name)
    for department in ("Delivery", "Advisory"):
        sandbox.seed_organization(department)
    return sandbox


@pytest.fixture
def pool(kantata: KantataSandbox) -> KantataResources:
    return pool_for(kantata)


@pytest.fixture
def api(kantata: KantataSandbox) -> httpx.Client:
    """Kantata as a person uses it (a resource manager, an administrator)."""
    return httpx.Client(
        transport=kantata.transport(),
        base_url=KANTATA_URL + "/",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def writes_since(kantata: KantataSandbox, mark: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in kantata.requests[mark:] if r.method in WRITES]


def join(kantata: KantataSandbox, pool: KantataResources, *workers, today: dt.date = TODAY) -> list[str]:
    """Invite the workers through the hub and have each accept: they are members. Their user ids."""
    results = pool.upsert_resources(list(workers), today=today)
    assert [r.outcome for r in results] == ["created"] * len(workers), results
    for invitation in kantata.account_invitations():
        if invitation["pending"]:
            kantata.accept_invitation(invitation["id"])
    return [r.psa_user_id for r in results if r.psa_user_id]


def values_of(kantata: KantataSandbox, user_id: str) -> dict[str, str]:
    return {
        v["custom_field_name"]: v["display_value"]
        for v in kantata.custom_field_values()
        if v["subject_type"] == "User" and str(v["subject_id"]) == user_id
    }


def membership_of(kantata: KantataSandbox, user_id: str) -> dict:
    return next(m for m in kantata.account_memberships() if m["user_id"] == user_id)


def rates_of(kantata: KantataSandbox, user_id: str) -> dict[str, int]:
    membership = membership_of(kantata, user_id)
    return {
        r["currency"]: r["amount_in_subunits"]
        for r in kantata.cost_rates()
        if str(r["account_membership_id"]) == membership["id"]
    }


def department_of(kantata: KantataSandbox, user_id: str) -> str | None:
    names = {o["id"]: o["name"] for o in kantata.organizations()}
    found = [
        m
        for m in kantata.organization_memberships()
        if m["member_type"] == "User" and m["member_id"] == user_id
    ]
    return names[found[0]["department_id"]] if found else None


# ------------------------------------------------------------------------------------------------ joiners


def test_a_new_worker_is_invited_with_its_reference_rate_department_skills_and_workweek(kantata, pool, api):
    four_days = StandardCalendar(hours_per_day=Decimal("7.5"), working_days=(1, 2, 3, 4), country="GB")
    ada = worker(hcm_id="E2001", display_name="Ada Lovelace", skills=("SAP FI", "Python"), calendar=four_days)

    port: PsaResourcePort = pool
    [result] = port.upsert_resources([ada], today=TODAY)

    assert result.outcome == "created" and result.error is None and result.psa_user_id
    user = result.psa_user_id
    [invitation] = kantata.account_invitations()
    assert invitation["invitee_id"] == user and invitation["pending"] is True
    assert invitation["email_address"] == "e2001@staff.example" and invitation["full_name"] == "Ada Lovelace"
    assert invitation["cost_rate_in_cents"] == 8_000  # the rate in effect today, in the account currency
    references = api.get(
        "external_references.json", params={"subject_type": "User", "subject_id": user}
    ).json()["external_references"]
    assert [(r["service_name"], r["service_model"], r["service_model_ref"]) for r in references.values()] == [
        ("pshub", "Worker", "E2001")
    ]
    assert values_of(kantata, user) == {"Legal Entity": "US01", "Cost Centre": "CC-100", "HCM ID": "E2001"}
    assert department_of(kantata, user) == "Delivery"
    skills = [m["cached_skill_name"] for m in kantata.skill_memberships() if m["user_id"] == user]
    assert sorted(skills) == ["Python", "SAP FI"]
    [week] = [m for m in kantata.workweek_memberships() if m["user_id"] == int(user)]
    assert week["start_date"] == "2026-03-01"  # the Sunday of the run's week
    assert kantata.available_minutes(user, "2026-03-05") == 450  # Thursday
    assert kantata.available_minutes(user, "2026-03-06") == 0  # Friday: not a working day

    # Once the person accepts, they are a member with the rate the invitation carried.
    kantata.accept_invitation(invitation["id"])
    assert rates_of(kantata, user) == {"USD": 8_000}


def test_a_department_and_a_skill_another_batch_created_meanwhile_are_used_not_refused(kantata):
    """Two consumers' batches both find the department and the skill missing; the second's create is refused
    ("name has already been taken") and it uses the one the first created."""

    def concurrent_batch_first(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/organizations.json"):
            kantata.seed_organization("Advisory Labs")  # the other batch's create lands first
        if request.method == "POST" and request.url.path.endswith("/skills.json"):
            kantata.seed_skill("Rust")
        return kantata.handle(request)

    pool = KantataResources(
        httpx.Client(transport=httpx.MockTransport(concurrent_batch_first)),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
        email_for=rm.invitation_email("{hcm_id}@staff.example"),
        account_currency="USD",
    )
    ada = worker(hcm_id="E2001", skills=("Rust",), placements=(placement(department="Advisory Labs"),))

    [result] = pool.upsert_resources([ada], today=TODAY)

    assert result.error is None and result.outcome == "created"
    assert department_of(kantata, result.psa_user_id) == "Advisory Labs"
    assert [m["cached_skill_name"] for m in kantata.skill_memberships()] == ["Rust"]
    assert [o["name"] for o in kantata.organizations()].count("Advisory Labs") == 1


def test_a_rerun_of_an_unchanged_worker_makes_no_write_call_before_or_after_they_accept(kantata, pool):
    ada = worker(hcm_id="E2001", skills=("SAP FI",), manager_hcm_id="E0001")
    boss = worker(hcm_id="E0001", display_name="Grace Hopper")
    [boss_user] = join(kantata, pool, boss)
    [first] = pool.upsert_resources([ada], today=TODAY)

    mark = len(kantata.requests)
    [pending] = pool.upsert_resources([ada], today=TODAY)

    assert (pending.outcome, pending.psa_user_id) == ("unchanged", first.psa_user_id)
    assert writes_since(kantata, mark) == []

    kantata.accept_invitation(next(i["id"] for i in kantata.account_invitations() if i["pending"]))
    [accepted] = pool.upsert_resources([ada], today=TODAY)  # the manager is set once both are members
    assert accepted.outcome == "updated"
    assert membership_of(kantata, first.psa_user_id)["manager_id"] == boss_user

    mark = len(kantata.requests)
    [again] = pool.upsert_resources([ada], today=TODAY)

    assert (again.outcome, again.psa_user_id, again.error) == ("unchanged", first.psa_user_id, None)
    assert writes_since(kantata, mark) == []


def test_a_person_an_administrator_added_before_the_hub_is_linked_not_invited_again(kantata, pool, api):
    existing = kantata.seed_member("Ada Lovelace", "e2001@staff.example")

    [result] = pool.upsert_resources([worker(hcm_id="E2001", display_name="Ada Lovelace")], today=TODAY)

    assert (result.outcome, result.psa_user_id) == ("updated", existing)
    assert kantata.account_invitations() == []
    reference = api.get(
        "external_references.json", params={"subject_type": "User", "subject_id": existing}
    ).json()["external_references"]
    assert [r["service_model_ref"] for r in reference.values()] == ["E2001"]


# ----------------------------------------------------------------------------------------------- changes


def test_a_rate_effective_today_is_pushed_and_one_effective_next_month_is_not_yet(kantata, pool):
    raised_today = worker(
        hcm_id="E3001",
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=TODAY - dt.timedelta(days=1)),
            rate("92.50", start=TODAY),
        ),
    )
    raised_next_month = worker(
        hcm_id="E3002",
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=NEXT_MONTH - dt.timedelta(days=1)),
            rate("95.00", start=NEXT_MONTH),
        ),
    )
    today_user, later_user = join(
        kantata, pool, raised_today, raised_next_month, today=TODAY - dt.timedelta(days=1)
    )

    results = pool.upsert_resources([raised_today, raised_next_month], today=TODAY)

    assert [r.outcome for r in results] == ["updated", "unchanged"]
    assert rates_of(kantata, today_user) == {"USD": 9_250}
    assert rates_of(kantata, later_user) == {"USD": 8_000}

    results = pool.upsert_resources([raised_today, raised_next_month], today=NEXT_MONTH)

    assert [r.outcome for r in results] == ["unchanged", "updated"]
    assert rates_of(kantata, later_user) == {"USD": 9_500}


def test_a_rate_in_another_currency_goes_to_the_members_rate_in_that_currency(kantata, pool):
    [user] = join(kantata, pool, worker(hcm_id="E3003"))

    [result] = pool.upsert_resources(
        [worker(hcm_id="E3003", cost_rates=(rate("70.00", "GBP"),))], today=TODAY
    )

    assert result.outcome == "updated"
    assert rates_of(kantata, user) == {"USD": 8_000, "GBP": 7_000}


def test_a_transfer_changes_legal_entity_cost_centre_and_department_from_its_effective_date(kantata, pool):
    moved = worker(
        hcm_id="E4001",
        placements=(
            placement("US01", end=NEXT_MONTH - dt.timedelta(days=1)),
            placement("GB01", start=NEXT_MONTH, cost_centre="CC-200", department="Advisory"),
        ),
    )
    [user] = join(kantata, pool, moved)

    [eve] = pool.upsert_resources([moved], today=NEXT_MONTH - dt.timedelta(days=1))
    assert eve.outcome == "unchanged"
    assert values_of(kantata, user)["Legal Entity"] == "US01" and department_of(kantata, user) == "Delivery"

    mark = len(kantata.requests)
    [day] = pool.upsert_resources([moved], today=NEXT_MONTH)

    assert day.outcome == "updated"
    assert values_of(kantata, user) == {"Legal Entity": "GB01", "Cost Centre": "CC-200", "HCM ID": "E4001"}
    assert department_of(kantata, user) == "Advisory"
    assert sorted(writes_since(kantata, mark)) == [
        "POST /api/v1/custom_field_values.json",  # both fields in one bulk call
        f"PUT /api/v1/organization_memberships/{kantata.organization_memberships()[0]['id']}.json",
    ]


def test_skills_the_hcm_drops_are_removed_but_skills_a_manager_added_are_kept(kantata, pool):
    [user] = join(kantata, pool, worker(hcm_id="E5001", skills=("SAP FI", "Python")))
    manager = kantata.seed_member("Delivery Manager")
    added = kantata.seed_skill_membership(user, kantata.seed_skill("Negotiation"))
    # The sandbox has one API user and no way to act as another person: what a manager does in Kantata's UI
    # is recorded here by setting the membership's creator.
    kantata._skill_memberships[added]["_creator"] = manager

    [result] = pool.upsert_resources([worker(hcm_id="E5001", skills=("Python", "Rust"))], today=TODAY)

    assert result.outcome == "updated"
    held = sorted(m["cached_skill_name"] for m in kantata.skill_memberships() if m["user_id"] == user)
    assert held == ["Negotiation", "Python", "Rust"]


# ----------------------------------------------------------------------------------- leavers and rehires


def test_a_leaver_past_the_end_date_is_disabled_and_stays_readable(kantata, pool, api):
    [user] = join(kantata, pool, worker(hcm_id="E6001"))
    leaver = worker(hcm_id="E6001", end_date=TODAY - dt.timedelta(days=1))

    [result] = pool.upsert_resources([leaver], today=TODAY)

    assert (result.outcome, result.psa_user_id) == ("deactivated", user)
    membership = membership_of(kantata, user)
    assert membership["disabled_at"] is not None
    assert not any(r.method == "DELETE" and "account_memberships" in r.path for r in kantata.requests)
    assert api.get(f"users/{user}.json").status_code == 200
    assert rates_of(kantata, user) == {"USD": 8_000} and values_of(kantata, user)["HCM ID"] == "E6001"

    mark = len(kantata.requests)
    [again] = pool.upsert_resources([leaver], today=TODAY)
    assert (again.outcome, again.psa_user_id) == ("unchanged", user) and writes_since(kantata, mark) == []


def test_a_leaver_on_the_last_day_stays_and_a_future_hire_is_not_created_yet(kantata, pool):
    [user] = join(kantata, pool, worker(hcm_id="E6002"))
    mark = len(kantata.requests)

    results = pool.upsert_resources(
        [
            worker(hcm_id="E6002", end_date=TODAY),  # today is the last day worked
            worker(hcm_id="E6003", hire_date=TODAY + dt.timedelta(days=7)),
        ],
        today=TODAY,
    )

    assert [(r.outcome, r.psa_user_id) for r in results] == [("unchanged", user), ("unchanged", None)]
    assert writes_since(kantata, mark) == []


def test_a_leaver_who_was_never_in_kantata_creates_nothing(kantata, pool):
    mark = len(kantata.requests)

    [result] = pool.upsert_resources([worker(hcm_id="E6004", end_date=dt.date(2025, 12, 31))], today=TODAY)

    assert (result.outcome, result.psa_user_id, result.error) == ("unchanged", None, None)
    assert writes_since(kantata, mark) == [] and kantata.account_invitations() == []


def test_a_leaver_who_never_accepted_has_the_invitation_revoked(kantata, pool):
    [invited] = pool.upsert_resources([worker(hcm_id="E6005")], today=TODAY)

    [result] = pool.upsert_resources(
        [worker(hcm_id="E6005", end_date=TODAY)], today=TODAY + dt.timedelta(days=1)
    )

    assert (result.outcome, result.psa_user_id) == ("deactivated", invited.psa_user_id)
    assert kantata.account_invitations() == []


def test_a_rehire_is_enabled_again(kantata, pool):
    [user] = join(kantata, pool, worker(hcm_id="E6006"))
    kantata.disable_member(user)
    rehired = worker(hcm_id="E6006", hire_date=dt.date(2026, 3, 2))

    [result] = pool.upsert_resources([rehired], today=TODAY)

    assert (result.outcome, result.psa_user_id) == ("updated", user)
    assert membership_of(kantata, user)["disabled_at"] is None


# ----------------------------------------------------------------------------------------------- failures


def test_one_bad_new_worker_fails_alone_and_the_others_are_invited(kantata, pool):
    pool._email_for = lambda w: (
        "not-an-address" if w.hcm_id == "E7002" else f"{w.hcm_id.lower()}@staff.example"
    )
    workers = [worker(hcm_id=f"E700{n}") for n in (1, 2, 3)]

    results = pool.upsert_resources(workers, today=TODAY)

    assert [r.outcome for r in results] == ["created", "unchanged", "created"]
    assert isinstance(results[1].error, DataValidationError) and results[1].error.code == "422"
    assert [p["field"] for p in results[1].error.problems] == ["email_address"]
    assert results[0].error is None and results[2].error is None
    assert len(kantata.account_invitations()) == 2


def test_one_member_kantata_refuses_fails_alone_and_the_others_are_updated(kantata, pool):
    users = join(kantata, pool, *(worker(hcm_id=f"E710{n}") for n in (1, 2, 3)))
    changed = [
        worker(hcm_id="E7101", cost_rates=(rate("85.00"),)),
        worker(hcm_id="E7102", cost_rates=(rate("-1.00"),)),  # Kantata refuses a negative rate (422)
        worker(hcm_id="E7103", cost_rates=(rate("86.00"),)),
    ]

    results = pool.upsert_resources(changed, today=TODAY)

    assert [r.outcome for r in results] == ["updated", "unchanged", "updated"]
    assert isinstance(results[1].error, DataValidationError) and results[1].psa_user_id == users[1]
    assert [rates_of(kantata, u)["USD"] for u in users] == [8_500, 8_000, 8_600]


def test_a_missing_custom_field_fails_the_workers_to_sync_but_leavers_are_still_disabled():
    kantata = KantataSandbox(tokens=[TOKEN], clock=lambda: T0)
    kantata.seed_custom_field("Legal Entity")  # no "Cost Centre", no "HCM ID"
    leaver = kantata.seed_member("Old Timer", external_id="E8001")
    adapter = KantataResources(
        httpx.Client(transport=kantata.transport()),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
        email_for=rm.invitation_email("{hcm_id}@staff.example"),
    )

    results = adapter.upsert_resources(
        [worker(hcm_id="E8001", end_date=dt.date(2026, 1, 31)), worker(hcm_id="E8002")], today=TODAY
    )

    assert (results[0].outcome, results[0].psa_user_id) == ("deactivated", leaver)
    error = results[1].error
    assert isinstance(error, DataValidationError) and error.code == "UNMAPPED_VALUE"
    assert sorted(p["field"] for p in error.problems) == [
        "custom_fields[Cost Centre]",
        "custom_fields[HCM ID]",
    ]
    assert kantata.account_invitations() == []


def test_throttling_for_the_whole_call_raises(kantata, pool):
    kantata.set_faults(Faults(throttle_rate=1.0))

    with pytest.raises(ThrottledError):
        pool.upsert_resources([worker()], today=TODAY)


# ------------------------------------------------------------------------------------------------ batching


def test_two_hundred_workers_take_a_handful_of_calls(kantata, pool):
    workers = [
        worker(hcm_id=f"E9{n:03d}", display_name=f"Consultant {n}", skills=("SAP FI",)) for n in range(200)
    ]

    mark = len(kantata.requests)
    created = pool.upsert_resources(workers, today=TODAY)
    invite_calls = len(kantata.requests) - mark

    assert [r.outcome for r in created] == ["created"] * 200
    for invitation in kantata.account_invitations():
        kantata.accept_invitation(invitation["id"])
    mark = len(kantata.requests)
    again = pool.upsert_resources(workers, today=TODAY)
    rerun_calls = kantata.requests[mark:]

    assert [r.outcome for r in again] == ["unchanged"] * 200
    assert [r for r in rerun_calls if r.method in WRITES] == []
    # Invitations 4 x 50, custom field values 6 x 100, organization memberships 2 x 100, skills 1 x 200,
    # and the reads: about a tenth of a call per worker to create, a fortieth to check.
    assert invite_calls <= 25, invite_calls
    assert len(rerun_calls) <= 8, [f"{r.method} {r.path}" for r in rerun_calls]
    print(f"calls for 200 new workers: {invite_calls}; for 200 unchanged members: {len(rerun_calls)}")


# --------------------------------------------------------------------------------------------- assignments


def planning_sandbox() -> tuple[KantataSandbox, list[datetime]]:
    now = [T0]
    return KantataSandbox(tokens=[TOKEN], clock=lambda: now[0]), now


def adapter_for(kantata: KantataSandbox) -> KantataResources:
    return KantataResources(
        httpx.Client(transport=kantata.transport()),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
    )


def test_projects_whose_assignments_daily_hours_or_resources_changed_in_the_window_are_found_once():
    kantata, now = planning_sandbox()
    person = httpx.Client(
        transport=kantata.transport(),
        base_url=KANTATA_URL + "/",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    ana, ben, cy = kantata.seed_members(3, external_ids=["E1", "E2", "E3"])
    projects = [kantata.seed_workspace(title=f"Project {n}", currency="USD") for n in range(5)]
    tasks = [kantata.seed_story(p, title="Build") for p in projects]
    assignments = [
        kantata.assign(ana, tasks[n], hours_per_day=8, start="2026-03-09", end="2026-03-13") for n in range(4)
    ]
    kantata.assign(ben, tasks[4], hours_per_day=4, start="2026-03-09", end="2026-03-13")  # before the window
    now[0] = T0 + dt.timedelta(hours=1)
    window_start = now[0]
    now[0] += dt.timedelta(minutes=5)
    kantata.change_assignment(assignments[0], estimated_minutes=999)  # the assignment itself
    [day] = kantata.story_allocation_days(assignments[1])[:1]
    answer = person.put(
        f"story_allocation_days/{day['id']}.json", json={"story_allocation_day": {"minutes": 240}}
    )
    assert answer.status_code == 200  # daily hours only: the assignment's updated_at does not move
    assert datetime.fromisoformat(kantata.assignment(assignments[1])["updated_at"]) < window_start
    [resource] = kantata.workspace_resources(projects[2])
    answer = person.put(
        f"workspace_resources/{resource['id']}.json", json={"workspace_resource": {"user_id": cy}}
    )
    assert answer.status_code == 200  # handed to someone else: only the resource moves
    kantata.change_assignment(assignments[0], hours_per_day=6)  # a second change to the same project
    now[0] += dt.timedelta(hours=1)
    window_end = now[0]
    now[0] += dt.timedelta(minutes=5)
    kantata.change_assignment(assignments[3], hours_per_day=2)  # after the window

    changed = list(
        adapter_for(kantata).assignments_changed(updated_after=window_start, updated_before=window_end)
    )

    assert sorted(changed) == sorted(projects[:3])
    assert len(changed) == 3  # project 0 changed twice, listed once; 3 changed after, 4 before the window


def test_project_assignments_come_back_with_hours_per_day_and_hcm_ids():
    kantata, _ = planning_sandbox()
    ana, ben = kantata.seed_members(2, external_ids=["E1", "E2"])
    outsider = kantata.seed_member("Freelancer")  # no hub reference
    project = kantata.seed_workspace(title="Northwind", currency="USD")
    build, test = kantata.seed_story(project, title="Build"), kantata.seed_story(project, title="Test")
    other = kantata.seed_story(kantata.seed_workspace(title="Other", currency="USD"), title="Build")
    a1 = kantata.assign(ana, build, hours_per_day="7.5", start="2026-03-09", end="2026-03-11")
    a2 = kantata.assign(ben, test, hours_per_day="0.75", start="2026-03-12", end="2026-03-13")
    kantata.assign(outsider, test, hours_per_day=8, start="2026-03-09", end="2026-03-09")
    gone = kantata.assign(ana, test, hours_per_day=8, start="2026-03-16", end="2026-03-16")
    kantata.remove_assignment(gone)  # unassigned: not current
    kantata.assign(ben, other, hours_per_day=8, start="2026-03-09", end="2026-03-09")
    kantata.disable_member(ben)  # a leaver's assignments still resolve to their HCM id

    assignments = adapter_for(kantata).project_assignments(project)

    by_id = {a.psa_assignment_id: a for a in assignments}
    assert set(by_id) == {a1, a2}
    assert (by_id[a1].psa_project_id, by_id[a1].worker_hcm_id) == (project, "E1")
    assert [(d.day, d.hours) for d in by_id[a1].days] == [
        (dt.date(2026, 3, 9), Decimal("7.5")),
        (dt.date(2026, 3, 10), Decimal("7.5")),
        (dt.date(2026, 3, 11), Decimal("7.5")),
    ]
    assert by_id[a2].worker_hcm_id == "E2" and by_id[a2].hours == Decimal("1.5")
    reads = [r for r in kantata.requests if r.method == "GET"]
    assert len(reads) == 2  # the assignments with their days, then the assignees' references


# ------------------------------------------------------------------------------ pending invitations, read once


def invitations_sandbox() -> tuple[KantataSandbox, list[datetime]]:
    now = [T0]
    sandbox = KantataSandbox(tokens=[TOKEN], clock=lambda: now[0])
    for name in ("Legal Entity", "Cost Centre", "HCM ID"):
        sandbox.seed_custom_field(name)
    sandbox.seed_organization("Delivery")
    return sandbox, now


def pool_for(kantata: KantataSandbox) -> KantataResources:
    return KantataResources(
        httpx.Client(transport=kantata.transport()),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
        email_for=rm.invitation_email("{hcm_id}@staff.example"),
        account_currency="USD",
    )


def invitation_reads(kantata: KantataSandbox, mark: int) -> list[dict]:
    return [r.query for r in kantata.requests[mark:] if r.method == "GET" and "account_invitations" in r.path]


def test_later_batches_read_only_the_invitations_stamped_since_the_latest_one_seen():
    kantata, now = invitations_sandbox()
    pool = pool_for(kantata)
    for start in (0, 200):  # two batches five minutes apart: 250 pending invitations, two pages
        batch = [worker(hcm_id=f"E3{n:03d}") for n in range(start, start + (200 if start == 0 else 50))]
        assert all(r.error is None for r in pool.upsert_resources(batch, today=TODAY))
        now[0] += dt.timedelta(minutes=5)
    mark = len(kantata.requests)

    results = pool.upsert_resources([worker(hcm_id="E3999")], today=TODAY)

    assert results[0].error is None and results[0].outcome == "created"
    [read] = invitation_reads(kantata, mark)  # one page: what changed since, not all 250 again
    assert read["updated_after"] == "2026-03-04T09:04:55+00:00"  # the latest stamp seen, less 5 s
    assert len(kantata.account_invitations()) == 251


def test_a_worker_another_container_invited_meanwhile_is_not_invited_twice():
    kantata, now = invitations_sandbox()
    here, elsewhere = pool_for(kantata), pool_for(kantata)
    here.upsert_resources([worker(hcm_id="E4001")], today=TODAY)  # this container has read the invitations
    now[0] += dt.timedelta(minutes=2)
    elsewhere.upsert_resources([worker(hcm_id="E4002")], today=TODAY)  # another container invites E4002
    now[0] += dt.timedelta(minutes=2)
    raised = worker(hcm_id="E4002", cost_rates=(rate("95.00", start=dt.date(2024, 1, 1)),))

    [result] = here.upsert_resources([raised], today=TODAY)

    assert result.error is None
    invited = [i for i in kantata.account_invitations() if i["email_address"] == "e4002@staff.example"]
    assert len(invited) == 1 and invited[0]["cost_rate_in_cents"] == 9_500  # found and updated, not re-sent


def test_an_invitation_the_hub_withdrew_for_a_leaver_is_not_withdrawn_again():
    kantata, now = invitations_sandbox()
    pool = pool_for(kantata)
    pool.upsert_resources([worker(hcm_id="E5001")], today=TODAY)
    left = worker(hcm_id="E5001", end_date=TODAY - dt.timedelta(days=1))
    now[0] += dt.timedelta(minutes=1)
    [withdrawn] = pool.upsert_resources([left], today=TODAY)
    mark = len(kantata.requests)

    [again] = pool.upsert_resources([left], today=TODAY)  # the same change applied again on its day

    assert withdrawn.outcome == "deactivated" and again.error is None
    assert [r for r in kantata.requests[mark:] if r.method == "DELETE"] == []
