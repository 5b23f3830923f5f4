"""The posting sweep against moto (ledger table, posting queue) and the Kantata sandbox in-process as the PSA:
one pointer per approved entry on the posting queue, watermarks in the ledger table per kind, runs that
overlap and never skip, and two runs racing for one watermark.

The sandbox renders times in the account's zone (Los Angeles) on a clock the tests move; the handler reads the
same clock. The first run looks back an hour; windows overlap by fifteen minutes (the default)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter

import boto3
import httpx
import pytest

from functions.posting_sweep import handler as module
from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.errors import PermanentError
from hub.flows.posting.messages import correlation_id_for
from hub.flows.posting.sweep_run import run_sweep
from hub.sweeps.watermarks import WatermarkStore
from local.sandboxes import KantataSandbox
from local.sandboxes.base import Faults
from tests.support.aws import REGION, drain, lambda_context
from tests.support.clock import Clock

pytestmark = pytest.mark.disable_socket

UTC = dt.UTC
TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
OPP = "006Dn00000A1b2cAAB"
T0 = dt.datetime(2026, 11, 30, 23, 0, 0, tzinfo=UTC)  # 15:00 in Los Angeles, month end
SEC = dt.timedelta(seconds=1)
MIN = dt.timedelta(minutes=1)
OVERLAP = 15 * MIN  # PostingSweepSettings' default
SCHEDULED = {  # what EventBridge Scheduler's rule target receives
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-30T23:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/pshub-posting-sweep"],
    "detail": {},
}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def kantata(clock: Clock) -> KantataSandbox:
    return KantataSandbox(tokens=[TOKEN], time_zone="America/Los_Angeles", clock=clock)


@pytest.fixture
def psa(kantata: KantataSandbox) -> KantataPsa:
    return KantataPsa(
        httpx.Client(transport=kantata.transport()),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(sleep=lambda seconds: None),
        home_countries={"US01": "US"},
    )


@pytest.fixture
def sweep(hub, monkeypatch, psa, clock):
    """Invoke the handler as the schedule does, with the sandbox as its PSA and the tests' clock."""
    monkeypatch.setenv("SWEEP_FIRST_LOOKBACK_SECONDS", "3600")

    def invoke(event: dict | None = None, *, psa_for_run=None) -> dict:
        deps = dataclasses.replace(module.default_deps(), psa=lambda: psa_for_run or psa, clock=clock)
        return module.handler(event if event is not None else dict(SCHEDULED), lambda_context(), deps=deps)

    return invoke


def hub_project(kantata: KantataSandbox) -> tuple[str, str]:
    """A project as the hub creates it (legal entity and opportunity in the description, linked by an external
    reference) with one WBS task."""
    workspace = kantata.seed_workspace(
        title="Northwind ERP roll-out",
        currency="USD",
        description=f"pshub:opportunity:{OPP}\npshub:entity:US01\nCreated by the integration hub",
    )
    kantata.seed_external_reference(
        subject_type="Workspace", subject_id=workspace, service_model="Opportunity", service_model_ref=OPP
    )
    story = kantata.seed_story(workspace, title="Build", description="pshub:wbs:2.1")
    return workspace, story


def posted(hub) -> list[dict]:
    messages = drain(hub.posting_queue_url)
    for message in messages:
        body = json.loads(message["Body"])
        attribute = message["MessageAttributes"]["correlationId"]["StringValue"]
        assert attribute == correlation_id_for(body["kind"], body["psaId"])
    return [json.loads(m["Body"]) for m in messages]


def keys(bodies: list[dict]) -> Counter:
    return Counter((b["kind"], b["psaId"]) for b in bodies)


def watermark_item(hub, kind: str) -> dict | None:
    table = boto3.resource("dynamodb", region_name=REGION).Table(hub.ledger_table)
    return table.get_item(Key={"pk": f"SWEEP#{kind}", "sk": "WATERMARK"}).get("Item")


# -------------------------------------------------------------------------------------------- the queue


