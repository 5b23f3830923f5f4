"""Cached AWS clients, created on first use (never at import time).

boto3 picks the endpoint from ``AWS_ENDPOINT_URL`` when it is set, which is how the local stack points the
very same code at its embedded moto server.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def client(service: str) -> Any:
    import boto3  # imported here: functions that never call AWS never pay for it

    return boto3.session.Session().client(service)


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource (numbers come back as ``Decimal``)."""
    import boto3

    return boto3.session.Session().resource("dynamodb").Table(name)


def reset_all() -> None:
    client.cache_clear()
    table.cache_clear()
