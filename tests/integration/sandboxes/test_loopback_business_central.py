"""The Business Central sandbox on loopback: real HTTP for the token, `$batch`, the window and the queue."""

import threading
from collections.abc import Iterator

import httpx
import pytest

from local.sandboxes.base import Faults
from local.sandboxes.business_central import BusinessCentralSandbox
from local.sandboxes.server import SandboxServer, _build

SCOPE = "https://api.businesscentral.dynamics.com/.default"


def _token(server: SandboxServer) -> str:
    sandbox = server.sandbox
    response = httpx.post(
        f"{server.url}{sandbox.token_path}",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "scope": SCOPE,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _api(server: SandboxServer, **kwargs) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}{server.sandbox.api_path}/",
        headers={"Authorization": f"Bearer {_token(server)}"},
        **kwargs,
    )


@pytest.fixture
def erp() -> Iterator[SandboxServer]:
    sandbox = BusinessCentralSandbox(concurrency_limit=None)
    company = sandbox.company("PS Hub UK Ltd")
    sandbox.seed_employee(company, "E0001", "Pat Smith")
    sandbox.seed_project(company, "J1001", "ERP rollout", tasks=("100",))
    with SandboxServer(sandbox) as server:
        yield server


def test_the_server_builds_and_serves_the_business_central_sandbox():
    sandbox = _build("business_central")

    with SandboxServer(sandbox) as server, _api(server) as api:
        companies = api.get("companies")

    assert isinstance(sandbox, BusinessCentralSandbox)
    assert companies.status_code == 200 and companies.headers["OData-Version"] == "4.0"
    assert companies.json()["@odata.context"].startswith(f"{server.url}{sandbox.api_path}/$metadata#")


def test_a_batch_over_http_is_one_request_and_its_operations_are_recorded(erp):
    company = erp.sandbox.company("PS Hub UK Ltd")
    requests = [
        {
            "method": "POST",
            "id": str(n),
            "url": f"companies({company})/timeRegistrationEntries",
            "headers": {"Content-Type": "application/json"},
            "body": {"employeeNumber": "E0001", "jobNumber": "J1001", "date": "2025-01-31", "quantity": 0.5},
        }
        for n in range(100)
    ]

    with _api(erp) as api:
        response = api.post("$batch", json={"requests": requests})
    stats = httpx.get(f"{erp.url}/__sandbox/stats").json()
    logged = httpx.get(f"{erp.url}/__sandbox/requests", params={"path_contains": "$batch"}).json()["requests"]
    state = httpx.get(f"{erp.url}/__sandbox/state").json()

    assert response.status_code == 200
    assert [r["status"] for r in response.json()["responses"]] == [201] * 100
    first = response.json()["responses"][0]["headers"]["location"]
    assert first.startswith(f"{erp.url}{erp.sandbox.api_path}/companies({company})/timeRegistrationEntries(")
    assert len(logged) == 1 and stats["batch_operations"] == 100 and stats["batches"] == 1
    assert stats["requests"] == 2  # the token call and the batch
    [uk] = state["companies"]
    assert len(uk["records"]["timeRegistrationEntries"]) == 100


def test_the_sliding_window_answers_429_with_retry_after_over_http():
    sandbox = BusinessCentralSandbox(concurrency_limit=None, rate_limit=5, rate_window=60)
    with SandboxServer(sandbox) as server, _api(server) as api:
        statuses = [api.get("companies").status_code for _ in range(5)]
        refused = api.get("companies")

    assert statuses == [200] * 5
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 59
    assert refused.json()["error"]["code"] == "Application_TooManyRequests"


def test_requests_beyond_five_queue_and_beyond_the_queue_are_refused():
    sandbox = BusinessCentralSandbox(concurrency_limit=2, queue_limit=2, faults=Faults(latency=0.3))
    with SandboxServer(sandbox) as server:
        token = _token(server)
        barrier = threading.Barrier(5)
        statuses: list[int] = []

        def call() -> None:
            with httpx.Client(base_url=f"{server.url}{sandbox.api_path}/", timeout=10) as api:
                barrier.wait()
                statuses.append(
                    api.get("companies", headers={"Authorization": f"Bearer {token}"}).status_code
                )

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(statuses) == [200, 200, 200, 200, 429]
    assert sandbox.peak_in_flight == 2 and sandbox.peak_waiting == 2


def test_faults_and_seeds_posted_to_the_admin_surface_apply(erp):
    seeded = httpx.post(
        f"{erp.url}/__sandbox/seed",
        json={"companies": [{"name": "PS Hub Inc", "vendors": [{"number": "V-1", "name": "Sam"}]}]},
    ).json()
    httpx.post(f"{erp.url}/__sandbox/faults", json={"throttle_rate": 1.0})

    with _api(erp) as api:
        throttled = api.get("companies")

    assert len(seeded["companies"][0]["vendors"]) == 1
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
