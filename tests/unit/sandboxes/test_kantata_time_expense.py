"""Kantata OX sandbox: time entries, expenses, approvals (submissions), sweeps by watermark, fast seeding."""

import threading
import time
from datetime import UTC, datetime

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.kantata import KantataSandbox

pytestmark = pytest.mark.disable_socket

KANTATA_URL = "https://api.mavenlink.com/api/v1/"
T0 = datetime(2025, 1, 31, 17, 0, 0, tzinfo=UTC)


def _clock(start: datetime = T0):
    """A controllable clock: `now[0]` is the current time."""
    now = [start]
    return now, (lambda: now[0])


def _entry(psa_api, workspace_id: str, **fields) -> dict:
    body = {"workspace_id": workspace_id, "date_performed": "2025-01-27", "time_in_minutes": 120, **fields}
    response = psa_api.post("time_entries.json", json={"time_entry": body})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    return response.json()["time_entries"][result["id"]]


def _fields(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def _ids(response) -> list[str]:
    return [r["id"] for r in response.json()["results"]]


# ------------------------------------------------------------------------------------------- time entries
def test_a_time_entry_is_created_in_the_kantata_envelope_and_is_not_approved_yet(kantata, psa_api):
    workspace = kantata.seed_workspace(title="Rollout", currency="GBP")
    story = kantata.seed_story(workspace, title="Design")

    entry = _entry(psa_api, workspace, story_id=story, rate_in_cents=15_000, notes="workshop")

    assert entry["approved"] is False and entry["billable"] is True
    assert (entry["workspace_id"], entry["story_id"], entry["user_id"]) == (
        workspace,
        story,
        kantata.api_user_id,
    )
    assert (entry["time_in_minutes"], entry["rate_in_cents"], entry["currency"]) == (120, 15_000, "GBP")
    assert entry["is_invoiced"] is False and entry["created_at"] == entry["updated_at"]
    assert "active_submission_id" not in entry  # only with include=active_submission


def test_billable_defaults_to_the_tasks_flag(kantata, psa_api):
    workspace = kantata.seed_workspace()
    story = kantata.seed_story(workspace)
    kantata._stories[story]["billable"] = False

    assert _entry(psa_api, workspace, story_id=story)["billable"] is False
    assert _entry(psa_api, workspace, story_id=story, billable=True)["billable"] is True


@pytest.mark.parametrize(
    ("fields", "invalid"),
    [
        ({"workspace_id": None}, {"workspace_id"}),
        ({"workspace_id": "404"}, {"workspace_id"}),
        ({"date_performed": "31/01/2025"}, {"date_performed"}),
        ({"time_in_minutes": None}, {"time_in_minutes"}),
        ({"time_in_minutes": "two hours"}, {"time_in_minutes"}),
        ({"user_id": "1"}, {"user_id"}),
    ],
)
def test_an_invalid_time_entry_is_a_422_naming_the_field(kantata, psa_api, fields, invalid):
    workspace = kantata.seed_workspace()
    body = {"workspace_id": workspace, "date_performed": "2025-01-27", "time_in_minutes": 60, **fields}

    response = psa_api.post("time_entries.json", json={"time_entry": body})

    assert response.status_code == 422 and _fields(response) == invalid
    assert kantata.time_entries() == []


def test_a_task_of_another_project_is_refused(kantata, psa_api):
    workspace, other = kantata.seed_workspace(), kantata.seed_workspace(title="Other")
    foreign = kantata.seed_story(other)

    response = psa_api.post(
        "time_entries.json",
        json={
            "time_entry": {
                "workspace_id": workspace,
                "story_id": foreign,
                "date_performed": "2025-01-27",
                "time_in_minutes": 60,
            }
        },
    )

    assert response.status_code == 422 and _fields(response) == {"story_id"}


def test_time_entries_are_created_in_bulk_up_to_100_and_errors_carry_the_index(kantata, psa_api):
    workspace = kantata.seed_workspace()
    item = {"workspace_id": workspace, "date_performed": "2025-01-27", "time_in_minutes": 60}

    created = psa_api.post("time_entries.json", json={"time_entries": [item] * 100})
    too_many = psa_api.post("time_entries.json", json={"time_entries": [item] * 101})
    bad = psa_api.post("time_entries.json", json={"time_entries": [item, {**item, "time_in_minutes": None}]})

    assert created.json()["count"] == 100 and len(set(_ids(created))) == 100
    assert too_many.status_code == 400
    assert bad.status_code == 422 and bad.json()["errors"][0]["index"] == 1
    assert len(kantata.time_entries()) == 100


def test_a_time_entry_reads_by_id_updates_and_deletes(kantata, psa_api):
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["psa-token"], clock=clock)
    workspace = kantata.seed_workspace()
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer psa-token"}) as api:
        entry = _entry(api, workspace)
        now[0] = T0.replace(minute=5)
        updated = api.put(f"time_entries/{entry['id']}.json", json={"time_entry": {"time_in_minutes": 90}})
        read = api.get(f"time_entries/{entry['id']}.json").json()["time_entries"][entry["id"]]
        deleted = api.delete(f"time_entries/{entry['id']}.json")
        gone = api.get(f"time_entries/{entry['id']}.json")

    assert updated.status_code == 200 and read["time_in_minutes"] == 90
    assert (
        read["updated_at"] == "2025-01-31T17:05:00+00:00"
        and read["created_at"] == "2025-01-31T17:00:00+00:00"
    )
    assert (deleted.status_code, gone.status_code) == (204, 404)


