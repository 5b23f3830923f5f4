"""The posting service against moto (ledger, routing, bus) with a hand-written fake ERP port."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.errors import DataValidationError, PermanentError, ThrottledError, TransientError
from hub.events import EventPublisher
from hub.flows.posting.service import Fate, PostingDeps, correlation_id, post_batch
from hub.ledger import Ledger
from hub.model import ClosedPeriodAction, ProjectStatus, TaskStatus
from hub.routing import RoutingTable
from tests.support.fakes import FakePostingErp
from tests.support.time_expense_builders import (
    expense_line,
    posting_policy,
    tax_rules,
    time_entry,
)

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)


class Config:
    def __init__(self, closed_period=ClosedPeriodAction.NEXT_OPEN):
        self.closed_period = closed_period

    def policy(self, code):
        return posting_policy(code, closed_period=self.closed_period)

    def tax_rules(self, code):
        return tax_rules()

    def project_status(self, psa_project_id):
        return ProjectStatus.ACTIVE

    def task_status(self, psa_task_id):
        return TaskStatus.OPEN


@pytest.fixture
def world(hub):
    def make(erp=None, config=None):
        erp = erp or FakePostingErp()
        deps = PostingDeps(
            ledger=Ledger(hub.ledger_table),
            routing=RoutingTable(hub.routing_table),
            config=config or Config(),
            erp=lambda system: erp,
            events=EventPublisher(hub.bus_name),
            now=lambda: NOW,
        )
        return deps, erp

    return make


def test_approved_entries_post_once_and_redelivery_is_a_duplicate(world, hub):
    deps, erp = world()
    entries = [time_entry(psa_id=f"TE-{n}", worker_id=f"W-{n}", hours="4") for n in range(5)]
    first = post_batch(entries, deps)
    assert first.count(Fate.POSTED) == 5 and erp.calls == 1
    again = post_batch(entries, deps)
    assert again.count(Fate.DUPLICATE) == 5 and erp.calls == 1 and len(erp.records) == 5
    assert len(hub.events("TimePosted")) == 5
    tx = deps.ledger.get(correlation_id(entries[0]))
    assert tx["status"] == "COMPLETED" and tx["refs"]["postedVersion"] == 1


def test_an_edit_after_posting_is_reported_as_an_adjustment_not_posted_twice(world, hub):
    deps, erp = world()
    post_batch([time_entry()], deps)
    outcome = post_batch([time_entry(version=2, hours="6")], deps)
    assert outcome.count(Fate.ADJUSTMENT) == 1 and len(erp.records) == 1
    adjusted = hub.events("TimeAdjusted")
    assert adjusted[0]["data"]["postedVersion"] == 1 and adjusted[0]["data"]["newVersion"] == 2


def test_withdrawn_approvals_are_rejected_and_violations_parked_with_every_reason(world):
    deps, erp = world()
    withdrawn = time_entry(psa_id="TE-W", approval_status="withdrawn")
    too_long = [time_entry(psa_id=f"TE-L{n}", hours="7") for n in range(2)]  # 14 h in one day
    outcome = post_batch([withdrawn, *too_long], deps)
    assert outcome.fates["time-entry:TE-W#v1"] is Fate.REJECTED
    assert outcome.count(Fate.PARKED) == 2 and erp.calls == 0
    tx = deps.ledger.get(correlation_id(too_long[0]))
    assert tx["status"] == "PARKED" and "14" in tx["reason"]


def test_a_closed_period_holds_the_entry_when_the_entity_holds(world):
    deps, _ = world(erp=FakePostingErp(calendar_closed=("2026-11",)), config=Config(ClosedPeriodAction.HOLD))
    outcome = post_batch([time_entry()], deps)
    assert outcome.count(Fate.HELD) == 1
    assert deps.ledger.get(correlation_id(time_entry()))["status"] == "HELD"


def test_throttled_items_go_back_to_the_queue_and_erp_refusals_park(world):
    erp = FakePostingErp()
    erp.fail["TE-T"] = ThrottledError("429", retry_after=1, system="netsuite")
    erp.fail["TE-X"] = DataValidationError("unknown employee", system="netsuite")
    deps, _ = world(erp=erp)
    outcome = post_batch(
        [
            time_entry(psa_id="TE-T", hours="2"),
            time_entry(psa_id="TE-X", hours="2"),
            time_entry(psa_id="TE-OK", hours="2"),
        ],
        deps,
    )
    assert outcome.retry == ["time-entry:TE-T#v1"]
    assert (
        outcome.fates["time-entry:TE-X#v1"] is Fate.PARKED
        and outcome.fates["time-entry:TE-OK#v1"] is Fate.POSTED
    )
    assert deps.ledger.get(correlation_id(time_entry(psa_id="TE-T")))["status"] == "RECEIVED"


def test_expenses_post_with_their_tax_and_conservation_holds(world):
    deps, _ = world()
    items = [
        expense_line(psa_id="EX-1"),
        expense_line(psa_id="EX-2", gross="9999"),  # over the meals limit: parked
        expense_line(psa_id="EX-3", approval_status="submitted", approved_at=None),
        time_entry(psa_id="TE-9", hours="3"),
    ]
    outcome = post_batch(items, deps)
    counted = sum(outcome.count(f) for f in (Fate.POSTED, Fate.HELD, Fate.PARKED, Fate.REJECTED))
    assert counted == len(items)
    assert outcome.fates["expense:EX-1#v1"] is Fate.POSTED and outcome.fates["expense:EX-2#v1"] is Fate.PARKED


def test_an_entry_of_an_unrouted_entity_parks_alone_and_the_batch_goes_on(world):
    deps, erp = world()
    stray = time_entry(psa_id="TE-ZZ", legal_entity_code="ZZ01", worker_id="W-9")
    outcome = post_batch([stray, time_entry(psa_id="TE-OK", hours="2")], deps)
    assert (
        outcome.fates["time-entry:TE-ZZ#v1"] is Fate.PARKED
        and outcome.fates["time-entry:TE-OK#v1"] is Fate.POSTED
    )
    assert "ZZ01" in deps.ledger.get(correlation_id(stray))["reason"]


def test_two_batches_of_one_container_at_once_never_both_post_an_entry(world):
    """One container runs two invocations at once (the local runtime does; so could a future runtime): the
    claim belongs to the batch, not the container, so the second batch's copy is refused while the first
    one posts it."""
    deps, erp = world()
    entry = time_entry(psa_id="TE-TWIN")
    inner: list = []

    def the_same_container_runs_another_batch():
        erp.during_post = None
        inner.append(post_batch([entry], deps))

    erp.during_post = the_same_container_runs_another_batch
    outer = post_batch([entry], deps)

    assert inner[0].fates["time-entry:TE-TWIN#v1"] is Fate.RETRY  # "another consumer is posting it now"
    assert outer.fates["time-entry:TE-TWIN#v1"] is Fate.POSTED
    assert erp.posts == {("TE-TWIN", 1): 1}


def test_an_entry_another_batch_posted_meanwhile_is_never_parked_over_its_posting(world, hub):
    """A batch reads the ledger, then (while it checks) another batch posts the entry, then its own checks
    would park it (the project went on hold meanwhile): the posting stands, and this copy is a duplicate."""
    deps, erp = world()
    entry = time_entry(psa_id="TE-LATE")
    on_hold = Config()

    def project_status(psa_project_id):
        post_batch([entry], deps)  # the other batch, complete, between this batch's ledger read and checks
        return ProjectStatus.ON_HOLD

    on_hold.project_status = project_status
    late_deps, _ = world(erp=erp, config=on_hold)

    outcome = post_batch([entry], late_deps)

    assert outcome.fates["time-entry:TE-LATE#v1"] is Fate.DUPLICATE
    tx = deps.ledger.get(correlation_id(entry))
    assert tx["status"] == "COMPLETED" and tx["refs"]["postedVersion"] == 1 and len(erp.records) == 1


def test_a_period_the_erp_closed_after_the_calendar_was_read_is_decided_again_and_held(world):
    erp = FakePostingErp()
    deps, _ = world(erp=erp, config=Config(ClosedPeriodAction.HOLD))
    post_batch([time_entry(psa_id="TE-EARLY", hours="2")], deps)  # the calendar (November open) is cached
    erp.closed = ("2026-11",)  # finance closes November in the ERP

    outcome = post_batch([time_entry(psa_id="TE-AFTER", hours="2")], deps)

    assert outcome.fates["time-entry:TE-AFTER#v1"] is Fate.HELD
    tx = deps.ledger.get(correlation_id(time_entry(psa_id="TE-AFTER")))
    assert tx["status"] == "HELD" and "claim_owner" not in tx
    assert [c["outcome"] for c in tx["checkpoints"]] == ["period-refused"]
    assert erp.calendar_reads == 2  # read again once, not per entry


def test_a_period_closed_after_the_calendar_was_read_rolls_forward_on_the_next_delivery(world):
    erp = FakePostingErp()
    deps, _ = world(erp=erp)  # NEXT_OPEN
    post_batch([time_entry(psa_id="TE-EARLY", hours="2")], deps)
    erp.closed = ("2026-11",)
    entry = time_entry(psa_id="TE-ROLL", hours="2")

    first = post_batch([entry], deps)
    second = post_batch([entry], deps)  # the queue delivers it again

    assert first.fates["time-entry:TE-ROLL#v1"] is Fate.RETRY
    assert "2026-12" in first.errors["time-entry:TE-ROLL#v1"].message
    assert second.fates["time-entry:TE-ROLL#v1"] is Fate.POSTED and erp.posts[("TE-ROLL", 1)] == 1


def test_a_period_the_erp_refuses_while_its_calendar_shows_it_open_is_parked_with_the_erps_reason(world):
    erp = FakePostingErp()
    erp.refused_periods = ("2026-11",)
    deps, _ = world(erp=erp)

    outcome = post_batch([time_entry(psa_id="TE-ODD", hours="2")], deps)

    assert outcome.fates["time-entry:TE-ODD#v1"] is Fate.PARKED
    assert "2026-11" in outcome.reasons["time-entry:TE-ODD#v1"]


@pytest.mark.parametrize(
    ("error", "fate"),
    [
        (PermanentError("401 from the ERP", system="netsuite-uk", code="INVALID_LOGIN"), Fate.PARKED),
        (TransientError("timeout", system="netsuite-uk"), Fate.RETRY),
    ],
)
def test_a_calendar_that_cannot_be_read_stops_only_that_entitys_entries(world, error, fate):
    erp = FakePostingErp()
    erp.calendar_errors["UK01"] = error
    deps, _ = world(erp=erp)
    uk = [time_entry(psa_id=f"TE-UK{n}", legal_entity_code="UK01", worker_id=f"W-{n}") for n in range(3)]
    us = time_entry(psa_id="TE-US", hours="2")

    outcome = post_batch([*uk, us], deps)

    assert outcome.fates["time-entry:TE-US#v1"] is Fate.POSTED
    assert {outcome.fates[f"time-entry:TE-UK{n}#v1"] for n in range(3)} == {fate}
    assert erp.calendar_reads == 2  # US01 once, UK01 once (its failure remembered for the batch)
    if fate is Fate.PARKED:
        reason = deps.ledger.get(correlation_id(uk[0]))["reason"]
        assert "accounting calendar of UK01" in reason and "401" in reason
