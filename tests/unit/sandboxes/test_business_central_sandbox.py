"""Business Central sandbox: Entra token, companies, time registration entries, purchase invoices, OData,
JSON `$batch`, the sliding request window and the 5-at-once / 95-waiting concurrency (in-process only)."""

import threading
import time

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.business_central import BusinessCentralSandbox, odata_filter

pytestmark = pytest.mark.disable_socket

SCOPE = "https://api.businesscentral.dynamics.com/.default"


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "CorrelationId" in body["error"]["message"]
    return body["error"]


@pytest.fixture
def company(business_central) -> str:
    company = business_central.company("PS Hub UK Ltd")
    business_central.seed_employee(company, "E0001", "Pat Smith")
    business_central.seed_project(company, "J1001", "ERP rollout", tasks=("100", "200"))
    business_central.seed_vendor(company, "V-E0001", "Pat Smith")
    return company


def _entry(**fields) -> dict:
    return {
        "employeeNumber": "E0001",
        "jobNumber": "J1001",
        "jobTaskNumber": "100",
        "date": "2025-01-31",
        "quantity": 7.5,
        **fields,
    }


def _invoice(**fields) -> dict:
    return {
        "vendorNumber": "V-E0001",
        "vendorInvoiceNumber": "EXP-1",
        "invoiceDate": "2025-01-31",
        "purchaseInvoiceLines": [
            {
                "lineType": "Account",
                "lineObjectNumber": "64100",
                "description": "Train",
                "quantity": 1,
                "unitCost": 120,
                "taxCode": "STANDARD",
            },
            {
                "lineType": "Account",
                "lineObjectNumber": "64200",
                "description": "Dinner",
                "quantity": 2,
                "unitCost": 25.5,
                "taxCode": "ZERO",
            },
        ],
        **fields,
    }


# ------------------------------------------------------------------------------------------- token and auth
def test_the_client_credentials_token_has_entras_shape(business_central):
    form = {
        "grant_type": "client_credentials",
        "client_id": business_central.client_id,
        "client_secret": business_central.client_secret,
        "scope": SCOPE,
    }
    with business_central.client(business_central.base_url) as api:
        response = api.post(business_central.token_path, data=form)

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)


@pytest.mark.parametrize(
    ("change", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 70011),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
)
def test_bad_token_requests_get_entras_errors(business_central, change, status, error, code):
    form = {
        "grant_type": "client_credentials",
        "client_id": business_central.client_id,
        "client_secret": business_central.client_secret,
        "scope": SCOPE,
        **change,
    }
    with business_central.client(business_central.base_url) as api:
        response = api.post(business_central.token_path, data=form)

    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}:")


def test_an_unknown_tenant_has_no_token_endpoint(business_central):
    with business_central.client(business_central.base_url) as api:
        response = api.post("/other-tenant/oauth2/v2.0/token", data={"grant_type": "client_credentials"})

    assert response.status_code == 400 and response.json()["error_codes"] == [90002]


def test_a_missing_or_expired_token_is_401_with_a_bearer_challenge(business_central):
    token = business_central.issue_token()
    business_central.expire_token(token)
    with business_central.client(business_central.api_url + "/") as api:
        missing = api.get("companies")
        expired = api.get("companies", headers={"Authorization": f"Bearer {token}"})

    for response in (missing, expired):
        assert response.status_code == 401 and _error(response)["code"] == "Authentication_InvalidCredentials"
        assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


# ------------------------------------------------------------------------------------------- companies
def test_companies_are_listed_and_everything_else_is_company_scoped(business_central, bc_api, company):
    listed = bc_api.get("companies").json()
    short_form = business_central.client(business_central.base_url).get(
        "/api/v2.0/companies", headers={"Authorization": bc_api.headers["Authorization"]}
    )
    unknown = bc_api.get("companies(00000000-0000-0000-0000-000000000001)/timeRegistrationEntries")

    assert [c["name"] for c in listed["value"]] == ["PS Hub UK Ltd"] and listed["value"][0]["id"] == company
    assert listed["@odata.context"].endswith("/api/v2.0/$metadata#companies")
    assert short_form.status_code == 200
    assert unknown.status_code == 404 and _error(unknown)["code"] == "Internal_CompanyNotFound"


