"""Canonical business entities (v1).

Strict types: money is a ``Decimal`` with an ISO 4217 currency, instants are timezone-aware, ids are
constrained strings. Commercial fields an opportunity may lack when it arrives are optional here; the
initiation flow's validation rule (``hub.flows.initiation.rules``) decides what is mandatory, so an
incomplete deal is parked with its reason instead of being rejected at the door.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = "1.0"

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
EntityCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$")]
CrmId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{15,18}$")]
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]

_CENT = Decimal("0.01")


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


FiniteDecimal = Annotated[Decimal, AfterValidator(_finite)]


class Strict(BaseModel):
    """Base for canonical entities: no unknown fields, immutable, validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Money(Strict):
    amount: FiniteDecimal
    currency: CurrencyCode

    def rounded(self) -> Money:
        return Money(amount=self.amount.quantize(_CENT, rounding=ROUND_HALF_UP), currency=self.currency)

    def cents(self) -> int:
        return int(self.rounded().amount * 100)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)


class BillingType(StrEnum):
    FIXED_FEE_MILESTONES = "fixed_fee_milestones"
    TIME_AND_MATERIALS = "time_and_materials"
    RETAINER = "retainer"
    SUBSCRIPTION = "subscription"


class LegalEntity(Strict):
    code: EntityCode
    name: Name
    country: CountryCode
    functional_currency: CurrencyCode
    timezone: str = Field(min_length=1, description="IANA timezone name, e.g. Europe/London")


class Contact(Strict):
    crm_id: CrmId
    full_name: Name
    email: str | None = None
    role: str | None = None


class Account(Strict):
    """The customer as the CRM knows it; the ERP customer is its financial twin (``erp_customer_id``)."""

    crm_id: CrmId
    name: Name
    billing_country: CountryCode | None = None
    currency: CurrencyCode | None = None
    erp_customer_id: str | None = None


class LineItem(Strict):
    crm_id: CrmId
    product_code: str | None = None
    name: Name
    quantity: FiniteDecimal = Field(gt=0)
    unit_price: Money
    service_line: str | None = None
    service_date: dt.date | None = None

    @property
    def total(self) -> Money:
        return Money(
            amount=self.quantity * self.unit_price.amount, currency=self.unit_price.currency
        ).rounded()


class Opportunity(Strict):
    crm_id: CrmId
    name: Name
    stage: str
    account: Account | None = None
    legal_entity_code: EntityCode | None = None
    amount: Money | None = None
    billing_type: BillingType | None = None
    close_date: dt.date | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    line_items: tuple[LineItem, ...] = ()
    primary_contact: Contact | None = None
    last_modified: AwareDatetime
    # True when the notification carried only the header fields (e.g. a Salesforce Outbound Message):
    # the flow reads the full record, line items included, from the CRM before validating it.
    needs_hydration: bool = False

    @property
    def is_closed_won(self) -> bool:
        return self.stage == "Closed Won"

    @property
    def version(self) -> str:
        """A business version for idempotency keys: the CRM's last-modified instant, in UTC."""
        return self.last_modified.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


class WbsTask(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$")]
    name: Name
    kind: str = Field(pattern=r"^(phase|task|milestone)$")
    parent_code: str | None = None
    budget: Money | None = None
    start_date: dt.date | None = None
    due_date: dt.date | None = None


class Milestone(Strict):
    code: str = Field(min_length=1, max_length=32)
    name: Name
    amount: Money
    due_date: dt.date
    wbs_code: str | None = None


class BillingSchedule(Strict):
    billing_type: BillingType
    currency: CurrencyCode
    milestones: tuple[Milestone, ...] = ()
    # For time and materials: invoices in arrears at this cadence, capped at the contract value.
    cadence: str = Field(default="monthly", pattern=r"^(monthly|quarterly|annual|on_milestone)$")
    cap: Money | None = None

    @property
    def scheduled_total(self) -> Money:
        total = Money(amount=Decimal(0), currency=self.currency)
        for milestone in self.milestones:
            total = total + milestone.amount
        return total


class Project(Strict):
    external_id: ExternalId
    name: Name
    opportunity_crm_id: CrmId
    customer: Account
    legal_entity_code: EntityCode
    currency: CurrencyCode
    contract_value: Money
    start_date: dt.date
    end_date: dt.date | None = None
    billing_type: BillingType
    wbs: tuple[WbsTask, ...]
    billing_schedule: BillingSchedule
    psa_project_id: str | None = None
    erp_project_id: str | None = None
