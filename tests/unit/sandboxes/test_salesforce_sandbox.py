"""Salesforce sandbox: OAuth, sessions, sObject reads and writes, upsert by external id, limits, locks."""

import base64

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.salesforce import SalesforceSandbox, id_checksum, to_18

pytestmark = pytest.mark.disable_socket

DATA = "/services/data/v62.0/sobjects"
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": "pshub-connected-app",
    "client_secret": "pshub-client-secret",
}


@pytest.fixture
def won_deal(salesforce):
    account = salesforce.seed_account(
        Name="Globex Corporation", BillingCountry="United Kingdom", CurrencyIsoCode="GBP"
    )
    opportunity = salesforce.seed_opportunity(
        AccountId=account,
        Name="Globex - ERP rollout",
        Amount=150000.0,
        CurrencyIsoCode="GBP",
        CloseDate="2025-06-30",
        Legal_Entity__c="UK-01",
        Billing_Type__c="Fixed Fee",
        Start_Date__c="2025-07-01",
        End_Date__c="2025-12-31",
        line_items=[
            {
                "ProductCode": "CONS-ADV",
                "Quantity": 100,
                "UnitPrice": 1200.0,
                "Service_Line__c": "Advisory",
                "ServiceDate": "2025-07-01",
            },
            {
                "ProductCode": "CONS-IMP",
                "Quantity": 50,
                "UnitPrice": 600.0,
                "Service_Line__c": "Implementation",
            },
        ],
    )
    return account, opportunity


# ------------------------------------------------------------------------------------------- ids
def test_ids_carry_the_object_key_prefix_and_the_case_checksum(salesforce, won_deal):
    account, opportunity = won_deal
    [item] = salesforce.line_items(opportunity)[:1]

    assert id_checksum("001D000000HRzKD") == "IA1"
    for record_id, prefix in ((account, "001"), (opportunity, "006"), (item["Id"], "00k")):
        assert len(record_id) == 18 and record_id.startswith(prefix)
        assert record_id[15:] == id_checksum(record_id[:15])
    assert salesforce.org_id.startswith("00D")


# ------------------------------------------------------------------------------------------- OAuth
def test_client_credentials_return_a_session_with_instance_url_and_no_expiry(salesforce):
    with salesforce.client("https://login.salesforce.com") as login:
        body = login.post("/services/oauth2/token", data=TOKEN_FORM).json()

    assert {"access_token", "instance_url", "token_type", "issued_at", "id", "signature"} <= set(body)
    assert "expires_in" not in body and body["token_type"] == "Bearer"
    assert body["id"].endswith(f"/{salesforce.org_id}/{salesforce.user_id}")
    with salesforce.client(
        body["instance_url"], headers={"Authorization": f"Bearer {body['access_token']}"}
    ) as api:
        assert api.get(f"{DATA}/Account/{salesforce.seed_account()}").status_code == 200


def test_client_credentials_also_work_with_http_basic(salesforce):
    basic = base64.b64encode(b"pshub-connected-app:pshub-client-secret").decode()
    with salesforce.client(
        "https://login.salesforce.com", headers={"Authorization": f"Basic {basic}"}
    ) as login:
        response = login.post("/services/oauth2/token", data={"grant_type": "client_credentials"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({**TOKEN_FORM, "client_id": "someone-else"}, "invalid_client_id"),
        ({**TOKEN_FORM, "client_secret": "wrong"}, "invalid_client"),
        ({**TOKEN_FORM, "grant_type": "password"}, "unsupported_grant_type"),
    ],
)
def test_bad_credentials_are_refused_with_the_oauth_error(salesforce, form, error):
    with salesforce.client("https://login.salesforce.com") as login:
        response = login.post("/services/oauth2/token", data=form)

    assert response.status_code == 400
    assert response.json()["error"] == error and response.json()["error_description"]


def test_a_call_without_a_session_or_with_an_expired_one_is_invalid_session_id(salesforce, sf_api, won_deal):
    _, opportunity = won_deal
    token = sf_api.headers["Authorization"].removeprefix("Bearer ")
    assert sf_api.get(f"{DATA}/Opportunity/{opportunity}").status_code == 200

    salesforce.expire_token(token)
    expired = sf_api.get(f"{DATA}/Opportunity/{opportunity}")
    with salesforce.client("https://x.my.salesforce.com") as anonymous:
        missing = anonymous.get(f"{DATA}/Opportunity/{opportunity}")

    for response in (expired, missing):
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


