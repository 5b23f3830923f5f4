"""Every check before posting, in order, for one time entry or expense line.

Order: approval, policy compliance (hours per day, billable target; for expenses currency, limit, receipt),
tax (expenses), posting window. All checks always run, so a parked entry carries every reason at once, and the
posting decision is always computed (a parked entry shows where it would have posted).

The outcome, in precedence order:
- ``not_approved``: submitted, rejected or withdrawn; nothing to fix in finance, never posted (the month-end
  conservation counts these as rejected); a later approval arrives as a new version;
- ``park``: any other violation; the entry waits for a person, with ``violations`` as its reasons;
- ``hold``: clean, but the posting window holds it (closed period, no period); re-evaluate later;
- ``post``: post into ``decision.period`` on ``decision.posting_date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from hub.flows.posting.rules import (
    Rule,
    Violation,
    check_approval,
    check_billable_target,
    check_expense_currency,
    check_expense_limit,
    check_hours_per_day,
    check_receipt,
    check_tax_rule,
    posting_decision,
    tax_treatment,
)
from hub.model import (
    AccountingCalendar,
    ExpenseLine,
    LegalEntity,
    PostingAction,
    PostingDecision,
    PostingPolicy,
    ProjectStatus,
    TaskStatus,
    TaxRule,
    TaxTreatment,
    TimeEntry,
)


class Outcome(StrEnum):
    POST = "post"
    HOLD = "hold"
    PARK = "park"
    NOT_APPROVED = "not_approved"


def _outcome(decision: PostingDecision, violations: tuple[Violation, ...]) -> Outcome:
    if any(v.rule is Rule.APPROVAL for v in violations):
        return Outcome.NOT_APPROVED
    if violations:
        return Outcome.PARK
    return Outcome.POST if decision.action is PostingAction.POST else Outcome.HOLD


class TimeEntryCheck(NamedTuple):
    decision: PostingDecision
    violations: tuple[Violation, ...]

    @property
    def outcome(self) -> Outcome:
        return _outcome(self.decision, self.violations)


class ExpenseCheck(NamedTuple):
    decision: PostingDecision
    violations: tuple[Violation, ...]
    tax: TaxTreatment | None  # None only when the entity has no tax rule for the category

    @property
    def outcome(self) -> Outcome:
        return _outcome(self.decision, self.violations)


def _require_entity_of(item: TimeEntry | ExpenseLine, entity: LegalEntity) -> None:
    if item.legal_entity_code != entity.code:
        raise ValueError(f"entity {entity.code} passed for an entry of {item.legal_entity_code}")


def check_time_entry(
    entry: TimeEntry,
    *,
    entity: LegalEntity,
    policy: PostingPolicy,
    calendar: AccountingCalendar,
    now_utc: dt.datetime,
    project_status: ProjectStatus,
    task_status: TaskStatus | None = None,
    same_day_entries: Iterable[TimeEntry] = (),
) -> TimeEntryCheck:
    """``same_day_entries``: the worker's other entries for ``entry.work_date`` (a whole batch is fine);
    ``project_status`` / ``task_status``: the PSA's current status of ``entry.project`` / ``entry.task``."""
    _require_entity_of(entry, entity)
    violations = (
        *check_approval(entry),
        *check_hours_per_day(entry, same_day_entries, policy),
        *check_billable_target(entry, project_status, task_status, policy),
    )
    decision = posting_decision(entry.work_date, now_utc, entity, calendar, policy)
    return TimeEntryCheck(decision=decision, violations=violations)


def check_expense_line(
    line: ExpenseLine,
    *,
    entity: LegalEntity,
    policy: PostingPolicy,
    calendar: AccountingCalendar,
    tax_rules: Iterable[TaxRule],
    now_utc: dt.datetime,
    project_status: ProjectStatus,
) -> ExpenseCheck:
    """``tax_rules`` may hold every entity's rules; ``project_status`` is the PSA's status of the project."""
    _require_entity_of(line, entity)
    rules = tuple(tax_rules)
    tax_problems = check_tax_rule(line, rules)
    violations = (
        *check_approval(line),
        *check_billable_target(line, project_status, None, policy),
        *check_expense_currency(line, policy),
        *check_expense_limit(line, policy),
        *check_receipt(line, policy),
        *tax_problems,
    )
    tax = None if tax_problems else tax_treatment(line, entity, rules)
    decision = posting_decision(line.expense_date, now_utc, entity, calendar, policy)
    return ExpenseCheck(decision=decision, violations=violations, tax=tax)
