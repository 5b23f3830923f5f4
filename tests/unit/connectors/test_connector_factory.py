"""Adapters built from their connection secrets."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from hub.connectors.factory import (
    crm_from_secret,
    erp_from_secret,
    hcm_from_secret,
    psa_from_secret,
    psa_resources_from_secret,
)
from hub.connectors.kantata import KantataPsa
from hub.connectors.netsuite import NetSuiteErp
from hub.connectors.salesforce import SalesforceCrm
from hub.errors import PermanentError, TransientError
from hub.model import Account


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/token"):
            return httpx.Response(
                200,
                json={
                    "access_token": "t",
                    "instance_url": "https://acme.my.salesforce.test",
                    "expires_in": 3600,
                },
            )
        if request.method == "PUT":
            return httpx.Response(
                204, headers={"Location": f"{request.url}".replace("eid:sf-001Dn00000Z9y8xAAA", "42")}
            )
        if request.method == "PATCH":
            return httpx.Response(204)
        return httpx.Response(200, json={"count": 0, "results": [], "stories": {}, "meta": {"page_count": 1}})


SALESFORCE = {
    "token_url": "https://login.salesforce.test/services/oauth2/token",
    "client_id": "cid",
    "client_secret": "very-secret-value",
}
KANTATA = {"base_url": "https://kantata.test/api/v1", "token": "kantata-token"}
WORKDAY = {
    "base_url": "https://wd2-impl-services1.workday.test",
    "tenant": "pshub_impl",
    "client_id": "client",
    "client_secret": "very-secret-value",
    "refresh_token": "very-secret-value",
    "report_owner": "ISU_PSHub",
    "legal_entities": {"PSHUB_US": "US01"},
}
NETSUITE = {
    "base_url": "https://1234567.suitetalk.api.netsuite.test",
    "token_url": "https://1234567.suitetalk.api.netsuite.test/services/rest/auth/oauth2/v1/token",
    "account_id": "1234567",
    "client_id": "cid",
    "client_secret": "very-secret-value",
}


def test_given_a_salesforce_secret_when_building_then_calls_go_to_the_instance_url_of_the_token_answer():
    recorder = Recorder()

    crm = crm_from_secret(SALESFORCE, transport=httpx.MockTransport(recorder))
    crm.write_back("006Dn00000A1b2cAAB", status="Synced")

    assert isinstance(crm, SalesforceCrm)
    assert str(recorder.requests[-1].url).startswith("https://acme.my.salesforce.test/services/data/v62.0/")


def test_given_a_salesforce_secret_with_base_url_when_building_then_the_override_is_used():
    recorder = Recorder()

    crm = crm_from_secret(
        {**SALESFORCE, "base_url": "http://127.0.0.1:8001"}, transport=httpx.MockTransport(recorder)
    )
    crm.write_back("006Dn00000A1b2cAAB", status="Synced")

    assert str(recorder.requests[-1].url).startswith("http://127.0.0.1:8001/services/data/v62.0/sobjects/")


def test_given_a_kantata_secret_when_building_then_its_base_url_and_token_are_used():
    recorder = Recorder()

    psa = psa_from_secret(KANTATA, client=httpx.Client(transport=httpx.MockTransport(recorder)))
    psa.ensure_wbs("77", ())

    assert isinstance(psa, KantataPsa)
    assert str(recorder.requests[0].url).startswith("https://kantata.test/api/v1/stories.json")
    assert recorder.requests[0].headers["Authorization"] == "Bearer kantata-token"


def test_given_a_netsuite_secret_when_building_then_the_system_id_and_base_url_are_used():
    recorder = Recorder()
    account = Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd")

    erp = erp_from_secret("netsuite-uk", NETSUITE, transport=httpx.MockTransport(recorder))
    internal_id = erp.upsert_customer(account, subsidiary_id="1", currency="GBP")

    assert isinstance(erp, NetSuiteErp)
    assert erp.system == "netsuite-uk"
    assert internal_id == "42"
    assert recorder.requests[-1].url.host == "1234567.suitetalk.api.netsuite.test"


def test_given_a_netsuite_secret_with_currency_ids_when_upserting_then_the_currency_goes_by_internal_id():
    recorder = Recorder()
    account = Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd")

    erp = erp_from_secret(
        "netsuite-uk", {**NETSUITE, "currency_ids": {"GBP": "2"}}, transport=httpx.MockTransport(recorder)
    )
    erp.upsert_customer(account, subsidiary_id="1", currency="GBP")

    assert json.loads(recorder.requests[-1].content)["currency"] == {"id": "2"}


@pytest.mark.parametrize(
    ("build", "secret", "missing"),
    [
        (crm_from_secret, {k: v for k, v in SALESFORCE.items() if k != "client_id"}, "client_id"),
        (psa_from_secret, {"base_url": "not a url", "token": "very-secret-value"}, "base_url"),
        (psa_from_secret, {**KANTATA, "home_countries": {"UK01": "Britain"}}, "home_countries"),
        (psa_from_secret, {**KANTATA, "account_time_zone": "Mars/Olympus"}, "account_time_zone"),
        (
            psa_resources_from_secret,
            {**KANTATA, "invitation_email_template": "nobody"},
            "invitation_email_template",
        ),
        (hcm_from_secret, {**WORKDAY, "legal_entities": {}}, "legal_entities"),
        (hcm_from_secret, {**WORKDAY, "tenant_time_zone": "Nowhere/Else"}, "tenant_time_zone"),
        (lambda s, **kw: erp_from_secret("netsuite-us", s, **kw), {**NETSUITE, "token_url": ""}, "token_url"),
        (
            lambda s, **kw: erp_from_secret("netsuite-us", s, **kw),
            {**NETSUITE, "currency_ids": {"pounds": "2"}},
            "currency_ids",
        ),
    ],
)
def test_given_a_bad_secret_when_building_then_permanent_error_names_the_key_never_the_value(
    build, secret, missing
):
    with pytest.raises(PermanentError) as caught:
        build(secret, transport=httpx.MockTransport(Recorder()))

    assert caught.value.code == "invalid_secret"
    assert missing in caught.value.message
    assert "very-secret-value" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_given_an_adapter_when_its_auth_is_printed_then_no_secret_appears():
    crm = crm_from_secret(SALESFORCE, transport=httpx.MockTransport(Recorder()))
    crm.write_back("006Dn00000A1b2cAAB", status="Synced")  # a token is cached now

    assert "very-secret-value" not in repr(vars(crm))
    assert "t'" not in repr(crm._auth.current()) and "***" in repr(crm._auth.current())


def test_given_a_workday_secret_when_building_then_the_refresh_token_grant_signs_in_at_the_tenant():
    recorder = Recorder()

    hcm = hcm_from_secret(WORKDAY, transport=httpx.MockTransport(recorder))
    with pytest.raises(
        TransientError
    ):  # the recorder answers the report with no rows: the sign-in matters here
        hcm.changed_workers(
            changed_since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            until=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
        )

    token = recorder.requests[0]
    assert token.url.path == "/ccx/oauth2/pshub_impl/token"
    assert b"grant_type=refresh_token" in token.content


def test_given_a_psa_secret_with_an_invitation_template_the_resource_pool_adapter_is_built():
    from hub.connectors.kantata_resources import KantataResources

    built = psa_resources_from_secret(
        {**KANTATA, "invitation_email_template": "{hcm_id}@corp.example", "account_currency": "USD"},
        transport=httpx.MockTransport(Recorder()),
    )

    assert isinstance(built, KantataResources)


def test_given_a_pace_in_the_psa_secret_the_resource_pool_adapter_spaces_its_requests(monkeypatch):
    import types

    import hub.pacing

    clock = types.SimpleNamespace(now=0.0, slept=[])
    clock.monotonic = lambda: clock.now
    clock.sleep = lambda seconds: (clock.slept.append(seconds), setattr(clock, "now", clock.now + seconds))
    monkeypatch.setattr(hub.pacing, "time", clock)
    recorder = Recorder()
    built = psa_resources_from_secret(
        {**KANTATA, "requests_per_second": 4, "request_burst": 2}, transport=httpx.MockTransport(recorder)
    )

    for _ in range(4):
        built.project_assignments("880001")

    assert len(recorder.requests) >= 4
    assert clock.slept and all(s == pytest.approx(0.25) for s in clock.slept)  # after the burst of 2, 4/s
    assert clock.now == pytest.approx(0.25 * (len(recorder.requests) - 2))


def test_a_pace_must_be_positive():
    with pytest.raises(PermanentError, match="requests_per_second"):
        psa_resources_from_secret(
            {**KANTATA, "requests_per_second": 0}, transport=httpx.MockTransport(Recorder())
        )
