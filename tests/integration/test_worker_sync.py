"""The worker sync's run against the Workday sandbox (through the real adapter) and its watermark in moto:
windows, catching up, a change made during a run, unmappable workers, an HCM outage."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import httpx
import pytest

from hub.connectors.http import RetryPolicy
from hub.connectors.workday import WorkdayHcm
from hub.flows.workforce.sync import KIND, WorkerMessage, queue_due_changes, run_worker_sync
from hub.planning import PlanningStore
from hub.sweeps.watermarks import WatermarkStore
from local.sandboxes import Faults, WorkdaySandbox
from tests.support.aws import REGION
from tests.support.clock import Clock

T0 = dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
OVERLAP = dt.timedelta(minutes=10)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def workday(clock) -> WorkdaySandbox:
    return WorkdaySandbox(clock=clock)


def adapter(workday: WorkdaySandbox, entities=None) -> WorkdayHcm:
    return WorkdayHcm(
        httpx.Client(transport=workday.transport()),
        base_url=workday.base_url,
        tenant=workday.tenant,
        client_id=workday.client_id,
        client_secret=workday.client_secret,
        refresh_token="pshub-isu-refresh-token",
        report_owner="ISU_PSHub",
        legal_entities=entities or {"PSHUB_US": "US01", "PSHUB_UK": "UK01"},
        retry=RetryPolicy(max_attempts=1, sleep=lambda s: None),
    )


class Run:
    def __init__(self, hub, workday, clock, hcm=None):
        self.store = WatermarkStore(hub.ledger_table)
        self.hcm = hcm or adapter(workday)
        self.clock = clock
        self.queued: list = []
        self.parked: dict = {}

    def __call__(self, max_span=dt.timedelta(days=1)):
        return run_worker_sync(
            hcm=self.hcm,
            store=self.store,
            enqueue=self.queued.extend,
            park=self.parked.__setitem__,
            now=self.clock,
            overlap=OVERLAP,
            max_span=max_span,
            first_lookback=2 * HOUR,
            remaining=lambda: 900.0,
        )

    def ids(self):
        return sorted(m.worker.hcm_id for m in self.queued)


def test_the_first_run_queues_the_workers_changed_in_its_lookback_and_moves_the_watermark_to_now(
    hub, workday, clock
):
    clock.now = T0 - 3 * HOUR
    workday.seed_workers(2)  # before the lookback: the initial load owns them
    clock.now = T0 - HOUR
    recent = workday.seed_workers(3)
    clock.now = T0
    run = Run(hub, workday, clock)

    [result] = run()

    assert run.ids() == sorted(recent) and result.enqueued == 3
    assert result.advanced_to == T0 and run.store.get(KIND) == T0


def test_a_change_made_while_a_run_reads_is_read_by_the_next_run_not_skipped(hub, workday, clock):
    [ana, ben] = workday.seed_workers(2)
    clock.now = T0 + HOUR
    first_hcm = adapter(workday)

    class ChangesWhileReading:
        def changed_workers(self, *, changed_since, until):
            answer = first_hcm.changed_workers(changed_since=changed_since, until=until)
            workday.change_cost_rate(ben, "140", "USD", "2026-12-01")  # stamped now: the window's end
            return answer

        def worker_ids(self):
            return first_hcm.worker_ids()

    first = Run(hub, workday, clock, hcm=ChangesWhileReading())
    first()
    clock.now = T0 + 2 * HOUR
    second = Run(hub, workday, clock)

    second()

    assert ben in second.ids()
    [latest] = [m.worker for m in second.queued if m.worker.hcm_id == ben]
    assert latest.rate_on(dt.date(2026, 12, 1)).hourly.amount == 140
    assert ana not in second.ids()  # changed before the overlap: not read again


def test_a_run_far_behind_catches_up_window_after_window(hub, workday, clock):
    run = Run(hub, workday, clock)
    run()
    clock.now = T0 + 30 * HOUR

    results = run(max_span=dt.timedelta(hours=12))

    assert len(results) == 3 and results[-1].advanced_to == clock.now
    assert [r.window.until for r in results][:2] == [T0 + 12 * HOUR, T0 + 24 * HOUR]


def test_a_worker_that_cannot_be_mapped_is_parked_with_its_reason_and_the_rest_are_queued(
    hub, workday, clock
):
    clock.now = T0 - HOUR
    us, uk = workday.seed_workers(2, legal_entities=("PSHUB_US", "PSHUB_UK"))
    clock.now = T0
    run = Run(hub, workday, clock, hcm=adapter(workday, entities={"PSHUB_US": "US01"}))

    [result] = run()

    assert run.ids() == [us] and list(run.parked) == [uk] and result.unmappable == 1
    assert "PSHUB_UK" in run.parked[uk].problems[0]["problem"]
    assert result.advanced_to == T0  # fixing it in Workday re-stamps it: the next run reads it


def test_an_hcm_outage_leaves_the_watermark_where_it_was(hub, clock):
    workday = WorkdaySandbox(clock=clock, faults=Faults(error_rate=1.0, seed=2))
    run = Run(hub, workday, clock)

    [result] = run()

    assert result.advanced_to is None and result.reason == "hcm-unavailable"
    assert run.store.get(KIND) is None and run.queued == []


def test_the_scheduled_handler_queues_changed_workers_and_parks_unmappable_ones_in_the_ledger(
    hub, workday, clock
):
    from functions.worker_sync import handler as module
    from hub.flows.workforce.messages import enqueue_workers, park_unmappable
    from hub.ledger import Ledger
    from tests.support.aws import drain, lambda_context

    sqs = boto3.client("sqs", region_name=REGION)
    ledger = Ledger(hub.ledger_table)
    clock.now = T0 - HOUR
    us, uk = workday.seed_workers(2, legal_entities=("PSHUB_US", "PSHUB_UK"))
    clock.now = T0
    planning = PlanningStore(hub.planning_table)
    deps = module.SyncDeps(
        hcm=lambda: adapter(workday, entities={"PSHUB_US": "US01"}),
        store=WatermarkStore(hub.ledger_table),
        enqueue=lambda messages: enqueue_workers(sqs, hub.worker_queue_url, messages),
        park=lambda hcm_id, error: park_unmappable(ledger, hcm_id, error),
        overlap=OVERLAP,
        max_span=dt.timedelta(days=1),
        first_lookback=2 * HOUR,
        due=lambda day: list(planning.workers(planning.due(day)).values()),
        clock=clock,
    )

    answer = module.handler({"id": "evt-1"}, lambda_context(), deps=deps)

    bodies = [json.loads(m["Body"]) for m in drain(hub.worker_queue_url)]
    assert [b["worker"]["hcm_id"] for b in bodies] == [us]
    parked = ledger.get("worker:" + uk)
    assert parked["status"] == "PARKED" and "PSHUB_UK" in parked["reason"]
    assert answer["runs"][0]["enqueued"] == 1 and answer["runs"][0]["unmappable"] == 1


def test_changes_dated_today_are_queued_again_on_their_day_and_a_missed_day_is_caught_up(hub):
    from tests.support.workforce_builders import rate, worker

    planning = PlanningStore(hub.planning_table)
    store = WatermarkStore(hub.ledger_table)
    raised = worker(
        hcm_id="E1",
        changed_at=T0,
        cost_rates=(rate("80", end=dt.date(2026, 11, 30)), rate("95", start=dt.date(2026, 12, 1))),
    )
    leaver = worker(hcm_id="E2", changed_at=T0, end_date=dt.date(2026, 12, 1))
    for w in (raised, leaver):
        planning.put_worker(w, 1)
    planning.due_on(dt.date(2026, 12, 1), ["E1"])
    planning.due_on(dt.date(2026, 12, 2), ["E2"])  # the day after the last day
    queued: list[WorkerMessage] = []

    def run(day: dt.date):
        return queue_due_changes(
            store=store,
            due=lambda d: list(planning.workers(planning.due(d)).values()),
            enqueue=queued.extend,
            today=day,
        )

    first = run(dt.date(2026, 11, 30))  # the first run: today only, nothing due
    again = run(dt.date(2026, 11, 30))  # the next hour: the day is done
    caught_up = run(dt.date(2026, 12, 2))  # the 1st was missed (no run): both days now

    assert (first.days, first.enqueued, again.days) == ([dt.date(2026, 11, 30)], 0, [])
    assert caught_up.days == [dt.date(2026, 12, 1), dt.date(2026, 12, 2)]
    assert [(m.worker.hcm_id, m.effective_on, m.source) for m in queued] == [
        ("E1", dt.date(2026, 12, 1), "effective-date"),
        ("E2", dt.date(2026, 12, 2), "effective-date"),
    ]
    assert queued[0].version > int(T0.timestamp() * 1_000_000)  # newer than the change it repeats
