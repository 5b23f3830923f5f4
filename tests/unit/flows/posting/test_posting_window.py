import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import DataValidationError
from hub.flows.posting.rules import local_instant, posting_decision
from hub.model import (
    AccountingCalendar,
    ClosedPeriodAction,
    LegalEntity,
    PostingAction,
    PostingBasis,
)
from tests.support.time_expense_builders import ENTITIES, entity, monthly_calendar, posting_policy

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
NOV_28 = dt.date(2026, 11, 28)
HOLD = ClosedPeriodAction.HOLD
NEXT = ClosedPeriodAction.NEXT_OPEN


def decide(when, *, code="US01", now=NOW, calendar=None, closed_period=NEXT, **calendar_args):
    calendar = calendar or monthly_calendar(code, **calendar_args)
    policy = posting_policy(code, closed_period=closed_period)
    return posting_decision(when, now, entity(code), calendar, policy)


# --- which period, which date -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "closed", "closed_period", "action", "basis", "period", "posting_date"),
    [
        ("open period", (), NEXT, "post", "open_period", "2026-11", NOV_28),
        (
            "closed, next open",
            ("2026-11",),
            NEXT,
            "post",
            "next_open_period",
            "2026-12",
            dt.date(2026, 12, 1),
        ),
        ("closed, hold", ("2026-11",), HOLD, "hold", "period_closed", "2026-11", None),
        (
            "two closed, skip to the year after",
            ("2026-11", "2026-12"),
            NEXT,
            "post",
            "next_open_period",
            "2027-01",
            dt.date(2027, 1, 1),
        ),
        (
            "closed and nothing later open",
            ("2026-11", "2026-12", "2027-01", "2027-02"),
            NEXT,
            "hold",
            "no_open_period",
            "2026-11",
            None,
        ),
        (
            "an earlier closed period does not matter",
            ("2026-10",),
            NEXT,
            "post",
            "open_period",
            "2026-11",
            NOV_28,
        ),
        (
            "a later closed period does not matter",
            ("2026-12",),
            HOLD,
            "post",
            "open_period",
            "2026-11",
            NOV_28,
        ),
    ],
)
def test_given_a_calendar_when_an_entry_is_dated_in_it_then_it_posts_or_holds_as_configured(
    case, closed, closed_period, action, basis, period, posting_date
):
    decision = decide(NOV_28, closed=closed, closed_period=closed_period)
    assert (decision.action, decision.basis) == (PostingAction(action), PostingBasis(basis)), case
    assert (decision.period, decision.posting_date) == (period, posting_date), case
    assert decision.original_date == NOV_28, case


def test_an_entry_moved_to_the_next_open_period_keeps_its_original_date_and_says_so():
    decision = decide(NOV_28, closed=("2026-11",))
    assert decision.original_date == NOV_28
    assert decision.reason == (
        "Period 2026-11 of US01 is closed; posted into the next open period 2026-12 on 2026-12-01, "
        "keeping the transaction date 2026-11-28"
    )


def test_an_entry_held_for_a_closed_period_says_until_when():
    decision = decide(NOV_28, closed=("2026-11",), closed_period=HOLD)
    assert (
        decision.reason
        == "Period 2026-11 of US01 is closed; US01 holds entries dated 2026-11-28 until the period reopens"
    )


def test_a_held_entry_posts_in_its_own_period_once_it_reopens():
    held = decide(NOV_28, closed=("2026-11",), closed_period=HOLD)
    reopened = decide(NOV_28, closed=(), closed_period=HOLD)
    assert held.action is PostingAction.HOLD
    assert (reopened.action, reopened.period, reopened.posting_date) == (
        PostingAction.POST,
        "2026-11",
        NOV_28,
    )


def test_with_no_open_period_at_all_the_entry_is_held_with_a_reason():
    decision = decide(NOV_28, closed=("2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02"))
    assert decision.action is PostingAction.HOLD and decision.basis is PostingBasis.NO_OPEN_PERIOD
    assert "no later period is open" in decision.reason


@pytest.mark.parametrize("day", [dt.date(2026, 8, 31), dt.date(2027, 3, 1)])
def test_a_date_no_period_covers_is_held_until_the_period_is_set_up(day):
    decision = decide(day)
    assert (decision.action, decision.basis, decision.period) == (
        PostingAction.HOLD,
        PostingBasis.NO_PERIOD,
        None,
    )
    assert decision.reason == f"No accounting period of US01 covers {day}; held until the period is set up"


