"""NetSuite sandbox: time bills, expense reports, accounting periods (closing at runtime), queries, the pool."""

import threading
import time

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.netsuite import NetSuiteSandbox

pytestmark = pytest.mark.disable_socket

RECORDS = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    return body["o:errorDetails"][0]


@pytest.fixture
def account(netsuite) -> dict[str, str]:
    customer = netsuite.seed_customer("SF-1", companyName="Globex")
    job = netsuite.seed_job("OPP-1", customer, companyName="ERP rollout")
    other_job = netsuite.seed_job("OPP-2", customer, companyName="Support")
    return {
        "customer": customer,
        "job": job,
        "other_job": other_job,
        "employee": netsuite.seed_employee("EMP-7", "Pat Smith"),
        "task": netsuite.seed_project_task("TASK-1", job, "Design"),
        "other_task": netsuite.seed_project_task("TASK-2", other_job, "Helpdesk"),
    }


def _timebill(account: dict[str, str], **fields) -> dict:
    return {
        "employee": {"id": account["employee"]},
        "tranDate": "2025-01-15",
        "hours": 7.5,
        "customer": {"id": account["job"]},
        "caseTaskEvent": {"id": account["task"]},
        "isBillable": True,
        "item": {"id": "10"},
        "memo": "pshub:TE-1:v1",
        **fields,
    }


def _report(account: dict[str, str], lines: list[dict] | None = None, **fields) -> dict:
    line = {"expenseDate": "2025-01-14", "category": {"id": "1"}, "amount": 120.5, "taxCode": {"id": "5"}}
    return {
        "entity": {"id": account["employee"]},
        "tranDate": "2025-01-15",
        "memo": "pshub:EXP-1",
        "expense": {"items": lines if lines is not None else [{**line, "receipt": True}]},
        **fields,
    }


# ------------------------------------------------------------------------------------------- time bills
def test_a_time_bill_is_upserted_by_external_id_and_reads_back_with_its_references(
    netsuite, erp_api, account
):
    first = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, hours="7:30"))
    second = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, memo="pshub:TE-1:v2"))

    [bill] = netsuite.records("timebill")
    body = erp_api.get(f"{RECORDS}/timebill/eid:TE-1").json()
    assert first.status_code == second.status_code == 204
    assert (
        first.headers["Location"]
        == second.headers["Location"]
        == f"{netsuite.base_url}{RECORDS}/timebill/{bill['id']}"
    )
    assert (bill["hours"], bill["memo"], bill["isBillable"]) == (7.5, "pshub:TE-1:v2", True)
    assert (
        body["employee"]["refName"] == "Pat Smith" and body["customer"]["refName"] == "Globex : ERP rollout"
    )
    assert body["caseTaskEvent"]["refName"] == "Design" and body["item"]["refName"] == "Consulting Services"
    assert body["subsidiary"] == {
        "links": [{"rel": "self", "href": f"{netsuite.base_url}{RECORDS}/subsidiary/1"}],
        "id": "1",
        "refName": "Parent Company",
    }


def test_references_can_be_given_by_external_id(netsuite, erp_api, account):
    response = erp_api.put(
        f"{RECORDS}/timebill/eid:TE-1",
        json=_timebill(
            account,
            employee={"externalId": "EMP-7"},
            customer={"externalId": "OPP-1"},
            caseTaskEvent={"externalId": "TASK-1"},
        ),
    )

    assert response.status_code == 204
    assert netsuite.by_external_id("timebill", "TE-1")["employee"] == {"id": account["employee"]}


