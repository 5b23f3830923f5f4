"""Workday sandbox: OAuth refresh-token grant, Staffing `workers` paging, the RaaS worker-changes report in the
tenant's time zone, effective-dated changes, throttling and a 10,000-worker tenant (in-process only)."""

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from local.sandboxes.base import Faults
from local.sandboxes.workday import WorkdaySandbox

pytestmark = pytest.mark.disable_socket

T0 = datetime(2025, 1, 15, 18, 0, 0, tzinfo=UTC)  # 10:00 in Los Angeles (PST, -08:00)
REFRESH = "pshub-isu-refresh-token"


@pytest.fixture
def now() -> list[datetime]:
    """A controllable clock: `now[0]` is the current time."""
    return [T0]


@pytest.fixture
def workday(now) -> WorkdaySandbox:
    return WorkdaySandbox(clock=lambda: now[0])


class _FreshToken(httpx.Auth):
    """A client that always holds a live access token (tests move the clock past the 60-minute lifetime)."""

    def __init__(self, workday: WorkdaySandbox) -> None:
        self.workday = workday

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.workday.issue_token()}"
        yield request


@pytest.fixture
def hcm(workday) -> Iterator[httpx.Client]:
    with workday.client(workday.base_url, auth=_FreshToken(workday)) as client:
        yield client


def _report(hcm, workday, **prompts) -> list[dict]:
    response = hcm.get(workday.report_path, params={"format": "json", **prompts})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"Report_Entry"}
    return response.json()["Report_Entry"]


def _row(rows: list[dict], employee_id: str) -> dict:
    [row] = [r for r in rows if r["Employee_ID"] == employee_id]
    return row


# ------------------------------------------------------------------------------------------- OAuth
def test_the_refresh_token_grant_answers_a_bearer_token_that_opens_the_api(workday):
    with workday.client(workday.base_url) as api:
        response = api.post(
            f"/ccx/oauth2/{workday.tenant}/token",
            data={"grant_type": "refresh_token", "refresh_token": REFRESH},
            auth=(workday.client_id, workday.client_secret),
        )
        body = response.json()
        workers = api.get(workday.workers_path(), headers={"Authorization": f"Bearer {body['access_token']}"})

    assert response.status_code == 200
    assert (body["token_type"], body["expires_in"], body["refresh_token"]) == ("Bearer", 3600, REFRESH)
    assert workers.status_code == 200


def test_client_credentials_may_come_in_the_form_instead_of_basic_auth(workday):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": workday.client_id,
        "client_secret": workday.client_secret,
    }
    with workday.client(workday.base_url) as api:
        response = api.post(workday.token_path, data=form)

    assert response.status_code == 200 and response.json()["access_token"]


