"""The posting consumer's handler against moto (ledger, routing, bus, posting queue and DLQ), with the
hand-written PSA and ERP fakes: what each message becomes, per record, and what is left on the queues."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from hub.errors import ThrottledError, TransientError
from hub.flows.posting.config import TableConfig
from hub.flows.posting.messages import PostingRequest, enqueue
from hub.ledger import Ledger
from hub.model import ApprovalStatus, ClosedPeriodAction, ProjectStatus, TaskStatus
from hub.settings import PostingConsumerSettings, load
from local.ops import redrive, redrive_posting_from_ledger
from tests.support.aws import REGION, drain, lambda_context, sqs_event
from tests.support.fakes import FakePostingErp, FakePsaTime
from tests.support.time_expense_builders import expense_line, posting_policy, tax_rules, time_entry

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
PROJECT, TASK = "880001", "990011"


class World:
    def __init__(self, hub, closed_period=ClosedPeriodAction.NEXT_OPEN):
        from functions.posting_consumer import handler as module

        self.hub = hub
        self.module = module
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.psa = FakePsaTime(projects={PROJECT: ProjectStatus.ACTIVE}, tasks={TASK: TaskStatus.OPEN})
        self.erp = FakePostingErp()
        self.ledger = Ledger(hub.ledger_table)
        config = TableConfig(hub.routing_table, project_status=lambda _: None, task_status=lambda _: None)
        for code in ("US01", "UK01"):
            config.put_policy(posting_policy(code, closed_period=closed_period))
        for rule in tax_rules():
            config.put_tax_rule(rule)
        self.deps = self.build()

    def build(self):
        return self.module.build_deps(
            load(PostingConsumerSettings),
            psa=self.psa,
            erp=lambda system: self.erp,
            sqs=self.sqs,
            now=lambda: NOW,
        )

    def send(self, *entries, source="webhook"):
        requests = [
            PostingRequest(
                kind="time-entry" if e.__class__.__name__ == "TimeEntry" else "expense",
                psa_id=e.psa_id,
                source=source,
            )
            for e in entries
        ]
        for request in requests:  # one message each, duplicates included (enqueue dedupes a call's list)
            enqueue(self.sqs, self.hub.posting_queue_url, [request])

    def consume(self, deps=None):
        """Receive everything on the posting queue and hand it to the handler as one batch."""
        messages = drain(self.hub.posting_queue_url)
        answer = self.module.handler(sqs_event(messages), lambda_context(), deps=deps or self.deps)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        return messages, failed

    def parked(self):
        return [
            (json.loads(m["Body"]), m["MessageAttributes"]["parkedReason"]["StringValue"])
            for m in drain(self.hub.posting_dlq_url)
        ]

    def status(self, kind, psa_id):
        from hub.flows.posting.messages import correlation_id_for

        return self.ledger.header(correlation_id_for(kind, psa_id))


@pytest.fixture
def world(hub):
    return World(hub)


def test_approved_entries_on_the_queue_post_once_and_every_message_is_done(world, hub):
    entries = [time_entry(psa_id=f"TE-{n}", worker_id=f"W-{n}", hours="7") for n in range(4)]
    meal = expense_line(psa_id="EX-1")
    world.psa.put(*entries, meal)
    world.send(*entries, meal)

    messages, failed = world.consume()

    assert len(messages) == 5 and failed == set()
    assert len(world.erp.records) == 5
    assert world.psa.calls["line_items_by_id"] == 2  # one read per kind, not one per entry
    assert world.status("time-entry", "TE-0")["status"] == "COMPLETED"
    assert len(hub.events("TimePosted")) == 4 and len(hub.events("ExpensePosted")) == 1
    assert drain(hub.posting_queue_url) == [] and world.parked() == []


def test_duplicates_in_one_batch_and_across_redeliveries_post_once(world, hub):
    entry = time_entry(psa_id="TE-DUP")
    world.psa.put(entry)
    world.send(entry, entry, entry)  # three copies in one batch

    _, failed = world.consume()
    world.send(entry, entry)  # and two more later (sweep overlap, a redrive)
    _, failed_again = world.consume()

    assert failed == set() and failed_again == set()
    assert list(world.erp.records) == [("TE-DUP", 1)] and world.erp.calls == 1
    assert len(hub.events("TimePosted")) == 1


def test_an_approval_withdrawn_after_the_message_was_sent_posts_nothing(world, hub):
    entry = time_entry(psa_id="TE-W")
    world.psa.put(entry)
    world.send(entry)
    world.psa.put(entry.model_copy(update={"approval_status": ApprovalStatus.SUBMITTED, "approved_at": None}))

    _, failed = world.consume()

    assert failed == set() and world.erp.records == {}
    header = world.status("time-entry", "TE-W")
    assert header["status"] == "IGNORED" and "approved" in header["reason"]


def test_an_entry_deleted_in_the_psa_is_rejected_with_its_reason(world):
    entry = time_entry(psa_id="TE-GONE")
    world.send(entry)  # never in the PSA (deleted before the consumer read it)

    _, failed = world.consume()

    assert failed == set() and world.erp.records == {}
    assert "no longer has" in world.status("time-entry", "TE-GONE")["reason"]


def test_a_failed_check_parks_the_entry_in_the_dlq_with_its_reason_and_a_redrive_after_the_fix_posts_it(
    world, hub
):
    too_long = time_entry(psa_id="TE-LONG", hours="14")  # over the 12-hour day
    world.psa.put(too_long)
    world.send(too_long)

    _, failed = world.consume()
    held = world.sqs.receive_message(
        QueueUrl=hub.posting_dlq_url, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]

    assert failed == set() and world.erp.records == {}
    assert [json.loads(m["Body"])["psaId"] for m in held] == ["TE-LONG"]
    reason = held[0]["MessageAttributes"]["parkedReason"]["StringValue"]
    assert "14" in reason and "12" in reason  # the rule's values, for a finance reader
    assert world.status("time-entry", "TE-LONG")["status"] == "PARKED"

    # The worker corrects the entry in the PSA; ops redrive the posting dead-letter queue.
    world.psa.put(too_long.model_copy(update={"hours": too_long.hours - 6, "version": 2}))
    moved = redrive(world.sqs, hub.posting_dlq_url, hub.posting_queue_url)
    assert moved == [world.status("time-entry", "TE-LONG")["correlation_id"]]
    _, failed = world.consume()

    assert failed == set() and list(world.erp.records) == [("TE-LONG", 2)]
    assert world.status("time-entry", "TE-LONG")["status"] == "COMPLETED"


def test_an_entry_announced_three_times_in_one_batch_parks_with_one_message_in_the_dlq(world):
    too_long = time_entry(psa_id="TE-LONG3", hours="14")
    world.psa.put(too_long)
    world.send(too_long, too_long, too_long)  # the webhook's retries and the sweep, in one batch

    messages, failed = world.consume()

    assert len(messages) == 3 and failed == set()
    assert [body["psaId"] for body, _ in world.parked()] == ["TE-LONG3"]
    assert world.status("time-entry", "TE-LONG3")["status"] == "PARKED"


def test_a_workers_day_split_across_batches_is_checked_whole(world):
    """Eight hours posted in one batch; five more the same day arrive in a later batch: the later one reads
    the rest of the day from the PSA and is parked (13 h over the 12 h day); the posted one stays posted."""
    morning = time_entry(psa_id="TE-AM", hours="8")
    world.psa.put(morning)
    world.send(morning)
    world.consume()
    evening = time_entry(psa_id="TE-PM", hours="5")
    world.psa.put(evening)
    world.send(evening)

    world.consume()

    assert list(world.erp.records) == [("TE-AM", 1)]
    assert world.status("time-entry", "TE-PM")["status"] == "PARKED"
    [(body, reason)] = world.parked()
    assert body["psaId"] == "TE-PM" and "13" in reason and "12" in reason
    assert world.psa.calls["time_entries_on_days"] == 2  # one read per batch


def test_billable_time_on_a_project_put_on_hold_is_parked_naming_the_project(world):
    entry = time_entry(psa_id="TE-HOLD")
    world.psa.put(entry)
    world.psa.projects[PROJECT] = ProjectStatus.ON_HOLD
    world.send(entry)

    world.consume()

    (_, reason), *_ = world.parked()
    assert "on_hold" in reason or "on hold" in reason
    assert world.erp.records == {}


def test_throttling_sends_the_entry_again_with_a_delay_and_never_to_the_dlq(world, hub):
    entry = time_entry(psa_id="TE-T")
    world.psa.put(entry)
    world.erp.fail["TE-T"] = ThrottledError("pool full", system="netsuite-us", retry_after=3)
    world.send(entry)

    messages, failed = world.consume()

    assert failed == set()  # done with: a fresh copy is on the queue instead
    assert world.parked() == []
    resent = drain(hub.posting_queue_url)
    assert resent == []  # delayed: not visible yet
    header = world.status("time-entry", "TE-T")
    assert header["status"] != "PARKED" and "claim_owner" not in header  # the claim was given back


def test_a_transient_erp_failure_is_a_batch_item_failure_and_the_rest_of_the_batch_completes(world):
    flaky, fine = time_entry(psa_id="TE-X", worker_id="W-1"), time_entry(psa_id="TE-OK", worker_id="W-2")
    world.psa.put(flaky, fine)
    world.erp.fail["TE-X"] = TransientError("503 from the ERP", system="netsuite-us")
    world.send(flaky, fine)

    messages, failed = world.consume()

    flaky_message = next(m["MessageId"] for m in messages if json.loads(m["Body"])["psaId"] == "TE-X")
    assert failed == {flaky_message}
    assert list(world.erp.records) == [("TE-OK", 1)]


def test_a_psa_outage_retries_the_whole_batch_and_decides_nothing(world):
    entry = time_entry(psa_id="TE-P")
    world.psa.put(entry)
    world.psa.fail_next("line_items_by_id", TransientError("PSA down", system="kantata"))
    world.send(entry)

    messages, failed = world.consume()

    assert failed == {m["MessageId"] for m in messages}
    assert world.erp.records == {}


def test_a_message_that_is_not_a_posting_request_is_held_in_the_dlq_at_once(world, hub):
    world.sqs.send_message(QueueUrl=hub.posting_queue_url, MessageBody='{"kind": "invoice", "psaId": "1"}')

    _, failed = world.consume()

    assert failed == set()
    (body, reason), *_ = world.parked()
    assert body["kind"] == "invoice" and "kind" in reason


def test_an_entry_in_a_closed_period_under_a_hold_policy_is_held_not_parked(hub):
    world = World(hub, closed_period=ClosedPeriodAction.HOLD)
    world.erp.closed = ("2026-11",)
    entry = time_entry(psa_id="TE-NOV")
    world.psa.put(entry)
    world.send(entry)

    _, failed = world.consume()

    assert failed == set() and world.parked() == [] and world.erp.records == {}
    assert world.status("time-entry", "TE-NOV")["status"] == "HELD"


def test_a_second_consumer_holding_a_copy_while_the_first_posts_does_not_post_it_again(world, hub):
    """Two copies of one entry on two consumers at once (a webhook and the sweep): the ledger claim lets
    one post; the other's copy is retried and then found posted."""
    entry = time_entry(psa_id="TE-RACE")
    world.psa.put(entry)
    other = world.build()  # another container: its own claim owner
    world.send(entry)
    first_batch = drain(hub.posting_queue_url)
    world.send(entry)
    second_batch = drain(hub.posting_queue_url)
    answers = []

    def the_other_consumer_runs_now():
        world.erp.during_post = None
        answers.append(world.module.handler(sqs_event(second_batch), lambda_context(), deps=other))

    world.erp.during_post = the_other_consumer_runs_now
    first = world.module.handler(sqs_event(first_batch), lambda_context(), deps=world.deps)

    assert first["batchItemFailures"] == []
    assert answers[0]["batchItemFailures"] == [{"itemIdentifier": second_batch[0]["MessageId"]}]
    assert world.erp.calls == 1 and list(world.erp.records) == [("TE-RACE", 1)]
    # SQS hands the refused copy back later: by then it is a duplicate.
    again = world.module.handler(sqs_event(second_batch), lambda_context(), deps=other)
    assert again["batchItemFailures"] == [] and world.erp.calls == 1


