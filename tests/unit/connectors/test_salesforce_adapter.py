"""Salesforce adapter against a hand-written REST API in Salesforce's documented shapes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from hub.connectors.salesforce import SalesforceCrm, api_usage, classify
from hub.errors import (
    ConflictError,
    DataValidationError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from hub.model import BillingType

INSTANCE = "https://acme.my.salesforce.test"
ROOT = "/services/data/v62.0"
OPP_ID = "006Dn00000A1b2cAAB"
ACC_ID = "001Dn00000Z9y8xAAA"
LIMIT = {"Sforce-Limit-Info": "api-usage=120/15000"}

OPPORTUNITY = {
    "attributes": {"type": "Opportunity", "url": f"{ROOT}/sobjects/Opportunity/{OPP_ID}"},
    "Id": OPP_ID,
    "Name": "Acme - ERP rollout",
    "StageName": "Closed Won",
    "Amount": 125000.0,
    "CurrencyIsoCode": "GBP",
    "CloseDate": "2026-10-30",
    "AccountId": ACC_ID,
    "Legal_Entity__c": "UK01",
    "Billing_Type__c": "Fixed Fee - Milestones",
    "Start_Date__c": "2026-11-16",
    "End_Date__c": "2027-03-31",
    "SystemModstamp": "2026-11-02T10:00:00.000+0000",
}
LINE_ITEMS = {
    "totalSize": 1,
    "done": True,
    "records": [
        {
            "attributes": {"type": "OpportunityLineItem"},
            "Id": "00kDn00000Q1w2eAAB",
            "ProductCode": "CONS-SR",
            "Name": "Acme - ERP rollout Senior consultant",
            "Quantity": 100.0,
            "UnitPrice": 1250.0,
            "TotalPrice": 125000.0,
            "Service_Line__c": "ERP",
            "ServiceDate": "2026-11-16",
        }
    ],
}
ACCOUNT = {
    "attributes": {"type": "Account"},
    "Id": ACC_ID,
    "Name": "Acme Ltd",
    "BillingCountry": "GB",
    "CurrencyIsoCode": "GBP",
}


class FakeSalesforce:
    """Token endpoint + sObject rows, relationship and PATCH; scripted failures per path."""

    def __init__(self, failures: dict[str, list[httpx.Response]] | None = None, instance_url: str = INSTANCE):
        self.failures = failures or {}
        self.instance_url = instance_url
        self.token_calls = 0
        self.requests: list[httpx.Request] = []
        self.token_forms: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/services/oauth2/token":
            self.token_calls += 1
            self.token_forms.append(request.content.decode())
            return httpx.Response(
                200,
                json={
                    "access_token": f"00D!session-{self.token_calls}",
                    "instance_url": self.instance_url,
                    "id": "https://login.salesforce.test/id/00D/005",
                    "token_type": "Bearer",
                    "issued_at": "1793613600000",
                    "signature": "sig",
                },
            )
        self.requests.append(request)
        scripted = self.failures.get(f"{request.method} {path}")
        if scripted:
            return scripted.pop(0)
        if request.method == "GET" and path == f"{ROOT}/sobjects/Opportunity/{OPP_ID}":
            return httpx.Response(200, json=OPPORTUNITY, headers=LIMIT)
        if request.method == "GET" and path == f"{ROOT}/sobjects/Opportunity/{OPP_ID}/OpportunityLineItems":
            return httpx.Response(200, json=LINE_ITEMS, headers=LIMIT)
        if request.method == "GET" and path == f"{ROOT}/sobjects/Account/{ACC_ID}":
            return httpx.Response(200, json=ACCOUNT, headers=LIMIT)
        if request.method == "PATCH" and path == f"{ROOT}/sobjects/Opportunity/{OPP_ID}":
            return httpx.Response(204, headers=LIMIT)
        return httpx.Response(
            404, json=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        )


def crm(fake: FakeSalesforce, retry, **kwargs) -> SalesforceCrm:
    return SalesforceCrm(
        httpx.Client(transport=httpx.MockTransport(fake)),
        token_url="https://login.salesforce.test/services/oauth2/token",
        client_id="3MVG9-client",
        client_secret="client-secret",
        retry=retry,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("error", "description"),
    [("invalid_client_id", "client identifier invalid"), ("invalid_client", "invalid client credentials")],
)
def test_given_rejected_client_credentials_when_calling_then_permanent_error_with_the_vendor_code(
    retry, sleeps, error, description
):
    def refuse(request: httpx.Request) -> httpx.Response:
        # No Sforce-Limit-Info on the token call: only data answers carry it.
        return httpx.Response(400, json={"error": error, "error_description": description})

    adapter = SalesforceCrm(
        httpx.Client(transport=httpx.MockTransport(refuse)),
        token_url="https://login.salesforce.test/services/oauth2/token",
        client_id="unknown",
        client_secret="client-secret",
        retry=retry,
    )

    with pytest.raises(PermanentError) as caught:
        adapter.get_opportunity(OPP_ID)

    assert type(caught.value) is PermanentError
    assert caught.value.code == error
    assert sleeps == []


def sf_error(status: int, code: str, fields: list[str] | None = None, headers=None) -> httpx.Response:
    return httpx.Response(
        status, json=[{"errorCode": code, "message": "vendor text", "fields": fields or []}], headers=headers
    )


def test_given_a_won_opportunity_when_read_then_record_line_items_and_account_map_to_canonical(retry):
    fake = FakeSalesforce()

    opp = crm(fake, retry).get_opportunity(OPP_ID)

    assert opp.crm_id == OPP_ID
    assert opp.amount.amount == Decimal("125000.0") and opp.amount.currency == "GBP"
    assert opp.billing_type is BillingType.FIXED_FEE_MILESTONES
    assert opp.last_modified == dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
    assert opp.account.name == "Acme Ltd" and opp.account.billing_country == "GB"
    assert [(li.product_code, li.quantity, li.unit_price.amount) for li in opp.line_items] == [
        ("CONS-SR", Decimal("100.0"), Decimal("1250.0"))
    ]
    assert opp.needs_hydration is False
    assert [r.url.host for r in fake.requests] == ["acme.my.salesforce.test"] * 3
    first = fake.requests[0]
    assert "Legal_Entity__c" in first.url.params["fields"].split(",")
    assert first.headers["Authorization"] == "Bearer 00D!session-1"
    assert "grant_type=client_credentials" in fake.token_forms[0]


def test_given_an_opportunity_without_line_items_when_read_then_it_is_complete_with_none(retry):
    fake = FakeSalesforce(
        {
            f"GET {ROOT}/sobjects/Opportunity/{OPP_ID}/OpportunityLineItems": [
                httpx.Response(200, json={"totalSize": 0, "done": True, "records": []})
            ]
        }
    )

    opp = crm(fake, retry).get_opportunity(OPP_ID)

    assert opp.line_items == ()
    assert opp.needs_hydration is False


def test_given_more_line_items_than_one_batch_when_read_then_next_records_url_is_followed(retry):
    more = dict(LINE_ITEMS, done=False, nextRecordsUrl=f"{ROOT}/query/01gD0000002HU6KIAW-2000")
    second = dict(LINE_ITEMS, records=[dict(LINE_ITEMS["records"][0], Id="00kDn00000Q1w2fAAB")])
    fake = FakeSalesforce(
        {
            f"GET {ROOT}/sobjects/Opportunity/{OPP_ID}/OpportunityLineItems": [
                httpx.Response(200, json=more)
            ],
            f"GET {ROOT}/query/01gD0000002HU6KIAW-2000": [httpx.Response(200, json=second)],
        }
    )

    opp = crm(fake, retry).get_opportunity(OPP_ID)

    assert [li.crm_id for li in opp.line_items] == ["00kDn00000Q1w2eAAB", "00kDn00000Q1w2fAAB"]


def test_given_a_base_url_override_when_calling_then_it_wins_over_the_instance_url(retry):
    fake = FakeSalesforce()
    crm(fake, retry, base_url="https://override.salesforce.test").write_back(OPP_ID, status="Synced")
    assert fake.requests[0].url.host == "override.salesforce.test"


def test_given_back_references_when_written_then_the_opportunity_is_patched_with_the_hub_fields(retry):
    fake = FakeSalesforce()

    crm(fake, retry).write_back(
        OPP_ID, status="Project Created", psa_project_id="9876", erp_customer_id="647"
    )

    request = fake.requests[0]
    assert request.method == "PATCH"
    assert request.url.path == f"{ROOT}/sobjects/Opportunity/{OPP_ID}"
    assert json.loads(request.content) == {
        "Integration_Status__c": "Project Created",
        "PSA_Project_Id__c": "9876",
        "ERP_Customer_Id__c": "647",
        "Integration_Error__c": None,
    }


def test_given_an_expired_session_when_reading_then_token_is_refreshed_once_and_the_read_replayed(
    retry, sleeps
):
    fake = FakeSalesforce(
        {f"GET {ROOT}/sobjects/Opportunity/{OPP_ID}": [sf_error(401, "INVALID_SESSION_ID")]}
    )

    opp = crm(fake, retry).get_opportunity(OPP_ID)

    assert opp.crm_id == OPP_ID
    assert fake.token_calls == 2
    assert sleeps == []


def test_given_the_org_over_its_api_limit_when_calling_then_throttled_error_after_retries_run_out(
    retry, sleeps
):
    over = [
        sf_error(403, "REQUEST_LIMIT_EXCEEDED", headers={"Sforce-Limit-Info": "api-usage=15001/15000"})
    ] * 5
    fake = FakeSalesforce({f"PATCH {ROOT}/sobjects/Opportunity/{OPP_ID}": list(over)})

    with pytest.raises(ThrottledError) as caught:
        crm(fake, retry).write_back(OPP_ID, status="Failed", error="boom")

    assert caught.value.retry_after is None
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert "15001/15000" in caught.value.message
    assert len(fake.requests) == 3
    assert len(sleeps) == 2


def test_given_record_lock_contention_when_writing_then_the_write_is_retried_and_succeeds(retry):
    fake = FakeSalesforce(
        {f"PATCH {ROOT}/sobjects/Opportunity/{OPP_ID}": [sf_error(400, "UNABLE_TO_LOCK_ROW")]}
    )

    crm(fake, retry).write_back(OPP_ID, status="Synced")

    assert len(fake.requests) == 2


def test_given_a_missing_opportunity_when_read_then_permanent_error_without_retry(retry, sleeps):
    fake = FakeSalesforce()

    with pytest.raises(PermanentError) as caught:
        crm(fake, retry).get_opportunity("006Dn00000NOPEzAAB")

    assert caught.value.code == "NOT_FOUND"
    assert len(fake.requests) == 1
    assert sleeps == []


def test_given_a_malformed_id_when_read_then_data_validation_error_before_any_call(retry):
    fake = FakeSalesforce()
    with pytest.raises(DataValidationError):
        crm(fake, retry).get_opportunity("../Account/001")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("response", "expected", "code"),
    [
        (sf_error(403, "REQUEST_LIMIT_EXCEEDED"), ThrottledError, "REQUEST_LIMIT_EXCEEDED"),
        (sf_error(400, "UNABLE_TO_LOCK_ROW"), TransientError, "UNABLE_TO_LOCK_ROW"),
        (sf_error(401, "INVALID_SESSION_ID"), PermanentError, "INVALID_SESSION_ID"),
        (sf_error(404, "NOT_FOUND"), PermanentError, "NOT_FOUND"),
        (sf_error(400, "INVALID_FIELD", ["Foo__c"]), DataValidationError, "INVALID_FIELD"),
        (sf_error(400, "REQUIRED_FIELD_MISSING", ["Name"]), DataValidationError, "REQUIRED_FIELD_MISSING"),
        (
            sf_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
            DataValidationError,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        ),
        (sf_error(400, "SOMETHING_NEW"), DataValidationError, "SOMETHING_NEW"),
        (sf_error(403, "INSUFFICIENT_ACCESS_OR_READONLY"), PermanentError, "INSUFFICIENT_ACCESS_OR_READONLY"),
        (sf_error(400, "DUPLICATE_VALUE"), ConflictError, "DUPLICATE_VALUE"),
        (
            httpx.Response(300, json=[f"{ROOT}/sobjects/Account/001A", f"{ROOT}/sobjects/Account/001B"]),
            ConflictError,
            "MULTIPLE_CHOICES",
        ),
        (sf_error(500, "UNKNOWN_EXCEPTION"), TransientError, "UNKNOWN_EXCEPTION"),
        (httpx.Response(503, text="<html>down</html>"), TransientError, "503"),
    ],
)
def test_given_a_salesforce_answer_when_classified_then_it_maps_onto_the_taxonomy(response, expected, code):
    error = classify(response)

    assert type(error) is expected
    assert error.code == code
    assert error.system == "salesforce"


def test_given_success_when_classified_then_no_error():
    assert classify(httpx.Response(200, json={})) is None
    assert classify(httpx.Response(204)) is None


def test_given_field_errors_when_classified_then_problems_name_each_field():
    error = classify(sf_error(400, "REQUIRED_FIELD_MISSING", ["Name", "CloseDate"]))

    assert [p["field"] for p in error.problems] == ["Name", "CloseDate"]


def test_given_the_limit_header_when_read_then_usage_and_limit_are_parsed():
    assert api_usage(httpx.Response(200, headers=LIMIT)) == (120, 15000)
    assert api_usage(httpx.Response(200)) is None