def test_another_environment_or_an_unknown_segment_is_404(business_central, bc_api, company):
    other = business_central.client(business_central.base_url).get(
        f"/v2.0/{business_central.tenant_id}/sandbox/api/v2.0/companies",
        headers={"Authorization": bc_api.headers["Authorization"]},
    )
    segment = bc_api.get(f"companies({company})/expenseReports")

    assert other.status_code == 404
    assert segment.status_code == 404 and _error(segment)["code"] == "BadRequest_ResourceNotFound"


# ------------------------------------------------------------------------------------------- time registration entries
def test_a_time_registration_entry_is_created_with_201_location_and_etag(business_central, bc_api, company):
    response = bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry())

    body = response.json()
    assert response.status_code == 201
    assert (
        response.headers["Location"]
        == f"{business_central.api_url}/companies({company})/timeRegistrationEntries({body['id']})"
    )
    assert response.headers["ETag"] == body["@odata.etag"] and body["@odata.etag"].startswith('W/"')
    assert (body["employeeNumber"], body["jobNumber"], body["jobTaskNumber"]) == ("E0001", "J1001", "100")
    assert (body["quantity"], body["status"], body["lineNumber"], body["date"]) == (
        7.5,
        "Open",
        10000,
        "2025-01-31",
    )
    assert response.headers["OData-Version"] == "4.0"


def test_posting_the_same_entry_twice_creates_two_because_bc_has_no_upsert(business_central, bc_api, company):
    for _ in range(2):
        bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry())

    assert business_central.count(company, "timeRegistrationEntries") == 2
    assert business_central.duplicates(company, "timeRegistrationEntries", "date") == {"2025-01-31": 2}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"employeeNumber": "NOBODY"}, 400, "Internal_RecordNotFound"),
        ({"employeeNumber": None}, 400, "Application_DialogException"),
        ({"jobNumber": "J9"}, 400, "Internal_RecordNotFound"),
        ({"jobTaskNumber": "999"}, 400, "Internal_RecordNotFound"),
        ({"date": None}, 400, "Application_FieldValidationException"),
        ({"date": "31/01/2025"}, 400, "BadRequest"),
        ({"quantity": "8h"}, 400, "BadRequest"),
        ({"hours": 8}, 400, "BadRequest"),
        ({"status": "Approved"}, 400, "BadRequest_InvalidOperation"),
    ],
)
def test_invalid_entries_get_bcs_error_codes(business_central, bc_api, company, change, status, code):
    response = bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry(**change))

    assert (response.status_code, _error(response)["code"]) == (status, code)
    assert business_central.count(company, "timeRegistrationEntries") == 0


def test_an_unknown_property_names_the_type(bc_api, company):
    response = bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry(hours=8))

    assert (
        "The property 'hours' does not exist on type 'Microsoft.NAV.timeRegistrationEntry'"
        in _error(response)["message"]
    )


def test_an_entry_can_name_its_employee_and_project_by_id(business_central, bc_api, company):
    employee = business_central.records(company, "employees")[0]["id"]
    project = business_central.records(company, "projects")[0]["id"]

    response = bc_api.post(
        f"companies({company})/timeRegistrationEntries",
        json={
            "employeeId": employee,
            "jobId": project,
            "jobTaskNumber": "200",
            "date": "2025-01-30",
            "quantity": 4,
        },
    )

    assert response.status_code == 201 and response.json()["employeeNumber"] == "E0001"


def test_patch_and_delete_need_a_current_etag(bc_api, company):
    created = bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry()).json()
    path = f"companies({company})/timeRegistrationEntries({created['id']})"

    no_token = bc_api.patch(path, json={"quantity": 8})
    patched = bc_api.patch(path, json={"quantity": 8}, headers={"If-Match": created["@odata.etag"]})
    stale = bc_api.patch(path, json={"quantity": 9}, headers={"If-Match": created["@odata.etag"]})
    star = bc_api.patch(path, json={"quantity": 6}, headers={"If-Match": "*"})
    stale_delete = bc_api.delete(path, headers={"If-Match": created["@odata.etag"]})
    deleted = bc_api.delete(path, headers={"If-Match": star.json()["@odata.etag"]})

    assert no_token.status_code == 400 and _error(no_token)["code"] == "BadRequest_InvalidToken"
    assert patched.status_code == 200 and patched.json()["quantity"] == 8
    assert patched.json()["@odata.etag"] != created["@odata.etag"]
    assert stale.status_code == 412 and _error(stale)["code"] == "Request_EntityChanged"
    assert star.status_code == 200 and stale_delete.status_code == 412 and deleted.status_code == 204
    assert bc_api.get(path).status_code == 404


