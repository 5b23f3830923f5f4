import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hub.model import (
    AccountingCalendar,
    AccountingPeriod,
    ApprovalStatus,
    ExpenseCategory,
    ExpenseLine,
    Money,
    PeriodStatus,
    PostingAction,
    PostingBasis,
    PostingDecision,
    TaxKind,
    TaxRegime,
    TaxTreatment,
    TimeEntry,
    minor_unit,
    round_money,
)
from tests.support.builders import money
from tests.support.time_expense_builders import (
    expense_line,
    month_period,
    monthly_calendar,
    posting_policy,
    tax_rule,
    time_entry,
)


def test_time_entry_round_trips_through_json():
    entry = time_entry(notes="Workshop prep")
    assert TimeEntry.model_validate_json(entry.model_dump_json()) == entry


def test_expense_line_round_trips_through_json():
    line = expense_line(merchant="Café Rouge")
    assert ExpenseLine.model_validate_json(line.model_dump_json()) == line


def test_idempotency_key_is_entry_id_plus_version():
    assert time_entry(psa_id="TE-9", version=4).idempotency_key == "TE-9#v4"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"hours": Decimal(0)}, "greater than 0"),
        ({"hours": Decimal("24.01")}, "less than or equal to 24"),
        ({"hours": Decimal("NaN")}, "finite"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"psa_id": "TE 1001"}, "pattern"),
        ({"worker_id": "W/17"}, "pattern"),
        ({"approved_at": dt.datetime(2026, 11, 30, 22, 15)}, "timezone"),
        ({"approved_at": None}, "approved_at"),
        ({"surprise": 1}, "extra"),
    ],
)
def test_given_an_invalid_time_entry_when_validated_then_it_is_refused(override, fragment):
    with pytest.raises(ValidationError, match=fragment):
        time_entry(**override)


@pytest.mark.parametrize("status", [ApprovalStatus.SUBMITTED, ApprovalStatus.WITHDRAWN])
def test_entries_not_approved_need_no_approval_instant(status):
    assert time_entry(approval_status=status, approved_at=None).approved_at is None


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"gross": money("0.00")}, "positive"),
        ({"gross": money("-12.00")}, "positive"),
        ({"supplier_country": "USA"}, "pattern"),
        ({"category": "champagne"}, "category"),
    ],
)
def test_given_an_invalid_expense_line_when_validated_then_it_is_refused(override, fragment):
    with pytest.raises(ValidationError, match=fragment):
        expense_line(**override)


def test_entries_are_immutable():
    with pytest.raises(ValidationError):
        time_entry().hours = Decimal(1)


def test_a_period_cannot_end_before_it_starts():
    with pytest.raises(ValidationError, match="before it starts"):
        AccountingPeriod.model_validate(
            month_period(2026, 11).model_dump() | {"end_date": dt.date(2026, 10, 1)}
        )


def test_calendar_sorts_its_periods():
    calendar = AccountingCalendar(
        legal_entity_code="US01", periods=(month_period(2026, 12), month_period(2026, 11))
    )
    assert [p.name for p in calendar.periods] == ["2026-11", "2026-12"]


def test_calendar_refuses_overlapping_periods():
    quarter = month_period(2026, 10).model_dump() | {"name": "2026-Q4", "end_date": dt.date(2026, 12, 31)}
    with pytest.raises(ValidationError, match="overlap"):
        AccountingCalendar(legal_entity_code="US01", periods=(quarter, month_period(2026, 11)))


def test_calendar_refuses_another_entitys_periods():
    with pytest.raises(ValidationError, match="UK01"):
        AccountingCalendar(legal_entity_code="US01", periods=(month_period(2026, 11, entity_code="UK01"),))


def test_calendar_finds_the_period_of_a_date_and_none_in_a_gap():
    calendar = AccountingCalendar(
        legal_entity_code="US01", periods=(month_period(2026, 10), month_period(2026, 12))
    )
    assert calendar.period_for(dt.date(2026, 12, 31)).name == "2026-12"
    assert calendar.period_for(dt.date(2026, 11, 15)) is None


