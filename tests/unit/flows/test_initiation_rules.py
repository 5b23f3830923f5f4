import pytest

from hub.flows.initiation.rules import problems_for_initiation
from hub.model import BillingType
from tests.support.builders import money, opportunity


def test_complete_closed_won_deal_has_no_problems():
    assert problems_for_initiation(opportunity()) == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"account": None}, "account"),
        ({"legal_entity_code": None}, "legal_entity_code"),
        ({"amount": None}, "amount"),
        ({"amount": money(0)}, "amount"),
        ({"billing_type": None}, "billing_type"),
        ({"start_date": None}, "start_date"),
        ({"line_items": ()}, "line_items"),
    ],
)
def test_each_missing_commercial_field_is_named(override, field):
    problems = problems_for_initiation(opportunity(**override))
    assert field in [p["field"] for p in problems]


def test_several_missing_fields_are_all_reported_at_once():
    problems = problems_for_initiation(opportunity(legal_entity_code=None, start_date=None))
    assert {p["field"] for p in problems} == {"legal_entity_code", "start_date"}


def test_end_before_start_is_a_problem():
    import datetime as dt

    problems = problems_for_initiation(opportunity(end_date=dt.date(2026, 12, 1)))
    assert [p["field"] for p in problems] == ["end_date"]


def test_fixed_fee_milestones_must_add_up_to_the_deal_amount():
    problems = problems_for_initiation(opportunity(amount=money(100000)))
    assert problems and problems[0]["field"] == "line_items" and "120000" in problems[0]["problem"]


def test_time_and_materials_line_items_need_not_add_up():
    assert (
        problems_for_initiation(
            opportunity(amount=money(100000), billing_type=BillingType.TIME_AND_MATERIALS)
        )
        == []
    )


def test_line_items_in_another_currency_are_rejected():
    opp = opportunity(amount=money(120000, "GBP"))
    assert any(p["field"].startswith("line_items[") for p in problems_for_initiation(opp))
