"""The month-end scenario: a few thousand approved time entries and expense lines of three legal entities posted
through the hub into their ERP sandboxes, with everything that goes wrong at a month end, and a report whose
numbers are measured from the ledger and counted in the sandboxes themselves.

What happens, on a started ``LocalStack`` (``run_month_end``):

1. Seed (``local.psa_seed``): per entity (US01 -> NetSuite US, UK01 -> NetSuite UK, DE01 -> Business Central)
   workers, hub-made projects and the regular load of 23 Nov - 1 Dec 2026, approved; October is closed in
   every ERP. Mixed in: entries that fail a check (over the entity's hours a day, an expense over its category
   limit, no receipt above the threshold, billable time to a project put on hold or to a closed task), a late
   October entry per entity, entries whose approval is withdrawn, and stragglers approved after the last sweep
   whose webhooks are never sent. The regular load is stamped in the PSA two hours back ("approved this
   afternoon") and the sweep's watermark is seeded as its earlier runs left it, ten minutes ago: its windows
   re-read only what changed since.
2. Wave 1 (23-27 Nov): signed PSA webhooks in batches of up to 200 ids; some deliveries redelivered 2-5 times
   under the same ``webhook-id`` (answered again, not enqueued again), one batch sent concurrently from two
   threads; once the wave is posted, the PSA sends some of its events again (new deliveries: enqueued again,
   found posted). The ERPs answer in 10-50 ms, throttle (429) and fail (5xx) at injected rates.
3. Finance closes November in NetSuite UK, with the consumers paused. They keep the calendars they cached
   (five minutes per container), which still show November open: NetSuite refuses their first UK November
   posts, and the hub reads the calendar again and holds them. While they are paused, the webhooks of the
   entries to be withdrawn go out, and then their approvals are withdrawn in the PSA (timesheets cancelled,
   expense reports rejected): their pointers are queued but nothing may post.
4. Wave 2 (30 Nov, 1 Dec) the same way; later UK November entries are HELD (UK01 holds closed periods).
5. The sweep runs as its schedule would (``fire_schedule``), twice: the stragglers are found and posted once;
   the second run re-reads the overlap (and the HELD entries) harmlessly.
6. Wait until the posting queue is drained and every entry has a final ledger status, then count: records in
   each ERP sandbox by the hub's external ids, ledger statuses, parked reasons, 429s and peak in-flight
   requests per ERP, the posting DLQ, and the conservation ``in = posted + held + parked + rejected``.

``report`` prints it with rich, like ``local.demo``; ``MonthEndResult`` carries the numbers for tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hub.flows.posting.messages import correlation_id_for
from hub.ledger import Ledger
from hub.mapping import business_central as bm
from hub.sweeps.watermarks import WatermarkStore
from local import finance_config
from local.pollers import QueuePoller
from local.psa_seed import (
    HubProject,
    MonthEndLoad,
    Seeded,
    erp_system,
    seed_expense_lines,
    seed_month_end,
    seed_project,
)
from local.sandboxes.base import Faults
from local.stack import LocalStack

MAX_BATCH = 200  # ids per PSA webhook the hub takes
FINAL = ("COMPLETED", "PARKED", "HELD", "IGNORED")
ROUTES = {"time-entry": ("time-entries", "time_entries"), "expense": ("expenses", "expenses")}
WAVE_2_FROM = dt.date(2026, 11, 30)  # wave 1: 23-27 Nov; wave 2: 30 Nov and 1 Dec
CLOSE = ("netsuite-uk", "Nov 2026")  # the period finance closes mid-run
LATE_OCTOBER = dt.date(2026, 10, 30)
PSA_PAST_SECONDS = 2 * 3600  # the regular load was approved this afternoon
MAX_HOURS = {p.legal_entity_code: p.max_hours_per_day for p in finance_config.POLICIES}
POLICY = {p.legal_entity_code: p for p in finance_config.POLICIES}


# ------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class MonthEndConfig:
    """The run's volume and its troubles. ``load`` is the regular load (see ``MonthEndLoad``); each entity adds
    ``stragglers`` workers' entries on 30 Nov and 1 Dec announced by no webhook, and the special cases."""

    load: MonthEndLoad = field(default_factory=MonthEndLoad)
    stragglers: int = 6  # workers per entity with a straggler entry on each of 30 Nov and 1 Dec
    webhook_batch: int = MAX_BATCH  # ids per webhook delivery
    # Webhook batch number -> deliveries under one webhook-id (2 to 5); batches the PSA sends again later.
    redeliver: dict[int, int] = field(default_factory=lambda: {2: 2, 3: 5, 4: 3})
    send_again: tuple[int, ...] = (1, 3)
    # Each ERP answers in 10-50 ms, throttles 8 % of requests (429) and fails 2 % (500/503).
    erp_faults: Faults = field(
        default_factory=lambda: Faults(
            latency=(0.01, 0.05), throttle_rate=0.08, error_rate=0.02, error_statuses=(500, 503), seed=29
        )
    )
    sweeps: int = 2
    timeout: float = 600.0


