"""The real adapters, built by the factory from their secrets, against the vendor sandboxes in-process.

Each adapter talks to its sandbox through ``sandbox.transport()`` (no sockets), with the sandbox's own
credentials, and every count is read back with the sandbox's inspection helpers. Retries inside the adapter
never sleep (``RetryPolicy(sleep=...)``); where a test needs Step Functions' outer retry it loops around
``ThrottledError`` / ``TransientError`` itself (``eventually``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest

from hub.connectors.factory import crm_from_secret, erp_from_secret, psa_from_secret
from hub.connectors.http import RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.connectors.netsuite import NetSuiteErp
from hub.connectors.salesforce import SalesforceCrm
from hub.errors import DataValidationError, PermanentError, ThrottledError, TransientError
from hub.flows.initiation.planning import plan_project
from hub.model import Account, Project
from local.sandboxes import Faults, KantataSandbox, NetSuiteSandbox, SalesforceSandbox
from tests.support.builders import opportunity

pytestmark = pytest.mark.disable_socket

T = TypeVar("T")

SALESFORCE_URL = "https://pshub-sandbox.my.salesforce.com"
KANTATA_URL = "https://api.mavenlink.com/api/v1"
KANTATA_TOKEN = "kantata-sandbox-token"
NETSUITE_TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
SEED = 7  # fault draws are seeded: every run sees the same faults (and the tests assert that they happen)


def no_wait() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None)


def eventually(call: Callable[[], T], attempts: int = 40, pause: float = 0.0) -> T:
    """Step Functions' Retry on the hub's retryable errors: call again (after ``pause`` seconds, its
    interval) until it succeeds."""
    for _ in range(attempts - 1):
        try:
            return call()
        except (ThrottledError, TransientError):
            time.sleep(pause)
    return call()


# ------------------------------------------------------------------------------------------- adapters


def salesforce_adapter(sandbox: SalesforceSandbox, **overrides: str) -> SalesforceCrm:
    secret = {
        "token_url": f"{SALESFORCE_URL}/services/oauth2/token",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        **overrides,
    }
    return crm_from_secret(secret, transport=sandbox.transport(), retry=no_wait())


def kantata_adapter(sandbox: KantataSandbox) -> KantataPsa:
    secret = {"base_url": KANTATA_URL, "token": KANTATA_TOKEN}
    return psa_from_secret(secret, transport=sandbox.transport(), retry=no_wait())


def netsuite_adapter(sandbox: NetSuiteSandbox) -> NetSuiteErp:
    secret = {
        "base_url": sandbox.base_url,
        "token_url": sandbox.base_url + NETSUITE_TOKEN_PATH,
        "account_id": sandbox.account_id,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        # The account's currencies by internal id, as NetSuite references them.
        "currency_ids": {code: internal_id for internal_id, code in sandbox.currencies.items()},
    }
    return erp_from_secret("netsuite-us", secret, transport=sandbox.transport(), retry=no_wait())


@pytest.fixture
def project() -> Project:
    return plan_project(opportunity())


# ----------------------------------------------------------------------------------------- Salesforce


def seed_deal(sandbox: SalesforceSandbox, billing_country: str | None = None) -> tuple[str, str, list[str]]:
    """The builders' default opportunity, as the CRM holds it: (opportunity id, account id, line item ids).
    The account's BillingCountry is the ISO code unless ``billing_country`` says otherwise."""
    deal = opportunity()
    account_id = sandbox.seed_account(
        Name=deal.account.name,
        BillingCountry=billing_country or deal.account.billing_country,
        CurrencyIsoCode=deal.account.currency,
    )
    opportunity_id = sandbox.seed_opportunity(
        Name=deal.name,
        StageName=deal.stage,
        Amount=float(deal.amount.amount),
        CurrencyIsoCode=deal.amount.currency,
        CloseDate="2026-11-20",
        AccountId=account_id,
        Legal_Entity__c=deal.legal_entity_code,
        Billing_Type__c="Fixed Fee - Milestones",
        Start_Date__c=deal.start_date.isoformat(),
        End_Date__c=deal.end_date.isoformat(),
        line_items=[
            {
                "Name": item.name,
                "Quantity": float(item.quantity),
                "UnitPrice": float(item.unit_price.amount),
                "CurrencyIsoCode": item.unit_price.currency,
                "ServiceDate": item.service_date.isoformat() if item.service_date else None,
            }
            for item in deal.line_items
        ],
    )
    line_item_ids = [row["Id"] for row in sandbox.line_items(opportunity_id)]
    return opportunity_id, account_id, line_item_ids