@pytest.mark.parametrize(
    ("status", "closes_at", "now", "is_open"),
    [
        (PeriodStatus.OPEN, None, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), True),
        (PeriodStatus.CLOSED, None, dt.datetime(2026, 11, 2, tzinfo=dt.UTC), False),
        (
            PeriodStatus.OPEN,
            dt.datetime(2026, 12, 3, 18, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 3, 17, 59, 59, 999999, tzinfo=dt.UTC),
            True,
        ),
        (
            PeriodStatus.OPEN,
            dt.datetime(2026, 12, 3, 18, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 3, 18, tzinfo=dt.UTC),
            False,
        ),
    ],
)
def test_a_period_is_open_until_closed_or_its_close_instant(status, closes_at, now, is_open):
    assert month_period(2026, 11, status=status, closes_at=closes_at).is_open_at(now) is is_open


def test_policy_amounts_share_one_currency():
    with pytest.raises(ValidationError, match="one currency"):
        posting_policy(expense_limits={ExpenseCategory.MEALS: money(100, "EUR")})


def test_policy_refuses_negative_limits():
    with pytest.raises(ValidationError, match="negative"):
        posting_policy(receipt_required_above=money(-1))


def test_policy_by_default_needs_no_receipt_for_mileage_and_a_task_for_billable_time():
    policy = posting_policy()
    assert policy.receipt_exempt_categories == frozenset({ExpenseCategory.MILEAGE})
    assert policy.billable_requires_task and policy.currency == "USD"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"regime": TaxRegime.NONE}, "zero rate"),
        ({"reverse_charge": True}, "reverse_charge_code"),
        ({"rate": Decimal(1)}, "less than 1"),
        ({"recoverable_share": Decimal("1.01")}, "less than or equal to 1"),
        ({"recoverable_share": Decimal("NaN")}, "finite"),
    ],
)
def test_inconsistent_tax_rules_are_refused(override, fragment):
    with pytest.raises(ValidationError, match=fragment):
        tax_rule(**override)


def _treatment(**overrides):
    fields = {
        "gross": money("120.00", "GBP"),
        "net": money("100.00", "GBP"),
        "tax": money("20.00", "GBP"),
        "rate": Decimal("0.2"),
        "recoverable_tax": money("20.00", "GBP"),
        "non_recoverable_tax": money("0.00", "GBP"),
        "reverse_charge": False,
        "kind": TaxKind.DOMESTIC,
        "regime": TaxRegime.VAT,
        "code": "GB-S20",
    }
    return TaxTreatment(**(fields | overrides))


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"net": money("100.01", "GBP")}, "gross"),
        ({"recoverable_tax": money("19.99", "GBP")}, "add up to the tax"),
        ({"tax": money("20.00", "USD")}, "currency"),
        ({"reverse_charge": True}, "gross"),
    ],
)
def test_a_tax_treatment_that_does_not_add_up_cannot_exist(override, fragment):
    with pytest.raises(ValidationError, match=fragment):
        _treatment(**override)


def test_tax_treatment_cost_is_net_plus_non_recoverable_tax():
    treatment = _treatment(recoverable_tax=money("5.00", "GBP"), non_recoverable_tax=money("15.00", "GBP"))
    assert treatment.cost == money("115.00", "GBP")


def test_a_decision_to_post_names_its_period_and_date():
    with pytest.raises(ValidationError, match="period and the posting date"):
        PostingDecision(
            action=PostingAction.POST,
            basis=PostingBasis.OPEN_PERIOD,
            original_date=dt.date(2026, 11, 30),
            reason="x",
        )


@pytest.mark.parametrize(
    ("currency", "unit", "amount", "rounded"),
    [
        ("USD", Decimal("0.01"), "10.005", "10.01"),
        ("JPY", Decimal("1"), "1234.5", "1235"),
        ("KWD", Decimal("0.001"), "1.2345", "1.235"),
    ],
)
def test_money_rounds_half_up_to_its_currencys_minor_unit(currency, unit, amount, rounded):
    assert minor_unit(currency) == unit
    assert round_money(Money(amount=Decimal(amount), currency=currency)).amount == Decimal(rounded)


def test_calendar_builder_crosses_the_year():
    names = [p.name for p in monthly_calendar(first=(2026, 11), months=3).periods]
    assert names == ["2026-11", "2026-12", "2027-01"]
