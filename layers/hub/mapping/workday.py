"""Workday (HCM) -> the canonical worker: one row of the hub's RaaS report of worker changes.

The report (an Advanced custom report, web-service enabled, owned by the integration system user) has one row
per worker changed since its ``Changed_Since`` prompt; the columns are the report's XML aliases:

- ``Employee_ID`` (employee or contingent worker ID: the hub's HCM id), ``Worker_Type`` ("Employee" /
  "Contingent Worker"), ``Worker`` (the display name), ``Manager_Employee_ID``;
- ``Skills`` and ``Working_Days``: multi-instance values, which RaaS JSON renders as one "; "-joined string;
- ``Scheduled_Weekly_Hours`` (a number as a string), ``Hire_Date``, ``Termination_Date`` (the last day worked);
- ``Organization_Assignments_group``: every organization assignment, future-dated ones included
  (``Effective_Date``, ``Company_ID``, ``Cost_Center_ID``, ``Supervisory_Organization_ID``,
  ``Location_Country_ISO_Code``): each lasts until the day before the next one;
- ``Cost_Rates_group``: the hourly cost rate history (``Amount``, ``Currency``, ``Effective_Date``,
  ``End_Date``);
- ``Last_Updated``: the moment of the worker's last change, in the tenant's time zone with its offset.

A Workday company becomes a hub legal entity through ``entities`` (company reference ID -> entity code). A row
that cannot be a worker raises :class:`DataValidationError` naming every column at fault.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from hub.errors import DataValidationError, field_problems
from hub.model import Money
from hub.model.workforce import CostRate, Placement, StandardCalendar, Worker, WorkerType

SYSTEM = "workday"
WORKER_TYPES = {"Employee": WorkerType.EMPLOYEE, "Contingent Worker": WorkerType.CONTRACTOR}
WEEKDAYS = {
    "Monday": 1,
    "Tuesday": 2,
    "Wednesday": 3,
    "Thursday": 4,
    "Friday": 5,
    "Saturday": 6,
    "Sunday": 7,
}


def multi(value: Any) -> list[str]:
    """A multi-instance value as RaaS JSON renders it ("A; B; C"), as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(";") if part.strip()]


def moment(value: Any) -> dt.datetime:
    """A RaaS moment (``2026-11-20T10:15:00.000-08:00``) as an aware instant; one without offset is refused."""
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"a moment without its offset: {value}")
    return parsed


def moment_out(instant: dt.datetime, zone: dt.tzinfo) -> str:
    """An instant as a report prompt: the tenant's local time with its offset, to the millisecond."""
    return instant.astimezone(zone).isoformat(timespec="milliseconds")


def worker_from_row(row: Mapping[str, Any], *, entities: Mapping[str, str]) -> Worker:
    problems: list[dict[str, str]] = []

    def fail(column: str, problem: str) -> None:
        problems.append({"field": column, "problem": problem})

    hcm_id = str(row.get("Employee_ID") or "")
    worker_type = WORKER_TYPES.get(str(row.get("Worker_Type")))
    if worker_type is None:
        fail("Worker_Type", f"not a worker type the hub knows: {row.get('Worker_Type')!r}")
    days = [WEEKDAYS.get(name) for name in multi(row.get("Working_Days"))]
    if not days or None in days:
        fail("Working_Days", f"not weekday names: {row.get('Working_Days')!r}")
    weekly = _decimal(row.get("Scheduled_Weekly_Hours"), "Scheduled_Weekly_Hours", fail)
    placements = _placements(row.get("Organization_Assignments_group"), entities, fail)
    rates = _rates(row.get("Cost_Rates_group"), fail)
    hire = _date(row.get("Hire_Date"), "Hire_Date", fail, required=True)
    end = _date(row.get("Termination_Date"), "Termination_Date", fail, required=False)
    changed: dt.datetime | None = None
    try:
        changed = moment(row.get("Last_Updated"))
    except (TypeError, ValueError):
        fail("Last_Updated", "not a moment with an offset")
    if problems:
        raise _unmappable(hcm_id, problems)
    working_days = tuple(sorted({d for d in days if d is not None}))
    country = placements[-1].country if placements else ""
    try:
        return Worker(
            hcm_id=hcm_id,
            worker_type=worker_type,
            display_name=str(row.get("Worker") or hcm_id),
            manager_hcm_id=row.get("Manager_Employee_ID") or None,
            skills=tuple(multi(row.get("Skills"))),
            calendar=StandardCalendar(
                hours_per_day=(weekly or Decimal(0)) / len(working_days),
                working_days=working_days,
                country=country,
            ),
            hire_date=hire,
            end_date=end,
            placements=tuple(p.placement for p in placements),
            cost_rates=tuple(rates),
            changed_at=changed,
        )
    except ValidationError as exc:
        raise _unmappable(hcm_id, field_problems(exc)) from None