# ------------------------------------------------------------------------------------------- listing
def test_time_entries_are_paged_with_meta_and_filtered_by_project_user_dates_and_billable(kantata, psa_api):
    workspace, other = kantata.seed_workspace(), kantata.seed_workspace(title="Other")
    ann, bob = kantata.seed_users(2)
    kantata.seed_time_entries(workspace, 30, user_ids=[ann, bob], start="2025-01-06")
    kantata.seed_time_entries(other, 5, user_ids=[ann], billable=False)

    page = psa_api.get(
        "time_entries.json", params={"workspace_id": workspace, "per_page": 10, "page": 2}
    ).json()
    bobs = psa_api.get("time_entries.json", params={"with_user_ids": bob, "per_page": 200}).json()
    week = psa_api.get(
        "time_entries.json", params={"date_performed_between": "2025-01-06:2025-01-07", "per_page": 200}
    ).json()
    non_billable = psa_api.get("time_entries.json", params={"billable": "false"}).json()
    both = psa_api.get("time_entries.json", params={"workspace_ids": f"{workspace},{other}"}).json()

    assert page["meta"] == {"count": 30, "page_count": 3, "page_number": 2, "page_size": 10}
    assert len(page["results"]) == 10
    assert bobs["count"] == 15 and {e["user_id"] for e in bobs["time_entries"].values()} == {bob}
    assert week["count"] == 2 * 2 + 2  # two days x two users here, two days of the other project's one user
    assert non_billable["count"] == 5
    assert both["count"] == 35


def test_the_default_order_is_date_performed_descending(kantata, psa_api):
    workspace = kantata.seed_workspace()
    kantata.seed_time_entries(workspace, 5, start="2025-01-06")

    body = psa_api.get("time_entries.json").json()

    dates = [body["time_entries"][r["id"]]["date_performed"] for r in body["results"]]
    assert dates == sorted(dates, reverse=True) and dates[0] == "2025-01-10"


def test_approved_is_always_processed_as_true_whatever_value_is_given(kantata, psa_api):
    workspace = kantata.seed_workspace()
    entries = kantata.seed_time_entries(workspace, 4)
    kantata.approve_time_entries(entries[:1])

    for value in ("true", "false", "0"):
        body = psa_api.get("time_entries.json", params={"approved": value}).json()
        assert _ids_of(body) == {entries[0]}


def _ids_of(body) -> set[str]:
    return {r["id"] for r in body["results"]}


