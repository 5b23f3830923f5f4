"""Validation of the commercial fields a project cannot start without. Pure and table-testable."""

from __future__ import annotations

from hub.model import BillingType, Opportunity


def problems_for_initiation(opp: Opportunity) -> list[dict[str, str]]:
    """Every reason this deal cannot become a project yet, each naming its field; empty when it can."""
    problems: list[dict[str, str]] = []

    def missing(field: str, what: str) -> None:
        problems.append({"field": field, "problem": f"missing {what}"})

    if opp.stage != "Closed Won":  # re-read from the CRM: a notification's claim is not enough
        problems.append(
            {"field": "stage", "problem": f"the opportunity is {opp.stage!r} in the CRM, not 'Closed Won'"}
        )
    if opp.account is None:
        missing("account", "account")
    if opp.legal_entity_code is None:
        missing("legal_entity_code", "legal entity")
    if opp.amount is None:
        missing("amount", "amount and currency")
    elif opp.amount.amount <= 0:
        problems.append({"field": "amount", "problem": f"amount must be positive, got {opp.amount.amount}"})
    if opp.billing_type is None:
        missing("billing_type", "billing type")
    if opp.start_date is None:
        missing("start_date", "start date")
    if opp.start_date and opp.end_date and opp.end_date < opp.start_date:
        problems.append(
            {"field": "end_date", "problem": f"end date {opp.end_date} is before {opp.start_date}"}
        )
    if not opp.line_items:
        missing("line_items", "line items (at least one)")
    if opp.amount is not None:
        for index, item in enumerate(opp.line_items):
            if item.unit_price.currency != opp.amount.currency:
                problems.append(
                    {
                        "field": f"line_items[{index}].unit_price",
                        "problem": f"currency {item.unit_price.currency} differs from the deal's "
                        f"{opp.amount.currency}",
                    }
                )
        if opp.billing_type is BillingType.FIXED_FEE_MILESTONES and opp.line_items and not problems:
            total = sum((item.total.amount for item in opp.line_items), start=opp.amount.amount * 0)
            if total != opp.amount.rounded().amount:
                problems.append(
                    {
                        "field": "line_items",
                        "problem": f"fixed-fee milestones total {total} but the deal amount is "
                        f"{opp.amount.rounded().amount}",
                    }
                )
    return problems


def describe(problems: list[dict[str, str]]) -> str:
    return "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