@dataclass(frozen=True)
class Entry:
    """One seeded time entry or expense line and its ``case``: ``regular`` (approved, announced by a webhook),
    ``straggler`` (approved after the sweep's last run; its webhook never sent), ``withdrawn`` (approval
    withdrawn after its webhook was queued), ``late-october`` (dated in a closed period), or a rule it breaks:
    ``over-hours``, ``project-on-hold``, ``task-closed``, ``over-limit``, ``no-receipt``."""

    kind: str  # time-entry | expense
    psa_id: str
    entity: str
    case: str
    day: dt.date

    @property
    def correlation_id(self) -> str:
        return correlation_id_for(self.kind, self.psa_id)

    @property
    def wave(self) -> int:
        return 2 if self.day >= WAVE_2_FROM else 1


PARK_CASES = {"over-hours", "project-on-hold", "task-closed", "over-limit", "no-receipt"}
RULE_OF_CASE = {
    "over-hours": "max_hours_per_day",
    "project-on-hold": "active_project",
    "task-closed": "open_task",
    "over-limit": "expense_limit",
    "no-receipt": "receipt_required",
}


def expected_status(entry: Entry) -> str:
    """The ledger status each entry must end in."""
    uk_closed = entry.entity == "UK01" and (
        entry.day < dt.date(2026, 11, 1) or (entry.day.month == 11 and entry.wave == 2)
    )
    if entry.case == "withdrawn":
        return "IGNORED"
    if entry.case in PARK_CASES:
        return "PARKED"
    if entry.case == "straggler" and entry.entity == "UK01" and entry.day.month == 11:
        return "HELD"
    return "HELD" if uk_closed else "COMPLETED"


# ------------------------------------------------------------------------------------------------ results


@dataclass
class ErpCount:
    system: str
    time_records: int = 0
    expense_records: int = 0
    duplicate_records: int = 0  # records beyond the first for one PSA entry
    # entries posted into a later period than their date's: "time entry 1 dated 2026-10-30 -> posted 2026-11-01"
    rolled_forward: list[str] = field(default_factory=list)
    rewrites: int = 0  # writes of a record the hub had written already (NetSuite upserts it: one record kept)
    answered_429: int = 0
    answered_5xx: int = 0
    over_limit: int = 0  # requests refused because more than the limit were in flight
    calls: int = 0
    peak_in_flight: int = 0
    peak_open: int = 0  # in flight + waiting (Business Central queues up to 95 behind its 5)
    limit: int | None = None


@dataclass
class MonthEndResult:
    entries: list[Entry]
    statuses: dict[str, str]  # correlation id -> ledger status (missing: unaccounted)
    reasons: dict[str, str]  # correlation id -> ledger reason (parked, held, rejected)
    rules: dict[str, list[str]]  # parked correlation id -> the rules that failed
    erp: dict[str, ErpCount]
    posted_ids: dict[str, Counter[str]]  # "time-entry"/"expense" -> PSA id -> records in its ERP
    deliveries: Counter[str]  # correlation id -> webhook deliveries naming the entry
    answers: Counter[str]  # webhook answers by status
    sweep_reports: list[dict[str, Any]]
    dlq: list[dict[str, str]]  # the posting DLQ's messages: correlationId, parkedReason
    batch_retries: int  # messages handed back to the queue (5xx, an entry being posted by another batch)
    elapsed: float
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    leftover: dict[str, int] = field(default_factory=dict)  # the posting queue at the end
    problems: list[str] = field(default_factory=list)

    def count(self, status: str, **where: str) -> int:
        return sum(
            1
            for e in self.entries
            if self.statuses.get(e.correlation_id) == status
            and all(getattr(e, k) == v for k, v in where.items())
        )

    @property
    def posted(self) -> int:
        return self.count("COMPLETED")

    @property
    def held(self) -> int:
        return self.count("HELD")

    @property
    def parked(self) -> int:
        return self.count("PARKED")

    @property
    def rejected(self) -> int:
        return self.count("IGNORED")

    @property
    def received(self) -> int:
        """Entries the hub has a transaction for (every one the PSA announced, by webhook or sweep)."""
        return sum(1 for e in self.entries if e.correlation_id in self.statuses)

    @property
    def conserved(self) -> bool:
        return (
            self.received == len(self.entries)
            and self.received == self.posted + self.held + self.parked + self.rejected
        )

    @property
    def webhook_deliveries(self) -> int:
        return sum(self.deliveries.values())

    @property
    def erp_records(self) -> int:
        return sum(c.time_records + c.expense_records for c in self.erp.values())


# ------------------------------------------------------------------------------------------------- seeding


def seed(stack: LocalStack, config: MonthEndConfig) -> tuple[Seeded, list[Entry], dict[str, list[str]]]:
    """The month end in the sandboxes; returns what was seeded, every entry with its case, and the submissions
    whose approval is withdrawn later, by kind."""
    sandboxes = stack.sandboxes
    kantata = sandboxes.kantata
    load = config.load
    cases: list[tuple[str, str, str, str]] = []  # kind, PSA id, entity, case
    withdraw: dict[str, list[str]] = {"time-entry": [], "expense": []}
    kantata.advance_clock(-PSA_PAST_SECONDS)
    try:
        seeded = seed_month_end(sandboxes, load)
        for netsuite in sandboxes.netsuite.values():  # Business Central: posting is allowed from 1 Nov
            if netsuite.period_for(LATE_OCTOBER):
                netsuite.close_period("Oct 2026")
        cases += [
            (kind, psa_id, entity, "regular")
            for kind in ("time-entry", "expense")
            for entity in load.entities
            for psa_id in seeded.ids(kind, entity)
        ]
        for entity in load.entities:
            cases += _special_cases(stack, seeded, entity, withdraw)
    finally:
        kantata.advance_clock(PSA_PAST_SECONDS)
    _seed_watermarks(stack)
    for entity in load.entities:  # approved after the sweep's last run, announced by no webhook
        project = seeded.projects[entity][0]
        workers = seeded.workers[entity][: config.stragglers]
        ids = kantata.seed_time_entries(
            project.workspace_id,
            2 * len(workers),
            user_ids=workers,
            story_id=next(iter(project.tasks.values())),
            start=WAVE_2_FROM.isoformat(),
            time_in_minutes=60,
            notes="pshub straggler",
        )
        kantata.approve_time_entries(ids)
        seeded.add("time-entry", entity, ids)
        cases += [("time-entry", i, entity, "straggler") for i in ids]
    days = {("time-entry", e["id"]): e["date_performed"] for e in kantata.time_entries()}
    days.update({("expense", e["id"]): e["date"] for e in kantata.expenses()})
    entries = [
        Entry(kind, psa_id, entity, case, dt.date.fromisoformat(days[(kind, psa_id)]))
        for kind, psa_id, entity, case in cases
    ]
    return seeded, entries, withdraw