@pytest.mark.parametrize(
    ("form", "basic_secret", "status", "error"),
    [
        ({"grant_type": "refresh_token", "refresh_token": REFRESH}, "wrong", 401, "invalid_client"),
        (
            {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": "x", "client_secret": "y"},
            None,
            400,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, "right", 400, "unsupported_grant_type"),
        ({"grant_type": "refresh_token", "refresh_token": "stolen"}, "right", 400, "invalid_grant"),
        ({"refresh_token": REFRESH}, "right", 400, "invalid_request"),
    ],
)
def test_bad_token_requests_get_oauth_errors(workday, form, basic_secret, status, error):
    auth = None
    if basic_secret is not None:
        auth = (workday.client_id, workday.client_secret if basic_secret == "right" else basic_secret)
    with workday.client(workday.base_url) as api:
        response = api.post(workday.token_path, data=form, auth=auth)

    body = response.json()
    assert (response.status_code, body["error"]) == (status, error)
    assert body["error_description"]


def test_a_revoked_refresh_token_no_longer_gets_access_tokens(workday):
    workday.revoke_refresh_token(REFRESH)
    with workday.client(workday.base_url) as api:
        response = api.post(
            workday.token_path,
            data={"grant_type": "refresh_token", "refresh_token": REFRESH},
            auth=(workday.client_id, workday.client_secret),
        )

    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_api_calls_without_a_valid_bearer_token_are_401(workday, now):
    token = workday.issue_token()
    now[0] = T0.replace(hour=19, second=1)  # one hour and a second later: the 60-minute token has expired
    with workday.client(workday.base_url) as api:
        missing = api.get(workday.workers_path())
        unknown = api.get(
            workday.report_path, params={"format": "json"}, headers={"Authorization": "Bearer x"}
        )
        expired = api.get(workday.workers_path(), headers={"Authorization": f"Bearer {token}"})

    for response in (missing, unknown, expired):
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_tenant_is_not_found(workday, hcm):
    response = hcm.get("/ccx/api/staffing/v6/other_tenant/workers")

    assert response.status_code == 404


# ------------------------------------------------------------------------------------------- workers (REST)
def test_workers_page_with_limit_and_offset_and_report_the_total(workday, hcm):
    seeded = workday.seed_workers(45)

    pages = [hcm.get(workday.workers_path(), params={"limit": 20, "offset": o}).json() for o in (0, 20, 40)]
    default = hcm.get(workday.workers_path()).json()

    assert [p["total"] for p in pages] == [45, 45, 45]
    assert [len(p["data"]) for p in pages] == [20, 20, 5]
    assert [w["workerId"] for p in pages for w in p["data"]] == seeded
    assert len(default["data"]) == 20  # Workday's default limit


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_paging_parameters_are_refused_with_workdays_error_model(workday, hcm, params, field):
    response = hcm.get(workday.workers_path(), params=params)

    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"]


def test_a_limit_over_100_can_be_capped_instead_of_refused(now):
    workday = WorkdaySandbox(clock=lambda: now[0], limit_over_max="cap")
    workday.seed_workers(150)
    headers = {"Authorization": f"Bearer {workday.issue_token()}"}

    body = (
        workday.client(workday.base_url, headers=headers)
        .get(workday.workers_path(), params={"limit": 500})
        .json()
    )

    assert (body["total"], len(body["data"])) == (150, 100)


def test_only_the_staffing_service_and_its_documented_versions_are_served(workday, hcm):
    workday.seed_workers(1)

    v7 = hcm.get(workday.workers_path("v7"))
    v99 = hcm.get(workday.workers_path("v99"))
    other = hcm.get(f"/ccx/api/payroll/v6/{workday.tenant}/workers")

    assert v7.status_code == 200 and v7.json()["total"] == 1
    assert (v99.status_code, other.status_code) == (404, 404)


def test_one_worker_by_wid_or_by_employee_id_has_the_v6_worker_shape(workday, hcm):
    employee_id = workday.hire(
        legal_entity="PSHUB_UK",
        cost_centre="CC200",
        department="Delivery",
        hire_date="2024-03-01",
        name="Pat Jones",
        business_title="Senior Consultant",
    )
    wid = workday.wid(employee_id)

    by_wid = hcm.get(f"{workday.workers_path()}/{wid}").json()
    by_reference = hcm.get(f"{workday.workers_path()}/Employee_ID={employee_id}").json()
    wrong_kind = hcm.get(f"{workday.workers_path()}/Contingent_Worker_ID={employee_id}")
    unknown = hcm.get(f"{workday.workers_path()}/{'0' * 32}")

    assert by_wid == by_reference
    assert (by_wid["id"], by_wid["descriptor"], by_wid["workerId"]) == (wid, "Pat Jones", employee_id)
    assert len(wid) == 32 and by_wid["workerType"]["descriptor"] == "Employee"
    job = by_wid["primaryJob"]
    assert job["businessTitle"] == "Senior Consultant" and job["jobType"] == {"descriptor": "Primary"}
    assert job["supervisoryOrganization"]["descriptor"] == "Delivery (Pat Jones)"
    assert job["location"]["country"] == {"descriptor": "United Kingdom"}
    assert not {"company", "costCenter", "hireDate", "costRates"} & set(by_wid)  # the report carries these
    assert (wrong_kind.status_code, unknown.status_code) == (404, 404)


def test_a_worker_leaves_the_workers_resource_the_day_after_the_termination_date(workday, hcm, now):
    leaver, stayer = workday.seed_workers(2)
    workday.terminate(leaver, "2025-01-15")  # today in Los Angeles: still working today

    today = hcm.get(workday.workers_path()).json()
    now[0] = T0.replace(day=16)
    tomorrow = hcm.get(workday.workers_path()).json()
    everyone = hcm.get(workday.workers_path(), params={"includeTerminatedWorkers": "true"}).json()

    assert today["total"] == 2
    assert [w["workerId"] for w in tomorrow["data"]] == [stayer] and tomorrow["total"] == 1
    assert everyone["total"] == 2


def test_search_matches_names_or_worker_ids(workday, hcm):
    workday.hire(
        legal_entity="PSHUB_US",
        cost_centre="CC100",
        department="Sales",
        hire_date="2024-01-01",
        name="Ada Lovelace",
    )
    grace = workday.hire(
        legal_entity="PSHUB_US",
        cost_centre="CC100",
        department="Sales",
        hire_date="2024-01-01",
        name="Grace Hopper",
    )

    found = hcm.get(workday.workers_path(), params={"search": "LOVELACE " + grace}).json()
    none = hcm.get(workday.workers_path(), params={"search": "turing"}).json()

    assert sorted(w["descriptor"] for w in found["data"]) == ["Ada Lovelace", "Grace Hopper"]
    assert none == {"total": 0, "data": []}


# ------------------------------------------------------------------------------------------- RaaS report
def test_the_report_with_changed_since_returns_only_workers_changed_since(workday, hcm, now):
    first, second, third = workday.seed_workers(3)
    now[0] = T0.replace(hour=20)  # 12:00 in Los Angeles
    workday.set_skills(second, ["Python", "SQL"])

    changed = _report(hcm, workday, Changed_Since="2025-01-15T11:00:00-08:00")
    everyone = _report(hcm, workday)

    assert [r["Employee_ID"] for r in changed] == [second]
    assert changed[0]["Skills"] == "Python; SQL"  # a multi-instance field renders as one "; "-joined string
    assert [r["Employee_ID"] for r in everyone] == [first, second, third]


def test_report_moments_are_rendered_in_the_tenants_time_zone_with_its_offset(now):
    summer = [datetime(2025, 7, 1, 18, 0, 0, tzinfo=UTC)]
    winter = WorkdaySandbox(clock=lambda: now[0])
    london = WorkdaySandbox(clock=lambda: summer[0], time_zone="Europe/London")
    winter.seed_workers(1)
    london.seed_workers(1)

    def last_updated(workday):
        headers = {"Authorization": f"Bearer {workday.issue_token()}"}
        with workday.client(workday.base_url, headers=headers) as client:
            return _report(client, workday)[0]["Last_Updated"]

    assert last_updated(winter) == "2025-01-15T10:00:00.000-08:00"
    assert last_updated(london) == "2025-07-01T19:00:00.000+01:00"


def test_changed_since_without_an_offset_is_read_in_the_tenants_time_zone(workday, hcm):
    [employee_id] = workday.seed_workers(1)  # changed at 10:00 Los Angeles time (18:00 UTC)

    before = _report(hcm, workday, Changed_Since="2025-01-15T09:59:00")
    after = _report(hcm, workday, Changed_Since="2025-01-15T10:01:00")
    same_day = _report(hcm, workday, Changed_Since="2025-01-15-08:00")  # Workday's date-with-offset form
    utc = _report(hcm, workday, Changed_Since="2025-01-15T18:00:00Z")  # inclusive

    assert [r["Employee_ID"] for r in before] == [employee_id]
    assert after == []
    assert len(same_day) == 1 and len(utc) == 1


def test_a_mid_month_cost_rate_change_closes_the_previous_rate_the_day_before(workday, hcm, now):
    [employee_id] = workday.seed_workers(1, cost_rate="120", hire_date="2024-06-03")
    now[0] = T0.replace(day=20)
    workday.change_cost_rate(employee_id, "135.50", "USD", "2025-02-15")

    [row] = _report(hcm, workday, Changed_Since="2025-01-16T00:00:00-08:00")

    assert row["Cost_Rates_group"] == [
        {"Amount": "120.00", "Currency": "USD", "Effective_Date": "2024-06-03", "End_Date": "2025-02-14"},
        {"Amount": "135.50", "Currency": "USD", "Effective_Date": "2025-02-15"},
    ]
    assert row["Last_Updated"] == "2025-01-20T10:00:00.000-08:00"  # stamped when the change was made


def test_a_newer_cost_rate_replaces_rates_that_start_on_or_after_it(workday):
    [employee_id] = workday.seed_workers(1, cost_rate=100, hire_date="2024-01-01")
    workday.change_cost_rate(employee_id, 110, "USD", "2025-03-01")
    workday.change_cost_rate(employee_id, 105, "USD", "2025-02-01")

    rates = workday.worker(employee_id)["cost_rates"]

    assert [(r["amount"], r["effective_from"], r["effective_to"]) for r in rates] == [
        ("100.00", "2024-01-01", "2025-01-31"),
        ("105.00", "2025-02-01", None),
    ]


def test_terminations_and_transfers_show_in_the_report_as_of_their_dates(workday, hcm, now):
    leaver, mover, untouched = workday.seed_workers(3, cost_centres=("CC100",))
    now[0] = T0.replace(day=16)
    workday.terminate(leaver, "2025-01-31")
    workday.transfer(
        mover, legal_entity="PSHUB_UK", cost_centre="CC300", effective="2025-02-01", country="GB"
    )

    changed = _report(hcm, workday, Changed_Since="2025-01-16T00:00:00-08:00")
    in_february = _report(
        hcm, workday, Changed_Since="2025-01-16T00:00:00-08:00", Effective_as_of_Date="2025-02-01"
    )

    assert [r["Employee_ID"] for r in changed] == [leaver, mover]
    assert _row(changed, leaver)["Termination_Date"] == "2025-01-31"
    today_view, february_view = _row(changed, mover), _row(in_february, mover)
    assert (
        today_view["Company_ID"],
        today_view["Cost_Center_ID"],
        today_view["Location_Country_ISO_Code"],
    ) == (
        "PSHUB_US",
        "CC100",
        "US",
    )
    assert (february_view["Company"], february_view["Cost_Center"], february_view["Location_Country"]) == (
        "PS Hub UK Ltd",
        "CC300 Sales",
        "United Kingdom",
    )
    assert "Termination_Date" not in _row(_report(hcm, workday), untouched)
    history = [
        (a["Effective_Date"], a["Company_ID"], a["Cost_Center_ID"], a["Location_Country_ISO_Code"])
        for a in today_view["Organization_Assignments_group"]
    ]
    assert history[-1] == ("2025-02-01", "PSHUB_UK", "CC300", "GB")  # the future-dated transfer, seen today
    assert history[0][1:] == ("PSHUB_US", "CC100", "US")


def test_the_report_row_carries_what_the_rest_worker_does_not(workday, hcm):
    manager, member = workday.seed_workers(
        2, worker_types=("Employee", "Contingent Worker"), departments=("Consulting",), weekly_hours="37.5"
    )

    rows = _report(hcm, workday)

    assert member.startswith("C")
    head, worker = _row(rows, manager), _row(rows, member)
    assert worker["Worker_Type"] == "Contingent Worker" and worker["Manager_Employee_ID"] == manager
    assert "Manager_Employee_ID" not in head  # the organization's manager has no manager inside it
    assert worker["Supervisory_Organization"] == f"Consulting ({head['Worker']})"
    assert (worker["Scheduled_Weekly_Hours"], worker["Working_Days"]) == (
        "37.5",
        "Monday; Tuesday; Wednesday; Thursday; Friday",
    )
    assert (worker["WID"], worker["Hire_Date"]) == (workday.wid(member), "2024-01-02")


def test_empty_report_fields_can_be_rendered_as_null(now):
    workday = WorkdaySandbox(clock=lambda: now[0], empty_report_fields="null")
    [employee_id] = workday.seed_workers(1)
    headers = {"Authorization": f"Bearer {workday.issue_token()}"}

    [row] = _report(workday.client(workday.base_url, headers=headers), workday)

    assert row["Employee_ID"] == employee_id and row["Termination_Date"] is None
    assert row["Cost_Rates_group"][0]["End_Date"] is None


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"format": "json", "Changed_Since": "yesterday"}, 400),
        ({"format": "json", "Changed_Sinse": "2025-01-01"}, 400),
        ({"format": "csv"}, 400),
        ({}, 400),
    ],
)
def test_bad_report_requests_are_refused(workday, hcm, params, status):
    response = hcm.get(workday.report_path, params=params)

    assert response.status_code == status and response.json()["error"]


