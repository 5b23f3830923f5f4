"""``PsaTimePort``: the Kantata adapter and the hand-written fake both offer every method of the port with its
parameters, and the fake answers the re-read the way the adapter does (found / missing / unmappable, absent
statuses)."""

from __future__ import annotations

import inspect

import pytest

from hub.connectors.kantata import KantataPsa
from hub.connectors.ports import LineItems, PsaTimePort
from hub.errors import DataValidationError, PermanentError
from hub.model import ApprovalStatus, ProjectStatus, TaskStatus
from tests.support.fakes import FakePsaTime
from tests.support.time_expense_builders import APPROVED_AT, expense_line, time_entry

PORT_METHODS = [
    name
    for name, member in vars(PsaTimePort).items()
    if inspect.isfunction(member) and not name.startswith("_")
]


def test_the_port_has_the_re_read_methods():
    assert {"line_items_by_id", "project_statuses", "task_statuses"} <= set(PORT_METHODS)


@pytest.mark.parametrize("implementation", [KantataPsa, FakePsaTime])
@pytest.mark.parametrize("method", PORT_METHODS)
def test_every_implementation_takes_each_port_method_with_the_ports_parameters(implementation, method):
    wanted = inspect.signature(getattr(PsaTimePort, method)).parameters
    offered = inspect.signature(getattr(implementation, method)).parameters

    for name, parameter in wanted.items():
        assert name in offered, f"{implementation.__name__}.{method} lacks {name}"
        assert offered[name].kind == parameter.kind
    extra = [p for n, p in offered.items() if n not in wanted]
    assert all(p.default is not inspect.Parameter.empty for p in extra)  # anything more is optional


def test_the_fake_re_reads_entries_as_they_are_now_found_missing_or_unmappable():
    approved = time_entry(psa_id="TE-1", approval_status=ApprovalStatus.APPROVED, approved_at=APPROVED_AT)
    withdrawn = time_entry(psa_id="TE-2", approval_status=ApprovalStatus.WITHDRAWN, approved_at=None)
    psa = FakePsaTime()
    psa.put(approved, withdrawn, expense_line(psa_id="TE-3"))
    broken = DataValidationError("no legal entity", problems=[{"field": "legal_entity_code", "problem": "x"}])
    psa.unmappable[("time-entry", "TE-4")] = broken

    items = psa.line_items_by_id("time-entry", ["TE-1", "TE-2", "TE-3", "TE-4", "TE-1"])

    assert items == LineItems(
        found={"TE-1": approved, "TE-2": withdrawn}, missing=("TE-3",), unmappable={"TE-4": broken}
    )  # TE-3 is an expense, not a time entry
    assert psa.calls["line_items_by_id"] == 1
    with pytest.raises(PermanentError):
        psa.time_entry("TE-3")


def test_the_fake_answers_only_the_statuses_it_holds_and_can_be_told_to_fail():
    psa = FakePsaTime(projects={"880001": ProjectStatus.ON_HOLD}, tasks={"990011": TaskStatus.CLOSED})
    psa.fail_next("project_statuses", PermanentError("down", system="fake-psa"))

    with pytest.raises(PermanentError):
        psa.project_statuses(["880001"])
    assert psa.project_statuses(["880001", "880002"]) == {"880001": ProjectStatus.ON_HOLD}
    assert psa.task_statuses(["990011", "990012"]) == {"990011": TaskStatus.CLOSED}
    assert psa.calls["project_statuses"] == 2
