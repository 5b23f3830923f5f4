"""The worker queue's consumer against moto (ledger, bus) with a hand-written PSA resource pool: what each
message becomes, and that every message in is applied, unchanged, a duplicate, parked, retried or malformed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.errors import DataValidationError, ThrottledError
from hub.events import EventPublisher
from hub.flows.workforce.consumer import Disposition, Fate, WorkerConsumerDeps, consume_workers
from hub.flows.workforce.projects import MarginRequest
from hub.flows.workforce.sync import WorkerMessage
from hub.ledger import Ledger
from hub.planning import PlanningStore
from tests.support.fakes import FakePsaResources
from tests.support.workforce_builders import placement, rate, worker

TODAY = dt.date(2026, 11, 20)
CHANGED = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def changed(hcm_id: str, minutes: int = 0, **overrides):
    return worker(hcm_id=hcm_id, changed_at=CHANGED + dt.timedelta(minutes=minutes), **overrides)


class World:
    def __init__(self, hub):
        self.hub = hub
        self.psa = FakePsaResources()
        self.held: list[tuple[str, str, str | None]] = []
        self.resent: list[tuple[WorkerMessage, int, int]] = []
        self.repriced: list[MarginRequest] = []
        self.ledger = Ledger(hub.ledger_table)
        self.deps = WorkerConsumerDeps(
            ledger=self.ledger,
            psa=self.psa,
            events=EventPublisher(hub.bus_name),
            hold=lambda body, reason, cid: self.held.append((body, reason, cid)),
            resend=lambda message, delay, times: self.resent.append((message, delay, times)),
            today=lambda: TODAY,
            jitter=lambda: 0.5,
            planning=PlanningStore(hub.planning_table),
            reprice=self.repriced.extend,
        )
        self._n = 0

    def consume(self, *bodies):
        messages = []
        for body in bodies:
            self._n += 1
            text = body if isinstance(body, str) else WorkerMessage(worker=body).model_dump_json()
            messages.append((f"m-{self._n}", text, 0))
        return consume_workers(messages, self.deps)


@pytest.fixture
def world(hub):
    return World(hub)


def test_new_workers_are_created_once_with_a_worker_updated_event_that_carries_no_name(world, hub):
    outcome = world.consume(changed("E1"), changed("E2"))

    assert outcome.count(Fate.APPLIED) == 2 and outcome.failed_ids == []
    assert world.ledger.header("worker:E1")["status"] == "COMPLETED"
    events = hub.events("WorkerUpdated")
    assert sorted(e["data"]["hcmId"] for e in events) == ["E1", "E2"]
    assert {e["data"]["change"] for e in events} == {"created"}
    assert "Consultant" not in json.dumps(events)  # the display name never leaves the HCM and the PSA


def test_the_same_change_again_and_an_older_change_after_a_newer_one_change_nothing(world, hub):
    world.consume(changed("E1", 10))
    again = world.consume(changed("E1", 10))  # a redelivery, the next run's overlap
    older = world.consume(changed("E1", 5, skills=("old",)))  # a DLQ redrive of an earlier change

    assert again.count(Fate.DUPLICATE) == 1 and older.count(Fate.DUPLICATE) == 1
    assert world.psa.upserted == ["E1"] and len(hub.events("WorkerUpdated")) == 1


def test_two_changes_of_one_worker_in_a_batch_apply_the_latest(world):
    outcome = world.consume(changed("E1", 5, skills=("first",)), changed("E1", 9, skills=("latest",)))

    assert outcome.count(Fate.DUPLICATE) == 1 and outcome.count(Fate.APPLIED) == 1
    assert world.psa.pool["E1"]["skills"] == ("latest",)


def test_a_rate_change_updates_the_worker_and_an_unchanged_worker_publishes_nothing(world, hub):
    world.consume(changed("E1", 0))
    same = world.consume(changed("E1", 1))  # re-stamped in the HCM, nothing the PSA holds changed
    new_rate = world.consume(
        changed(
            "E1",
            2,
            cost_rates=(rate("80", end=dt.date(2026, 11, 15)), rate("95", start=dt.date(2026, 11, 16))),
        )
    )

    assert same.count(Fate.UNCHANGED) == 1 and new_rate.messages[0].reason == "updated"
    assert [e["data"]["change"] for e in hub.events("WorkerUpdated")] == ["created", "updated"]
    assert hub.events("WorkerUpdated")[-1]["data"]["costRate"] == {"amount": "95", "currency": "USD"}


def test_a_leaver_past_the_last_day_is_deactivated(world):
    world.consume(changed("E1"))
    outcome = world.consume(changed("E1", 1, end_date=dt.date(2026, 11, 19)))

    assert outcome.messages[0].reason == "deactivated" and world.psa.pool["E1"]["active"] is False


def test_one_worker_the_psa_refuses_is_parked_alone_and_the_rest_apply(world):
    world.psa.fail["E2"] = DataValidationError("skill 'x' unknown", system="kantata")

    outcome = world.consume(changed("E1"), changed("E2"), changed("E3"))

    assert outcome.count(Fate.APPLIED) == 2 and outcome.count(Fate.PARKED) == 1
    [(body, reason, cid)] = world.held
    assert cid == "worker:E2" and "skill 'x' unknown" in reason
    assert json.loads(body)["worker"]["hcm_id"] == "E2"  # redrivable as it is
    assert world.ledger.header("worker:E2")["status"] == "PARKED"


def test_throttling_sends_the_worker_again_later_and_never_to_the_dlq(world):
    world.psa.fail["E1"] = ThrottledError("429", retry_after=30, system="kantata")

    outcome = world.consume(changed("E1"))

    assert outcome.messages[0].disposition is Disposition.RESENT and world.held == []
    [(message, delay, times)] = world.resent
    assert message.worker.hcm_id == "E1" and delay >= 30 and times == 1
    assert "claim_owner" not in world.ledger.header("worker:E1")  # given back for the next delivery


def test_every_message_in_is_applied_unchanged_duplicate_parked_retried_or_malformed(world):
    world.consume(changed("E4"))
    world.psa.fail["E2"] = DataValidationError("bad", system="kantata")
    world.psa.fail["E3"] = ThrottledError("429", system="kantata")
    bodies = [changed("E1"), changed("E2"), changed("E3"), changed("E4"), changed("E1"), '{"worker": 1}']

    outcome = world.consume(*bodies)

    fates = [m.fate for m in outcome.messages]
    assert len(fates) == len(bodies)
    assert sorted(fates) == sorted(
        [Fate.APPLIED, Fate.PARKED, Fate.RETRY, Fate.DUPLICATE, Fate.DUPLICATE, Fate.MALFORMED]
    )


def test_the_handler_reports_retries_as_batch_item_failures_and_holds_parked_workers_in_the_dlq(hub):
    import boto3

    from functions.worker_consumer import handler as module
    from hub.errors import TransientError
    from hub.settings import WorkerConsumerSettings, load
    from tests.support.aws import REGION, drain, lambda_context, sqs_event

    sqs = boto3.client("sqs", region_name=REGION)
    psa = FakePsaResources()
    psa.fail["E2"] = DataValidationError("unknown department", system="kantata")
    psa.fail["E3"] = TransientError("timeout", system="kantata")
    deps = module.build_deps(load(WorkerConsumerSettings), psa=psa, sqs=sqs, today=lambda: TODAY)
    for hcm_id in ("E1", "E2", "E3"):
        sqs.send_message(
            QueueUrl=hub.worker_queue_url, MessageBody=WorkerMessage(worker=changed(hcm_id)).model_dump_json()
        )
    messages = drain(hub.worker_queue_url)

    answer = module.handler(sqs_event(messages), lambda_context(), deps=deps)

    by_body = {json.loads(m["Body"])["worker"]["hcm_id"]: m["MessageId"] for m in messages}
    assert answer["batchItemFailures"] == [{"itemIdentifier": by_body["E3"]}]
    [held] = drain(hub.worker_dlq_url)
    assert json.loads(held["Body"])["worker"]["hcm_id"] == "E2"
    assert "unknown department" in held["MessageAttributes"]["parkedReason"]["StringValue"]


# ------------------------------------------------------------------ what the margin flow needs from a worker


def test_an_applied_worker_is_kept_for_margins_and_its_future_dated_changes_are_due_on_their_days(world):
    raise_on = dt.date(2026, 12, 1)
    transfer_on = dt.date(2027, 1, 1)
    leaver = changed(
        "E1",
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=raise_on - dt.timedelta(days=1)),
            rate("95.00", start=raise_on),
        ),
        placements=(placement(end=transfer_on - dt.timedelta(days=1)), placement("UK01", start=transfer_on)),
        end_date=dt.date(2027, 3, 31),
    )

    world.consume(leaver)

    planning = world.deps.planning
    assert planning.workers(["E1"])["E1"] == leaver
    assert planning.due(raise_on) == ["E1"] and planning.due(transfer_on) == ["E1"]
    assert planning.due(dt.date(2027, 4, 1)) == ["E1"]  # deactivated the day after the last day
    assert planning.due(TODAY) == []  # what is in effect today was applied now


def test_a_cost_rate_change_reprices_the_projects_the_worker_is_planned_on_naming_the_change(world):
    world.consume(changed("E1"))
    world.deps.planning.plan_on("880001", ["E1"])
    world.deps.planning.plan_on("880002", ["E1", "E2"])

    raised = changed(
        "E1",
        30,
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=dt.date(2026, 11, 15)),
            rate("92.50", start=dt.date(2026, 11, 16)),
        ),
    )
    world.consume(raised)
    world.consume(changed("E2", 40, skills=("sql",)))  # not planned anywhere, and its rates did not change

    assert sorted(r.psa_project_id for r in world.repriced) == ["880001", "880002"]
    cause = world.repriced[0].cause
    assert cause.kind == "worker" and cause.worker_hcm_id == "E1"
    assert cause.detail == "the cost rate of worker E1 is 92.50 USD/h from 2026-11-16 (was 80.00 USD/h)"


def test_a_skills_change_reprices_nothing(world):
    world.consume(changed("E1"))
    world.deps.planning.plan_on("880001", ["E1"])

    world.consume(changed("E1", 5, skills=("python",)))

    assert world.repriced == []


def test_on_its_day_an_applied_change_is_applied_again_and_a_later_hcm_change_supersedes_it(world):
    first = changed(
        "E1",
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=dt.date(2026, 11, 30)),
            rate("95.00", start=dt.date(2026, 12, 1)),
        ),
    )
    world.consume(first)

    on_the_day = WorkerMessage(worker=first, source="effective-date", effective_on=dt.date(2026, 12, 1))
    again = world.consume(on_the_day.model_dump_json())
    redelivered = world.consume(on_the_day.model_dump_json())
    older_hcm_change = world.consume(changed("E1", -5))

    assert again.count(Fate.UNCHANGED) + again.count(Fate.APPLIED) == 1
    assert redelivered.count(Fate.DUPLICATE) == 1 and older_hcm_change.count(Fate.DUPLICATE) == 1
    assert world.psa.upserted == ["E1", "E1"]