def test_given_a_won_deal_in_salesforce_when_read_then_the_canonical_opportunity_has_account_and_lines():
    sandbox = SalesforceSandbox()
    opportunity_id, account_id, line_item_ids = seed_deal(sandbox)

    read = salesforce_adapter(sandbox).get_opportunity(opportunity_id)

    deal = opportunity()
    expected = deal.model_copy(
        update={
            "crm_id": opportunity_id,
            "close_date": dt.date(2026, 11, 20),
            "account": deal.account.model_copy(update={"crm_id": account_id}),
            "line_items": tuple(
                item.model_copy(update={"crm_id": crm_id})
                for item, crm_id in zip(deal.line_items, line_item_ids, strict=True)
            ),
            "last_modified": read.last_modified,
        }
    )
    assert read == expected
    assert read.account.billing_country == "US"
    assert read.amount.amount == Decimal("120000")
    assert read.needs_hydration is False
    assert plan_project(read).contract_value == expected.amount


def test_given_a_free_text_billing_country_when_read_then_the_deal_maps_without_a_country():
    sandbox = SalesforceSandbox()
    opportunity_id, account_id, _ = seed_deal(sandbox, billing_country="United States")

    read = salesforce_adapter(sandbox).get_opportunity(opportunity_id)

    assert read.account == Account(
        crm_id=account_id, name="Northwind Traders", billing_country=None, currency="USD"
    )
    assert len(read.line_items) == 2


def test_given_back_references_when_written_then_the_opportunity_holds_them_and_success_clears_errors():
    sandbox = SalesforceSandbox()
    opportunity_id, _, _ = seed_deal(sandbox)
    crm = salesforce_adapter(sandbox)

    crm.write_back(opportunity_id, status="Error", error="NetSuite refused the subsidiary")
    failed = sandbox.opportunity(opportunity_id)
    crm.write_back(opportunity_id, status="Synced", psa_project_id="30000123", erp_customer_id="1001")
    synced = sandbox.opportunity(opportunity_id)

    assert (failed["Integration_Status__c"], failed["Integration_Error__c"]) == (
        "Error",
        "NetSuite refused the subsidiary",
    )
    assert (
        synced["Integration_Status__c"],
        synced["PSA_Project_Id__c"],
        synced["ERP_Customer_Id__c"],
        synced["Integration_Error__c"],
    ) == ("Synced", "30000123", "1001", None)
    assert sandbox.call_count("PATCH", "/sobjects/Opportunity/", status=204) == 2


def test_given_an_unknown_client_id_when_calling_salesforce_then_permanent_error_invalid_client_id():
    sandbox = SalesforceSandbox()
    opportunity_id, _, _ = seed_deal(sandbox)

    with pytest.raises(PermanentError) as caught:
        salesforce_adapter(sandbox, client_id="not-our-app").get_opportunity(opportunity_id)

    assert caught.value.code == "invalid_client_id"
    assert sandbox.call_count(path_contains="/services/data/") == 0


# -------------------------------------------------------------------------------------------- Kantata


def hub_references(sandbox: KantataSandbox) -> list[dict]:
    return [r for r in sandbox.external_references() if r["service_name"] == "pshub"]


