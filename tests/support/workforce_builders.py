"""Workers, assignments and FX rates for tests, valid by default; override what a test is about."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub.model.workforce import (
    Assignment,
    CostRate,
    DayAllocation,
    FxRate,
    Placement,
    StandardCalendar,
    Worker,
    WorkerType,
)
from tests.support.builders import money


def rate(
    amount: str, currency: str = "USD", start: dt.date = dt.date(2026, 1, 1), end: dt.date | None = None
):
    return CostRate(hourly=money(amount, currency), effective_from=start, effective_to=end)


def placement(
    entity: str = "US01", start: dt.date = dt.date(2024, 1, 1), end: dt.date | None = None, **kw: Any
):
    return Placement(
        legal_entity_code=entity,
        cost_centre=kw.get("cost_centre", "CC-100"),
        department=kw.get("department", "Delivery"),
        effective_from=start,
        effective_to=end,
    )


def worker(**overrides: Any) -> Worker:
    fields: dict[str, Any] = {
        "hcm_id": "E1001",
        "worker_type": WorkerType.EMPLOYEE,
        "display_name": "Consultant 1001",
        "calendar": StandardCalendar(hours_per_day=Decimal(8), country="US"),
        "hire_date": dt.date(2024, 1, 1),
        "placements": (placement(),),
        "cost_rates": (rate("80.00", start=dt.date(2024, 1, 1)),),
    }
    fields.update(overrides)
    return Worker(**fields)


def assignment(
    worker_id: str = "E1001", days: dict[dt.date, str] | None = None, **overrides: Any
) -> Assignment:
    allocations = tuple(DayAllocation(day=d, hours=Decimal(h)) for d, h in sorted((days or {}).items()))
    fields: dict[str, Any] = {
        "psa_assignment_id": f"A-{worker_id}",
        "psa_project_id": "880001",
        "worker_hcm_id": worker_id,
        "days": allocations,
    }
    fields.update(overrides)
    return Assignment(**fields)


def weekdays(start: dt.date, end: dt.date, hours: str = "8") -> dict[dt.date, str]:
    """Every weekday from ``start`` to ``end`` (inclusive) at ``hours``."""
    days, day = {}, start
    while day <= end:
        if day.isoweekday() <= 5:
            days[day] = hours
        day += dt.timedelta(days=1)
    return days


def fx(base: str, quote: str, value: str, start: dt.date = dt.date(2026, 1, 1)) -> FxRate:
    return FxRate(base=base, quote=quote, rate=Decimal(value), effective_from=start)
