"""The checks before posting, one pure function per rule, each returning its violations (or a decision)."""

from hub.flows.posting.rules.approval import check_approval
from hub.flows.posting.rules.policy import (
    check_billable_target,
    check_expense_currency,
    check_expense_limit,
    check_hours_per_day,
    check_receipt,
    worker_day_hours,
)
from hub.flows.posting.rules.tax import check_tax_rule, find_tax_rule, tax_treatment
from hub.flows.posting.rules.violation import Rule, Violation, describe
from hub.flows.posting.rules.window import entity_zone, local_date, local_instant, posting_decision

__all__ = [
    "Rule",
    "Violation",
    "check_approval",
    "check_billable_target",
    "check_expense_currency",
    "check_expense_limit",
    "check_hours_per_day",
    "check_receipt",
    "check_tax_rule",
    "describe",
    "entity_zone",
    "find_tax_rule",
    "local_date",
    "local_instant",
    "posting_decision",
    "tax_treatment",
    "worker_day_hours",
]
