"""NetSuite sandbox: token endpoint, upsert by external id, reads, error bodies, accounts, the upsert race."""

import base64
import json
import threading

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.netsuite import NetSuiteSandbox

pytestmark = pytest.mark.disable_socket

TOKEN = "/services/rest/auth/oauth2/v1/token"
RECORDS = "/services/rest/record/v1"
GLOBEX = {
    "companyName": "Globex Corporation",
    "subsidiary": {"id": "1"},
    "currency": {"refName": "USD"},
    "externalId": "SF-0015g0000X5R0Dl",
}


def _jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'PS256', 'kid': 'cert-1'})}.{part(claims)}.c2lnbmF0dXJl"


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == response.status_code
    return body["o:errorDetails"][0]


# ------------------------------------------------------------------------------------------- token
def test_client_credentials_with_a_secret_return_an_hour_long_bearer_token(netsuite):
    with netsuite.client(netsuite.base_url) as api:
        response = api.post(
            TOKEN,
            data={
                "grant_type": "client_credentials",
                "client_id": "pshub-integration",
                "client_secret": "pshub-netsuite-secret",
            },
        )

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == ("3600", "Bearer")


def test_client_credentials_also_work_with_http_basic(netsuite):
    basic = base64.b64encode(b"pshub-integration:pshub-netsuite-secret").decode()
    with netsuite.client(netsuite.base_url, headers={"Authorization": f"Basic {basic}"}) as api:
        assert api.post(TOKEN, data={"grant_type": "client_credentials"}).status_code == 200


def test_the_jwt_client_assertion_netsuite_requires_is_accepted_when_its_claims_hold(netsuite):
    good = _jwt(
        {
            "iss": "pshub-integration",
            "scope": ["rest_webservices"],
            "aud": netsuite.base_url + TOKEN,
            "iat": netsuite.clock(),
            "exp": netsuite.clock() + 600,
        }
    )
    stale = _jwt(
        {
            "iss": "pshub-integration",
            "scope": ["rest_webservices"],
            "aud": netsuite.base_url + TOKEN,
            "exp": netsuite.clock() - 1,
        }
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    with netsuite.client(netsuite.base_url) as api:
        accepted = api.post(TOKEN, data={**form, "client_assertion": good})
        refused = api.post(TOKEN, data={**form, "client_assertion": stale})

    assert accepted.status_code == 200
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {"grant_type": "client_credentials", "client_id": "pshub-integration", "client_secret": "nope"},
            "invalid_client",
        ),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_get_the_oauth_error(netsuite, form, error):
    with netsuite.client(netsuite.base_url) as api:
        response = api.post(TOKEN, data=form)

    assert (response.status_code, response.json()) == (400, {"error": error})


