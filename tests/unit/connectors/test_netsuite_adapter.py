"""NetSuite adapter against a hand-written REST record API in NetSuite's documented shapes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from hub.connectors.netsuite import NetSuiteErp, classify_for, netsuite_base_url
from hub.errors import ConflictError, DataValidationError, PermanentError, ThrottledError, TransientError
from hub.model import Account, BillingSchedule, BillingType, Money, Project

BASE = "https://1234567.suitetalk.api.netsuite.com"
RECORD = "/services/rest/record/v1"
ACCOUNT = Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd", billing_country="GB", currency="GBP")
PROJECT = Project(
    external_id="sf-opp-006Dn00000A1b2cAAB",
    name="Acme - ERP rollout",
    opportunity_crm_id="006Dn00000A1b2cAAB",
    customer=ACCOUNT,
    legal_entity_code="UK01",
    currency="GBP",
    contract_value=Money(amount=Decimal("125000.00"), currency="GBP"),
    start_date=dt.date(2026, 11, 16),
    end_date=dt.date(2027, 3, 31),
    billing_type=BillingType.FIXED_FEE_MILESTONES,
    wbs=(),
    billing_schedule=BillingSchedule(billing_type=BillingType.FIXED_FEE_MILESTONES, currency="GBP"),
)


def ns_error(status: int, code: str, detail: str = "vendor text", path: str | None = None, headers=None):
    item = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    body = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html",
        "title": "Error",
        "status": status,
        "o:errorDetails": [item],
    }
    return httpx.Response(status, json=body, headers=headers)


class FakeNetSuite:
    """Token endpoint (expires_in "3600", a string as NetSuite sends it) and external-id upserts with stable
    internal ids per external id."""

    def __init__(
        self,
        script: dict[str, list[httpx.Response]] | None = None,
        location: bool = True,
        expires_in: object = "3600",
    ) -> None:
        self.script = script or {}
        self.location = location
        self.expires_in = expires_in
        self.records: dict[tuple[str, str], dict] = {}
        self.ids: dict[tuple[str, str], str] = {}
        self.token_calls = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/services/rest/auth/oauth2/v1/token":
            self.token_calls += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"ns-token-{self.token_calls}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                },
            )
        self.requests.append(request)
        scripted = self.script.get(f"{request.method} {path}")
        if scripted:
            return scripted.pop(0)
        record_type, _, key = path.removeprefix(RECORD + "/").partition("/")
        external_id = key.removeprefix("eid:")
        ident = (record_type, external_id)
        if request.method == "PUT":
            self.records[ident] = json.loads(request.content)
            internal = self.ids.setdefault(ident, str(600 + len(self.ids)))
            headers = {"Location": f"{BASE}{RECORD}/{record_type}/{internal}"} if self.location else {}
            return httpx.Response(204, headers=headers)
        if request.method == "GET" and ident in self.ids:
            return httpx.Response(200, json={"id": self.ids[ident], "externalId": external_id})
        return ns_error(404, "NONEXISTENT_ID")


CURRENCY_IDS = {"USD": "1", "GBP": "2"}


def erp(fake: FakeNetSuite, retry, **kwargs) -> NetSuiteErp:
    return NetSuiteErp(
        httpx.Client(transport=httpx.MockTransport(fake)),
        account_id="1234567",
        token_url=f"{BASE}/services/rest/auth/oauth2/v1/token",
        client_id="ns-client",
        client_secret="ns-secret",
        retry=retry,
        **{"currency_ids": CURRENCY_IDS, **kwargs},
    )


def test_given_an_account_when_upserted_then_put_by_sanitised_external_id_and_id_from_location(retry):
    fake = FakeNetSuite()

    internal_id = erp(fake, retry).upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP")

    assert internal_id == "600"
    request = fake.requests[0]
    assert request.method == "PUT"
    assert request.url.path == f"{RECORD}/customer/eid:sf-001Dn00000Z9y8xAAA"
    assert request.url.host == "1234567.suitetalk.api.netsuite.com"
    assert json.loads(request.content) == {
        "companyName": "Acme Ltd",
        "subsidiary": {"id": "3"},
        "currency": {"id": "2"},
        "externalId": "sf-001Dn00000Z9y8xAAA",
    }


def test_given_a_currency_the_account_lacks_when_upserting_then_data_validation_error_before_any_call(retry):
    fake = FakeNetSuite()

    with pytest.raises(DataValidationError) as caught:
        erp(fake, retry).upsert_customer(ACCOUNT, subsidiary_id="3", currency="EUR")

    assert caught.value.problems[0]["field"] == "currency"
    assert fake.requests == []


def test_given_an_account_without_currency_ids_when_upserting_then_the_currency_goes_by_name(retry):
    fake = FakeNetSuite()

    erp(fake, retry, currency_ids=None).upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP")

    assert json.loads(fake.requests[0].content)["currency"] == {"refName": "GBP"}


def test_given_the_same_account_twice_when_upserted_then_the_same_internal_id(retry):
    fake = FakeNetSuite()
    adapter = erp(fake, retry)

    assert adapter.upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP") == adapter.upsert_customer(
        ACCOUNT, subsidiary_id="3", currency="GBP"
    )
    assert len(fake.records) == 1


def test_given_a_project_when_upserted_then_the_job_carries_customer_subsidiary_and_billing_terms(retry):
    fake = FakeNetSuite()

    internal_id = erp(
        fake, retry, billing_schedule_ids={BillingType.FIXED_FEE_MILESTONES: "12"}
    ).upsert_project(PROJECT, customer_id="600", subsidiary_id="3")

    assert internal_id == "600"
    request = fake.requests[0]
    assert request.url.path == f"{RECORD}/job/eid:sf-opp-006Dn00000A1b2cAAB"
    assert json.loads(request.content) == {
        "companyName": "Acme - ERP rollout",
        "parent": {"id": "600"},
        "subsidiary": {"id": "3"},
        "currency": {"id": "2"},
        "startDate": "2026-11-16",
        "projectedEndDate": "2027-03-31",
        "jobBillingType": {"id": "FBM"},
        "billingSchedule": {"id": "12"},
        "custentity_pshub_contract_value": 125000,
        "externalId": "sf-opp-006Dn00000A1b2cAAB",
    }


def test_given_an_upsert_without_location_when_done_then_the_id_is_read_back_by_external_id(retry):
    fake = FakeNetSuite(location=False)

    internal_id = erp(fake, retry).upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP")

    assert internal_id == "600"
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("PUT", f"{RECORD}/customer/eid:sf-001Dn00000Z9y8xAAA"),
        ("GET", f"{RECORD}/customer/eid:sf-001Dn00000Z9y8xAAA"),
    ]


@pytest.mark.parametrize("expires_in", ["3600", 3600])
def test_given_many_calls_when_the_token_lives_an_hour_then_one_token_call(retry, expires_in):
    fake = FakeNetSuite(expires_in=expires_in)
    adapter = erp(fake, retry)

    for _ in range(4):
        adapter.upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP")

    assert fake.token_calls == 1


def test_given_an_unreadable_token_lifetime_when_upserting_then_the_token_is_fetched_again_each_call(retry):
    fake = FakeNetSuite(expires_in="soon")
    adapter = erp(fake, retry)

    for _ in range(2):
        adapter.upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP")

    assert fake.token_calls == 2


def test_given_a_revoked_token_when_upserting_then_refreshed_once_and_replayed(retry):
    path = f"{RECORD}/customer/eid:sf-001Dn00000Z9y8xAAA"
    fake = FakeNetSuite({f"PUT {path}": [ns_error(401, "INVALID_LOGIN")]})

    assert erp(fake, retry).upsert_customer(ACCOUNT, subsidiary_id="3", currency="GBP") == "600"
    assert fake.token_calls == 2
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer ns-token-1", "Bearer ns-token-2"]


def test_given_the_concurrency_pool_is_full_when_upserting_then_throttled_after_retries_run_out(
    retry, sleeps
):
    path = f"{RECORD}/job/eid:sf-opp-006Dn00000A1b2cAAB"
    fake = FakeNetSuite(
        {f"PUT {path}": [ns_error(429, "CONCURRENCY_LIMIT_EXCEEDED", headers={"Retry-After": "3"})] * 5}
    )

    with pytest.raises(ThrottledError) as caught:
        erp(fake, retry).upsert_project(PROJECT, customer_id="600", subsidiary_id="3")

    assert caught.value.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert caught.value.retry_after == 3.0
    assert caught.value.system == "netsuite-us"
    assert len(fake.requests) == 3
    assert sleeps == [3.0, 3.0]


def test_given_invalid_values_when_upserting_then_data_validation_error_names_the_fields_without_retry(retry):
    path = f"{RECORD}/customer/eid:sf-001Dn00000Z9y8xAAA"
    fake = FakeNetSuite({f"PUT {path}": [ns_error(400, "INVALID_CONTENT", path="subsidiary")]})

    with pytest.raises(DataValidationError) as caught:
        erp(fake, retry).upsert_customer(ACCOUNT, subsidiary_id="999", currency="GBP")

    assert caught.value.code == "INVALID_CONTENT"
    assert caught.value.problems == [
        {"field": "subsidiary", "problem": "vendor text", "code": "INVALID_CONTENT"}
    ]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (ns_error(429, "CONCURRENCY_LIMIT_EXCEEDED"), ThrottledError),
        (httpx.Response(429), ThrottledError),
        (ns_error(400, "SSS_REQUEST_LIMIT_EXCEEDED"), ThrottledError),
        (ns_error(400, "INVALID_VALUE"), DataValidationError),
        (ns_error(400, "INVALID_CONTENT", path="currency"), DataValidationError),
        (ns_error(404, "NONEXISTENT_ID"), PermanentError),
        (ns_error(400, "USER_ERROR"), DataValidationError),
        (ns_error(400, "RCRD_HAS_BEEN_CHANGED"), TransientError),
        (ns_error(404, "RCRD_DSNT_EXIST"), PermanentError),
        (ns_error(401, "INVALID_LOGIN"), PermanentError),
        (ns_error(403, "INSUFFICIENT_PERMISSION"), PermanentError),
        (ns_error(400, "DUP_RCRD"), TransientError),  # a racing first upsert: retry updates
        (httpx.Response(409, json={"title": "Conflict"}), ConflictError),
        (ns_error(500, "UNEXPECTED_ERROR"), TransientError),
        (httpx.Response(503, text="maintenance"), TransientError),
    ],
)
def test_given_a_netsuite_answer_when_classified_then_it_maps_onto_the_taxonomy(response, expected):
    error = classify_for("netsuite-uk")(response)
    assert type(error) is expected
    assert error.system == "netsuite-uk"


def test_given_account_ids_when_deriving_the_base_url_then_sandbox_suffixes_are_dns_safe():
    assert netsuite_base_url("1234567") == "https://1234567.suitetalk.api.netsuite.com"
    assert netsuite_base_url("1234567_SB1") == "https://1234567-sb1.suitetalk.api.netsuite.com"
