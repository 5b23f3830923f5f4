"""The month-end drain benchmark: approved time entries through the local stack into an ERP sandbox with a
concurrency limit and a fixed latency, measured in one run.

For each ERP shape (NetSuite: one record per call; Business Central: ``$batch`` of up to 100):

1. seed the entries in the Kantata sandbox (one legal entity routed to that ERP), approved;
2. with the posting queue's consumers paused, run the sweep as the schedule does: it reads them from the
   PSA and enqueues one pointer each;
3. resume the consumers and time the drain: from the first ERP request to the last entry recorded;
4. count, from the sandboxes' own request logs and the hub's boto3 clients: ERP calls per 1,000 entries,
   requests the ERP answered with its limit errors, the most in flight at once, DynamoDB writes per entry
   by table and operation, and what reached the posting DLQ.

Throughput is reported as a fraction of the ceiling ``limit / latency`` (requests per second the ERP can
take); for NetSuite one entry is one request, so entries per second are comparable with it directly.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SWEEP_RUNS = 10
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass
class DrainFigures:
    shape: str
    entries: int
    limit: int
    latency: float
    seconds: float = 0.0
    posted: int = 0
    erp_calls: int = 0  # every request the ERP saw during the drain (tokens and calendar reads included)
    posting_calls: int = 0  # the requests that carried postings
    limit_errors: int = 0  # answered 429 (NetSuite's pool, BC's window or its 5-running model)
    peak_in_flight: int = 0
    dlq: int = 0
    sweep_seconds: float = 0.0
    sweep_runs: int = 0  # scheduled runs it took to enqueue every entry
    enqueued: int = 0  # pointers the sweep put on the posting queue
    busy: float = 0.0  # the ERP's requests' total duration over the drain's span: mean requests in flight
    timeline: list[int] = field(default_factory=list)  # ERP requests started in each second of the drain
    writes: Counter[str] = field(default_factory=Counter)  # "table:Operation" -> count
    reads: Counter[str] = field(default_factory=Counter)

    @property
    def ceiling(self) -> float:
        """Requests per second the ERP can serve: its concurrency limit over its latency."""
        return self.limit / self.latency

    @property
    def requests_per_second(self) -> float:
        return self.erp_calls / self.seconds if self.seconds else 0.0

    @property
    def fraction_of_ceiling(self) -> float:
        return self.requests_per_second / self.ceiling

    @property
    def entries_per_second(self) -> float:
        return self.posted / self.seconds if self.seconds else 0.0

    def per_entry(self, table: str) -> dict[str, float]:
        return {
            key.split(":", 1)[1]: round(count / max(1, self.posted), 2)
            for key, count in sorted(self.writes.items())
            if key.startswith(f"{table}:")
        }


class CallCounter:
    """Counts the DynamoDB calls the hub's cached boto3 clients make (the handlers run in this process)."""

    def __init__(self) -> None:
        self.writes: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.on = False

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.on:
            return
        names = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems") or ["?"])
        for name in names:
            key = f"{_table_label(str(name))}:{model.name}"
            with self._lock:
                (self.writes if model.name in WRITES else self.reads)[key] += 1


def _table_label(name: str) -> str:
    """``pshub-TablesLedger1A2B3C-XYZ`` (a CloudFormation physical name) -> ``ledger``."""
    lowered = name.lower()
    return next((label for label in ("ledger", "routing", "idempotency") if label in lowered), name)


def drain(
    *, shape: str = "netsuite", entries: int = 20_000, limit: int = 5, latency: float = 0.1
) -> DrainFigures:
    from hub import aws
    from local.pollers import wait_until_drained
    from local.psa_seed import MonthEndLoad, seed_month_end
    from local.sandboxes.base import Faults
    from local.stack import LocalStack, Sandboxes

    entity = {"netsuite": "US01", "business-central": "DE01"}[shape]
    system = {"netsuite": "netsuite-us", "business-central": "bc-eu"}[shape]
    sandboxes = Sandboxes.create(erp_concurrency=limit, erp_faults=Faults(latency=latency, seed=11))
    figures = DrainFigures(shape=shape, entries=entries, limit=limit, latency=latency)
    # 20 weekdays of November; every worker books half an hour on each of ten projects a day (5 h: within
    # every entity's daily maximum), so workers x 10 x 20 = entries.
    workers = max(1, entries // 200)
    load = MonthEndLoad(
        workers=workers,
        projects=10,
        days=20,
        start=dt.date(2026, 11, 2),
        minutes=30,
        expenses=0,
        entities=(entity,),
    )
    with LocalStack(sandboxes=sandboxes, max_pollers=100).start() as stack:  # the template's concurrency
        seeded = seed_month_end(sandboxes, load)
        total = len(seeded.ids("time-entry"))
        erp = sandboxes.erp(system)
        counter = CallCounter()
        for name in ("LedgerTableName", "RoutingTableName", "IdempotencyTableName"):
            counter.attach(aws.table(stack.outputs[name]).meta.client)
        counter.attach(aws.client("dynamodb"))
        with stack.pollers_paused():
            # A sweep window ends on a whole second before now, and an entry stamped after it is the next
            # run's (15 minutes later on the schedule): let the second of the last seeded approval pass.
            time.sleep(1.1)
            started = time.perf_counter()
            # As the schedule would: a sweep invocation stops at its deadline and the next run continues.
            for _ in range(SWEEP_RUNS):
                report = (stack.fire_schedule("posting_sweep") or {}).get("time-entry") or {}
                figures.sweep_runs += 1
                figures.enqueued += int((report.get("counts") or {}).get("enqueued", 0))
                if report.get("complete"):
                    break
            figures.sweep_seconds = time.perf_counter() - started
            first_request = len(erp.requests)
            counter.on = True
            begin = time.time()
        sqs = stack.client("sqs")
        wait_until_drained(
            sqs, stack.outputs["PostingQueueUrl"], timeout=max(600.0, entries * 0.2), interval=1.0
        )
        posted = _wait_posted(stack, erp, system, total, timeout=120.0)
        counter.on = False
        log = erp.requests[first_request:]
        end = max((r.at + r.duration for r in log), default=begin)
        start = min((r.at for r in log), default=begin)
        figures.seconds = max(1e-9, end - start)
        figures.busy = sum(r.duration for r in log) / figures.seconds
        figures.timeline = [0] * (int(figures.seconds) + 1)
        for r in log:
            figures.timeline[int(r.at - start)] += 1
        figures.posted = posted
        figures.erp_calls = len(log)
        figures.posting_calls = sum(1 for r in log if r.method in ("PUT", "POST") and "token" not in r.path)
        figures.limit_errors = sum(1 for r in log if r.status == 429)
        figures.peak_in_flight = erp.peak_in_flight
        figures.writes, figures.reads = counter.writes, counter.reads
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.outputs["PostingDlqUrl"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        figures.dlq = int(attributes["ApproximateNumberOfMessages"])
        figures.entries = total
    return figures


def _wait_posted(stack: Any, erp: Any, system: str, expected: int, *, timeout: float) -> int:
    """Entries the ERP sandbox holds with the hub's external ids, once all are there (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        found = _count_posted(stack, erp, system)
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _count_posted(stack: Any, erp: Any, system: str) -> int:
    if system in stack.sandboxes.business_central:
        from local.finance_config import BC_COMPANY

        return int(erp.count(erp.company(BC_COMPANY), "timeRegistrationEntries"))
    return sum(1 for r in erp.records("timebill") if str(r.get("externalId", "")).startswith("te-"))
