"""Canonical time and expense entities (v1), the per-entity configuration the posting rules read, and the
results those rules hand to the ERP adapters.

Same conventions as ``hub.model.canonical``: frozen, no unknown fields, money as ``Decimal`` with a currency,
instants timezone-aware, ids constrained. Ids are limited to ``[A-Za-z0-9_-]`` so they can be used as they are
in ERP external ids (NetSuite's ``eid:`` accepts nothing else).

Dates and instants:
- ``work_date`` / ``expense_date`` are *local* calendar dates (the day in the legal entity's timezone, as the
  PSA shows them to the worker); they carry no timezone and are never converted.
- ``approved_at`` and ``AccountingPeriod.closes_at`` are instants (aware datetimes); the posting window rule
  compares them with "now" and shows them in the entity's own timezone (``LegalEntity.timezone``).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from hub.model.canonical import CountryCode, EntityCode, ExternalId, FiniteDecimal, Money, Name, Strict

PsaId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
WorkerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
WbsCode = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$")]
PeriodName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
TaxCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Share = Annotated[FiniteDecimal, Field(ge=0, le=1)]

# ISO 4217 minor units where they are not 2 (the default).
_MINOR_UNITS = {
    "BHD": 3,
    "CLP": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
}


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (0.01 for USD, 1 for JPY, 0.001 for KWD)."""
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2))


def round_money(money: Money) -> Money:
    """``money`` rounded half up to its currency's minor unit (``Money.rounded`` always uses cents)."""
    return Money(
        amount=money.amount.quantize(minor_unit(money.currency), rounding=ROUND_HALF_UP),
        currency=money.currency,
    )


class ApprovalStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ExpenseCategory(StrEnum):
    TRAVEL = "travel"
    LODGING = "lodging"
    MEALS = "meals"
    CLIENT_ENTERTAINMENT = "client_entertainment"
    MILEAGE = "mileage"
    SOFTWARE = "software"
    SUBCONTRACTOR = "subcontractor"
    OTHER = "other"


