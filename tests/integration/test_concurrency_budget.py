"""The shared concurrency budget in DynamoDB (moto in-process), and many "Lambdas" against one NetSuite pool.

moto 5.2.5 does not make a conditional write atomic across threads: ``DynamoDBBackend.update_item`` evaluates
the ConditionExpression, then writes, with no lock in between, so two threads can both "win" one slot (seen
here: 8 threads racing on 100 items, 0 double wins at Python's default 5 ms switch interval, 38 at 0.5 ms;
at 1 µs ``Item.__deepcopy__`` even raises "dictionary changed size during iteration"). Real DynamoDB applies
each conditional write to an item atomically, so the threaded tests send every DynamoDB call through one
lock (:class:`AtomicTable`), which models that atomicity (more strictly than DynamoDB, never less).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from hub.concurrency import ConcurrencyBudget, Lease
from hub.connectors.factory import erp_from_secret
from hub.connectors.http import ApiClient, RetryPolicy, StaticBearer
from hub.errors import HubError, ThrottledError
from hub.model import Account
from local.sandboxes import Faults, NetSuiteSandbox
from tests.support.aws import REGION

TABLE = "pshub-routing"  # the routing table's key schema (pk/sk strings) hosts the budget
SYSTEM = "netsuite-TSTDRV-US"
NETSUITE_TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"

WORKERS = 24
UPSERTS_PER_WORKER = 5
LIMIT = 5
LATENCY = (0.05, 0.1)


class AtomicTable:
    """A boto3 Table whose calls go through one lock (see the module docstring) and are counted."""

    def __init__(self, table: Any, lock: threading.Lock, calls: Counter[str]) -> None:
        self._table = table
        self._lock = lock
        self.calls = calls

    def update_item(self, **kwargs: Any) -> Any:
        with self._lock:
            self.calls["update_item"] += 1
            return self._table.update_item(**kwargs)

    def query(self, **kwargs: Any) -> Any:
        with self._lock:
            self.calls["query"] += 1
            return self._table.query(**kwargs)


@pytest.fixture
def ddb(aws_env) -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        yield


class Tables:
    """One boto3 Table resource per "Lambda" (boto3 resources are not shared across threads), one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._session = boto3.session.Session(region_name=REGION)

    def new(self) -> AtomicTable:
        table = self._session.resource("dynamodb").Table(TABLE)  # built in the test's thread
        return AtomicTable(table, self.lock, self.calls)


class FakeTime:
    """Monotonic and wall clocks that only move when the budget sleeps (or the test says so)."""

    def __init__(self, wall: float = 1_900_000_000.0) -> None:
        self.wall = wall
        self.mono = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.wall += seconds


def budget(
    tables: Tables, limit: int = LIMIT, *, fake: FakeTime | None = None, **kwargs: Any
) -> ConcurrencyBudget:
    if fake is not None:
        kwargs |= {"clock": lambda: fake.wall, "monotonic": lambda: fake.mono, "sleep": fake.sleep}
    return ConcurrencyBudget(SYSTEM, limit, TABLE, tables.new(), **kwargs)


def slot_item(slot: int) -> dict[str, Any]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    return table.get_item(Key={"pk": f"BUDGET#{SYSTEM}", "sk": f"SLOT#{slot}"}).get("Item", {})


# ------------------------------------------------------------------------------------------ the semaphore


def test_a_slot_is_leased_to_its_holder_then_cleared_on_release(ddb):
    tables = Tables()
    fake = FakeTime()
    pool = budget(tables, 2, fake=fake, lease_seconds=30)

    with pool.slot() as lease:
        held_calls = dict(tables.calls)
        item = slot_item(lease.slot)
        assert (item["owner"], int(item["expires_at"])) == (lease.owner, lease.expires_at)
        assert lease.expires_at == int(fake.wall) + 30
        assert pool.leases() == [lease]

    assert "owner" not in slot_item(lease.slot) and "expires_at" not in slot_item(lease.slot)
    assert pool.leases() == []
    # The cost of one acquire: one consistent Query, one conditional write; the release: one write.
    assert held_calls == {"query": 1, "update_item": 1}
    assert tables.calls["update_item"] == 2 and tables.calls["query"] == 3  # + the two leases() looks


def test_a_nested_slot_in_the_same_thread_reuses_the_held_one_and_another_thread_takes_its_own(ddb):
    """A worker holding a slot for a run of posts: each post's own ``slot()`` (the HTTP client's hook) takes
    nothing more; the slot is released once, when the outer block ends. Another thread is not the holder."""
    tables = Tables()
    pool = budget(tables, 2, fake=FakeTime())
    with pool.slot() as outer:
        for _ in range(3):
            with pool.slot() as inner:
                assert inner == outer
        writes_while_held = tables.calls["update_item"]
        elsewhere: list[Lease] = []
        thread = threading.Thread(target=lambda: elsewhere.append(pool.acquire()))
        thread.start()
        thread.join()
        assert elsewhere[0].slot != outer.slot
        pool.release(elsewhere[0])
        assert "owner" in slot_item(outer.slot)  # the nested blocks did not give it back

    assert writes_while_held == 1  # one acquire for the run
    assert "owner" not in slot_item(outer.slot) and pool.leases() == []


