"""A per-system concurrency budget shared by every Lambda: a distributed semaphore in DynamoDB.

A SaaS system often limits how many of our requests it processes *at once* (NetSuite: one account-wide pool
shared by every integration, base 5/15/20 by service tier + 10 per SuiteCloud Plus licence; over it, REST
answers 429 ``CONCURRENCY_LIMIT_EXCEEDED``). However many Lambdas run, a caller takes a slot of the budget
before each request and gives it back as soon as the answer is in, so the system never sees more than
``limit`` of our requests in flight.

Layout: one item per slot, ``pk=BUDGET#{system}``, ``sk=SLOT#{i}`` for ``0 <= i < limit``, holding a lease
(``owner``: a random token per acquisition, ``expires_at``: epoch seconds, ``acquired_at``). Items are
created on first use; nothing needs seeding. The key schema is plain ``pk``/``sk`` strings, so the routing
table can host the budget (its ``pk`` prefixes ``LE#``/``CUST#`` never collide with ``BUDGET#``) until infra
gives it a table of its own. The caller needs ``dynamodb:Query`` and ``dynamodb:UpdateItem`` on it.

- **acquire**: one consistent ``Query`` of the budget's slots, then a conditional ``UpdateItem`` on the
  slots that looked free (lease absent or expired), in a random order to spread contention; the first that
  succeeds is ours. When none does, back off (exponential, full jitter) and start again, until
  ``acquire_timeout``; then raise :class:`~hub.errors.ThrottledError` (with ``retry_after``), so the
  caller's retries / the state machine wait and try later. A full budget is never a hard failure.
- **release**: a conditional ``UpdateItem`` that clears the lease only if this acquisition still owns it (a
  lease that expired and was taken over is left alone). A failed release is logged, never raised: the lease
  expires on its own.
- **leases expire** (default 30 s: the HTTP connect + read timeouts plus a margin, see
  ``hub.connectors.http.DEFAULT_TIMEOUT``), so a Lambda that dies holding a slot cannot leak it for longer.
  There is no heartbeat: a request that outlives its lease lets one more request in.
- **the limit** is configuration and may change: slots ``>= limit`` are ignored. Lowering it applies to new
  acquisitions at once; leases already held on higher slots end with their request.

Cost (on-demand; items are ~100 bytes): an acquire without contention is 1 consistent read (1 RRU up to
~40 slots) + 1 write (1 WRU), a release 1 write. Each conditional write that loses a race still costs 1 WRU.
While the budget is full, a waiter costs 1 RRU per round (no writes: nothing looked free).

Waiters are not queued: whoever polls first after a release wins, and a waiter that loses for
``acquire_timeout`` gets a ``ThrottledError`` and is retried by its caller.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

from hub import aws
from hub.errors import ThrottledError, TransientError

logger = logging.getLogger("hub.concurrency")

DEFAULT_LEASE_SECONDS = 30.0
"""A little over the longest a request may take: connect (3.05 s) + read (20 s) timeouts, plus a margin."""

# DynamoDB answers worth waiting on like a full budget (boto3 already retried them a few times).
_DYNAMODB_THROTTLING = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Lease:
    """One slot held by one acquisition until ``expires_at`` (epoch seconds) at the latest."""

    system: str
    slot: int
    owner: str
    expires_at: int


class ConcurrencyBudget:
    """At most ``limit`` holders at once across every process sharing ``table`` and ``system``.

    Args:
        system: the pool's name, the same in every Lambda that calls it. Name the *pool*: two system ids
            that reach the same NetSuite account must share one budget.
        limit: slots in the pool (configuration; e.g. NetSuite's tier base + 10 per SuiteCloud Plus licence).
        table_name: the DynamoDB table (``pk``/``sk`` strings; the routing table will do).
        table: a boto3 ``Table`` resource to use instead of a new one (tests).
        lease_seconds: how long a slot stays taken if its holder never releases it.
        acquire_timeout: seconds to keep trying before raising ``ThrottledError``; 0 tries one round.
        retry_after: the ``retry_after`` of that error (default: ``acquire_timeout``, at least 1 s).
        backoff_base / backoff_cap: seconds between rounds, full jitter on ``min(cap, base * 2**round)``.
        clock / monotonic / sleep / rng: injectable time and randomness.

    Use ``with budget.slot(): ...`` around one request. ``budget.slot`` is also exactly what
    ``ApiClient(concurrency=...)`` and ``ConcurrencyTransport`` take. The budget keeps no per-call state;
    the boto3 resource it wraps follows boto3's own thread-safety rules.
    """

    def __init__(
        self,
        system: str,
        limit: int,
        table_name: str,
        table: Any | None = None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        acquire_timeout: float = 5.0,
        retry_after: float | None = None,
        backoff_base: float = 0.02,
        backoff_cap: float = 0.2,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not system:
            raise ValueError("a concurrency budget needs a system name")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the concurrency limit of {system} must be an integer >= 1, got {limit!r}")
        if lease_seconds <= 0 or acquire_timeout < 0 or backoff_base <= 0 or backoff_cap < backoff_base:
            raise ValueError("lease_seconds and backoff_base must be > 0, acquire_timeout >= 0, cap >= base")
        self.system = system
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.acquire_timeout = acquire_timeout
        self.retry_after = retry_after if retry_after is not None else max(1.0, acquire_timeout)
        self._pk = f"BUDGET#{system}"
        self._table = table if table is not None else aws.table(table_name)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - spreading contention, not crypto
        self._local = threading.local()  # the slot this thread holds, for re-entrant ``slot()``

    def __repr__(self) -> str:
        return f"ConcurrencyBudget(system={self.system!r}, limit={self.limit})"

    # ------------------------------------------------------------------------------------------ public API
    @contextlib.contextmanager
    def slot(self, while_wanted: Callable[[], bool] | None = None) -> Iterator[Lease | None]:
        """Hold one slot for the duration of the ``with`` block (``ThrottledError`` if none frees in time).

        Re-entrant per thread: inside a ``with budget.slot():`` block, the same thread's nested ``slot()``
        (e.g. each request of a run of requests, through ``ConcurrencyTransport``) reuses the slot it holds
        instead of taking another. A worker that sends requests back to back holds one slot for the run:
        one acquire and one release per run, not per request; it never has more than one in flight.

        ``while_wanted``: asked between rounds of waiting; once it answers False the wait ends and the block
        runs with ``None``, holding nothing (a worker whose batch the others finished meanwhile stops
        waiting at once instead of taking a slot it no longer needs). Without it, the block always gets a
        ``Lease``."""
        held: Lease | None = getattr(self._local, "lease", None)
        if held is not None:
            yield held
            return
        lease = self.acquire(while_wanted)
        if lease is None:
            yield None
            return
        self._local.lease = lease
        try:
            yield lease
        finally:
            self._local.lease = None
            self.release(lease)

    @overload
    def acquire(self) -> Lease: ...

    @overload
    def acquire(self, while_wanted: Callable[[], bool] | None) -> Lease | None: ...

    def acquire(self, while_wanted: Callable[[], bool] | None = None) -> Lease | None:
        """Take a free (or expired) slot, waiting up to ``acquire_timeout``; ``ThrottledError`` after that.
        ``None`` once ``while_wanted`` answers False while waiting."""
        owner = uuid.uuid4().hex
        started = self._monotonic()
        deadline = started + self.acquire_timeout
        round_number = 0
        while True:
            lease = self._try_round(owner)
            if lease is not None:
                return lease
            now = self._monotonic()
            if now >= deadline:
                waited = round(now - started, 3)
                logger.warning(
                    "concurrency budget exhausted",
                    extra={"system": self.system, "limit": self.limit, "waited_s": waited},
                )
                raise ThrottledError(
                    f"{self.system}: all {self.limit} concurrency slots stayed busy for {waited} s",
                    retry_after=self.retry_after,
                    system=self.system,
                    code="CONCURRENCY_BUDGET_EXHAUSTED",
                )
            round_number += 1
            ceiling = min(self._backoff_cap, self._backoff_base * 2 ** min(round_number - 1, 30))
            self._sleep(min(self._rng.uniform(0, ceiling), deadline - now))
            if while_wanted is not None and not while_wanted():
                return None

    def release(self, lease: Lease) -> bool:
        """Clear the lease if this acquisition still holds it; False if it was lost (expired) or not cleared."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._table.update_item(
                Key={"pk": self._pk, "sk": _sk(lease.slot)},
                UpdateExpression="REMOVE #owner, #expires",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner", "#expires": "expires_at"},
                ExpressionAttributeValues={":owner": lease.owner},
            )
        except ClientError as exc:
            code = _code(exc)
            if code == _CONDITION_FAILED:
                logger.warning(
                    "concurrency lease expired before release",
                    extra={"system": self.system, "slot": lease.slot},
                )
            else:  # the lease runs out by itself; the call it guarded has already succeeded or failed
                logger.warning(
                    "concurrency lease not released",
                    extra={"system": self.system, "slot": lease.slot, "code": code},
                )
            return False
        except BotoCoreError as exc:
            logger.warning(
                "concurrency lease not released",
                extra={"system": self.system, "slot": lease.slot, "code": type(exc).__name__},
            )
            return False
        return True

    def leases(self) -> list[Lease]:
        """The unexpired leases on slots below the limit (for inspection and tests)."""
        now = self._clock()
        return [
            Lease(self.system, slot, str(item.get("owner", "")), int(expires))
            for slot, expires, item in self._slots()
            if slot < self.limit and expires is not None and expires >= now
        ]

    # ------------------------------------------------------------------------------------------ internals
    def _try_round(self, owner: str) -> Lease | None:
        """One look at the slots and a conditional take of each that looked free, in a random order."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            now = self._clock()
            busy = {
                slot
                for slot, expires, _ in self._slots()
                if slot < self.limit and expires is not None and expires >= now
            }
            candidates = [slot for slot in range(self.limit) if slot not in busy]
            self._rng.shuffle(candidates)
            for slot in candidates:
                lease = self._take(slot, owner)
                if lease is not None:
                    return lease
        except ClientError as exc:
            code = _code(exc)
            if code in _DYNAMODB_THROTTLING:
                return None  # DynamoDB itself is throttling: wait like for a full budget
            raise TransientError(
                f"{self.system} concurrency budget unavailable ({code})", system="dynamodb", code=code
            ) from exc
        except BotoCoreError as exc:
            raise TransientError(
                f"{self.system} concurrency budget unavailable ({type(exc).__name__})",
                system="dynamodb",
                code=type(exc).__name__,
            ) from exc
        return None

    def _take(self, slot: int, owner: str) -> Lease | None:
        from botocore.exceptions import ClientError

        now_s = self._clock()
        now = int(now_s)
        expires_at = math.ceil(now_s + self.lease_seconds)
        try:
            self._table.update_item(
                Key={"pk": self._pk, "sk": _sk(slot)},
                UpdateExpression="SET #owner = :owner, #expires = :expires, #acquired = :now",
                ConditionExpression="attribute_not_exists(#expires) OR #expires < :now",
                ExpressionAttributeNames={
                    "#owner": "owner",
                    "#expires": "expires_at",
                    "#acquired": "acquired_at",
                },
                ExpressionAttributeValues={":owner": owner, ":expires": expires_at, ":now": now},
            )
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return None  # someone else took it first
            raise
        return Lease(self.system, slot, owner, expires_at)

    def _slots(self) -> Iterator[tuple[int, Any, dict[str, Any]]]:
        """(slot number, expires_at or None, item) for every slot item of this budget."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": self._pk, ":prefix": "SLOT#"},
            "ConsistentRead": True,
        }
        while True:
            page = self._table.query(**query)
            for item in page.get("Items", []):
                try:
                    slot = int(str(item["sk"]).removeprefix("SLOT#"))
                except ValueError:
                    continue
                yield slot, item.get("expires_at"), item
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _sk(slot: int) -> str:
    return f"SLOT#{slot}"


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) or type(exc).__name__
