"""NetSuite (ERP) simulator: one account's REST record API v1 for customers and projects (jobs).

Simulated vendor behaviour (NetSuite Help Center, REST Web Services):

* token endpoint `POST /services/rest/auth/oauth2/v1/token`, client credentials: `{"access_token",
  "expires_in": "3600", "token_type": "Bearer"}` (expires_in is a string, as in NetSuite's example); the real
  service takes a JWT client assertion (checked here for iss, aud, scope and exp, not for its signature), the
  sandbox also takes a client secret (form fields or HTTP Basic). Tokens expire after an hour.
* `PUT /services/rest/record/v1/{customer|job}/eid:{externalId}` upserts and answers 204 with
  `Location: .../record/v1/{type}/{internalId}`; `GET .../eid:{externalId}` and `GET .../{internalId}`.
* external ids are letters, digits, `_` and `-`; anything else is a 400.
* errors are RFC 9457-style: `{"type","title","status","o:errorDetails":[{"detail","o:errorCode"[,
  "o:errorPath"]}]}`; missing mandatory fields -> 400 USER_ERROR, an invalid reference (unknown subsidiary,
  currency or parent customer) -> 400 INVALID_CONTENT with `o:errorPath`, unknown record -> 404
  NONEXISTENT_ID, bad or expired token -> 401 INVALID_LOGIN.
* references come back as `{"links":[{"rel":"self","href":...}],"id":..,"refName":..}`.
* one account-wide concurrency pool: a request over it answers 429 CONCURRENCY_LIMIT_EXCEEDED.
* a unique index on (type, externalId): two concurrent first upserts of one external id leave ONE record.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from local.sandboxes.base import Call, Faults, MalformedBody, Reply, Sandbox, json_response, utc_now

RECORD_TYPES = ("customer", "job")
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORD_PATH = "/services/rest/record/v1"
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ERROR_TYPES = {
    400: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1", "Bad Request"),
    401: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.2", "Unauthorized"),
    404: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.5", "Not Found"),
    405: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.6", "Method Not Allowed"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.1", "Internal Server Error"),
    503: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.4", "Service Unavailable"),
}
ERROR_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=error"
RECORD_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=singular"
REQUIRED_LABELS = {"companyName": "Company Name", "subsidiary": "Primary Subsidiary", "parent": "Customer"}


def ns_error(status: int, code: str, detail: str, *, path: str | None = None) -> httpx.Response:
    """NetSuite's error body."""
    error_type, title = ERROR_TYPES.get(status, ERROR_TYPES[400])
    item: dict[str, str] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        item["o:errorPath"] = path
    body = {"type": error_type, "title": title, "status": status, "o:errorDetails": [item]}
    return json_response(status, body, content_type=ERROR_CONTENT_TYPE)


def _bad(code: str, detail: str, path: str | None = None) -> Reply:
    return Reply(ns_error(400, code, detail, path=path))


@dataclass
class _Token:
    expires_at: float


