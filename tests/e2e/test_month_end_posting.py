"""The month end through the deployed local stack: a few hundred approved time entries and expense lines of US01,
UK01 and DE01 announced by signed PSA webhooks (duplicated, concurrent, some never sent), posted into the
NetSuite and Business Central sandboxes under injected throttling, with withdrawn approvals, entries that break a
rule and November closed in NetSuite UK mid-run (``local.month_end``, run once for the module)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from local import finance_config
from local.month_end import (
    PARK_CASES,
    RULE_OF_CASE,
    Entry,
    MonthEndConfig,
    MonthEndResult,
    expected_status,
    run_month_end,
)
from local.psa_seed import MonthEndLoad, erp_system

pytestmark = pytest.mark.e2e

POLICY = {p.legal_entity_code: p for p in finance_config.POLICIES}


@pytest.fixture(scope="module")
def month_end(stack) -> MonthEndResult:
    config = MonthEndConfig(
        load=MonthEndLoad(workers=4, projects=2, expenses=12), stragglers=2, webhook_batch=40
    )
    return run_month_end(stack, config)


def _of(result: MonthEndResult, *, case: str | None = None, entity: str | None = None) -> list[Entry]:
    return [e for e in result.entries if case in (None, e.case) and entity in (None, e.entity)]


def _records(result: MonthEndResult, entry: Entry) -> int:
    return result.posted_ids[entry.kind].get(entry.psa_id, 0)


def test_given_duplicated_concurrent_and_missed_webhooks_when_the_month_end_runs_then_each_valid_entry_posts_once(
    month_end,
):
    valid = [e for e in month_end.entries if expected_status(e) == "COMPLETED"]

    assert len(valid) > 200 and {e.entity for e in valid} == {"US01", "UK01", "DE01"}
    assert month_end.webhook_deliveries > len(
        month_end.deliveries
    )  # some entries were announced twice or more
    assert any(e.case == "straggler" for e in valid)  # found by the sweep alone
    for entry in valid:
        assert month_end.statuses[entry.correlation_id] == "COMPLETED", entry
        assert _records(month_end, entry) == 1, entry  # one record under the hub's external id, in its ERP
    for count in month_end.erp.values():
        assert count.duplicate_records == 0
    assert month_end.erp_records == len(valid)
    assert month_end.problems == []


def test_given_an_approval_withdrawn_while_its_webhook_pointer_is_queued_then_nothing_of_it_posts(month_end):
    withdrawn = _of(month_end, case="withdrawn")

    assert {e.kind for e in withdrawn} == {"time-entry", "expense"}
    for entry in withdrawn:
        assert month_end.deliveries[entry.correlation_id] >= 1  # announced before it was withdrawn
        assert month_end.statuses[entry.correlation_id] == "IGNORED"
        assert _records(month_end, entry) == 0
        reason = month_end.reasons[entry.correlation_id]
        assert ("had its approval withdrawn" if entry.kind == "time-entry" else "was rejected") in reason


def test_given_entries_that_break_a_rule_then_they_wait_in_the_dlq_with_the_rule_and_the_values(
    month_end, stack
):
    parked = [e for e in month_end.entries if e.case in PARK_CASES]
    reasons_in_dlq = {m["correlationId"]: m["parkedReason"] for m in month_end.dlq}
    kantata = stack.sandboxes.kantata

    assert {e.case for e in parked} == PARK_CASES
    for entry in parked:
        cid = entry.correlation_id
        assert month_end.statuses[cid] == "PARKED" and _records(month_end, entry) == 0
        assert RULE_OF_CASE[entry.case] in month_end.rules[cid]
        reason = reasons_in_dlq[cid]
        policy = POLICY[entry.entity]
        if entry.case == "over-hours":
            hours = Decimal(kantata.time_entry(entry.psa_id)["time_in_minutes"]) / 60
            assert f"logged {hours.normalize():f} h on {entry.day}" in reason
            assert f"the {entry.entity} limit is {policy.max_hours_per_day} h a day" in reason
        elif entry.case in ("over-limit", "no-receipt"):
            gross = Decimal(kantata.expense(entry.psa_id)["amount_in_cents"]) / 100
            currency = policy.currency
            assert f"{gross:,.2f} {currency}" in reason
            if entry.case == "over-limit":
                limit = policy.expense_limits[finance_config.C.LODGING].amount
                assert f"limit for lodging is {limit:,.2f} {currency}" in reason
            else:
                threshold = policy.receipt_required_above.amount
                assert (
                    f"with no receipt; {entry.entity} requires a receipt above {threshold:,.2f} {currency}"
                    in reason
                )
        elif entry.case == "project-on-hold":
            assert "which is on hold; billable time can only go to active projects" in reason
        else:
            assert "which is closed; billable time can only go to open tasks" in reason
    assert set(reasons_in_dlq) == {e.correlation_id for e in parked}  # nothing else is dead-lettered


def test_given_uk_november_closed_mid_run_then_later_uk_november_entries_are_held_and_december_ones_post(
    month_end,
):
    uk_late = [
        e
        for e in month_end.entries
        if e.entity == "UK01" and e.case in ("regular", "straggler") and e.day >= dt.date(2026, 11, 30)
    ]
    november = [e for e in uk_late if e.day.month == 11]
    december = [e for e in uk_late if e.day.month == 12]
    uk_early = [e for e in _of(month_end, case="regular", entity="UK01") if e.day < dt.date(2026, 11, 30)]

    assert november and december and uk_early
    for entry in uk_early:  # posted before the close
        assert month_end.statuses[entry.correlation_id] == "COMPLETED"
    for entry in november:
        assert month_end.statuses[entry.correlation_id] == "HELD" and _records(month_end, entry) == 0
        assert month_end.reasons[entry.correlation_id] == (
            f"Period Nov-2026 of UK01 is closed; UK01 holds entries dated {entry.day} until the period reopens"
        )
    for entry in december:
        assert month_end.statuses[entry.correlation_id] == "COMPLETED" and _records(month_end, entry) == 1
    [late_us] = _of(month_end, case="late-october", entity="US01")  # US01 rolls a closed period forward
    assert month_end.statuses[late_us.correlation_id] == "COMPLETED"
    assert any(
        f"time entry {late_us.psa_id} dated 2026-10-30 -> posted 2026-11-01" in line
        for line in month_end.erp["netsuite-us"].rolled_forward
    )


def test_given_erp_throttling_and_5xx_then_no_erp_sees_more_than_its_limit_and_nothing_is_dead_lettered_for_it(
    month_end, stack
):
    assert sum(c.answered_429 for c in month_end.erp.values()) > 0  # throttling happened and was retried
    for system, count in month_end.erp.items():
        limit = stack.sandboxes.erp(system).concurrency_limit
        assert count.limit == limit == 5
        assert 1 <= count.peak_in_flight <= limit and count.peak_open <= limit
        assert count.over_limit == 0  # no request was refused for being over the limit
    parked = {cid for cid, status in month_end.statuses.items() if status == "PARKED"}
    for message in month_end.dlq:
        assert message["correlationId"] in parked
        assert "throttl" not in message["parkedReason"].lower() and "429" not in message["parkedReason"]


def test_given_the_month_end_then_in_equals_posted_plus_held_plus_parked_plus_rejected(month_end):
    counted = month_end.posted + month_end.held + month_end.parked + month_end.rejected

    assert month_end.received == len(month_end.entries) == counted
    assert month_end.conserved
    for entry in month_end.entries:
        assert month_end.statuses[entry.correlation_id] == expected_status(entry), entry
    assert {erp_system(e.entity) for e in month_end.entries} == {"netsuite-us", "netsuite-uk", "bc-eu"}
