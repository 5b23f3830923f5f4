"""How the shared concurrency budget is held around HTTP calls, and how it reads DynamoDB's errors.

No DynamoDB here: the budget's conditional-write semantics are tested against moto in
``tests/integration/test_concurrency_budget.py``. These tests use a hand-written :class:`Slots` (the
``budget.slot`` interface: a callable giving a context manager) and a table stub that only raises errors.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from hub.concurrency import ConcurrencyBudget, Lease
from hub.connectors.factory import erp_from_secret
from hub.connectors.http import ApiClient, ConcurrencyTransport, RetryPolicy, StaticBearer
from hub.errors import ThrottledError, TransientError
from hub.model import Account

BASE = "https://api.example.test"
NETSUITE = {
    "base_url": "https://1234567.suitetalk.api.netsuite.test",
    "token_url": "https://1234567.suitetalk.api.netsuite.test/services/rest/auth/oauth2/v1/token",
    "account_id": "1234567",
    "client_id": "cid",
    "client_secret": "very-secret-value",
}


class Slots:
    """A budget stand-in: counts slots taken and held; ``full`` makes taking one raise ThrottledError."""

    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.held = 0
        self.taken = 0
        self.peak = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.full:
            raise ThrottledError("no slot", retry_after=4.0, system="v", code="CONCURRENCY_BUDGET_EXHAUSTED")
        with self._lock:
            self.held += 1
            self.taken += 1
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1


class Vendor:
    """Scripted answers; records how many slots were held while each request was being answered."""

    def __init__(self, slots: Slots, answers: list[Any]) -> None:
        self.slots = slots
        self.answers = list(answers)
        self.held_during: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.held_during.append(self.slots.held)
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": "3600"})
        answer = self.answers.pop(0) if self.answers else httpx.Response(200, json={"ok": True})
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("boom", request=request)
        return answer


def recording_retry(slots: Slots, held_while_sleeping: list[int]) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        base_delay=0.5,
        sleep=lambda s: held_while_sleeping.append(slots.held),
        random=lambda: 1.0,
    )


# ------------------------------------------------------------------------------ slot around each request


@pytest.mark.parametrize("wiring", ["ApiClient(concurrency=)", "ConcurrencyTransport"])
def test_a_slot_is_held_while_each_attempt_is_in_flight_and_given_back_before_a_retry_sleeps(wiring):
    slots = Slots()
    vendor = Vendor(slots, [httpx.Response(503), httpx.ConnectError, httpx.Response(200, json={"ok": True})])
    sleeping: list[int] = []
    if wiring == "ConcurrencyTransport":
        http = httpx.Client(transport=ConcurrencyTransport(httpx.MockTransport(vendor), slots.slot))
        api = ApiClient(
            http, system="v", base_url=BASE, auth=StaticBearer("t"), retry=recording_retry(slots, sleeping)
        )
    else:
        http = httpx.Client(transport=httpx.MockTransport(vendor))
        api = ApiClient(
            http,
            system="v",
            base_url=BASE,
            auth=StaticBearer("t"),
            retry=recording_retry(slots, sleeping),
            concurrency=slots.slot,
        )

    assert api.get_json("/things") == {"ok": True}

    assert vendor.held_during == [1, 1, 1]  # every attempt, the failed ones included, held one slot
    assert sleeping == [0, 0]  # ...and none while waiting to retry
    assert (slots.taken, slots.held) == (3, 0)


def test_a_slot_is_given_back_when_the_body_is_read_and_when_the_transport_fails():
    slots = Slots()
    vendor = Vendor(slots, [httpx.Response(200, content=b"x" * 10_000), httpx.ReadTimeout])
    http = httpx.Client(transport=ConcurrencyTransport(httpx.MockTransport(vendor), slots.slot))

    assert len(http.get(BASE + "/big").content) == 10_000
    assert slots.held == 0
    with pytest.raises(httpx.ReadTimeout):
        http.get(BASE + "/slow")
    assert (slots.taken, slots.held) == (2, 0)


def test_a_full_budget_reaches_the_caller_as_throttled_without_a_request_or_a_retry():
    slots = Slots(full=True)
    vendor = Vendor(slots, [])
    sleeping: list[int] = []
    http = httpx.Client(transport=ConcurrencyTransport(httpx.MockTransport(vendor), slots.slot))
    api = ApiClient(
        http, system="v", base_url=BASE, auth=StaticBearer("t"), retry=recording_retry(slots, sleeping)
    )

    with pytest.raises(ThrottledError) as caught:
        api.request("PUT", "/things/1", json={})

    assert (caught.value.code, caught.value.retry_after) == ("CONCURRENCY_BUDGET_EXHAUSTED", 4.0)
    assert vendor.held_during == [] and sleeping == []  # the budget already waited: the caller retries


# ----------------------------------------------------------------------------------------------- factory


def test_an_erp_built_with_a_budget_takes_a_slot_for_every_request_the_token_included():
    slots = Slots()
    vendor = Vendor(
        slots, [httpx.Response(204, headers={"Location": f"{NETSUITE['base_url']}/x/customer/42"})]
    )

    erp = erp_from_secret("netsuite-uk", NETSUITE, transport=httpx.MockTransport(vendor), budget=slots)
    internal_id = erp.upsert_customer(
        Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd"), subsidiary_id="1", currency="GBP"
    )

    assert internal_id == "42"
    assert vendor.held_during == [1, 1]  # the token request, then the upsert
    assert (slots.taken, slots.held) == (2, 0)


def test_an_erp_built_without_a_budget_takes_no_slot():
    slots = Slots()
    vendor = Vendor(
        slots, [httpx.Response(204, headers={"Location": f"{NETSUITE['base_url']}/x/customer/42"})]
    )

    erp = erp_from_secret("netsuite-uk", NETSUITE, transport=httpx.MockTransport(vendor))
    erp.upsert_customer(
        Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd"), subsidiary_id="1", currency="GBP"
    )

    assert vendor.held_during == [0, 0] and slots.taken == 0


def test_a_budget_cannot_wrap_a_client_the_caller_built():
    with pytest.raises(ValueError, match="transport="):
        erp_from_secret("netsuite-uk", NETSUITE, client=httpx.Client(), budget=Slots())


# ------------------------------------------------------------------------------------- DynamoDB's errors


class FailingTable:
    """Answers every call with one DynamoDB error (nothing else: it models no data)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def query(self, **kwargs: Any) -> Any:
        self.calls += 1
        raise self.error

    def update_item(self, **kwargs: Any) -> Any:
        self.calls += 1
        raise self.error