def test_entries_are_queried_with_odata_options(business_central, bc_api, company):
    business_central.seed_employee(company, "E0002", "Ann Analyst")
    for number, day in (("E0001", "2025-01-29"), ("E0001", "2025-01-30"), ("E0002", "2025-01-30")):
        bc_api.post(
            f"companies({company})/timeRegistrationEntries", json=_entry(employeeNumber=number, date=day)
        )

    filtered = bc_api.get(
        f"companies({company})/timeRegistrationEntries",
        params={"$filter": "employeeNumber eq 'E0001' and date ge 2025-01-30"},
    ).json()
    ordered = bc_api.get(
        f"companies({company})/timeRegistrationEntries",
        params={"$orderby": "date desc,employeeNumber asc", "$top": "2", "$select": "date,employeeNumber"},
    ).json()
    unknown = bc_api.get(f"companies({company})/timeRegistrationEntries", params={"$filter": "hours gt 1"})

    assert [(e["employeeNumber"], e["date"]) for e in filtered["value"]] == [("E0001", "2025-01-30")]
    assert [(e["date"], e["employeeNumber"]) for e in ordered["value"]] == [
        ("2025-01-30", "E0001"),
        ("2025-01-30", "E0002"),
    ]
    assert set(ordered["value"][0]) == {"@odata.etag", "date", "employeeNumber"}
    assert (
        unknown.status_code == 400 and "Could not find a property named 'hours'" in _error(unknown)["message"]
    )


def test_large_collections_page_with_a_next_link():
    business_central = BusinessCentralSandbox(concurrency_limit=None, page_size=3)
    company = business_central.company("PS Hub UK Ltd")
    business_central.seed_employees(company, 7)
    headers = {"Authorization": f"Bearer {business_central.issue_token()}"}

    with business_central.client(business_central.api_url + "/", headers=headers) as api:
        first = api.get(f"companies({company})/employees").json()
        second = api.get(first["@odata.nextLink"]).json()
        third = api.get(second["@odata.nextLink"]).json()

    assert [len(p["value"]) for p in (first, second, third)] == [3, 3, 1]
    assert "@odata.nextLink" not in third
    numbers = [e["number"] for p in (first, second, third) for e in p["value"]]
    assert numbers == [f"E{n:04d}" for n in range(1, 8)]


def test_reference_entities_are_read_only(bc_api, company):
    response = bc_api.post(f"companies({company})/employees", json={"number": "E9"})

    assert response.status_code == 405 and _error(response)["code"] == "BadRequest_MethodNotAllowed"


# ------------------------------------------------------------------------------------------- purchase invoices
def test_a_purchase_invoice_is_deep_inserted_with_its_lines_and_tax(business_central, bc_api, company):
    response = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice())

    body = response.json()
    train, dinner = body["purchaseInvoiceLines"]
    assert response.status_code == 201 and body["status"] == "Draft" and body["number"] == "108001"
    assert (body["vendorName"], body["vendorInvoiceNumber"], body["currencyCode"]) == (
        "Pat Smith",
        "EXP-1",
        "",
    )
    assert (train["amountExcludingTax"], train["taxPercent"], train["totalTaxAmount"]) == (120.0, 20.0, 24.0)
    assert (dinner["amountExcludingTax"], dinner["totalTaxAmount"], dinner["sequence"]) == (51.0, 0.0, 20000)
    assert (body["totalAmountExcludingTax"], body["totalTaxAmount"], body["totalAmountIncludingTax"]) == (
        171.0,
        24.0,
        195.0,
    )
    lines = bc_api.get(f"companies({company})/purchaseInvoices({body['id']})/purchaseInvoiceLines").json()
    assert [line["description"] for line in lines["value"]] == ["Train", "Dinner"]


