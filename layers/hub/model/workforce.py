"""Canonical workforce entities (v1): the worker as the HCM owns it, effective-dated.

A worker's cost rates and placements (legal entity, cost centre, department) each form a timeline: periods
with an ``effective_from`` and an inclusive ``effective_to`` (None: open-ended), sorted, never overlapping.
What holds on a day is read with :meth:`Worker.rate_on` and :meth:`Worker.placement_on`, so a rate change
effective mid-month, or a transfer, applies from its day exactly, across month and year boundaries alike.

No personal data beyond what staffing needs: the HCM id, a display name (never logged), the manager's HCM id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Protocol, TypeVar

from pydantic import Field, StringConstraints, field_validator, model_validator

from hub.model.canonical import CountryCode, CurrencyCode, EntityCode, FiniteDecimal, Money, Name, Strict

HcmId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class WorkerType(StrEnum):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"


class _Dated(Protocol):
    @property
    def effective_from(self) -> dt.date: ...

    @property
    def effective_to(self) -> dt.date | None: ...


D = TypeVar("D", bound=_Dated)


def _covers(period: _Dated, day: dt.date) -> bool:
    return period.effective_from <= day and (period.effective_to is None or day <= period.effective_to)


def _timeline(periods: Sequence[D], what: str) -> tuple[D, ...]:
    """Sorted by start; refuses an overlap or a period ending before it starts."""
    ordered = tuple(sorted(periods, key=lambda p: p.effective_from))
    for period in ordered:
        if period.effective_to is not None and period.effective_to < period.effective_from:
            raise ValueError(
                f"a {what} ends ({period.effective_to}) before it starts ({period.effective_from})"
            )
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
            raise ValueError(
                f"{what}s overlap: one from {earlier.effective_from} runs into the one from {later.effective_from}"
            )
    return ordered


def on(periods: Sequence[D], day: dt.date) -> D | None:
    """The period of a timeline covering ``day``, or None."""
    return next((p for p in periods if _covers(p, day)), None)


class CostRate(Strict):
    """What an hour of the worker costs the firm, from ``effective_from`` to ``effective_to`` (inclusive)."""

    hourly: Money
    effective_from: dt.date
    effective_to: dt.date | None = None


class Placement(Strict):
    """Where the worker sits in the organisation for a period: a transfer starts a new placement."""

    legal_entity_code: EntityCode
    cost_centre: Code
    department: Code
    effective_from: dt.date
    effective_to: dt.date | None = None


class StandardCalendar(Strict):
    """The worker's working time: hours a working day, ISO weekdays worked (1 = Monday), and the public
    holidays of the country the worker works in."""

    hours_per_day: FiniteDecimal = Field(gt=0, le=24)
    working_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    country: CountryCode
    holidays: tuple[dt.date, ...] = ()

    @model_validator(mode="after")
    def _weekdays(self) -> StandardCalendar:
        if not self.working_days or any(d < 1 or d > 7 for d in self.working_days):
            raise ValueError("working_days are ISO weekdays, 1 (Monday) to 7 (Sunday), at least one")
        return self

    def works_on(self, day: dt.date) -> bool:
        return day.isoweekday() in self.working_days and day not in self.holidays


class Worker(Strict):
    hcm_id: HcmId
    worker_type: WorkerType
    display_name: Name
    manager_hcm_id: HcmId | None = None
    skills: tuple[Code, ...] = ()
    calendar: StandardCalendar
    availability: FiniteDecimal = Field(default=Decimal(1), ge=0, le=1)  # share of a standard day staffable
    hire_date: dt.date
    end_date: dt.date | None = None  # the last day worked (a leaver); None while employed
    placements: tuple[Placement, ...] = Field(min_length=1)
    cost_rates: tuple[CostRate, ...] = ()
    changed_at: dt.datetime | None = None  # the HCM's last change to the worker (aware), for sync watermarks

    @field_validator("placements")
    @classmethod
    def _placement_timeline(cls, value: tuple[Placement, ...]) -> tuple[Placement, ...]:
        return _timeline(value, "placement")

    @field_validator("cost_rates")
    @classmethod
    def _rate_timeline(cls, value: tuple[CostRate, ...]) -> tuple[CostRate, ...]:
        return _timeline(value, "cost rate")

    @model_validator(mode="after")
    def _dates(self) -> Worker:
        if self.end_date is not None and self.end_date < self.hire_date:
            raise ValueError(f"the end date {self.end_date} is before the hire date {self.hire_date}")
        if self.changed_at is not None and self.changed_at.tzinfo is None:
            raise ValueError("changed_at must be timezone-aware")
        return self

    def rate_on(self, day: dt.date) -> CostRate | None:
        return on(self.cost_rates, day)

    def placement_on(self, day: dt.date) -> Placement | None:
        return on(self.placements, day)

    def active_on(self, day: dt.date) -> bool:
        """Staffable in the PSA: hired and not yet gone (a leaver is deactivated after the end date)."""
        return self.hire_date <= day and (self.end_date is None or day <= self.end_date)

    @property
    def version(self) -> str:
        """A business version for idempotency keys: a digest of what the hub keeps of the worker, so a
        re-run of an unchanged worker is the same version and any change is a new one."""
        content = self.model_dump_json(exclude={"changed_at"}).encode()
        return hashlib.sha256(content).hexdigest()[:16]


class DayAllocation(Strict):
    day: dt.date
    hours: FiniteDecimal = Field(ge=0, le=24)


class Assignment(Strict):
    """One worker on one project (a PSA assignment), with the hours allocated on each day."""

    psa_assignment_id: str = Field(min_length=1)
    psa_project_id: str = Field(min_length=1)
    worker_hcm_id: HcmId
    days: tuple[DayAllocation, ...] = ()

    @property
    def hours(self) -> Decimal:
        return sum((d.hours for d in self.days), Decimal(0))


class FxRate(Strict):
    """One unit of ``base`` is ``rate`` units of ``quote`` from ``effective_from`` until the next rate."""

    base: CurrencyCode
    quote: CurrencyCode
    rate: FiniteDecimal = Field(gt=0)
    effective_from: dt.date