def test_a_time_bill_without_its_mandatory_fields_is_a_user_error_naming_them(erp_api):
    response = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json={"memo": "nothing else"})

    detail = _error(response)
    assert response.status_code == 400 and detail["o:errorCode"] == "USER_ERROR"
    assert detail["detail"].endswith("Please enter value(s) for: Employee, Date, Duration.")


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"employee": {"id": "999"}}, "INVALID_CONTENT", "employee"),
        ({"hours": "seven"}, "INVALID_CONTENT", "hours"),
        ({"hours": -1}, "INVALID_CONTENT", "hours"),
        ({"tranDate": "15/01/2025"}, "INVALID_CONTENT", "tranDate"),
        ({"item": {"id": "77"}}, "INVALID_CONTENT", "item"),
        ({"billable": True}, "INVALID_CONTENT", "billable"),
        ({"isBillable": "yes"}, "INVALID_CONTENT", "isBillable"),
    ],
)
def test_invalid_time_bill_values_are_invalid_content_with_their_path(
    netsuite, erp_api, account, change, code, path
):
    response = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, **change))

    detail = _error(response)
    assert (response.status_code, detail["o:errorCode"], detail["o:errorPath"]) == (400, code, path)
    assert netsuite.records("timebill") == []


def test_a_task_must_belong_to_the_time_bills_project(erp_api, account):
    response = erp_api.put(
        f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, caseTaskEvent={"id": account["other_task"]})
    )

    assert _error(response)["o:errorPath"] == "caseTaskEvent"


def test_billable_time_needs_a_customer_and_a_service_item(erp_api, account):
    body = _timebill(account)
    del body["item"], body["customer"], body["caseTaskEvent"]

    response = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=body)

    detail = _error(response)
    assert detail["o:errorCode"] == "USER_ERROR" and "Customer, Service Item" in detail["detail"]


def test_custom_fields_are_accepted_as_given(netsuite, erp_api, account):
    response = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, custcol_pshub_version=3))

    assert (
        response.status_code == 204
        and netsuite.by_external_id("timebill", "TE-1")["custcol_pshub_version"] == 3
    )


# ------------------------------------------------------------------------------------------- expense reports
def test_an_expense_report_is_upserted_with_its_expense_lines(netsuite, erp_api, account):
    response = erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))

    plain = erp_api.get(f"{RECORDS}/expensereport/eid:EXP-1").json()
    expanded = erp_api.get(f"{RECORDS}/expensereport/eid:EXP-1", params={"expandSubResources": "true"}).json()
    [line] = expanded["expense"]["items"]
    assert response.status_code == 204
    assert plain["expense"] == {"links": [{"rel": "self", "href": f"{plain['links'][0]['href']}/expense"}]}
    assert (line["line"], line["amount"], line["receipt"]) == (1, 120.5, True)
    assert line["category"]["refName"] == "Travel" and line["taxCode"]["refName"] == "S-GB"
    assert plain["entity"]["refName"] == "Pat Smith" and plain["currency"]["refName"] == "USD"
    assert plain["tranId"].startswith("ER")


def test_an_update_appends_expense_lines_unless_the_sublist_is_replaced(netsuite, erp_api, account):
    erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))
    erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))
    appended = len(netsuite.by_external_id("expensereport", "EXP-1")["expense"]["items"])
    erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1?replace=expense", json=_report(account))
    replaced = netsuite.by_external_id("expensereport", "EXP-1")["expense"]["items"]
    erp_api.put(
        f"{RECORDS}/expensereport/eid:EXP-1", json={"expense": {"items": [{"line": 1, "amount": 99.0}]}}
    )
    keyed = netsuite.by_external_id("expensereport", "EXP-1")["expense"]["items"]

    assert appended == 2 and len(replaced) == 1
    assert [(line["line"], line["amount"]) for line in keyed] == [(1, 99.0)]


