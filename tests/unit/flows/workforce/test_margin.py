"""Planned cost and margin: hours x the cost rate effective each day, in the project's currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import DataValidationError
from hub.flows.initiation.planning import plan_project
from hub.flows.workforce.margin import FxTable, below_floor, margin_model, planned_revenue
from hub.model import BillingSchedule, BillingType
from tests.support.builders import money, opportunity
from tests.support.workforce_builders import assignment, fx, placement, rate, weekdays, worker

PSA_PROJECT = "880001"


def project(**overrides):
    """The default fixed-fee deal (120,000 USD in milestones) as the initiation flow plans it."""
    return plan_project(opportunity(**overrides))


def model(assignments, workers, fx_rates=(), the_project=None):
    return margin_model(
        the_project or project(), PSA_PROJECT, assignments, {w.hcm_id: w for w in workers}, FxTable(fx_rates)
    )


def test_a_rate_change_mid_assignment_prices_each_day_at_the_rate_effective_that_day():
    # 80/h until Monday 15 Mar 2027, 100/h from the 16th; 8 h on each weekday 8-19 Mar
    ana = worker(
        cost_rates=(
            rate("80", start=dt.date(2024, 1, 1), end=dt.date(2027, 3, 15)),
            rate("100", start=dt.date(2027, 3, 16)),
        )
    )
    days = weekdays(dt.date(2027, 3, 8), dt.date(2027, 3, 19))

    result = model([assignment(days=days)], [ana])

    before = sum(1 for d in days if d <= dt.date(2027, 3, 15))
    after = len(days) - before
    assert (before, after) == (6, 4)
    assert result.cost == money(str(8 * 80 * before + 8 * 100 * after))
    assert result.hours == Decimal(8 * len(days)) and result.complete


def test_a_rate_change_on_new_years_day_splits_the_year_end_week():
    ben = worker(
        hcm_id="E2",
        cost_rates=(
            rate("90", start=dt.date(2024, 1, 1), end=dt.date(2026, 12, 31)),
            rate("95", start=dt.date(2027, 1, 1)),
        ),
    )
    days = {dt.date(2026, 12, 30): "8", dt.date(2026, 12, 31): "8", dt.date(2027, 1, 1): "4"}

    result = model([assignment("E2", days)], [ben])

    assert result.cost == money(str(16 * 90 + 4 * 95))


def test_a_worker_paid_in_pounds_on_a_dollar_project_is_converted_with_the_rate_of_each_day():
    cy = worker(
        hcm_id="E3", placements=(placement("UK01"),), cost_rates=(rate("60", "GBP", dt.date(2024, 1, 1)),)
    )
    rates = [fx("GBP", "USD", "1.25", dt.date(2026, 1, 1)), fx("GBP", "USD", "1.30", dt.date(2027, 3, 1))]
    days = {dt.date(2027, 2, 26): "8", dt.date(2027, 3, 1): "8"}

    result = model([assignment("E3", days)], [cy], rates)

    assert result.cost == money(str(Decimal("480") * Decimal("1.25") + Decimal("480") * Decimal("1.30")))
    assert result.cost_by_worker == {"E3": result.cost}


def test_only_the_inverse_pair_known_is_used_inverted_and_no_rate_at_all_is_a_data_error():
    eur = worker(hcm_id="E4", cost_rates=(rate("100", "EUR", dt.date(2024, 1, 1)),))
    day = {dt.date(2027, 3, 1): "1"}

    inverted = model([assignment("E4", day)], [eur], [fx("USD", "EUR", "0.8")])
    assert inverted.cost == money("125.00")

    with pytest.raises(DataValidationError) as caught:
        model([assignment("E4", day)], [eur], [fx("USD", "EUR", "0.8", dt.date(2027, 6, 1))])
    assert "EUR/USD" in caught.value.message and "2027-03-01" in caught.value.message


def test_hours_of_a_leaver_after_the_last_day_and_days_without_a_rate_are_named_never_priced_as_zero():
    dee = worker(hcm_id="E5", end_date=dt.date(2027, 3, 3))
    fay = worker(hcm_id="E6", cost_rates=(rate("70", start=dt.date(2027, 3, 3)),))
    days = {dt.date(2027, 3, 2): "8", dt.date(2027, 3, 4): "8"}

    result = model([assignment("E5", days), assignment("E6", days)], [dee, fay])

    assert {(u.worker_hcm_id, u.day) for u in result.unpriced} == {
        ("E5", dt.date(2027, 3, 4)),
        ("E6", dt.date(2027, 3, 2)),
    }
    assert "after the last day worked 2027-03-03" in result.unpriced[0].reason
    assert result.cost == money(str(8 * 80 + 8 * 70)) and not result.complete


def test_margin_is_revenue_from_the_billing_schedule_less_the_planned_cost():
    days = weekdays(dt.date(2027, 1, 4), dt.date(2027, 6, 30))
    result = model([assignment(days=days)], [worker()])

    cost = Decimal(8 * 80 * len(days))
    assert result.revenue == money("120000.00")
    assert result.margin == money(str(Decimal(120000) - cost))
    assert result.margin_pct == ((Decimal(120000) - cost) / Decimal(120000)).quantize(Decimal("0.0001"))
    assert below_floor(result, Decimal("0.30")) is (result.margin_pct < Decimal("0.30"))


def test_time_and_materials_revenue_is_the_contract_value_within_the_cap():
    tm = project(billing_type=BillingType.TIME_AND_MATERIALS, line_items=())
    capped = tm.model_copy(
        update={
            "billing_schedule": BillingSchedule(
                billing_type=BillingType.TIME_AND_MATERIALS, currency="USD", cap=money(90000)
            )
        }
    )
    assert planned_revenue(tm) == tm.contract_value
    assert planned_revenue(capped) == money(90000)


@given(
    hours=st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=40),
    split=st.integers(min_value=0, max_value=40),
)
def test_cost_is_the_same_however_the_days_are_split_across_assignments(hours, split):
    start = dt.date(2027, 3, 1)
    days = {start + dt.timedelta(days=n): str(h) for n, h in enumerate(hours)}
    items = sorted(days.items())
    whole = model([assignment(days=days)], [worker()])
    parts = model(
        [
            assignment(days=dict(items[:split]), psa_assignment_id="A-1"),
            assignment(days=dict(items[split:]), psa_assignment_id="A-2"),
        ],
        [worker()],
    )
    assert parts.cost == whole.cost == money(str(80 * sum(hours)))
