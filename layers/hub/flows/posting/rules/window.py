"""The posting window: which accounting period an entry posts into, on which date, or why it is held.

1. The transaction date is the entry's local date (a ``date`` as given; an instant is converted to its date
   in the entity's timezone: 2026-12-01 03:00 UTC is still 30 November in America/Los_Angeles).
2. The period of the entity's calendar containing that date; none -> hold (``no_period``).
3. Open at ``now`` (status open and ``now`` before its close instant, if any) -> post on the date itself.
4. Closed -> as the entity's policy says: ``next_open``: post into the first later period open at ``now``, on
   its first day, keeping the original date (none open -> hold, ``no_open_period``); ``hold``: hold until
   the period reopens (``period_closed``).
Never posts into a period that is closed at ``now``. Close instants are shown in the entity's timezone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import DataValidationError
from hub.model import (
    AccountingCalendar,
    AccountingPeriod,
    ClosedPeriodAction,
    LegalEntity,
    PeriodStatus,
    PostingAction,
    PostingBasis,
    PostingDecision,
    PostingPolicy,
)


def entity_zone(entity: LegalEntity) -> ZoneInfo:
    try:
        return ZoneInfo(entity.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataValidationError(
            f"legal entity {entity.code} has an unknown timezone {entity.timezone!r}",
            problems=[{"field": "timezone", "problem": f"{entity.timezone!r} is not an IANA timezone"}],
            code="UNKNOWN_TIMEZONE",
        ) from exc


def _require_aware(instant: dt.datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must carry a timezone, got {instant.isoformat()}")


def local_date(when: dt.date | dt.datetime, entity: LegalEntity) -> dt.date:
    """A date as it is; an aware instant as the calendar date it falls on in the entity's timezone."""
    if isinstance(when, dt.datetime):
        _require_aware(when, "an entry instant")
        return when.astimezone(entity_zone(entity)).date()
    return when


def local_instant(entity: LegalEntity, day: dt.date, at: dt.time = dt.time(0)) -> dt.datetime:
    """The instant the entity's wall clock shows ``at`` on ``day`` (DST-aware), e.g. a period's cut-off."""
    return dt.datetime.combine(day, at, tzinfo=entity_zone(entity))


def _closed_how(period: AccountingPeriod, entity: LegalEntity) -> str:
    if period.status is PeriodStatus.CLOSED or period.closes_at is None:
        return "closed"
    local = period.closes_at.astimezone(entity_zone(entity))
    return f"closed since its cut-off at {local:%Y-%m-%d %H:%M} {entity.timezone}"


def posting_decision(
    entry_date: dt.date | dt.datetime,
    now_utc: dt.datetime,
    entity: LegalEntity,
    calendar: AccountingCalendar,
    policy: PostingPolicy,
) -> PostingDecision:
    """Where and when an entry dated ``entry_date`` posts for ``entity`` at ``now_utc``, or why it is held."""
    _require_aware(now_utc, "now_utc")
    for name, code in (("calendar", calendar.legal_entity_code), ("policy", policy.legal_entity_code)):
        if code != entity.code:
            raise ValueError(f"{name} of {code} passed for legal entity {entity.code}")
    day = local_date(entry_date, entity)
    period = calendar.period_for(day)
    if period is None:
        return PostingDecision(
            action=PostingAction.HOLD,
            basis=PostingBasis.NO_PERIOD,
            original_date=day,
            reason=f"No accounting period of {entity.code} covers {day}; held until the period is set up",
        )
    if period.is_open_at(now_utc):
        return PostingDecision(
            action=PostingAction.POST,
            basis=PostingBasis.OPEN_PERIOD,
            period=period.name,
            posting_date=day,
            original_date=day,
            reason=f"{day} falls in {entity.code}'s open period {period.name}",
        )
    closed = f"Period {period.name} of {entity.code} is {_closed_how(period, entity)}"
    if policy.closed_period is ClosedPeriodAction.HOLD:
        return PostingDecision(
            action=PostingAction.HOLD,
            basis=PostingBasis.PERIOD_CLOSED,
            period=period.name,
            original_date=day,
            reason=f"{closed}; {entity.code} holds entries dated {day} until the period reopens",
        )
    following = calendar.next_open_after(period, now_utc)
    if following is None:
        return PostingDecision(
            action=PostingAction.HOLD,
            basis=PostingBasis.NO_OPEN_PERIOD,
            period=period.name,
            original_date=day,
            reason=f"{closed} and no later period is open; the entry dated {day} is held until one opens",
        )
    return PostingDecision(
        action=PostingAction.POST,
        basis=PostingBasis.NEXT_OPEN_PERIOD,
        period=following.name,
        posting_date=following.start_date,
        original_date=day,
        reason=f"{closed}; posted into the next open period {following.name} on {following.start_date}, "
        f"keeping the transaction date {day}",
    )
