"""A failed check: which rule, on which field, the value and the limit, and a sentence a finance person reads."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hub.model import ExpenseLine, Money, TimeEntry, minor_unit


class Rule(StrEnum):
    """Stable rule names: ledgers, metrics and alerts key on these, never on the message."""

    APPROVAL = "approval"
    MAX_HOURS_PER_DAY = "max_hours_per_day"
    ACTIVE_PROJECT = "active_project"
    OPEN_TASK = "open_task"
    TASK_REQUIRED = "task_required"
    EXPENSE_LIMIT = "expense_limit"
    RECEIPT_REQUIRED = "receipt_required"
    CURRENCY = "currency"
    TAX_RULE = "tax_rule"


class Violation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Rule
    field: str = Field(min_length=1)
    value: str
    limit: str | None = None
    message: str = Field(min_length=1)

    def as_problem(self) -> dict[str, str]:
        """The ``{"field", "problem"}`` shape of ``DataValidationError.problems`` and the ledger's reasons,
        plus the rule, value and limit."""
        problem = {"field": self.field, "problem": self.message, "rule": str(self.rule), "value": self.value}
        if self.limit is not None:
            problem["limit"] = self.limit
        return problem


def describe(violations: Iterable[Violation]) -> str:
    return "; ".join(v.message for v in violations)


def label(item: TimeEntry | ExpenseLine) -> str:
    kind = "Time entry" if isinstance(item, TimeEntry) else "Expense"
    return f"{kind} {item.psa_id} (v{item.version})"


def fmt_number(value: Decimal) -> str:
    """``13.50`` -> ``13.5``, ``12`` -> ``12``: hours as a person writes them."""
    return format(value.normalize(), "f")


def fmt_money(money: Money, *, grouping: bool = False) -> str:
    """``150.01 USD`` in the currency's minor unit (``1500 JPY`` has none); ``grouping`` adds thousands
    separators for messages (``1,500.00 GBP``)."""
    amount = money.amount.quantize(minor_unit(money.currency), rounding=ROUND_HALF_UP)
    return f"{amount:,} {money.currency}" if grouping else f"{amount} {money.currency}"
