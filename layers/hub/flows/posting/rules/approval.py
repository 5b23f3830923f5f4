"""Approval: only approved entries post. Submitted, rejected and withdrawn entries never do, and say why."""

from __future__ import annotations

from hub.flows.posting.rules.violation import Rule, Violation, label
from hub.model import ApprovalStatus, ExpenseLine, TimeEntry

# What each status that cannot post means to finance (the table the rule reads).
NOT_POSTABLE: dict[ApprovalStatus, str] = {
    ApprovalStatus.SUBMITTED: "is submitted but not approved yet; it posts once approved",
    ApprovalStatus.REJECTED: "was rejected by its approver; it is not posted",
    ApprovalStatus.WITHDRAWN: "had its approval withdrawn; it is not posted",
}


def check_approval(item: TimeEntry | ExpenseLine) -> list[Violation]:
    """No violation for an approved entry; otherwise one naming the status. Decide on the entry's *current*
    version: a webhook's copy may be stale, so the poster re-reads the entry before posting it."""
    why = NOT_POSTABLE.get(item.approval_status)
    if why is None:
        return []
    return [
        Violation(
            rule=Rule.APPROVAL,
            field="approval_status",
            value=str(item.approval_status),
            limit=str(ApprovalStatus.APPROVED),
            message=f"{label(item)} {why}; only approved entries post",
        )
    ]
