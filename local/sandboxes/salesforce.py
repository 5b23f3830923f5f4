"""Salesforce (CRM) simulator: REST API v62.0 sObjects, OAuth 2.0 client credentials, Outbound Messages.

Simulated vendor behaviour (Salesforce REST API Developer Guide):

* `POST /services/oauth2/token` (client-credentials flow): `access_token, signature, scope, instance_url, id,
  token_type, issued_at`, no `expires_in`; unknown client id -> 400 `invalid_client_id`, wrong secret ->
  400 `invalid_client`, other grants -> 400 `unsupported_grant_type`.
* every data call needs `Authorization: Bearer`; unknown or expired sessions -> 401 `INVALID_SESSION_ID`.
* every data answer carries `Sforce-Limit-Info: api-usage=N/LIMIT`; once the org's API budget is used ->
  403 `REQUEST_LIMIT_EXCEEDED` ("TotalRequests Limit exceeded."), no `Retry-After`.
* errors are a JSON list `[{"message", "errorCode"(, "fields")}]`.
* sObject rows (`GET`/`PATCH .../sobjects/{Object}/{id}`), child relationships
  (`GET .../sobjects/Opportunity/{id}/OpportunityLineItems` -> `{"totalSize","done","records"}`), rows by
  external id (`GET`), and upsert by external id (`PATCH .../sobjects/{Object}/{ExtIdField}/{value}`):
  201 created `{"id","success","errors","created":true}`; an update answers 200 with `"created":false` from
  API v46.0 on (204 without a body in v45.0 and earlier); 300 with the matching records' URLs when the value
  matches several records.
* record-lock contention: 400 `UNABLE_TO_LOCK_ROW` (a lock can be held on a record, or injected at a rate).
* ids are 18-character case-insensitive ids with the object's key prefix (001 Account, 006 Opportunity,
  00k OpportunityLineItem) and the documented 3-character checksum suffix.
* Outbound Messages (SOAP 1.1 `notifications`, up to 100 `Notification`s, at-least-once, unordered).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import random
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx

from local.sandboxes.base import Call, Faults, MalformedBody, Reply, Sandbox, json_response, utc_now

API_VERSION = "62.0"
SOAP_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DEFAULT_INSTANCE_URL = "https://pshub-sandbox.my.salesforce.com"

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATA_API = r"/services/data/v(?P<version>\d{2,3}\.\d)"


# --------------------------------------------------------------------------- ids
def id_checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitive (Salesforce's algorithm)."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_CHARS[bits]
    return suffix


def to_18(record_id: str) -> str:
    """The 18-character form of a 15- or 18-character id."""
    return record_id if len(record_id) == 18 else record_id + id_checksum(record_id)


def salesforce_id(prefix: str, number: int, pod: str = "5g") -> str:
    """An 18-character id: key prefix + pod + reserved 0 + 9 base-62 digits + checksum."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    body = f"{prefix}{pod}0{digits.rjust(9, '0')[-9:]}"
    return body + id_checksum(body)


# --------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class SObjectType:
    """What the org knows about one object: fields, which are required, read-only, typed, references."""

    name: str
    prefix: str
    fields: tuple[str, ...]
    required: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    references: Mapping[str, str] = field(default_factory=dict)
    children: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    external_ids: frozenset[str] = frozenset()

    def extended(self, extra_fields: Iterable[str], external_ids: Iterable[str]) -> SObjectType:
        extra = tuple(f for f in extra_fields if f not in self.fields)
        return SObjectType(
            self.name,
            self.prefix,
            self.fields + extra,
            self.required,
            self.read_only,
            self.numbers,
            self.dates,
            self.references,
            self.children,
            self.external_ids | frozenset(external_ids),
        )


_SYSTEM_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
_SYSTEM_READ_ONLY = frozenset({"Id", *_SYSTEM_FIELDS})