class NetSuiteSandbox(Sandbox):
    """One NetSuite account (e.g. "TSTDRV-US"): its own records, tokens and concurrency pool.

    Args:
        account_id: the account id; its host is `{account_id lower-cased, _ -> -}.suitetalk.api.netsuite.com`.
        client_id / client_secret: the integration record's credentials.
        subsidiaries: internal id -> name of the account's subsidiaries.
        currencies: internal id -> ISO symbol of the account's currencies.
        concurrency_limit: the account's concurrency pool (5 = shared tier without SuiteCloud Plus).
        write_delay: seconds a write spends between reading the external-id index and committing (makes the
            concurrent-upsert race real in tests).
        token_ttl: access token lifetime in seconds (NetSuite: 3600).
        clock: time source for token expiry.
    """

    vendor = "netsuite"

    def __init__(
        self,
        account_id: str = "TSTDRV-US",
        *,
        client_id: str = "pshub-integration",
        client_secret: str = "pshub-netsuite-secret",
        subsidiaries: Mapping[str, str] | None = None,
        currencies: Mapping[str, str] | None = None,
        concurrency_limit: int | None = 5,
        faults: Faults | None = None,
        write_delay: float = 0.0,
        token_ttl: int = 3600,
        clock: Callable[[], float] = time.time,
        first_internal_id: int = 1001,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.subsidiaries = dict(subsidiaries or {"1": "Parent Company"})
        self.currencies = dict(currencies or {"1": "USD", "2": "GBP", "3": "CAD", "4": "EUR"})
        self.write_delay = write_delay
        self.token_ttl = token_ttl
        self.clock = clock
        self.first_internal_id = first_internal_id
        super().__init__(faults=faults, concurrency_limit=concurrency_limit)

    @property
    def host(self) -> str:
        return f"{self.account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    # ------------------------------------------------------------------ state and routes
    def _reset_state(self) -> None:
        self._records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in RECORD_TYPES}
        self._by_eid: dict[str, dict[str, str]] = {t: {} for t in RECORD_TYPES}
        self._tokens: dict[str, _Token] = {}
        self._next_internal_id = self.first_internal_id

    def _register_routes(self) -> None:
        self.route("POST", TOKEN_PATH, self._token, governed=False)
        record = RECORD_PATH + r"/(?P<type>\w+)/"
        self.route("PUT", record + r"eid:(?P<eid>[^/]*)", self._upsert)
        self.route("GET", record + r"eid:(?P<eid>[^/]*)", self._get_by_external_id)
        self.route("GET", record + r"(?P<internal_id>[^/:]+)", self._get_by_internal_id)

    # ------------------------------------------------------------------ vendor answers
    def not_found_response(self, call: Call) -> httpx.Response:
        return ns_error(404, "NONEXISTENT_ID", f"Invalid request URL: {call.path}")

    def throttled_response(self, call: Call) -> httpx.Response:
        return ns_error(
            429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."
        )

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return self.throttled_response(call)

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        if status == 503:
            return ns_error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
        return ns_error(
            status, "UNEXPECTED_ERROR", f"An unexpected error occurred. Error ID: {secrets.token_hex(8)}"
        )

    def authorize(self, call: Call) -> httpx.Response | None:
        token = self._tokens.get(call.bearer_token() or "")
        if token is None or token.expires_at <= self.clock():
            return ns_error(
                401,
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit "
                "Trail in the NetSuite UI at Setup > Users/Roles > User "
                "Management > View Login Audit Trail.",
            )
        return None

    # ------------------------------------------------------------------ OAuth 2.0 client credentials
    def _token(self, call: Call) -> httpx.Response:
        form = call.body if isinstance(call.body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        if form.get("client_assertion_type") == JWT_BEARER:
            if not self._valid_assertion(form.get("client_assertion", ""), call.origin):
                return json_response(400, {"error": "invalid_grant"})
        elif not self._valid_secret(form, call.request):
            return json_response(400, {"error": "invalid_client"})
        return json_response(
            200,
            {"access_token": self.issue_token(), "expires_in": str(self.token_ttl), "token_type": "Bearer"},
        )

    def _valid_secret(self, form: Mapping[str, str], request: httpx.Request) -> bool:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
        return client_id == self.client_id and hmac.compare_digest(
            (secret or "").encode(), self.client_secret.encode()
        )

    def _valid_assertion(self, assertion: str, origin: str) -> bool:
        """The JWT's claims as NetSuite checks them (the signature is not verified by the sandbox)."""
        try:
            payload_part = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
        except (IndexError, ValueError):
            return False
        scope = claims.get("scope", [])
        scopes = scope if isinstance(scope, list) else str(scope).replace(",", " ").split()
        audiences = {f"https://{self.host}{TOKEN_PATH}", f"{origin}{TOKEN_PATH}"}
        return (
            claims.get("iss") == self.client_id
            and claims.get("aud") in audiences
            and "rest_webservices" in scopes
            and float(claims.get("exp", 0)) > self.clock()
        )

    def issue_token(self) -> str:
        """A valid access token (what the token call hands out)."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(self.clock() + self.token_ttl)
        return token

    def expire_token(self, token: str) -> None:
        with self._lock:
            if token in self._tokens:
                self._tokens[token].expires_at = 0.0

    def expire_all_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0

    # ------------------------------------------------------------------ upsert
    def _upsert(self, call: Call) -> httpx.Response:
        record_type = self._record_type(call)
        eid = self._external_id(call)
        body = call.body
        if isinstance(body, MalformedBody) or not isinstance(body, dict):
            raise _bad(
                "INVALID_CONTENT",
                "Invalid content in the request body. The request body must be a JSON object.",
            )
        with self._lock:
            existing_id = self._by_eid[record_type].get(eid)
            existing = self._records[record_type].get(existing_id or "")
            values = self._validated(record_type, body, existing)
        if self.write_delay:
            time.sleep(self.write_delay)
        internal_id = self._commit(record_type, eid, values)
        location = f"{call.origin}{RECORD_PATH}/{record_type}/{internal_id}"
        return httpx.Response(204, headers={"Location": location})

    def _commit(self, record_type: str, eid: str, values: dict[str, Any]) -> str:
        """The unique index on externalId: whoever commits second updates the record the first one created."""
        now = utc_now().isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._lock:
            internal_id = self._by_eid[record_type].get(eid)
            if internal_id is None:
                internal_id = str(self._next_internal_id)
                self._next_internal_id += 1
                self._records[record_type][internal_id] = {
                    "id": internal_id,
                    "externalId": eid,
                    "dateCreated": now,
                }
                self._by_eid[record_type][eid] = internal_id
            record = self._records[record_type][internal_id]
            record.update(values)
            record["lastModifiedDate"] = now
            record["entityId"] = self._entity_id(record_type, record)
            return internal_id

    def _validated(
        self, record_type: str, body: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The values to store, after NetSuite's mandatory-field and reference checks."""
        values = {k: v for k, v in body.items() if k not in ("id", "externalId", "links")}
        merged = {**(existing or {}), **values}
        required = ["companyName", "subsidiary"] if record_type == "customer" else ["companyName", "parent"]
        missing = [REQUIRED_LABELS[f] for f in required if _blank(merged.get(f))]
        if missing:
            raise _bad(
                "USER_ERROR",
                f"Error while accessing a resource. Please enter value(s) for: {', '.join(missing)}.",
            )
        if "subsidiary" in values:
            values["subsidiary"] = {
                "id": self._resolve_reference(values["subsidiary"], self.subsidiaries, "subsidiary")
            }
        if "currency" in values:
            values["currency"] = {
                "id": self._resolve_reference(values["currency"], self.currencies, "currency")
            }
        if "parent" in values:
            values["parent"] = {"id": self._resolve_customer(values["parent"])}
        if record_type == "job" and "subsidiary" not in merged:
            parent = self._records["customer"][values["parent"]["id"]]
            values["subsidiary"] = dict(parent["subsidiary"])
        for key in ("startDate", "projectedEndDate"):
            if values.get(key) is not None and not _is_date(values[key]):
                raise _bad(
                    "INVALID_CONTENT",
                    f"Error while accessing a resource. You have entered an Invalid "
                    f"Field Value {values[key]} for the following field: {key}",
                    key,
                )
        return values

    def _resolve_reference(self, reference: Any, known: Mapping[str, str], field_name: str) -> str:
        """A select/reference given by id (or, for lists like currency, by refName) -> its internal id."""
        ref = reference if isinstance(reference, dict) else {"id": reference}
        if ref.get("id") is not None and str(ref["id"]) in known:
            return str(ref["id"])
        if ref.get("id") is None and ref.get("refName") is not None:
            for internal_id, name in known.items():
                if name == ref["refName"]:
                    return internal_id
        shown = ref.get("id", ref.get("refName"))
        raise _bad(
            "INVALID_CONTENT",
            f"Error while accessing a resource. You have entered an Invalid Field Value "
            f"{shown} for the following field: {field_name}",
            field_name,
        )

    def _resolve_customer(self, reference: Any) -> str:
        ref = reference if isinstance(reference, dict) else {"id": reference}
        if ref.get("id") is not None and str(ref["id"]) in self._records["customer"]:
            return str(ref["id"])
        if ref.get("externalId") is not None and ref["externalId"] in self._by_eid["customer"]:
            return self._by_eid["customer"][ref["externalId"]]
        shown = ref.get("id", ref.get("externalId"))
        raise _bad(
            "INVALID_CONTENT",
            f"Error while accessing a resource. You have entered an Invalid Field Value "
            f"{shown} for the following field: parent",
            "parent",
        )

    def _entity_id(self, record_type: str, record: Mapping[str, Any]) -> str:
        if record_type == "job":
            parent = self._records["customer"].get(record["parent"]["id"], {})
            return f"{parent.get('entityId', parent.get('companyName', ''))} : {record['companyName']}"
        return str(record["companyName"])

    # ------------------------------------------------------------------ reads
    def _get_by_external_id(self, call: Call) -> httpx.Response:
        record_type = self._record_type(call)
        eid = self._external_id(call)
        with self._lock:
            internal_id = self._by_eid[record_type].get(eid)
            return self._present_or_404(call, record_type, internal_id)

    def _get_by_internal_id(self, call: Call) -> httpx.Response:
        record_type = self._record_type(call)
        with self._lock:
            return self._present_or_404(call, record_type, call.params["internal_id"])

    def _present_or_404(self, call: Call, record_type: str, internal_id: str | None) -> httpx.Response:
        record = self._records[record_type].get(internal_id or "")
        if record is None:
            return ns_error(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        return json_response(
            200, self._present(call.origin, record_type, record), content_type=RECORD_CONTENT_TYPE
        )

    def _present(self, origin: str, record_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"links": [_link(origin, record_type, record["id"])]}
        for key, value in record.items():
            body[key] = self._present_reference(origin, key, value) if isinstance(value, dict) else value
        return body

    def _present_reference(self, origin: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        names = {
            "subsidiary": ("subsidiary", self.subsidiaries.get),
            "currency": ("currency", self.currencies.get),
            "parent": ("customer", lambda i: self._records["customer"].get(i, {}).get("entityId")),
        }
        if key not in names or "id" not in value:
            return dict(value)
        target, name_of = names[key]
        return {
            "links": [_link(origin, target, value["id"])],
            "id": value["id"],
            "refName": name_of(value["id"]),
        }

    # ------------------------------------------------------------------ request parts
    def _record_type(self, call: Call) -> str:
        record_type = call.params["type"]
        if record_type not in RECORD_TYPES:
            raise Reply(ns_error(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist."))
        return record_type

    @staticmethod
    def _external_id(call: Call) -> str:
        eid = call.params["eid"]
        if not EXTERNAL_ID.fullmatch(eid):
            raise _bad(
                "INVALID_VALUE",
                f"Invalid external ID: '{eid}'. An external ID can contain only letters, "
                f"numbers, underscore (_) and hyphen (-).",
            )
        return eid

    # ------------------------------------------------------------------ seeding and inspection
    def seed_customer(self, external_id: str, **fields: Any) -> str:
        """Create a customer directly (validated like the API); returns its internal id."""
        values = {
            "companyName": "Acme Consulting Ltd",
            "subsidiary": {"id": next(iter(self.subsidiaries))},
            **fields,
        }
        return self._seed("customer", external_id, values)

    def seed_job(self, external_id: str, parent_id: str, **fields: Any) -> str:
        values = {"companyName": "Acme - Implementation", **fields, "parent": {"id": parent_id}}
        return self._seed("job", external_id, values)

    def _seed(self, record_type: str, external_id: str, values: Mapping[str, Any]) -> str:
        if not EXTERNAL_ID.fullmatch(external_id):
            raise ValueError(f"invalid external id {external_id!r}")
        try:
            with self._lock:
                existing = self._records[record_type].get(self._by_eid[record_type].get(external_id, ""))
                validated = self._validated(record_type, values, existing)
        except Reply as reply:
            raise ValueError(reply.response.json()["o:errorDetails"][0]["detail"]) from None
        return self._commit(record_type, external_id, validated)

    def records(self, record_type: str) -> list[dict[str, Any]]:
        """Copies of every record of a type (internal fields, references as {"id"})."""
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._records[record_type].values()]

    def record(self, record_type: str, internal_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records[record_type].get(str(internal_id))
            return json.loads(json.dumps(found)) if found else None

    def by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            internal_id = self._by_eid[record_type].get(external_id)
        return None if internal_id is None else self.record(record_type, internal_id)

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"customer": [{"externalId", fields...}], "job": [{"externalId", "parent": {"id"}, fields...}]}."""
        created: dict[str, list[str]] = {"customer": [], "job": []}
        for record_type in RECORD_TYPES:
            for item in payload.get(record_type, []):
                values = {k: v for k, v in item.items() if k != "externalId"}
                created[record_type].append(self._seed(record_type, item["externalId"], values))
        return created

    def state(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "subsidiaries": self.subsidiaries,
            "currencies": self.currencies,
            "records": {t: self.records(t) for t in RECORD_TYPES},
        }


def _link(origin: str, record_type: str, internal_id: str) -> dict[str, str]:
    return {"rel": "self", "href": f"{origin}{RECORD_PATH}/{record_type}/{internal_id}"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == {}


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
