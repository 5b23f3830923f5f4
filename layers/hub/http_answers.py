"""API Gateway REST proxy requests in, proxy answers out: the plumbing every HTTP handler shares.

Reading: header names lower-cased (single- and multi-value maps merged), the body as bytes (base64 undone
when API Gateway says so), the media type without its parameters. Answering: a JSON answer, and the error
shape every 4xx/5xx uses, ``{"error": ..., "problems": [{"field", "problem"}]}``. Counting and logging a
rejection stays in each handler, next to the metric names its dashboard reads.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def request_headers(event: dict[str, Any]) -> dict[str, str]:
    """Header names lower-cased; a name only in ``multiValueHeaders`` takes its last value."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if values and key.lower() not in headers:
            headers[key.lower()] = values[-1]
    return headers


def request_body(event: dict[str, Any]) -> bytes:
    """The body's bytes; ValueError (``binascii.Error``) when a base64 body is not valid base64."""
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")


def media_type(headers: dict[str, str]) -> str:
    """``application/json`` from ``Content-Type: application/json; charset=utf-8``; empty when absent."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def json_answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def problem_answer(status: int, error: str, problems: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """``{"error": ..., "problems": [...]}`` (problems only when there are some)."""
    return json_answer(status, {"error": error, **({"problems": problems} if problems else {})})