@pytest.mark.parametrize(
    ("lines", "code", "path"),
    [
        ([], "USER_ERROR", None),
        ([{"expenseDate": "2025-01-14", "amount": 10}], "USER_ERROR", None),
        (
            [{"expenseDate": "2025-01-14", "category": {"id": "1"}, "amount": "ten"}],
            "INVALID_CONTENT",
            "expense.items[0].amount",
        ),
        (
            [{"expenseDate": "2025-01-14", "category": {"id": "1"}, "amount": 10, "taxCode": {"id": "404"}}],
            "INVALID_CONTENT",
            "expense.items[0].taxCode",
        ),
        (
            [{"expenseDate": "2025-01-14", "category": {"id": "1"}, "amount": 10, "vat": 2}],
            "INVALID_CONTENT",
            "expense.items[0].vat",
        ),
    ],
)
def test_invalid_expense_lines_are_refused(netsuite, erp_api, account, lines, code, path):
    response = erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account, lines=lines))

    detail = _error(response)
    assert (response.status_code, detail["o:errorCode"], detail.get("o:errorPath")) == (400, code, path)
    assert netsuite.records("expensereport") == []


def test_an_expense_report_without_lines_says_so_like_netsuite(erp_api, account):
    response = erp_api.put(
        f"{RECORDS}/expensereport/eid:EXP-1",
        json={"entity": {"id": account["employee"]}, "tranDate": "2025-01-15"},
    )

    assert "You must enter at least one line item for this transaction." in _error(response)["detail"]


# ------------------------------------------------------------------------------------------- accounting periods
def test_without_accounting_periods_any_date_posts(erp_api, account):
    assert (
        erp_api.put(
            f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, tranDate="1999-12-31")
        ).status_code
        == 204
    )


def test_a_posting_into_a_closed_period_is_refused_until_the_period_reopens(netsuite, erp_api, account):
    netsuite.seed_accounting_periods("2025-01", 3)
    netsuite.close_period("Jan 2025")

    closed = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account))
    report = erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))
    netsuite.reopen_period("Jan 2025")
    reopened = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account))

    detail = _error(closed)
    assert closed.status_code == 400
    assert (detail["o:errorCode"], detail["o:errorPath"]) == ("USER_ERROR", "tranDate")
    assert "Jan 2025 is closed" in detail["detail"]
    assert report.status_code == 400 and "closed" in _error(report)["detail"]
    assert reopened.status_code == 204 and netsuite.count("timebill") == 1


def test_a_period_closing_mid_run_refuses_the_next_posting_and_edits_of_what_posted(
    netsuite, erp_api, account
):
    netsuite.seed_accounting_periods("2025-01", 2)

    before = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account))
    netsuite.close_period("Jan 2025")
    after = erp_api.put(f"{RECORDS}/timebill/eid:TE-2", json=_timebill(account))
    edit = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json={"memo": "late edit"})

    assert before.status_code == 204 and after.status_code == 400 and edit.status_code == 400


def test_the_next_open_period_can_be_named_while_the_original_date_is_kept(netsuite, erp_api, account):
    jan, feb = netsuite.seed_accounting_periods("2025-01", 2)
    netsuite.close_period("Jan 2025")

    response = erp_api.put(
        f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account, postingPeriod={"id": feb})
    )
    closed_named = erp_api.put(
        f"{RECORDS}/expensereport/eid:EXP-2", json=_report(account, postingPeriod={"id": jan})
    )

    report = netsuite.by_external_id("expensereport", "EXP-1")
    assert response.status_code == 204
    assert (report["tranDate"], report["postingPeriod"]) == ("2025-01-15", {"id": feb})
    assert closed_named.status_code == 400


def test_a_date_outside_every_period_is_refused(netsuite, erp_api, account):
    netsuite.seed_accounting_periods("2025-01", 1)

    response = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account, tranDate="2025-03-03"))

    assert "not within an accounting period" in _error(response)["detail"]


def test_an_ap_locked_period_refuses_expense_reports_but_not_time_unless_overridden(
    account, netsuite, erp_api
):
    netsuite.seed_accounting_periods("2025-01", 1)
    netsuite.lock_period("Jan 2025", ap=True)

    report = erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))
    time_bill = erp_api.put(f"{RECORDS}/timebill/eid:TE-1", json=_timebill(account))
    netsuite.override_period_restrictions = True
    overridden = erp_api.put(f"{RECORDS}/expensereport/eid:EXP-1", json=_report(account))

    assert report.status_code == 400 and "locked" in _error(report)["detail"]
    assert time_bill.status_code == 204 and overridden.status_code == 204


