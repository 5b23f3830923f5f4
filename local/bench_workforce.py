"""The worker sync benchmark: a full sync of the HCM's workers into the PSA's resource pool, then an hourly
delta, through the real handlers against in-process sandboxes and moto, measured in one run.

1. Seed the Workday sandbox with ``workers`` workers (three legal entities, several cost centres and
   departments, some contractors, effective-dated rate histories, some hires and changes dated in the future)
   and an empty Kantata account (its User custom fields set up, as an administrator does once).
2. Full sync: the ``worker_sync`` handler's first run (its lookback covers every hire) reads the HCM's change
   report and queues every worker; then the worker queue is drained as its event source mapping would: batches
   of up to 50 messages handed to the real ``worker_consumer`` handler by ``threads`` pollers (the mapping's
   maximum concurrency), each batch's successes deleted, until the queue is empty.
3. The invited people accept their invitations (what the e-mailed link does; no API does it), the clock moves
   an hour, and ``delta`` workers change in the HCM: cost-rate changes (today's and future-dated), transfers
   between entities and cost centres, leavers and new hires. The sync runs again from its watermark, and the
   queue is drained again.

For each phase: the wall time of the sync and of the drain; the HCM's and the PSA's requests (each
sandbox's own request log), PSA requests per worker and per second of the drain, the fraction of the PSA's
rate limit that rate is (``KANTATA_LIMIT_PER_SECOND``, see there), 429s, what each message became, what
reached the DLQ, and DynamoDB writes per worker by table and operation (the hub's boto3 clients, counted).

The sandboxes answer in-process with no network latency (``latency=`` adds some to every PSA request): the
requests per second are what this machine's CPU lets the consumers and the PSA sandbox (one process, one
GIL) do. Against Kantata two consumers send at most 2 / (its answer time) requests a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from local.bench_posting import CallCounter

ROOT = Path(__file__).resolve().parent.parent

# Kantata's API limit. The API reference (developer.kantata.com, "Rate Limits") says general rate limits apply
# to every request (429 Too Many Requests, retry after a small delay) and that a few endpoints, among them
# POST /account_invitations and GET|POST /custom_field_values, have limits of their own, but gives no number:
# those are in a knowledge-base article behind the customer login (knowledge.kantata.com/hc/en-us/articles/
# 9698066628123), as github.com/api-evangelist/mavenlink rate-limits/mavenlink-rate-limits.yml records.
# docs/vendor-apis.md states none, and the sandbox models none (429s only come from injected faults or its
# concurrency limit). This figure is therefore an ASSUMPTION, 600 requests a minute for the account, to be
# replaced by the account's figure from that article; the bench prints the requests per second it measured.
KANTATA_LIMIT_PER_SECOND = 10.0
KANTATA_LIMIT_SOURCE = "assumed: Kantata publishes no figure (knowledge.kantata.com article 9698066628123)"

T0 = dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in the Workday tenant
TODAY = T0.date()
NEXT_MONTH = dt.date(2026, 12, 1)
BATCH_SIZE = 50  # the worker queue's event source mapping (infra/stack.py WORKER_BATCH_SIZE)
MAX_CONCURRENCY = 2  # and its maximum concurrency (WORKER_MAX_CONCURRENCY)
TOKEN = "kantata-sandbox-token"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
INVITATION_TEMPLATE = "{hcm_id}@staff.pshub.example"

# Workday company -> the hub's legal entity, and the company's currency and country.
COMPANIES = {
    "PSHUB_US": ("US01", "USD", "US"),
    "PSHUB_UK": ("UK01", "GBP", "GB"),
    "PSHUB_DE": ("DE01", "EUR", "DE"),
}
ENTITY_WEIGHTS = (("PSHUB_US", 6), ("PSHUB_UK", 3), ("PSHUB_DE", 1))
COST_CENTRES = ("CC100", "CC200", "CC300", "CC400")
DEPARTMENTS = ("Consulting", "Delivery", "Advisory", "Data", "Cloud")
SKILLS = ("SAP FI", "SAP CO", "Python", "AWS", "Azure", "Project Management", "Change", "Salesforce", "Java")
CONTRACTOR_SHARE = 0.15
FUTURE_HIRE_SHARE = 0.01  # hired next month: in the HCM now, nothing in the PSA before the hire date
FUTURE_RATE_SHARE = 0.05  # a raise dated next month, entered now
FUTURE_TRANSFER_SHARE = 0.03  # a transfer dated next month, entered now
RATE_HISTORY_SHARE = 0.30  # a past raise: an effective-dated history, today's rate is the later one
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


@dataclass
class PhaseFigures:
    """One sync run and the drain of what it queued."""

    label: str
    changed: int  # workers changed in the HCM for this phase
    read: int = 0
    enqueued: int = 0
    unmappable: int = 0
    due: int = 0  # of enqueued: changes applied earlier that take effect today (queued again)
    sync_seconds: float = 0.0
    drain_seconds: float = 0.0
    batches: int = 0
    fates: Counter[str] = field(default_factory=Counter)  # what each message became (the consumer's fates)
    hcm_calls: int = 0
    psa_calls: int = 0  # every PSA request of the drain
    psa_writes: int = 0  # its POST / PUT / DELETE
    psa_limit_errors: int = 0  # answered 429
    psa_by_call: Counter[str] = field(default_factory=Counter)  # "METHOD /collection" -> requests
    psa_seconds: float = 0.0  # the PSA requests' total duration (the sandbox's own time answering)
    limit_per_second: float = KANTATA_LIMIT_PER_SECOND
    dlq: int = 0
    left_on_queue: int = 0
    writes: Counter[str] = field(default_factory=Counter)  # "table:Operation" -> count (DynamoDB)
    aws_calls: Counter[str] = field(default_factory=Counter)  # "service:Operation" (SQS, EventBridge)

    @property
    def psa_calls_per_worker(self) -> float:
        return self.psa_calls / max(1, self.enqueued)

    @property
    def psa_requests_per_second(self) -> float:
        return self.psa_calls / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def fraction_of_limit(self) -> float:
        return self.psa_requests_per_second / self.limit_per_second

    @property
    def psa_in_flight(self) -> float:
        """PSA requests in flight on average over the drain."""
        return self.psa_seconds / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def psa_answer_ms(self) -> float:
        """The PSA's mean answer time (in-process: the sandbox's CPU time, waiting for the GIL included)."""
        return 1000 * self.psa_seconds / max(1, self.psa_calls)

    def per_worker(self, counts: Mapping[str, int]) -> dict[str, float]:
        return {key: round(n / max(1, self.enqueued), 2) for key, n in sorted(counts.items())}


@dataclass
class WorkforceFigures:
    workers: int
    delta: int
    threads: int
    latency: float
    phases: list[PhaseFigures] = field(default_factory=list)
    members: int = 0  # people the hub added to the PSA (members, disabled ones too, and pending invitations)
    invitations_accepted: int = 0


class _Clock:
    """The instant the HCM stamps changes with and the sync reads up to (moved by hand)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def run(
    *,
    workers: int = 10_000,
    delta: int = 500,
    threads: int = MAX_CONCURRENCY,
    latency: float = 0.0,
    limit_per_second: float = KANTATA_LIMIT_PER_SECOND,
    seed: int = 7,
) -> WorkforceFigures:
    """The full sync of ``workers`` and a delta of ``delta`` changes, measured (see the module docstring)."""
    if str(ROOT / "layers") not in sys.path:
        sys.path.insert(0, str(ROOT / "layers"))
    from moto import mock_aws

    from local import moto_speedups
    from local.sandboxes import KantataSandbox, WorkdaySandbox
    from local.sandboxes.base import Faults

    moto_speedups.install()  # moto's SQS is not thread-safe without it, and slow on a 10,000-message queue
    figures = WorkforceFigures(workers=workers, delta=delta, threads=threads, latency=latency)
    rng = random.Random(seed)
    clock = _Clock(T0 - dt.timedelta(hours=1))
    workday = WorkdaySandbox(clock=clock)
    started = time.monotonic()
    kantata = KantataSandbox(  # Kantata's own clock runs on in real time: its stamps order the invitations
        tokens=[TOKEN],
        clock=lambda: clock.now + dt.timedelta(seconds=time.monotonic() - started),
        faults=Faults(latency=latency, seed=seed) if latency else None,
    )
    for name in ("Legal Entity", "Cost Centre", "HCM ID"):  # what an administrator sets up once
        kantata.seed_custom_field(name)
    for department in DEPARTMENTS:
        kantata.seed_organization(department)
    for company, (_, currency, country) in COMPANIES.items():
        if company not in ("PSHUB_US", "PSHUB_UK"):
            workday.add_company(company, f"PS Hub {country}", country, currency)
    hired = seed_workday(workday, workers, rng)
    people_before = _people(kantata)

    with _aws_environment(), mock_aws():
        hub = _Hub(workday, kantata, clock, threads=threads)
        clock.now = T0
        full = PhaseFigures("full sync", changed=len(hired), limit_per_second=limit_per_second)
        hub.phase(full)
        figures.phases.append(full)

        figures.invitations_accepted = accept_invitations(kantata)
        clock.now = T0 - dt.timedelta(minutes=30) + dt.timedelta(hours=1)
        changed = change_workday(workday, hired, delta, rng)
        clock.now = T0 + dt.timedelta(hours=1)
        second = PhaseFigures("delta", changed=len(changed), limit_per_second=limit_per_second)
        hub.phase(second)
        figures.phases.append(second)
        figures.members = _people(kantata) - people_before
    return figures