def test_a_full_budget_raises_throttled_with_a_retry_after_once_its_deadline_passes(ddb):
    tables = Tables()
    fake = FakeTime()
    holder = budget(tables, 2, fake=fake)
    held = [holder.acquire(), holder.acquire()]
    assert {lease.slot for lease in held} == {0, 1}
    tables.calls.clear()

    waiter = budget(tables, 2, fake=fake, acquire_timeout=2.0, retry_after=3.0)
    with pytest.raises(ThrottledError) as caught:
        waiter.acquire()

    assert (caught.value.code, caught.value.system, caught.value.retry_after) == (
        "CONCURRENCY_BUDGET_EXHAUSTED",
        SYSTEM,
        3.0,
    )
    assert fake.mono == pytest.approx(2.0)  # it waited exactly until its deadline, in several rounds
    assert len(fake.sleeps) > 3 and max(fake.sleeps) <= 0.2
    # While the budget is full a waiter only reads: one Query per round, no write.
    assert tables.calls == {"query": len(fake.sleeps) + 1}

    holder.release(held[0])
    assert waiter.acquire().slot == held[0].slot


def test_a_waiter_no_longer_wanted_stops_waiting_holds_nothing_and_writes_nothing(ddb):
    tables = Tables()
    fake = FakeTime()
    holder = budget(tables, 2, fake=fake)
    held = [holder.acquire(), holder.acquire()]
    tables.calls.clear()
    waiter = budget(tables, 2, fake=fake, acquire_timeout=60.0)

    with waiter.slot(lambda: len(fake.sleeps) < 3) as lease:
        assert lease is None

    assert len(fake.sleeps) == 3 and fake.mono < 60.0  # three rounds, then it stopped: no ThrottledError
    assert tables.calls == {"query": 3}  # it only looked; nothing was taken or given back
    assert {lease.slot for lease in holder.leases()} == {h.slot for h in held}
    holder.release(held[0])
    with waiter.slot(lambda: True) as lease:  # wanted, and a slot is free: an ordinary lease
        assert lease is not None and lease.slot == held[0].slot


def test_a_lease_its_holder_never_released_is_taken_over_once_expired(ddb):
    tables = Tables()
    fake = FakeTime()
    crashed = budget(tables, 1, fake=fake, lease_seconds=30)
    lost = crashed.acquire()  # ...and the Lambda dies without releasing

    with pytest.raises(ThrottledError):
        budget(tables, 1, fake=fake, acquire_timeout=0).acquire()
    fake.wall += 31
    survivor = budget(tables, 1, fake=fake, acquire_timeout=0)
    taken = survivor.acquire()

    assert (taken.slot, taken.owner != lost.owner) == (lost.slot, True)
    assert crashed.release(lost) is False  # the late release does not free the new holder's slot
    assert slot_item(taken.slot)["owner"] == taken.owner
    assert survivor.release(taken) is True


def test_a_release_by_someone_who_does_not_hold_the_slot_does_nothing(ddb):
    tables = Tables()
    pool = budget(tables, 1)
    lease = pool.acquire()

    assert pool.release(Lease(SYSTEM, lease.slot, "someone-else", lease.expires_at)) is False
    assert slot_item(lease.slot)["owner"] == lease.owner
    with pytest.raises(ThrottledError):
        budget(tables, 1, acquire_timeout=0).acquire()


def test_a_lowered_limit_is_honoured_and_slots_above_it_are_ignored(ddb):
    tables = Tables()
    before = budget(tables, 5)
    leases = sorted((before.acquire() for _ in range(5)), key=lambda lease: lease.slot)
    assert [lease.slot for lease in leases] == [0, 1, 2, 3, 4]
    for lease in leases[:2]:
        before.release(lease)  # slots 2, 3 and 4 stay held under the old limit

    after = budget(tables, 2, acquire_timeout=0)
    taken = {after.acquire().slot, after.acquire().slot}

    assert taken == {0, 1}
    with pytest.raises(ThrottledError):
        after.acquire()  # the limit is 2, whatever the items above it say
    assert {lease.slot for lease in after.leases()} == {0, 1}


def test_an_adapter_whose_budget_stays_full_is_throttled_without_calling_the_erp(ddb):
    tables = Tables()
    sandbox = NetSuiteSandbox(concurrency_limit=LIMIT)
    elsewhere = budget(tables, 1)
    elsewhere.acquire()  # another Lambda holds the only slot
    erp = netsuite(
        sandbox, budget(tables, 1, acquire_timeout=0.05, retry_after=2.0), RetryPolicy(max_attempts=1)
    )

    with pytest.raises(ThrottledError) as caught:
        erp.upsert_customer(customer(0, 0), subsidiary_id="1", currency="USD")

    assert (caught.value.code, caught.value.retry_after) == ("CONCURRENCY_BUDGET_EXHAUSTED", 2.0)
    assert sandbox.requests == []  # not even the token request went out