def _special_cases(
    stack: LocalStack, seeded: Seeded, entity: str, withdraw: dict[str, list[str]]
) -> list[tuple[str, str, str, str]]:
    """Per entity: entries that fail a check, a late October entry, and entries whose approval is withdrawn.
    Each goes to a worker and day where the worker's other hours stay within the limit (8 h + 1 h)."""
    sandboxes = stack.sandboxes
    kantata = sandboxes.kantata
    workers = seeded.workers[entity]
    projects = seeded.projects[entity]
    main = projects[0]
    limit = MAX_HOURS[entity]
    policy = POLICY[entity]
    entries: list[tuple[str, str, str, str]] = []

    def worker(n: int) -> str:
        return workers[n % len(workers)]

    def time_entry(case: str, project: HubProject, n: int, day: dt.date, minutes: int, wbs: str) -> str:
        psa_id = kantata.seed_time_entry(
            project.workspace_id,
            user_id=worker(n),
            date_performed=day.isoformat(),
            time_in_minutes=minutes,
            story_id=project.tasks[wbs],
            billable=True,
            rate_in_cents=15_000,
            notes=f"pshub {case}",
        )
        entries.append(("time-entry", psa_id, entity, case))
        return psa_id

    saturday = dt.date(2026, 11, 28)
    over = [  # alone on a Saturday: over the limit whichever batch it travels in
        time_entry("over-hours", main, 0, saturday, int((limit + 1) * 60), "1.1"),
        time_entry("over-hours", main, 1, saturday, int((limit + Decimal("2.5")) * 60), "1.1"),
    ]
    index = len(projects) + 1
    on_hold = seed_project(sandboxes, entity, index, title=f"{entity} client {index} - on hold")
    held_ids = [time_entry("project-on-hold", on_hold, n, dt.date(2026, 11, 24), 60, "1.1") for n in range(3)]
    with_closed = seed_project(
        sandboxes,
        entity,
        index + 1,
        title=f"{entity} client {index + 1} - phase 2",
        wbs=("1.1", "2.1", "3.1"),
    )
    closed_ids = [
        time_entry("task-closed", with_closed, n, dt.date(2026, 11, 25), 60, "3.1") for n in range(2, 5)
    ]
    late = [time_entry("late-october", main, 5, LATE_OCTOBER, 240, "1.1")]
    kantata.approve_time_entries(over + held_ids + closed_ids + late)
    seeded.projects[entity] += [on_hold, with_closed]
    kantata.set_workspace_status(on_hold.workspace_id, "On Hold")
    kantata.set_story_state(with_closed.tasks["3.1"], "completed")
    withdrawn = [time_entry("withdrawn", main, n, dt.date(2026, 11, 26), 60, "1.1") for n in range(6, 8)]
    withdraw["time-entry"] += kantata.approve_time_entries(withdrawn)
    seeded.add("time-entry", entity, over + held_ids + closed_ids + late + withdrawn)

    currency_unit = 100
    lodging_limit = policy.expense_limits[finance_config.C.LODGING].amount
    receipt_above = policy.receipt_required_above.amount

    def lines(
        case: str, category: str, cents: int, *, receipt: bool, n: int, approve: bool = True
    ) -> list[str]:
        ids = seed_expense_lines(
            sandboxes,
            main,
            [worker(n), worker(n + 1)],
            2,
            start=dt.date(2026, 11, 24),
            category=category,
            amount_in_cents=cents,
            receipt=receipt,
            approve=approve,
        )
        entries.extend(("expense", i, entity, case) for i in ids)
        seeded.add("expense", entity, ids)
        return ids

    lines("over-limit", "Lodging", int(lodging_limit * currency_unit * Decimal("1.36")), receipt=True, n=8)
    lines("no-receipt", "Food", int(receipt_above * currency_unit * Decimal("1.25")), receipt=False, n=10)
    withdrawn_lines = lines("withdrawn", "Travel", 9_950, receipt=True, n=12, approve=False)
    withdraw["expense"] += kantata.approve_expenses(withdrawn_lines)
    return entries


def _seed_watermarks(stack: LocalStack) -> None:
    """The sweep's watermarks as its earlier (scheduled) runs left them: ten minutes ago."""
    store = WatermarkStore(stack.outputs["LedgerTableName"], _table(stack))
    mark = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    for kind in ROUTES:
        current = store.get(kind)
        if current is None or current < mark:
            store.save(kind, mark, expected=current)