def test_every_message_in_is_posted_held_parked_rejected_or_retried(hub):
    """Conservation: in = posted + held + parked + rejected (+ retried, which stay on the queue)."""
    world = World(hub)
    entries = [time_entry(psa_id=f"TE-C{n}", worker_id=f"W-{n}", hours="6") for n in range(6)]
    world.psa.put(*entries[:5])  # TE-C5 is not in the PSA: rejected
    world.psa.put(entries[1].model_copy(update={"hours": entries[1].hours + 10}))  # parked
    world.psa.put(entries[2].model_copy(update={"approval_status": ApprovalStatus.REJECTED}))  # rejected
    world.erp.fail["TE-C3"] = TransientError("timeout", system="netsuite-us")  # retried
    world.send(*entries)

    messages, failed = world.consume()

    handled = {f.psa_id for f in entries}
    assert len(messages) == len(handled) == 6
    posted = {k[0] for k in world.erp.records}
    parked = {body["psaId"] for body, _ in world.parked()}
    retried = {json.loads(m["Body"])["psaId"] for m in messages if m["MessageId"] in failed}
    statuses = {e.psa_id: world.status("time-entry", e.psa_id)["status"] for e in entries}
    rejected = {k for k, v in statuses.items() if v == "IGNORED"}
    assert posted == {"TE-C0", "TE-C4"} and parked == {"TE-C1"} and retried == {"TE-C3"}
    assert rejected == {"TE-C2", "TE-C5"}
    assert posted | parked | retried | rejected == handled
    assert len(posted) + len(parked) + len(retried) + len(rejected) == len(messages)


def test_parked_entries_can_be_redriven_from_the_ledger_after_their_held_messages_expired(world, hub):
    world.psa.put(time_entry(psa_id="TE-LONG2", hours="15"))
    world.send(time_entry(psa_id="TE-LONG2"))
    world.consume()
    drain(hub.posting_dlq_url)  # the held message is gone (retention)

    moved = redrive_posting_from_ledger(world.sqs, world.ledger, hub.posting_queue_url)

    bodies = [json.loads(m["Body"]) for m in drain(hub.posting_queue_url)]
    assert moved == [world.status("time-entry", "TE-LONG2")["correlation_id"]]
    assert bodies == [{"kind": "time-entry", "psaId": "TE-LONG2", "source": "redrive"}]