class _Placed:
    def __init__(self, placement: Placement, country: str) -> None:
        self.placement, self.country = placement, country


def _placements(groups: Any, entities: Mapping[str, str], fail: Any) -> list[_Placed]:
    rows = groups if isinstance(groups, list) else []
    if not rows:
        fail("Organization_Assignments_group", "no organization assignment")
        return []
    dated = []
    for row in rows:
        start = _date(row.get("Effective_Date"), "Organization_Assignments_group.Effective_Date", fail, True)
        company = str(row.get("Company_ID") or "")
        entity = entities.get(company)
        if entity is None:
            fail(
                "Organization_Assignments_group.Company_ID",
                f"company {company!r} is not mapped to a legal entity",
            )
        if start is not None and entity is not None:
            dated.append((start, entity, row))
    dated.sort(key=lambda item: item[0])
    placed = []
    for index, (start, entity, row) in enumerate(dated):
        following = dated[index + 1][0] if index + 1 < len(dated) else None
        placed.append(
            _Placed(
                Placement(
                    legal_entity_code=entity,
                    cost_centre=str(row.get("Cost_Center_ID") or "none"),
                    department=str(row.get("Supervisory_Organization_ID") or "none"),
                    effective_from=start,
                    effective_to=following - dt.timedelta(days=1) if following else None,
                ),
                str(row.get("Location_Country_ISO_Code") or ""),
            )
        )
    return placed


def _rates(groups: Any, fail: Any) -> list[CostRate]:
    rates = []
    for row in groups if isinstance(groups, list) else []:
        amount = _decimal(row.get("Amount"), "Cost_Rates_group.Amount", fail)
        start = _date(row.get("Effective_Date"), "Cost_Rates_group.Effective_Date", fail, True)
        end = _date(row.get("End_Date"), "Cost_Rates_group.End_Date", fail, False)
        currency = str(row.get("Currency") or "")
        if amount is None or start is None:
            continue
        try:
            rates.append(
                CostRate(
                    hourly=Money(amount=amount, currency=currency), effective_from=start, effective_to=end
                )
            )
        except ValidationError:
            fail("Cost_Rates_group.Currency", f"not an ISO currency: {currency!r}")
    return rates


def _decimal(value: Any, column: str, fail: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        fail(column, f"not a number: {value!r}")
        return None
    if not number.is_finite():
        fail(column, f"not a number: {value!r}")
        return None
    return number


def _date(value: Any, column: str, fail: Any, required: bool) -> Any:
    if value in (None, ""):
        if required:
            fail(column, "missing")
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        fail(column, f"not a date: {value!r}")
        return None


def _unmappable(hcm_id: str, problems: list[dict[str, str]]) -> DataValidationError:
    return DataValidationError(
        f"Workday worker {hcm_id or '(no Employee_ID)'} does not map to a hub worker",
        problems=problems,
        system=SYSTEM,
        code="unmappable_worker",
    )