def _table(stack: LocalStack) -> Any:
    return stack.session.resource("dynamodb", endpoint_url=stack.endpoint).Table(
        stack.outputs["LedgerTableName"]
    )


# ---------------------------------------------------------------------------------------- the PSA's relay


class Relay:
    """The PSA's webhook relay: signed deliveries of up to 200 ids, redelivered and retried as senders do."""

    def __init__(self, stack: LocalStack, batch: int = MAX_BATCH) -> None:
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"a webhook names 1 to {MAX_BATCH} entries, not {batch}")
        self.stack = stack
        self.batch = batch
        self.http = httpx.Client(timeout=60)
        self.deliveries: Counter[str] = Counter()  # correlation id -> deliveries naming it (answered 202)
        self.answers: Counter[str] = Counter()
        self._lock = threading.Lock()

    def deliver(
        self, kind: str, ids: Sequence[str], *, event: str = "approved", msg_id: str | None = None
    ) -> int:
        """One delivery (the same ``msg_id`` on a retry); the status it finally got."""
        route, collection = ROUTES[kind]
        body = json.dumps(
            {
                "type": f"{collection}.{event}",
                "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "data": {"items": [{"id": psa_id} for psa_id in ids]},
            }
        ).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        for attempt in range(6):  # a 503 (could not enqueue, or the same delivery in progress) is retried
            headers = self.stack.sign(body, msg_id=msg_id, secret=self.stack.psa_webhook_secret)
            status = self.http.post(
                self.stack.psa_webhook_url(route), content=body, headers=headers
            ).status_code
            with self._lock:
                self.answers[str(status)] += 1
            if status != 503:
                break
            time.sleep(0.5 * 2**attempt)
        if status == 202:
            with self._lock:
                self.deliveries.update(correlation_id_for(kind, i) for i in ids)
        return status

    def announce(
        self,
        kind: str,
        ids: Sequence[str],
        *,
        event: str = "approved",
        redeliver: dict[int, int] | None = None,
        concurrent: int = -1,
    ) -> list[list[str]]:
        """Every id in batches of ``self.batch``; returns the batches. Batch number ``n`` in ``redeliver`` is
        delivered ``redeliver[n]`` times in all under one ``webhook-id`` (the relay retrying after a lost answer:
        the hub answers again and enqueues nothing); batch number ``concurrent`` goes out twice at once from
        two threads under one ``webhook-id`` (a retry racing its first attempt: enqueued once; the other is
        answered again, or 503 while the first is in progress, and retried)."""
        batches = [list(ids[start : start + self.batch]) for start in range(0, len(ids), self.batch)]
        for number, batch in enumerate(batches):
            msg_id = f"msg_{uuid.uuid4().hex}"
            if number == concurrent:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    list(
                        pool.map(
                            lambda _, b=batch, m=msg_id: self.deliver(kind, b, event=event, msg_id=m),
                            range(2),
                        )
                    )
                continue
            for _ in range((redeliver or {}).get(number, 1)):
                self.deliver(kind, batch, event=event, msg_id=msg_id)
        return batches

    def send_again(self, kind: str, batches: Iterable[Sequence[str]]) -> None:
        """The PSA emitting these events again: new deliveries (new ``webhook-id``), enqueued again; the
        consumer finds their entries posted (or parked, held, rejected) already."""
        for batch in batches:
            self.deliver(kind, batch)


# -------------------------------------------------------------------------------------- the posting consumer