def test_includes_add_the_related_objects_under_their_top_level_keys(kantata, psa_api):
    workspace = kantata.seed_workspace(title="Rollout")
    story = kantata.seed_story(workspace, title="Build")
    user = kantata.seed_user("Ann Analyst")
    [entry] = kantata.seed_time_entries(workspace, 1, user_ids=[user], story_id=story)
    [submission] = kantata.submit_time([entry])

    body = psa_api.get(
        "time_entries.json", params={"include": "workspace,story,user,active_submission,recent_submission"}
    ).json()

    rendered = body["time_entries"][entry]
    assert body["workspaces"][workspace]["title"] == "Rollout"
    assert body["stories"][story]["title"] == "Build"
    assert body["users"][user]["full_name"] == "Ann Analyst"
    assert body["timesheet_submissions"][submission]["status"] == "pending"
    assert rendered["active_submission_id"] == rendered["recent_submission_id"] == submission


def test_entries_of_archived_projects_are_left_out_unless_asked_for(kantata, psa_api):
    archived = kantata.seed_workspace(title="Old", archived=True)
    kantata.seed_time_entries(archived, 2)

    assert psa_api.get("time_entries.json").json()["count"] == 0
    assert psa_api.get("time_entries.json", params={"from_archived_workspaces": "true"}).json()["count"] == 2


# ------------------------------------------------------------------------------------------- watermark sweeps
def test_timestamps_render_to_the_second_in_the_account_time_zone():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], time_zone="America/Los_Angeles", clock=clock)
    workspace = kantata.seed_workspace()
    [entry] = kantata.seed_time_entries(workspace, 1)

    assert kantata.time_entry(entry)["updated_at"] == "2025-01-31T09:00:00-08:00"


def test_updated_after_is_strict_and_sees_sub_second_changes_a_rendered_watermark_hides():
    now, clock = _clock(T0.replace(microsecond=500_000))
    kantata = KantataSandbox(tokens=["t"], clock=clock)
    workspace = kantata.seed_workspace()
    first, second = kantata.seed_time_entries(workspace, 2)  # same wall-clock second, strictly ordered inside
    watermark = kantata.time_entry(first)["updated_at"]
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        again = api.get("time_entries.json", params={"updated_after": watermark, "order": "updated_at:asc"})

    assert kantata.time_entry(second)["updated_at"] == watermark
    assert _ids(again) == [first, second]  # a rendered watermark re-reads: sweeps must tolerate duplicates


def test_a_sweep_with_an_overlap_window_finds_changes_after_its_watermark_in_any_offset():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], time_zone="Europe/London", clock=clock)
    workspace = kantata.seed_workspace()
    old = kantata.seed_time_entries(workspace, 3)
    now[0] = T0.replace(hour=18)
    [late] = kantata.seed_time_entries(workspace, 1)
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        in_utc = api.get("time_entries.json", params={"updated_after": "2025-01-31T17:30:00Z"})
        in_pacific = api.get("time_entries.json", params={"updated_after": "2025-01-31T09:30:00-08:00"})
        naive_local = api.get("time_entries.json", params={"updated_after": "2025-01-31T17:30:00"})
        overlap = api.get("time_entries.json", params={"updated_after": "2025-01-31T16:55:00Z"})
        bad = api.get("time_entries.json", params={"updated_after": "yesterday"})

    assert _ids(in_utc) == _ids(in_pacific) == _ids(naive_local) == [late]
    assert set(_ids(overlap)) == {*old, late}
    assert bad.status_code == 400 and bad.json()["errors"][0]["type"] == "system"


def test_advance_clock_moves_timestamps_forward():
    kantata = KantataSandbox(tokens=["t"])
    workspace = kantata.seed_workspace()
    [before] = kantata.seed_time_entries(workspace, 1)
    kantata.advance_clock(3600)
    [after] = kantata.seed_time_entries(workspace, 1)

    first = datetime.fromisoformat(kantata.time_entry(before)["updated_at"])
    second = datetime.fromisoformat(kantata.time_entry(after)["updated_at"])
    assert 3599 <= (second - first).total_seconds() <= 3610


