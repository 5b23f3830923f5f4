"""The sandboxes on loopback: real HTTP calls, injected timeouts made real, the /__sandbox/ admin surface."""

from collections.abc import Iterator

import httpx
import pytest

from local.sandboxes.base import Faults
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox
from local.sandboxes.salesforce import SalesforceSandbox
from local.sandboxes.server import SandboxServer

RECORDS = "/services/rest/record/v1"


@pytest.fixture
def erp() -> Iterator[SandboxServer]:
    with SandboxServer(NetSuiteSandbox("TSTDRV-US", concurrency_limit=None)) as server:
        yield server


def _erp_client(server: SandboxServer, **kwargs) -> httpx.Client:
    token = httpx.post(
        f"{server.url}/services/rest/auth/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "pshub-integration",
            "client_secret": "pshub-netsuite-secret",
        },
    ).json()["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_the_netsuite_sandbox_answers_real_http_on_a_free_loopback_port(erp):
    with _erp_client(erp) as api:
        upserted = api.put(
            f"{RECORDS}/customer/eid:SF-1", json={"companyName": "Globex", "subsidiary": {"id": "1"}}
        )
        read = api.get(upserted.headers["Location"])

    assert erp.url.startswith("http://127.0.0.1:") and erp.port > 0
    assert upserted.status_code == 204
    assert upserted.headers["Location"].startswith(f"{erp.url}{RECORDS}/customer/")
    assert read.status_code == 200 and read.json()["companyName"] == "Globex"
    assert read.headers["content-type"].startswith("application/vnd.oracle.resource+json")


def test_the_admin_surface_shows_requests_state_and_stats(erp):
    with _erp_client(erp) as api:
        api.put(f"{RECORDS}/customer/eid:SF-1", json={"companyName": "Globex", "subsidiary": {"id": "1"}})
        api.get(f"{RECORDS}/customer/eid:SF-1")
    admin = f"{erp.url}/__sandbox"

    requests = httpx.get(f"{admin}/requests", params={"method": "PUT"}).json()["requests"]
    state = httpx.get(f"{admin}/state").json()
    stats = httpx.get(f"{admin}/stats").json()

    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("PUT", f"{RECORDS}/customer/eid:SF-1", 204)
    ]
    assert requests[0]["json"] == {"companyName": "Globex", "subsidiary": {"id": "1"}}
    assert [c["externalId"] for c in state["records"]["customer"]] == ["SF-1"]
    assert stats["vendor"] == "netsuite" and stats["requests"] == 3 and stats["peak_in_flight"] >= 1


def test_faults_posted_to_the_admin_surface_apply_to_the_next_calls(erp):
    changed = httpx.post(f"{erp.url}/__sandbox/faults", json={"throttle_rate": 1.0, "seed": 11})

    with _erp_client(erp) as api:
        throttled = api.get(f"{RECORDS}/customer/1")
    httpx.post(f"{erp.url}/__sandbox/faults", json={"throttle_rate": 0.0})
    with _erp_client(erp) as api:
        normal = api.get(f"{RECORDS}/customer/1")

    assert changed.status_code == 200 and changed.json()["seed"] == 11
    assert throttled.status_code == 429
    assert throttled.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert normal.status_code == 404


def test_bad_admin_input_is_a_400(erp):
    assert httpx.post(f"{erp.url}/__sandbox/faults", json={"throttle": 1}).status_code == 400
    assert httpx.get(f"{erp.url}/__sandbox/nothing").status_code == 404


def test_records_seeded_through_the_admin_surface_are_served(erp):
    seeded = httpx.post(
        f"{erp.url}/__sandbox/seed",
        json={"customer": [{"externalId": "SF-9", "companyName": "Initech", "subsidiary": {"id": "1"}}]},
    ).json()

    with _erp_client(erp) as api:
        body = api.get(f"{RECORDS}/customer/{seeded['customer'][0]}").json()

    assert body["externalId"] == "SF-9"


def test_reset_through_the_admin_surface_empties_the_sandbox(erp):
    httpx.post(
        f"{erp.url}/__sandbox/seed",
        json={"customer": [{"externalId": "SF-9", "companyName": "Initech", "subsidiary": {"id": "1"}}]},
    )

    httpx.post(f"{erp.url}/__sandbox/reset")

    assert httpx.get(f"{erp.url}/__sandbox/state").json()["records"]["customer"] == []


def test_an_injected_timeout_stalls_past_the_clients_timeout():
    sandbox = KantataSandbox(tokens=["t"], faults=Faults(timeout_rate=1.0, stall_seconds=5.0))
    with SandboxServer(sandbox) as server:
        api = httpx.Client(
            base_url=f"{server.url}/api/v1/", timeout=0.3, headers={"Authorization": "Bearer t"}
        )
        with api, pytest.raises(httpx.ReadTimeout):
            api.get("workspaces.json")

    assert sandbox.calls()[0].fault == "timeout"


def test_a_dropped_connection_gives_no_answer_at_all():
    sandbox = KantataSandbox(tokens=["t"], faults=Faults(lost_response_rate=1.0, loopback_timeout="drop"))
    with SandboxServer(sandbox) as server:
        api = httpx.Client(
            base_url=f"{server.url}/api/v1/", timeout=2.0, headers={"Authorization": "Bearer t"}
        )
        with api, pytest.raises(httpx.RemoteProtocolError):
            api.post("workspaces.json", json={"workspace": {"title": "Rollout", "price": 100}})

    assert [w["title"] for w in sandbox.workspaces()] == ["Rollout"]


def test_the_salesforce_token_call_points_instance_url_at_the_loopback_server():
    salesforce = SalesforceSandbox()
    opportunity = salesforce.seed_opportunity(Name="Globex - ERP rollout")
    with SandboxServer(salesforce) as server:
        token = httpx.post(
            f"{server.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "pshub-connected-app",
                "client_secret": "pshub-client-secret",
            },
        ).json()
        read = httpx.get(
            f"{token['instance_url']}/services/data/v62.0/sobjects/Opportunity/{opportunity}",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )

    assert token["instance_url"] == server.url
    assert read.json()["Name"] == "Globex - ERP rollout"
    assert read.headers["Sforce-Limit-Info"] == "api-usage=1/100000"


def test_a_stopped_server_releases_its_port():
    server = SandboxServer(KantataSandbox()).start()
    url = server.url

    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/v1/workspaces.json", timeout=1.0)
