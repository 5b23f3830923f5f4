"""A project's planned cost and margin from its assignments: pure functions, no I/O.

planned cost = the sum, over every allocated day, of the hours times the worker's cost rate effective that
day, converted into the project's currency with the FX rate effective that day. Days the cost cannot be
priced (no cost rate that day, a worker allocated before hire or after leaving) are counted apart and named,
never priced as zero silently. planned revenue comes from the billing schedule; margin = revenue - cost.

Amounts are exact ``Decimal`` throughout; the model's money is rounded to the cent once, at the end.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

from hub.errors import DataValidationError
from hub.model import BillingType, Money, Project
from hub.model.canonical import CurrencyCode, FiniteDecimal, Strict
from hub.model.workforce import Assignment, CostRate, FxRate, HcmId, Worker

_PERCENT = Decimal("0.0001")


class Unpriced(Strict):
    """Hours that could not be priced, and why (for the margin model and the delivery manager)."""

    worker_hcm_id: HcmId
    day: dt.date
    hours: FiniteDecimal
    reason: str


class MarginModel(Strict):
    """A project's planned economics at one assignment version."""

    psa_project_id: str
    currency: CurrencyCode
    hours: FiniteDecimal
    revenue: Money
    cost: Money
    margin: Money
    margin_pct: FiniteDecimal | None  # margin / revenue (0.2315 = 23.15 %); None without revenue
    cost_by_worker: dict[str, Money]
    unpriced: tuple[Unpriced, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.unpriced


class FxTable:
    """FX rates by pair, each effective from its date until the next one; the inverse pair is used when
    only it is known. A conversion with no rate on or before the day is a data error naming pair and day."""

    def __init__(self, rates: Iterable[FxRate]) -> None:
        self._by_pair: dict[tuple[str, str], list[FxRate]] = defaultdict(list)
        for rate in rates:
            self._by_pair[(rate.base, rate.quote)].append(rate)
        for series in self._by_pair.values():
            series.sort(key=lambda r: r.effective_from)

    def rate(self, base: str, quote: str, day: dt.date) -> Decimal:
        if base == quote:
            return Decimal(1)
        direct = self._latest((base, quote), day)
        if direct is not None:
            return direct.rate
        inverse = self._latest((quote, base), day)
        if inverse is not None:
            return Decimal(1) / inverse.rate
        raise DataValidationError(
            f"no {base}/{quote} exchange rate on or before {day}",
            problems=[{"field": "fxRate", "problem": f"no {base}/{quote} rate effective on {day}"}],
            code="no_fx_rate",
        )

    def _latest(self, pair: tuple[str, str], day: dt.date) -> FxRate | None:
        found = None
        for rate in self._by_pair.get(pair, ()):
            if rate.effective_from > day:
                break
            found = rate
        return found


def planned_revenue(project: Project) -> Money:
    """What the billing schedule plans to invoice: the milestones of a fixed fee (the contract value when none
    are scheduled yet); for time and materials and retainers, the contract value, within the schedule's cap."""
    schedule = project.billing_schedule
    if project.billing_type is BillingType.FIXED_FEE_MILESTONES and schedule.milestones:
        return schedule.scheduled_total
    value = project.contract_value
    if (
        schedule.cap is not None
        and schedule.cap.currency == value.currency
        and schedule.cap.amount < value.amount
    ):
        return schedule.cap
    return value


def margin_model(
    project: Project,
    psa_project_id: str,
    assignments: Sequence[Assignment],
    workers: Mapping[str, Worker],
    fx: FxTable,
) -> MarginModel:
    currency = project.currency
    revenue = planned_revenue(project)
    if revenue.currency != currency:
        raise DataValidationError(
            f"the billing schedule is in {revenue.currency}, the project in {currency}",
            problems=[
                {"field": "billingSchedule.currency", "problem": f"not the project currency {currency}"}
            ],
            code="currency_mismatch",
        )
    cost_by_worker: dict[str, Decimal] = defaultdict(Decimal)
    unpriced: list[Unpriced] = []
    hours = Decimal(0)
    for assignment in assignments:
        worker = workers.get(assignment.worker_hcm_id)
        for allocation in assignment.days:
            if allocation.hours == 0:
                continue
            hours += allocation.hours
            rate = _rate_or_reason(worker, allocation.day)
            if isinstance(rate, str):
                unpriced.append(
                    Unpriced(
                        worker_hcm_id=assignment.worker_hcm_id,
                        day=allocation.day,
                        hours=allocation.hours,
                        reason=rate,
                    )
                )
                continue
            converted = rate.hourly.amount * fx.rate(rate.hourly.currency, currency, allocation.day)
            cost_by_worker[assignment.worker_hcm_id] += allocation.hours * converted
    cost = sum(cost_by_worker.values(), Decimal(0))
    margin = revenue.amount - cost
    pct = (margin / revenue.amount).quantize(_PERCENT, rounding=ROUND_HALF_UP) if revenue.amount else None
    return MarginModel(
        psa_project_id=psa_project_id,
        currency=currency,
        hours=hours,
        revenue=revenue.rounded(),
        cost=Money(amount=cost, currency=currency).rounded(),
        margin=Money(amount=margin, currency=currency).rounded(),
        margin_pct=pct,
        cost_by_worker={
            k: Money(amount=v, currency=currency).rounded() for k, v in sorted(cost_by_worker.items())
        },
        unpriced=tuple(unpriced),
    )


def _rate_or_reason(worker: Worker | None, day: dt.date) -> CostRate | str:
    """The cost rate of the worker on ``day``, or why there is none (the hours are then left unpriced)."""
    if worker is None:
        return "the HCM has no such worker"
    if day < worker.hire_date:
        return f"allocated on {day}, before the hire date {worker.hire_date}"
    if worker.end_date is not None and day > worker.end_date:
        return f"allocated on {day}, after the last day worked {worker.end_date}"
    return worker.rate_on(day) or f"no cost rate effective on {day}"


def below_floor(model: MarginModel, floor: Decimal) -> bool:
    return model.margin_pct is not None and model.margin_pct < floor
