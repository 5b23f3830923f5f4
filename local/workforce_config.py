"""What the local stack's workforce side is configured with: the HCM and PSA connection details the secrets
hold, the FX rates and margin floors finance keeps in the planning table, and what a Kantata administrator sets
up once for the resource pool (the User custom fields, the departments)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub.model.workforce import FxRate

INVITATION_EMAIL_TEMPLATE = "{hcm_id}@staff.pshub.example"
PSA_ACCOUNT_CURRENCY = "USD"
WORKDAY_REFRESH_TOKEN = "pshub-isu-refresh-token"  # the integration user's, as the sandbox issues it
WORKDAY_COMPANIES = {"PSHUB_US": "US01", "PSHUB_UK": "UK01"}  # Workday company -> the hub's legal entity
DEPARTMENTS = ("Consulting", "Delivery", "Advisory")
USER_FIELDS = ("Legal Entity", "Cost Centre", "HCM ID")

_YEAR = dt.date(2026, 1, 1)
FX_RATES = (
    FxRate(base="GBP", quote="USD", rate=Decimal("1.2700"), effective_from=_YEAR),
    FxRate(base="EUR", quote="USD", rate=Decimal("1.0800"), effective_from=_YEAR),
    FxRate(base="GBP", quote="EUR", rate=Decimal("1.1750"), effective_from=_YEAR),
)
MARGIN_FLOORS = {"US01": Decimal("0.25"), "UK01": Decimal("0.25"), "DE01": Decimal("0.20")}


def prepare_kantata(kantata: Any) -> None:
    """The User custom fields the hub writes and the departments workers belong to, on a fresh sandbox."""
    for name in USER_FIELDS:
        kantata.seed_custom_field(name)
    for department in DEPARTMENTS:
        kantata.seed_organization(department)
