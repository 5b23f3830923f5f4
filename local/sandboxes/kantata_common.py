"""Helpers shared by the Kantata OX sandbox modules: paths, error bodies, Rails-style params, paging."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from local.sandboxes.base import Call, Reply, json_response, utc_now

BASE = "/api/v1"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200


def _collection(name: str) -> str:
    return rf"{BASE}/{name}(?:\.json)?"


def _member(name: str) -> str:
    return rf"{BASE}/{name}/(?P<id>\d+)(?:\.json)?"


def _system_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return json_response(
        status,
        {"errors": [{"type": "system", "message": message}]},
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


def _validation(errors: list[dict[str, Any]]) -> Reply:
    return Reply(json_response(422, {"errors": errors}, content_type="application/json; charset=utf-8"))


def _invalid(field: str, message: str, index: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "validation", "field": field, "message": message}
    if index is not None:
        error["index"] = index
    return error


def _now() -> str:
    return utc_now().isoformat(timespec="seconds")


def _param(call: Call, key: str) -> dict[str, Any]:
    """Rails' params.require(key): 400 when the object is missing."""
    body = call.body if isinstance(call.body, dict) else {}
    value = body.get(key)
    if not isinstance(value, dict) or not value:
        raise Reply(_system_error(400, f"param is missing or the value is empty: {key}"))
    return value


def _items(call: Call, singular: str, plural: str, *, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """A single object under `singular`, or a bulk list under `plural` (up to `limit`)."""
    body = call.body if isinstance(call.body, dict) else {}
    if isinstance(body.get(plural), list):
        items = body[plural]
        if not items or len(items) > limit or not all(isinstance(i, dict) for i in items):
            raise Reply(_system_error(400, f"{plural} must be a list of 1 to {limit} objects"))
        return items, True
    return [_param(call, singular)], False


def _window(query: Mapping[str, str]) -> tuple[int, int, int, int]:
    """(limit, offset, page, per_page) from page/per_page, or limit/offset when both are given."""
    per_page = min(_to_int(query.get("per_page"), DEFAULT_PER_PAGE), MAX_PER_PAGE)
    if per_page < 1:
        per_page = DEFAULT_PER_PAGE
    if query.get("limit") and query.get("offset") is not None:
        limit = min(max(_to_int(query.get("limit"), 1), 1), MAX_PER_PAGE)
        offset = max(_to_int(query.get("offset"), 0), 0)
        return limit, offset, offset // limit + 1, limit
    page = max(_to_int(query.get("page"), 1), 1)
    return per_page, (page - 1) * per_page, page, per_page


def _to_int(value: str | None, default: int) -> int:
    """Ruby's to_i: junk is 0, missing is the default."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return 0


def _matches(wanted: str | None, actual: Any) -> bool:
    return wanted is None or str(actual) == wanted


def _id_text(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        return None
    return str(value).strip()


def _id_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _date_errors(data: Mapping[str, Any], start_key: str, due_key: str) -> list[dict[str, Any]]:
    errors = [
        _invalid(key, f"{key.replace('_', ' ').capitalize()} is not a valid date")
        for key in (start_key, due_key)
        if data.get(key) is not None and not _is_date(data[key])
    ]
    if not errors and data.get(start_key) and data.get(due_key) and data[due_key] < data[start_key]:
        errors.append(_invalid(due_key, "Due date must be on or after the start date"))
    return errors