def test_an_unknown_report_is_not_found(workday, hcm):
    response = hcm.get(
        f"/ccx/service/customreport2/{workday.tenant}/{workday.report_owner}/Other_Report",
        params={"format": "json"},
    )

    assert response.status_code == 404


# ------------------------------------------------------------------------------------------- throttling and faults
def test_an_injected_throttle_is_a_429_with_retry_after(workday, hcm):
    workday.set_faults(Faults(throttle_rate=1.0))

    response = hcm.get(workday.workers_path())

    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert workday.call_count(fault="throttle") == 1


def test_the_token_endpoint_is_not_throttled_by_api_faults(workday):
    workday.set_faults(Faults(throttle_rate=1.0))
    with workday.client(workday.base_url) as api:
        response = api.post(
            workday.token_path,
            data={"grant_type": "refresh_token", "refresh_token": REFRESH},
            auth=(workday.client_id, workday.client_secret),
        )

    assert response.status_code == 200


# ------------------------------------------------------------------------------------------- volume, seeding, state
def test_ten_thousand_seeded_workers_page_through_and_come_in_one_report(workday, hcm):
    seeded = workday.seed_workers(10_000, legal_entities=("PSHUB_US", "PSHUB_UK"))

    seen: list[str] = []
    offset, total = 0, None
    while total is None or offset < total:
        page = hcm.get(workday.workers_path(), params={"limit": 100, "offset": offset}).json()
        total = page["total"]
        seen += [w["workerId"] for w in page["data"]]
        offset += 100
    rows = _report(hcm, workday)

    assert total == 10_000 and seen == seeded and len(set(seen)) == 10_000
    assert workday.call_count("GET", "/workers") == 100
    assert len(rows) == 10_000 and {r["Company_ID"] for r in rows} == {"PSHUB_US", "PSHUB_UK"}