def test_given_a_project_when_ensured_twice_then_one_workspace_linked_by_one_reference(project):
    sandbox = KantataSandbox()
    psa = kantata_adapter(sandbox)

    first = psa.ensure_project(project)
    second = psa.ensure_project(project)

    assert first == second
    (workspace,) = sandbox.workspaces()
    assert workspace["id"] == first
    assert (workspace["title"], workspace["currency"], workspace["price_in_cents"]) == (
        project.name,
        "USD",
        12_000_000,
    )
    (reference,) = sandbox.external_references()
    assert (
        str(reference["subject_id"]),
        reference["subject_type"],
        reference["service_model"],
        reference["service_model_ref"],
        reference["status"],
    ) == (first, "Workspace", "Opportunity", project.opportunity_crm_id, "successful")
    assert sandbox.call_count("POST", "/workspaces") == 1
    assert sandbox.call_count("POST", "/external_references/create_or_update") == 0  # embedded on create


def test_given_an_unlinked_workspace_carrying_the_marker_when_ensured_then_it_is_adopted_and_linked(project):
    sandbox = KantataSandbox()
    sandbox.seed_workspace(title="Someone else's project", price=1000)
    orphan = sandbox.seed_workspace(
        title=project.name, description=f"pshub:opportunity:{project.opportunity_crm_id}", price=120000
    )
    psa = kantata_adapter(sandbox)

    adopted = psa.ensure_project(project)
    again = psa.ensure_project(project)

    assert adopted == again == orphan
    assert len(sandbox.workspaces()) == 2
    assert [str(r["subject_id"]) for r in hub_references(sandbox)] == [orphan]
    assert sandbox.call_count("POST", "/workspaces") == 0


def test_given_more_stories_than_one_page_when_the_wbs_is_ensured_twice_then_one_story_per_wbs_code(project):
    sandbox = KantataSandbox()
    psa = kantata_adapter(sandbox)
    workspace_id = psa.ensure_project(project)
    for number in range(230):  # the team's own tasks: more than one page of 200
        sandbox.seed_story(workspace_id, title=f"Team task {number}")

    first = psa.ensure_wbs(workspace_id, project.wbs)
    second = psa.ensure_wbs(workspace_id, project.wbs)

    assert first == second
    assert set(first) == {task.code for task in project.wbs}
    hub_stories = [s for s in sandbox.stories(workspace_id) if s["description"].startswith("pshub:wbs:")]
    assert sorted(s["description"] for s in hub_stories) == sorted(f"pshub:wbs:{t.code}" for t in project.wbs)
    by_id = {s["id"]: s for s in hub_stories}
    for task in project.wbs:
        story = by_id[first[task.code]]
        assert story["parent_id"] == (first[task.parent_code] if task.parent_code else None)
    assert sandbox.call_count("POST", "/stories") == len(project.wbs)
    pages = [r.query.get("page") for r in sandbox.calls("GET", "/stories")]
    assert pages.count("2") == 2 and "3" not in pages  # every listing walked both pages, and no further


def test_given_a_billing_schedule_when_ensured_twice_then_one_billing_milestone_per_milestone(project):
    sandbox = KantataSandbox()
    psa = kantata_adapter(sandbox)
    workspace_id = psa.ensure_project(project)
    task_ids = psa.ensure_wbs(workspace_id, project.wbs)
    # Another project with the same milestone titles: its milestones must not be taken for this one's.
    other = sandbox.seed_workspace(title="Other", price=10)
    other_ids = psa.ensure_wbs(other, project.wbs)
    psa.ensure_billing_schedule(other, project.billing_schedule, other_ids)

    first = psa.ensure_billing_schedule(workspace_id, project.billing_schedule, task_ids)
    second = psa.ensure_billing_schedule(workspace_id, project.billing_schedule, task_ids)

    assert first == second
    milestones = {m["id"]: m for m in sandbox.billing_milestones(workspace_id)}
    assert sorted(milestones) == sorted(first)
    assert [
        (
            milestones[i]["title"],
            milestones[i]["amount_in_cents"],
            milestones[i]["date_to_invoice"],
            milestones[i]["billing_type"],
            milestones[i]["story_id"],
        )
        for i in first
    ] == [
        (
            f"{m.code} - {m.name}",
            m.amount.cents(),
            m.due_date.isoformat(),
            "fixed_date",
            task_ids[m.wbs_code],
        )
        for m in project.billing_schedule.milestones
    ]
    listings = sandbox.calls("GET", "/billing_milestones")
    assert listings and all(r.query.get("workspace_ids") for r in listings)


