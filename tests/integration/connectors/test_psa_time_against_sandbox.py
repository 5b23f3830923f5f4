"""The Kantata adapter's time and expense reading (``PsaTimePort``) against the Kantata sandbox in-process, driven
by the sweep's own window rules: month-end volume across pages, windows that overlap, withdrawn approvals and
approvals that come after an entry's last change.

The sandbox runs in the account's time zone (Los Angeles: it renders ``-08:00``) on a clock the tests move; the
hub's windows are UTC. The caller of the sweep dedupes by entry id + version, as the posting flow does.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from hub.connectors.factory import psa_from_secret
from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.model import ApprovalStatus, ExpenseCategory, Money
from hub.sweeps.windows import advance, sweep_window
from local.sandboxes import KantataSandbox
from tests.support.clock import Clock

pytestmark = pytest.mark.disable_socket

UTC = dt.UTC
TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
OPP = "006Dn00000A1b2cAAB"
T0 = dt.datetime(2026, 11, 30, 23, 0, 0, tzinfo=UTC)  # 15:00 in Los Angeles, month end
MIN = dt.timedelta(minutes=1)
SEC = dt.timedelta(seconds=1)
OVERLAP = 2 * MIN
SPAN = dt.timedelta(hours=6)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def kantata(clock: Clock) -> KantataSandbox:
    return KantataSandbox(tokens=[TOKEN], time_zone="America/Los_Angeles", clock=clock)


def no_wait() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None)


@pytest.fixture
def psa(kantata: KantataSandbox) -> KantataPsa:
    """The adapter over the sandbox as the deployed functions build it, from the PSA secret: with the home
    country of the legal entity (an expense's supplier country when its notes name none: Kantata records
    none) and the account's time zone."""
    secret = {
        "base_url": KANTATA_URL,
        "token": TOKEN,
        "home_countries": {"US01": "US"},
        "account_time_zone": kantata.time_zone,
    }
    return psa_from_secret(secret, transport=kantata.transport(), retry=no_wait())


def hub_project(kantata: KantataSandbox, **settings) -> tuple[str, str]:
    """A project as the hub creates it (legal entity and opportunity in the description, linked by an external
    reference) with one WBS task."""
    workspace = kantata.seed_workspace(
        title="Northwind ERP roll-out",
        currency="USD",
        description=f"pshub:opportunity:{OPP}\npshub:entity:US01\nCreated by the integration hub",
        **settings,
    )
    kantata.seed_external_reference(
        subject_type="Workspace", subject_id=workspace, service_model="Opportunity", service_model_ref=OPP
    )
    story = kantata.seed_story(workspace, title="Build", description="pshub:wbs:2.1")
    return workspace, story


def sweep(psa: KantataPsa, watermark: dt.datetime, now: dt.datetime):
    """One sweep run: its window, the entries it read, and the watermark after it."""
    window = sweep_window(watermark, now, OVERLAP, SPAN)
    entries = list(psa.approved_time_entries(updated_after=window[0], updated_before=window[1]))
    seen = [e.approved_at for e in entries if e.approved_at is not None]
    return window, entries, advance(watermark, window, seen)


# -------------------------------------------------------------------------------------------- volume


def test_month_end_2000_approved_entries_across_pages_are_all_read_and_mapped(kantata, clock):
    psa = psa_from_secret(
        {"base_url": KANTATA_URL, "token": TOKEN}, transport=kantata.transport(), retry=no_wait()
    )
    workspace, story = hub_project(kantata)
    users = kantata.seed_users(40)
    ids = kantata.seed_time_entries(workspace, 2_000, user_ids=users, story_id=story, time_in_minutes=450)
    kantata.approve_time_entries(ids)
    clock.tick(15 * MIN)

    _, entries, watermark = sweep(psa, T0 - 15 * MIN, clock.now)

    assert sorted(e.psa_id for e in entries) == sorted(ids)
    assert {e.worker_id for e in entries} == set(users)
    assert {(e.legal_entity_code, e.project.psa_project_id, e.project.external_id) for e in entries} == {
        ("US01", workspace, f"sf-opp-{OPP}")
    }
    assert {(e.task.psa_task_id, e.task.wbs_code) for e in entries if e.task} == {(story, "2.1")}
    assert {e.hours for e in entries} == {Decimal("7.5")}
    assert {e.approval_status for e in entries} == {ApprovalStatus.APPROVED}
    assert watermark == clock.now
    pages = [c for c in kantata.calls("GET", "/time_entries") if "only" not in c.query]
    assert len(pages) == 11  # 200 a page, each overlapping the one before by 10
    assert kantata.call_count("GET", "/external_references") == 1  # the project's link, read once per sweep


def test_month_end_expenses_across_pages_are_read_with_their_money(kantata, clock, psa):
    workspace, _ = hub_project(kantata)
    ids = kantata.seed_expenses(
        workspace, 450, user_ids=kantata.seed_users(9), category="Lodging", amount_in_cents=18_999
    )
    kantata.approve_expenses(ids)
    clock.tick(MIN)

    lines = list(psa.approved_expenses(updated_after=T0 - MIN, updated_before=clock.now))

    assert sorted(line.psa_id for line in lines) == sorted(ids)
    assert {(line.gross, line.category, line.supplier_country) for line in lines} == {
        (Money(amount=Decimal("189.99"), currency="USD"), ExpenseCategory.LODGING, "US")
    }


# ------------------------------------------------------------------------------------------- windows