def test_the_closed_period_error_code_is_configurable():
    netsuite = NetSuiteSandbox(concurrency_limit=None, closed_period_code="CLOSED_TRAN_PRD")
    netsuite.seed_accounting_periods("2025-01", 1)
    netsuite.close_period("Jan 2025")
    employee = netsuite.seed_employee("EMP-1")

    with pytest.raises(ValueError, match="closed"):
        netsuite.seed_timebill("TE-1", employee={"id": employee}, tranDate="2025-01-02", hours=1)
    with netsuite.client(
        netsuite.base_url, headers={"Authorization": f"Bearer {netsuite.issue_token()}"}
    ) as api:
        response = api.put(
            f"{RECORDS}/timebill/eid:TE-1",
            json={"employee": {"id": employee}, "tranDate": "2025-01-02", "hours": 1},
        )

    assert _error(response)["o:errorCode"] == "CLOSED_TRAN_PRD"


def test_accounting_periods_are_listed_with_q_filters_and_read_by_id(netsuite, erp_api):
    ids = netsuite.seed_accounting_periods("2024-11", 4)
    netsuite.close_period("Nov 2024")
    netsuite.close_period("Dec 2024")

    open_periods = erp_api.get(f"{RECORDS}/accountingperiod", params={"q": "closed IS false"}).json()
    from_2025 = erp_api.get(
        f"{RECORDS}/accountingperiod", params={"q": 'startDate ON_OR_AFTER "1/1/2025" AND closed IS false'}
    ).json()
    paged = erp_api.get(f"{RECORDS}/accountingperiod", params={"limit": 3, "offset": 0}).json()
    one = erp_api.get(f"{RECORDS}/accountingperiod/{ids[0]}").json()
    bad = erp_api.get(f"{RECORDS}/accountingperiod", params={"q": "colour IS blue"})

    assert [i["id"] for i in open_periods["items"]] == ids[2:]
    assert [i["id"] for i in from_2025["items"]] == ids[2:]
    assert (paged["count"], paged["hasMore"], paged["totalResults"]) == (3, True, 4)
    assert (one["periodName"], one["closed"], one["allLocked"], one["startDate"]) == (
        "Nov 2024",
        True,
        True,
        "2024-11-01",
    )
    assert bad.status_code == 400 and _error(bad)["o:errorCode"] == "INVALID_PARAMETER"


def test_accounting_periods_cannot_be_written_through_the_api(netsuite, erp_api):
    response = erp_api.put(f"{RECORDS}/accountingperiod/eid:P1", json={"periodName": "Mine"})

    assert response.status_code == 405 and netsuite.accounting_periods() == []


def test_suiteql_reads_the_period_calendar_as_suiteql_renders_it(netsuite, erp_api):
    netsuite.seed_accounting_periods("2025-01", 3)
    netsuite.close_period("Jan 2025")
    query = (
        "SELECT id, periodname, startdate, enddate, closed, aplocked FROM accountingperiod "
        "WHERE isquarter = 'F' AND startdate >= TO_DATE('2025-01-01', 'YYYY-MM-DD') ORDER BY startdate DESC"
    )

    response = erp_api.post(SUITEQL, json={"q": query}, headers={"Prefer": "transient"})
    without_header = erp_api.post(SUITEQL, json={"q": query})
    unsupported = erp_api.post(
        SUITEQL, json={"q": "DELETE FROM accountingperiod"}, headers={"Prefer": "transient"}
    )

    body = response.json()
    assert response.status_code == 200 and body["totalResults"] == 3 and body["hasMore"] is False
    assert [row["periodname"] for row in body["items"]] == ["Mar 2025", "Feb 2025", "Jan 2025"]
    assert body["items"][-1] == {
        "links": [],
        "id": "1",
        "periodname": "Jan 2025",
        "startdate": "1/1/2025",
        "enddate": "1/31/2025",
        "closed": "T",
        "aplocked": "T",
    }
    assert without_header.status_code == 400 and unsupported.status_code == 400
    assert _error(unsupported)["o:errorCode"] == "INVALID_PARAMETER"