def test_the_sweep_enqueues_one_pointer_per_approved_entry_of_each_kind(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    users = kantata.seed_users(3)
    times = kantata.seed_time_entries(workspace, 25, user_ids=users, story_id=story)
    kantata.approve_time_entries(times)
    expenses = kantata.seed_expenses(workspace, 4, user_ids=users, category="Lodging")
    kantata.approve_expenses(expenses)
    kantata.submit_time(
        kantata.seed_time_entries(workspace, 2, user_ids=users, story_id=story)
    )  # not approved
    clock.tick(10 * MIN)

    reports = sweep()

    bodies = posted(hub)
    assert keys(bodies) == Counter(
        [("time-entry", i) for i in times] + [("expense", i) for i in expenses]
    )  # one each
    assert {b["source"] for b in bodies} == {"sweep"} and all(b["seenVersion"] >= 1 for b in bodies)
    assert reports["time-entry"]["counts"] == {"read": 25, "enqueued": 25, "unmappable": 0}
    assert reports["expense"]["counts"] == {"read": 4, "enqueued": 4, "unmappable": 0}
    for report in reports.values():
        assert report["complete"] is True and report["reason"] is None
        assert report["window"] == {
            "updated_after": "2026-11-30T21:55:00Z",  # the first lookback (an hour) and the overlap
            "updated_before": "2026-11-30T23:10:00Z",
        }
        assert report["advanced_to"] == "2026-11-30T23:10:00Z"


def test_an_unmappable_entry_is_enqueued_for_the_consumer_to_park(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    foreign = kantata.seed_workspace(title="Not the hub's", currency="GBP")  # no legal entity, no opportunity
    good = kantata.seed_time_entries(workspace, 2, story_id=story)
    bad = kantata.seed_time_entries(foreign, 1)
    kantata.approve_time_entries(good + bad)
    clock.tick(MIN)

    reports = sweep({"kinds": ["time-entry"]})

    assert keys(posted(hub)) == Counter(("time-entry", i) for i in good + bad)
    assert reports["time-entry"]["counts"] == {"read": 3, "enqueued": 3, "unmappable": 1}


def test_a_second_run_a_minute_later_re_reads_only_the_overlap_and_skips_nothing(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    clock.now = T0 - 20 * MIN
    earlier = kantata.seed_time_entries(workspace, 3, story_id=story)
    kantata.approve_time_entries(earlier)
    clock.now = T0 - 5 * MIN  # inside the next window's overlap
    recent = kantata.seed_time_entries(workspace, 2, story_id=story, start="2025-01-13")
    kantata.approve_time_entries(recent)
    clock.now = T0
    first = sweep()
    first_keys = keys(posted(hub))

    clock.tick(MIN)
    second = sweep()

    second_keys = keys(posted(hub))
    assert first_keys == Counter(("time-entry", i) for i in earlier + recent)
    assert second_keys == Counter(("time-entry", i) for i in recent)  # the overlap's re-reads, nothing else
    assert second["time-entry"]["window"] == {
        "updated_after": "2026-11-30T22:45:00Z",
        "updated_before": "2026-11-30T23:01:00Z",
    }
    assert first["time-entry"]["advanced_to"] == "2026-11-30T23:00:00Z"
    assert second["time-entry"]["advanced_to"] == "2026-11-30T23:01:00Z"
    assert second["expense"]["counts"] == {"read": 0, "enqueued": 0, "unmappable": 0}


def test_a_change_between_runs_is_enqueued_by_the_next_run(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    [entry] = kantata.seed_time_entries(workspace, 1, story_id=story)
    [sheet] = kantata.submit_time([entry])
    sweep()
    assert posted(hub) == []  # submitted, not approved yet

    clock.tick(7 * MIN)
    kantata.resolve_timesheet(sheet, "approve")  # Kantata leaves the entry's updated_at alone
    clock.tick(8 * MIN)
    sweep()

    assert keys(posted(hub)) == Counter([("time-entry", entry)])


# ---------------------------------------------------------------------------------------- the watermark


def test_each_kind_keeps_its_watermark_and_last_run_in_the_ledger_table(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    kantata.approve_time_entries(kantata.seed_time_entries(workspace, 3, story_id=story))
    clock.tick(10 * MIN + dt.timedelta(microseconds=250_000))

    sweep()

    item = watermark_item(hub, "time-entry")
    assert item is not None
    assert item["watermark"] == "2026-11-30T23:10:00.000000+00:00"
    assert item["last_window"] == {
        "updated_after": "2026-11-30T21:55:00.000000+00:00",
        "updated_before": "2026-11-30T23:10:00.000000+00:00",
    }
    assert item["last_counts"] == {"read": 3, "enqueued": 3, "unmappable": 0}
    assert dt.datetime.fromisoformat(item["updated_at"]).tzinfo is not None
    expense = watermark_item(hub, "expense")
    assert expense is not None and expense["last_counts"] == {"read": 0, "enqueued": 0, "unmappable": 0}
    store = WatermarkStore(hub.ledger_table)
    assert store.get("time-entry") == store.get("expense") == T0 + 10 * MIN


def test_an_ops_re_run_of_one_kind_leaves_the_other_alone(hub, kantata, clock, sweep):
    workspace, story = hub_project(kantata)
    kantata.approve_time_entries(kantata.seed_time_entries(workspace, 2, story_id=story))
    kantata.approve_expenses(expenses := kantata.seed_expenses(workspace, 2))
    clock.tick(MIN)

    reports = sweep({"kinds": ["expense"]})

    assert list(reports) == ["expense"]
    assert keys(posted(hub)) == Counter(("expense", i) for i in expenses)
    assert watermark_item(hub, "time-entry") is None


def test_a_kind_that_cannot_be_read_does_not_stop_the_other(hub, kantata, clock, sweep, psa):
    workspace, story = hub_project(kantata)
    times = kantata.seed_time_entries(workspace, 2, story_id=story)
    kantata.approve_time_entries(times)
    kantata.approve_expenses(kantata.seed_expenses(workspace, 2))
    clock.tick(MIN)
    kantata.set_faults(Faults(error_rate=1.0, path_pattern=r"expense"))  # Kantata answers 5xx for expenses

    reports = sweep()

    assert reports["time-entry"]["complete"] is True
    assert (reports["expense"]["complete"], reports["expense"]["reason"]) == (False, "psa-unavailable")
    assert keys(posted(hub)) == Counter(("time-entry", i) for i in times)
    assert watermark_item(hub, "expense") is None  # the next run reads the whole window again


def test_a_kind_that_fails_is_raised_after_the_other_ran(hub, kantata, clock, sweep, psa):
    class ExpensesRefused:
        def approved_time_entries(self, **window):
            return psa.approved_time_entries(**window)

        def approved_expenses(self, **window):
            raise PermanentError("kantata refused the token (403)", system="kantata", code="403")

    workspace, story = hub_project(kantata)
    times = kantata.seed_time_entries(workspace, 2, story_id=story)
    kantata.approve_time_entries(times)
    clock.tick(MIN)

    with pytest.raises(module.SweepFailed, match="expense") as raised:
        sweep(psa_for_run=ExpensesRefused())

    assert isinstance(raised.value.__cause__, PermanentError)
    assert keys(posted(hub)) == Counter(("time-entry", i) for i in times)  # the time entries ran all the same
    assert watermark_item(hub, "time-entry") is not None and watermark_item(hub, "expense") is None


def test_an_unknown_kind_in_an_ops_re_run_is_refused(hub, sweep):
    with pytest.raises(ValueError, match="kinds"):
        sweep({"kinds": ["invoices"]})


# --------------------------------------------------------------------------------------------- the race


def test_concurrent_saves_neither_lose_nor_regress_the_watermark(hub):
    store = WatermarkStore(hub.ledger_table)
    a_read, b_read = store.get("expense"), store.get("expense")  # two runs start before either saves
    assert a_read is None and b_read is None

    assert store.save("expense", T0 + 15 * MIN, expected=b_read) is True
    assert store.save("expense", T0 + 14 * MIN, expected=a_read) is False  # A lost: B moved it since
    assert store.get("expense") == T0 + 15 * MIN

    c_read = store.get("expense")
    assert store.save("expense", T0 + 30 * MIN, expected=c_read) is True
    assert store.save("expense", T0 + 45 * MIN, expected=c_read) is False  # stale: it moved since C read it
    assert store.get("expense") == T0 + 30 * MIN
    with pytest.raises(ValueError, match="never moves back"):
        store.save("expense", T0 + 20 * MIN, expected=T0 + 30 * MIN)
    assert store.get("expense") == T0 + 30 * MIN


def test_a_sweep_that_loses_the_race_enqueues_harmlessly_and_does_not_move_the_watermark(
    hub, kantata, clock, psa
):
    workspace, story = hub_project(kantata)
    entries = kantata.seed_time_entries(workspace, 2, story_id=story)
    kantata.approve_time_entries(entries)
    clock.tick(15 * MIN)
    store = WatermarkStore(hub.ledger_table)
    store.save("time-entry", T0, expected=None)
    sent: list = []

    class Overtaken(WatermarkStore):
        def save(self, kind, new, *, expected, **summary):  # another run completes just before this one saves
            WatermarkStore(hub.ledger_table).save(kind, new + 5 * MIN, expected=expected)
            return super().save(kind, new, expected=expected, **summary)

    report = run_sweep(
        "time-entry",
        psa=psa,
        store=Overtaken(hub.ledger_table),
        enqueue=sent.extend,
        now=clock(),
        overlap=OVERLAP,
        max_span=dt.timedelta(hours=6),
        first_lookback=dt.timedelta(hours=1),
        deadline=lambda: 900.0,
    )

    assert sorted(r.psa_id for r in sent) == sorted(entries)
    assert (report.complete, report.reason, report.advanced_to) == (True, "watermark-moved", None)
    assert store.get("time-entry") == T0 + 20 * MIN  # the winner's, not moved back


def test_every_run_hands_entries_held_for_a_closed_period_back_to_the_consumer(hub, sweep):
    from hub.ledger import Ledger, Status

    ledger = Ledger(hub.ledger_table)
    for kind, psa_id, status in (
        ("time-entry", "4711", Status.HELD),
        ("expense", "88", Status.HELD),
        ("time-entry", "4712", Status.COMPLETED),
    ):
        cid = correlation_id_for(kind, psa_id)
        ledger.open(
            cid, flow="time-expense-posting", business_key=f"{kind}:{psa_id}", subject=psa_id, source="psa"
        )
        ledger.set_status(cid, status, reason="closed period" if status is Status.HELD else None)

    sweep()

    bodies = sorted(json.loads(m["Body"])["psaId"] for m in drain(hub.posting_queue_url))
    assert bodies == ["4711", "88"]


def test_a_run_far_behind_reads_window_after_window_until_it_has_caught_up(
    hub, kantata, clock, sweep, monkeypatch
):
    monkeypatch.setenv("SWEEP_FIRST_LOOKBACK_SECONDS", str(3 * 24 * 3600))  # three days: twelve 6-hour spans
    workspace, story = hub_project(kantata)
    entries = kantata.seed_time_entries(workspace, 3, story_id=story)
    kantata.approve_time_entries(entries)  # approved now: in the last of the windows
    clock.tick(MIN)

    reports = sweep({"kinds": ["time-entry"]})

    assert keys(posted(hub)) == Counter(("time-entry", i) for i in entries)
    report = reports["time-entry"]
    assert report["complete"] is True and report["counts"]["enqueued"] == 3
    assert report["advanced_to"] == "2026-11-30T23:01:00Z"  # the time the run started
