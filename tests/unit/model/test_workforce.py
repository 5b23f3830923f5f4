"""The canonical worker: effective-dated cost rates and placements, leavers, calendars."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hub.model.workforce import StandardCalendar
from tests.support.workforce_builders import placement, rate, worker


def test_a_transfer_moves_legal_entity_and_cost_centre_from_its_effective_date():
    moved = worker(
        placements=(
            placement("UK01", start=dt.date(2027, 2, 1), cost_centre="CC-UK-7"),
            placement("US01", start=dt.date(2024, 1, 1), end=dt.date(2027, 1, 31)),
        )
    )
    assert moved.placement_on(dt.date(2027, 1, 31)).legal_entity_code == "US01"
    after = moved.placement_on(dt.date(2027, 2, 1))
    assert (after.legal_entity_code, after.cost_centre) == ("UK01", "CC-UK-7")
    assert [p.effective_from for p in moved.placements] == [dt.date(2024, 1, 1), dt.date(2027, 2, 1)]


def test_overlapping_cost_rates_are_refused_naming_both_starts():
    with pytest.raises(ValidationError) as caught:
        worker(cost_rates=(rate("80", start=dt.date(2026, 1, 1)), rate("90", start=dt.date(2026, 6, 1))))
    assert "2026-01-01" in str(caught.value) and "2026-06-01" in str(caught.value)


def test_a_rate_ending_before_it_starts_and_an_end_date_before_hire_are_refused():
    with pytest.raises(ValidationError):
        worker(cost_rates=(rate("80", start=dt.date(2026, 6, 1), end=dt.date(2026, 5, 31)),))
    with pytest.raises(ValidationError):
        worker(end_date=dt.date(2023, 12, 31))


def test_a_leaver_is_active_through_the_last_day_worked_and_not_after():
    leaver = worker(end_date=dt.date(2026, 12, 31))
    assert leaver.active_on(dt.date(2026, 12, 31)) and not leaver.active_on(dt.date(2027, 1, 1))
    assert not leaver.active_on(dt.date(2023, 12, 31))  # before the hire date


def test_the_calendar_skips_weekends_and_the_countrys_holidays():
    calendar = StandardCalendar(hours_per_day=Decimal("7.5"), country="GB", holidays=(dt.date(2026, 12, 25),))
    assert not calendar.works_on(dt.date(2026, 12, 25))  # a Friday, a holiday
    assert not calendar.works_on(dt.date(2026, 12, 26))  # Saturday
    assert calendar.works_on(dt.date(2026, 12, 28))
    with pytest.raises(ValidationError):
        StandardCalendar(hours_per_day=Decimal(8), country="GB", working_days=(0, 1))


def test_the_version_changes_with_any_change_and_not_with_the_change_instant_alone():
    base = worker()
    assert base.version == worker().version
    assert base.version != worker(skills=("sap-fico",)).version
    stamped = worker(changed_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert stamped.version == base.version
