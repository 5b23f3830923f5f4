import datetime as dt
from decimal import Decimal

import pytest

from hub.flows.posting import FLOW
from hub.flows.posting.checks import Outcome, check_expense_line, check_time_entry
from hub.flows.posting.rules import Rule, describe
from hub.model import (
    ApprovalStatus,
    ClosedPeriodAction,
    ExpenseCategory,
    PostingAction,
    PostingBasis,
    ProjectStatus,
    TaskStatus,
    TaxKind,
)
from tests.support.builders import money
from tests.support.time_expense_builders import (
    entity,
    expense_line,
    monthly_calendar,
    posting_policy,
    tax_rules,
    time_entry,
)

NOW = dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC)


def check_time(entry=None, *, closed=(), closed_period=ClosedPeriodAction.NEXT_OPEN, **kwargs):
    entry = entry or time_entry()
    code = entry.legal_entity_code
    arguments = {
        "entity": entity(code),
        "policy": posting_policy(code, closed_period=closed_period),
        "calendar": monthly_calendar(code, closed=closed),
        "now_utc": NOW,
        "project_status": ProjectStatus.ACTIVE,
        "task_status": TaskStatus.OPEN,
    }
    return check_time_entry(entry, **(arguments | kwargs))


def check_expense(line=None, *, closed=(), **kwargs):
    line = line or expense_line()
    code = line.legal_entity_code
    arguments = {
        "entity": entity(code),
        "policy": posting_policy(code),
        "calendar": monthly_calendar(code, closed=closed),
        "tax_rules": tax_rules(),
        "now_utc": NOW,
        "project_status": ProjectStatus.ACTIVE,
    }
    return check_expense_line(line, **(arguments | kwargs))


def test_the_flow_has_its_name():
    assert FLOW == "time-expense-posting"


def test_a_clean_approved_time_entry_in_an_open_period_posts():
    decision, violations = check_time()
    assert violations == () and decision.action is PostingAction.POST and decision.period == "2026-11"
    assert check_time().outcome is Outcome.POST


def test_a_clean_entry_in_a_closed_period_is_held_when_the_entity_holds():
    result = check_time(closed=("2026-11",), closed_period=ClosedPeriodAction.HOLD)
    assert result.outcome is Outcome.HOLD and result.decision.basis is PostingBasis.PERIOD_CLOSED


def test_a_clean_entry_in_a_closed_period_moves_to_the_next_open_one():
    result = check_time(closed=("2026-11",))
    assert result.outcome is Outcome.POST and result.decision.period == "2026-12"
    assert result.decision.original_date == dt.date(2026, 11, 30)


def test_given_an_entry_failing_several_checks_when_checked_then_every_reason_is_given_at_once():
    entry = time_entry(hours=Decimal("9"))
    result = check_time(
        entry,
        same_day_entries=[time_entry(psa_id="TE-2", hours=Decimal("4"))],
        project_status=ProjectStatus.COMPLETED,
        task_status=TaskStatus.CLOSED,
        closed=("2026-11",),
        closed_period=ClosedPeriodAction.HOLD,
    )
    assert [v.rule for v in result.violations] == [
        Rule.MAX_HOURS_PER_DAY,
        Rule.ACTIVE_PROJECT,
        Rule.OPEN_TASK,
    ]
    assert result.outcome is Outcome.PARK
    assert result.decision.action is PostingAction.HOLD  # still computed: shows where it stands
    assert describe(result.violations).startswith("Worker W-17 logged 13 h on 2026-11-30;")


@pytest.mark.parametrize(
    "status", [ApprovalStatus.SUBMITTED, ApprovalStatus.REJECTED, ApprovalStatus.WITHDRAWN]
)
def test_given_an_entry_not_approved_when_checked_then_it_is_not_approved_rather_than_parked(status):
    result = check_time(
        time_entry(approval_status=status, approved_at=None, hours=Decimal("13")),
        project_status=ProjectStatus.COMPLETED,
    )
    assert result.outcome is Outcome.NOT_APPROVED
    assert [v.rule for v in result.violations] == [
        Rule.APPROVAL,
        Rule.MAX_HOURS_PER_DAY,
        Rule.ACTIVE_PROJECT,
    ]


def test_an_approval_withdrawn_after_intake_is_not_posted():
    approved = time_entry(version=1)
    withdrawn = time_entry(version=2, approval_status=ApprovalStatus.WITHDRAWN)
    assert check_time(approved).outcome is Outcome.POST
    assert check_time(withdrawn).outcome is Outcome.NOT_APPROVED


def test_the_time_entry_check_refuses_another_entitys_configuration():
    with pytest.raises(ValueError, match="UK01"):
        check_time_entry(
            time_entry(),
            entity=entity("UK01"),
            policy=posting_policy("UK01"),
            calendar=monthly_calendar("UK01"),
            now_utc=NOW,
            project_status=ProjectStatus.ACTIVE,
            task_status=TaskStatus.OPEN,
        )


def test_a_clean_expense_posts_with_its_tax_treatment():
    line = expense_line(entity_code="UK01", category=ExpenseCategory.LODGING, gross="120.00")
    decision, violations, tax = check_expense(line)
    assert violations == () and decision.action is PostingAction.POST
    assert (tax.net, tax.tax, tax.kind) == (money("100.00", "GBP"), money("20.00", "GBP"), TaxKind.DOMESTIC)
    assert check_expense(line).outcome is Outcome.POST


def test_given_an_expense_failing_several_checks_when_checked_then_every_reason_is_given_at_once():
    line = expense_line(
        entity_code="UK01",
        category=ExpenseCategory.CLIENT_ENTERTAINMENT,
        gross="450.00",
        receipt_attached=False,
        billable=True,
    )
    result = check_expense(line, project_status=ProjectStatus.CANCELLED)
    assert [v.rule for v in result.violations] == [
        Rule.ACTIVE_PROJECT,
        Rule.EXPENSE_LIMIT,
        Rule.RECEIPT_REQUIRED,
    ]
    assert result.outcome is Outcome.PARK
    assert result.tax.non_recoverable_tax == money("75.00", "GBP")


def test_an_expense_without_a_tax_rule_is_parked_with_no_treatment():
    line = expense_line(entity_code="UK01")
    result = check_expense(line, tax_rules=[r for r in tax_rules() if r.legal_entity_code != "UK01"])
    assert [v.rule for v in result.violations] == [Rule.TAX_RULE]
    assert result.tax is None and result.outcome is Outcome.PARK


def test_an_expense_in_a_foreign_currency_is_parked_once_for_its_currency():
    line = expense_line(gross=money("900.00", "EUR"), receipt_attached=False)
    result = check_expense(line)
    assert [v.rule for v in result.violations] == [Rule.CURRENCY]


def test_a_withdrawn_expense_is_not_approved():
    line = expense_line(approval_status=ApprovalStatus.WITHDRAWN)
    assert check_expense(line).outcome is Outcome.NOT_APPROVED


def test_an_expense_dated_in_a_closed_period_moves_and_keeps_its_date():
    result = check_expense(closed=("2026-11",))
    assert (result.decision.period, result.decision.original_date) == ("2026-12", dt.date(2026, 11, 27))


def test_tax_rules_may_be_any_iterable_read_once():
    result = check_expense(tax_rules=iter(tax_rules()))
    assert result.tax is not None and result.violations == ()