DEFAULT_SCHEMA: dict[str, SObjectType] = {
    "Account": SObjectType(
        "Account",
        "001",
        (
            "Id",
            "Name",
            "Type",
            "Industry",
            "BillingCountry",
            "CurrencyIsoCode",
            "OwnerId",
            "External_Id__c",
            *_SYSTEM_FIELDS,
        ),
        required=frozenset({"Name"}),
        read_only=_SYSTEM_READ_ONLY,
        external_ids=frozenset({"External_Id__c"}),
    ),
    "Opportunity": SObjectType(
        "Opportunity",
        "006",
        (
            "Id",
            "Name",
            "StageName",
            "Amount",
            "CurrencyIsoCode",
            "CloseDate",
            "AccountId",
            "Probability",
            "Type",
            "IsClosed",
            "IsWon",
            "OwnerId",
            "Legal_Entity__c",
            "Billing_Type__c",
            "Start_Date__c",
            "End_Date__c",
            "PSA_Project_Id__c",
            "ERP_Customer_Id__c",
            "Integration_Status__c",
            "Integration_Error__c",
            "External_Id__c",
            *_SYSTEM_FIELDS,
        ),
        required=frozenset({"Name", "StageName", "CloseDate"}),
        read_only=_SYSTEM_READ_ONLY | {"IsClosed", "IsWon"},
        numbers=frozenset({"Amount", "Probability"}),
        dates=frozenset({"CloseDate", "Start_Date__c", "End_Date__c"}),
        references={"AccountId": "Account"},
        children={"OpportunityLineItems": ("OpportunityLineItem", "OpportunityId")},
        external_ids=frozenset({"External_Id__c"}),
    ),
    "OpportunityLineItem": SObjectType(
        "OpportunityLineItem",
        "00k",
        (
            "Id",
            "OpportunityId",
            "PricebookEntryId",
            "Product2Id",
            "ProductCode",
            "Name",
            "Quantity",
            "UnitPrice",
            "ListPrice",
            "TotalPrice",
            "Service_Line__c",
            "ServiceDate",
            "Description",
            "CurrencyIsoCode",
            *_SYSTEM_FIELDS,
        ),
        required=frozenset({"OpportunityId", "Quantity"}),
        read_only=_SYSTEM_READ_ONLY | {"Name", "ProductCode", "ListPrice"},
        numbers=frozenset({"Quantity", "UnitPrice", "ListPrice", "TotalPrice"}),
        dates=frozenset({"ServiceDate"}),
        references={"OpportunityId": "Opportunity"},
    ),
}


def _sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime format, e.g. 2025-03-01T10:15:00.000+0000."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _errors(status: int, code: str, message: str, fields: Iterable[str] | None = None) -> httpx.Response:
    """Salesforce's error body: a JSON list of {message, errorCode[, fields]}."""
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        error["fields"] = list(fields)
    return json_response(status, [error])


def _not_found(message: str = "The requested resource does not exist") -> Reply:
    return Reply(_errors(404, "NOT_FOUND", message))


@dataclass
class _Session:
    token: str
    expired: bool = False


