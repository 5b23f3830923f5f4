"""Shared runtime code of the hub: canonical model, connectors, routing, ledger, observability.

Shipped to Lambda as a layer (``python/hub``). Nothing here touches AWS or reads the environment at import time.
"""