def test_prices_can_include_tax(bc_api, company):
    body = _invoice(pricesIncludeTax=True)
    body["purchaseInvoiceLines"] = body["purchaseInvoiceLines"][:1]

    invoice = bc_api.post(f"companies({company})/purchaseInvoices", json=body).json()

    assert (
        invoice["totalAmountExcludingTax"],
        invoice["totalTaxAmount"],
        invoice["totalAmountIncludingTax"],
    ) == (
        100.0,
        20.0,
        120.0,
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"vendorNumber": "V-404"}, "Internal_RecordNotFound"),
        ({"vendorNumber": None}, "Application_DialogException"),
        ({"currencyCode": "JPY"}, "Internal_RecordNotFound"),
        (
            {"purchaseInvoiceLines": [{"lineType": "Account", "lineObjectNumber": "99999", "quantity": 1}]},
            "Internal_RecordNotFound",
        ),
        (
            {
                "purchaseInvoiceLines": [
                    {"lineType": "Account", "lineObjectNumber": "64100", "taxCode": "VAT21"}
                ]
            },
            "Internal_RecordNotFound",
        ),
        ({"purchaseInvoiceLines": [{"lineType": "Expense"}]}, "Application_EvaluateException"),
        (
            {"purchaseInvoiceLines": [{"lineType": "Account", "lineObjectNumber": "64100", "amount": 5}]},
            "BadRequest",
        ),
        ({"totalAmountIncludingTax": 10}, "BadRequest_InvalidOperation"),
    ],
)
def test_invalid_invoices_are_refused_whole(business_central, bc_api, company, change, code):
    response = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice(**change))

    assert response.status_code == 400 and _error(response)["code"] == code
    assert business_central.count(company, "purchaseInvoices") == 0


def test_posting_refuses_a_second_invoice_with_the_same_vendor_invoice_number(
    business_central, bc_api, company
):
    first = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()
    second = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()

    posted = bc_api.post(f"companies({company})/purchaseInvoices({first['id']})/Microsoft.NAV.post")
    duplicate = bc_api.post(f"companies({company})/purchaseInvoices({second['id']})/Microsoft.NAV.post")
    found = bc_api.get(
        f"companies({company})/purchaseInvoices", params={"$filter": "vendorInvoiceNumber eq 'EXP-1'"}
    ).json()

    assert posted.status_code == 204
    assert duplicate.status_code == 400
    assert _error(duplicate)["message"].startswith("Purchase Invoice EXP-1 already exists for this vendor.")
    assert sorted(i["status"] for i in found["value"]) == ["Draft", "Open"]
    assert business_central.duplicates(company, "purchaseInvoices", "vendorInvoiceNumber") == {"EXP-1": 2}


def test_posting_needs_a_vendor_invoice_number_and_an_allowed_posting_date(business_central, bc_api, company):
    business_central.set_allowed_posting_dates(company, "2025-02-01", "2025-02-28")
    unnumbered = bc_api.post(
        f"companies({company})/purchaseInvoices", json=_invoice(vendorInvoiceNumber="")
    ).json()
    january = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()
    february = bc_api.post(
        f"companies({company})/purchaseInvoices",
        json=_invoice(vendorInvoiceNumber="EXP-2", postingDate="2025-02-01"),
    ).json()

    missing = bc_api.post(f"companies({company})/purchaseInvoices({unnumbered['id']})/Microsoft.NAV.post")
    closed = bc_api.post(f"companies({company})/purchaseInvoices({january['id']})/Microsoft.NAV.post")
    open_ = bc_api.post(f"companies({company})/purchaseInvoices({february['id']})/Microsoft.NAV.post")

    assert _error(missing)["message"].startswith("Vendor Invoice No. must have a value in Purchase Header")
    assert _error(closed)["message"].startswith(
        "Posting Date is not within your range of allowed posting dates."
    )
    assert open_.status_code == 204


def test_a_posted_invoice_cannot_be_changed(bc_api, company):
    invoice = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()
    bc_api.post(f"companies({company})/purchaseInvoices({invoice['id']})/Microsoft.NAV.post")
    path = f"companies({company})/purchaseInvoices({invoice['id']})"

    response = bc_api.patch(path, json={"dueDate": "2025-03-01"}, headers={"If-Match": "*"})

    assert response.status_code == 400 and _error(response)["code"] == "Application_DialogException"


