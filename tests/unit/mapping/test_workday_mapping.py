"""A row of the worker-changes report -> the canonical worker, and rows that cannot be one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hub.errors import DataValidationError
from hub.mapping.workday import worker_from_row
from hub.model.workforce import WorkerType

ENTITIES = {"PSHUB_US": "US01", "PSHUB_UK": "UK01"}


def row(**changes):
    base = {
        "Employee_ID": "21001",
        "Worker_Type": "Contingent Worker",
        "Worker": "Alex Smith",
        "Manager_Employee_ID": "21000",
        "Skills": "SAP FICO; Change management",
        "Scheduled_Weekly_Hours": "37.5",
        "Working_Days": "Monday; Tuesday; Wednesday; Thursday; Friday",
        "Hire_Date": "2024-01-02",
        "Last_Updated": "2026-11-20T10:15:00.000-08:00",
        "Organization_Assignments_group": [
            {
                "Effective_Date": "2027-01-01",
                "Company_ID": "PSHUB_UK",
                "Cost_Center_ID": "CC300",
                "Supervisory_Organization_ID": "SUP-7",
                "Location_Country_ISO_Code": "GB",
            },
            {
                "Effective_Date": "2024-01-02",
                "Company_ID": "PSHUB_US",
                "Cost_Center_ID": "CC100",
                "Supervisory_Organization_ID": "SUP-1",
                "Location_Country_ISO_Code": "US",
            },
        ],
        "Cost_Rates_group": [
            {"Amount": "95.00", "Currency": "USD", "Effective_Date": "2024-01-02", "End_Date": "2026-12-31"},
            {"Amount": "70.00", "Currency": "GBP", "Effective_Date": "2027-01-01"},
        ],
    }
    base.update(changes)
    return base


def test_a_row_becomes_a_worker_with_its_placements_and_rates_in_order():
    worker = worker_from_row(row(), entities=ENTITIES)

    assert worker.worker_type is WorkerType.CONTRACTOR and worker.skills == ("SAP FICO", "Change management")
    assert worker.calendar.hours_per_day == Decimal("7.5") and worker.calendar.working_days == (1, 2, 3, 4, 5)
    assert worker.calendar.country == "GB"  # where the latest placement works
    assert [(p.legal_entity_code, p.effective_from, p.effective_to) for p in worker.placements] == [
        ("US01", dt.date(2024, 1, 2), dt.date(2026, 12, 31)),
        ("UK01", dt.date(2027, 1, 1), None),
    ]
    assert worker.rate_on(dt.date(2027, 1, 1)).hourly.currency == "GBP"
    assert worker.changed_at == dt.datetime(2026, 11, 20, 18, 15, tzinfo=dt.UTC)


def test_a_row_that_cannot_be_a_worker_names_every_column_at_fault():
    bad = row(
        Worker_Type="Intern",
        Working_Days="Mon; Tue",
        Hire_Date=None,
        Last_Updated="2026-11-20T10:15:00",
        Scheduled_Weekly_Hours="many",
    )

    with pytest.raises(DataValidationError) as caught:
        worker_from_row(bad, entities=ENTITIES)

    fields = {p["field"] for p in caught.value.problems}
    assert fields == {"Worker_Type", "Working_Days", "Hire_Date", "Last_Updated", "Scheduled_Weekly_Hours"}
    assert "21001" in caught.value.message
