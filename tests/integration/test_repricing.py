"""Re-pricing projects from the margin queue, against moto (planning table, ledger, bus, analytics bucket,
delivery managers' topic, margin DLQ) and the Kantata sandbox through the real resource adapter: each change
stores a new margin version, announces it, and alerts the delivery manager when it falls below the floor."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from decimal import Decimal

import boto3
import httpx
import pytest

from functions.margin_consumer import handler as margin_handler
from hub.connectors.http import RetryPolicy
from hub.connectors.kantata_resources import KantataResources
from hub.errors import TransientError
from hub.flows.initiation.planning import plan_project
from hub.flows.workforce.projects import Cause, MarginRequest
from hub.flows.workforce.repricing import Fate, reprice_batch
from hub.ledger import Ledger
from hub.planning import PlanningStore
from hub.settings import MarginConsumerSettings, load
from local.sandboxes import KantataSandbox
from tests.support.aws import REGION, drain, lambda_context, sqs_event
from tests.support.builders import opportunity
from tests.support.workforce_builders import fx, rate, worker

TOKEN = "kantata-sandbox-token"
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


class World:
    def __init__(self, hub):
        self.hub = hub
        self.kantata = KantataSandbox(tokens=[TOKEN], clock=lambda: NOW)
        self.psa = KantataResources(
            httpx.Client(transport=self.kantata.transport()),
            token=TOKEN,
            base_url="https://api.mavenlink.com/api/v1",
            retry=RetryPolicy(sleep=lambda seconds: None),
        )
        self.store = PlanningStore(hub.planning_table)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.handlers = margin_handler.build_deps(
            load(MarginConsumerSettings),
            psa=self.psa,
            sqs=self.sqs,
            s3=self.s3,
            sns=boto3.client("sns", region_name=REGION),
            now=lambda: NOW,
        )
        self._messages = itertools.count(1)
        ana, ben, gus = self.kantata.seed_members(3, external_ids=["E1", "E2", "G1"])
        self.users = {"E1": ana, "E2": ben, "G1": gus}
        self.store.put_worker(worker(hcm_id="E1", cost_rates=(rate("80.00", start=dt.date(2024, 1, 1)),)), 1)
        self.store.put_worker(worker(hcm_id="E2", cost_rates=(rate("100.00", start=dt.date(2024, 1, 1)),)), 1)
        self.store.put_worker(
            worker(hcm_id="G1", cost_rates=(rate("70.00", "GBP", start=dt.date(2024, 1, 1)),)), 1
        )

    def planned_project(self, floor: str | None = None, **deal) -> tuple[str, str]:
        """A fixed-fee project of 120,000 USD the hub initiated: (its workspace, its task)."""
        workspace = self.kantata.seed_workspace(title="Northwind ERP roll-out", currency="USD")
        story = self.kantata.seed_story(workspace, title="Build")
        self.store.put_project(
            plan_project(opportunity(**deal)), workspace, floor=Decimal(floor) if floor else None
        )
        return workspace, story

    def assign(self, hcm_id: str, story: str, hours: int, start="2027-01-04", end="2027-01-29") -> str:
        return self.kantata.assign(self.users[hcm_id], story, hours_per_day=hours, start=start, end=end)

    def consume(self, *projects: str, detail: str = "assignment 1 updated in the PSA"):
        messages = [
            (
                f"m-{next(self._messages)}",
                MarginRequest(
                    psa_project_id=p,
                    cause=Cause(kind="assignment", detail=detail, at=NOW + dt.timedelta(seconds=n)),
                ).model_dump_json(),
            )
            for n, p in enumerate(projects)
        ]
        return self.handlers.consume(messages)

    def exported(self) -> list[dict]:
        listing = self.s3.list_objects_v2(Bucket=self.hub.analytics_bucket, Prefix="margins/")
        records = []
        for item in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
            body = self.s3.get_object(Bucket=self.hub.analytics_bucket, Key=item["Key"])["Body"].read()
            records.extend(json.loads(line) for line in body.decode().splitlines())
        return records

    def alerts(self) -> list[dict]:
        return [json.loads(m["Body"]) for m in drain(self.hub.alerts_queue_url)]


@pytest.fixture
def world(hub):
    return World(hub)


def test_a_planned_project_gets_its_first_margin_version_announced_and_exported(world, hub):
    project, story = world.planned_project()
    world.assign("E1", story, 8)  # 20 weekdays x 8 h x 80 = 12,800

    outcome = world.consume(project)

    assert outcome.count(Fate.REPRICED) == 1
    latest = world.store.latest_margin(project)
    assert latest.version == 1 and latest.announced
    assert latest.model["cost"]["amount"] == "12800.00" and latest.model["revenue"]["amount"] == "120000.00"
    [event] = hub.events("ProjectMarginChanged")
    assert event["data"]["marginPct"] == "0.8933" and event["data"]["previousMarginPct"] is None
    assert event["correlationid"] == f"margin:{project}"
    assert [r["version"] for r in world.exported()] == [1]
    assert hub.events("ProjectMarginBelowFloor") == [] and world.alerts() == []
    assert Ledger(hub.ledger_table).header(f"margin:{project}")["status"] == "COMPLETED"
    assert world.store.projects_of("E1") == [project]


def test_an_assignment_that_takes_the_margin_below_its_floor_alerts_the_delivery_manager(world, hub):
    project, story = world.planned_project(floor="0.85")
    world.assign("E1", story, 8)
    world.consume(project)

    world.assign("E2", story, 8)  # + 20 x 8 x 100 = 16,000: cost 28,800, margin 76 %
    outcome = world.consume(project, detail="assignment 2 created in the PSA")

    assert outcome.count(Fate.REPRICED) == 1
    assert [m.version for m in world.store.margin_versions(project)] == [1, 2]
    [below] = hub.events("ProjectMarginBelowFloor")
    assert (below["data"]["marginPct"], below["data"]["previousMarginPct"]) == ("0.7600", "0.8933")
    [alert] = world.alerts()
    assert alert["Subject"] == "Planned margin below floor: Northwind ERP roll-out (76.0%)"
    text = alert["Message"]
    assert (
        "Northwind ERP roll-out for Northwind Traders is now 76.0% (was 89.3%), below its floor of 85.0%"
        in (text)
    )
    assert "What changed: assignment 2 created in the PSA." in text
    assert "worker E2 +16,000.00 USD" in text
    assert "Consultant" not in text  # workers by HCM id, never by name


def test_nothing_moved_stores_no_version_and_announces_nothing(world, hub):
    project, story = world.planned_project()
    world.assign("E1", story, 8)
    world.consume(project)

    again = world.consume(project)

    assert again.count(Fate.UNCHANGED) == 1
    assert [m.version for m in world.store.margin_versions(project)] == [1]
    assert len(hub.events("ProjectMarginChanged")) == 1 and len(world.exported()) == 1


def test_falling_further_below_the_floor_alerts_again_but_staying_put_does_not(world):
    project, story = world.planned_project(floor="0.95")
    world.assign("E1", story, 8)
    world.consume(project)  # 89 %: below 95 % from the start
    world.assign("E2", story, 4)
    world.consume(project)  # further down
    world.kantata.seed_story(project, title="Docs")  # no assignment change
    world.consume(project)

    assert len(world.alerts()) == 2


def test_a_project_the_hub_did_not_initiate_is_recorded_as_not_planned(world, hub):
    internal = world.kantata.seed_workspace(title="Internal training", currency="USD")

    outcome = world.consume(internal)

    assert outcome.count(Fate.NOT_PLANNED) == 1 and outcome.failed_ids == []
    header = Ledger(hub.ledger_table).header(f"margin:{internal}")
    assert header["status"] == "IGNORED" and "not initiated by the hub" in header["reason"]


def test_a_missing_fx_rate_parks_the_project_naming_the_pair_until_finance_adds_it(world, hub):
    project, story = world.planned_project()
    world.assign("G1", story, 8)

    parked = world.consume(project)

    assert parked.count(Fate.PARKED) == 1
    [held] = drain(hub.margin_dlq_url)
    reason = held["MessageAttributes"]["parkedReason"]["StringValue"]
    assert "GBP" in reason and "USD" in reason and "2027-01-04" in reason

    world.store.put_fx([fx("GBP", "USD", "1.25", start=dt.date(2026, 1, 1))])
    redriven = world.handlers.consume([("redrive-1", held["Body"])])

    assert redriven.count(Fate.REPRICED) == 1
    assert world.store.latest_margin(project).model["cost"]["amount"] == "14000.00"  # 160 h x 70 x 1.25


def test_a_version_stored_but_not_announced_is_announced_by_the_retry(world, hub):
    project, story = world.planned_project()
    world.assign("E1", story, 8)
    bus = world.handlers.deps.publish
    refusals = [TransientError("PutEvents: the bus is unavailable", system="eventbridge")]

    def once_refused(*events):
        if refusals:
            raise refusals.pop()
        bus(*events)

    deps = dataclasses.replace(world.handlers.deps, publish=once_refused)
    body = MarginRequest(
        psa_project_id=project, cause=Cause(kind="assignment", detail="assignment 1 created", at=NOW)
    ).model_dump_json()

    first = reprice_batch([("m-1", body)], deps)
    stored = world.store.latest_margin(project)
    second = reprice_batch([("m-1", body)], deps)

    assert first.failed_ids == ["m-1"] and stored.version == 1 and not stored.announced
    assert second.count(Fate.UNCHANGED) == 1 and world.store.latest_margin(project).announced
    assert len(hub.events("ProjectMarginChanged")) == 1 and len(world.exported()) == 1


def test_every_message_in_is_repriced_unchanged_not_planned_parked_duplicate_or_malformed(world, hub):
    a, story_a = world.planned_project()
    b, story_b = world.planned_project()
    world.assign("E1", story_a, 8)
    world.assign("G1", story_b, 8)  # no FX: parked
    internal = world.kantata.seed_workspace(title="Internal", currency="USD")
    world.consume(a)
    messages = [
        (
            f"m-{n}",
            MarginRequest(
                psa_project_id=p, cause=Cause(kind="sweep", detail="nightly", at=NOW)
            ).model_dump_json(),
        )
        for n, p in enumerate([a, a, b, internal])
    ] + [("m-bad", "{}")]

    outcome = world.handlers.consume(messages)

    fates = [m.fate for m in outcome.messages]
    assert len(fates) == len(messages)
    assert sorted(fates) == sorted(
        [Fate.UNCHANGED, Fate.DUPLICATE, Fate.PARKED, Fate.NOT_PLANNED, Fate.MALFORMED]
    )
    assert len(drain(hub.margin_dlq_url)) == 2  # the parked project and the malformed body


def test_the_handler_answers_retries_as_batch_item_failures(world, hub):
    project, story = world.planned_project()
    world.assign("E1", story, 8)
    sqs = world.sqs
    request = MarginRequest(psa_project_id=project, cause=Cause(kind="sweep", detail="nightly", at=NOW))
    sqs.send_message(QueueUrl=hub.margin_queue_url, MessageBody=request.model_dump_json())
    received = sqs.receive_message(QueueUrl=hub.margin_queue_url, MaxNumberOfMessages=10)["Messages"]
    world.kantata.set_faults(error_rate=1.0, error_statuses=(503,))  # the PSA is down

    answer = margin_handler.handler(sqs_event(received), lambda_context(), deps=world.handlers)

    assert answer == {"batchItemFailures": [{"itemIdentifier": received[0]["MessageId"]}]}
    world.kantata.set_faults()
    answer = margin_handler.handler(sqs_event(received), lambda_context(), deps=world.handlers)
    assert answer == {"batchItemFailures": []}
