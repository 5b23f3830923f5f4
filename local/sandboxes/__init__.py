"""SaaS simulators (sandboxes) for local runs and tests: Salesforce, Kantata OX, NetSuite, Business Central and
Workday.

Each is written from the vendor's documented API shapes and shares no code with the hub. See `base.Sandbox`.
"""

from local.sandboxes.base import Faults, RecordedRequest, Sandbox
from local.sandboxes.business_central import BusinessCentralSandbox
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox
from local.sandboxes.salesforce import SalesforceSandbox, outbound_message
from local.sandboxes.server import SandboxServer
from local.sandboxes.workday import WorkdaySandbox

__all__ = [
    "BusinessCentralSandbox",
    "Faults",
    "KantataSandbox",
    "NetSuiteSandbox",
    "RecordedRequest",
    "Sandbox",
    "SalesforceSandbox",
    "SandboxServer",
    "WorkdaySandbox",
    "outbound_message",
]
