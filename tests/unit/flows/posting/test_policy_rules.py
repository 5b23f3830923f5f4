import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.flows.posting.rules import (
    Rule,
    check_billable_target,
    check_expense_currency,
    check_expense_limit,
    check_hours_per_day,
    check_receipt,
    worker_day_hours,
)
from hub.model import ApprovalStatus, ExpenseCategory, ProjectStatus, TaskStatus
from tests.support.builders import money
from tests.support.time_expense_builders import expense_line, posting_policy, time_entry

DAY = dt.date(2026, 11, 30)


def other(psa_id, hours, **overrides):
    return time_entry(psa_id=psa_id, hours=Decimal(hours), **overrides)


# --- hours per day per worker -------------------------------------------------------------------------


def test_worker_over_the_daily_limit_is_told_in_hours_and_entity_terms():
    entry = time_entry(hours=Decimal("5.5"))
    (violation,) = check_hours_per_day(entry, [other("TE-2", "8")], posting_policy())
    assert violation.rule is Rule.MAX_HOURS_PER_DAY and violation.field == "hours"
    assert (violation.value, violation.limit) == ("13.5", "12")
    assert violation.message == "Worker W-17 logged 13.5 h on 2026-11-30; the US01 limit is 12 h a day"


@pytest.mark.parametrize(
    ("entry_hours", "others", "over"),
    [
        ("12", [], False),  # exactly at the limit
        ("12.01", [], True),  # a hundredth over
        ("4", [("TE-2", "8")], False),  # the day sums to the limit
        ("4.01", [("TE-2", "8")], True),
        ("0.25", [("TE-2", "6"), ("TE-3", "5.75")], False),
        ("0.26", [("TE-2", "6"), ("TE-3", "5.75")], True),
    ],
)
def test_given_a_workers_day_when_checked_then_the_sum_is_held_to_the_limit(entry_hours, others, over):
    entry = time_entry(hours=Decimal(entry_hours))
    same_day = [other(psa_id, hours) for psa_id, hours in others]
    assert bool(check_hours_per_day(entry, same_day, posting_policy())) is over


@pytest.mark.parametrize(
    ("description", "noise"),
    [
        ("another worker", {"worker_id": "W-18"}),
        ("another day", {"work_date": DAY - dt.timedelta(days=1)}),
        ("a rejected entry", {"approval_status": ApprovalStatus.REJECTED}),
        ("a withdrawn entry", {"approval_status": ApprovalStatus.WITHDRAWN, "approved_at": None}),
    ],
)
def test_hours_that_are_not_the_workers_on_that_day_do_not_count(description, noise):
    entry = time_entry(hours=Decimal("8"))
    assert check_hours_per_day(entry, [other("TE-2", "8", **noise)], posting_policy()) == [], description


def test_submitted_entries_count_towards_the_day():
    entry = time_entry(hours=Decimal("8"))
    submitted = other("TE-2", "8", approval_status=ApprovalStatus.SUBMITTED, approved_at=None)
    assert check_hours_per_day(entry, [submitted], posting_policy())


def test_an_older_version_of_the_same_entry_is_not_counted_twice():
    entry = time_entry(hours=Decimal("8"), version=2)
    assert check_hours_per_day(entry, [time_entry(hours=Decimal("7"), version=1)], posting_policy()) == []


def test_only_the_latest_version_of_another_entry_counts():
    entry = time_entry(hours=Decimal("8"))
    versions = [other("TE-2", "6", version=1), other("TE-2", "3", version=2)]
    assert worker_day_hours(entry, versions) == Decimal("11")
    assert worker_day_hours(entry, list(reversed(versions))) == Decimal("11")


def test_a_later_withdrawal_of_another_entry_frees_its_hours():
    entry = time_entry(hours=Decimal("8"))
    versions = [
        other("TE-2", "6", version=1),
        other("TE-2", "6", version=2, approval_status=ApprovalStatus.WITHDRAWN),
    ]
    assert worker_day_hours(entry, versions) == Decimal("8")


