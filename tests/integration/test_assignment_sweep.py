"""The nightly assignment sweep against the Kantata sandbox (through the real resources adapter) and its
watermark and margin queue in moto: the first run, a change made during a run, catching up, a PSA outage, a
queue refusing the messages, a race between two runs, and the scheduled handler."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.kantata_resources import KantataResources
from hub.flows.workforce.assignment_sweep import KIND, run_assignment_sweep
from hub.flows.workforce.projects import MarginRequest, enqueue_projects
from hub.sweeps.watermarks import WatermarkStore
from local.sandboxes import KantataSandbox
from local.sandboxes.base import Faults
from tests.support.aws import drain, lambda_context
from tests.support.clock import Clock

TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # the nightly run
DAY = dt.timedelta(days=1)
OVERLAP = dt.timedelta(minutes=15)
LOOKBACK = 2 * DAY


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 - 7 * DAY)  # the sandbox stamps changes in order: tests move the clock forward only


@pytest.fixture
def kantata(clock) -> KantataSandbox:
    return KantataSandbox(tokens=[TOKEN], clock=clock)


@pytest.fixture
def member(kantata) -> str:
    [ana] = kantata.seed_members(1, external_ids=["E1"])
    return ana


def adapter(kantata: KantataSandbox) -> KantataResources:
    return KantataResources(
        httpx.Client(transport=kantata.transport()),
        token=TOKEN,
        base_url=KANTATA_URL,
        retry=RetryPolicy(max_attempts=1, sleep=lambda seconds: None),
    )


def staffed(kantata: KantataSandbox, member: str, title: str) -> tuple[str, str]:
    """A project with one assignment, made now (the sandbox's clock): (project id, assignment id)."""
    project = kantata.seed_workspace(title=title, currency="USD")
    task = kantata.seed_story(project, title="Build")
    return project, kantata.assign(member, task, hours_per_day=8, start="2026-12-07", end="2026-12-11")


class Run:
    def __init__(self, hub, kantata, clock, psa=None, enqueue=None, store=None):
        self.store = store or WatermarkStore(hub.ledger_table)
        self.psa = psa or adapter(kantata)
        self.clock = clock
        self.queued: list[MarginRequest] = []
        self.enqueue = enqueue or self.queued.extend

    def __call__(self, max_span=2 * DAY):
        return run_assignment_sweep(
            psa=self.psa,
            store=self.store,
            enqueue=self.enqueue,
            now=self.clock,
            overlap=OVERLAP,
            max_span=max_span,
            first_lookback=LOOKBACK,
            remaining=lambda: 900.0,
        )

    def projects(self) -> list[str]:
        return sorted(r.psa_project_id for r in self.queued)


def test_the_first_run_queues_the_projects_restaffed_in_its_lookback_and_moves_the_watermark_to_now(
    hub, kantata, member, clock
):
    clock.now = T0 - 3 * DAY
    staffed(kantata, member, "Before the lookback")  # the initiation or the webhook owned it
    clock.now = T0 - DAY
    northwind, _ = staffed(kantata, member, "Northwind")
    contoso, _ = staffed(kantata, member, "Contoso")
    clock.now = T0
    run = Run(hub, kantata, clock)

    [result] = run()

    assert run.projects() == sorted([northwind, contoso])
    assert (result.projects, result.enqueued, result.advanced_to) == (2, 2, T0)
    assert run.store.get(KIND) == T0
    cause = run.queued[0].cause
    assert cause.kind == "sweep" and cause.at == T0
    assert cause.detail == (
        "assignments changed between 2026-11-29 01:45 and 2026-12-01 02:00 UTC (nightly sweep)"
    )  # the window started one overlap before the first lookback
    assert cause.worker_hcm_id is None and cause.psa_assignment_id is None


def test_a_change_made_while_a_run_reads_is_queued_by_the_next_run_not_skipped(hub, kantata, member, clock):
    clock.now = T0 - 3 * DAY
    late, late_assignment = staffed(kantata, member, "Changed during the run")
    clock.now = T0 - DAY
    early, _ = staffed(kantata, member, "Changed before the run")
    clock.now = T0
    reader = adapter(kantata)

    class ChangesWhileReading:
        def assignments_changed(self, *, updated_after, updated_before):
            found = list(
                reader.assignments_changed(updated_after=updated_after, updated_before=updated_before)
            )
            kantata.change_assignment(late_assignment, hours_per_day=4)  # stamped now: the window's end
            return iter(found)

    first = Run(hub, kantata, clock, psa=ChangesWhileReading())
    first()
    assert first.projects() == [early] and first.store.get(KIND) == T0
    clock.now = T0 + DAY
    second = Run(hub, kantata, clock)

    [result] = second()

    assert second.projects() == [late]  # the early one changed before the overlap: not read again
    assert result.advanced_to == T0 + DAY


def test_a_run_far_behind_catches_up_window_after_window(hub, kantata, member, clock):
    clock.now = T0
    run = Run(hub, kantata, clock)
    run()  # the watermark at T0
    changed = {}
    for days in (1, 3, 5):
        clock.now = T0 + days * DAY
        changed[days], _ = staffed(kantata, member, f"Restaffed on day {days}")
    clock.now = T0 + 5 * DAY + dt.timedelta(hours=1)

    results = run(max_span=2 * DAY)

    assert [r.window.updated_before for r in results] == [T0 + 2 * DAY, T0 + 4 * DAY, clock.now]
    assert [r.advanced_to for r in results] == [T0 + 2 * DAY, T0 + 4 * DAY, clock.now]
    assert run.store.get(KIND) == clock.now
    assert {r.psa_project_id: r.cause.at for r in run.queued} == {  # each with its own window
        changed[1]: T0 + 2 * DAY,
        changed[3]: T0 + 4 * DAY,
        changed[5]: clock.now,
    }
    assert "between 2026-12-03 01:45 and 2026-12-05 02:00 UTC" in run.queued[1].cause.detail


@pytest.mark.parametrize(
    ("faults", "reason"),
    [(Faults(error_rate=1.0), "psa-unavailable"), (Faults(throttle_rate=1.0), "psa-throttled")],
)
def test_a_psa_outage_leaves_the_watermark_and_the_next_run_reads_the_window_again(
    hub, kantata, member, clock, faults, reason
):
    clock.now = T0
    run = Run(hub, kantata, clock)
    run()
    clock.now = T0 + DAY
    project, _ = staffed(kantata, member, "Restaffed during the outage")
    kantata.set_faults(faults)

    [result] = run()

    assert (result.advanced_to, result.reason, result.enqueued) == (None, reason, 0)
    assert run.store.get(KIND) == T0 and run.queued == []
    kantata.set_faults(Faults())
    clock.now = T0 + 2 * DAY

    [recovered] = run()

    assert run.projects() == [project] and recovered.advanced_to == T0 + 2 * DAY


class RefusingSqs:
    """SQS refusing every entry of SendMessageBatch (as it can, for a while)."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803 (boto3's names)
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "ServiceUnavailable"} for e in Entries]
        return {"Successful": [], "Failed": failed}


def test_a_margin_queue_refusing_the_projects_leaves_the_watermark(hub, kantata, member, clock):
    clock.now = T0 - DAY
    staffed(kantata, member, "Northwind")
    clock.now = T0
    refused = RefusingSqs()
    run = Run(hub, kantata, clock, enqueue=lambda rs: enqueue_projects(refused, hub.margin_queue_url, rs))

    [result] = run()

    assert result.projects == 1 and (result.enqueued, result.reason) == (0, "enqueue-failed")
    assert run.store.get(KIND) is None


def test_a_run_that_loses_the_race_queues_harmlessly_and_does_not_move_the_watermark(
    hub, kantata, member, clock
):
    WatermarkStore(hub.ledger_table).save(KIND, T0 - DAY, expected=None)
    clock.now = T0 - dt.timedelta(hours=2)
    project, _ = staffed(kantata, member, "Northwind")
    clock.now = T0

    class Overtaken(WatermarkStore):
        def save(self, kind, new, *, expected, **summary):  # another run completes just before this one saves
            WatermarkStore(hub.ledger_table).save(kind, new + dt.timedelta(minutes=5), expected=expected)
            return super().save(kind, new, expected=expected, **summary)

    run = Run(hub, kantata, clock, store=Overtaken(hub.ledger_table))

    [result] = run()

    assert run.projects() == [project]  # the margin consumer re-prices to the same margin: harmless
    assert (result.advanced_to, result.reason) == (None, "watermark-moved")
    assert WatermarkStore(hub.ledger_table).get(KIND) == T0 + dt.timedelta(minutes=5)  # not moved back


def test_the_scheduled_handler_queues_each_restaffed_project_on_the_margin_queue(hub, kantata, member, clock):
    from functions.assignment_sweep import handler as module

    clock.now = T0 - DAY
    northwind, _ = staffed(kantata, member, "Northwind")
    contoso, _ = staffed(kantata, member, "Contoso")
    clock.now = T0
    # the function's own wiring (its table and queue, from its settings) with the sandbox as the PSA
    deps = dataclasses.replace(module.default_deps(), psa=adapter(kantata), clock=clock)

    answer = module.handler({"id": "evt-nightly-1"}, lambda_context(), deps=deps)

    messages = drain(hub.margin_queue_url)
    queued = {MarginRequest.model_validate_json(m["Body"]).psa_project_id: m for m in messages}
    assert sorted(queued) == sorted([northwind, contoso])
    correlation = queued[northwind]["MessageAttributes"]["correlationId"]["StringValue"]
    assert correlation == f"margin:{northwind}"
    assert json.loads(queued[northwind]["Body"])["cause"]["kind"] == "sweep"
    [run] = answer["runs"]
    assert (run["projects"], run["enqueued"], run["reason"]) == (2, 2, None)
    assert WatermarkStore(hub.ledger_table).get(KIND) == T0


def test_the_scheduled_handler_fails_visibly_on_a_psa_outage_and_keeps_the_watermark(
    hub, kantata, member, clock
):
    from functions.assignment_sweep import handler as module

    WatermarkStore(hub.ledger_table).save(KIND, T0 - DAY, expected=None)
    clock.now = T0
    staffed(kantata, member, "Northwind")
    kantata.set_faults(Faults(error_rate=1.0))
    deps = dataclasses.replace(module.default_deps(), psa=adapter(kantata), clock=clock)

    with pytest.raises(module.SweepIncomplete, match="psa-unavailable"):
        module.handler({"id": "evt-nightly-2"}, lambda_context(), deps=deps)

    assert WatermarkStore(hub.ledger_table).get(KIND) == T0 - DAY
    assert drain(hub.margin_queue_url) == []
