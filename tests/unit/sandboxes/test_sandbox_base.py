"""The sandbox framework: request log, seeded faults, timeouts, concurrency limit, reset (in-process only)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from local.sandboxes.base import Faults
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox

pytestmark = pytest.mark.disable_socket

CUSTOMER = "/services/rest/record/v1/customer"


def _erp(sandbox: NetSuiteSandbox) -> httpx.Client:
    return sandbox.client(sandbox.base_url, headers={"Authorization": f"Bearer {sandbox.issue_token()}"})


def _statuses(sandbox: NetSuiteSandbox, calls: int) -> list[int]:
    customer = sandbox.seed_customer("C-1")
    with _erp(sandbox) as api:
        return [api.get(f"{CUSTOMER}/{customer}").status_code for _ in range(calls)]


# ------------------------------------------------------------------------------------------- request log
def test_every_request_is_recorded_with_method_path_query_body_and_status(kantata, psa_api):
    psa_api.post("workspaces.json", json={"workspace": {"title": "Rollout", "price": 1000}})
    psa_api.get("stories.json", params={"workspace_id": "42", "per_page": "5"})

    created, listed = kantata.requests
    assert (created.method, created.path, created.status) == ("POST", "/api/v1/workspaces.json", 200)
    assert created.json == {"workspace": {"title": "Rollout", "price": 1000}}
    assert listed.query == {"workspace_id": "42", "per_page": "5"}
    assert listed.fault is None and listed.at > 0


def test_calls_counts_requests_by_method_and_path_fragment(kantata, psa_api):
    for _ in range(3):
        psa_api.get("workspaces.json")
    psa_api.post("workspaces.json", json={"workspace": {"title": "X", "price": 1}})

    assert kantata.call_count("GET", "/workspaces") == 3
    assert kantata.call_count("post") == 1
    assert kantata.call_count(path_contains="stories") == 0
    assert len(kantata.calls(status=200)) == 4


def test_an_unknown_path_is_answered_in_the_vendors_not_found_shape(psa_api):
    response = psa_api.get("no_such_things.json")

    assert response.status_code == 404
    assert response.json()["errors"][0]["type"] == "system"


# ------------------------------------------------------------------------------------------- faults
def test_the_same_seed_replays_the_same_fault_sequence():
    faults = Faults(throttle_rate=0.3, error_rate=0.2, seed=7)

    first = _statuses(NetSuiteSandbox(faults=faults, concurrency_limit=None), 60)
    again = _statuses(NetSuiteSandbox(faults=faults, concurrency_limit=None), 60)
    other = _statuses(
        NetSuiteSandbox(faults=Faults(throttle_rate=0.3, error_rate=0.2, seed=8), concurrency_limit=None), 60
    )

    assert first == again
    assert first != other
    assert {429, 200} <= set(first) and set(first) & {500, 503}


def test_a_throttle_rate_throttles_about_that_share_of_requests():
    sandbox = NetSuiteSandbox(faults=Faults(throttle_rate=0.25, seed=3), concurrency_limit=None)

    statuses = _statuses(sandbox, 400)

    assert 0.18 <= statuses.count(429) / 400 <= 0.32
    assert sandbox.call_count(fault="throttle") == statuses.count(429)


def test_an_error_rate_answers_5xx_in_the_vendors_error_shape():
    sandbox = NetSuiteSandbox(faults=Faults(error_rate=1.0, error_statuses=(503,)), concurrency_limit=None)
    with _erp(sandbox) as api:
        response = api.get(f"{CUSTOMER}/1")

    assert response.status_code == 503
    assert response.json()["status"] == 503
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "SERVICE_UNAVAILABLE"


def test_an_injected_timeout_raises_read_timeout_and_processes_nothing():
    sandbox = NetSuiteSandbox(faults=Faults(timeout_rate=1.0), concurrency_limit=None)
    with _erp(sandbox) as api, pytest.raises(httpx.ReadTimeout):
        api.put(f"{CUSTOMER}/eid:C-9", json={"companyName": "Initech", "subsidiary": {"id": "1"}})

    assert sandbox.records("customer") == []
    [entry] = sandbox.calls("PUT")
    assert (entry.status, entry.fault) == (None, "timeout")


def test_a_lost_response_commits_the_write_so_a_blind_retry_duplicates_it():
    sandbox = KantataSandbox(tokens=["t"], faults=Faults(lost_response_rate=1.0))
    with sandbox.client("https://api.mavenlink.com/api/v1/", headers={"Authorization": "Bearer t"}) as api:
        for _ in range(2):
            with pytest.raises(httpx.ReadTimeout):
                api.post("workspaces.json", json={"workspace": {"title": "Rollout", "price": 1}})

    assert [w["title"] for w in sandbox.workspaces()] == ["Rollout", "Rollout"]
    assert sandbox.call_count(fault="lost_response") == 2


def test_latency_is_drawn_within_the_configured_range(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("local.sandboxes.base.time.sleep", slept.append)
    sandbox = NetSuiteSandbox(faults=Faults(latency=(0.2, 0.4), seed=1), concurrency_limit=None)

    _statuses(sandbox, 20)

    assert len(slept) == 20
    assert all(0.2 <= delay <= 0.4 for delay in slept)
    assert len(set(slept)) > 1


def test_a_path_pattern_limits_faults_to_matching_paths():
    sandbox = NetSuiteSandbox(faults=Faults(error_rate=1.0, path_pattern=r"/job/"), concurrency_limit=None)
    customer = sandbox.seed_customer("C-1")
    with _erp(sandbox) as api:
        customer_status = api.get(f"{CUSTOMER}/{customer}").status_code
        job_status = api.put(
            "/services/rest/record/v1/job/eid:J-1",
            json={"companyName": "Rollout", "parent": {"id": customer}},
        ).status_code

    assert customer_status == 200
    assert job_status in (500, 503)


def test_set_faults_with_keywords_changes_only_those_settings(netsuite):
    netsuite.set_faults(Faults(throttle_rate=0.5, seed=9))

    netsuite.set_faults(error_rate=0.1)

    assert (netsuite.faults.throttle_rate, netsuite.faults.error_rate, netsuite.faults.seed) == (0.5, 0.1, 9)


def test_fault_settings_from_json_reject_unknown_keys_and_bad_rates():
    assert Faults.from_dict({"latency": [0.1, 0.2], "error_statuses": [503]}).latency == (0.1, 0.2)
    with pytest.raises(ValueError, match="unknown"):
        Faults.from_dict({"throttle": 0.5})
    with pytest.raises(ValueError, match="throttle_rate"):
        Faults(throttle_rate=1.5)
    with pytest.raises(ValueError, match="5xx"):
        Faults(error_statuses=(429,))


# ------------------------------------------------------------------------------------------- concurrency
def test_requests_in_flight_never_exceed_the_limit_under_a_thread_pool():
    sandbox = NetSuiteSandbox(concurrency_limit=3, faults=Faults(latency=0.02))
    customer = sandbox.seed_customer("C-1")
    token = sandbox.issue_token()
    transport = sandbox.transport()

    def fetch(_: int) -> int:
        with httpx.Client(
            transport=transport, base_url=sandbox.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            return api.get(f"{CUSTOMER}/{customer}").status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(fetch, range(48)))

    assert sandbox.peak_in_flight == 3
    assert statuses.count(200) >= 3
    assert 429 in statuses
    assert sandbox.call_count(fault="concurrency") == statuses.count(429)
    assert sandbox.in_flight == 0


def test_a_request_over_the_limit_is_refused_with_concurrency_limit_exceeded():
    sandbox = NetSuiteSandbox(concurrency_limit=1, faults=Faults(latency=0.2))
    token = sandbox.issue_token()
    started = threading.Event()

    def slow_call() -> None:
        with _erp(sandbox) as api:
            started.set()
            api.get(f"{CUSTOMER}/1")

    worker = threading.Thread(target=slow_call)
    worker.start()
    started.wait()
    for _ in range(2_000):
        if sandbox.in_flight:
            break
        time.sleep(0.001)
    with sandbox.client(sandbox.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
        refused = api.get(f"{CUSTOMER}/1")
    worker.join()

    assert refused.status_code == 429
    assert refused.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


# ------------------------------------------------------------------------------------------- reset
def test_reset_clears_records_tokens_log_and_peak_but_keeps_faults(kantata, psa_api):
    kantata.set_faults(Faults(latency=0.0, seed=5))
    psa_api.post("workspaces.json", json={"workspace": {"title": "Rollout", "price": 1}})
    extra = kantata.issue_token()

    kantata.reset()

    assert kantata.workspaces() == [] and kantata.requests == [] and kantata.peak_in_flight == 0
    assert kantata.faults.seed == 5
    with kantata.client(
        "https://api.mavenlink.com/api/v1/", headers={"Authorization": f"Bearer {extra}"}
    ) as api:
        assert api.get("workspaces.json").status_code == 401
