"""The posting service against moto (ledger, routing, bus) with a hand-written fake ERP port."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.errors import DataValidationError, ThrottledError
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
