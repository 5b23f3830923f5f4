"""Fixtures for the sandbox unit tests: each sandbox with an authorised in-process client (no sockets)."""

from collections.abc import Iterator

import httpx
import pytest

from local.sandboxes.business_central import BusinessCentralSandbox
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox
from local.sandboxes.salesforce import SalesforceSandbox

SALESFORCE_URL = "https://pshub-sandbox.my.salesforce.com"
KANTATA_URL = "https://api.mavenlink.com/api/v1/"


@pytest.fixture
def salesforce() -> SalesforceSandbox:
    return SalesforceSandbox(api_limit=1_000)


@pytest.fixture
def sf_api(salesforce: SalesforceSandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {salesforce.issue_token()}"}
    with salesforce.client(SALESFORCE_URL, headers=headers) as client:
        yield client


@pytest.fixture
def kantata() -> KantataSandbox:
    return KantataSandbox(tokens=["psa-token"])


@pytest.fixture
def psa_api(kantata: KantataSandbox) -> Iterator[httpx.Client]:
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer psa-token"}) as client:
        yield client


@pytest.fixture
def netsuite() -> NetSuiteSandbox:
    return NetSuiteSandbox("TSTDRV-US", concurrency_limit=None)


@pytest.fixture
def erp_api(netsuite: NetSuiteSandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {netsuite.issue_token()}"}
    with netsuite.client(netsuite.base_url, headers=headers) as client:
        yield client


@pytest.fixture
def business_central() -> BusinessCentralSandbox:
    return BusinessCentralSandbox(concurrency_limit=None)


@pytest.fixture
def bc_api(business_central: BusinessCentralSandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {business_central.issue_token()}"}
    with business_central.client(business_central.api_url + "/", headers=headers) as client:
        yield client
