"""The posting consumer's re-read through the Kantata adapter, against the Kantata sandbox in-process: line items
by id as they are now (approved, withdrawn, deleted, unmappable) in batched calls, and the status of the projects
and tasks they book to, changed mid-run the way a person changes them in Kantata.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.connectors.ports import LineItems, PsaTimePort
from hub.mapping import kantata as km
from hub.model import ApprovalStatus, ExpenseLine, ProjectStatus, TaskStatus, TimeEntry
from local.sandboxes import KantataSandbox

pytestmark = pytest.mark.disable_socket

TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
OPP = "006Dn00000A1b2cAAB"
UNKNOWN_ID = "123456"  # no Kantata record has it (the sandbox's ids are in the hundreds of millions)


@pytest.fixture
def kantata() -> KantataSandbox:
    return KantataSandbox(tokens=[TOKEN], time_zone="America/Los_Angeles")


@pytest.fixture
def psa(kantata: KantataSandbox) -> KantataPsa:
    client = httpx.Client(transport=kantata.transport())
    return KantataPsa(
        client,
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
        home_countries={"US01": "US"},
    )


def hub_project(kantata: KantataSandbox, opportunity: str = OPP) -> tuple[str, str]:
    """A project as the hub creates it (legal entity and opportunity in its description, linked by an external
    reference) with one WBS task."""
    workspace = kantata.seed_workspace(
        title="Northwind ERP roll-out",
        currency="USD",
        description=f"pshub:opportunity:{opportunity}\npshub:entity:US01\nCreated by the integration hub",
    )
    kantata.seed_external_reference(
        subject_type="Workspace",
        subject_id=workspace,
        service_model="Opportunity",
        service_model_ref=opportunity,
    )
    return workspace, kantata.seed_story(workspace, title="Build", description="pshub:wbs:2.1")


def line_item_reads(kantata: KantataSandbox, collection: str = "time_entries") -> list:
    return [c for c in kantata.calls("GET", f"/{collection}") if "only" in c.query]


# ------------------------------------------------------------------------------------------- worker-days


def test_the_rest_of_a_workers_day_is_read_whatever_its_approval_and_nothing_else(kantata, psa):
    workspace, story = hub_project(kantata)
    ana, ben, cy = kantata.seed_users(3)
    # one entry per user per weekday from Monday 5 Jan 2026, the users taking turns: two days each
    entries = kantata.seed_time_entries(
        workspace, 6, user_ids=[ana, ben, cy], story_id=story, start="2026-01-05", time_in_minutes=240
    )
    monday_ana, monday_ben, _, tuesday_ana, _, _ = entries
    kantata.approve_time_entries([monday_ana])  # ben's Monday entry is not approved: it counts all the same

    found = psa.time_entries_on_days([(ana, dt.date(2026, 1, 5)), (ben, dt.date(2026, 1, 5))])

    assert sorted(e.psa_id for e in found) == sorted([monday_ana, monday_ben])
    assert {e.hours for e in found} == {Decimal("4")} and tuesday_ana not in {e.psa_id for e in found}
    day_reads = [c for c in kantata.calls("GET", "/time_entries") if "date_performed_between" in c.query]
    assert len(day_reads) == 1 and day_reads[0].query["date_performed_between"] == "2026-01-05:2026-01-05"


# ------------------------------------------------------------------------------------------- line items


def test_an_approved_entry_is_found_as_approved_with_its_project_and_task(kantata, psa):
    workspace, story = hub_project(kantata)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story, time_in_minutes=90)
    kantata.approve_time_entries([entry])

    items = psa.line_items_by_id("time-entry", [entry])

    assert isinstance(items, LineItems) and items.missing == () and items.unmappable == {}
    found = items.found[entry]
    assert isinstance(found, TimeEntry)
    assert found.approval_status is ApprovalStatus.APPROVED and found.approved_at is not None
    assert (found.project.psa_project_id, found.project.external_id) == (workspace, f"sf-opp-{OPP}")
    assert found.task is not None and (found.task.psa_task_id, found.task.wbs_code) == (story, "2.1")
    [read] = line_item_reads(kantata)
    assert "approved" not in read.query  # read whatever the approval: the consumer decides on it


def test_entries_whose_approval_was_cancelled_or_rejected_are_found_withdrawn_and_rejected(kantata, psa):
    workspace, story = hub_project(kantata)
    [cancelled, rejected, kept] = kantata.seed_time_entries(
        workspace, 3, user_ids=kantata.seed_users(3), story_id=story
    )
    sheets = kantata.approve_time_entries([cancelled, rejected, kept])

    kantata.resolve_timesheet(sheets[0], "cancel", "booked to the wrong project")
    kantata.resolve_timesheet(sheets[1], "reject", "not agreed with the client")
    items = psa.line_items_by_id("time-entry", [cancelled, rejected, kept])

    statuses = {psa_id: (e.approval_status, e.approved_at is None) for psa_id, e in items.found.items()}
    assert statuses[cancelled] == (ApprovalStatus.WITHDRAWN, True)
    assert statuses[rejected] == (ApprovalStatus.REJECTED, True)
    assert statuses[kept][0] is ApprovalStatus.APPROVED
    assert items.missing == ()


def test_a_submitted_but_not_yet_approved_expense_is_found_as_submitted(kantata, psa):
    workspace, _ = hub_project(kantata)
    [expense] = kantata.seed_expenses(workspace, 1, category="Lodging")
    kantata.submit_expenses([expense])

    items = psa.line_items_by_id("expense", [expense])

    found = items.found[expense]
    assert isinstance(found, ExpenseLine) and found.approval_status is ApprovalStatus.SUBMITTED


def test_a_deleted_entry_and_an_unknown_id_are_missing_and_the_rest_found(kantata, psa):
    workspace, story = hub_project(kantata)
    [kept, deleted] = kantata.seed_time_entries(workspace, 2, story_id=story)
    response = httpx.Client(transport=kantata.transport()).delete(
        f"{KANTATA_URL}/time_entries/{deleted}.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 204

    items = psa.line_items_by_id("time-entry", [kept, deleted, UNKNOWN_ID, kept])

    assert list(items.found) == [kept]
    assert items.missing == (deleted, UNKNOWN_ID)
    assert items.unmappable == {}


def test_an_entry_of_a_project_the_hub_does_not_know_is_unmappable_and_the_others_are_still_found(
    kantata, psa
):
    workspace, story = hub_project(kantata)
    foreign = kantata.seed_workspace(title="Not the hub's", currency="USD")
    [good] = kantata.seed_time_entries(workspace, 1, story_id=story)
    [bad] = kantata.seed_time_entries(foreign, 1)

    items = psa.line_items_by_id("time-entry", [good, bad])

    assert list(items.found) == [good] and items.missing == ()
    assert {p["field"] for p in items.unmappable[bad].problems} == {
        "legal_entity_code",
        "project.external_id",
    }


def test_an_entry_of_an_archived_project_is_still_found(kantata, psa):
    workspace, story = hub_project(kantata)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story)
    kantata.approve_time_entries([entry])
    kantata.archive_workspace(workspace)

    items = psa.line_items_by_id("time-entry", [entry])

    assert list(items.found) == [entry]


def test_250_ids_are_read_in_ceil_250_over_the_page_size_calls_with_one_reference_lookup_per_project(
    kantata, psa
):
    first, first_story = hub_project(kantata)
    second, second_story = hub_project(kantata, opportunity="006Dn00000Z9y8xAAA")
    users = kantata.seed_users(10)
    ids = kantata.seed_time_entries(first, 150, user_ids=users, story_id=first_story)
    ids += kantata.seed_time_entries(second, 100, user_ids=users, story_id=second_story)
    kantata.approve_time_entries(ids[:200])
    before = kantata.call_count()

    items = psa.line_items_by_id("time-entry", ids)

    assert sorted(items.found) == sorted(ids) and items.missing == ()
    assert len(line_item_reads(kantata)) == math.ceil(250 / km.PAGE_SIZE) == 2
    assert [len(c.query["only"].split(",")) for c in line_item_reads(kantata)] == [km.PAGE_SIZE, 50]
    assert kantata.call_count("GET", "/external_references") == 2  # one per project, across both chunks
    assert kantata.call_count() - before == 2 + 2
    assert {e.project.external_id for e in items.found.values()} == {
        f"sf-opp-{OPP}",
        "sf-opp-006Dn00000Z9y8xAAA",
    }


def test_an_unknown_kind_is_refused_before_anything_is_read(kantata, psa):
    with pytest.raises(ValueError, match="unknown line item kind"):
        psa.line_items_by_id("invoice", ["1"])  # type: ignore[arg-type]
    assert kantata.call_count() == 0


# --------------------------------------------------------------------------------- projects and tasks


def test_a_project_put_on_hold_mid_run_reads_on_hold_and_the_others_stay_active(kantata, psa):
    held, _ = hub_project(kantata)
    running, _ = hub_project(kantata, opportunity="006Dn00000Z9y8xAAA")
    kantata.set_workspace_status(running, "In Progress")
    assert psa.project_statuses([held, running]) == {
        held: ProjectStatus.ACTIVE,
        running: ProjectStatus.ACTIVE,
    }

    kantata.set_workspace_status(held, "On Hold")

    assert psa.project_statuses([held, running]) == {
        held: ProjectStatus.ON_HOLD,
        running: ProjectStatus.ACTIVE,
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [("Completed", ProjectStatus.COMPLETED), ("Cancelled", ProjectStatus.CANCELLED)],
)
def test_a_completed_or_cancelled_project_reads_so(kantata, psa, message, expected):
    workspace, _ = hub_project(kantata)

    kantata.set_workspace_status(workspace, message)

    assert psa.project_statuses([workspace]) == {workspace: expected}


def test_an_archived_project_reads_completed_and_an_unknown_one_is_absent(kantata, psa):
    workspace, _ = hub_project(kantata)
    kantata.set_workspace_status(workspace, "In Progress")

    kantata.archive_workspace(workspace)

    assert psa.project_statuses([workspace, UNKNOWN_ID]) == {workspace: ProjectStatus.COMPLETED}


def test_a_task_completed_or_archived_mid_run_reads_closed_and_the_others_open(kantata, psa):
    workspace, story = hub_project(kantata)
    completed = kantata.seed_story(workspace, title="Design", description="pshub:wbs:2.2")
    archived = kantata.seed_story(workspace, title="Test", description="pshub:wbs:2.3")
    kantata.set_story_state(story, "started")

    kantata.set_story_state(completed, "completed")
    kantata.archive_story(archived)

    assert psa.task_statuses([story, completed, archived, UNKNOWN_ID]) == {
        story: TaskStatus.OPEN,
        completed: TaskStatus.CLOSED,
        archived: TaskStatus.CLOSED,
    }


def test_statuses_of_250_projects_and_tasks_take_one_call_per_page_size_ids(kantata, psa):
    workspaces = [kantata.seed_workspace(title=f"P{n}") for n in range(250)]
    stories = [kantata.seed_story(workspaces[0], title=f"T{n}") for n in range(250)]

    projects = psa.project_statuses(workspaces)
    tasks = psa.task_statuses(stories)

    assert projects == dict.fromkeys(workspaces, ProjectStatus.ACTIVE)
    assert tasks == dict.fromkeys(stories, TaskStatus.OPEN)
    calls = math.ceil(250 / km.PAGE_SIZE)
    assert kantata.call_count("GET", "/workspaces") == kantata.call_count("GET", "/stories") == calls


def test_nothing_asked_for_reads_nothing(kantata, psa):
    port: PsaTimePort = psa

    assert port.task_statuses([]) == {} and port.project_statuses([]) == {}
    assert port.line_items_by_id("expense", []) == LineItems()
    assert kantata.call_count() == 0
