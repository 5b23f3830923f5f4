import datetime as dt
from decimal import Decimal

import pytest

from hub.flows.initiation.planning import plan_project, term_months
from hub.model import BillingType
from tests.support.builders import money, opportunity


def test_fixed_fee_deal_gets_one_task_and_one_milestone_per_line_item():
    project = plan_project(opportunity())
    assert [t.code for t in project.wbs] == ["1", "1.1", "1.2", "2", "2.1", "2.2"]
    assert [t.kind for t in project.wbs if t.parent_code == "2"] == ["milestone", "milestone"]
    schedule = project.billing_schedule
    assert [m.amount.amount for m in schedule.milestones] == [Decimal("40000.00"), Decimal("80000.00")]
    assert schedule.scheduled_total == project.contract_value


def test_milestone_uses_the_line_service_date_else_spreads_within_the_term():
    project = plan_project(opportunity())
    first, second = project.billing_schedule.milestones
    assert first.due_date == dt.date(2027, 2, 15)
    assert dt.date(2027, 1, 4) < second.due_date <= dt.date(2027, 6, 30)


def test_time_and_materials_has_no_milestones_and_a_cap_at_the_deal_amount():
    project = plan_project(opportunity(billing_type=BillingType.TIME_AND_MATERIALS))
    assert project.billing_schedule.milestones == ()
    assert project.billing_schedule.cap == money("120000.00")
    assert "2" not in [t.code for t in project.wbs]


def test_retainer_instalments_add_up_exactly_even_when_the_amount_does_not_divide():
    opp = opportunity(
        billing_type=BillingType.RETAINER,
        amount=money(100000),
        start_date=dt.date(2027, 1, 1),
        end_date=dt.date(2027, 12, 31),
    )
    schedule = plan_project(opp).billing_schedule
    assert len(schedule.milestones) == 12
    assert schedule.scheduled_total.amount == Decimal("100000.00")
    assert schedule.milestones[0].amount.amount == Decimal("8333.33")
    assert schedule.milestones[-1].amount.amount == Decimal("8333.37")
    assert [m.due_date.month for m in schedule.milestones] == list(range(1, 13))


def test_subscription_is_billed_annually_in_advance():
    opp = opportunity(
        billing_type=BillingType.SUBSCRIPTION,
        amount=money(90000),
        start_date=dt.date(2027, 3, 1),
        end_date=dt.date(2030, 2, 28),
    )
    schedule = plan_project(opp).billing_schedule
    assert [m.due_date for m in schedule.milestones] == [
        dt.date(2027, 3, 1),
        dt.date(2028, 3, 1),
        dt.date(2029, 3, 1),
    ]
    assert schedule.scheduled_total.amount == Decimal("90000.00")


def test_month_end_start_dates_do_not_overflow_short_months():
    opp = opportunity(
        billing_type=BillingType.RETAINER,
        amount=money(3000),
        start_date=dt.date(2027, 1, 31),
        end_date=dt.date(2027, 3, 31),
    )
    dues = [m.due_date for m in plan_project(opp).billing_schedule.milestones]
    assert dues == [dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31)]


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [((2027, 1, 1), (2027, 12, 31), 12), ((2027, 1, 15), (2027, 2, 14), 1), ((2027, 1, 1), None, 12)],
)
def test_term_in_months(start, end, months):
    assert term_months(dt.date(*start), dt.date(*end) if end else None) == months


def test_project_external_id_is_erp_safe():
    assert plan_project(opportunity()).external_id == "sf-opp-0065g00000AbCdEAAV"