def test_a_gap_in_the_calendar_is_held_not_moved():
    calendar = monthly_calendar()
    gap = AccountingCalendar(
        legal_entity_code="US01", periods=tuple(p for p in calendar.periods if p.name != "2026-11")
    )
    assert decide(NOV_28, calendar=gap).basis is PostingBasis.NO_PERIOD


@pytest.mark.parametrize(
    ("day", "period"),
    [
        (dt.date(2026, 11, 1), "2026-11"),
        (dt.date(2026, 11, 30), "2026-11"),
        (dt.date(2026, 12, 31), "2026-12"),
        (dt.date(2027, 1, 1), "2027-01"),
    ],
)
def test_first_and_last_days_belong_to_their_own_period(day, period):
    assert decide(day).period == period


# --- the entity's own timezone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "code", "instant", "local_day"),
    [
        (
            "LA: 03:00 UTC on 1 Dec is still 30 Nov",
            "US01",
            dt.datetime(2026, 12, 1, 3, tzinfo=UTC),
            (2026, 11, 30),
        ),
        (
            "LA: last second of November",
            "US01",
            dt.datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC),
            (2026, 11, 30),
        ),
        ("LA: local midnight, 1 Dec", "US01", dt.datetime(2026, 12, 1, 8, tzinfo=UTC), (2026, 12, 1)),
        ("London: midnight GMT", "UK01", dt.datetime(2026, 12, 1, 0, tzinfo=UTC), (2026, 12, 1)),
        (
            "London: a second before",
            "UK01",
            dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
            (2026, 11, 30),
        ),
        (
            "Tokyo: 1 Dec already at 15:00 UTC",
            "JP01",
            dt.datetime(2026, 11, 30, 15, tzinfo=UTC),
            (2026, 12, 1),
        ),
        ("Tokyo: a second before", "JP01", dt.datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC), (2026, 11, 30)),
        # DST change days
        (
            "LA: DST ends on 1 Nov, midnight is still PDT",
            "US01",
            dt.datetime(2026, 11, 1, 7, tzinfo=UTC),
            (2026, 11, 1),
        ),
        (
            "LA: 31 Oct until 06:59:59 UTC",
            "US01",
            dt.datetime(2026, 11, 1, 6, 59, 59, tzinfo=UTC),
            (2026, 10, 31),
        ),
        (
            "London: April starts at 23:00 UTC in BST",
            "UK01",
            dt.datetime(2026, 3, 31, 23, tzinfo=UTC),
            (2026, 4, 1),
        ),
        (
            "London: still 31 March at 22:59:59 UTC",
            "UK01",
            dt.datetime(2026, 3, 31, 22, 59, 59, tzinfo=UTC),
            (2026, 3, 31),
        ),
        (
            "London: 29 March, the day BST starts",
            "UK01",
            dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            (2026, 3, 29),
        ),
        (
            "London: 25 Oct, the day BST ends",
            "UK01",
            dt.datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
            (2026, 10, 25),
        ),
        # year boundary
        (
            "LA: New Year's Eve until 08:00 UTC",
            "US01",
            dt.datetime(2027, 1, 1, 7, 59, 59, tzinfo=UTC),
            (2026, 12, 31),
        ),
        ("LA: New Year", "US01", dt.datetime(2027, 1, 1, 8, tzinfo=UTC), (2027, 1, 1)),
        ("Tokyo: New Year at 15:00 UTC", "JP01", dt.datetime(2026, 12, 31, 15, tzinfo=UTC), (2027, 1, 1)),
        (
            "an instant in another offset",
            "US01",
            dt.datetime(2026, 12, 1, 8, 30, tzinfo=ZoneInfo("Europe/Paris")),
            (2026, 11, 30),
        ),
    ],
)
def test_given_an_instant_when_dated_then_its_date_is_the_entitys_local_date(case, code, instant, local_day):
    day = dt.date(*local_day)
    decision = decide(
        instant, code=code, first=(2026, 1), months=15, now=dt.datetime(2027, 1, 15, tzinfo=UTC)
    )
    assert decision.original_date == day, case
    assert decision.period == f"{day:%Y-%m}" and decision.posting_date == day, case