def test_by_default_an_approval_does_not_touch_the_entries_updated_at_but_the_submission_moves():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], clock=clock)
    workspace = kantata.seed_workspace()
    entries = kantata.seed_time_entries(workspace, 2)
    [submission] = kantata.submit_time(entries)
    before = [kantata.time_entry(e)["updated_at"] for e in entries]
    now[0] = T0.replace(hour=20)
    kantata.resolve_timesheet(submission, "approve")
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        entries_after = api.get("time_entries.json", params={"updated_after": "2025-01-31T19:00:00Z"}).json()
        submissions_after = api.get(
            "timesheet_submissions.json",
            params={
                "updated_after": "2025-01-31T19:00:00Z",
                "statuses": "approved",
                "include": "time_entries",
            },
        ).json()

    assert [kantata.time_entry(e)["updated_at"] for e in entries] == before
    assert entries_after["count"] == 0
    assert set(submissions_after["timesheet_submissions"][submission]["time_entry_ids"]) == set(entries)
    assert set(submissions_after["time_entries"]) == set(entries)


def test_approvals_can_be_configured_to_touch_the_entries():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], clock=clock, approval_bumps_entry_updated_at=True)
    workspace = kantata.seed_workspace()
    entries = kantata.seed_time_entries(workspace, 2)
    now[0] = T0.replace(hour=20)
    kantata.approve_time_entries(entries)

    assert {kantata.time_entry(e)["updated_at"] for e in entries} == {"2025-01-31T20:00:00+00:00"}


# ------------------------------------------------------------------------------------------- approvals
def _submit(psa_api, workspace: str, entries: list[str]):
    return psa_api.post(
        "timesheet_submissions.json",
        json={
            "timesheet_submission": {"workspace_id": workspace, "title": "Week 5", "line_item_ids": entries}
        },
    )


def test_a_submitted_then_approved_timesheet_makes_its_entries_approved(kantata, psa_api):
    workspace = kantata.seed_workspace()
    entries = kantata.seed_time_entries(workspace, 3, rate_in_cents=12_000, time_in_minutes=60)

    submitted = _submit(psa_api, workspace, [int(e) for e in entries])
    submission = _ids(submitted)[0]
    pending = psa_api.get("time_entries.json", params={"in_active_submission": "true"}).json()
    approved = psa_api.put(
        f"timesheet_submissions/{submission}/approve.json", json={"resolution": {"description": "ok"}}
    )

    body = submitted.json()["timesheet_submissions"][submission]
    assert (
        submitted.status_code == 200 and body["status"] == "pending" and body["type"] == "TimesheetSubmission"
    )
    assert body["line_item_total_in_cents"] == 36_000 and (body["start_date"], body["end_date"]) == (
        "2025-01-06",
        "2025-01-12",
    )
    assert pending["count"] == 3 and not any(e["approved"] for e in pending["time_entries"].values())
    assert approved.status_code == 200
    assert approved.json()["timesheet_submissions"][submission]["current_resolution_description"] == "ok"
    assert all(kantata.time_entry(e)["approved"] for e in entries)


def test_an_approval_can_be_withdrawn_before_posting_and_the_entry_is_editable_again(kantata, psa_api):
    workspace = kantata.seed_workspace()
    [entry] = kantata.seed_time_entries(workspace, 1)
    [submission] = kantata.approve_time_entries([entry])

    locked = psa_api.put(f"time_entries/{entry}.json", json={"time_entry": {"time_in_minutes": 30}})
    withdrawn = psa_api.put(f"timesheet_submissions/{submission}/cancel.json", json={"resolution": {}})
    edited = psa_api.put(f"time_entries/{entry}.json", json={"time_entry": {"time_in_minutes": 30}})
    approved_now = psa_api.get("time_entries.json", params={"approved": "true"}).json()

    assert locked.status_code == 422 and _fields(locked) == {"base"}
    assert withdrawn.json()["timesheet_submissions"][submission]["status"] == "cancelled"
    assert edited.status_code == 200 and kantata.time_entry(entry)["approved"] is False
    assert approved_now["count"] == 0


