"""Policy compliance per legal entity (``PostingPolicy``): hours per day per worker, billable work only on
active projects and open tasks, expense limits per category, receipts above a threshold.

Each function is pure, takes everything it needs as plain inputs and returns every violation it finds.
Amounts are compared after rounding to the currency's minor unit, and only in the policy's currency: a line in
another currency gets one ``currency`` violation (``check_expense_currency``) instead of a wrong comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from hub.flows.posting.rules.violation import Rule, Violation, fmt_money, fmt_number, label
from hub.model import (
    ApprovalStatus,
    ExpenseLine,
    PostingPolicy,
    ProjectStatus,
    TaskStatus,
    TimeEntry,
    round_money,
)

# Entries that no longer count towards a worker's day.
_NOT_COUNTED = frozenset({ApprovalStatus.REJECTED, ApprovalStatus.WITHDRAWN})


def _require_policy_of(item: TimeEntry | ExpenseLine, policy: PostingPolicy) -> None:
    if policy.legal_entity_code != item.legal_entity_code:
        raise ValueError(
            f"policy of {policy.legal_entity_code} passed for an entry of {item.legal_entity_code}"
        )


def worker_day_hours(entry: TimeEntry, same_day_entries: Iterable[TimeEntry]) -> Decimal:
    """The worker's hours on ``entry.work_date``: this entry plus the latest version of every other entry of
    the same worker and day that still counts (rejected and withdrawn entries do not; submitted ones do).
    Other workers' and other days' entries, and older versions of this entry, are ignored, so a caller may
    pass a whole batch."""
    latest: dict[str, TimeEntry] = {}
    for other in same_day_entries:
        if (
            other.psa_id == entry.psa_id
            or other.worker_id != entry.worker_id
            or other.work_date != entry.work_date
        ):
            continue
        kept = latest.get(other.psa_id)
        if kept is None or other.version > kept.version:
            latest[other.psa_id] = other
    counted = (other.hours for other in latest.values() if other.approval_status not in _NOT_COUNTED)
    return entry.hours + sum(counted, Decimal(0))


def check_hours_per_day(
    entry: TimeEntry, same_day_entries: Iterable[TimeEntry], policy: PostingPolicy
) -> list[Violation]:
    """Over the entity's daily maximum (exactly at it is fine). Every entry of an over-limit day is flagged,
    whatever order the entries arrive in: finance decides which one to correct."""
    _require_policy_of(entry, policy)
    total = worker_day_hours(entry, same_day_entries)
    if total <= policy.max_hours_per_day:
        return []
    limit = fmt_number(policy.max_hours_per_day)
    return [
        Violation(
            rule=Rule.MAX_HOURS_PER_DAY,
            field="hours",
            value=fmt_number(total),
            limit=limit,
            message=f"Worker {entry.worker_id} logged {fmt_number(total)} h on {entry.work_date}; "
            f"the {policy.legal_entity_code} limit is {limit} h a day",
        )
    ]


def check_billable_target(
    item: TimeEntry | ExpenseLine,
    project_status: ProjectStatus,
    task_status: TaskStatus | None,
    policy: PostingPolicy,
) -> list[Violation]:
    """Billable time and expenses go only to active projects, and billable time only to open WBS tasks (and,
    when the entity requires it, to a task at all). Non-billable entries are not checked. ``task_status`` is
    the status of ``item.task`` (required when the entry names a task, ignored otherwise)."""
    _require_policy_of(item, policy)
    if not item.billable:
        return []
    violations: list[Violation] = []
    what = "time" if isinstance(item, TimeEntry) else "expenses"
    if project_status is not ProjectStatus.ACTIVE:
        violations.append(
            Violation(
                rule=Rule.ACTIVE_PROJECT,
                field="project",
                value=str(project_status),
                limit=str(ProjectStatus.ACTIVE),
                message=f"{label(item)} is billable to project {item.project.external_id}, which is "
                f"{project_status.replace('_', ' ')}; billable {what} can only go to active projects",
            )
        )
    if isinstance(item, TimeEntry):
        if item.task is None:
            if policy.billable_requires_task:
                violations.append(
                    Violation(
                        rule=Rule.TASK_REQUIRED,
                        field="task",
                        value="none",
                        limit="a WBS task",
                        message=f"{label(item)} is billable but names no WBS task; "
                        f"{policy.legal_entity_code} requires a task for billable time",
                    )
                )
        elif task_status is None:
            raise ValueError(f"the status of task {item.task.wbs_code} is needed to check {label(item)}")
        elif task_status is not TaskStatus.OPEN:
            violations.append(
                Violation(
                    rule=Rule.OPEN_TASK,
                    field="task",
                    value=str(task_status),
                    limit=str(TaskStatus.OPEN),
                    message=f"{label(item)} is billable to WBS task {item.task.wbs_code} of project "
                    f"{item.project.external_id}, which is {task_status}; billable time can only go to "
                    "open tasks",
                )
            )
    return violations


def check_expense_currency(line: ExpenseLine, policy: PostingPolicy) -> list[Violation]:
    """The limits and the receipt threshold can only be checked in the policy's currency."""
    _require_policy_of(line, policy)
    if line.gross.currency == policy.currency:
        return []
    return [
        Violation(
            rule=Rule.CURRENCY,
            field="gross.currency",
            value=line.gross.currency,
            limit=policy.currency,
            message=f"{label(line)} is in {line.gross.currency} but {policy.legal_entity_code}'s expense "
            f"limits are in {policy.currency}; the PSA must report it in {policy.currency} before it can be "
            "checked and posted",
        )
    ]


def check_expense_limit(line: ExpenseLine, policy: PostingPolicy) -> list[Violation]:
    """Above the category's limit (exactly at it is fine); no limit configured means no check."""
    _require_policy_of(line, policy)
    limit = policy.expense_limits.get(line.category)
    if limit is None or line.gross.currency != limit.currency:
        return []
    gross, cap = round_money(line.gross), round_money(limit)
    if gross.amount <= cap.amount:
        return []
    category = line.category.replace("_", " ")
    return [
        Violation(
            rule=Rule.EXPENSE_LIMIT,
            field="gross",
            value=fmt_money(gross),
            limit=fmt_money(cap),
            message=f"{label(line)} for {category} is {fmt_money(gross, grouping=True)}; the "
            f"{policy.legal_entity_code} limit for {category} is {fmt_money(cap, grouping=True)}",
        )
    ]


def check_receipt(line: ExpenseLine, policy: PostingPolicy) -> list[Violation]:
    """A receipt is required above the threshold (exactly at it, none is), except in exempt categories."""
    _require_policy_of(line, policy)
    threshold = policy.receipt_required_above
    if (
        line.receipt_attached
        or line.category in policy.receipt_exempt_categories
        or line.gross.currency != threshold.currency
    ):
        return []
    gross, above = round_money(line.gross), round_money(threshold)
    if gross.amount <= above.amount:
        return []
    return [
        Violation(
            rule=Rule.RECEIPT_REQUIRED,
            field="receipt_attached",
            value=fmt_money(gross),
            limit=fmt_money(above),
            message=f"{label(line)} for {line.category.replace('_', ' ')} is "
            f"{fmt_money(gross, grouping=True)} with no receipt; {policy.legal_entity_code} requires a "
            f"receipt above {fmt_money(above, grouping=True)}",
        )
    ]