# ------------------------------------------------------------------------------------------- reads
def test_an_opportunity_reads_with_attributes_and_the_fields_the_hub_maps(sf_api, won_deal):
    account, opportunity = won_deal

    response = sf_api.get(f"{DATA}/Opportunity/{opportunity}")

    body = response.json()
    assert response.status_code == 200
    assert body["attributes"] == {"type": "Opportunity", "url": f"{DATA}/Opportunity/{opportunity}"}
    assert (body["Id"], body["AccountId"], body["StageName"]) == (opportunity, account, "Closed Won")
    assert (body["Amount"], body["CurrencyIsoCode"], body["CloseDate"]) == (150000.0, "GBP", "2025-06-30")
    assert (body["Legal_Entity__c"], body["Billing_Type__c"]) == ("UK-01", "Fixed Fee")
    assert body["IsWon"] is True and body["SystemModstamp"].endswith("+0000")
    assert body["PSA_Project_Id__c"] is None


def test_a_15_character_id_reads_the_same_record(sf_api, won_deal):
    _, opportunity = won_deal

    assert sf_api.get(f"{DATA}/Opportunity/{opportunity[:15]}").json()["Id"] == opportunity


def test_its_line_items_come_from_the_relationship_resource(sf_api, won_deal):
    _, opportunity = won_deal

    body = sf_api.get(f"{DATA}/Opportunity/{opportunity}/OpportunityLineItems").json()

    assert body["totalSize"] == 2 and body["done"] is True
    first = body["records"][0]
    assert first["attributes"]["type"] == "OpportunityLineItem"
    assert (first["ProductCode"], first["Quantity"], first["UnitPrice"], first["TotalPrice"]) == (
        "CONS-ADV",
        100,
        1200.0,
        120000.0,
    )
    assert first["Service_Line__c"] == "Advisory" and first["OpportunityId"] == opportunity


def test_an_account_reads_with_country_and_currency(sf_api, won_deal):
    account, _ = won_deal

    body = sf_api.get(f"{DATA}/Account/{account}").json()

    assert (body["Name"], body["BillingCountry"], body["CurrencyIsoCode"]) == (
        "Globex Corporation",
        "United Kingdom",
        "GBP",
    )


def test_the_fields_parameter_limits_what_is_returned(sf_api, won_deal):
    _, opportunity = won_deal

    body = sf_api.get(f"{DATA}/Opportunity/{opportunity}", params={"fields": "Name,Amount"}).json()

    assert set(body) == {"attributes", "Name", "Amount"}


@pytest.mark.parametrize(
    ("record_id", "message"),
    [
        ("0065g00000ZZZZZAAA", "The requested resource does not exist"),
        ("not-an-id", "Provided external ID field does not exist or is not accessible: not-an-id"),
    ],
)
def test_an_unknown_record_is_not_found(sf_api, won_deal, record_id, message):
    response = sf_api.get(f"{DATA}/Opportunity/{record_id}")

    assert response.status_code == 404
    assert response.json() == [{"message": message, "errorCode": "NOT_FOUND"}]


# ------------------------------------------------------------------------------------------- writes
def test_writing_back_to_an_opportunity_answers_204_and_stores_the_fields(salesforce, sf_api, won_deal):
    _, opportunity = won_deal

    response = sf_api.patch(
        f"{DATA}/Opportunity/{opportunity}",
        json={"PSA_Project_Id__c": "30211", "Integration_Status__c": "Synced"},
    )

    assert response.status_code == 204 and response.content == b""
    stored = salesforce.opportunity(opportunity)
    assert (stored["PSA_Project_Id__c"], stored["Integration_Status__c"]) == ("30211", "Synced")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Project_Code__c": "X"}, "INVALID_FIELD"),
        ({"SystemModstamp": "2025-01-01T00:00:00.000+0000"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"CloseDate": "31/12/2025"}, "JSON_PARSER_ERROR"),
        ({"Amount": "a lot"}, "JSON_PARSER_ERROR"),
        ({"StageName": None}, "REQUIRED_FIELD_MISSING"),
        ({"AccountId": "0015g0000ZZZZZZAAA"}, "INVALID_CROSS_REFERENCE_KEY"),
    ],
)
def test_an_invalid_write_back_is_a_400_naming_the_problem(salesforce, sf_api, won_deal, body, code):
    _, opportunity = won_deal
    before = salesforce.opportunity(opportunity)

    response = sf_api.patch(f"{DATA}/Opportunity/{opportunity}", json=body)

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == code
    assert salesforce.opportunity(opportunity) == before


def test_a_locked_record_answers_unable_to_lock_row_until_released(salesforce, sf_api, won_deal):
    _, opportunity = won_deal
    salesforce.lock_record(opportunity)

    locked = sf_api.patch(f"{DATA}/Opportunity/{opportunity}", json={"Integration_Status__c": "Error"})
    salesforce.unlock_record(opportunity)
    released = sf_api.patch(f"{DATA}/Opportunity/{opportunity}", json={"Integration_Status__c": "Error"})

    assert locked.status_code == 400 and locked.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert released.status_code == 204