# ------------------------------------------------------------------------------------------------ the HCM


def seed_workday(workday: Any, count: int, rng: random.Random) -> list[str]:
    """``count`` workers hired into the Workday sandbox (no HTTP); their employee ids."""
    from local.sandboxes.workday import CONTINGENT, EMPLOYEE

    companies = [c for c, weight in ENTITY_WEIGHTS for _ in range(weight)]
    ids = []
    for n in range(count):
        company = rng.choice(companies)
        _, currency, _ = COMPANIES[company]
        future_hire = rng.random() < FUTURE_HIRE_SHARE
        hire_date = (
            TODAY + dt.timedelta(days=rng.randrange(7, 40))
            if future_hire
            else dt.date(2018, 1, 2) + dt.timedelta(days=rng.randrange(0, (TODAY - dt.date(2018, 1, 2)).days))
        )
        contractor = rng.random() < CONTRACTOR_SHARE
        part_time = rng.random() < 0.1
        rate = Decimal(rng.randrange(45, 180)) + (Decimal(rng.randrange(0, 4)) * Decimal("0.25"))
        employee_id = workday.hire(
            legal_entity=company,
            cost_centre=COST_CENTRES[n % len(COST_CENTRES)],
            department=DEPARTMENTS[n % len(DEPARTMENTS)],
            hire_date=hire_date,
            worker_type=CONTINGENT if contractor else EMPLOYEE,
            business_title="Contractor" if contractor else "Consultant",
            cost_rate=rate,
            currency=currency,
            skills=rng.sample(SKILLS, rng.randrange(1, 4)),
            weekly_hours=30 if part_time else 40,
            working_days=_WEEKDAYS[:4] if part_time else _WEEKDAYS,
        )
        if not future_hire and rng.random() < RATE_HISTORY_SHARE:
            raised = max(hire_date + dt.timedelta(days=1), TODAY - dt.timedelta(days=rng.randrange(30, 400)))
            workday.change_cost_rate(employee_id, rate + 10, currency, raised)
        if not future_hire and rng.random() < FUTURE_RATE_SHARE:
            workday.change_cost_rate(employee_id, rate + 15, currency, NEXT_MONTH)
        if not future_hire and rng.random() < FUTURE_TRANSFER_SHARE:
            workday.transfer(
                employee_id,
                legal_entity=company,
                cost_centre=rng.choice(COST_CENTRES),
                effective=NEXT_MONTH,
            )
        ids.append(employee_id)
    return ids