def test_an_entry_changed_at_a_window_boundary_is_read_once_per_window_and_twice_across_the_overlap(
    kantata, clock, psa
):
    workspace, story = hub_project(kantata, requires_time_approval=False)  # approved as saved: edits show
    [early, at_start, boundary, at_end] = kantata.seed_time_entries(workspace, 4, story_id=story)
    watermark = T0 + OVERLAP + SEC  # the first window starts a second after the entries were created
    first_end = T0 + 15 * MIN
    clock.now = first_end - OVERLAP  # exactly where the second window will start
    kantata.edit_time_entry(at_start, notes="changed where the overlap starts")
    clock.now = first_end - dt.timedelta(microseconds=500_000)  # shown as 23:14:59, half a second before
    kantata.edit_time_entry(boundary, notes="changed at the boundary")
    clock.now = first_end  # exactly at the first window's end: not in it, in the next one
    kantata.edit_time_entry(at_end, notes="changed at the end")

    first, read_1, watermark = sweep(psa, watermark, first_end)
    clock.tick(15 * MIN)
    second, read_2, watermark = sweep(psa, watermark, clock.now)

    assert first[1] == first_end and second[0] == first_end - OVERLAP
    assert [e.psa_id for e in read_1] == [at_start, boundary]
    assert [e.psa_id for e in read_2] == [at_start, boundary, at_end]
    assert early not in {e.psa_id for e in read_1 + read_2}  # changed before the first window
    both = Counter((e.psa_id, e.version) for e in read_1 + read_2)
    assert (
        both[(boundary, read_1[1].version)] == both[(at_start, read_1[0].version)] == 2
    )  # the caller dedupes
    assert watermark == clock.now


def test_a_change_made_while_a_sweep_reads_is_read_by_the_next_sweep(kantata, clock, psa):
    workspace, story = hub_project(kantata, requires_time_approval=False)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story)
    clock.tick(15 * MIN)
    run_started = clock.now
    window = sweep_window(T0, run_started, OVERLAP, SPAN)
    reading = psa.approved_time_entries(updated_after=window[0], updated_before=window[1])
    first = next(reading)  # the first page is read...
    clock.tick(20 * SEC)
    kantata.edit_time_entry(entry, time_in_minutes=300)  # ...and the entry is edited before the run ends
    assert list(reading) == []
    watermark = advance(T0, window, [first.approved_at])

    _, later, _ = sweep(psa, watermark, clock.tick(15 * MIN))

    assert [(e.psa_id, e.hours) for e in later] == [(entry, Decimal(5))]
    assert later[0].version > first.version  # an edit is a new version: the posting flow adjusts


# ----------------------------------------------------------------------------------------- approvals


def test_a_withdrawn_approval_shows_as_withdrawn_on_re_read_and_leaves_the_sweep(kantata, clock, psa):
    workspace, story = hub_project(kantata)
    [cancelled, rejected, kept] = kantata.seed_time_entries(
        workspace, 3, user_ids=kantata.seed_users(3), story_id=story
    )
    sheets = kantata.approve_time_entries([cancelled, rejected, kept])
    approved = psa.time_entry(cancelled)
    clock.tick(5 * MIN)

    kantata.resolve_timesheet(sheets[0], "cancel", "hours booked to the wrong project")
    kantata.resolve_timesheet(sheets[1], "reject", "not agreed with the client")

    withdrawn = psa.time_entry(cancelled)
    assert approved.approval_status is ApprovalStatus.APPROVED
    assert withdrawn.approval_status is ApprovalStatus.WITHDRAWN and withdrawn.approved_at is None
    assert withdrawn.version == approved.version  # not an edit: the same version, no longer approved
    assert psa.time_entry(rejected).approval_status is ApprovalStatus.REJECTED
    assert psa.time_entry(kept).approval_status is ApprovalStatus.APPROVED
    _, entries, _ = sweep(psa, T0 - MIN, clock.tick(MIN))
    assert [e.psa_id for e in entries] == [kept]


def test_an_entry_approved_after_its_last_edit_is_caught_by_the_sweep(kantata, clock, psa):
    workspace, story = hub_project(kantata)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story)
    [sheet] = kantata.submit_time([entry])  # submitted on Friday; its updated_at never moves again
    submitted = psa.time_entry(entry)
    watermark = clock.tick(dt.timedelta(days=3))  # sweeps ran all weekend with nothing to read
    clock.tick(7 * MIN)
    kantata.resolve_timesheet(sheet, "approve")  # Kantata leaves the entry's updated_at alone

    window, entries, _ = sweep(psa, watermark, clock.tick(8 * MIN))

    assert submitted.approval_status is ApprovalStatus.SUBMITTED
    assert window[0] > T0  # the entry's last change is long before the window
    [caught] = entries
    assert (caught.psa_id, caught.approval_status) == (entry, ApprovalStatus.APPROVED)
    assert caught.approved_at == T0 + dt.timedelta(days=3, minutes=7)
    assert caught.version == submitted.version  # the approval is not a new version


def test_an_approval_that_bumps_updated_at_is_caught_once(clock):
    kantata = KantataSandbox(
        tokens=[TOKEN], time_zone="America/Los_Angeles", clock=clock, approval_bumps_entry_updated_at=True
    )
    psa = KantataPsa(
        httpx.Client(transport=kantata.transport()), token=TOKEN, base_url=KANTATA_URL, retry=no_wait()
    )
    workspace, story = hub_project(kantata)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story)
    [sheet] = kantata.submit_time([entry])
    clock.tick(dt.timedelta(hours=1))
    kantata.resolve_timesheet(sheet, "approve")

    _, entries, _ = sweep(psa, T0 + 50 * MIN, clock.tick(MIN))

    assert [e.psa_id for e in entries] == [entry]  # found by both passes, handed on once
