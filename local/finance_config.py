"""The local stack's finance configuration: each legal entity's posting policy and tax rules (seeded into the
routing table, where finance edits them as data) and the ERP-side ids the connection secrets map them to.

Three entities, three ERP shapes of routing: US01 -> NetSuite (US account), UK01 -> NetSuite (UK account),
DE01 -> Business Central. UK01 holds entries of a closed period until it reopens; the others roll them into
the next open period with their original date kept.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hub.model import (
    ClosedPeriodAction,
    ExpenseCategory,
    Money,
    PostingPolicy,
    TaxRegime,
    TaxRule,
)

C = ExpenseCategory
D = Decimal

ENTITIES: list[dict[str, Any]] = [
    {
        "code": "US01",
        "name": "Hub Consulting Inc.",
        "country": "US",
        "functional_currency": "USD",
        "timezone": "America/New_York",
        "erp_system": "netsuite-us",
        "subsidiary_id": "1",
        "wave": "cloud-1",
    },
    {
        "code": "UK01",
        "name": "Hub Consulting Ltd",
        "country": "GB",
        "functional_currency": "GBP",
        "timezone": "Europe/London",
        "erp_system": "netsuite-uk",
        "subsidiary_id": "2",
        "wave": "cloud-1",
    },
    {
        "code": "DE01",
        "name": "Hub Consulting GmbH",
        "country": "DE",
        "functional_currency": "EUR",
        "timezone": "Europe/Berlin",
        "erp_system": "bc-eu",
        "subsidiary_id": None,  # the Business Central company id, known once the sandbox exists
        "wave": "legacy",
    },
]
BC_COMPANY = "Hub Consulting GmbH"


def _money(amount: str, currency: str) -> Money:
    return Money(amount=D(amount), currency=currency)


def _limits(currency: str, **amounts: str) -> dict[ExpenseCategory, Money]:
    return {C(category): _money(amount, currency) for category, amount in amounts.items()}


POLICIES = [
    PostingPolicy(
        legal_entity_code="US01",
        max_hours_per_day=D("12"),
        expense_limits=_limits("USD", meals="150", lodging="450", travel="2500", client_entertainment="500"),
        receipt_required_above=_money("75", "USD"),
        closed_period=ClosedPeriodAction.NEXT_OPEN,
    ),
    PostingPolicy(
        legal_entity_code="UK01",
        max_hours_per_day=D("10"),
        expense_limits=_limits("GBP", meals="100", lodging="300", travel="1500", client_entertainment="400"),
        receipt_required_above=_money("25", "GBP"),
        closed_period=ClosedPeriodAction.HOLD,
    ),
    PostingPolicy(
        legal_entity_code="DE01",
        max_hours_per_day=D("10"),  # Arbeitszeitgesetz: ten hours a day at most
        expense_limits=_limits("EUR", meals="120", lodging="350", travel="2000", client_entertainment="400"),
        receipt_required_above=_money("50", "EUR"),
        closed_period=ClosedPeriodAction.NEXT_OPEN,
    ),
]


def _rule(entity: str, category: ExpenseCategory | None = None, **fields: Any) -> TaxRule:
    return TaxRule(legal_entity_code=entity, category=category, **fields)


VAT = TaxRegime.VAT
TAX_RULES = [
    # UK01: standard-rated by default; foreign services reverse-charged; entertainment VAT not recoverable.
    _rule("UK01", regime=VAT, rate=D("0.20"), code="GB-S20"),
    _rule("UK01", C.TRAVEL, regime=VAT, rate=D("0"), code="GB-Z0"),
    _rule("UK01", C.MILEAGE, regime=TaxRegime.NONE, rate=D("0"), code="GB-NOVAT"),
    _rule(
        "UK01", C.CLIENT_ENTERTAINMENT, regime=VAT, rate=D("0.20"), recoverable_share=D(0), code="GB-S20-NR"
    ),
    _rule(
        "UK01",
        C.SOFTWARE,
        regime=VAT,
        rate=D("0.20"),
        reverse_charge=True,
        code="GB-S20",
        reverse_charge_code="GB-RC20",
    ),
    # US01: sales tax paid to the supplier is a cost.
    _rule("US01", regime=TaxRegime.SALES_TAX, rate=D("0.0725"), recoverable_share=D(0), code="US-ST"),
    _rule("US01", C.MILEAGE, regime=TaxRegime.NONE, rate=D("0"), code="US-NOTAX"),
    # DE01: 19 % standard, 7 % on lodging, reverse charge on foreign software.
    _rule("DE01", regime=VAT, rate=D("0.19"), code="DE-S19"),
    _rule("DE01", C.LODGING, regime=VAT, rate=D("0.07"), code="DE-R7"),
    _rule("DE01", C.MILEAGE, regime=TaxRegime.NONE, rate=D("0"), code="DE-NOVAT"),
    _rule(
        "DE01",
        C.SOFTWARE,
        regime=VAT,
        rate=D("0.19"),
        reverse_charge=True,
        code="DE-S19",
        reverse_charge_code="DE-RC19",
    ),
]

# NetSuite sandbox ids (its default expense categories and UK tax codes); US sales tax is booked as cost.
NETSUITE_EXPENSE_CATEGORY_IDS = {
    "travel": "1",
    "meals": "2",
    "lodging": "3",
    "mileage": "4",
    "client_entertainment": "5",
    "other": "6",
    "software": "6",
    "subcontractor": "6",
}
NETSUITE_TAX_CODE_IDS: dict[str, dict[str, str | None]] = {
    "netsuite-us": {"US-ST": None, "US-NOTAX": None, "OUTSIDE_SCOPE": None},
    "netsuite-uk": {
        "GB-S20": "5",
        "GB-S20-NR": "5",
        "GB-Z0": "6",
        "GB-NOVAT": "7",
        "OUTSIDE_SCOPE": "7",
        "GB-RC20": "8",
    },
}
NETSUITE_SERVICE_ITEM_ID = "10"

# Business Central: G/L expense accounts per category, and the hub's tax codes -> VAT product posting groups.
BC_EXPENSE_ACCOUNTS = {
    "travel": "64100",
    "meals": "64200",
    "lodging": "64300",
    "mileage": "64400",
    "client_entertainment": "64500",
    "software": "64600",
    "subcontractor": "64700",
    "other": "64900",
}
BC_TAX_CODES: dict[str, str | None] = {
    "DE-S19": "STANDARD",
    "DE-R7": "REDUCED",
    "DE-NOVAT": "NO VAT",
    "DE-RC19": "REVERSE",
    "OUTSIDE_SCOPE": "NO VAT",
}
