"""Posting configuration kept in the routing table (moto)."""

from __future__ import annotations

import pytest

from hub.errors import DataValidationError
from hub.flows.posting.config import TableConfig
from hub.model import ProjectStatus, TaskStatus
from hub.routing import RoutingTable
from tests.support.time_expense_builders import posting_policy, tax_rules


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def config(hub):
    clock = Clock()
    calls = []

    def project_status(psa_project_id):
        calls.append(psa_project_id)
        return ProjectStatus.ACTIVE

    store = TableConfig(
        hub.routing_table,
        project_status=project_status,
        task_status=lambda _: TaskStatus.OPEN,
        ttl_seconds=300,
        clock=clock,
    )
    return store, clock, calls


def test_policy_and_tax_rules_round_trip_beside_the_routes(config, hub):
    store, _, _ = config
    store.put_policy(posting_policy("UK01"))
    for rule in tax_rules():
        store.put_tax_rule(rule)
    assert store.policy("UK01") == posting_policy("UK01")
    assert set(store.tax_rules("UK01")) == {r for r in tax_rules() if r.legal_entity_code == "UK01"}
    assert RoutingTable(hub.routing_table).resolve("UK01").erp_system == "netsuite-uk"  # routes untouched


def test_an_entity_without_a_policy_is_a_data_problem_naming_it(config):
    store, _, _ = config
    with pytest.raises(DataValidationError, match="ZZ01"):
        store.policy("ZZ01")


def test_reads_are_cached_per_container_until_the_ttl_passes(config):
    store, clock, calls = config
    store.project_status("880001")
    store.project_status("880001")
    assert calls == ["880001"]
    clock.now = 301
    store.project_status("880001")
    assert calls == ["880001", "880001"]


def test_a_changed_policy_is_seen_at_once_by_the_writer_and_after_the_ttl_by_others(config, hub):
    store, clock, _ = config
    store.put_policy(posting_policy("US01"))
    other = TableConfig(
        hub.routing_table,
        project_status=lambda _: ProjectStatus.ACTIVE,
        task_status=lambda _: None,
        clock=clock,
    )
    assert other.policy("US01").max_hours_per_day == posting_policy("US01").max_hours_per_day
    store.put_policy(posting_policy("US01", max_hours_per_day=10))
    assert store.policy("US01").max_hours_per_day == 10
    assert other.policy("US01").max_hours_per_day != 10
    clock.now = 400
    assert other.policy("US01").max_hours_per_day == 10