# --------------------------------------------------------------------------- the sandbox
class SalesforceSandbox(Sandbox):
    """One Salesforce org.

    Args:
        client_id / client_secret: the connected app the client-credentials flow must present.
        api_limit: the org's API request budget (the daily "TotalRequests" allocation).
        instance_url: what the token call returns as `instance_url` (default: the origin the client called).
        org_id: the org id (18 characters, 00D...); generated from `id_seed` when omitted.
        external_id_fields / extra_fields: more external-id fields or custom fields per object.
        faults / concurrency_limit: see `Sandbox`; concurrency over the limit answers Salesforce's
            `ConcurrentPerOrgLongTxn` 403. Off by default: the daily budget is the limit Salesforce enforces.
        id_seed: seed of the id generator, so ids are repeatable.
    """

    vendor = "salesforce"

    def __init__(
        self,
        *,
        client_id: str = "pshub-connected-app",
        client_secret: str = "pshub-client-secret",
        api_limit: int = 100_000,
        instance_url: str | None = None,
        org_id: str | None = None,
        external_id_fields: Mapping[str, Iterable[str]] | None = None,
        extra_fields: Mapping[str, Iterable[str]] | None = None,
        faults: Faults | None = None,
        concurrency_limit: int | None = None,
        id_seed: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_limit = api_limit
        self.instance_url = instance_url
        self.id_seed = id_seed
        self.org_id = org_id or salesforce_id("00D", 1_000_000 + id_seed)
        self.user_id = salesforce_id("005", 2_000_000 + id_seed)
        self.schema = {
            name: kind.extended((extra_fields or {}).get(name, ()), (external_id_fields or {}).get(name, ()))
            for name, kind in DEFAULT_SCHEMA.items()
        }
        super().__init__(faults=faults, concurrency_limit=concurrency_limit)

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self._sessions: dict[str, _Session] = {}
        self._locked: set[str] = set()
        self._api_usage = 0
        id_rng = random.Random(self.id_seed)
        self._id_rng = id_rng
        self._next_number = {name: id_rng.randrange(62**5, 62**6) for name in self.schema}

    def _register_routes(self) -> None:
        self.route("POST", r"/services/oauth2/token", self._token, governed=False)
        sobject = _DATA_API + r"/sobjects/(?P<sobject>\w+)"
        self.route("GET", sobject + r"/(?P<record_id>[^/]+)", self._get_record)
        self.route("PATCH", sobject + r"/(?P<record_id>[^/]+)", self._patch_record)
        self.route("GET", sobject + r"/(?P<first>[^/]+)/(?P<second>[^/]+)", self._get_nested)
        self.route("PATCH", sobject + r"/(?P<field>[^/]+)/(?P<value>[^/]+)", self._upsert)

    # ------------------------------------------------------------------ vendor answers
    def not_found_response(self, call: Call) -> httpx.Response:
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    def throttled_response(self, call: Call) -> httpx.Response:
        """Salesforce signals concurrent-request pressure with 403 REQUEST_LIMIT_EXCEEDED, not 429."""
        return _errors(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return self.throttled_response(call)

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        if status == 503:
            return _errors(503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again.")
        error_id = f"{secrets.randbelow(10**9):09d}-{secrets.randbelow(10**5):05d}"
        return _errors(
            status,
            "UNKNOWN_EXCEPTION",
            f"An unexpected error occurred. Please include this ErrorId if you contact support: "
            f"{error_id} (-1)",
        )

    def authorize(self, call: Call) -> httpx.Response | None:
        """Bearer session check, then one unit of the org's API budget per call."""
        session = self._sessions.get(call.bearer_token() or "")
        if session is None or session.expired:
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self._lock:
            if self._api_usage >= self.api_limit:
                return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self._api_usage += 1
        return None

    def finalize(self, call: Call, response: httpx.Response) -> httpx.Response:
        if call.path.startswith("/services/data/"):
            response.headers["Sforce-Limit-Info"] = f"api-usage={self._api_usage}/{self.api_limit}"
        return response

    # ------------------------------------------------------------------ OAuth
    def _token(self, call: Call) -> httpx.Response:
        form = call.body if isinstance(call.body, dict) else {}
        basic_id, basic_secret = _basic_credentials(call.request)
        if form.get("grant_type") != "client_credentials":
            return json_response(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        client_id = form.get("client_id") or basic_id
        client_secret = form.get("client_secret") or basic_secret or ""
        if client_id != self.client_id:
            return json_response(
                400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            )
        if not hmac.compare_digest(client_secret.encode(), self.client_secret.encode()):
            return json_response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        return json_response(200, self._token_body(self.issue_token(), call.origin))

    def _token_body(self, token: str, origin: str) -> dict[str, str]:
        issued_at = str(int(utc_now().timestamp() * 1000))
        identity = f"https://login.salesforce.com/id/{self.org_id}/{self.user_id}"
        digest = hmac.new(
            self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        return {
            "access_token": token,
            "signature": base64.b64encode(digest).decode(),
            "scope": "api",
            "instance_url": self.instance_url or origin,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }

    def issue_token(self) -> str:
        """A valid session token (what the token call hands out)."""
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._sessions[token] = _Session(token)
        return token

    def expire_token(self, token: str) -> None:
        """End one session: its next call answers 401 INVALID_SESSION_ID."""
        with self._lock:
            if token in self._sessions:
                self._sessions[token].expired = True

    def expire_all_tokens(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.expired = True

    @property
    def api_usage(self) -> int:
        return self._api_usage

    @property
    def remaining_calls(self) -> int:
        return max(self.api_limit - self._api_usage, 0)

    def set_api_usage(self, used: int) -> None:
        """Pretend `used` calls of the budget were already made today."""
        with self._lock:
            self._api_usage = used

    # ------------------------------------------------------------------ reads
    def _get_record(self, call: Call) -> httpx.Response:
        kind = self._kind(call)
        with self._lock:
            record = self._find(kind, call.params["record_id"])
            body = self._present(kind, record, call.params["version"], call.query.get("fields"))
        return json_response(200, body)

    def _get_nested(self, call: Call) -> httpx.Response:
        """Child relationship of a record, or a record by external id."""
        kind = self._kind(call)
        first, second = call.params["first"], call.params["second"]
        version = call.params["version"]
        if second in kind.children and _ID_SHAPE.fullmatch(first):
            return self._relationship(kind, first, second, version)
        if first in kind.external_ids:
            with self._lock:
                matches = self._by_external_id(kind, first, second)
                if len(matches) > 1:
                    return self._multiple_choices(kind, matches, version)
                if not matches:
                    raise _not_found()
                return json_response(200, self._present(kind, matches[0], version, call.query.get("fields")))
        raise _not_found(f"Provided external ID field does not exist or is not accessible: {first}")

    def _relationship(
        self, kind: SObjectType, parent_id: str, relationship: str, version: str
    ) -> httpx.Response:
        child_name, lookup = kind.children[relationship]
        child_kind = self.schema[child_name]
        with self._lock:
            parent = self._find(kind, parent_id)
            children = [
                self._present(child_kind, r, version)
                for r in self._records[child_name].values()
                if r.get(lookup) == parent["Id"]
            ]
        return json_response(200, {"totalSize": len(children), "done": True, "records": children})

    def _present(
        self, kind: SObjectType, record: Mapping[str, Any], version: str, fields: str | None = None
    ) -> dict[str, Any]:
        names = kind.fields
        if fields:
            names = tuple(f.strip() for f in fields.split(","))
            unknown = [f for f in names if f not in kind.fields]
            if unknown:
                raise Reply(
                    _errors(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{kind.name}'.")
                )
        body: dict[str, Any] = {
            "attributes": {
                "type": kind.name,
                "url": f"/services/data/v{version}/sobjects/{kind.name}/{record['Id']}",
            }
        }
        body.update({name: record.get(name) for name in names})
        return body

    def _multiple_choices(
        self, kind: SObjectType, matches: list[dict[str, Any]], version: str
    ) -> httpx.Response:
        return json_response(
            300, [f"/services/data/v{version}/sobjects/{kind.name}/{r['Id']}" for r in matches]
        )

    # ------------------------------------------------------------------ writes
    def _patch_record(self, call: Call) -> httpx.Response:
        kind = self._kind(call)
        body = _json_object(call)
        with self._lock:
            record = self._find(kind, call.params["record_id"])
            self._validate_write(kind, body, creating=False)
            self._check_lock(call, record["Id"])
            self._apply(kind, record, body)
        return httpx.Response(204)

    def _upsert(self, call: Call) -> httpx.Response:
        kind = self._kind(call)
        ext_field, value = call.params["field"], call.params["value"]
        if ext_field not in kind.external_ids:
            raise _not_found(f"Provided external ID field does not exist or is not accessible: {ext_field}")
        body = _json_object(call)
        if "Id" in body:
            raise Reply(
                _errors(
                    400,
                    "INVALID_FIELD",
                    "Id is not allowed in the request body of an upsert by external ID",
                    ["Id"],
                )
            )
        version = call.params["version"]
        values = {**body, ext_field: value}
        with self._lock:
            matches = self._by_external_id(kind, ext_field, value)
            if len(matches) > 1:
                return self._multiple_choices(kind, matches, version)
            self._validate_write(kind, values, creating=not matches)
            if not matches:
                record_id = self._insert(kind, values)
                return json_response(201, _upsert_result(record_id, created=True, version=version))
            self._check_lock(call, matches[0]["Id"])
            self._apply(kind, matches[0], values)
            record_id = matches[0]["Id"]
        if float(version) < 46.0:
            return httpx.Response(204)
        return json_response(200, _upsert_result(record_id, created=False, version=version))

    def _validate_write(self, kind: SObjectType, values: Mapping[str, Any], *, creating: bool) -> None:
        for name, value in values.items():
            if name == "attributes":
                continue
            if name not in kind.fields:
                raise Reply(
                    _errors(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {kind.name}")
                )
            if name in kind.read_only:
                raise Reply(
                    _errors(
                        400,
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security settings "
                        f"of this field and verify that it is read/write for your profile or "
                        f"permission set.",
                        [name],
                    )
                )
            self._check_type(kind, name, value)
            if not creating and name in kind.required and value in (None, ""):
                raise _required_missing([name])
        if creating:
            missing = sorted(n for n in kind.required if values.get(n) in (None, ""))
            if missing:
                raise _required_missing(missing)

    def _check_type(self, kind: SObjectType, name: str, value: Any) -> None:
        if value is None:
            return
        if name in kind.numbers and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _json_parser_error("double", value)
        if name in kind.dates and not (isinstance(value, str) and _is_date(value)):
            raise _json_parser_error("date", value)
        target = kind.references.get(name)
        if target is not None:
            target_kind = self.schema[target]
            if (
                not isinstance(value, str)
                or not _ID_SHAPE.fullmatch(value)
                or not value.startswith(target_kind.prefix)
            ):
                raise Reply(
                    _errors(
                        400,
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{target} ID: id value of incorrect type: {value}",
                        [name],
                    )
                )
            if to_18(value) not in self._records[target]:
                raise Reply(_errors(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]))

    def _check_lock(self, call: Call, record_id: str) -> None:
        injected = self.faults.applies_to(call.path) and self.roll(self.faults.lock_rate)
        if injected or record_id in self._locked:
            raise Reply(
                _errors(
                    400,
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {record_id}",
                )
            )

    def _insert(self, kind: SObjectType, values: Mapping[str, Any]) -> str:
        number = self._next_number[kind.name]
        self._next_number[kind.name] += self._id_rng.randint(1, 40)
        record_id = salesforce_id(kind.prefix, number)
        now = _sf_datetime(utc_now())
        record: dict[str, Any] = {"Id": record_id, "CreatedDate": now, "IsDeleted": False}
        record.update({k: _normalize(kind, k, v) for k, v in values.items() if k != "attributes"})
        self._touch(kind, record, now)
        self._records[kind.name][record_id] = record
        return record_id

    def _apply(self, kind: SObjectType, record: dict[str, Any], values: Mapping[str, Any]) -> None:
        record.update({k: _normalize(kind, k, v) for k, v in values.items() if k != "attributes"})
        self._touch(kind, record, _sf_datetime(utc_now()))

    @staticmethod
    def _touch(kind: SObjectType, record: dict[str, Any], now: str) -> None:
        """Timestamps and formula-like fields Salesforce maintains itself."""
        record["LastModifiedDate"] = record["SystemModstamp"] = now
        if kind.name == "Opportunity":
            stage = record.get("StageName") or ""
            record["IsClosed"] = stage.startswith("Closed")
            record["IsWon"] = stage == "Closed Won"
        if kind.name == "OpportunityLineItem" and record.get("UnitPrice") is not None:
            record["TotalPrice"] = round(float(record.get("Quantity") or 0) * float(record["UnitPrice"]), 2)

    # ------------------------------------------------------------------ lookups
    def _kind(self, call: Call) -> SObjectType:
        kind = self.schema.get(call.params["sobject"])
        if kind is None:
            raise _not_found()
        return kind

    def _find(self, kind: SObjectType, record_id: str) -> dict[str, Any]:
        if not _ID_SHAPE.fullmatch(record_id):
            raise _not_found(f"Provided external ID field does not exist or is not accessible: {record_id}")
        record = self._records[kind.name].get(to_18(record_id)) if record_id.startswith(kind.prefix) else None
        if record is None:
            raise _not_found()
        return record

    def _by_external_id(self, kind: SObjectType, ext_field: str, value: str) -> list[dict[str, Any]]:
        """External ids match case-insensitively, as on the platform."""
        wanted = value.lower()
        return [r for r in self._records[kind.name].values() if str(r.get(ext_field) or "").lower() == wanted]

    # ------------------------------------------------------------------ seeding and inspection
    def seed_account(self, **fields: Any) -> str:
        """Create an Account directly (no API call, no budget used); returns its id."""
        values = {
            "Name": "Acme Consulting Ltd",
            "BillingCountry": "United States",
            "CurrencyIsoCode": "USD",
            **fields,
        }
        return self._seed("Account", values)

    def seed_opportunity(self, *, line_items: Iterable[Mapping[str, Any]] = (), **fields: Any) -> str:
        """Create an Opportunity (and its OpportunityLineItems) directly; returns the opportunity id."""
        values = {
            "Name": "Acme - Implementation",
            "StageName": "Closed Won",
            "CloseDate": date.today().isoformat(),
            "CurrencyIsoCode": "USD",
            "Probability": 100,
            **fields,
        }
        items = [dict(item) for item in line_items]
        if "Amount" not in values and items:
            values["Amount"] = round(
                sum(float(i.get("Quantity", 1)) * float(i.get("UnitPrice", 0)) for i in items), 2
            )
        opportunity_id = self._seed("Opportunity", values)
        for item in items:
            self.seed_line_item(opportunity_id, **item)
        return opportunity_id

    def seed_line_item(self, opportunity_id: str, **fields: Any) -> str:
        # In a multi-currency org a line item always carries its opportunity's currency.
        parent = self.opportunity(opportunity_id) or {}
        values = {
            "Quantity": 1,
            "UnitPrice": 0.0,
            "CurrencyIsoCode": parent.get("CurrencyIsoCode") or "USD",
            **fields,
            "OpportunityId": opportunity_id,
        }
        values.setdefault("ListPrice", values["UnitPrice"])
        return self._seed("OpportunityLineItem", values)

    def _seed(self, name: str, values: Mapping[str, Any]) -> str:
        kind = self.schema[name]
        unknown = [f for f in values if f not in kind.fields]
        if unknown:
            raise ValueError(f"{name} has no field(s) {unknown}; pass extra_fields= to the sandbox")
        with self._lock:
            return self._insert(kind, values)

    def edit(self, sobject: str, record_id: str, **fields: Any) -> None:
        """A user's edit in the Salesforce UI (no API call, no budget used): system fields move on as usual."""
        kind = self.schema[sobject]
        with self._lock:
            record = self._records[sobject][to_18(record_id)]
            self._apply(kind, record, fields)

    def record(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """A copy of one record's fields, or None."""
        with self._lock:
            found = self._records[sobject].get(to_18(record_id))
            return dict(found) if found else None

    def opportunity(self, record_id: str) -> dict[str, Any] | None:
        return self.record("Opportunity", record_id)

    def account(self, record_id: str) -> dict[str, Any] | None:
        return self.record("Account", record_id)

    def line_items(self, opportunity_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(r)
                for r in self._records["OpportunityLineItem"].values()
                if r["OpportunityId"] == to_18(opportunity_id)
            ]

    def records(self, sobject: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records[sobject].values()]

    def lock_record(self, record_id: str) -> None:
        """Hold a row lock: writes to this record answer UNABLE_TO_LOCK_ROW until `unlock_record`."""
        with self._lock:
            self._locked.add(to_18(record_id))

    def unlock_record(self, record_id: str) -> None:
        with self._lock:
            self._locked.discard(to_18(record_id))

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"accounts": [fields...], "opportunities": [{fields..., "line_items": [fields...]}]}."""
        accounts = [self.seed_account(**a) for a in payload.get("accounts", [])]
        opportunities = [
            self.seed_opportunity(
                line_items=o.get("line_items", ()), **{k: v for k, v in o.items() if k != "line_items"}
            )
            for o in payload.get("opportunities", [])
        ]
        return {"accounts": accounts, "opportunities": opportunities}

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "org_id": self.org_id,
                "api_usage": self._api_usage,
                "api_limit": self.api_limit,
                "records": {name: [dict(r) for r in rows.values()] for name, rows in self._records.items()},
            }

    # ------------------------------------------------------------------ outbound messages
    def outbound_messages(
        self,
        opportunity_ids: Iterable[str],
        *,
        fields: Iterable[str] | None = None,
        batch_size: int = 100,
        shuffle: bool = False,
    ) -> list[bytes]:
        """The SOAP bodies Salesforce would POST to the listener for these opportunities, as they are now.

        One notification per opportunity, up to `batch_size` (at most 100) per message. With
        `faults.duplicate_rate` a notification is delivered again (same notification id, at-least-once);
        `shuffle=True` delivers them out of order.
        """
        if not 1 <= batch_size <= 100:
            raise ValueError("an outbound message carries 1 to 100 notifications")
        wanted = tuple(fields) if fields else None
        notifications = []
        for opportunity_id in opportunity_ids:
            record = self.opportunity(opportunity_id)
            if record is None:
                raise KeyError(f"no opportunity {opportunity_id}")
            values = {k: record.get(k) for k in (wanted or self.schema["Opportunity"].fields)}
            values["Id"] = record["Id"]
            notifications.append((next_notification_id(), values))
        notifications += [n for n in list(notifications) if self.roll(self.faults.duplicate_rate)]
        if shuffle or self.faults.duplicate_rate > 0:
            notifications = self.shuffled(notifications)
        instance = self.instance_url or DEFAULT_INSTANCE_URL
        return [
            outbound_message(
                self.org_id, [values for _, values in batch], [nid for nid, _ in batch], instance_url=instance
            )
            for batch in _batches(notifications, batch_size)
        ]


# --------------------------------------------------------------------------- outbound messages
_notification_numbers = itertools.count(random.SystemRandom().randrange(62**6, 62**7))
_notification_lock = threading.Lock()


def next_notification_id() -> str:
    """A fresh Outbound Message notification id (key prefix 04l)."""
    with _notification_lock:
        return salesforce_id("04l", next(_notification_numbers))


def outbound_message(
    org_id: str,
    opportunities: list[dict[str, Any]],
    notification_ids: list[str] | None = None,
    *,
    action_id: str | None = None,
    session_id: str | None = None,
    instance_url: str = DEFAULT_INSTANCE_URL,
    api_version: str = API_VERSION,
    sobject_type: str = "Opportunity",
) -> bytes:
    """The SOAP 1.1 `notifications` message Salesforce POSTs for an outbound-message workflow action.

    Each dict in `opportunities` becomes one `Notification` (fields in the enterprise sObject namespace,
    `xsi:type="sf:Opportunity"`, None as `xsi:nil`); `notification_ids` (04l...) are generated when omitted.
    """
    if not 1 <= len(opportunities) <= 100:
        raise ValueError("an outbound message carries 1 to 100 notifications")
    ids = list(notification_ids) if notification_ids else [next_notification_id() for _ in opportunities]
    if len(ids) != len(opportunities):
        raise ValueError("one notification id per opportunity")
    org15 = org_id[:15]
    session = f"<SessionId>{escape(session_id)}</SessionId>" if session_id else '<SessionId xsi:nil="true"/>'
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        f' xmlns:xsi="{XSI_NS}">',
        "<soapenv:Body>",
        f'<notifications xmlns="{OUTBOUND_NS}">',
        f"<OrganizationId>{escape(org_id)}</OrganizationId>",
        f"<ActionId>{escape(action_id or salesforce_id('04k', 9_000_000))}</ActionId>",
        session,
        f"<EnterpriseUrl>{escape(instance_url)}/services/Soap/c/{api_version}/{org15}</EnterpriseUrl>",
        f"<PartnerUrl>{escape(instance_url)}/services/Soap/u/{api_version}/{org15}</PartnerUrl>",
    ]
    for notification_id, values in zip(ids, opportunities, strict=True):
        parts.append(_notification(notification_id, values, sobject_type))
    parts += ["</notifications>", "</soapenv:Body>", "</soapenv:Envelope>"]
    return "\n".join(parts).encode("utf-8")


def _notification(notification_id: str, values: Mapping[str, Any], sobject_type: str) -> str:
    ordered = {"Id": values.get("Id"), **{k: v for k, v in values.items() if k != "Id"}}
    elements = [
        f'<sf:{name} xsi:nil="true"/>' if value is None else f"<sf:{name}>{_soap_value(value)}</sf:{name}>"
        for name, value in ordered.items()
    ]
    return (
        f"<Notification><Id>{escape(notification_id)}</Id>"
        f'<sObject xsi:type="sf:{sobject_type}" xmlns:sf="{SOBJECT_NS}">{"".join(elements)}</sObject>'
        f"</Notification>"
    )


def _soap_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal | int | float):
        return str(value)
    return escape(str(value))


def ack_accepted(body: bytes) -> bool:
    """Whether a listener's answer is `notificationsResponse/Ack` = true (what stops Salesforce retrying)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return False
    ack = root.find(f"{{{SOAP_ENVELOPE_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse/{{{OUTBOUND_NS}}}Ack")
    return ack is not None and (ack.text or "").strip() == "true"


# --------------------------------------------------------------------------- helpers
def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _upsert_result(record_id: str, *, created: bool, version: str) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
    if float(version) >= 46.0:
        result["created"] = created
    return result


def _json_object(call: Call) -> dict[str, Any]:
    if isinstance(call.body, MalformedBody) or not isinstance(call.body, dict):
        raise Reply(_errors(400, "JSON_PARSER_ERROR", "The request body is either invalid or incomplete."))
    return call.body


def _required_missing(names: list[str]) -> Reply:
    return Reply(
        _errors(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(names)}]", names)
    )


def _json_parser_error(kind: str, value: Any) -> Reply:
    return Reply(
        _errors(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {kind} from VALUE_STRING value "
            f"{value} or request may be missing a required field",
        )
    )


def _is_date(value: str) -> bool:
    if not _DATE_SHAPE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _normalize(kind: SObjectType, name: str, value: Any) -> Any:
    if name in kind.references and isinstance(value, str):
        return to_18(value)
    if name in kind.numbers and isinstance(value, Decimal):
        return float(value)
    return value


def _basic_credentials(request: httpx.Request) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None, None
    return user, password
