"""Cached AWS clients, created on first use (never at import time).

boto3 picks the endpoint from ``AWS_ENDPOINT_URL`` when it is set, which is how the local stack points the
very same code at its embedded moto server.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

BATCH_GET = 100  # DynamoDB's most keys per BatchGetItem


@functools.cache
def client(service: str) -> Any:
    import boto3  # imported here: functions that never call AWS never pay for it

    return boto3.session.Session().client(service)


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource (numbers come back as ``Decimal``)."""
    import boto3

    return boto3.session.Session().resource("dynamodb").Table(name)


def batch_get(
    table: Any, keys: Sequence[Mapping[str, Any]], *, consistent: bool = False, what: str = "items"
) -> Iterator[dict[str, Any]]:
    """The items of ``keys`` that exist (any order): ``BatchGetItem`` 100 keys a call through the table's own
    client (plain Python values in and out), unprocessed keys asked again with a growing pause. A
    ``TransientError`` naming ``what`` if some stay unprocessed."""
    from hub.errors import TransientError

    client, name = table.meta.client, table.name
    for start in range(0, len(keys), BATCH_GET):
        request: dict[str, Any] = {name: {"Keys": list(keys[start : start + BATCH_GET])}}
        if consistent:
            request[name]["ConsistentRead"] = True
        for attempt in range(6):
            answer = client.batch_get_item(RequestItems=request)
            yield from (answer.get("Responses") or {}).get(name, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**attempt)
        if request:
            raise TransientError(f"{what} could not be read", system="dynamodb")


def reset_all() -> None:
    client.cache_clear()
    table.cache_clear()