def test_seeding_is_deterministic(now):
    first, second = (WorkdaySandbox(clock=lambda: now[0]) for _ in range(2))

    ids = first.seed_workers(5, worker_types=("Employee", "Contingent Worker"))

    assert ids == second.seed_workers(5, worker_types=("Employee", "Contingent Worker"))
    assert ids == ["21001", "C10001", "21002", "C10002", "21003"]
    assert [first.wid(i) for i in ids] == [second.wid(i) for i in ids]


def test_state_and_the_seed_payload_serve_the_loopback_admin_surface(workday):
    created = workday.seed(
        {
            "companies": [{"id": "PSHUB_DE", "name": "PS Hub GmbH", "country": "DE", "currency": "EUR"}],
            "workers": {"count": 2, "legal_entities": ["PSHUB_DE"]},
            "terminations": [{"employee_id": "21001", "end_date": "2025-03-31"}],
        }
    )

    state = workday.state()

    assert created == {"employee_ids": ["21001", "21002"]}
    assert [w["termination_date"] for w in state["workers"]] == ["2025-03-31", None]
    assert state["workers"][1]["cost_rates"][0]["currency"] == "EUR"
    assert state["workers"][1]["assignments"][0]["country"] == "DE"


def test_change_helpers_refuse_unknown_workers_and_entities(workday):
    [employee_id] = workday.seed_workers(1)

    with pytest.raises(KeyError):
        workday.terminate("99999", "2025-01-31")
    with pytest.raises(ValueError, match="unknown legal entity"):
        workday.transfer(employee_id, legal_entity="NOPE", cost_centre="CC100", effective="2025-02-01")
    with pytest.raises(ValueError, match="precede"):
        workday.terminate(employee_id, "2023-12-31")