def test_an_approved_timesheet_can_be_rejected_and_a_resolved_one_is_final(kantata, psa_api):
    workspace = kantata.seed_workspace()
    [entry] = kantata.seed_time_entries(workspace, 1)
    [submission] = kantata.approve_time_entries([entry])

    rejected = psa_api.put(f"timesheet_submissions/{submission}/reject.json", json={"resolution": {}})
    again = psa_api.put(f"timesheet_submissions/{submission}/approve.json", json={"resolution": {}})
    resubmitted = _submit(psa_api, workspace, [int(entry)])

    assert rejected.json()["timesheet_submissions"][submission]["status"] == "rejected"
    assert again.status_code == 422
    assert resubmitted.status_code == 200
    assert kantata.time_entry(entry)["recent_submission_id"] == _ids(resubmitted)[0]


def test_an_entry_cannot_be_on_two_active_submissions_or_deleted_while_submitted(kantata, psa_api):
    workspace, other = kantata.seed_workspace(), kantata.seed_workspace(title="Other")
    [entry] = kantata.seed_time_entries(workspace, 1)
    [foreign] = kantata.seed_time_entries(other, 1)
    kantata.submit_time([entry])

    twice = _submit(psa_api, workspace, [int(entry)])
    wrong_project = _submit(psa_api, workspace, [int(foreign)])
    deleted = psa_api.delete(f"time_entries/{entry}.json")

    assert twice.status_code == 422 and wrong_project.status_code == 422
    assert deleted.status_code == 422 and kantata.time_entry(entry) is not None


def test_bulk_approvals_answer_a_list_of_resolutions_and_are_all_or_nothing(kantata, psa_api):
    workspace = kantata.seed_workspace()
    users = kantata.seed_users(2)
    entries = kantata.seed_time_entries(workspace, 2, user_ids=users)
    submissions = kantata.submit_time(entries)
    [done] = kantata.submit_time(kantata.seed_time_entries(workspace, 1))
    kantata.resolve_timesheet(done, "reject")

    refused = psa_api.post(
        "timesheet_approvals.json",
        json={"resolution": {"submission_ids": [int(s) for s in [*submissions, done]]}},
    )
    approved_after_refusal = [kantata.time_entry(e)["approved"] for e in entries]
    approved = psa_api.post(
        "timesheet_approvals.json",
        json={"resolution": {"submission_ids": [int(s) for s in submissions], "description": "month end"}},
    )
    cancelled = psa_api.post(
        "timesheet_cancellations.json", json={"resolution": {"submission_ids": [int(submissions[0])]}}
    )

    assert len(submissions) == 2  # one per user and week
    assert refused.status_code == 422 and approved_after_refusal == [False, False]
    resolutions = approved.json()["resolutions"]
    assert [r["type"] for r in resolutions] == ["approval", "approval"]
    assert {str(r["target_id"]) for r in resolutions} == set(submissions)
    assert cancelled.json()["resolutions"][0]["type"] == "cancellation"
    assert [kantata.time_entry(e)["approved"] for e in entries] == [False, True]


def test_submissions_are_listed_by_status_with_kantatas_new_for_pending(kantata, psa_api):
    workspace = kantata.seed_workspace()
    users = kantata.seed_users(3)
    pending, approved, rejected = kantata.submit_time(kantata.seed_time_entries(workspace, 3, user_ids=users))
    kantata.resolve_timesheet(approved, "approve")
    kantata.resolve_timesheet(rejected, "reject")

    new = psa_api.get("timesheet_submissions.json", params={"statuses": "new"}).json()
    resolved = psa_api.get("timesheet_submissions.json", params={"statuses": "approved,rejected"}).json()
    active = psa_api.get("timesheet_submissions.json", params={"active": "true"}).json()

    assert _ids_of(new) == {pending}
    assert _ids_of(resolved) == {approved, rejected}
    assert _ids_of(active) == {pending, approved}