def test_an_expired_or_unknown_token_is_invalid_login():
    now = [1_000_000.0]
    netsuite = NetSuiteSandbox(clock=lambda: now[0])
    token = netsuite.issue_token()
    with netsuite.client(netsuite.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
        fresh = api.get(f"{RECORDS}/customer/1").status_code
        now[0] += 3601
        expired = api.get(f"{RECORDS}/customer/1")

    assert fresh == 404
    assert expired.status_code == 401 and _error(expired)["o:errorCode"] == "INVALID_LOGIN"


# ------------------------------------------------------------------------------------------- customer upsert
def test_a_first_upsert_creates_the_customer_and_answers_204_with_its_location(netsuite, erp_api):
    response = erp_api.put(f"{RECORDS}/customer/eid:SF-0015g0000X5R0Dl", json=GLOBEX)

    [customer] = netsuite.records("customer")
    assert response.status_code == 204 and response.content == b""
    assert response.headers["Location"] == f"{netsuite.base_url}{RECORDS}/customer/{customer['id']}"
    assert (customer["externalId"], customer["companyName"]) == ("SF-0015g0000X5R0Dl", "Globex Corporation")


def test_upserting_the_same_external_id_again_updates_the_one_customer(netsuite, erp_api):
    first = erp_api.put(f"{RECORDS}/customer/eid:SF-1", json=GLOBEX)
    second = erp_api.put(f"{RECORDS}/customer/eid:SF-1", json={"companyName": "Globex Corp (EMEA)"})

    assert first.headers["Location"] == second.headers["Location"]
    [customer] = netsuite.records("customer")
    assert customer["companyName"] == "Globex Corp (EMEA)" and customer["subsidiary"] == {"id": "1"}


def test_a_customer_reads_by_external_id_and_by_internal_id_with_references_expanded(netsuite, erp_api):
    internal_id = (
        erp_api.put(f"{RECORDS}/customer/eid:SF-1", json=GLOBEX).headers["Location"].rsplit("/", 1)[1]
    )

    by_eid = erp_api.get(f"{RECORDS}/customer/eid:SF-1")
    by_id = erp_api.get(f"{RECORDS}/customer/{internal_id}")

    body = by_eid.json()
    assert by_eid.status_code == 200 and by_id.json() == body
    assert body["id"] == internal_id and body["externalId"] == "SF-1"
    assert body["links"] == [{"rel": "self", "href": f"{netsuite.base_url}{RECORDS}/customer/{internal_id}"}]
    assert body["subsidiary"]["refName"] == "Parent Company" and body["subsidiary"]["id"] == "1"
    assert body["currency"]["id"] == "1" and body["currency"]["refName"] == "USD"


@pytest.mark.parametrize("external_id", ["SF 001", "SF.001", "SF%2F001", "caf%C3%A9"])
def test_an_external_id_outside_letters_digits_underscore_and_hyphen_is_refused(
    netsuite, erp_api, external_id
):
    response = erp_api.put(f"{RECORDS}/customer/eid:{external_id}", json=GLOBEX)

    assert response.status_code == 400 and _error(response)["o:errorCode"] == "INVALID_VALUE"
    assert netsuite.records("customer") == []


def test_a_customer_without_company_name_and_subsidiary_is_a_user_error(netsuite, erp_api):
    response = erp_api.put(f"{RECORDS}/customer/eid:SF-1", json={"currency": {"id": "1"}})

    detail = _error(response)
    assert response.status_code == 400 and detail["o:errorCode"] == "USER_ERROR"
    assert "Company Name" in detail["detail"] and "Primary Subsidiary" in detail["detail"]


@pytest.mark.parametrize(("field", "value"), [("subsidiary", {"id": "7"}), ("currency", {"refName": "XAU"})])
def test_a_reference_to_something_the_account_lacks_is_invalid_content(netsuite, erp_api, field, value):
    response = erp_api.put(f"{RECORDS}/customer/eid:SF-1", json={**GLOBEX, field: value})

    detail = _error(response)
    assert response.status_code == 400
    assert (detail["o:errorCode"], detail["o:errorPath"]) == ("INVALID_CONTENT", field)


def test_an_unknown_record_is_404_nonexistent_id(erp_api):
    for path in (f"{RECORDS}/customer/424242", f"{RECORDS}/customer/eid:NOPE"):
        response = erp_api.get(path)
        assert response.status_code == 404 and _error(response)["o:errorCode"] == "NONEXISTENT_ID"


# ------------------------------------------------------------------------------------------- jobs
def test_a_project_is_upserted_under_its_customer_and_inherits_its_subsidiary(netsuite, erp_api):
    customer = netsuite.seed_customer("SF-1", companyName="Globex Corporation")

    response = erp_api.put(
        f"{RECORDS}/job/eid:OPP-0065g00002yFDrZ",
        json={
            "companyName": "ERP rollout",
            "parent": {"externalId": "SF-1"},
            "startDate": "2025-07-01",
            "projectedEndDate": "2025-12-31",
            "jobBillingType": {"id": "1"},
            "custentity_pshub_contract_value": 150000,
        },
    )

    body = erp_api.get(f"{RECORDS}/job/eid:OPP-0065g00002yFDrZ").json()
    assert response.status_code == 204
    assert body["parent"]["id"] == customer and body["parent"]["refName"] == "Globex Corporation"
    assert body["subsidiary"]["id"] == "1" and body["custentity_pshub_contract_value"] == 150000
    assert body["entityId"] == "Globex Corporation : ERP rollout"


@pytest.mark.parametrize(("parent", "code"), [(None, "USER_ERROR"), ({"id": "999999"}, "INVALID_CONTENT")])
def test_a_project_needs_an_existing_parent_customer(netsuite, erp_api, parent, code):
    body = {"companyName": "ERP rollout"} | ({"parent": parent} if parent else {})

    response = erp_api.put(f"{RECORDS}/job/eid:OPP-1", json=body)

    assert response.status_code == 400 and _error(response)["o:errorCode"] == code
    assert netsuite.records("job") == []


def test_a_malformed_date_is_invalid_content(netsuite, erp_api):
    customer = netsuite.seed_customer("SF-1")

    response = erp_api.put(
        f"{RECORDS}/job/eid:OPP-1",
        json={"companyName": "X", "parent": {"id": customer}, "startDate": "01/07/2025"},
    )

    assert _error(response)["o:errorPath"] == "startDate"


# ---------------------------------------------------------------------------------- accounts and races
def test_each_account_has_its_own_subsidiaries_records_and_tokens():
    us = NetSuiteSandbox("TSTDRV-US", subsidiaries={"1": "PS Hub Inc."})
    uk = NetSuiteSandbox("TSTDRV_UK", subsidiaries={"5": "PS Hub Ltd"}, currencies={"2": "GBP"})
    us_token = us.issue_token()

    with uk.client(uk.base_url, headers={"Authorization": f"Bearer {us_token}"}) as api:
        foreign_token = api.get(f"{RECORDS}/customer/1")
    with uk.client(uk.base_url, headers={"Authorization": f"Bearer {uk.issue_token()}"}) as api:
        us_subsidiary = api.put(
            f"{RECORDS}/customer/eid:SF-1", json={"companyName": "A", "subsidiary": {"id": "1"}}
        )
        uk_customer = api.put(
            f"{RECORDS}/customer/eid:SF-1",
            json={"companyName": "A", "subsidiary": {"id": "5"}, "currency": {"refName": "GBP"}},
        )

    assert uk.base_url == "https://tstdrv-uk.suitetalk.api.netsuite.com"
    assert foreign_token.status_code == 401
    assert us_subsidiary.status_code == 400 and uk_customer.status_code == 204
    assert us.records("customer") == [] and len(uk.records("customer")) == 1


def test_two_concurrent_first_upserts_of_one_external_id_leave_one_record():
    netsuite = NetSuiteSandbox(write_delay=0.05, concurrency_limit=None)
    token = netsuite.issue_token()
    barrier = threading.Barrier(2)
    locations: list[str] = []

    def upsert(name: str) -> None:
        with netsuite.client(netsuite.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
            barrier.wait()
            response = api.put(f"{RECORDS}/customer/eid:SF-RACE", json={**GLOBEX, "companyName": name})
            locations.append(response.headers["Location"])

    threads = [threading.Thread(target=upsert, args=(name,)) for name in ("Globex A", "Globex B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [customer] = netsuite.records("customer")
    assert len(locations) == 2 and len(set(locations)) == 1
    assert locations[0].endswith(f"/customer/{customer['id']}")
    assert customer["companyName"] in ("Globex A", "Globex B")


def test_the_account_pool_answers_429_concurrency_limit_exceeded_when_throttled(netsuite, erp_api):
    netsuite.set_faults(Faults(throttle_rate=1.0))

    response = erp_api.put(f"{RECORDS}/customer/eid:SF-1", json=GLOBEX)

    assert response.status_code == 429
    assert _error(response)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert netsuite.records("customer") == []
