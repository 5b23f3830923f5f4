"""The real project-initiation ASL executed by moto, each task running the real steps handler in-process.

Ports are the shared hand-written fakes here (deterministic failures); the e2e tier runs the same flow
against the sandboxes through the deployed local stack.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest

from functions.initiation_starter.handler import handler as starter_handler
from functions.initiation_steps.handler import handler as steps_handler
from hub.errors import PermanentError, ThrottledError, TransientError
from hub.events import EventPublisher
from hub.flows.initiation.intake import business_key, correlation_id_for, intake_message
from hub.flows.initiation.steps import StepDeps
from hub.ledger import Ledger
from hub.planning import PlanningStore
from hub.routing import RoutingTable
from local import lambda_runtime
from tests.support.aws import REGION, drain, lambda_context, sqs_event
from tests.support.builders import opportunity
from tests.support.fakes import FakeCrm, FakeErp, FakePsa


class World:
    """The hub in moto with fake vendors behind the ports."""

    def __init__(self, hub, opportunities=()):
        from functions.initiation_steps.handler import _powertools_idempotent

        self.hub = hub
        self.crm = FakeCrm({o.crm_id: o for o in opportunities})
        self.psa = FakePsa()
        self.erps = {"netsuite-us": FakeErp("netsuite-us"), "netsuite-uk": FakeErp("netsuite-uk")}
        self.ledger = Ledger(hub.ledger_table)
        self.deps = StepDeps(
            ledger=self.ledger,
            routing=RoutingTable(hub.routing_table),
            events=EventPublisher(hub.bus_name),
            crm=lambda: self.crm,
            psa=lambda: self.psa,
            erp=lambda system: self.erps[system],
            planning=PlanningStore(hub.planning_table),
            idempotent=_powertools_idempotent(hub.idempotency_table),
        )
        lambda_runtime.install()
        lambda_runtime.register(
            "pshub-initiation-steps", lambda event, context: steps_handler(event, context, deps=self.deps)
        )

    def start(self, opp, *, attempt_message=None) -> str:
        cid = correlation_id_for(business_key(opp.crm_id))
        self.ledger.open(
            cid,
            flow="project-initiation",
            business_key=business_key(opp.crm_id),
            subject=opp.crm_id,
            source="test",
        )
        message = attempt_message or intake_message(cid, opp)
        sqs = boto3.client("sqs", region_name=REGION)
        sqs.send_message(QueueUrl=self.hub.intake_queue_url, MessageBody=json.dumps(message))
        self.consume()
        return cid

    def consume(self) -> dict:
        messages = drain(self.hub.intake_queue_url)
        return starter_handler(sqs_event(messages), lambda_context("pshub-initiation-starter"))

    def wait(self, cid: str, timeout: float = 60) -> dict:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            executions = sfn.list_executions(stateMachineArn=self.hub.state_machine_arn)["executions"]
            mine = [e for e in executions if e["name"].startswith(cid)]
            if mine and all(e["status"] != "RUNNING" for e in mine):
                return self.ledger.get(cid)
            time.sleep(0.05)
        raise AssertionError(f"execution for {cid} still running after {timeout}s")


@pytest.fixture
def world(hub):
    yield lambda *opps: World(hub, opps)
    lambda_runtime.clear()


def _steps(tx) -> list[tuple[str, str]]:
    return [(c["step"], c["outcome"]) for c in tx["checkpoints"]]


def test_closed_won_deal_becomes_customer_project_wbs_billing_schedule_and_erp_job(world, hub):
    w = world()
    opp = opportunity()
    tx = w.wait(w.start(opp))
    assert tx["status"] == "COMPLETED", tx
    assert [s for s, o in _steps(tx) if o == "ok"] == [
        "start",
        "validate",
        "enrich",
        "upsert_customer",
        "create_psa_project",
        "create_wbs",
        "create_billing_schedule",
        "provision_erp_project",
        "write_back_crm",
        "publish_activated",
    ]
    us = w.erps["netsuite-us"]
    assert len(us.customers) == 1 and len(us.jobs) == 1 and w.erps["netsuite-uk"].calls.total() == 0
    project_id = w.psa.projects["sf-opp-0065g00000AbCdEAAV"]
    assert set(w.psa.tasks[project_id]) == {"1", "1.1", "1.2", "2", "2.1", "2.2"}
    assert set(w.psa.billing[project_id]) == {"M1", "M2"}
    profile = PlanningStore(hub.planning_table).project(project_id)  # what its margin is priced against
    assert profile.project.billing_schedule.scheduled_total.amount == 120000
    assert profile.project.customer.name == "Northwind Traders" and profile.floor is None
    assert w.crm.write_backs[-1]["status"] == "Project Active"
    assert w.crm.write_backs[-1]["psa_project_id"] == project_id
    assert tx["refs"]["psaProjectId"] == project_id and tx["refs"]["erpSystem"] == "netsuite-us"
    activated = hub.events("ProjectActivated")
    assert len(activated) == 1 and activated[0]["correlationid"] == tx["correlation_id"]
    assert activated[0]["specversion"] == "1.0" and activated[0]["schemaversion"] == "1.0"


def test_uk_entity_is_routed_to_the_uk_erp(world):
    w = world()
    tx = w.wait(w.start(opportunity(legal_entity_code="UK01")))
    assert tx["status"] == "COMPLETED"
    assert len(w.erps["netsuite-uk"].jobs) == 1 and w.erps["netsuite-us"].calls.total() == 0


def test_throttled_erp_step_is_retried_by_the_state_machine_and_completes(world):
    w = world()
    w.erps["netsuite-us"].fail_next(
        "upsert_customer", ThrottledError("429", retry_after=1, system="netsuite")
    )
    tx = w.wait(w.start(opportunity()))
    assert tx["status"] == "COMPLETED"
    assert ("upsert_customer", "retry") in _steps(tx)
    assert w.erps["netsuite-us"].calls["upsert_customer"] == 2
    assert len(w.erps["netsuite-us"].customers) == 1


def test_missing_legal_entity_parks_the_deal_with_its_reason(world, hub):
    w = world()
    tx = w.wait(w.start(opportunity(legal_entity_code=None)))
    assert tx["status"] == "PARKED"
    assert tx["reason"].startswith("DataValidationError") and "legal_entity_code" in tx["reason"]
    assert w.psa.calls.total() == 0 and w.erps["netsuite-us"].calls.total() == 0
    parked = hub.events("TransactionParked")
    assert len(parked) == 1 and "legal_entity_code" in parked[0]["data"]["reason"]
    held = [json.loads(m["Body"]) for m in drain(hub.intake_dlq_url)]
    assert [h["correlationId"] for h in held] == [tx["correlation_id"]]
    assert "legal_entity_code" in held[0]["parkedReason"]
    assert w.crm.write_backs[-1]["status"] == "Integration Error"


def test_permanent_error_after_partial_creation_parks_and_a_redrive_resumes_without_duplicates(world, hub):
    opp = opportunity()
    w = world(opp)
    w.erps["netsuite-us"].fail_next("upsert_project", PermanentError("subsidiary closed", system="netsuite"))
    tx = w.wait(w.start(opp))
    assert tx["status"] == "PARKED" and "subsidiary closed" in tx["reason"]
    assert hub.events("TransactionParked")[0]["data"]["completedSteps"] == [
        "route",
        "customer",
        "psa",
        "wbs",
        "billing",
    ]
    # ops fix the cause and redrive the held message from the dead-letter queue to the intake queue
    held = drain(hub.intake_dlq_url)
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=hub.intake_queue_url, MessageBody=held[0]["Body"]
    )
    w.consume()
    tx = w.wait(tx["correlation_id"])
    assert tx["status"] == "COMPLETED" and tx["attempt"] == 2
    assert len(w.psa.projects) == 1 and len(w.erps["netsuite-us"].jobs) == 1
    assert w.psa.calls["ensure_project"] == 1  # the first attempt's result was replayed, not redone
    assert w.crm.calls["get_opportunity"] == 1  # the redrive re-read the deal from the CRM


def test_transient_errors_beyond_the_retries_park_the_deal_resumably(world):
    w = world()
    w.psa.fail_next("ensure_wbs", TransientError("503", system="kantata"), times=10)
    tx = w.wait(w.start(opportunity()), timeout=90)
    assert tx["status"] == "PARKED" and tx["reason"].startswith("TransientError")
    assert w.psa.calls["ensure_wbs"] == 5  # the first try and the four retries of the ASL


def test_duplicate_intake_messages_start_one_execution(world, hub):
    w = world()
    opp = opportunity()
    cid = correlation_id_for(business_key(opp.crm_id))
    w.ledger.open(
        cid,
        flow="project-initiation",
        business_key=business_key(opp.crm_id),
        subject=opp.crm_id,
        source="test",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    for _ in range(3):
        sqs.send_message(QueueUrl=hub.intake_queue_url, MessageBody=json.dumps(intake_message(cid, opp)))
    answer = w.consume()
    assert answer == {"batchItemFailures": []}
    tx = w.wait(cid)
    assert tx["status"] == "COMPLETED"
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=hub.state_machine_arn
    )["executions"]
    assert len(executions) == 1
    assert w.psa.calls["ensure_project"] == 1


def test_a_stale_copy_of_the_intake_message_does_not_restart_a_parked_deal(world, hub):
    w = world()
    opp = opportunity(legal_entity_code=None)
    tx = w.wait(w.start(opp))
    assert tx["status"] == "PARKED"
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=hub.intake_queue_url, MessageBody=json.dumps(intake_message(tx["correlation_id"], opp))
    )
    w.consume()
    tx = w.ledger.get(tx["correlation_id"])
    assert tx["status"] == "PARKED" and tx["attempt"] == 1
    assert ("start", "duplicate") in _steps(tx)
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=hub.state_machine_arn
    )["executions"]
    assert len(executions) == 1


def test_a_failing_park_step_still_holds_the_deal_for_ops_with_a_reason(world, hub):
    class BrokenBus:
        def publish(self, *envelopes):
            raise PermanentError("bus refused", system="eventbridge")

    w = world()
    w.deps.events = BrokenBus()
    tx = w.wait(w.start(opportunity(legal_entity_code=None)))
    held = [json.loads(m["Body"]) for m in drain(hub.intake_dlq_url)]
    assert [h["correlationId"] for h in held] == [tx["correlation_id"]]
    assert "park step failed" in held[0]["parkedReason"] and "DataValidationError" in held[0]["parkedReason"]


def test_a_failure_after_the_last_step_does_not_park_a_completed_deal(world, hub):
    from hub.flows.initiation import steps

    w = world()
    real = steps.STEPS["publish_activated"]

    def publish_then_lose_the_answer(state, deps):
        real(state, deps)
        deps.ledger.set_status(state["correlationId"], steps.Status.COMPLETED)
        raise PermanentError("lost after publishing", system="hub")

    steps.STEPS["publish_activated"] = publish_then_lose_the_answer
    try:
        tx = w.wait(w.start(opportunity()))
    finally:
        steps.STEPS["publish_activated"] = real
    assert tx["status"] == "COMPLETED"
    assert drain(hub.intake_dlq_url) == []
    assert hub.events("TransactionParked") == []


def test_a_record_that_no_longer_maps_after_hydration_parks_naming_the_fields(world, hub):
    class UnmappableCrm(FakeCrm):
        def get_opportunity(self, crm_id):
            from hub.model import Money

            return Money(amount="not money", currency="usd")  # raises pydantic's ValidationError

    w = world()
    w.crm = UnmappableCrm()
    opp = opportunity().model_copy(update={"needs_hydration": True})
    tx = w.wait(w.start(opp))
    assert tx["status"] == "PARKED"
    assert tx["reason"].startswith("DataValidationError") and "amount" in tx["reason"]
    assert "not money" not in json.dumps(tx)  # the offending value is not copied into the ledger


def test_a_parked_deal_whose_held_message_expired_is_redriven_from_the_ledger(world, hub):
    from local.ops import redrive_from_ledger

    opp = opportunity()
    w = world(opp)
    w.erps["netsuite-us"].fail_next("upsert_customer", PermanentError("customer on hold", system="netsuite"))
    tx = w.wait(w.start(opp))
    assert tx["status"] == "PARKED"
    drain(hub.intake_dlq_url)  # fourteen days later the held message is gone
    moved = redrive_from_ledger(boto3.client("sqs", region_name=REGION), w.ledger, hub.intake_queue_url)
    assert moved == [tx["correlation_id"]]
    w.consume()
    tx = w.wait(tx["correlation_id"])
    assert tx["status"] == "COMPLETED" and tx["attempt"] == 2
    assert len(w.erps["netsuite-us"].customers) == 1 and len(w.psa.projects) == 1
