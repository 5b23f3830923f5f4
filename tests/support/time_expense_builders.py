"""Time, expense, calendar, policy and tax objects for tests, valid by default; override what a test is about.

Three legal entities with different timezones and tax regimes:
- US01: America/Los_Angeles, USD, sales tax (not recoverable), use tax on foreign software;
- UK01: Europe/London, GBP, VAT 20 % (client entertainment not recoverable, passenger travel zero-rated,
  reverse charge on foreign software and subcontractors);
- JP01: Asia/Tokyo, JPY (no minor unit), consumption tax 10 %.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub.model import (
    AccountingCalendar,
    AccountingPeriod,
    ApprovalStatus,
    ClosedPeriodAction,
    ExpenseCategory,
    ExpenseLine,
    LegalEntity,
    PeriodStatus,
    PostingPolicy,
    ProjectRef,
    TaskRef,
    TaxRegime,
    TaxRule,
    TimeEntry,
)
from tests.support.builders import money

ENTITIES = {
    "US01": LegalEntity(
        code="US01",
        name="Hub Consulting Inc",
        country="US",
        functional_currency="USD",
        timezone="America/Los_Angeles",
    ),
    "UK01": LegalEntity(
        code="UK01",
        name="Hub Consulting Ltd",
        country="GB",
        functional_currency="GBP",
        timezone="Europe/London",
    ),
    "JP01": LegalEntity(
        code="JP01", name="Hub Consulting KK", country="JP", functional_currency="JPY", timezone="Asia/Tokyo"
    ),
}

APPROVED_AT = dt.datetime(2026, 11, 30, 22, 15, tzinfo=dt.UTC)


def entity(code: str = "US01") -> LegalEntity:
    return ENTITIES[code]


def project_ref(**overrides: Any) -> ProjectRef:
    fields: dict[str, Any] = {"psa_project_id": "880001", "external_id": "sf-opp-0065g00000AbCdEAAV"}
    fields.update(overrides)
    return ProjectRef(**fields)


def task_ref(**overrides: Any) -> TaskRef:
    fields: dict[str, Any] = {"psa_task_id": "990011", "wbs_code": "1.1"}
    fields.update(overrides)
    return TaskRef(**fields)


def time_entry(**overrides: Any) -> TimeEntry:
    fields: dict[str, Any] = {
        "psa_id": "TE-1001",
        "version": 1,
        "worker_id": "W-17",
        "legal_entity_code": "US01",
        "project": project_ref(),
        "task": task_ref(),
        "work_date": dt.date(2026, 11, 30),
        "hours": Decimal("8"),
        "billable": True,
        "approval_status": ApprovalStatus.APPROVED,
        "approved_at": APPROVED_AT,
    }
    fields.update(overrides)
    if isinstance(fields["hours"], str | int):
        fields["hours"] = Decimal(str(fields["hours"]))
    return TimeEntry(**fields)


def expense_line(**overrides: Any) -> ExpenseLine:
    """A US01 meal by default; ``entity_code`` switches entity, currency and supplier country together."""
    code = overrides.pop("entity_code", "US01")
    home = ENTITIES[code]
    fields: dict[str, Any] = {
        "psa_id": "EX-2001",
        "version": 1,
        "worker_id": "W-17",
        "legal_entity_code": code,
        "project": project_ref(),
        "expense_date": dt.date(2026, 11, 27),
        "category": ExpenseCategory.MEALS,
        "gross": money("48.60", home.functional_currency),
        "supplier_country": home.country,
        "receipt_attached": True,
        "approval_status": ApprovalStatus.APPROVED,
        "approved_at": APPROVED_AT,
    }
    fields.update(overrides)
    if isinstance(fields["gross"], str | int):
        fields["gross"] = money(fields["gross"], home.functional_currency)
    return ExpenseLine(**fields)


def month_period(
    year: int,
    month: int,
    *,
    entity_code: str = "US01",
    status: PeriodStatus = PeriodStatus.OPEN,
    closes_at: dt.datetime | None = None,
) -> AccountingPeriod:
    start = dt.date(year, month, 1)
    end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return AccountingPeriod(
        legal_entity_code=entity_code,
        name=f"{year}-{month:02d}",
        start_date=start,
        end_date=end,
        status=status,
        closes_at=closes_at,
    )


def monthly_calendar(
    entity_code: str = "US01",
    *,
    first: tuple[int, int] = (2026, 9),
    months: int = 6,
    closed: tuple[str, ...] = (),
    closes_at: dict[str, dt.datetime] | None = None,
) -> AccountingCalendar:
    """Monthly periods from ``first`` (year, month); ``closed`` names closed periods, ``closes_at`` gives
    cut-off instants by period name."""
    year, month = first
    periods = []
    for _ in range(months):
        name = f"{year}-{month:02d}"
        periods.append(
            month_period(
                year,
                month,
                entity_code=entity_code,
                status=PeriodStatus.CLOSED if name in closed else PeriodStatus.OPEN,
                closes_at=(closes_at or {}).get(name),
            )
        )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return AccountingCalendar(legal_entity_code=entity_code, periods=tuple(periods))


_LIMITS = {
    "USD": {"meals": "150", "lodging": "400", "travel": "2500", "client_entertainment": "500"},
    "GBP": {"meals": "100", "lodging": "300", "travel": "2000", "client_entertainment": "400"},
    "JPY": {"meals": "15000", "lodging": "40000", "travel": "300000", "client_entertainment": "50000"},
}
_RECEIPT_ABOVE = {"USD": "75", "GBP": "25", "JPY": "10000"}


def posting_policy(entity_code: str = "US01", **overrides: Any) -> PostingPolicy:
    currency = ENTITIES[entity_code].functional_currency
    fields: dict[str, Any] = {
        "legal_entity_code": entity_code,
        "max_hours_per_day": Decimal("12"),
        "expense_limits": {
            ExpenseCategory(category): money(amount, currency)
            for category, amount in _LIMITS[currency].items()
        },
        "receipt_required_above": money(_RECEIPT_ABOVE[currency], currency),
        "closed_period": ClosedPeriodAction.NEXT_OPEN,
    }
    fields.update(overrides)
    return PostingPolicy(**fields)


def tax_rule(**overrides: Any) -> TaxRule:
    fields: dict[str, Any] = {
        "legal_entity_code": "UK01",
        "category": None,
        "regime": TaxRegime.VAT,
        "rate": Decimal("0.20"),
        "code": "GB-S20",
    }
    fields.update(overrides)
    return TaxRule(**fields)


def tax_rules() -> tuple[TaxRule, ...]:
    """Every entity's tax table, as the caller would pass it."""
    cat = ExpenseCategory
    vat_rc = {"reverse_charge": True, "reverse_charge_code": "GB-RC20"}
    return (
        # UK01: standard-rated by default; foreign services reverse-charged.
        tax_rule(),
        tax_rule(category=cat.SOFTWARE, **vat_rc),
        tax_rule(category=cat.SUBCONTRACTOR, **vat_rc),
        tax_rule(category=cat.CLIENT_ENTERTAINMENT, recoverable_share=Decimal(0), code="GB-S20-NR"),
        tax_rule(category=cat.TRAVEL, rate=Decimal(0), code="GB-Z0"),
        tax_rule(category=cat.MILEAGE, regime=TaxRegime.NONE, rate=Decimal(0), code="GB-NOVAT"),
        # US01: sales tax paid to the supplier is a cost; use tax self-assessed on foreign software.
        tax_rule(
            legal_entity_code="US01",
            regime=TaxRegime.SALES_TAX,
            rate=Decimal("0.0725"),
            recoverable_share=Decimal(0),
            code="US-ST",
        ),
        tax_rule(
            legal_entity_code="US01",
            category=cat.SOFTWARE,
            regime=TaxRegime.SALES_TAX,
            rate=Decimal("0.0725"),
            recoverable_share=Decimal(0),
            reverse_charge=True,
            code="US-ST",
            reverse_charge_code="US-USE",
        ),
        tax_rule(
            legal_entity_code="US01",
            category=cat.MILEAGE,
            regime=TaxRegime.NONE,
            rate=Decimal(0),
            code="US-NOTAX",
        ),
        # JP01: consumption tax 10 %, reverse charge on foreign digital services.
        tax_rule(legal_entity_code="JP01", rate=Decimal("0.10"), code="JP-10"),
        tax_rule(
            legal_entity_code="JP01",
            category=cat.SOFTWARE,
            rate=Decimal("0.10"),
            reverse_charge=True,
            code="JP-10",
            reverse_charge_code="JP-RC10",
        ),
    )