@pytest.mark.parametrize(
    ("code", "now", "posts_into"),
    [
        ("US01", dt.datetime(2026, 12, 1, 3, tzinfo=UTC), "2026-11"),  # 19:00 on 30 Nov in Los Angeles
        ("US01", dt.datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC), "2026-11"),
        ("US01", dt.datetime(2026, 12, 1, 8, tzinfo=UTC), "2026-12"),
        ("UK01", dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-11"),
        ("UK01", dt.datetime(2026, 12, 1, 3, tzinfo=UTC), "2026-12"),  # 03:00 on 1 Dec in London
        ("JP01", dt.datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC), "2026-11"),
        ("JP01", dt.datetime(2026, 11, 30, 15, tzinfo=UTC), "2026-12"),  # midnight in Tokyo
    ],
)
def test_given_a_month_end_cut_off_at_local_midnight_when_now_passes_it_in_the_entitys_zone_then_it_moves(
    code, now, posts_into
):
    cut_off = local_instant(entity(code), dt.date(2026, 12, 1))
    decision = decide(dt.date(2026, 11, 30), code=code, now=now, closes_at={"2026-11": cut_off})
    assert decision.action is PostingAction.POST and decision.period == posts_into


@pytest.mark.parametrize(
    ("case", "code", "day", "at", "utc"),
    [
        ("LA DST starts 8 Mar: 18:00 is PDT", "US01", (2026, 3, 8), (18, 0), (2026, 3, 9, 1, 0)),
        ("LA DST ends 1 Nov: 18:00 is PST", "US01", (2026, 11, 1), (18, 0), (2026, 11, 2, 2, 0)),
        ("LA midnight before DST ends is PDT", "US01", (2026, 11, 1), (0, 0), (2026, 11, 1, 7, 0)),
        ("London BST starts 29 Mar: 18:00 is BST", "UK01", (2026, 3, 29), (18, 0), (2026, 3, 29, 17, 0)),
        ("London BST ends 25 Oct: midnight is BST", "UK01", (2026, 10, 25), (0, 0), (2026, 10, 24, 23, 0)),
        ("London BST ends 25 Oct: 18:00 is GMT", "UK01", (2026, 10, 25), (18, 0), (2026, 10, 25, 18, 0)),
        ("Tokyo has no DST", "JP01", (2026, 3, 8), (18, 0), (2026, 3, 8, 9, 0)),
    ],
)
def test_given_a_cut_off_on_a_dst_change_day_when_the_period_closes_then_it_follows_the_local_clock(
    case, code, day, at, utc
):
    cut_off = local_instant(entity(code), dt.date(*day), dt.time(*at))
    assert cut_off == dt.datetime(*utc, tzinfo=UTC), case
    last_day_before = dt.date(*day).replace(day=1) - dt.timedelta(days=1)  # in the month before
    period = f"{last_day_before:%Y-%m}"
    calendar = monthly_calendar(code, first=(2026, 1), months=14, closes_at={period: cut_off})
    just_before = decide(
        last_day_before, code=code, calendar=calendar, now=cut_off - dt.timedelta(microseconds=1)
    )
    at_cut_off = decide(last_day_before, code=code, calendar=calendar, now=cut_off)
    assert (just_before.period, just_before.basis) == (period, PostingBasis.OPEN_PERIOD), case
    assert at_cut_off.basis is PostingBasis.NEXT_OPEN_PERIOD and at_cut_off.period != period, case


def test_given_a_period_closing_mid_run_when_the_same_entry_arrives_before_and_after_then_it_moves():
    cut_off = local_instant(entity("US01"), dt.date(2026, 12, 3), dt.time(18))
    calendar = monthly_calendar(closes_at={"2026-11": cut_off})
    before = decide(NOV_28, calendar=calendar, now=dt.datetime(2026, 12, 4, 1, 59, 59, tzinfo=UTC))
    after = decide(NOV_28, calendar=calendar, now=dt.datetime(2026, 12, 4, 2, tzinfo=UTC))
    held = decide(NOV_28, calendar=calendar, now=dt.datetime(2026, 12, 4, 2, tzinfo=UTC), closed_period=HOLD)
    assert (before.period, before.posting_date) == ("2026-11", NOV_28)
    assert (after.period, after.posting_date, after.original_date) == (
        "2026-12",
        dt.date(2026, 12, 1),
        NOV_28,
    )
    assert after.reason.startswith(
        "Period 2026-11 of US01 is closed since its cut-off at 2026-12-03 18:00 America/Los_Angeles;"
    )
    assert held.action is PostingAction.HOLD and held.period == "2026-11"