def test_a_project_without_approvals_has_every_entry_approved(kantata, psa_api):
    workspace = kantata.seed_workspace(requires_time_approval=False)

    entry = _entry(psa_api, workspace)

    assert entry["approved"] is True
    assert psa_api.get("time_entries.json", params={"approved": "true"}).json()["count"] == 1


# ------------------------------------------------------------------------------------------- expenses
def test_an_expense_needs_its_category_and_amount_and_gets_the_project_currency(kantata, psa_api):
    workspace = kantata.seed_workspace(currency="EUR")
    categories = psa_api.get("expense_categories.json").json()
    travel = next(c["id"] for c in categories["expense_categories"].values() if c["name"] == "Travel")

    created = psa_api.post(
        "expenses.json",
        json={
            "expense": {
                "workspace_id": workspace,
                "date": "2025-01-28",
                "expense_category_id": travel,
                "category": "Travel",
                "amount_in_cents": 23_450,
                "notes": "Train to client",
                "receipt_id": 555,
            }
        },
    )
    missing = psa_api.post(
        "expenses.json", json={"expense": {"workspace_id": workspace, "date": "2025-01-28"}}
    )

    expense = next(iter(created.json()["expenses"].values()))
    assert created.status_code == 200
    assert (expense["amount_in_cents"], expense["currency"], expense["receipt_id"]) == (23_450, "EUR", "555")
    assert expense["approved"] is False and expense["reimbursable"] is True
    assert _fields(missing) == {"expense_category_id", "category", "amount_in_cents"}


def test_an_expense_report_is_approved_rejected_or_cancelled_only_while_pending(kantata, psa_api):
    workspace = kantata.seed_workspace()
    expenses = kantata.seed_expenses(workspace, 3)

    report = psa_api.post(
        "expense_report_submissions.json",
        json={
            "expense_report_submission": {
                "workspace_id": workspace,
                "title": "Jan",
                "line_item_ids": expenses,
            }
        },
    )
    report_id = _ids(report)[0]
    approved = psa_api.put(f"expense_report_submissions/{report_id}/approve.json", json={"resolution": {}})
    cancel_approved = psa_api.put(
        f"expense_report_submissions/{report_id}/cancel.json", json={"resolution": {}}
    )
    approved_list = psa_api.get("expenses.json", params={"approved": "true"}).json()
    rejected = psa_api.put(f"expense_report_submissions/{report_id}/reject.json", json={"resolution": {}})

    assert report.json()["expense_report_submissions"][report_id]["line_item_total_in_cents"] == 3 * 12_500
    assert approved.json()["expense_report_submissions"][report_id]["status"] == "approved"
    assert cancel_approved.status_code == 422
    assert approved_list["count"] == 3
    assert rejected.status_code == 200 and not any(kantata.expense(e)["approved"] for e in expenses)


def test_expenses_are_filtered_by_submission_state_and_date(kantata, psa_api):
    workspace = kantata.seed_workspace()
    expenses = kantata.seed_expenses(workspace, 4, start="2025-01-06")
    kantata.submit_expenses(expenses[:1])

    submitted = psa_api.get("expenses.json", params={"submitted": "true"}).json()
    unsubmitted = psa_api.get("expenses.json", params={"unsubmitted": "true"}).json()
    dated = psa_api.get("expenses.json", params={"date_expensed_between": "2025-01-07:2025-01-08"}).json()
    with_category = psa_api.get(
        "expenses.json", params={"include": "expense_category", "only": expenses[0]}
    ).json()

    assert _ids_of(submitted) == {expenses[0]} and _ids_of(unsubmitted) == set(expenses[1:])
    assert _ids_of(dated) == set(expenses[1:3])
    assert [c["name"] for c in with_category["expense_categories"].values()] == ["Travel"]


