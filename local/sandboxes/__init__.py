"""SaaS simulators (sandboxes) for local runs and tests: Salesforce, Kantata OX and NetSuite.

Each is written from the vendor's documented API shapes and shares no code with the hub. See `base.Sandbox`.
"""

from local.sandboxes.base import Faults, RecordedRequest, Sandbox
from local.sandboxes.kantata import KantataSandbox
from local.sandboxes.netsuite import NetSuiteSandbox
from local.sandboxes.salesforce import SalesforceSandbox, outbound_message
from local.sandboxes.server import SandboxServer

__all__ = [
    "Faults",
    "KantataSandbox",
    "NetSuiteSandbox",
    "RecordedRequest",
    "Sandbox",
    "SalesforceSandbox",
    "SandboxServer",
    "outbound_message",
]
