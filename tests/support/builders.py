"""Canonical objects for tests, valid by default; override what a test is about."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub.model import Account, BillingType, LineItem, Money, Opportunity


def money(amount: str | int, currency: str = "USD") -> Money:
    return Money(amount=Decimal(str(amount)), currency=currency)


def opportunity(**overrides: Any) -> Opportunity:
    fields: dict[str, Any] = {
        "crm_id": "0065g00000AbCdEAAV",
        "name": "Northwind ERP roll-out",
        "stage": "Closed Won",
        "account": Account(
            crm_id="0015g00000XyZaBAAV", name="Northwind Traders", billing_country="US", currency="USD"
        ),
        "legal_entity_code": "US01",
        "amount": money(120000),
        "billing_type": BillingType.FIXED_FEE_MILESTONES,
        "start_date": dt.date(2027, 1, 4),
        "end_date": dt.date(2027, 6, 30),
        "line_items": (
            LineItem(
                crm_id="00k5g00000LmNoPAAV",
                name="Discovery and design",
                quantity=Decimal(1),
                unit_price=money(40000),
                service_date=dt.date(2027, 2, 15),
            ),
            LineItem(
                crm_id="00k5g00000LmNoQAAV",
                name="Build and deploy",
                quantity=Decimal(2),
                unit_price=money(40000),
            ),
        ),
        "last_modified": dt.datetime(2026, 11, 20, 16, 42, 11, tzinfo=dt.UTC),
    }
    fields.update(overrides)
    return Opportunity(**fields)
