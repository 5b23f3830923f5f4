"""Building signed deliveries the way a Standard Webhooks sender does (independent of the hub's verifier)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

TEST_SECRET = "whsec_" + base64.b64encode(b"test-signing-secret-0123456789ab").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"old-signing-secret-0123456789abc").decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    body: bytes, *secrets: str, msg_id: str | None = None, timestamp: int | None = None
) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in (secrets or (TEST_SECRET,)))
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def change_body(record: dict[str, Any], changed: list[str] | None = None) -> bytes:
    return json.dumps(
        {"type": "opportunity.changed", "data": {"changedFields": changed or ["StageName"], "record": record}}
    ).encode()


def api_event(
    body: bytes | str,
    headers: dict[str, str],
    *,
    path: str = "/v1/webhooks/crm/opportunities",
    method: str = "POST",
) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event as Lambda receives it."""
    text = body.decode() if isinstance(body, bytes) else body
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "v1",
            "httpMethod": method,
            "resourcePath": path,
            "path": f"/v1{path}",
        },
        "body": text,
        "isBase64Encoded": False,
    }