def test_each_entity_applies_its_own_daily_limit():
    entry = time_entry(legal_entity_code="UK01", hours=Decimal("10.5"))
    (violation,) = check_hours_per_day(entry, [], posting_policy("UK01", max_hours_per_day=Decimal(10)))
    assert violation.message.endswith("the UK01 limit is 10 h a day")


def test_a_policy_of_another_entity_is_a_wiring_error():
    with pytest.raises(ValueError, match="UK01"):
        check_hours_per_day(time_entry(), [], posting_policy("UK01"))


quarter_hours = st.integers(min_value=1, max_value=48).map(lambda q: Decimal(q) / 4)


@given(hours=st.lists(quarter_hours, min_size=1, max_size=12), data=st.data())
def test_property_a_day_split_into_any_entries_gets_the_same_verdict_for_every_entry(hours, data):
    """However a day's hours are split and ordered, every entry sees the same total and verdict."""
    entries = [time_entry(psa_id=f"TE-{i}", hours=h) for i, h in enumerate(hours)]
    order = data.draw(st.permutations(entries))
    total = sum(hours, Decimal(0))
    policy = posting_policy()
    for entry in entries:
        assert worker_day_hours(entry, order) == total
        violations = check_hours_per_day(entry, order, policy)
        assert bool(violations) is (total > policy.max_hours_per_day)
        assert all(v.value == format(total.normalize(), "f") for v in violations)


# --- billable work only on active projects and open tasks ---------------------------------------------


@pytest.mark.parametrize(
    ("billable", "project", "task", "rules"),
    [
        (True, ProjectStatus.ACTIVE, TaskStatus.OPEN, []),
        (True, ProjectStatus.ON_HOLD, TaskStatus.OPEN, [Rule.ACTIVE_PROJECT]),
        (True, ProjectStatus.COMPLETED, TaskStatus.OPEN, [Rule.ACTIVE_PROJECT]),
        (True, ProjectStatus.CANCELLED, TaskStatus.CLOSED, [Rule.ACTIVE_PROJECT, Rule.OPEN_TASK]),
        (True, ProjectStatus.ACTIVE, TaskStatus.CLOSED, [Rule.OPEN_TASK]),
        (False, ProjectStatus.COMPLETED, TaskStatus.CLOSED, []),  # internal time is not checked
    ],
)
def test_given_billable_time_when_its_project_or_task_is_not_live_then_it_is_flagged(
    billable, project, task, rules
):
    violations = check_billable_target(time_entry(billable=billable), project, task, posting_policy())
    assert [v.rule for v in violations] == rules


def test_billable_time_on_a_completed_project_says_so_in_plain_words():
    entry = time_entry(project=time_entry().project.model_copy(update={"external_id": "sf-opp-42"}))
    (violation,) = check_billable_target(entry, ProjectStatus.ON_HOLD, TaskStatus.OPEN, posting_policy())
    assert violation.message == (
        "Time entry TE-1001 (v1) is billable to project sf-opp-42, which is on hold; "
        "billable time can only go to active projects"
    )


def test_billable_time_on_a_closed_task_names_the_wbs_code():
    (violation,) = check_billable_target(
        time_entry(), ProjectStatus.ACTIVE, TaskStatus.CLOSED, posting_policy()
    )
    assert "WBS task 1.1" in violation.message and violation.value == "closed"


@pytest.mark.parametrize(("requires", "rules"), [(True, [Rule.TASK_REQUIRED]), (False, [])])
def test_billable_time_without_a_task_is_flagged_when_the_entity_requires_one(requires, rules):
    policy = posting_policy(billable_requires_task=requires)
    violations = check_billable_target(time_entry(task=None), ProjectStatus.ACTIVE, None, policy)
    assert [v.rule for v in violations] == rules


def test_a_task_status_is_needed_when_the_entry_names_a_task():
    with pytest.raises(ValueError, match="status of task 1.1"):
        check_billable_target(time_entry(), ProjectStatus.ACTIVE, None, posting_policy())


@pytest.mark.parametrize(
    ("billable", "project", "rules"),
    [
        (True, ProjectStatus.ACTIVE, []),
        (True, ProjectStatus.COMPLETED, [Rule.ACTIVE_PROJECT]),
        (False, ProjectStatus.COMPLETED, []),
    ],
)
def test_billable_expenses_go_only_to_active_projects(billable, project, rules):
    violations = check_billable_target(expense_line(billable=billable), project, None, posting_policy())
    assert [v.rule for v in violations] == rules
    assert all("billable expenses can only go to active projects" in v.message for v in violations)