def test_invoices_expand_their_lines_on_request(bc_api, company):
    invoice = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()

    plain = bc_api.get(f"companies({company})/purchaseInvoices({invoice['id']})").json()
    expanded = bc_api.get(
        f"companies({company})/purchaseInvoices", params={"$expand": "purchaseInvoiceLines"}
    ).json()

    assert "purchaseInvoiceLines" not in plain
    assert len(expanded["value"][0]["purchaseInvoiceLines"]) == 2


# ------------------------------------------------------------------------------------------- $batch
def _batch_request(company: str, n: int, **body) -> dict:
    return {
        "method": "POST",
        "id": str(n),
        "url": f"companies({company})/timeRegistrationEntries",
        "headers": {"Content-Type": "application/json"},
        "body": _entry(**body),
    }


def test_a_batch_of_100_operations_is_one_request_with_each_operation_answered(
    business_central, bc_api, company
):
    requests = [_batch_request(company, n) for n in range(100)]
    requests[7]["body"]["employeeNumber"] = "NOBODY"

    response = bc_api.post("$batch", json={"requests": requests})

    responses = response.json()["responses"]
    assert response.status_code == 200 and len(responses) == 100
    assert [r["id"] for r in responses] == [str(n) for n in range(100)]
    assert [r["status"] for r in responses].count(201) == 99
    assert (
        responses[7]["status"] == 400 and responses[7]["body"]["error"]["code"] == "Internal_RecordNotFound"
    )
    assert responses[0]["body"]["employeeNumber"] == "E0001" and "location" in responses[0]["headers"]
    assert business_central.count(company, "timeRegistrationEntries") == 99
    assert business_central.call_count() == 1 and business_central.call_count("POST", "$batch") == 1
    operations = business_central.operations()
    assert len(operations) == 100 and {op.batch for op in operations} == {1}
    assert len(business_central.operations(status=201)) == 99
    assert business_central.stats()["batch_operations"] == 100


def test_more_than_100_operations_is_a_400_and_nothing_runs(business_central, bc_api, company):
    response = bc_api.post("$batch", json={"requests": [_batch_request(company, n) for n in range(101)]})

    assert response.status_code == 400 and _error(response)["code"] == "BadRequest"
    assert (
        business_central.count(company, "timeRegistrationEntries") == 0
        and business_central.operations() == []
    )


def test_isolation_snapshot_makes_the_batch_all_or_nothing(business_central, bc_api, company):
    requests = [_batch_request(company, n) for n in range(3)]
    invoice = {
        "method": "POST",
        "id": "inv",
        "url": f"companies({company})/purchaseInvoices",
        "body": _invoice(),
    }
    requests.insert(1, invoice)
    requests[-1]["body"]["jobTaskNumber"] = "999"

    rolled_back = bc_api.post("$batch", json={"requests": requests}, headers={"Isolation": "snapshot"})
    kept = bc_api.post("$batch", json={"requests": requests})

    assert [r["status"] for r in rolled_back.json()["responses"]] == [201, 201, 201, 400]
    assert [r["status"] for r in kept.json()["responses"]] == [201, 201, 201, 400]
    assert business_central.count(company, "timeRegistrationEntries") == 2
    assert business_central.count(company, "purchaseInvoices") == 1
    assert business_central.count(company, "purchaseInvoiceLines") == 2


def test_batch_operations_may_read_patch_and_use_absolute_urls(business_central, bc_api, company):
    created = bc_api.post(f"companies({company})/timeRegistrationEntries", json=_entry()).json()
    member = f"companies({company})/timeRegistrationEntries({created['id']})"

    response = bc_api.post(
        "$batch",
        json={
            "requests": [
                {"method": "GET", "id": "read", "url": f"{business_central.api_url}/{member}"},
                {
                    "method": "PATCH",
                    "id": "edit",
                    "url": member,
                    "headers": {"If-Match": "*"},
                    "body": {"quantity": 2},
                },
                {"method": "PATCH", "id": "no-etag", "url": member, "body": {"quantity": 3}},
                {"method": "GET", "id": "nowhere", "url": f"companies({company})/expenseReports"},
                {"method": "POST", "id": "nested", "url": "$batch", "body": {"requests": []}},
            ]
        },
    )

    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["read"]["status"] == 200 and by_id["read"]["body"]["quantity"] == 7.5
    assert by_id["edit"]["status"] == 200 and by_id["edit"]["body"]["quantity"] == 2
    assert by_id["no-etag"]["status"] == 400 and by_id["nowhere"]["status"] == 404
    assert by_id["nested"]["status"] == 404