# ------------------------------------------------------------------------------------------- NetSuite


def test_given_a_customer_and_project_when_upserted_twice_then_one_record_each(project):
    sandbox = NetSuiteSandbox(concurrency_limit=None)
    erp = netsuite_adapter(sandbox)

    customer_ids = {
        erp.upsert_customer(project.customer, subsidiary_id="1", currency="USD") for _ in range(2)
    }
    (customer_id,) = customer_ids
    job_ids = {erp.upsert_project(project, customer_id=customer_id, subsidiary_id="1") for _ in range(2)}

    (customer,) = sandbox.records("customer")
    (job,) = sandbox.records("job")
    assert (customer["id"], customer["companyName"], customer["subsidiary"], customer["currency"]) == (
        customer_id,
        project.customer.name,
        {"id": "1"},
        {"id": "1"},  # USD by its internal id in this account
    )
    assert job_ids == {job["id"]}
    assert (job["parent"], job["subsidiary"], job["currency"], job["startDate"]) == (
        {"id": customer_id},
        {"id": "1"},
        {"id": "1"},
        project.start_date.isoformat(),
    )
    assert sandbox.call_count("POST", NETSUITE_TOKEN_PATH) == 1  # expires_in "3600" (a string) is honoured


@pytest.mark.parametrize("record_type", ["customer", "job"])
def test_given_eight_concurrent_first_upserts_when_writes_are_slow_then_one_record(project, record_type):
    sandbox = NetSuiteSandbox(write_delay=0.05)  # default pool of 5: some of the 8 are throttled
    pause = 0.02  # the outer retry waits a little, or throttled threads would spin while the pool is full
    customer_id = sandbox.seed_customer("sf-parent", companyName="Parent")
    barrier = threading.Barrier(8)
    ids: list[str] = []
    errors: list[BaseException] = []

    def upsert() -> None:
        erp = netsuite_adapter(sandbox)  # one adapter per invocation, as concurrent Lambdas would have
        barrier.wait()
        try:
            if record_type == "customer":
                ids.append(
                    eventually(
                        lambda: erp.upsert_customer(project.customer, subsidiary_id="1", currency="USD"),
                        attempts=200,
                        pause=pause,
                    )
                )
            else:
                ids.append(
                    eventually(
                        lambda: erp.upsert_project(project, customer_id=customer_id, subsidiary_id="1"),
                        attempts=200,
                        pause=pause,
                    )
                )
        except BaseException as exc:  # surfaced below: a thread must not swallow a failure
            errors.append(exc)

    threads = [threading.Thread(target=upsert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    records = [r for r in sandbox.records(record_type) if r["externalId"] != "sf-parent"]
    assert len(records) == 1
    assert set(ids) == {records[0]["id"]}
    assert sandbox.peak_in_flight > 1  # the upserts did overlap


def test_given_an_unknown_subsidiary_when_upserting_then_data_validation_error_names_the_field(project):
    sandbox = NetSuiteSandbox(concurrency_limit=None)

    with pytest.raises(DataValidationError) as caught:
        netsuite_adapter(sandbox).upsert_customer(project.customer, subsidiary_id="999", currency="USD")

    assert caught.value.code == "INVALID_CONTENT"
    assert [p["field"] for p in caught.value.problems] == ["subsidiary"]
    assert sandbox.records("customer") == []
    assert sandbox.call_count("PUT", "/customer/") == 1  # a data error is not retried


def test_given_an_unknown_parent_customer_when_upserting_the_project_then_the_error_names_parent(project):
    sandbox = NetSuiteSandbox(concurrency_limit=None)

    with pytest.raises(DataValidationError) as caught:
        netsuite_adapter(sandbox).upsert_project(project, customer_id="424242", subsidiary_id="1")

    assert [p["field"] for p in caught.value.problems] == ["parent"]
    assert sandbox.records("job") == []


# --------------------------------------------------------------------------------------------- faults


def ensure_everything(psa: KantataPsa, project: Project) -> tuple[str, dict[str, str], list[str]]:
    workspace_id = eventually(lambda: psa.ensure_project(project))
    task_ids = eventually(lambda: psa.ensure_wbs(workspace_id, project.wbs))
    milestone_ids = eventually(
        lambda: psa.ensure_billing_schedule(workspace_id, project.billing_schedule, task_ids)
    )
    return workspace_id, task_ids, milestone_ids


FLAKY = [
    pytest.param(Faults(throttle_rate=0.3, error_rate=0.1, seed=SEED), id="throttled-and-5xx"),
    # Processed, then the answer lost: the ambiguous outcome that duplicates blind creates.
    pytest.param(Faults(lost_response_rate=0.25, seed=SEED), id="lost-answers"),
]


def injected(faults: Faults) -> set[str]:
    """The fault kinds these settings inject (as the sandbox records them)."""
    rates = {
        "throttle": faults.throttle_rate,
        "error": faults.error_rate,
        "lost_response": faults.lost_response_rate,
    }
    return {kind for kind, rate in rates.items() if rate > 0}


@pytest.mark.parametrize("faults", FLAKY)
def test_given_a_flaky_kantata_when_the_steps_are_retried_then_they_succeed_without_duplicates(
    project, faults
):
    sandbox = KantataSandbox(faults=faults)
    psa = kantata_adapter(sandbox)

    first = ensure_everything(psa, project)
    second = ensure_everything(psa, project)

    assert first == second
    workspace_id, _, _ = first
    assert [w["id"] for w in sandbox.workspaces()] == [workspace_id]
    assert len(hub_references(sandbox)) == 1
    assert len(sandbox.stories(workspace_id)) == len(project.wbs)
    assert len(sandbox.billing_milestones(workspace_id)) == len(project.billing_schedule.milestones)
    assert {kind for kind in injected(faults) if sandbox.call_count(fault=kind)} == injected(faults)


@pytest.mark.parametrize("faults", FLAKY)
def test_given_a_flaky_netsuite_when_the_upserts_are_retried_then_they_succeed_without_duplicates(
    project, faults
):
    sandbox = NetSuiteSandbox(faults=faults)
    erp = netsuite_adapter(sandbox)

    for _ in range(4):
        customer_id = eventually(
            lambda: erp.upsert_customer(project.customer, subsidiary_id="1", currency="USD")
        )
        job_id = eventually(
            lambda customer_id=customer_id: erp.upsert_project(
                project, customer_id=customer_id, subsidiary_id="1"
            )
        )

    assert [r["id"] for r in sandbox.records("customer")] == [customer_id]
    assert [r["id"] for r in sandbox.records("job")] == [job_id]
    assert {kind for kind in injected(faults) if sandbox.call_count(fault=kind)} == injected(faults)


def test_given_a_renamed_line_item_after_a_park_when_the_schedule_is_ensured_again_then_no_second_milestone(
    project: Project,
):
    sandbox = KantataSandbox()
    psa = kantata_adapter(sandbox)
    workspace = psa.ensure_project(project)
    tasks = psa.ensure_wbs(workspace, project.wbs)
    first = psa.ensure_billing_schedule(workspace, project.billing_schedule, tasks)
    renamed = project.billing_schedule.model_copy(
        update={
            "milestones": tuple(
                m.model_copy(update={"name": m.name + " (renamed)"})
                for m in project.billing_schedule.milestones
            )
        }
    )
    again = psa.ensure_billing_schedule(workspace, renamed, tasks)
    assert again == first
    assert len(sandbox.billing_milestones(workspace)) == len(project.billing_schedule.milestones)