def test_suiteql_pages_with_limit_and_offset(netsuite, erp_api):
    netsuite.seed_accounting_periods("2024-01", 24)

    body = erp_api.post(
        SUITEQL,
        params={"limit": 10, "offset": 20},
        json={"q": "SELECT id FROM accountingperiod ORDER BY id"},
        headers={"Prefer": "transient"},
    ).json()

    assert (body["count"], body["offset"], body["hasMore"], body["totalResults"]) == (4, 20, False, 24)


# ------------------------------------------------------------------------------------------- the account-wide pool
def test_the_concurrency_pool_governs_time_bills_and_suiteql_like_every_call():
    netsuite = NetSuiteSandbox(concurrency_limit=1, faults=Faults(latency=0.2))
    employee = netsuite.seed_employee("EMP-1")
    token = netsuite.issue_token()
    headers = {"Authorization": f"Bearer {token}"}

    def slow_upsert() -> None:
        with netsuite.client(netsuite.base_url, headers=headers) as api:
            api.put(
                f"{RECORDS}/timebill/eid:TE-1",
                json={"employee": {"id": employee}, "tranDate": "2025-01-02", "hours": 1},
            )

    worker = threading.Thread(target=slow_upsert, daemon=True)
    worker.start()
    for _ in range(2_000):
        if netsuite.in_flight:
            break
        time.sleep(0.001)
    with netsuite.client(netsuite.base_url, headers=headers) as api:
        refused_write = api.put(
            f"{RECORDS}/timebill/eid:TE-2",
            json={"employee": {"id": employee}, "tranDate": "2025-01-02", "hours": 1},
        )
        refused_query = api.post(
            SUITEQL, json={"q": "SELECT id FROM accountingperiod"}, headers={"Prefer": "transient"}
        )
    worker.join()

    for refused in (refused_write, refused_query):
        assert refused.status_code == 429 and _error(refused)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert netsuite.peak_in_flight == 1 and netsuite.count("timebill") == 1
    assert netsuite.call_count(fault="concurrency") == 2


def test_inspection_helpers_count_records_by_type(netsuite, account):
    netsuite.seed_timebill("TE-1", employee={"id": account["employee"]}, tranDate="2025-01-02", hours=2)
    netsuite.seed_expense_report(
        "EXP-1",
        entity={"id": account["employee"]},
        tranDate="2025-01-02",
        expense={"items": [{"expenseDate": "2025-01-02", "category": {"id": "2"}, "amount": 15}]},
    )

    counts = netsuite.counts()
    assert (counts["timebill"], counts["expensereport"], counts["employee"], counts["projecttask"]) == (
        1,
        1,
        1,
        2,
    )
    assert netsuite.count("job") == 2
    assert [r["externalId"] for r in netsuite.state()["records"]["timebill"]] == ["TE-1"]


def test_the_seed_payload_builds_employees_tasks_periods_and_transactions(netsuite):
    created = netsuite.seed(
        {
            "customer": [{"externalId": "SF-1", "companyName": "Initech", "subsidiary": {"id": "1"}}],
            "employee": [{"externalId": "EMP-1", "name": "Ann Analyst"}],
            "accountingperiods": {"first_month": "2025-01", "count": 2},
        }
    )
    netsuite.seed_job("OPP-1", created["customer"][0])
    more = netsuite.seed(
        {"projecttask": [{"externalId": "T-1", "job": netsuite.by_external_id("job", "OPP-1")["id"]}]}
    )

    assert len(created["accountingperiod"]) == 2 and len(created["employee"]) == 1
    assert len(more["projecttask"]) == 1
    assert netsuite.period_for("2025-02-14")["periodName"] == "Feb 2025"
