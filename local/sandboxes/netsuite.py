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

Time and expenses (the second flow):

* `PUT .../timebill/eid:{externalId}` (Track Time): `employee`, `tranDate` and `hours` are mandatory
  ("Employee", "Date", "Duration"); `hours` is a duration, given as decimal hours or `"H:MM"`; `customer` (a
  customer or project), `caseTaskEvent` (a project task of that project), `item` (a service item),
  `isBillable`, `memo`, `approvalStatus`, `supervisorApproval`; a billable entry needs a customer and an item.
* `PUT .../expensereport/eid:{externalId}`: `entity` (the employee) and `tranDate` are mandatory, with an
  `expense` sublist `{"items": [{"expenseDate", "category", "amount", "currency", "taxCode", "receipt",
  "memo", "customer", "isBillable", ...}]}` of at least one line ("You must enter at least one line item for
  this transaction."). Sublists follow NetSuite's update rule: on an update the lines of a non-keyed sublist
  are APPENDED unless the request says `?replace=expense`; a line that carries an existing `line` key updates
  that line. A read shows a sublist as a link unless `?expandSubResources=true`.
* Unknown body fields on these two records are refused (400 INVALID_CONTENT with `o:errorPath`); custom fields
  (`custbody...` / `custcol...`) are accepted as given.
* `accountingperiod` records (read-only: `GET .../accountingperiod[/{id}]`, `?q=` filters): `periodName`,
  `startDate`, `endDate`, `isQuarter`, `isYear`, `isAdjust`, `isPosting`, `closed`, `closedOnDate`,
  `apLocked`, `arLocked`, `allLocked`. When the account has periods, a time bill or expense report dated in a
  closed period is refused with 400 USER_ERROR (`o:errorPath` `tranDate`); an all-locked period (or, for
  expense reports, an A/P-locked one) is refused too unless the role may override period restrictions; a date
  outside every period is refused.
* `GET .../{type}?q=...&limit=&offset=` answers NetSuite's collection `{"links","count","hasMore","items":
  [{"links","id"}],"offset","totalResults"}`; `POST /services/rest/query/v1/suiteql` (header
  `Prefer: transient`) runs a SuiteQL subset over `accountingperiod` (see `netsuite_query`).
* the account-wide concurrency pool governs every call above, SuiteQL included.
"""

from __future__ import annotations

import base64
import calendar
import copy
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from local.sandboxes.base import Call, Faults, MalformedBody, Reply, Sandbox, json_response, utc_now
from local.sandboxes.netsuite_query import QueryError, parse_date, record_filter, run_suiteql, suiteql_date

ENTITY_TYPES = ("customer", "job")
TRANSACTION_TYPES = ("timebill", "expensereport")
WRITABLE_TYPES = ENTITY_TYPES + TRANSACTION_TYPES
SEEDED_TYPES = ("employee", "projecttask", "accountingperiod")
RECORD_TYPES = WRITABLE_TYPES + SEEDED_TYPES
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
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
COLLECTION_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=collection"
REQUIRED_LABELS = {"companyName": "Company Name", "subsidiary": "Primary Subsidiary", "parent": "Customer"}
TIMEBILL_LABELS = {"employee": "Employee", "tranDate": "Date", "hours": "Duration"}
EXPENSE_REPORT_LABELS = {"entity": "Employee", "tranDate": "Date"}
EXPENSE_LINE_LABELS = {"expenseDate": "Date", "category": "Category", "amount": "Amount"}
TIMEBILL_FIELDS = {
    "employee",
    "tranDate",
    "hours",
    "customer",
    "caseTaskEvent",
    "item",
    "isBillable",
    "memo",
    "subsidiary",
    "approvalStatus",
    "supervisorApproval",
    "department",
    "class",
    "location",
    "rate",
    "price",
    "payrollItem",
    "paidExternally",
    "timeType",
}
EXPENSE_REPORT_FIELDS = {
    "entity",
    "tranDate",
    "memo",
    "subsidiary",
    "postingPeriod",
    "currency",
    "expense",
    "supervisorApproval",
    "accountingApproval",
    "approvalStatus",
    "department",
    "class",
    "location",
    "dueDate",
    "advance",
    "complete",
}
EXPENSE_LINE_FIELDS = {
    "line",
    "expenseDate",
    "category",
    "amount",
    "currency",
    "exchangeRate",
    "foreignAmount",
    "taxCode",
    "tax1Amt",
    "grossAmt",
    "receipt",
    "memo",
    "customer",
    "isBillable",
    "department",
    "class",
    "location",
    "quantity",
    "rate",
}
PERIOD_FIELDS = (
    "periodName",
    "startDate",
    "endDate",
    "isQuarter",
    "isYear",
    "isAdjust",
    "isPosting",
    "isInactive",
    "closed",
    "closedOnDate",
    "apLocked",
    "arLocked",
    "allLocked",
    "parent",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ns_error(
    status: int, code: str, detail: str, *, path: str | None = None, query_param: str | None = None
) -> httpx.Response:
    """NetSuite's error body."""
    error_type, title = ERROR_TYPES.get(status, ERROR_TYPES[400])
    item: dict[str, str] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        item["o:errorPath"] = path
    if query_param is not None:
        item["o:errorQueryParam"] = query_param
    body = {"type": error_type, "title": title, "status": status, "o:errorDetails": [item]}
    return json_response(status, body, content_type=ERROR_CONTENT_TYPE)


def _bad(code: str, detail: str, path: str | None = None) -> Reply:
    return Reply(ns_error(400, code, detail, path=path))


def _invalid_value(value: Any, field_name: str, path: str | None = None) -> Reply:
    return _bad(
        "INVALID_CONTENT",
        f"Error while accessing a resource. You have entered an Invalid Field Value "
        f"{value} for the following field: {field_name}",
        path or field_name,
    )


def _missing(labels: Iterable[str]) -> Reply:
    return _bad(
        "USER_ERROR",
        f"Error while accessing a resource. Please enter value(s) for: {', '.join(labels)}.",
    )


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
        items: internal id -> name of the service items time can be billed with.
        expense_categories: internal id -> name of the expense categories.
        tax_codes: internal id -> name of the tax codes expense lines may carry.
        override_period_restrictions: whether the integration role may post into locked (not closed) periods.
        period_guarded_types: the transaction types checked against the accounting periods.
        closed_period_code: the `o:errorCode` of a posting into a closed period.
    """

    vendor = "netsuite"
    closed_period_code = "USER_ERROR"

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
        items: Mapping[str, str] | None = None,
        expense_categories: Mapping[str, str] | None = None,
        tax_codes: Mapping[str, str] | None = None,
        override_period_restrictions: bool = False,
        period_guarded_types: Iterable[str] = TRANSACTION_TYPES,
        closed_period_code: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.subsidiaries = dict(subsidiaries or {"1": "Parent Company"})
        self.currencies = dict(currencies or {"1": "USD", "2": "GBP", "3": "CAD", "4": "EUR"})
        self.items = dict(items or {"10": "Consulting Services", "11": "Project Management"})
        self.expense_categories = dict(
            expense_categories
            or {
                "1": "Travel",
                "2": "Meals",
                "3": "Lodging",
                "4": "Mileage",
                "5": "Entertainment",
                "6": "Other",
            }
        )
        self.tax_codes = dict(tax_codes or {"5": "S-GB", "6": "Z-GB", "7": "E-GB", "8": "RC-EU"})
        self.override_period_restrictions = override_period_restrictions
        self.period_guarded_types = tuple(period_guarded_types)
        if closed_period_code is not None:
            self.closed_period_code = closed_period_code
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
        self._next_period_id = 1
        self._next_tran_id = 1

    def _register_routes(self) -> None:
        self.route("POST", TOKEN_PATH, self._token, governed=False)
        self.route("POST", SUITEQL_PATH, self._suiteql)
        record = RECORD_PATH + r"/(?P<type>\w+)/"
        self.route("PUT", record + r"eid:(?P<eid>[^/]*)", self._upsert)
        self.route("GET", record + r"eid:(?P<eid>[^/]*)", self._get_by_external_id)
        self.route("GET", record + r"(?P<internal_id>[^/:]+)", self._get_by_internal_id)
        self.route("GET", RECORD_PATH + r"/(?P<type>\w+)/?", self._list)

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
        if record_type not in WRITABLE_TYPES:
            return ns_error(
                405,
                "INVALID_METHOD",
                f"Error while accessing a resource. The {record_type} record cannot be written by this "
                f"integration (the sandbox seeds it).",
            )
        eid = self._external_id(call)
        body = call.body
        if isinstance(body, MalformedBody) or not isinstance(body, dict):
            raise _bad(
                "INVALID_CONTENT",
                "Invalid content in the request body. The request body must be a JSON object.",
            )
        replace = {part.strip() for part in call.query.get("replace", "").split(",") if part.strip()}
        with self._lock:
            existing_id = self._by_eid[record_type].get(eid)
            existing = self._records[record_type].get(existing_id or "")
            values = self._validated(record_type, body, existing, replace=replace)
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
                if record_type == "expensereport":
                    self._records[record_type][internal_id]["tranId"] = f"ER{self._next_tran_id:05d}"
                    self._next_tran_id += 1
                self._by_eid[record_type][eid] = internal_id
            record = self._records[record_type][internal_id]
            lines = values.pop("_lines", None)
            record.update(values)
            if lines is not None:
                record["expense"] = {"items": self._merged_lines(record.get("expense"), lines)}
            record["lastModifiedDate"] = now
            if record_type in ENTITY_TYPES:
                record["entityId"] = self._entity_id(record_type, record)
            return internal_id

    @staticmethod
    def _merged_lines(
        current: Mapping[str, Any] | None, change: tuple[bool, list[dict[str, Any]]]
    ) -> list[dict]:
        """NetSuite's sublist update: keyed lines update in place, the others are appended (or replace all)."""
        replace, lines = change
        existing = [] if replace or not current else [dict(line) for line in current.get("items", [])]
        by_key = {line["line"]: line for line in existing}
        next_key = max(by_key, default=0) + 1
        for line in lines:
            key = line.get("line")
            if key in by_key:
                by_key[key].update(line)
                continue
            new_line = {**line, "line": next_key}
            next_key += 1
            existing.append(new_line)
            by_key[new_line["line"]] = new_line
        return existing

    def _validated(
        self,
        record_type: str,
        body: Mapping[str, Any],
        existing: Mapping[str, Any] | None,
        *,
        replace: set[str] | None = None,
    ) -> dict[str, Any]:
        """The values to store, after NetSuite's mandatory-field and reference checks."""
        if record_type == "timebill":
            return self._validated_timebill(body, existing)
        if record_type == "expensereport":
            return self._validated_expense_report(body, existing, replace or set())
        values = {k: v for k, v in body.items() if k not in ("id", "externalId", "links")}
        merged = {**(existing or {}), **values}
        required = ["companyName", "subsidiary"] if record_type == "customer" else ["companyName", "parent"]
        missing = [REQUIRED_LABELS[f] for f in required if _blank(merged.get(f))]
        if missing:
            raise _missing(missing)
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
                raise _invalid_value(values[key], key)
        return values

    # ------------------------------------------------------------------ time bills
    def _validated_timebill(
        self, body: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        values = {k: v for k, v in body.items() if k not in ("id", "externalId", "links")}
        _refuse_unknown_fields(values, TIMEBILL_FIELDS)
        merged = {**(existing or {}), **values}
        missing = [label for name, label in TIMEBILL_LABELS.items() if _blank(merged.get(name))]
        if missing:
            raise _missing(missing)
        if "employee" in values:
            values["employee"] = {"id": self._resolve_record(values["employee"], ("employee",), "employee")}
        if "tranDate" in values and not _is_date(values["tranDate"]):
            raise _invalid_value(values["tranDate"], "tranDate")
        if "hours" in values:
            values["hours"] = _duration_hours(values["hours"])
        if "customer" in values and not _blank(values["customer"]):
            values["customer"] = {
                "id": self._resolve_record(values["customer"], ("job", "customer"), "customer")
            }
        if "item" in values and not _blank(values["item"]):
            values["item"] = {"id": self._resolve_reference(values["item"], self.items, "item")}
        if "isBillable" in values and not isinstance(values["isBillable"], bool):
            raise _invalid_value(values["isBillable"], "isBillable")
        if "subsidiary" in values:
            values["subsidiary"] = {
                "id": self._resolve_reference(values["subsidiary"], self.subsidiaries, "subsidiary")
            }
        merged = {**(existing or {}), **values}
        if not _blank(merged.get("caseTaskEvent")):
            if _blank(merged.get("customer")):
                raise _missing(["Customer"])
            task_id = self._resolve_record(merged["caseTaskEvent"], ("projecttask",), "caseTaskEvent")
            task = self._records["projecttask"][task_id]
            if task["company"]["id"] != merged["customer"]["id"]:
                raise _invalid_value(task_id, "caseTaskEvent")
            values["caseTaskEvent"] = {"id": task_id}
        if merged.get("isBillable"):
            missing = [
                label
                for name, label in (("customer", "Customer"), ("item", "Service Item"))
                if _blank(merged.get(name))
            ]
            if missing:
                raise _missing(missing)
        if "subsidiary" not in merged:
            employee = self._records["employee"][merged["employee"]["id"]]
            values["subsidiary"] = dict(employee["subsidiary"])
        values.setdefault("isBillable", bool(merged.get("isBillable", False)))
        self._check_period("timebill", merged["tranDate"])
        return values

    # ------------------------------------------------------------------ expense reports
    def _validated_expense_report(
        self, body: Mapping[str, Any], existing: Mapping[str, Any] | None, replace: set[str]
    ) -> dict[str, Any]:
        values = {k: v for k, v in body.items() if k not in ("id", "externalId", "links", "tranId")}
        _refuse_unknown_fields(values, EXPENSE_REPORT_FIELDS)
        merged = {**(existing or {}), **values}
        missing = [label for name, label in EXPENSE_REPORT_LABELS.items() if _blank(merged.get(name))]
        if missing:
            raise _missing(missing)
        if "entity" in values:
            values["entity"] = {"id": self._resolve_record(values["entity"], ("employee",), "entity")}
        if "tranDate" in values and not _is_date(values["tranDate"]):
            raise _invalid_value(values["tranDate"], "tranDate")
        for name, known in (("subsidiary", self.subsidiaries), ("currency", self.currencies)):
            if name in values and not _blank(values[name]):
                values[name] = {"id": self._resolve_reference(values[name], known, name)}
        lines: list[dict[str, Any]] | None = None
        if "expense" in values:
            sublist = values.pop("expense")
            items = sublist.get("items") if isinstance(sublist, dict) else None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise _bad(
                    "INVALID_CONTENT",
                    'Invalid content in the request body. A sublist is given as {"items": [...]}.',
                    "expense",
                )
            lines = [self._expense_line(i, item) for i, item in enumerate(items)]
        existing_lines = (existing or {}).get("expense", {}).get("items", [])
        replacing = "expense" in replace
        if not (lines if replacing or not existing_lines else existing_lines + (lines or [])):
            raise _bad(
                "USER_ERROR",
                "Error while accessing a resource. You must enter at least one line item for this transaction.",
            )
        if lines is not None:
            values["_lines"] = (replacing, lines)
        merged = {**(existing or {}), **values}
        if "subsidiary" not in merged:
            employee = self._records["employee"][merged["entity"]["id"]]
            values["subsidiary"] = dict(employee["subsidiary"])
        if "currency" not in merged:
            values["currency"] = {"id": next(iter(self.currencies))}
        period = self._check_period("expensereport", merged["tranDate"], merged.get("postingPeriod"))
        if period is not None:
            values["postingPeriod"] = {"id": period["id"]}
        return values

    def _expense_line(self, index: int, item: Mapping[str, Any]) -> dict[str, Any]:
        path = f"expense.items[{index}]"
        line = dict(item)
        unknown = sorted(k for k in line if k not in EXPENSE_LINE_FIELDS and not k.startswith("cust"))
        if unknown:
            raise _bad(
                "INVALID_CONTENT",
                f"Error while accessing a resource. The field {unknown[0]} does not exist on the expense "
                f"sublist of the expensereport record.",
                f"{path}.{unknown[0]}",
            )
        if line.get("line") is None:
            missing = [label for name, label in EXPENSE_LINE_LABELS.items() if _blank(line.get(name))]
            if missing:
                raise _missing(missing)
        if "expenseDate" in line and not _is_date(line["expenseDate"]):
            raise _invalid_value(line["expenseDate"], "expenseDate", f"{path}.expenseDate")
        if "amount" in line and (
            isinstance(line["amount"], bool) or not isinstance(line["amount"], int | float)
        ):
            raise _invalid_value(line["amount"], "amount", f"{path}.amount")
        refs = (
            ("category", self.expense_categories),
            ("currency", self.currencies),
            ("taxCode", self.tax_codes),
        )
        for name, known in refs:
            if name in line and not _blank(line[name]):
                line[name] = {"id": self._resolve_reference(line[name], known, name, f"{path}.{name}")}
        if "customer" in line and not _blank(line["customer"]):
            line["customer"] = {
                "id": self._resolve_record(
                    line["customer"], ("job", "customer"), "customer", f"{path}.customer"
                )
            }
        for flag in ("receipt", "isBillable"):
            if flag in line and not isinstance(line[flag], bool):
                raise _invalid_value(line[flag], flag, f"{path}.{flag}")
        return line

    # ------------------------------------------------------------------ accounting periods
    def _check_period(
        self, record_type: str, tran_date: str, posting_period: Any = None
    ) -> dict[str, Any] | None:
        """The posting period of a transaction; refuses closed, locked and missing periods as NetSuite does."""
        periods = self._records["accountingperiod"]
        if not periods or record_type not in self.period_guarded_types:
            return None
        if not _blank(posting_period):
            ref = posting_period if isinstance(posting_period, dict) else {"id": posting_period}
            period = periods.get(str(ref.get("id")))
            if period is None or period["isQuarter"] or period["isYear"]:
                raise _invalid_value(ref.get("id"), "postingPeriod")
        else:
            period = self.period_for(tran_date)
            if period is None:
                raise _bad(
                    "USER_ERROR",
                    f"Error while accessing a resource. The transaction date {tran_date} is not within an "
                    f"accounting period.",
                    "tranDate",
                )
        if period["closed"]:
            raise _bad(
                self.closed_period_code,
                f"Error while accessing a resource. The accounting period {period['periodName']} is closed. "
                f"You cannot post a transaction dated {tran_date} into a closed period.",
                "tranDate",
            )
        locked = period["allLocked"] or (record_type == "expensereport" and period["apLocked"])
        if locked and not self.override_period_restrictions:
            raise _bad(
                "USER_ERROR",
                f"Error while accessing a resource. The accounting period {period['periodName']} is locked. "
                f"Your role does not have permission to post a transaction into a locked period.",
                "tranDate",
            )
        return period

    def period_for(self, day: str | date) -> dict[str, Any] | None:
        """The posting (month) period covering a date, if the account has one."""
        wanted = parse_date(day)
        if wanted is None:
            return None
        with self._lock:
            for period in self._records["accountingperiod"].values():
                if period["isQuarter"] or period["isYear"]:
                    continue
                if date.fromisoformat(period["startDate"]) <= wanted <= date.fromisoformat(period["endDate"]):
                    return dict(period)
        return None

    def seed_accounting_periods(self, first_month: str = "2025-01", count: int = 12) -> list[str]:
        """A monthly calendar of open posting periods named like NetSuite's ("Jan 2025"); returns their ids."""
        year, month = (int(part) for part in first_month.split("-"))
        ids = []
        for _ in range(count):
            last_day = calendar.monthrange(year, month)[1]
            ids.append(
                self.seed_accounting_period(
                    f"{MONTHS[month - 1]} {year}", date(year, month, 1), date(year, month, last_day)
                )
            )
            month += 1
            if month > 12:
                year, month = year + 1, 1
        return ids

    def seed_accounting_period(
        self,
        name: str,
        start: str | date,
        end: str | date,
        *,
        closed: bool = False,
        is_quarter: bool = False,
        is_year: bool = False,
        **locks: bool,
    ) -> str:
        """One period (locks: apLocked, arLocked, allLocked); returns its internal id."""
        unknown = set(locks) - {"apLocked", "arLocked", "allLocked"}
        if unknown:
            raise ValueError(f"unknown period flags {sorted(unknown)}")
        start_date, end_date = parse_date(start), parse_date(end)
        if start_date is None or end_date is None or end_date < start_date:
            raise ValueError(f"invalid period range {start}..{end}")
        with self._lock:
            if self._period_named(name, required=False) is not None:
                raise ValueError(f"a period named {name!r} already exists")
            period_id = str(self._next_period_id)
            self._next_period_id += 1
            self._records["accountingperiod"][period_id] = {
                "id": period_id,
                "periodName": name,
                "startDate": start_date.isoformat(),
                "endDate": end_date.isoformat(),
                "isQuarter": is_quarter,
                "isYear": is_year,
                "isAdjust": False,
                "isPosting": not (is_quarter or is_year),
                "isInactive": False,
                "closed": closed,
                "closedOnDate": date.today().isoformat() if closed else None,
                "apLocked": bool(locks.get("apLocked", closed)),
                "arLocked": bool(locks.get("arLocked", closed)),
                "allLocked": bool(locks.get("allLocked", closed)),
            }
            return period_id

    def close_period(self, name: str) -> None:
        """Close a period at runtime (NetSuite locks A/R, A/P and all when it closes a period)."""
        with self._lock:
            period = self._period_named(name)
            period.update(
                closed=True,
                closedOnDate=date.today().isoformat(),
                apLocked=True,
                arLocked=True,
                allLocked=True,
            )

    def reopen_period(self, name: str) -> None:
        """Reopen a closed period (its locks are lifted too)."""
        with self._lock:
            period = self._period_named(name)
            period.update(closed=False, closedOnDate=None, apLocked=False, arLocked=False, allLocked=False)

    def lock_period(self, name: str, *, ap: bool = False, ar: bool = False, all_: bool = False) -> None:
        """Set a period's lock flags (the period stays open)."""
        with self._lock:
            self._period_named(name).update(apLocked=ap, arLocked=ar, allLocked=all_)

    def accounting_periods(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._records["accountingperiod"].values()]

    def _period_named(self, name: str, *, required: bool = True) -> dict[str, Any] | None:
        for period in self._records["accountingperiod"].values():
            if period["periodName"] == name:
                return period
        if required:
            raise KeyError(f"no accounting period named {name!r}")
        return None

    # ------------------------------------------------------------------ references
    def _resolve_reference(
        self, reference: Any, known: Mapping[str, str], field_name: str, path: str | None = None
    ) -> str:
        """A select/reference given by id (or, for lists like currency, by refName) -> its internal id."""
        ref = reference if isinstance(reference, dict) else {"id": reference}
        if ref.get("id") is not None and str(ref["id"]) in known:
            return str(ref["id"])
        if ref.get("id") is None and ref.get("refName") is not None:
            for internal_id, name in known.items():
                if name == ref["refName"]:
                    return internal_id
        raise _invalid_value(ref.get("id", ref.get("refName")), field_name, path)

    def _resolve_customer(self, reference: Any) -> str:
        return self._resolve_record(reference, ("customer",), "parent")

    def _resolve_record(
        self, reference: Any, record_types: Iterable[str], field_name: str, path: str | None = None
    ) -> str:
        """A reference to a record, by {"id"} or {"externalId"}, among the given record types."""
        ref = reference if isinstance(reference, dict) else {"id": reference}
        for record_type in record_types:
            if ref.get("id") is not None and str(ref["id"]) in self._records[record_type]:
                return str(ref["id"])
            if ref.get("externalId") is not None and ref["externalId"] in self._by_eid[record_type]:
                return self._by_eid[record_type][ref["externalId"]]
        raise _invalid_value(ref.get("id", ref.get("externalId")), field_name, path)

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
        expand = _truthy(call.query.get("expandSubResources"))
        return json_response(
            200,
            self._present(call.origin, record_type, record, expand=expand),
            content_type=RECORD_CONTENT_TYPE,
        )

    def _present(
        self, origin: str, record_type: str, record: Mapping[str, Any], *, expand: bool = False
    ) -> dict[str, Any]:
        self_link = _link(origin, record_type, record["id"])
        body: dict[str, Any] = {"links": [self_link]}
        for key, value in record.items():
            if key == "expense":
                body[key] = self._present_sublist(origin, self_link["href"], key, value, expand)
            elif isinstance(value, dict):
                body[key] = self._present_reference(origin, key, value)
            else:
                body[key] = value
        return body

    def _present_sublist(
        self, origin: str, record_href: str, key: str, sublist: Mapping[str, Any], expand: bool
    ) -> dict[str, Any]:
        link = {"rel": "self", "href": f"{record_href}/{key}"}
        if not expand:
            return {"links": [link]}
        items = [
            {k: self._present_reference(origin, k, v) if isinstance(v, dict) else v for k, v in line.items()}
            for line in sublist.get("items", [])
        ]
        return {"links": [link], "items": items, "totalResults": len(items)}

    def _present_reference(self, origin: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        def record_name(record_types: tuple[str, ...]) -> Callable[[str], Any]:
            def name_of(internal_id: str) -> Any:
                for record_type in record_types:
                    found = self._records[record_type].get(internal_id)
                    if found is not None:
                        return found.get("entityId") or found.get("title") or found.get("periodName")
                return None

            return name_of

        names: dict[str, tuple[str, Callable[[str], Any]]] = {
            "subsidiary": ("subsidiary", self.subsidiaries.get),
            "currency": ("currency", self.currencies.get),
            "parent": ("customer", record_name(("customer",))),
            "customer": ("customer", record_name(("job", "customer"))),
            "employee": ("employee", record_name(("employee",))),
            "entity": ("employee", record_name(("employee",))),
            "caseTaskEvent": ("projecttask", record_name(("projecttask",))),
            "postingPeriod": ("accountingperiod", record_name(("accountingperiod",))),
            "item": ("serviceitem", self.items.get),
            "category": ("expensecategory", self.expense_categories.get),
            "taxCode": ("salestaxitem", self.tax_codes.get),
        }
        if key not in names or "id" not in value:
            return dict(value)
        target, name_of = names[key]
        return {
            "links": [_link(origin, target, value["id"])],
            "id": value["id"],
            "refName": name_of(value["id"]),
        }

    def _list(self, call: Call) -> httpx.Response:
        """A record collection: ids and links only, filtered with `q`, paged with `limit` / `offset`."""
        record_type = self._record_type(call)
        limit = _bounded_int(call.query.get("limit"), 1000, 1, 1000)
        offset = _bounded_int(call.query.get("offset"), 0, 0, None)
        with self._lock:
            rows = list(self._records[record_type].values())
            if call.query.get("q"):
                try:
                    keep = record_filter(call.query["q"], _field_value)
                    rows = [r for r in rows if keep(r)]
                except QueryError as error:
                    return ns_error(400, "INVALID_PARAMETER", str(error), query_param="q")
        page = rows[offset : offset + limit]
        self_href = f"{call.origin}{call.path}"
        body = {
            "links": [{"rel": "self", "href": self_href}],
            "count": len(page),
            "hasMore": offset + len(page) < len(rows),
            "items": [{"links": [_link(call.origin, record_type, r["id"])], "id": r["id"]} for r in page],
            "offset": offset,
            "totalResults": len(rows),
        }
        return json_response(200, body, content_type=COLLECTION_CONTENT_TYPE)

    # ------------------------------------------------------------------ SuiteQL
    def _suiteql(self, call: Call) -> httpx.Response:
        if call.request.headers.get("prefer", "").strip().lower() != "transient":
            return ns_error(
                400,
                "INVALID_PARAMETER",
                "Invalid request header. The SuiteQL endpoint requires the header 'Prefer: transient'.",
            )
        body = call.body if isinstance(call.body, dict) else {}
        if not isinstance(body.get("q"), str) or not body["q"].strip():
            raise _bad(
                "INVALID_CONTENT", 'Invalid content in the request body. Provide the query as {"q": ...}.'
            )
        limit = _bounded_int(call.query.get("limit"), 1000, 1, 1000)
        offset = _bounded_int(call.query.get("offset"), 0, 0, None)
        with self._lock:
            try:
                rows = run_suiteql(body["q"], {"accountingperiod": self._suiteql_periods})
            except QueryError as error:
                return ns_error(400, "INVALID_PARAMETER", str(error), query_param="q")
        page = rows[offset : offset + limit]
        body_out = {
            "links": [{"rel": "self", "href": f"{call.origin}{SUITEQL_PATH}?limit={limit}&offset={offset}"}],
            "count": len(page),
            "hasMore": offset + len(page) < len(rows),
            "items": [{"links": [], **row} for row in page],
            "offset": offset,
            "totalResults": len(rows),
        }
        return json_response(200, body_out, content_type=COLLECTION_CONTENT_TYPE)

    def _suiteql_periods(self) -> list[dict[str, Any]]:
        """accountingperiod rows as SuiteQL answers them: lower-case columns, 'T'/'F', M/D/YYYY dates."""

        def flag(value: bool) -> str:
            return "T" if value else "F"

        def day(value: str | None) -> str | None:
            return suiteql_date(date.fromisoformat(value)) if value else None

        return [
            {
                "id": p["id"],
                "periodname": p["periodName"],
                "startdate": day(p["startDate"]),
                "enddate": day(p["endDate"]),
                "closed": flag(p["closed"]),
                "closedondate": day(p["closedOnDate"]),
                "aplocked": flag(p["apLocked"]),
                "arlocked": flag(p["arLocked"]),
                "alllocked": flag(p["allLocked"]),
                "isadjust": flag(p["isAdjust"]),
                "isposting": flag(p["isPosting"]),
                "isquarter": flag(p["isQuarter"]),
                "isyear": flag(p["isYear"]),
                "isinactive": flag(p["isInactive"]),
            }
            for p in self._records["accountingperiod"].values()
        ]

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

    def seed_employee(self, external_id: str, name: str = "Alex Consultant", **fields: Any) -> str:
        """An employee (the `employee` of a time bill, the `entity` of an expense report); returns its id."""
        subsidiary = fields.pop("subsidiary", {"id": next(iter(self.subsidiaries))})
        subsidiary_id = self._resolve_plain(subsidiary, self.subsidiaries, "subsidiary")
        first, _, last = name.partition(" ")
        values = {
            "entityId": name,
            "firstName": first,
            "lastName": last,
            "subsidiary": {"id": subsidiary_id},
            "isInactive": False,
            **fields,
        }
        return self._seed_plain("employee", external_id, values)

    def seed_project_task(self, external_id: str, job_id: str, title: str = "Delivery", **fields: Any) -> str:
        """A project task (a time bill's `caseTaskEvent`) of a project; returns its internal id."""
        with self._lock:
            if str(job_id) not in self._records["job"]:
                raise ValueError(f"no project with internal id {job_id}")
        values = {"title": title, "company": {"id": str(job_id)}, "status": "PROGRESS", **fields}
        return self._seed_plain("projecttask", external_id, values)

    def seed_timebill(self, external_id: str, **fields: Any) -> str:
        """A time bill, validated like the API (period checks included); returns its internal id."""
        return self._seed("timebill", external_id, fields)

    def seed_expense_report(self, external_id: str, **fields: Any) -> str:
        """An expense report, validated like the API (period checks included); returns its internal id."""
        return self._seed("expensereport", external_id, fields)

    def _resolve_plain(self, reference: Any, known: Mapping[str, str], field_name: str) -> str:
        try:
            return self._resolve_reference(reference, known, field_name)
        except Reply as reply:
            raise ValueError(reply.response.json()["o:errorDetails"][0]["detail"]) from None

    def _seed_plain(self, record_type: str, external_id: str, values: Mapping[str, Any]) -> str:
        if not EXTERNAL_ID.fullmatch(external_id):
            raise ValueError(f"invalid external id {external_id!r}")
        now = utc_now().isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._lock:
            internal_id = self._by_eid[record_type].get(external_id)
            if internal_id is None:
                internal_id = str(self._next_internal_id)
                self._next_internal_id += 1
                self._by_eid[record_type][external_id] = internal_id
                self._records[record_type][internal_id] = {"id": internal_id, "externalId": external_id}
            self._records[record_type][internal_id].update({**values, "lastModifiedDate": now})
            return internal_id

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
            return [copy.deepcopy(r) for r in self._records[record_type].values()]

    def record(self, record_type: str, internal_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records[record_type].get(str(internal_id))
            return copy.deepcopy(found) if found else None

    def by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            internal_id = self._by_eid[record_type].get(external_id)
        return None if internal_id is None else self.record(record_type, internal_id)

    def count(self, record_type: str) -> int:
        """How many records of a type the account holds."""
        with self._lock:
            return len(self._records[record_type])

    def counts(self) -> dict[str, int]:
        """Record counts by type."""
        with self._lock:
            return {t: len(rows) for t, rows in self._records.items()}

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"customer": [{"externalId", fields...}], "job": [{"externalId", "parent": {"id"}, fields...}],
        "employee": [{"externalId", "name"}], "projecttask": [{"externalId", "job", "title"}],
        "accountingperiods": {"first_month": "2025-01", "count": 12}, "timebill"/"expensereport": [...]}."""
        created: dict[str, Any] = {t: [] for t in ("customer", "job", "employee", "projecttask")}
        for record_type in ENTITY_TYPES:
            for item in payload.get(record_type, []):
                values = {k: v for k, v in item.items() if k != "externalId"}
                created[record_type].append(self._seed(record_type, item["externalId"], values))
        for item in payload.get("employee", []):
            values = {k: v for k, v in item.items() if k not in ("externalId", "name")}
            created["employee"].append(
                self.seed_employee(item["externalId"], item.get("name", "Alex Consultant"), **values)
            )
        for item in payload.get("projecttask", []):
            values = {k: v for k, v in item.items() if k not in ("externalId", "job", "title")}
            created["projecttask"].append(
                self.seed_project_task(
                    item["externalId"], item["job"], item.get("title", "Delivery"), **values
                )
            )
        if "accountingperiods" in payload:
            created["accountingperiod"] = self.seed_accounting_periods(**payload["accountingperiods"])
        for record_type in TRANSACTION_TYPES:
            for item in payload.get(record_type, []):
                values = {k: v for k, v in item.items() if k != "externalId"}
                created.setdefault(record_type, []).append(
                    self._seed(record_type, item["externalId"], values)
                )
        return created

    def state(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "subsidiaries": self.subsidiaries,
            "currencies": self.currencies,
            "items": self.items,
            "expense_categories": self.expense_categories,
            "tax_codes": self.tax_codes,
            "records": {t: self.records(t) for t in RECORD_TYPES},
        }


def _link(origin: str, record_type: str, internal_id: str) -> dict[str, str]:
    return {"rel": "self", "href": f"{origin}{RECORD_PATH}/{record_type}/{internal_id}"}


def _refuse_unknown_fields(values: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(k for k in values if k not in known and not k.startswith("cust"))
    if unknown:
        raise _bad(
            "INVALID_CONTENT",
            f"Error while accessing a resource. The field {unknown[0]} does not exist on this record.",
            unknown[0],
        )


def _field_value(record: Mapping[str, Any], field_name: str) -> Any:
    if field_name == "id" or field_name in record:
        return record.get(field_name)
    if field_name in PERIOD_FIELDS and "periodName" in record:
        return record.get(field_name)
    raise KeyError(field_name)


def _duration_hours(value: Any) -> float:
    """A duration as decimal hours: a number, or "H:MM"."""
    if isinstance(value, bool):
        raise _invalid_value(value, "hours")
    if isinstance(value, int | float):
        if value < 0:
            raise _invalid_value(value, "hours")
        return float(value)
    match = re.fullmatch(r"(\d+):([0-5]\d)", str(value).strip())
    if not match:
        raise _invalid_value(value, "hours")
    return int(match[1]) + int(match[2]) / 60


def _bounded_int(value: str | None, default: int, low: int, high: int | None) -> int:
    try:
        number = int(value) if value not in (None, "") else default
    except ValueError:
        number = default
    number = max(number, low)
    return min(number, high) if high is not None else number


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "t")


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