def client_error(code: str, operation: str = "Query") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def budget_on(table: Any, **kwargs: Any) -> ConcurrencyBudget:
    clock = Clock()
    return ConcurrencyBudget(
        "netsuite-1234567",
        5,
        "unused",
        table,
        clock=lambda: 1_900_000_000.0 + clock.now,
        monotonic=lambda: clock.now,
        sleep=clock.sleep,
        **kwargs,
    )


def test_dynamodb_throttling_while_acquiring_is_waited_out_like_a_full_budget():
    table = FailingTable(client_error("ProvisionedThroughputExceededException"))

    with pytest.raises(ThrottledError) as caught:
        budget_on(table, acquire_timeout=1.0).acquire()

    assert caught.value.code == "CONCURRENCY_BUDGET_EXHAUSTED"
    assert caught.value.retry_after == 1.0
    assert table.calls > 1  # it kept trying until the deadline


@pytest.mark.parametrize(
    "error", [client_error("AccessDeniedException"), EndpointConnectionError(endpoint_url="https://ddb")]
)
def test_a_budget_store_that_cannot_be_used_is_a_transient_error_not_a_silent_pass(error):
    with pytest.raises(TransientError) as caught:
        budget_on(FailingTable(error)).acquire()

    assert caught.value.system == "dynamodb"


@pytest.mark.parametrize(
    "error",
    [
        client_error("ConditionalCheckFailedException", "UpdateItem"),
        client_error("InternalServerError", "UpdateItem"),
        EndpointConnectionError(endpoint_url="https://ddb"),
    ],
)
def test_a_release_that_fails_is_reported_not_raised(error, caplog):
    released = budget_on(FailingTable(error)).release(Lease("netsuite-1234567", 3, "me", 1_900_000_030))

    assert released is False
    assert any("concurrency lease" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "5"])
def test_a_limit_must_be_a_positive_integer(limit):
    with pytest.raises(ValueError, match="limit"):
        ConcurrencyBudget("netsuite-1234567", limit, "unused", object())  # type: ignore[arg-type]