def test_a_cut_off_in_the_past_of_a_period_the_erp_still_shows_open_closes_it():
    calendar = monthly_calendar(closes_at={"2026-12": dt.datetime(2026, 12, 1, tzinfo=UTC)})
    assert decide(dt.date(2026, 12, 15), calendar=calendar).period == "2027-01"


# --- wiring mistakes fail loudly ---------------------------------------------------------------------


def test_now_must_carry_a_timezone():
    with pytest.raises(ValueError, match="now_utc"):
        decide(NOV_28, now=dt.datetime(2026, 12, 2, 17))


def test_an_instant_without_a_timezone_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        decide(dt.datetime(2026, 11, 28, 12))


@pytest.mark.parametrize("which", ["calendar", "policy"])
def test_another_entitys_calendar_or_policy_is_refused(which):
    calendar = monthly_calendar("UK01" if which == "calendar" else "US01")
    policy = posting_policy("UK01" if which == "policy" else "US01")
    with pytest.raises(ValueError, match=which):
        posting_decision(NOV_28, NOW, entity("US01"), calendar, policy)


def test_an_unknown_timezone_is_a_data_error_naming_the_entity():
    broken = LegalEntity(
        code="US01", name="x", country="US", functional_currency="USD", timezone="Mars/Olympus"
    )
    with pytest.raises(DataValidationError) as caught:
        posting_decision(
            dt.datetime(2026, 11, 28, tzinfo=UTC), NOW, broken, monthly_calendar(), posting_policy()
        )
    assert caught.value.code == "UNKNOWN_TIMEZONE"


# --- properties -----------------------------------------------------------------------------------------

PERIOD_NAMES = [
    f"{y}-{m:02d}" for y, m in [(2026, 9), (2026, 10), (2026, 11), (2026, 12), (2027, 1), (2027, 2)]
]
instants = st.datetimes(
    min_value=dt.datetime(2026, 8, 1), max_value=dt.datetime(2027, 4, 1), timezones=st.just(UTC)
)


@given(
    code=st.sampled_from(sorted(ENTITIES)),
    closed=st.sets(st.sampled_from(PERIOD_NAMES)),
    cut_offs=st.dictionaries(st.sampled_from(PERIOD_NAMES), instants, max_size=6),
    day=st.dates(min_value=dt.date(2026, 8, 15), max_value=dt.date(2027, 3, 15)),
    now=instants,
    closed_period=st.sampled_from(list(ClosedPeriodAction)),
)
def test_property_never_posts_into_a_closed_period_and_always_keeps_the_original_date(
    code, closed, cut_offs, day, now, closed_period
):
    calendar = monthly_calendar(code, closed=tuple(closed), closes_at=cut_offs)
    decision = decide(day, code=code, now=now, calendar=calendar, closed_period=closed_period)
    assert decision.original_date == day
    own = calendar.period_for(day)
    by_name = {p.name: p for p in calendar.periods}
    if decision.action is PostingAction.POST:
        target = by_name[decision.period]
        assert target.is_open_at(now) and target.contains(decision.posting_date)
        assert decision.posting_date >= day
        if decision.basis is PostingBasis.OPEN_PERIOD:
            assert target is own and decision.posting_date == day
        else:
            assert decision.basis is PostingBasis.NEXT_OPEN_PERIOD and closed_period is NEXT
            assert not own.is_open_at(now) and decision.posting_date == target.start_date
            skipped = [p for p in calendar.periods if own.end_date < p.start_date < target.start_date]
            assert not any(p.is_open_at(now) for p in skipped)
    elif own is None:
        assert decision.basis is PostingBasis.NO_PERIOD and decision.period is None
    else:
        assert not own.is_open_at(now) and decision.period == own.name
        expected = PostingBasis.PERIOD_CLOSED if closed_period is HOLD else PostingBasis.NO_OPEN_PERIOD
        assert decision.basis is expected
        if expected is PostingBasis.NO_OPEN_PERIOD:
            assert not any(p.is_open_at(now) for p in calendar.periods if p.start_date > own.end_date)


@given(code=st.sampled_from(sorted(ENTITIES)), instant=instants)
def test_property_an_instant_is_always_dated_in_the_entitys_own_zone(code, instant):
    decision = decide(instant, code=code, first=(2026, 7), months=12, now=NOW)
    local = instant.astimezone(ZoneInfo(ENTITIES[code].timezone)).date()
    assert decision.original_date == local
    assert decision.period == f"{local:%Y-%m}"