def test_the_budget_plugs_into_the_api_clients_concurrency_hook_one_lease_per_attempt(ddb):
    tables = Tables()
    pool = budget(tables, 2)
    seen: list[int] = []
    sleeping: list[int] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(len(pool.leases()))
        return httpx.Response(429 if len(seen) == 1 else 200, json={"ok": True})

    api = ApiClient(
        httpx.Client(transport=httpx.MockTransport(vendor)),
        system="v",
        base_url="https://api.example.test",
        auth=StaticBearer("t"),
        retry=RetryPolicy(sleep=lambda seconds: sleeping.append(len(pool.leases()))),
        concurrency=pool.slot,
    )

    assert api.get_json("/things") == {"ok": True}
    assert (seen, sleeping, pool.leases()) == ([1, 1], [0], [])


# ------------------------------------------------------------------------ many Lambdas, one NetSuite pool


def netsuite(sandbox: NetSuiteSandbox, pool: ConcurrencyBudget | None, retry: RetryPolicy) -> Any:
    secret = {
        "base_url": sandbox.base_url,
        "token_url": sandbox.base_url + NETSUITE_TOKEN_PATH,
        "account_id": sandbox.account_id,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "currency_ids": {code: internal_id for internal_id, code in sandbox.currencies.items()},
    }
    return erp_from_secret("netsuite-us", secret, transport=sandbox.transport(), retry=retry, budget=pool)


def customer(worker: int, n: int) -> Account:
    return Account(crm_id=f"0015g{worker:03d}{n:07d}AAV", name=f"Customer {worker}-{n}", currency="USD")


def month_end_run(with_budget: bool) -> dict[str, Any]:
    """WORKERS threads, each its own adapter (and budget instance) like concurrent Lambdas, each upserting
    its own customers against one NetSuite account whose pool is LIMIT."""
    sandbox = NetSuiteSandbox(concurrency_limit=LIMIT, faults=Faults(latency=LATENCY, seed=11))
    tables = Tables()
    # The adapter's own retries: a few, short, real sleeps (what a 429 costs without a budget).
    retry = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total_sleep=1.0)
    erps = [
        netsuite(sandbox, budget(tables, acquire_timeout=15.0) if with_budget else None, retry)
        for _ in range(WORKERS)
    ]
    barrier = threading.Barrier(WORKERS)
    ids: dict[str, str] = {}
    failures: Counter[str] = Counter()
    crashes: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for n in range(UPSERTS_PER_WORKER):
                account = customer(worker, n)
                try:
                    ids[account.crm_id] = erps[worker].upsert_customer(
                        account, subsidiary_id="1", currency="USD"
                    )
                except HubError as exc:
                    failures[type(exc).__name__] += 1
        except BaseException as exc:  # surfaced below: a thread must not swallow a crash
            crashes.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started

    assert crashes == []
    puts = sandbox.calls("PUT", "/customer/")
    return {
        "sandbox": sandbox,
        "ids": ids,
        "failures": dict(failures),
        "peak": sandbox.peak_in_flight,
        "limit_429s": sandbox.call_count(fault="concurrency"),
        "puts": len(puts),
        # how full the pool was kept: time spent answering governed calls / (limit x wall time)
        "pool_use": round(
            sum(r.duration for r in sandbox.requests if r.path != NETSUITE_TOKEN_PATH) / (LIMIT * wall), 2
        ),
        "dynamodb": dict(tables.calls),
        "wall_s": round(wall, 2),
    }


def test_many_lambdas_sharing_a_budget_never_exceed_the_netsuite_pool_and_all_upserts_post(ddb):
    run = month_end_run(with_budget=True)
    print(f"\nwith budget: { {k: v for k, v in run.items() if k not in ('sandbox', 'ids')} }")

    expected = WORKERS * UPSERTS_PER_WORKER
    assert run["failures"] == {}
    assert len(run["ids"]) == expected and len(set(run["ids"].values())) == expected
    assert len(run["sandbox"].records("customer")) == expected
    # The sandbox refuses (429) whatever would exceed its pool, so its peak can never pass LIMIT: the real
    # proof that no request ever went over is that not one was refused.
    assert run["limit_429s"] == 0  # not one CONCURRENCY_LIMIT_EXCEEDED
    assert run["puts"] == expected  # so no call needed a retry
    assert run["peak"] <= LIMIT
    assert run["peak"] == LIMIT  # ...and the budget let the whole pool be used


def test_without_the_budget_the_same_run_overflows_the_netsuite_pool():
    run = month_end_run(with_budget=False)
    print(f"\nwithout budget: { {k: v for k, v in run.items() if k not in ('sandbox', 'ids')} }")

    assert run["limit_429s"] > 0
    assert run["puts"] > WORKERS * UPSERTS_PER_WORKER or run["failures"]  # retries, or upserts lost to 429s