def change_workday(workday: Any, hired: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` changes in the HCM, one worker each: 40% cost-rate changes (half today, half next month),
    30% transfers (half to another legal entity, half of them dated next month), 15% leavers (yesterday was
    their last day) and 15% new hires. The workers changed."""
    from local.sandboxes.workday import EMPLOYEE

    current = [w for w in hired if dt.date.fromisoformat(workday.worker(w)["hire_date"]) <= TODAY]
    picked = rng.sample(current, min(len(current), count - int(count * 0.15)))
    rates, transfers = int(count * 0.40), int(count * 0.30)
    changed = []
    for n, employee_id in enumerate(picked):
        record = workday.worker(employee_id)
        company = _company_on(record, TODAY)
        if n < rates:
            currency = COMPANIES[company][1]
            amount = Decimal(rng.randrange(60, 200))
            workday.change_cost_rate(employee_id, amount, currency, TODAY if n % 2 else NEXT_MONTH)
        elif n < rates + transfers:
            target = rng.choice([c for c in COMPANIES if c != company]) if n % 2 else company
            workday.transfer(
                employee_id,
                legal_entity=target,
                cost_centre=rng.choice(COST_CENTRES),
                department=rng.choice(DEPARTMENTS),
                effective=TODAY if n % 4 < 2 else NEXT_MONTH,
            )
            if target != company and n % 4 < 2:  # the new entity pays in its own currency from today
                workday.change_cost_rate(
                    employee_id, Decimal(rng.randrange(60, 200)), COMPANIES[target][1], TODAY
                )
        else:
            workday.terminate(employee_id, TODAY - dt.timedelta(days=1))
        changed.append(employee_id)
    for _ in range(count - len(picked)):
        company = rng.choice(list(COMPANIES))
        changed.append(
            workday.hire(
                legal_entity=company,
                cost_centre=rng.choice(COST_CENTRES),
                department=rng.choice(DEPARTMENTS),
                hire_date=TODAY - dt.timedelta(days=rng.randrange(0, 5)),
                worker_type=EMPLOYEE,
                cost_rate=Decimal(rng.randrange(60, 200)),
                currency=COMPANIES[company][1],
                skills=rng.sample(SKILLS, 2),
            )
        )
    return changed


def _company_on(record: Mapping[str, Any], day: dt.date) -> str:
    """The Workday company a worker (the sandbox's record of them) is in on ``day``."""
    assignments = record["assignments"]
    company = assignments[0]["company"]
    for assignment in assignments:
        if dt.date.fromisoformat(assignment["effective"]) <= day:
            company = assignment["company"]
    return str(company)


def _people(kantata: Any) -> int:
    """Account members (disabled ones too) and people invited who have not accepted yet."""
    return len(kantata.account_memberships()) + sum(1 for i in kantata.account_invitations() if i["pending"])


def accept_invitations(kantata: Any) -> int:
    """Everyone invited accepts (the e-mailed link; no API does it). How many did."""
    accepted = 0
    for invitation in kantata.account_invitations():
        if invitation["pending"]:
            kantata.accept_invitation(invitation["id"])
            accepted += 1
    return accepted


# ------------------------------------------------------------------------------------------------ the hub


@contextlib.contextmanager
def _aws_environment() -> Iterator[None]:
    """moto's credentials and region, quiet metrics, and clean caches; the environment (the functions'
    settings included) is put back as it was afterwards."""
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_METRICS_DISABLED": "1",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    _forget()
    try:
        yield
    finally:
        _forget()
        os.environ.clear()
        os.environ.update(saved)


def _forget() -> None:
    from aws_lambda_powertools.utilities import parameters

    from hub import aws
    from hub.settings import load

    aws.reset_all()
    load.cache_clear()
    parameters.clear_caches()
    for module in list(sys.modules.values()):  # the functions cache their wiring per container, as in Lambda
        if (getattr(module, "__name__", "") or "").startswith("functions.") and hasattr(
            module, "default_deps"
        ):
            module.default_deps.cache_clear()


class _Hub:
    """The hub's resources in moto, its two functions wired to the sandboxes, and the counters."""

    def __init__(self, workday: Any, kantata: Any, clock: _Clock, *, threads: int) -> None:
        import boto3

        from functions.worker_consumer import handler as consumer
        from functions.worker_sync import handler as sync
        from hub import aws
        from hub.connectors.factory import hcm_from_secret, psa_resources_from_secret
        from hub.connectors.http import RetryPolicy
        from hub.settings import WorkerConsumerSettings, load
        from local.lambda_runtime import LambdaContext
        from tests.support.aws import HubResources, build

        self.res = build(HubResources())
        os.environ.update(self.res.env)
        self.workday, self.kantata, self.clock, self.threads = workday, kantata, clock, threads
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.counter = CallCounter()
        self.aws_calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        for client in (aws.client("dynamodb"), aws.client("sqs"), aws.client("events")):
            self._watch(client)
        for name in (self.res.ledger_table, self.res.planning_table, self.res.idempotency_table):
            self._watch(aws.table(name).meta.client)

        hcm = hcm_from_secret(
            {
                "base_url": workday.base_url,
                "tenant": workday.tenant,
                "client_id": workday.client_id,
                "client_secret": workday.client_secret,
                "refresh_token": "pshub-isu-refresh-token",
                "report_owner": workday.report_owner,
                "legal_entities": {company: entity for company, (entity, _, _) in COMPANIES.items()},
                "tenant_time_zone": workday.time_zone,
            },
            transport=workday.transport(),
            retry=RetryPolicy(sleep=lambda seconds: None),
        )
        # The function's own wiring (watermark, queue, ledger, planning), with the HCM adapter on the sandbox's
        # in-process transport and the bench's clock.
        self.sync_deps = dataclasses.replace(sync.default_deps(), hcm=lambda: hcm, clock=clock)
        self.sync_handler = sync.handler
        psa = psa_resources_from_secret(
            {
                "base_url": KANTATA_URL,
                "token": TOKEN,
                "invitation_email_template": INVITATION_TEMPLATE,
                "account_currency": "USD",
            },
            transport=kantata.transport(),
            retry=RetryPolicy(sleep=lambda seconds: None),
        )
        wired = consumer.build_deps(
            load(WorkerConsumerSettings), psa=psa, sqs=aws.client("sqs"), today=lambda: TODAY
        )
        self.fates: Counter[str] = Counter()

        def consume(messages: list[tuple[str, str, int]]) -> Any:
            outcome = wired.consume(messages)
            with self._lock:
                self.fates.update(str(m.fate) for m in outcome.messages)
            return outcome

        self.consumer_deps = consumer.Handlers(consume=consume)
        self.consumer_handler = consumer.handler
        self.context = lambda name: LambdaContext(
            name, 512, f"arn:aws:lambda:us-east-1:123456789012:function:{name}", "bench", 900
        )

    def _watch(self, client: Any) -> None:
        self.counter.attach(client)
        client.meta.events.register("before-call.sqs", self._count_call)
        client.meta.events.register("before-call.events", self._count_call)

    def _count_call(self, model: Any, **_: Any) -> None:
        if self.counter.on:
            with self._lock:
                self.aws_calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def phase(self, figures: PhaseFigures) -> None:
        hcm_mark, psa_mark = len(self.workday.requests), len(self.kantata.requests)
        self.counter.writes.clear()
        self.counter.reads.clear()
        self.aws_calls.clear()
        self.fates.clear()
        self.counter.on = True
        with contextlib.redirect_stdout(io.StringIO()):  # the functions' metrics and logs
            started = time.perf_counter()
            answer = self.sync_handler(
                {"id": f"bench-{figures.label}"}, self.context("worker_sync"), self.sync_deps
            )
            figures.sync_seconds = time.perf_counter() - started
            for run in answer["runs"]:
                figures.read += run["read"]
                figures.enqueued += run["enqueued"]
                figures.unmappable += run["unmappable"]
            figures.due = int((answer.get("effective") or {}).get("enqueued") or 0)
            figures.enqueued += figures.due
            figures.hcm_calls = len(self.workday.requests) - hcm_mark
            started = time.perf_counter()
            self._drain(figures)
            figures.drain_seconds = time.perf_counter() - started
        self.counter.on = False
        log = self.kantata.requests[psa_mark:]
        figures.psa_calls = len(log)
        figures.psa_writes = sum(1 for r in log if r.method in ("POST", "PUT", "DELETE"))
        figures.psa_limit_errors = sum(1 for r in log if r.status == 429)
        figures.psa_by_call = Counter(f"{r.method} {_collection(r.path)}" for r in log)
        figures.psa_seconds = sum(r.duration for r in log)
        figures.writes = Counter(
            {_label(key): n for key, n in self.counter.writes.items()}  # "pshub-planning:PutItem" -> planning
        )
        figures.aws_calls = Counter(self.aws_calls)
        figures.fates = Counter(self.fates)
        figures.dlq = self._count(self.res.worker_dlq_url)
        figures.left_on_queue = self._count(self.res.worker_queue_url)

    def _drain(self, figures: PhaseFigures) -> None:
        """Pollers as the event source mapping runs them: batches of up to 50, each handed to the consumer;
        the records it did not report as failures are deleted, the failures made visible again (up to the
        queue's maxReceiveCount), until the queue is empty."""
        errors: list[BaseException] = []

        def poll() -> None:
            try:
                while self._one_batch(figures):
                    pass
            except BaseException as error:  # surfaced after the join
                errors.append(error)

        pollers = [threading.Thread(target=poll, name=f"poller-{n}") for n in range(self.threads)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        if errors:
            raise errors[0]

    def _one_batch(self, figures: PhaseFigures) -> bool:
        url = self.res.worker_queue_url
        messages: list[dict[str, Any]] = []
        while len(messages) < BATCH_SIZE:
            got = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        if not messages:
            return False
        answer = self.consumer_handler(_event(messages), self.context("worker_consumer"), self.consumer_deps)
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + 10])
                ],
            )
        for message in messages:
            if message["MessageId"] in failed:  # as if its visibility timeout ran out (after maxReceiveCount
                self.sqs.change_message_visibility(  # receives, SQS moves it to the DLQ)
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        with self._lock:
            figures.batches += 1
        return True

    def _count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event source mapping batch, as Lambda hands it over (message attributes in its spelling)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1")
                },
                "messageAttributes": {
                    name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
                    for name, value in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pshub-workers",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def _collection(path: str) -> str:
    """``/api/v1/account_invitations.json`` -> ``account_invitations`` (ids dropped)."""
    parts = [p for p in path.split("/") if p and p not in ("api", "v1") and not p.split(".")[0].isdigit()]
    return "/".join(p.removesuffix(".json") for p in parts)


def _label(key: str) -> str:
    table, _, operation = key.partition(":")
    return f"{table.removeprefix('pshub-')}:{operation}"
