"""From a validated closed-won deal to the project plan: WBS and billing schedule. Pure functions.

WBS: phase ``1`` (delivery) with one task per line item (``1.1``, ``1.2``...), each budgeted at its line total;
fixed-fee deals add phase ``2`` (milestones) with one milestone task per line item.
Billing schedule by billing type:
- fixed fee, milestones: one milestone per line item, due on the line's service date (else spread evenly
  over the term), amounts summing to the deal amount;
- time and materials: invoiced monthly in arrears against time, capped at the deal amount, no milestones;
- retainer: equal monthly instalments over the term (the last absorbs the rounding), due on each month's start;
- subscription: annual instalments in advance over the term.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

from hub.model import BillingSchedule, BillingType, Milestone, Money, Opportunity, Project, WbsTask

DEFAULT_TERM_MONTHS = 12


def project_external_id(opportunity_id: str) -> str:
    return f"sf-opp-{opportunity_id}"


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # unreachable: every month has a 28th


def term_months(start: dt.date, end: dt.date | None) -> int:
    if end is None:
        return DEFAULT_TERM_MONTHS
    months = (end.year - start.year) * 12 + (end.month - start.month) + (1 if end.day >= start.day else 0)
    return max(months, 1)


def _split(total: Money, parts: int) -> list[Money]:
    """``parts`` instalments in cents that add up exactly to ``total``; the last absorbs the remainder."""
    each = (total.amount / parts).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    amounts = [each] * (parts - 1) + [total.rounded().amount - each * (parts - 1)]
    return [Money(amount=a, currency=total.currency) for a in amounts]


def plan_wbs(opp: Opportunity) -> tuple[WbsTask, ...]:
    assert opp.start_date is not None
    tasks = [
        WbsTask(code="1", name="Delivery", kind="phase", start_date=opp.start_date, due_date=opp.end_date)
    ]
    for index, item in enumerate(opp.line_items, start=1):
        tasks.append(
            WbsTask(
                code=f"1.{index}",
                name=item.name,
                kind="task",
                parent_code="1",
                budget=item.total,
                start_date=opp.start_date,
                due_date=item.service_date or opp.end_date,
            )
        )
    if opp.billing_type is BillingType.FIXED_FEE_MILESTONES:
        tasks.append(WbsTask(code="2", name="Milestones", kind="phase", start_date=opp.start_date))
        for index, (item, due) in enumerate(zip(opp.line_items, _milestone_dates(opp), strict=True), start=1):
            tasks.append(
                WbsTask(
                    code=f"2.{index}",
                    name=f"Milestone: {item.name}",
                    kind="milestone",
                    parent_code="2",
                    due_date=due,
                )
            )
    return tuple(tasks)


def _milestone_dates(opp: Opportunity) -> list[dt.date]:
    assert opp.start_date is not None
    months = term_months(opp.start_date, opp.end_date)
    count = len(opp.line_items)
    dates = []
    for index, item in enumerate(opp.line_items, start=1):
        if item.service_date is not None:
            dates.append(item.service_date)
        else:
            due = _add_months(opp.start_date, max(1, round(months * index / count)))
            dates.append(min(due, opp.end_date) if opp.end_date else due)
    return dates


def plan_billing(opp: Opportunity) -> BillingSchedule:
    assert opp.amount is not None and opp.start_date is not None and opp.billing_type is not None
    amount = opp.amount.rounded()
    currency = amount.currency
    months = term_months(opp.start_date, opp.end_date)
    if opp.billing_type is BillingType.FIXED_FEE_MILESTONES:
        milestones = tuple(
            Milestone(
                code=f"M{index}", name=item.name, amount=item.total, due_date=due, wbs_code=f"2.{index}"
            )
            for index, (item, due) in enumerate(
                zip(opp.line_items, _milestone_dates(opp), strict=True), start=1
            )
        )
        return BillingSchedule(
            billing_type=opp.billing_type, currency=currency, milestones=milestones, cadence="on_milestone"
        )
    if opp.billing_type is BillingType.TIME_AND_MATERIALS:
        return BillingSchedule(
            billing_type=opp.billing_type, currency=currency, cadence="monthly", cap=amount
        )
    if opp.billing_type is BillingType.RETAINER:
        parts = _split(amount, months)
        milestones = tuple(
            Milestone(
                code=f"R{i + 1}",
                name=f"Retainer {_add_months(opp.start_date, i):%Y-%m}",
                amount=part,
                due_date=_add_months(opp.start_date, i),
            )
            for i, part in enumerate(parts)
        )
        return BillingSchedule(
            billing_type=opp.billing_type, currency=currency, milestones=milestones, cadence="monthly"
        )
    years = max(1, -(-months // 12))
    parts = _split(amount, years)
    milestones = tuple(
        Milestone(
            code=f"S{i + 1}",
            name=f"Subscription year {i + 1}",
            amount=part,
            due_date=_add_months(opp.start_date, 12 * i),
        )
        for i, part in enumerate(parts)
    )
    return BillingSchedule(
        billing_type=opp.billing_type, currency=currency, milestones=milestones, cadence="annual"
    )


def plan_project(opp: Opportunity) -> Project:
    """The project plan for a deal that passed ``problems_for_initiation``."""
    assert opp.account is not None and opp.legal_entity_code is not None and opp.amount is not None
    assert opp.start_date is not None and opp.billing_type is not None
    return Project(
        external_id=project_external_id(opp.crm_id),
        name=opp.name,
        opportunity_crm_id=opp.crm_id,
        customer=opp.account,
        legal_entity_code=opp.legal_entity_code,
        currency=opp.amount.currency,
        contract_value=opp.amount.rounded(),
        start_date=opp.start_date,
        end_date=opp.end_date,
        billing_type=opp.billing_type,
        wbs=plan_wbs(opp),
        billing_schedule=plan_billing(opp),
    )
