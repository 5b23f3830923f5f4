import pytest

from hub.flows.posting.rules import Rule, check_approval
from hub.model import ApprovalStatus
from tests.support.time_expense_builders import expense_line, time_entry


def test_approved_time_entry_passes_the_approval_check():
    assert check_approval(time_entry()) == []


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (ApprovalStatus.SUBMITTED, "is submitted but not approved yet; it posts once approved"),
        (ApprovalStatus.REJECTED, "was rejected by its approver; it is not posted"),
        (ApprovalStatus.WITHDRAWN, "had its approval withdrawn; it is not posted"),
    ],
)
@pytest.mark.parametrize("build", [time_entry, expense_line], ids=["time", "expense"])
def test_given_an_entry_not_approved_when_checked_then_it_never_posts_and_says_why(build, status, says):
    (violation,) = check_approval(build(approval_status=status, approved_at=None))
    assert violation.rule is Rule.APPROVAL and violation.field == "approval_status"
    assert violation.value == str(status) and violation.limit == "approved"
    assert says in violation.message and violation.message.endswith("only approved entries post")


def test_message_names_the_entry_and_its_version():
    entry = time_entry(psa_id="TE-77", version=3, approval_status=ApprovalStatus.WITHDRAWN)
    assert check_approval(entry)[0].message.startswith("Time entry TE-77 (v3) had its approval withdrawn")


def test_expense_message_says_expense():
    line = expense_line(psa_id="EX-5", approval_status=ApprovalStatus.REJECTED)
    assert check_approval(line)[0].message.startswith("Expense EX-5 (v1) was rejected")


def test_violation_becomes_a_ledger_problem_with_rule_value_and_limit():
    (violation,) = check_approval(time_entry(approval_status=ApprovalStatus.SUBMITTED))
    assert violation.as_problem() == {
        "field": "approval_status",
        "problem": violation.message,
        "rule": "approval",
        "value": "submitted",
        "limit": "approved",
    }