class Consumers:
    """The posting queue's pollers (its event source mapping), paused and resumed as a whole."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.queue_url = stack.outputs["PostingQueueUrl"]
        self.sqs = stack.client("sqs")

    def pollers(self) -> list[QueuePoller]:
        # by the queue's name: the output's host may differ from the endpoint's
        name = self.queue_url.rstrip("/").rsplit("/", 1)[-1]
        found = [p for p in self.stack.pollers if p.mapping.queue_url.rstrip("/").rsplit("/", 1)[-1] == name]
        if not found:
            raise RuntimeError(f"no poller reads the posting queue {name}")
        return found

    @property
    def batch_retries(self) -> int:
        return sum(p.failed_records for p in self.pollers())

    def pause(self, timeout: float = 10) -> None:
        """Take no new batch, and wait (up to ``timeout``) until the batches being handled are done. Messages
        sent from now on wait on the queue until ``resume``."""
        for poller in self.pollers():
            poller.pause()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and queue_depth(self.sqs, self.queue_url)["in_flight"]:
            time.sleep(0.5)

    @contextlib.contextmanager
    def others_paused(self) -> Iterator[None]:
        """The stack's other consumers (the closed-won intake) paused for the block. Their queue is empty, but
        each local poller still long-polls it once a second, in the process that also runs every Lambda and
        the sandboxes (in AWS the mapping polls outside our Lambdas)."""
        mine = set(map(id, self.pollers()))
        others = [p for p in self.stack.pollers if id(p) not in mine]
        for poller in others:
            poller.pause()
        try:
            yield
        finally:
            for poller in others:
                poller.resume()

    def resume(self) -> None:
        """Take batches again (the same containers: what they cached, they keep)."""
        for poller in self.pollers():
            poller.resume()


def queue_depth(sqs: Any, queue_url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    delayed = int(attributes["ApproximateNumberOfMessagesDelayed"])
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        # moto counts a delayed message as not visible too; SQS does not
        "in_flight": max(0, int(attributes["ApproximateNumberOfMessagesNotVisible"]) - delayed),
        "delayed": delayed,
    }


# ------------------------------------------------------------------------------------------------- the run


def run_month_end(
    stack: LocalStack, config: MonthEndConfig | None = None, *, progress: Progress | None = None
) -> MonthEndResult:
    """The month end on a started stack (see the module's doc); run it once per stack."""
    config = config or MonthEndConfig()
    started = time.perf_counter()
    step = _Steps(progress)
    step.start("seeding the sandboxes")
    _, entries, withdraw = seed(stack, config)
    ledger = Ledger(stack.outputs["LedgerTableName"], _table(stack))
    relay = Relay(stack, config.webhook_batch)
    consumers = Consumers(stack)
    waves = _announced(entries)
    withdrawn = [e for e in entries if e.case == "withdrawn"]
    systems = (*stack.sandboxes.netsuite, *stack.sandboxes.business_central)
    since = {system: len(stack.sandboxes.erp(system).requests) for system in systems}  # this run's requests
    with consumers.others_paused(), _erp_faults(stack, config.erp_faults):
        step.start("wave 1 (23-27 Nov): webhooks, posting", total=len(waves[1]))
        sent = {
            kind: relay.announce(kind, ids, redeliver=config.redeliver, concurrent=1)
            for kind, ids in _by_kind(waves[1]).items()
        }
        _wait_final(ledger, consumers, waves[1], step, config.timeout)
        for kind, batches in sent.items():  # the PSA sends some of these events again
            relay.send_again(kind, [b for n, b in enumerate(batches) if n in config.send_again])

        step.start("UK closes November; approvals withdrawn")
        consumers.pause()
        stack.sandboxes.netsuite[CLOSE[0]].close_period(CLOSE[1])
        for kind, ids in _by_kind(withdrawn).items():  # their pointers wait on the queue
            relay.announce(kind, ids)
        kantata = stack.sandboxes.kantata
        for submission in withdraw["time-entry"]:
            kantata.resolve_timesheet(submission, "cancel", "Hours booked to the wrong week")
        for submission in withdraw["expense"]:
            kantata.resolve_expense_report(submission, "reject", "Not a client expense")
        # The relay says so too; the consumer re-reads every entry either way.
        for kind, ids in _by_kind(withdrawn).items():
            relay.announce(kind, ids, event="approval_withdrawn")
        consumers.resume()

        step.start("wave 2 (30 Nov, 1 Dec): webhooks, posting", total=len(waves[2]))
        for kind, ids in _by_kind(waves[2]).items():
            relay.announce(kind, ids, redeliver=config.redeliver)
        _wait_final(ledger, consumers, waves[2] + withdrawn, step, config.timeout)

        sweeps = []
        stragglers = [e for e in entries if e.case == "straggler"]
        for run in range(config.sweeps):
            step.start(f"scheduled sweep, run {run + 1}", total=len(stragglers))
            sweeps.append(stack.fire_schedule("posting_sweep"))
            _wait_final(ledger, consumers, stragglers, step, min(config.timeout, 120))
        step.start("every entry settled", total=len(entries))
        statuses = _wait_final(ledger, consumers, entries, step, config.timeout)
        leftover = _wait_quiet(consumers, config.timeout)
    step.start("counting")
    result = MonthEndResult(
        entries=entries,
        statuses={cid: h["status"] for cid, h in statuses.items()},
        reasons={cid: str(h.get("reason") or "") for cid, h in statuses.items()},
        rules=_parked_rules(ledger, [cid for cid, h in statuses.items() if h["status"] == "PARKED"]),
        erp={},
        posted_ids={},
        deliveries=relay.deliveries,
        answers=relay.answers,
        sweep_reports=sweeps,
        dlq=_dlq(stack),
        batch_retries=consumers.batch_retries,
        elapsed=0.0,
        leftover=leftover,
    )
    result.erp, result.posted_ids = count_erps(stack, entries, statuses, since=since)
    result.problems = check(result)
    step.done()
    result.steps = step.durations
    result.elapsed = time.perf_counter() - started
    return result


@contextlib.contextmanager
def _erp_faults(stack: LocalStack, faults: Faults) -> Iterator[None]:
    """Every ERP sandbox throttles and fails at ``faults``' rates inside the block, calm after it."""
    systems = (*stack.sandboxes.netsuite, *stack.sandboxes.business_central)
    for system in systems:
        stack.sandboxes.erp(system).set_faults(faults)
    try:
        yield
    finally:
        for system in systems:
            stack.sandboxes.erp(system).set_faults(Faults())


class _Steps:
    """The run's steps: a progress bar each (when there is a progress display) and how long each took."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task: Any = None
        self.durations: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def start(self, description: str, total: int | None = None) -> None:
        self.done()
        self._current = (description, time.perf_counter())
        if self.progress is not None:
            self.task = self.progress.add_task(description, total=total)

    def update(self, completed: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=completed)

    def done(self) -> None:
        if self._current is not None:
            name, began = self._current
            self.durations[name] = time.perf_counter() - began
            self._current = None
        if self.progress is not None and self.task is not None:
            total = self.progress.tasks[self.task].total or 1
            self.progress.update(self.task, total=total, completed=total)
            self.task = None


def _announced(entries: Iterable[Entry]) -> dict[int, list[Entry]]:
    """The entries the PSA announces by webhook, by wave (stragglers and withdrawn ones go their own way)."""
    waves: dict[int, list[Entry]] = {1: [], 2: []}
    for entry in entries:
        if entry.case not in ("straggler", "withdrawn"):
            waves[entry.wave].append(entry)
    return waves


def _by_kind(entries: Iterable[Entry]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        kinds[entry.kind].append(entry.psa_id)
    return kinds


def _wait_final(
    ledger: Ledger, consumers: Consumers, entries: Sequence[Entry], step: _Steps, timeout: float
) -> dict[str, dict]:
    """Until every entry has a final ledger status (or the time is up). The ledger is read (100 headers a
    call) when the posting queue looks drained, and every few seconds for the progress bar."""
    wanted = list(dict.fromkeys(e.correlation_id for e in entries))
    final: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    last_read = 0.0
    while True:
        drained = not any(queue_depth(consumers.sqs, consumers.queue_url).values())
        if drained or time.monotonic() - last_read > 5:
            last_read = time.monotonic()
            pending = [cid for cid in wanted if cid not in final]
            final.update({c: h for c, h in ledger.headers(pending).items() if h["status"] in FINAL})
            step.update(len(final))
        if len(final) == len(wanted) or time.monotonic() > deadline:
            return final
        time.sleep(1.0)


def _wait_quiet(consumers: Consumers, timeout: float, quiet: float = 15.0) -> dict[str, int]:
    """Until the posting queue is empty (visible, in flight, delayed: a throttled entry sent back), or has
    not changed for ``quiet`` seconds; its depth then."""
    deadline = time.monotonic() + timeout
    depth = queue_depth(consumers.sqs, consumers.queue_url)
    since, last = time.monotonic(), depth
    while time.monotonic() < deadline and any(depth.values()):
        time.sleep(1.0)
        depth = queue_depth(consumers.sqs, consumers.queue_url)
        if depth != last:
            since, last = time.monotonic(), depth
        elif time.monotonic() - since > quiet:
            break
    return depth


def _parked_rules(ledger: Ledger, correlation_ids: Sequence[str]) -> dict[str, list[str]]:
    """The rules each parked entry failed, from its ledger checkpoint (empty: parked by the ERP or the read)."""
    rules: dict[str, list[str]] = {}
    for cid in correlation_ids:
        transaction = ledger.get(cid) or {}
        found: list[str] = []
        for checkpoint in transaction.get("checkpoints", []):
            if checkpoint.get("outcome") == "parked":
                problems = (checkpoint.get("detail") or {}).get("problems", [])
                found += [str(p["rule"]) for p in problems if p.get("rule")]
        rules[cid] = sorted(set(found))
    return rules


def _dlq(stack: LocalStack) -> list[dict[str, str]]:
    """Every message of the posting DLQ with its attributes (read, then left for ops: visible again soon)."""
    sqs = stack.client("sqs")
    url = stack.outputs["PostingDlqUrl"]
    seen: dict[str, dict[str, str]] = {}
    for _ in range(200):
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            attributes = message.get("MessageAttributes") or {}
            seen[message["MessageId"]] = {
                "messageId": message["MessageId"],
                "correlationId": (attributes.get("correlationId") or {}).get("StringValue", ""),
                "parkedReason": (attributes.get("parkedReason") or {}).get("StringValue", ""),
            }
    return list(seen.values())  # nothing deleted: ops still find every message


# ------------------------------------------------------------------------------------------ counting ERPs

_NETSUITE_EID = {
    "timebill": re.compile(r"^te-(.+)-v(\d+)$"),
    "expensereport": re.compile(r"^ex-(.+)-v(\d+)$"),
}
_BC_INVOICE = re.compile(r"^EX-(.+)-V(\d+)$")


def count_erps(
    stack: LocalStack,
    entries: Sequence[Entry],
    headers: dict[str, dict],
    *,
    since: dict[str, int] | None = None,
) -> tuple[dict[str, ErpCount], dict[str, Counter[str]]]:
    """Records in each ERP sandbox with the hub's references, per PSA entry; duplicates; the requests each
    answered from request number ``since[system]`` on (calls, 429s, 5xx); the peak in flight (ever)."""
    since = since or {}
    sandboxes = stack.sandboxes
    posted: dict[str, Counter[str]] = {"time-entry": Counter(), "expense": Counter()}
    counts: dict[str, ErpCount] = {}
    for system, netsuite in sandboxes.netsuite.items():
        count = counts[system] = ErpCount(system, limit=netsuite.concurrency_limit)
        for record_type, kind in (("timebill", "time-entry"), ("expensereport", "expense")):
            for record in netsuite.records(record_type):
                match = _NETSUITE_EID[record_type].match(str(record.get("externalId") or ""))
                if not match:
                    continue
                posted[kind][match.group(1)] += 1
                if record_type == "timebill":
                    count.time_records += 1
                    dated = re.search(r"\(dated (\d{4}-\d{2}-\d{2})\)", str(record.get("memo") or ""))
                    if dated:
                        count.rolled_forward.append(
                            f"time entry {match.group(1)} dated {dated.group(1)} -> posted {record['tranDate']}"
                        )
                else:
                    count.expense_records += 1
        _traffic(count, netsuite, since.get(system, 0))
        count.peak_open = count.peak_in_flight
    by_line: dict[tuple[str, str, int], str] = {}
    for entry in entries:  # Business Central time entries carry no reference: found by worker, date and line
        header = headers.get(entry.correlation_id) or {}
        version = (header.get("refs") or {}).get("postedVersion")
        if (
            entry.kind == "time-entry"
            and version is not None
            and erp_system(entry.entity) in sandboxes.business_central
        ):
            worker = str((header.get("summary") or {}).get("worker") or "")
            number = bm.line_number(bm.reference("TE", entry.psa_id, int(version)))
            by_line[(worker, entry.day.isoformat(), number)] = entry.psa_id
    for system, bc in sandboxes.business_central.items():
        count = counts[system] = ErpCount(system, limit=bc.concurrency_limit)
        company = finance_config.BC_COMPANY
        for record in bc.records(company, "timeRegistrationEntries"):
            key = (
                str(record.get("employeeNumber")),
                str(record.get("date")),
                int(record.get("lineNumber") or 0),
            )
            psa_id = by_line.get(key)
            if psa_id is None:
                count.duplicate_records += 1  # not one of the hub's posted entries
                continue
            posted["time-entry"][psa_id] += 1
            count.time_records += 1
        for record in bc.records(company, "purchaseInvoices"):
            match = _BC_INVOICE.match(str(record.get("vendorInvoiceNumber") or ""))
            if match:
                posted["expense"][match.group(1)] += 1
                count.expense_records += 1
        _traffic(count, bc, since.get(system, 0))
        count.peak_open = bc.peak_connections
    for count in counts.values():
        system_ids = {e.psa_id for e in entries if erp_system(e.entity) == count.system}
        for kind in posted:
            count.duplicate_records += sum(
                n - 1 for i, n in posted[kind].items() if n > 1 and i in system_ids
            )
    return counts, posted


def _traffic(count: ErpCount, sandbox: Any, since: int) -> None:
    requests = sandbox.requests[since:]
    writes = Counter(r.path for r in requests if r.method == "PUT" and "/eid:" in r.path and r.status == 204)
    count.rewrites = sum(n - 1 for n in writes.values())
    count.calls = len(requests)
    count.answered_429 = sum(1 for r in requests if r.status == 429)
    count.answered_5xx = sum(1 for r in requests if r.status is not None and r.status >= 500)
    count.over_limit = sum(1 for r in requests if r.fault == "concurrency")
    count.peak_in_flight = sandbox.peak_in_flight


def check(result: MonthEndResult) -> list[str]:
    """Everything that would make the run wrong, said plainly."""
    problems = []
    for entry in result.entries:
        status = result.statuses.get(entry.correlation_id)
        want = expected_status(entry)
        if status is None:
            problems.append(f"{entry.kind} {entry.psa_id} ({entry.entity}, {entry.case}) has no final status")
        elif status != want:
            reason = result.reasons.get(entry.correlation_id, "")
            problems.append(
                f"{entry.kind} {entry.psa_id} ({entry.entity}, {entry.case}) is {status}, expected {want}: {reason}"
            )
        records = result.posted_ids[entry.kind].get(entry.psa_id, 0)
        if status == "COMPLETED" and records != 1:
            problems.append(f"{entry.kind} {entry.psa_id} posted, with {records} records in its ERP")
        if status in ("PARKED", "HELD", "IGNORED") and records:
            problems.append(f"{entry.kind} {entry.psa_id} is {status} but has {records} records in its ERP")
        rule = RULE_OF_CASE.get(entry.case)
        if status == "PARKED" and rule and rule not in result.rules.get(entry.correlation_id, []):
            problems.append(f"{entry.kind} {entry.psa_id} parked without the rule {rule}")
    for count in result.erp.values():
        if count.duplicate_records:
            problems.append(f"{count.system}: {count.duplicate_records} records beyond one per entry")
        if count.limit is not None and max(count.peak_in_flight, count.peak_open) > count.limit:
            problems.append(
                f"{count.system}: {count.peak_open} requests at once, over its limit {count.limit}"
            )
        if count.over_limit:
            problems.append(f"{count.system}: {count.over_limit} requests refused over the concurrency limit")
    parked_ids = {cid for cid, s in result.statuses.items() if s == "PARKED"}
    in_dlq = {m["correlationId"] for m in result.dlq}
    if in_dlq != parked_ids:
        problems.append(
            f"the posting DLQ holds {len(in_dlq)} entries ({len(result.dlq)} messages), {len(parked_ids)} are parked"
        )
    stray = [m for m in result.dlq if m["correlationId"] not in parked_ids or not m["parkedReason"]]
    problems += [f"DLQ message {m['messageId']} ({m['correlationId']}) is not a parked entry" for m in stray]
    if not result.conserved:
        problems.append(
            f"conservation: in {result.received} of {len(result.entries)} != posted {result.posted} + held "
            f"{result.held} + parked {result.parked} + rejected {result.rejected}"
        )
    return problems


# ------------------------------------------------------------------------------------------------- report


def report(console: Console, result: MonthEndResult) -> None:
    entries = result.entries
    by_system: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_system[erp_system(entry.entity)].append(entry)
    table = Table(title=f"Month end: {len(entries):,} time entries and expense lines through the hub")
    for column in (
        "ERP (entity)",
        "entries",
        "posted: time",
        "expenses",
        "records",
        "posted twice",
        "held",
        "parked",
        "rejected",
        "calls",
        "429s",
        "5xx",
        "peak in flight / limit",
    ):
        table.add_column(column, justify="right" if column not in ("ERP (entity)",) else "left", no_wrap=True)
    for system, count in result.erp.items():
        mine = by_system.get(system, [])
        codes = sorted({e.entity for e in mine})
        status_of = Counter(result.statuses.get(e.correlation_id, "UNACCOUNTED") for e in mine)
        peak = f"{count.peak_in_flight}"
        if count.peak_open != count.peak_in_flight:
            peak += f" (+{count.peak_open - count.peak_in_flight} queued)"
        table.add_row(
            f"{system} ({', '.join(codes)})",
            f"{len(mine):,}",
            f"{count.time_records:,}",
            f"{count.expense_records:,}",
            f"{count.time_records + count.expense_records:,}",
            f"[{'red' if count.duplicate_records else 'green'}]{count.duplicate_records}[/]",
            str(status_of["HELD"]),
            str(status_of["PARKED"]),
            str(status_of["IGNORED"]),
            f"{count.calls:,}",
            str(count.answered_429),
            str(count.answered_5xx),
            f"{peak} / {count.limit}",
        )
    console.print(table)

    webhooks = result.webhook_deliveries
    announced = len({cid for cid in result.deliveries})
    swept = [
        sum(r.get(k, {}).get("counts", {}).get("enqueued", 0) for k in ROUTES) for r in result.sweep_reports
    ]
    console.print(
        f"announced: {webhooks:,} webhook deliveries naming {announced:,} entries "
        f"({webhooks - announced:,} duplicates), sweep pointers {' + '.join(map(str, swept)) or 0} "
        f"-> {result.erp_records:,} ERP records for {result.posted:,} posted entries: "
        + (
            "[green]nothing posted twice[/]"
            if not any(c.duplicate_records for c in result.erp.values())
            else "[red]DUPLICATES[/]"
        )
    )
    rewrites = {c.system: c.rewrites for c in result.erp.values() if c.rewrites}
    if rewrites:
        console.print(
            "written again under the same external id (NetSuite's upsert kept one record): "
            + ", ".join(f"{system} {n}" for system, n in rewrites.items())
        )
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(result.answers.items()))
    console.print(
        f"webhook answers: {answers}"
        + (
            " (a delivery raced its own retry: 'in progress', retried; logged as errors above)"
            if result.answers.get("503")
            else ""
        )
        + f"; batch items handed back to the queue (5xx, claimed): {result.batch_retries}"
    )

    held = [e for e in entries if result.statuses.get(e.correlation_id) == "HELD"]
    if held:
        reasons = Counter(_general(result.reasons.get(e.correlation_id, "")) for e in held)
        for reason, n in reasons.most_common():
            example = next(e for e in held if _general(result.reasons.get(e.correlation_id, "")) == reason)
            console.print(f"[yellow]held[/] {n:>4}  {result.reasons[example.correlation_id]}")
    parked = [e for e in entries if result.statuses.get(e.correlation_id) == "PARKED"]
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in parked:
        groups[", ".join(result.rules.get(entry.correlation_id) or ["erp or mapping"])].append(entry)
    for rule, members in sorted(groups.items()):
        example = members[0]
        console.print(
            f"[magenta]parked[/] {len(members):>3}  {rule}: e.g. {result.reasons.get(example.correlation_id, '')}"
        )
    rejected: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if result.statuses.get(entry.correlation_id) == "IGNORED":
            rejected[_general(result.reasons.get(entry.correlation_id, ""))].append(entry)
    for members in rejected.values():
        example = result.reasons.get(members[0].correlation_id, "")
        console.print(f"[blue]rejected[/] {len(members):>2}  e.g. {example}")
    for count in result.erp.values():
        for line in count.rolled_forward[:1]:
            console.print(f"rolled forward ({count.system}): {line} (its period was closed)")
    in_dlq = {m["correlationId"] for m in result.dlq}
    parked_ids = {e.correlation_id for e in parked}
    console.print(
        f"posting DLQ: {len(result.dlq)} messages for {len(in_dlq)} entries (parked: {result.parked})"
        + (
            f"; {len(result.dlq) - len(in_dlq)} extra: a parked entry announced twice is held twice"
            if len(result.dlq) > len(in_dlq)
            else ""
        )
        + ("; none for throttling or anything else" if in_dlq <= parked_ids else "; [red]not only parked[/]")
    )
    if any(result.leftover.values()):
        console.print(f"posting queue at the end (duplicates and retries still waiting): {result.leftover}")
    ok = result.conserved and not result.problems
    console.print(
        f"conservation: in {result.received:,} = posted {result.posted:,} + held {result.held:,} + parked "
        f"{result.parked:,} + rejected {result.rejected:,}  "
        + ("[green]OK[/]" if result.conserved else "[red]NOT OK[/]")
    )
    console.print(
        f"elapsed: {result.elapsed:.1f}s, {result.posted / result.elapsed:.1f} entries/s posted"
        + ("" if ok else f"; {len(result.problems)} problem(s)")
    )
    for problem in result.problems[:20]:
        console.print(f"[red]PROBLEM[/] {problem}")


def _general(reason: str) -> str:
    """A reason without its entry's own numbers and dates, to group alike reasons."""
    return re.sub(r"\d{4}-\d{2}-\d{2}|\b\d+(\.\d+)?\b", "#", reason)