class ProjectStatus(StrEnum):
    """The project's delivery status in the PSA; only ``active`` projects take billable time or expenses."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ProjectRef(Strict):
    """The project both ways: the PSA's id and the hub's external id (``sf-opp-...``), which the ERP knows."""

    psa_project_id: PsaId
    external_id: ExternalId


class TaskRef(Strict):
    psa_task_id: PsaId
    wbs_code: WbsCode


class _Approvable(Strict):
    psa_id: PsaId
    # Monotonic per entry: the PSA's revision counter, or its last-modified instant as epoch microseconds.
    version: int = Field(ge=1)
    worker_id: WorkerId
    legal_entity_code: EntityCode
    project: ProjectRef
    approval_status: ApprovalStatus
    approved_at: AwareDatetime | None = None
    notes: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _approved_entries_carry_their_approval_instant(self) -> _Approvable:
        if self.approval_status is ApprovalStatus.APPROVED and self.approved_at is None:
            raise ValueError("an approved entry needs approved_at")
        return self

    @property
    def idempotency_key(self) -> str:
        """Entry id plus version: a redelivery of the same version posts once, a new version is an edit."""
        return f"{self.psa_id}#v{self.version}"


class TimeEntry(_Approvable):
    task: TaskRef | None = None
    work_date: dt.date
    hours: FiniteDecimal = Field(gt=0, le=24)
    billable: bool


class ExpenseLine(_Approvable):
    expense_date: dt.date
    category: ExpenseCategory
    gross: Money = Field(description="what the worker paid the supplier, tax included")
    supplier_country: CountryCode
    merchant: Name | None = None
    receipt_attached: bool
    billable: bool = False

    @field_validator("gross")
    @classmethod
    def _positive(cls, gross: Money) -> Money:
        if gross.amount <= 0:
            raise ValueError("gross amount must be positive (credits come as a new version of the line)")
        return gross


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AccountingPeriod(Strict):
    legal_entity_code: EntityCode
    name: PeriodName
    start_date: dt.date
    end_date: dt.date = Field(description="last day of the period, inclusive")
    status: PeriodStatus
    # The first instant at which the period counts as closed even while the ERP still shows it open
    # (the month-end cut-off); build it from the entity's wall-clock time, e.g. 18:00 on the 3rd working day.
    closes_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> AccountingPeriod:
        if self.end_date < self.start_date:
            raise ValueError(
                f"period {self.name} ends ({self.end_date}) before it starts ({self.start_date})"
            )
        return self

    def contains(self, day: dt.date) -> bool:
        return self.start_date <= day <= self.end_date

    def is_open_at(self, now: dt.datetime) -> bool:
        return self.status is PeriodStatus.OPEN and (self.closes_at is None or now < self.closes_at)


class AccountingCalendar(Strict):
    """One legal entity's periods, sorted by start date, never overlapping (gaps are allowed: a date in a gap
    has no period and is held)."""

    legal_entity_code: EntityCode
    periods: tuple[AccountingPeriod, ...]

    @field_validator("periods")
    @classmethod
    def _sorted(cls, periods: tuple[AccountingPeriod, ...]) -> tuple[AccountingPeriod, ...]:
        ordered = tuple(sorted(periods, key=lambda p: p.start_date))
        for before, after in zip(ordered, ordered[1:], strict=False):
            if after.start_date <= before.end_date:
                raise ValueError(f"periods {before.name} and {after.name} overlap")
        return ordered

    @model_validator(mode="after")
    def _one_entity(self) -> AccountingCalendar:
        others = {p.legal_entity_code for p in self.periods} - {self.legal_entity_code}
        if others:
            raise ValueError(f"calendar of {self.legal_entity_code} holds periods of {sorted(others)}")
        return self

    def period_for(self, day: dt.date) -> AccountingPeriod | None:
        return next((p for p in self.periods if p.contains(day)), None)

    def next_open_after(self, period: AccountingPeriod, now: dt.datetime) -> AccountingPeriod | None:
        return next((p for p in self.periods if p.start_date > period.end_date and p.is_open_at(now)), None)


class ClosedPeriodAction(StrEnum):
    NEXT_OPEN = "next_open"  # post into the next open period, keeping the original transaction date
    HOLD = "hold"  # hold until the period reopens


class PostingPolicy(Strict):
    """What one legal entity accepts. All amounts are in one currency (the entity's, normally)."""

    legal_entity_code: EntityCode
    max_hours_per_day: FiniteDecimal = Field(gt=0, le=24)
    expense_limits: dict[ExpenseCategory, Money] = Field(
        default_factory=dict, description="the most one expense line of a category may be, tax included"
    )
    receipt_required_above: Money
    receipt_exempt_categories: frozenset[ExpenseCategory] = frozenset({ExpenseCategory.MILEAGE})
    closed_period: ClosedPeriodAction
    billable_requires_task: bool = True

    @model_validator(mode="after")
    def _one_currency_no_negative_amounts(self) -> PostingPolicy:
        amounts = [self.receipt_required_above, *self.expense_limits.values()]
        currencies = {m.currency for m in amounts}
        if len(currencies) > 1:
            raise ValueError(
                f"limits and receipt threshold must share one currency, got {sorted(currencies)}"
            )
        if any(m.amount < 0 for m in amounts):
            raise ValueError("limits and the receipt threshold cannot be negative")
        return self

    @property
    def currency(self) -> str:
        return self.receipt_required_above.currency


class TaxRegime(StrEnum):
    VAT = "vat"
    SALES_TAX = "sales_tax"
    NONE = "none"


class TaxRule(Strict):
    """How one entity treats the tax on one expense category (``category=None``: every category without a
    rule of its own)."""

    legal_entity_code: EntityCode
    category: ExpenseCategory | None = None
    regime: TaxRegime
    rate: FiniteDecimal = Field(ge=0, lt=1)
    recoverable_share: Share = Decimal(1)
    # True when a supply of this category from another country is self-assessed by the entity (services:
    # VAT reverse charge, US use tax); False: foreign tax paid abroad is a cost, outside the entity's scope.
    reverse_charge: bool = False
    code: TaxCode = Field(description="the ERP tax code for a domestic purchase")
    reverse_charge_code: TaxCode | None = None
    out_of_scope_code: TaxCode = "OUTSIDE_SCOPE"

    @model_validator(mode="after")
    def _consistent(self) -> TaxRule:
        if self.regime is TaxRegime.NONE and (self.rate != 0 or self.reverse_charge):
            raise ValueError("a rule with no tax regime has a zero rate and no reverse charge")
        if self.reverse_charge and self.reverse_charge_code is None:
            raise ValueError("a reverse-charged category needs reverse_charge_code")
        return self


class TaxKind(StrEnum):
    DOMESTIC = "domestic"  # tax included in the gross, paid to the supplier
    REVERSE_CHARGE = (
        "reverse_charge"  # foreign supplier, tax self-assessed: computed, not paid to the supplier
    )
    OUTSIDE_SCOPE = (
        "outside_scope"  # foreign supplier, no reverse charge: any foreign tax is part of the cost
    )
    NO_TAX = "no_tax"  # the entity's rule says the category carries no tax (e.g. mileage)


class TaxTreatment(Strict):
    """The tax of one expense line, in the line's currency, every amount rounded to the currency's minor unit.

    Domestic: ``net + tax == gross``. Reverse charge: ``net == gross`` (the supplier is paid the gross) and
    ``tax`` is self-assessed on top. Always ``recoverable_tax + non_recoverable_tax == tax``; the entity's
    cost is ``net + non_recoverable_tax``.
    """

    gross: Money
    net: Money
    tax: Money
    rate: FiniteDecimal = Field(ge=0, lt=1)
    recoverable_tax: Money
    non_recoverable_tax: Money
    reverse_charge: bool
    kind: TaxKind
    regime: TaxRegime
    code: TaxCode

    @model_validator(mode="after")
    def _adds_up(self) -> TaxTreatment:
        amounts = (self.gross, self.net, self.tax, self.recoverable_tax, self.non_recoverable_tax)
        if len({m.currency for m in amounts}) != 1:
            raise ValueError("every amount of a tax treatment is in the line's currency")
        if any(m.amount < 0 for m in amounts):
            raise ValueError("tax amounts cannot be negative")
        if self.recoverable_tax.amount + self.non_recoverable_tax.amount != self.tax.amount:
            raise ValueError("recoverable and non-recoverable tax must add up to the tax")
        paid = self.net.amount if self.reverse_charge else self.net.amount + self.tax.amount
        if paid != self.gross.amount:
            raise ValueError("net (plus tax unless reverse-charged) must add up to the gross")
        if self.reverse_charge is not (self.kind is TaxKind.REVERSE_CHARGE):
            raise ValueError("reverse_charge and kind disagree")
        return self

    @property
    def cost(self) -> Money:
        """What the entity books as expense: the net plus the tax it cannot recover."""
        return self.net + self.non_recoverable_tax


class PostingAction(StrEnum):
    POST = "post"
    HOLD = "hold"


class PostingBasis(StrEnum):
    """Why the posting window decided as it did (for ledgers, metrics and alerts: never parse ``reason``)."""

    OPEN_PERIOD = "open_period"  # the period containing the date is open
    NEXT_OPEN_PERIOD = "next_open_period"  # that period is closed; posted into the next open one
    PERIOD_CLOSED = "period_closed"  # that period is closed and the entity holds until it reopens
    NO_OPEN_PERIOD = "no_open_period"  # that period is closed and no later period is open
    NO_PERIOD = "no_period"  # no period of the calendar covers the date


class PostingDecision(Strict):
    action: PostingAction
    basis: PostingBasis
    period: PeriodName | None = Field(
        default=None,
        description="where it posts; when held, the closed period it waits for (None: no period)",
    )
    posting_date: dt.date | None = Field(default=None, description="the date the ERP posts on (post only)")
    original_date: dt.date = Field(description="the transaction date in the entity's timezone, always kept")
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _post_has_a_period_and_date(self) -> PostingDecision:
        posting = self.action is PostingAction.POST
        if posting and (self.period is None or self.posting_date is None):
            raise ValueError("a decision to post names the period and the posting date")
        if not posting and self.posting_date is not None:
            raise ValueError("a held entry has no posting date")
        return self