# ------------------------------------------------------------------------------------------- seeding
def test_thousands_of_entries_seed_fast_with_deterministic_ids_on_weekdays():
    def build() -> tuple[KantataSandbox, list[str]]:
        sandbox = KantataSandbox(tokens=["t"], id_seed=42)
        workspace = sandbox.seed_workspace()
        users = sandbox.seed_users(50)
        return sandbox, sandbox.seed_time_entries(workspace, 10_000, user_ids=users)

    started = time.perf_counter()
    first, ids = build()
    elapsed = time.perf_counter() - started
    _, again = build()

    assert elapsed < 5 and ids == again and len(set(ids)) == 10_000
    dates = {e["date_performed"] for e in first.time_entries()}
    assert len(dates) == 200 and all(datetime.fromisoformat(d).weekday() < 5 for d in dates)


def test_seeded_approvals_group_entries_by_project_user_and_week(kantata):
    workspace = kantata.seed_workspace()
    users = kantata.seed_users(2)
    entries = kantata.seed_time_entries(workspace, 20, user_ids=users, start="2025-01-06")  # 10 weekdays each

    submissions = kantata.approve_time_entries(entries)

    assert len(submissions) == 4  # two users x two weeks
    assert all(s["status"] == "approved" for s in kantata.timesheet_submissions())
    assert all(e["approved"] for e in kantata.time_entries())


def test_the_seed_payload_builds_users_projects_time_and_expenses(kantata):
    created = kantata.seed(
        {
            "users": 2,
            "workspaces": [
                {
                    "title": "Rollout",
                    "time_entries": {"count": 6, "approve": True},
                    "expenses": {"count": 2, "amount_in_cents": 999},
                }
            ],
        }
    )

    assert len(created["users"]) == 2 and len(created["time_entries"]) == 6 and len(created["expenses"]) == 2
    assert {e["user_id"] for e in kantata.time_entries()} == set(created["users"])
    assert all(e["approved"] for e in kantata.time_entries())
    assert {e["amount_in_cents"] for e in kantata.expenses()} == {999}
    assert len(kantata.state()["timesheet_submissions"]) == 2


def test_editing_a_seeded_entry_moves_its_updated_at(kantata):
    workspace = kantata.seed_workspace()
    [entry] = kantata.seed_time_entries(workspace, 1)
    before = kantata._time_entries[entry]["_updated"]

    kantata.edit_time_entry(entry, time_in_minutes=15)

    assert kantata._time_entries[entry]["_updated"] > before
    assert kantata.time_entry(entry)["time_in_minutes"] == 15


def test_time_entry_calls_share_the_concurrency_limit_and_throttling():
    kantata = KantataSandbox(tokens=["t"], concurrency_limit=1, faults=Faults(latency=0.2))
    workspace = kantata.seed_workspace()
    headers = {"Authorization": "Bearer t"}

    def slow_call() -> None:
        with kantata.client(KANTATA_URL, headers=headers) as api:
            api.get("time_entries.json")

    worker = threading.Thread(target=slow_call, daemon=True)
    worker.start()
    for _ in range(2_000):
        if kantata.in_flight:
            break
        time.sleep(0.001)
    with kantata.client(KANTATA_URL, headers=headers) as api:
        refused = api.post(
            "time_entries.json",
            json={
                "time_entry": {
                    "workspace_id": workspace,
                    "date_performed": "2025-01-27",
                    "time_in_minutes": 5,
                }
            },
        )
    worker.join()

    assert refused.status_code == 429 and kantata.time_entries() == []


def test_an_expense_updates_and_deletes_and_users_are_listed(kantata, psa_api):
    workspace = kantata.seed_workspace()
    user = kantata.seed_user("Ann Analyst", "ann@example.com")
    [expense] = kantata.seed_expenses(workspace, 1, user_ids=[user])

    updated = psa_api.put(f"expenses/{expense}.json", json={"expense": {"amount_in_cents": 4_200}})
    users = psa_api.get("users.json", params={"only": user}).json()
    deleted = psa_api.delete(f"expenses/{expense}.json")

    assert updated.json()["expenses"][expense]["amount_in_cents"] == 4_200
    assert updated.json()["expenses"][expense]["user_id"] == user
    assert users["users"][user]["email_address"] == "ann@example.com"
    assert deleted.status_code == 204 and kantata.expenses() == []