# --- expense limits per category and receipts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "gross", "over"),
    [
        (ExpenseCategory.MEALS, "150.00", False),  # exactly at the limit
        (ExpenseCategory.MEALS, "150.01", True),  # one cent over
        (ExpenseCategory.MEALS, "150.004", False),  # rounds to the limit
        (ExpenseCategory.MEALS, "150.005", True),  # rounds half up to a cent over
        (ExpenseCategory.LODGING, "400.00", False),
        (ExpenseCategory.LODGING, "400.01", True),
        (ExpenseCategory.SOFTWARE, "99999.00", False),  # no limit for the category
    ],
)
def test_given_an_expense_when_checked_then_its_category_limit_applies(category, gross, over):
    line = expense_line(category=category, gross=money(gross))
    assert bool(check_expense_limit(line, posting_policy())) is over


def test_expense_over_its_limit_is_told_in_money_and_category_terms():
    line = expense_line(entity_code="UK01", category=ExpenseCategory.CLIENT_ENTERTAINMENT, gross="1400.5")
    (violation,) = check_expense_limit(line, posting_policy("UK01"))
    assert (violation.rule, violation.field) == (Rule.EXPENSE_LIMIT, "gross")
    assert (violation.value, violation.limit) == ("1400.50 GBP", "400.00 GBP")
    assert violation.message == (
        "Expense EX-2001 (v1) for client entertainment is 1,400.50 GBP; "
        "the UK01 limit for client entertainment is 400.00 GBP"
    )


@pytest.mark.parametrize(("gross", "over"), [("15000", False), ("15001", True), ("15000.4", False)])
def test_yen_limits_have_no_minor_unit(gross, over):
    line = expense_line(entity_code="JP01", gross=gross)
    assert bool(check_expense_limit(line, posting_policy("JP01"))) is over


@pytest.mark.parametrize(
    ("category", "gross", "receipt", "required"),
    [
        (ExpenseCategory.MEALS, "75.00", False, False),  # exactly at the threshold
        (ExpenseCategory.MEALS, "75.01", False, True),  # one cent over
        (ExpenseCategory.MEALS, "75.01", True, False),
        (ExpenseCategory.MILEAGE, "180.00", False, False),  # exempt category
        (ExpenseCategory.SOFTWARE, "12.00", False, False),
    ],
)
def test_given_an_expense_without_a_receipt_when_above_the_threshold_then_it_is_flagged(
    category, gross, receipt, required
):
    line = expense_line(category=category, gross=money(gross), receipt_attached=receipt)
    assert bool(check_receipt(line, posting_policy())) is required


def test_missing_receipt_is_told_with_the_threshold():
    (violation,) = check_receipt(expense_line(gross="75.01", receipt_attached=False), posting_policy())
    assert violation.field == "receipt_attached" and violation.rule is Rule.RECEIPT_REQUIRED
    assert violation.message == (
        "Expense EX-2001 (v1) for meals is 75.01 USD with no receipt; US01 requires a receipt above 75.00 USD"
    )


def test_exempt_categories_are_configurable():
    policy = posting_policy(receipt_exempt_categories=frozenset())
    line = expense_line(category=ExpenseCategory.MILEAGE, gross="180", receipt_attached=False)
    assert check_receipt(line, policy)


def test_an_expense_in_another_currency_is_flagged_once_not_compared():
    line = expense_line(gross=money("900.00", "EUR"), receipt_attached=False)
    policy = posting_policy()
    (violation,) = check_expense_currency(line, policy)
    assert violation.rule is Rule.CURRENCY and (violation.value, violation.limit) == ("EUR", "USD")
    assert "must report it in USD" in violation.message
    assert check_expense_limit(line, policy) == [] and check_receipt(line, policy) == []


def test_an_expense_in_the_policy_currency_passes_the_currency_check():
    assert check_expense_currency(expense_line(), posting_policy()) == []