def test_lock_contention_can_be_injected_at_a_rate(salesforce, sf_api, won_deal):
    _, opportunity = won_deal
    salesforce.set_faults(Faults(lock_rate=1.0))

    response = sf_api.patch(f"{DATA}/Opportunity/{opportunity}", json={"Integration_Status__c": "Error"})

    assert response.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


# ------------------------------------------------------------------------------------------- upsert
def test_an_upsert_of_a_new_external_id_creates_the_record(salesforce, sf_api):
    response = sf_api.patch(f"{DATA}/Account/External_Id__c/ERP-10042", json={"Name": "Initech"})

    body = response.json()
    assert response.status_code == 201
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    assert salesforce.account(body["id"])["External_Id__c"] == "ERP-10042"


def test_an_upsert_of_a_known_external_id_updates_it_answering_created_false(salesforce, sf_api):
    account = salesforce.seed_account(External_Id__c="ERP-10042", Name="Initech")

    response = sf_api.patch(f"{DATA}/Account/External_Id__c/erp-10042", json={"Name": "Initech Ltd"})

    assert response.status_code == 200
    assert response.json() == {"id": account, "success": True, "errors": [], "created": False}
    assert salesforce.account(account)["Name"] == "Initech Ltd"
    assert len(salesforce.records("Account")) == 1


def test_before_api_v46_an_upsert_update_answers_204_without_a_body(salesforce, sf_api):
    salesforce.seed_account(External_Id__c="ERP-1")

    response = sf_api.patch("/services/data/v45.0/sobjects/Account/External_Id__c/ERP-1", json={"Name": "B"})

    assert response.status_code == 204 and response.content == b""


def test_an_external_id_matching_several_records_answers_300_and_changes_nothing(salesforce, sf_api):
    first = salesforce.seed_account(External_Id__c="DUP-1", Name="One")
    second = salesforce.seed_account(External_Id__c="DUP-1", Name="Two")

    response = sf_api.patch(f"{DATA}/Account/External_Id__c/DUP-1", json={"Name": "Merged"})

    assert response.status_code == 300
    assert sorted(response.json()) == sorted([f"{DATA}/Account/{first}", f"{DATA}/Account/{second}"])
    assert {a["Name"] for a in salesforce.records("Account")} == {"One", "Two"}


def test_an_upsert_that_would_create_without_required_fields_is_refused(sf_api):
    response = sf_api.patch(f"{DATA}/Opportunity/External_Id__c/OPP-1", json={"Name": "Deal"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert response.json()[0]["fields"] == ["CloseDate", "StageName"]


def test_an_upsert_on_a_field_that_is_not_an_external_id_is_not_found(sf_api):
    response = sf_api.patch(f"{DATA}/Account/Name/Initech", json={"Type": "Customer"})

    assert response.status_code == 404
    assert "Provided external ID field does not exist" in response.json()[0]["message"]


def test_a_record_reads_by_external_id(salesforce, sf_api):
    account = salesforce.seed_account(External_Id__c="ERP-7")

    assert sf_api.get(f"{DATA}/Account/External_Id__c/ERP-7").json()["Id"] == account


# ------------------------------------------------------------------------------------------- limits
def test_every_answer_reports_api_usage_in_sforce_limit_info(salesforce, sf_api, won_deal):
    _, opportunity = won_deal

    first = sf_api.get(f"{DATA}/Opportunity/{opportunity}")
    second = sf_api.get(f"{DATA}/Opportunity/{opportunity}/OpportunityLineItems")

    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/1000"
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/1000"
    assert salesforce.remaining_calls == 998


def test_once_the_api_budget_is_used_calls_get_request_limit_exceeded_without_retry_after(
    salesforce, sf_api, won_deal
):
    _, opportunity = won_deal
    salesforce.api_limit = 2

    statuses = [sf_api.get(f"{DATA}/Opportunity/{opportunity}").status_code for _ in range(2)]
    refused = sf_api.get(f"{DATA}/Opportunity/{opportunity}")

    assert statuses == [200, 200]
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert "Retry-After" not in refused.headers
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/2"


def test_injected_throttling_uses_salesforces_403_not_429(salesforce, sf_api, won_deal):
    _, opportunity = won_deal
    salesforce.set_faults(Faults(throttle_rate=1.0))

    response = sf_api.get(f"{DATA}/Opportunity/{opportunity}")

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_seeding_rejects_fields_the_org_does_not_have():
    salesforce = SalesforceSandbox(extra_fields={"Opportunity": ["Region__c"]})

    opportunity = salesforce.seed_opportunity(Region__c="EMEA")

    assert salesforce.opportunity(to_18(opportunity[:15]))["Region__c"] == "EMEA"
    with pytest.raises(ValueError, match="Colour__c"):
        salesforce.seed_opportunity(Colour__c="red")