def test_a_malformed_batch_is_a_400(bc_api):
    assert bc_api.post("$batch", json={"operations": []}).status_code == 400
    assert (
        bc_api.post("$batch", content=b"not json", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


# ------------------------------------------------------------------------------------------- the sliding window
def _windowed(limit: int = 60, window: float = 5.0):
    now = [1_000.0]
    sandbox = BusinessCentralSandbox(
        concurrency_limit=None, rate_limit=limit, rate_window=window, clock=lambda: now[0]
    )
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    return sandbox, sandbox.client(sandbox.api_url + "/", headers=headers), now


def test_requests_over_the_sliding_window_get_429_with_retry_after_until_it_slides():
    sandbox, api, now = _windowed(limit=60, window=5.0)
    company = sandbox.company("PS Hub UK Ltd")
    statuses = []
    for _ in range(60):
        statuses.append(api.get("companies").status_code)
        now[0] += 0.05  # 60 requests over 3 s
    refused = api.get("companies")
    now[0] = 1_000.0 + 5.0 + 0.01  # the first request left the window
    admitted = api.get(f"companies({company})/employees")
    refused_again = api.get("companies")

    assert statuses == [200] * 60
    assert refused.status_code == 429 and _error(refused)["code"] == "Application_TooManyRequests"
    assert refused.headers["Retry-After"] == "3"
    assert admitted.status_code == 200 and refused_again.status_code == 429
    assert sandbox.call_count(fault="rate_limit") == 2 and sandbox.stats()["faults_injected"] == {
        "rate_limit": 2
    }
    assert sandbox.requests_in_window() == 60


def test_a_batch_counts_once_against_the_window():
    sandbox, api, _ = _windowed(limit=3)
    company = sandbox.company("PS Hub UK Ltd")
    sandbox.seed_employee(company, "E0001")
    sandbox.seed_project(company, "J1001", tasks=("100",))
    batch = {"requests": [_batch_request(company, n) for n in range(100)]}

    statuses = [api.post("$batch", json=batch).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert sandbox.count(company, "timeRegistrationEntries") == 300 and len(sandbox.operations()) == 300


def test_each_principal_has_its_own_window():
    sandbox, api, _ = _windowed(limit=2)
    other = sandbox.client(
        sandbox.api_url + "/", headers={"Authorization": f"Bearer {sandbox.issue_token('other-app')}"}
    )

    mine = [api.get("companies").status_code for _ in range(3)]
    theirs = [other.get("companies").status_code for _ in range(2)]

    assert mine == [200, 200, 429] and theirs == [200, 200]


def test_the_window_and_retry_after_can_be_turned_off():
    sandbox = BusinessCentralSandbox(concurrency_limit=None, rate_limit=None)
    quiet = BusinessCentralSandbox(concurrency_limit=None, rate_limit=1, retry_after=False)
    with sandbox.client(
        sandbox.api_url + "/", headers={"Authorization": f"Bearer {sandbox.issue_token()}"}
    ) as api:
        unlimited = {api.get("companies").status_code for _ in range(50)}
    with quiet.client(quiet.api_url + "/", headers={"Authorization": f"Bearer {quiet.issue_token()}"}) as api:
        api.get("companies")
        refused = api.get("companies")

    assert unlimited == {200}
    assert refused.status_code == 429 and "Retry-After" not in refused.headers


def test_injected_throttling_and_errors_use_bcs_shapes(business_central, bc_api):
    business_central.set_faults(Faults(throttle_rate=1.0))
    throttled = bc_api.get("companies")
    business_central.set_faults(Faults(error_rate=1.0, error_statuses=(500,)))
    failed = bc_api.get("companies")

    assert throttled.status_code == 429 and _error(throttled)["code"] == "Application_TooManyRequests"
    assert throttled.headers["Retry-After"] == "1"
    assert failed.status_code == 500 and _error(failed)["code"] == "Internal_ServerError"


# ------------------------------------------------------------------------------------------- concurrency and queue
def _parallel(sandbox: BusinessCentralSandbox, count: int) -> list[int]:
    token = sandbox.issue_token()
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def call() -> None:
        with sandbox.client(sandbox.api_url + "/", headers={"Authorization": f"Bearer {token}"}) as api:
            barrier.wait()
            statuses.append(api.get("companies").status_code)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_requests_over_the_concurrency_limit_wait_in_the_queue():
    sandbox = BusinessCentralSandbox(concurrency_limit=2, queue_limit=4, faults=Faults(latency=0.15))

    started = time.perf_counter()
    statuses = _parallel(sandbox, 6)
    elapsed = time.perf_counter() - started

    assert statuses == [200] * 6
    assert sandbox.peak_in_flight == 2 and sandbox.peak_waiting == 4 and sandbox.peak_connections == 6
    assert elapsed >= 0.4  # three rounds of two


def test_a_request_beyond_the_queue_is_answered_429_at_once():
    sandbox = BusinessCentralSandbox(concurrency_limit=1, queue_limit=1, faults=Faults(latency=0.2))

    statuses = _parallel(sandbox, 3)

    assert statuses == [200, 200, 429]
    assert sandbox.call_count(fault="concurrency") == 1 and sandbox.peak_in_flight == 1


# ------------------------------------------------------------------------------------------- seeding and inspection
def test_seed_payload_state_and_reset(business_central):
    created = business_central.seed(
        {
            "companies": [
                {
                    "name": "PS Hub GmbH",
                    "employees": [{"number": "D001", "name": "Lena Berg"}],
                    "projects": [{"number": "P-1", "tasks": ["10", "20"]}],
                    "vendors": [{"number": "V-D001"}],
                }
            ]
        }
    )

    [company] = created["companies"]
    state = business_central.state()
    assert [c["name"] for c in state["companies"]] == ["PS Hub UK Ltd", "PS Hub GmbH"]
    gmbh = state["companies"][1]
    assert gmbh["id"] == company["id"] and gmbh["projects"][0]["tasks"] == ["10", "20"]
    assert [a["number"] for a in gmbh["accounts"]][:2] == ["64100", "64200"]
    business_central.reset()
    assert [c["name"] for c in business_central.state()["companies"]] == ["PS Hub UK Ltd"]


def test_ids_are_deterministic_per_seed():
    first = BusinessCentralSandbox(id_seed=3).company("PS Hub UK Ltd")
    again = BusinessCentralSandbox(id_seed=3).company("PS Hub UK Ltd")
    other = BusinessCentralSandbox(id_seed=4).company("PS Hub UK Ltd")

    assert first == again != other


def test_the_odata_filter_subset():
    row = {"name": "O'Brien", "amount": 12.5, "posted": True, "id": "9F0C1E22-0000-0000-0000-000000000001"}

    assert odata_filter("name eq 'O''Brien' and amount gt 10")(row)
    assert odata_filter("amount lt 10 or posted eq true")(row)
    assert odata_filter("id eq 9f0c1e22-0000-0000-0000-000000000001")(row)
    assert not odata_filter("amount ne 12.5")(row)
    with pytest.raises(ValueError):
        odata_filter("amount between 1 and 2")
    with pytest.raises(KeyError):
        odata_filter("colour eq 'red'")(row)


def test_a_draft_invoice_takes_more_lines_and_header_changes(business_central, bc_api, company):
    business_central.seed_vendor(company, "V-E0002", "Ann Analyst")
    invoice = bc_api.post(f"companies({company})/purchaseInvoices", json=_invoice()).json()
    base = f"companies({company})/purchaseInvoices({invoice['id']})"

    added = bc_api.post(
        f"{base}/purchaseInvoiceLines",
        json={
            "lineType": "Account",
            "lineObjectNumber": "64300",
            "quantity": 1,
            "unitCost": 80,
            "taxCode": "REDUCED",
        },
    )
    moved = bc_api.patch(
        base, json={"vendorNumber": "V-E0002", "dueDate": "2025-02-28"}, headers={"If-Match": "*"}
    )

    assert (
        added.status_code == 201
        and added.json()["sequence"] == 30000
        and added.json()["totalTaxAmount"] == 4.0
    )
    body = moved.json()
    assert (body["vendorName"], body["dueDate"], body["totalAmountIncludingTax"]) == (
        "Ann Analyst",
        "2025-02-28",
        279.0,
    )
