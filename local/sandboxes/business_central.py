"""Dynamics 365 Business Central (ERP) simulator: API v2.0, company-scoped, with JSON `$batch` and its limits.

Simulated vendor behaviour (Business Central API v2.0 reference and "Working with API limits", Microsoft Learn):

* OAuth 2.0 client credentials at Microsoft Entra ID: `POST /{tenant}/oauth2/v2.0/token` (the sandbox serves the
  login.microsoftonline.com path on its own origin) with `scope=https://api.businesscentral.dynamics.com/
  .default` -> `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token"}`; errors in
  Entra's shape `{"error","error_description":"AADSTS...","error_codes":[...],...}`. A missing, unknown or
  expired token on the API is 401 `Authentication_InvalidCredentials` with `WWW-Authenticate: Bearer`.
* API root `/v2.0/{tenant}/{environment}/api/v2.0` (the short `/api/v2.0` is accepted too); `GET companies`,
  then everything under `companies({id})/`.
* Entities used to post time and expenses:
  - `timeRegistrationEntries` (employee time per date against a project (`jobId`/`jobNumber`) and project
    task (`jobTaskNumber`), `quantity` in hours, `status` "Open"): BC's own API for time sheet lines;
  - `purchaseInvoices` with `purchaseInvoiceLines` (deep insert in one POST): BC has no expense-report entity;
    reimbursable employee expenses are purchase invoices from the employee as a vendor, one G/L account line
    (`lineType` "Account") per expense line with its `taxCode`. The hub's reference goes in
    `vendorInvoiceNumber`, and the bound action `POST purchaseInvoices({id})/Microsoft.NAV.post` refuses a
    second posted invoice with the same vendor invoice number for the vendor ("Purchase Invoice X already
    exists for this vendor."), a missing one, or a posting date outside the allowed posting dates.
  - read-only references: `employees`, `projects`, `vendors`, `accounts`; the calendar: `accountingPeriods`
    (seeded with `seed_accounting_periods`) and `generalLedgerSetup` (`allowPostingFrom` / `allowPostingTo`, as
    `set_allowed_posting_dates` sets them; `0001-01-01` when not set).
  Neither entity has an upsert by an external key: POST always creates, so a retried POST after a lost answer
  creates a duplicate; look up first with `$filter` (e.g. `vendorInvoiceNumber eq 'TE-1'`).
* OData: collections `{"@odata.context","value":[...]}` (server-driven paging with `@odata.nextLink`), entities
  carry `@odata.etag`; `$filter` (`eq ne gt ge lt le`, `and`, `or`), `$top`, `$skip`, `$orderby`, `$select`,
  `$expand=purchaseInvoiceLines`. POST answers 201 with the entity and `Location`; PATCH and DELETE need
  `If-Match` (an etag or `*`): none -> 400 `BadRequest_InvalidToken`, a stale one -> 412
  `Request_EntityChanged`. Errors are `{"error":{"code","message"}}` with the documented codes; unknown
  properties are refused (400 `BadRequest`), read-only ones too (400 `BadRequest_InvalidOperation`).
* JSON batch: `POST .../api/v2.0/$batch` `{"requests":[{"method","id","url","headers","body"}]}` ->
  `{"responses":[{"id","status","headers","body"}]}`, each operation answered individually; at most 100
  operations (more -> 400). `Isolation: snapshot` makes the batch transactional (any failed operation rolls back
  every change). A batch counts as ONE request for the rate limit and in the request log; its operations are
  recorded separately (`operations()`).
* Limits: each user / service principal may send 6,000 requests in a 5-minute sliding window, then 429
  `Application_TooManyRequests` (with `Retry-After`, seconds until the window frees a slot); at most 5 requests
  are processed at once per environment, the next ones WAIT in a queue of up to 95, and a request beyond that
  is answered 429 at once. The window, the concurrency and the queue are configurable.
"""

from __future__ import annotations

import base64
import hmac
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from local.sandboxes.base import Call, Faults, MalformedBody, Reply, Sandbox, json_response

API_HOST = "api.businesscentral.dynamics.com"
SCOPE = "https://api.businesscentral.dynamics.com/.default"
ODATA_JSON = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)
GUID_ZERO = "00000000-0000-0000-0000-000000000000"
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
PREFIX = r"(?:/v2\.0/(?P<tenant>[^/]+)/(?P<environment>[^/]+))?/api/v2\.0"
COMPANY = PREFIX + r"/companies\((?P<company>[^)]*)\)"
LINE_TYPES = ("Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge")


@dataclass(frozen=True)
class EntitySpec:
    """An API entity: its writable and read-only properties, and whether the API can write it."""

    name: str
    type_name: str
    writable: frozenset[str]
    read_only: frozenset[str]
    writes: bool = False

    @property
    def properties(self) -> frozenset[str]:
        return self.writable | self.read_only


ENTITIES = {
    "timeRegistrationEntries": EntitySpec(
        "timeRegistrationEntries",
        "timeRegistrationEntry",
        frozenset(
            {
                "employeeId",
                "employeeNumber",
                "jobId",
                "jobNumber",
                "jobTaskNumber",
                "absence",
                "lineNumber",
                "date",
                "quantity",
                "unitOfMeasureId",
                "unitOfMeasureCode",
            }
        ),
        frozenset({"id", "status", "lastModifiedDateTime"}),
        writes=True,
    ),
    "purchaseInvoices": EntitySpec(
        "purchaseInvoices",
        "purchaseInvoice",
        frozenset(
            {
                "number",
                "invoiceDate",
                "postingDate",
                "dueDate",
                "vendorInvoiceNumber",
                "vendorId",
                "vendorNumber",
                "payToVendorId",
                "payToVendorNumber",
                "currencyId",
                "currencyCode",
                "pricesIncludeTax",
                "discountAmount",
                "purchaseInvoiceLines",
            }
        ),
        frozenset(
            {
                "id",
                "vendorName",
                "payToName",
                "status",
                "totalAmountExcludingTax",
                "totalTaxAmount",
                "totalAmountIncludingTax",
                "lastModifiedDateTime",
            }
        ),
        writes=True,
    ),
    "purchaseInvoiceLines": EntitySpec(
        "purchaseInvoiceLines",
        "purchaseInvoiceLine",
        frozenset(
            {
                "documentId",
                "sequence",
                "itemId",
                "accountId",
                "lineType",
                "lineObjectNumber",
                "description",
                "unitOfMeasureId",
                "unitOfMeasureCode",
                "unitCost",
                "quantity",
                "discountAmount",
                "discountPercent",
                "taxCode",
                "expectedReceiptDate",
            }
        ),
        frozenset(
            {
                "id",
                "amountExcludingTax",
                "taxPercent",
                "totalTaxAmount",
                "amountIncludingTax",
                "netAmount",
                "netTaxAmount",
                "netAmountIncludingTax",
            }
        ),
        writes=True,
    ),
    "employees": EntitySpec(
        "employees",
        "employee",
        frozenset(),
        frozenset({"id", "number", "displayName", "givenName", "surname", "status", "lastModifiedDateTime"}),
    ),
    "projects": EntitySpec("projects", "project", frozenset(), frozenset({"id", "number", "displayName"})),
    "vendors": EntitySpec(
        "vendors",
        "vendor",
        frozenset(),
        frozenset({"id", "number", "displayName", "currencyCode", "blocked", "lastModifiedDateTime"}),
    ),
    "accounts": EntitySpec(
        "accounts",
        "account",
        frozenset(),
        frozenset({"id", "number", "displayName", "category", "accountType", "directPosting", "blocked"}),
    ),
    # The accounting calendar (docs/vendor-apis.md "read the calendar"): read-only, seeded.
    "accountingPeriods": EntitySpec(
        "accountingPeriods",
        "accountingPeriod",
        frozenset(),
        frozenset(
            {"id", "startingDate", "name", "newFiscalYear", "closed", "dateLocked", "lastModifiedDateTime"}
        ),
    ),
    "generalLedgerSetup": EntitySpec(
        "generalLedgerSetup",
        "generalLedgerSetup",
        frozenset(),
        frozenset({"id", "allowPostingFrom", "allowPostingTo", "lastModifiedDateTime"}),
    ),
}
EMPTY_DATE = "0001-01-01"  # how BC renders a date that is not set


def bc_error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """Business Central's OData error body (messages end with the request's correlation id)."""
    correlation = uuid.uuid4()
    body = {"error": {"code": code, "message": f"{message}  CorrelationId:  {correlation}."}}
    return json_response(status, body, headers=headers, content_type=ODATA_JSON)


def _fail(status: int, code: str, message: str) -> Reply:
    return Reply(bc_error(status, code, message))


@dataclass
class _Token:
    client_id: str
    tenant: str
    expires_at: float


@dataclass(frozen=True)
class BatchOperation:
    """One operation inside a `$batch`: which batch (1, 2, ... in arrival order), and what it did."""

    batch: int
    id: str | None
    method: str
    path: str
    status: int
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Company:
    id: str
    name: str
    local_currency: str
    created_at: str
    currencies: set[str] = field(default_factory=set)
    tax_codes: dict[str, float] = field(default_factory=dict)
    employees: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    project_tasks: dict[str, set[str]] = field(default_factory=dict)
    vendors: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    allow_posting_from: date | None = None
    allow_posting_to: date | None = None
    next_line_number: int = 10000
    next_invoice_number: int = 108001

    def store(self, entity: str) -> dict[str, dict[str, Any]]:
        if entity in ("employees", "projects", "vendors", "accounts"):
            return getattr(self, entity)
        return self.records.setdefault(entity, {})

    def by_number(self, entity: str, number: str) -> dict[str, Any] | None:
        for row in self.store(entity).values():
            if row["number"] == number:
                return row
        return None


class BusinessCentralSandbox(Sandbox):
    """One Business Central environment of one Entra tenant: its companies, tokens, rate window and queue.

    Args:
        tenant_id / environment: the URL's `{tenant}` and `{environment}` (`/v2.0/{tenant}/{environment}/api/...`).
        client_id / client_secret: the Entra app registration allowed on the environment.
        companies: names of the companies created at start (more with `seed_company`).
        local_currency: the companies' local currency (`currencyCode` "" means it).
        rate_limit / rate_window: requests per principal per sliding window (6,000 per 300 s; e.g. 60 per 5 s in
            tests). None disables the window.
        concurrency_limit / queue_limit: requests processed at once (5) and requests allowed to wait for a slot
            (95); beyond both, 429 at once. `concurrency_limit=None` disables both.
        max_batch_operations: operations allowed in one `$batch` (100).
        page_size: entities per page before `@odata.nextLink` (20,000).
        retry_after: send `Retry-After` with rate-limit 429s (Microsoft documents 429 and a cool-off period,
            not the header).
        token_ttl: access token lifetime in seconds (3599).
        clock: time source for tokens and the rate window.
        id_seed: seed of the deterministic GUIDs.
        faults: see `Sandbox` (throttling answers the same 429 as the rate limit).
    """

    vendor = "business_central"

    def __init__(
        self,
        tenant_id: str = "6f1d2c3b-4a59-4e8f-9c0d-1b2a3c4d5e6f",
        environment: str = "production",
        *,
        client_id: str = "0b6e5c0a-7d7c-4a1e-9f31-3c1f2b9d8e70",
        client_secret: str = "pshub-bc-secret",
        companies: Iterable[str] = ("PS Hub UK Ltd",),
        local_currency: str = "GBP",
        rate_limit: int | None = 6000,
        rate_window: float = 300.0,
        concurrency_limit: int | None = 5,
        queue_limit: int = 95,
        max_batch_operations: int = 100,
        page_size: int = 20_000,
        retry_after: bool = True,
        token_ttl: int = 3599,
        clock: Callable[[], float] = time.time,
        id_seed: int = 0,
        faults: Faults | None = None,
    ) -> None:
        if rate_limit is not None and (rate_limit < 1 or rate_window <= 0):
            raise ValueError("rate_limit must be >= 1 and rate_window > 0 (or rate_limit None)")
        if queue_limit < 0 or max_batch_operations < 1 or page_size < 1:
            raise ValueError("queue_limit >= 0, max_batch_operations >= 1 and page_size >= 1 are required")
        self.tenant_id = tenant_id
        self.environment = environment
        self.client_id = client_id
        self.client_secret = client_secret
        self.initial_companies = tuple(companies)
        self.local_currency = local_currency
        self.rate_limit_requests = rate_limit
        self.rate_window = rate_window
        self.queue_limit = queue_limit
        self.max_batch_operations = max_batch_operations
        self.page_size = page_size
        self.retry_after = retry_after
        self.token_ttl = token_ttl
        self.clock = clock
        self.id_seed = id_seed
        self._slots = threading.Condition()
        self._waiting = 0
        super().__init__(faults=faults, concurrency_limit=concurrency_limit)

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"https://{API_HOST}"

    @property
    def api_path(self) -> str:
        return f"/v2.0/{self.tenant_id}/{self.environment}/api/v2.0"

    @property
    def api_url(self) -> str:
        return self.base_url + self.api_path

    @property
    def token_path(self) -> str:
        return f"/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def token_url(self) -> str:
        """Where the sandbox serves the token (in production: https://login.microsoftonline.com{token_path})."""
        return self.base_url + self.token_path

    # ------------------------------------------------------------------ state and routes
    def _reset_state(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._windows: dict[str, deque[float]] = {}
        self._companies: dict[str, _Company] = {}
        self._guid_counter = 0
        self._operations: list[BatchOperation] = []
        self._batch_seq = 0
        self._undo: list[tuple[dict[str, Any], str, Any]] | None = None
        self._peak_waiting = 0
        self._peak_connections = 0
        for name in self.initial_companies:
            self.seed_company(name)

    def _register_routes(self) -> None:
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self._token, governed=False)
        self.route("POST", PREFIX + r"/\$batch", self._batch)
        self.route("GET", PREFIX + r"/companies", self._list_companies)
        self.route("GET", COMPANY, self._get_company)
        invoice = COMPANY + rf"/purchaseInvoices\((?P<id>{GUID})\)"
        self.route("POST", invoice + r"/Microsoft\.NAV\.post", self._post_invoice)
        self.route("GET", invoice + r"/purchaseInvoiceLines", self._list_invoice_lines)
        self.route("POST", invoice + r"/purchaseInvoiceLines", self._create_invoice_line)
        entity = COMPANY + r"/(?P<entity>\w+)"
        self.route("GET", entity, self._list)
        self.route("POST", entity, self._create)
        member = entity + r"\((?P<id>[^)]*)\)"
        self.route("GET", member, self._get)
        self.route("PATCH", member, self._patch)
        self.route("DELETE", member, self._delete)

    # ------------------------------------------------------------------ vendor answers
    def not_found_response(self, call: Call) -> httpx.Response:
        segment = call.path.rstrip("/").rsplit("/", 1)[-1] or call.path
        return bc_error(
            404, "BadRequest_ResourceNotFound", f"Resource not found for the segment '{segment}'."
        )

    def throttled_response(self, call: Call) -> httpx.Response:
        headers = {"Retry-After": "1"} if self.retry_after else {}
        return bc_error(
            429,
            "Application_TooManyRequests",
            "Too many requests reached. Please retry after a cool-off period.",
            headers=headers,
        )

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return bc_error(
            429,
            "Application_TooManyRequests",
            f"Too many requests reached. Actual ({(self.concurrency_limit or 0) + self.queue_limit + 1}). "
            f"Maximum ({(self.concurrency_limit or 0) + self.queue_limit}).",
        )

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        if status == 503:
            return bc_error(503, "Internal_ServiceUnavailable", "The service is temporarily unavailable.")
        return bc_error(status, "Internal_ServerError", "An unexpected error occurred on the server.")

    def authorize(self, call: Call) -> httpx.Response | None:
        tenant = call.params.get("tenant")
        if tenant is not None and (
            tenant != self.tenant_id or call.params.get("environment") != self.environment
        ):
            return bc_error(
                404,
                "BadRequest_ResourceNotFound",
                f"Environment '{call.params.get('environment')}' of tenant '{tenant}' does not exist.",
            )
        token = self._tokens.get(call.bearer_token() or "")
        if token is None or token.expires_at <= self.clock():
            return bc_error(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
                headers={
                    "WWW-Authenticate": f'Bearer authorization_uri="https://login.microsoftonline.com/'
                    f'{self.tenant_id}/oauth2/authorize", resource_id="https://{API_HOST}"'
                },
            )
        return None

    def rate_limit(self, call: Call) -> tuple[httpx.Response, str] | None:
        """The sliding window per principal: a request over it is answered 429 and not counted."""
        if self.rate_limit_requests is None:
            return None
        principal = self._tokens[call.bearer_token() or ""].client_id
        now = self.clock()
        with self._meta:
            window = self._windows.setdefault(principal, deque())
            while window and window[0] <= now - self.rate_window:
                window.popleft()
            if len(window) < self.rate_limit_requests:
                window.append(now)
                return None
            wait = max(1, math.ceil(window[0] + self.rate_window - now))
        headers = {"Retry-After": str(wait)} if self.retry_after else {}
        response = bc_error(
            429,
            "Application_TooManyRequests",
            f"Too many requests reached. Actual ({self.rate_limit_requests + 1}). "
            f"Maximum ({self.rate_limit_requests}) per {self.rate_window:g} seconds.",
            headers=headers,
        )
        return response, "rate_limit"

    def finalize(self, call: Call, response: httpx.Response) -> httpx.Response:
        response.headers.setdefault("OData-Version", "4.0")
        return response

    # ------------------------------------------------------------------ concurrency: 5 at once, 95 waiting
    def _admit(self) -> bool:
        if self.concurrency_limit is None:
            return super()._admit()
        with self._slots:
            with self._meta:
                busy = self._in_flight >= self.concurrency_limit
            if busy:
                if self._waiting >= self.queue_limit:
                    return False
                self._waiting += 1
                self._peak_waiting = max(self._peak_waiting, self._waiting)
                self._note_connections()
                while True:
                    with self._meta:
                        if self._in_flight < self.concurrency_limit:
                            break
                    self._slots.wait()
                self._waiting -= 1
            with self._meta:
                self._in_flight += 1
                self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            self._note_connections()
            return True

    def _release(self) -> None:
        super()._release()
        if self.concurrency_limit is not None:
            with self._slots:
                self._slots.notify()

    def _note_connections(self) -> None:
        with self._meta:
            self._peak_connections = max(self._peak_connections, self._in_flight + self._waiting)

    @property
    def peak_waiting(self) -> int:
        """The most requests that ever waited for a processing slot at once."""
        with self._meta:
            return self._peak_waiting

    @property
    def peak_connections(self) -> int:
        """The most requests ever open at once (processing + waiting): what the caller really sent."""
        with self._meta:
            return max(self._peak_connections, self._peak_in_flight)

    # ------------------------------------------------------------------ OAuth 2.0 client credentials (Entra ID)
    def _token(self, call: Call) -> httpx.Response:
        form = call.body if isinstance(call.body, dict) else {}
        tenant = call.params["tenant"]
        if tenant != self.tenant_id:
            return _entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _entra_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = call.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                client_id, secret = None, None
        if client_id != self.client_id:
            return _entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not hmac.compare_digest((secret or "").encode(), self.client_secret.encode()):
            return _entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                "secret value, not the client secret ID, for a secret added to app '" + str(client_id) + "'.",
            )
        if form.get("scope") != SCOPE:
            return _entra_error(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid.",
            )
        token = self.issue_token()
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "ext_expires_in": self.token_ttl,
                "access_token": token,
            },
        )

    def issue_token(self, client_id: str | None = None) -> str:
        """A valid access token for the app (or another principal, for a separate rate window)."""
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(
                client_id or self.client_id, self.tenant_id, self.clock() + self.token_ttl
            )
        return token

    def expire_token(self, token: str) -> None:
        with self._lock:
            if token in self._tokens:
                self._tokens[token].expires_at = 0.0

    # ------------------------------------------------------------------ companies
    def _list_companies(self, call: Call) -> httpx.Response:
        with self._lock:
            rows = [self._company_row(c) for c in self._companies.values()]
            return self._collection_response(call, "companies", "company", rows, context="companies")

    def _get_company(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            body = {"@odata.context": f"{self._api_origin(call)}/$metadata#companies/$entity"}
            return json_response(200, {**body, **self._company_row(company)}, content_type=ODATA_JSON)

    def _company_row(self, company: _Company) -> dict[str, Any]:
        return {
            "id": company.id,
            "systemVersion": "25.0.23364.24415",
            "timestamp": 1,
            "name": company.name,
            "displayName": company.name,
            "businessProfileId": "",
            "systemCreatedAt": company.created_at,
            "systemCreatedBy": GUID_ZERO,
            "systemModifiedAt": company.created_at,
            "systemModifiedBy": GUID_ZERO,
        }

    def _company(self, call: Call) -> _Company:
        company = self._companies.get(call.params["company"].strip("'").lower())
        if company is None:
            raise _fail(
                404,
                "Internal_CompanyNotFound",
                f"Cannot process the request because the company '{call.params['company']}' cannot be found.",
            )
        return company

    # ------------------------------------------------------------------ generic entity handlers
    def _spec(self, call: Call) -> EntitySpec:
        spec = ENTITIES.get(call.params["entity"])
        if spec is None or spec.name == "purchaseInvoiceLines":
            raise Reply(self.not_found_response(call))
        return spec

    def _list(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            spec = self._spec(call)
            rows = [self._render(company, spec.name, r) for r in company.store(spec.name).values()]
            if spec.name == "purchaseInvoices" and "purchaseInvoiceLines" in call.query.get("$expand", ""):
                rows = [self._with_lines(company, r) for r in rows]
            context = f"companies({company.id})/{spec.name}"
            return self._collection_response(call, spec.name, spec.type_name, rows, context=context)

    def _get(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            spec = self._spec(call)
            row = self._find(company, spec, call.params["id"])
            body = self._render(company, spec.name, row)
            if spec.name == "purchaseInvoices" and "purchaseInvoiceLines" in call.query.get("$expand", ""):
                body = self._with_lines(company, body)
            return self._entity_response(call, company, spec.name, body, 200)

    def _create(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            spec = self._spec(call)
            if not spec.writes:
                raise self._method_not_allowed("POST", spec)
            data = _json_object(call)
            if spec.name == "timeRegistrationEntries":
                row = self._create_time_entry(company, data)
            else:
                row = self._atomically(lambda: self._create_purchase_invoice(company, data))
            body = self._render(company, spec.name, row)
            if spec.name == "purchaseInvoices":
                body = self._with_lines(company, body)
            response = self._entity_response(call, company, spec.name, body, 201)
            response.headers["Location"] = (
                f"{self._api_origin(call)}/companies({company.id})/{spec.name}({row['id']})"
            )
            return response

    def _patch(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            spec = self._spec(call)
            if not spec.writes:
                raise self._method_not_allowed("PATCH", spec)
            row = self._find(company, spec, call.params["id"])
            self._check_etag(call, company, spec.name, row)
            data = _json_object(call)
            _check_properties(spec, data, creating=False)
            if spec.name == "timeRegistrationEntries":
                changes = self._time_entry_values(company, {**_public(row), **data}, partial=data)
            else:
                if row["status"] != "Draft":
                    raise _fail(
                        400, "Application_DialogException", "You cannot change a posted purchase invoice."
                    )
                current = _public(row)
                if "vendorNumber" in data and "vendorId" not in data:
                    current.pop("vendorId")
                changes = self._invoice_header_values(company, {**current, **data})
            self._write(
                company.store(spec.name), row["id"], {**row, **changes, "_version": row["_version"] + 1}
            )
            if spec.name == "purchaseInvoices":
                self._recompute_totals(company, row["id"])
            row = company.store(spec.name)[row["id"]]
            return self._entity_response(call, company, spec.name, self._render(company, spec.name, row), 200)

    def _delete(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            spec = self._spec(call)
            if not spec.writes:
                raise self._method_not_allowed("DELETE", spec)
            row = self._find(company, spec, call.params["id"])
            self._check_etag(call, company, spec.name, row)
            if spec.name == "purchaseInvoices":
                if row["status"] != "Draft":
                    raise _fail(
                        400, "Application_DialogException", "You cannot delete a posted purchase invoice."
                    )
                for line in [
                    line
                    for line in company.store("purchaseInvoiceLines").values()
                    if line["documentId"] == row["id"]
                ]:
                    self._write(company.store("purchaseInvoiceLines"), line["id"], None)
            self._write(company.store(spec.name), row["id"], None)
            return httpx.Response(204)

    def _find(self, company: _Company, spec: EntitySpec, raw_id: str) -> dict[str, Any]:
        row = company.store(spec.name).get(raw_id.strip("'").lower())
        if row is None:
            raise _fail(
                404,
                "Internal_RecordNotFound",
                f"The {spec.type_name} does not exist. Identification fields and values: Id='{raw_id}'",
            )
        return row

    def _method_not_allowed(self, method: str, spec: EntitySpec) -> Reply:
        return _fail(
            405,
            "BadRequest_MethodNotAllowed",
            f"'{method}' requests for '{spec.name}' of EdmType 'Entity' are not allowed within Microsoft "
            f"Dynamics 365 Business Central OData web services.",
        )

    def _check_etag(self, call: Call, company: _Company, entity: str, row: Mapping[str, Any]) -> None:
        wanted = call.request.headers.get("if-match")
        if not wanted:
            raise _fail(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a "
                "valid token in the client request.",
            )
        if wanted.strip() != "*" and wanted.strip() != _etag(company, entity, row):
            raise _fail(412, "Request_EntityChanged", "Another user has already changed the record.")

    def _atomically(self, action: Callable[[], Any]) -> Any:
        """Run `action` as one transaction (a deep insert): if it fails, every change it made is undone."""
        outer, self._undo = self._undo, []
        try:
            result = action()
        except Reply:
            self._rollback(self._undo)
            raise
        finally:
            done, self._undo = self._undo, outer
            if outer is not None:
                outer.extend(done)
        return result

    def _rollback(self, undo: list[tuple[dict[str, Any], str, Any]]) -> None:
        for store, key, previous in reversed(undo):
            if previous is None:
                store.pop(key, None)
            else:
                store[key] = previous
        undo.clear()

    def _write(self, store: dict[str, dict[str, Any]], key: str, row: dict[str, Any] | None) -> None:
        """Every change goes through here, so a transactional `$batch` can undo it."""
        if self._undo is not None:
            self._undo.append((store, key, store.get(key)))
        if row is None:
            store.pop(key, None)
        else:
            store[key] = row

    # ------------------------------------------------------------------ time registration entries
    def _create_time_entry(self, company: _Company, data: Mapping[str, Any]) -> dict[str, Any]:
        spec = ENTITIES["timeRegistrationEntries"]
        _check_properties(spec, data, creating=True)
        values = self._time_entry_values(company, data, partial=data)
        row = {
            "id": self._guid("timeRegistrationEntries"),
            **values,
            "lineNumber": values.get("lineNumber") or self._line_number(company),
            "status": "Open",
            "_version": 1,
        }
        self._write(company.store(spec.name), row["id"], row)
        return row

    def _line_number(self, company: _Company) -> int:
        number = company.next_line_number
        company.next_line_number += 10000
        return number

    def _time_entry_values(
        self, company: _Company, data: Mapping[str, Any], *, partial: Mapping[str, Any]
    ) -> dict[str, Any]:
        employee = None
        if not _blank_guid(data.get("employeeId")) and (
            "employeeId" in partial or "employeeNumber" not in partial
        ):
            employee = company.employees.get(str(data["employeeId"]).lower())
            if employee is None:
                raise _record_missing("Employee", f"Id='{data['employeeId']}'")
        elif data.get("employeeNumber"):
            employee = company.by_number("employees", str(data["employeeNumber"]))
            if employee is None:
                raise _record_missing("Employee", f"No.='{data['employeeNumber']}'")
        if employee is None:
            raise _fail(
                400, "Application_DialogException", "An employeeNumber or an employeeId must be provided."
            )
        if _blank(data.get("date")):
            raise _fail(
                400,
                "Application_FieldValidationException",
                "Date must have a value in Time Sheet Line. It cannot be zero or empty.",
            )
        if _parse_date(data["date"]) is None:
            raise _fail(
                400,
                "BadRequest",
                f"Cannot convert the literal '{data['date']}' to the expected type 'Edm.Date'.",
            )
        quantity = data.get("quantity", 0)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float):
            raise _fail(
                400,
                "BadRequest",
                f"Cannot convert the literal '{quantity}' to the expected type 'Edm.Decimal'.",
            )
        project = None
        if not _blank_guid(data.get("jobId")) and ("jobId" in partial or "jobNumber" not in partial):
            project = company.projects.get(str(data["jobId"]).lower())
            if project is None:
                raise _record_missing("Job", f"Id='{data['jobId']}'")
        elif data.get("jobNumber"):
            project = company.by_number("projects", str(data["jobNumber"]))
            if project is None:
                raise _record_missing("Job", f"No.='{data['jobNumber']}'")
        task = str(data.get("jobTaskNumber") or "")
        if task and project is None:
            raise _fail(
                400,
                "Application_FieldValidationException",
                "Job No. must have a value in Time Sheet Line. It cannot be zero or empty.",
            )
        if project is not None and task and task not in company.project_tasks.get(project["id"], set()):
            raise _record_missing("Job Task", f"Job No.='{project['number']}',Job Task No.='{task}'")
        return {
            "employeeId": employee["id"],
            "employeeNumber": employee["number"],
            "jobId": project["id"] if project else GUID_ZERO,
            "jobNumber": project["number"] if project else "",
            "jobTaskNumber": task,
            "absence": str(data.get("absence") or ""),
            "lineNumber": data.get("lineNumber"),
            "date": _parse_date(data["date"]).isoformat(),
            "quantity": quantity,
            "unitOfMeasureId": GUID_ZERO,
            "unitOfMeasureCode": str(data.get("unitOfMeasureCode") or "HOUR"),
            "lastModifiedDateTime": self._now_text(),
        }

    # ------------------------------------------------------------------ purchase invoices
    def _create_purchase_invoice(self, company: _Company, data: Mapping[str, Any]) -> dict[str, Any]:
        spec = ENTITIES["purchaseInvoices"]
        _check_properties(spec, data, creating=True)
        lines = data.get("purchaseInvoiceLines") or []
        if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
            raise _fail(400, "BadRequest", "Invalid Request Body")
        for line in lines:
            _check_properties(ENTITIES["purchaseInvoiceLines"], line, creating=True)
        header = self._invoice_header_values(company, data)
        number = str(data.get("number") or company.next_invoice_number)
        company.next_invoice_number += 1
        row = {
            "id": self._guid("purchaseInvoices"),
            "number": number,
            **header,
            "status": "Draft",
            "totalAmountExcludingTax": 0.0,
            "totalTaxAmount": 0.0,
            "totalAmountIncludingTax": 0.0,
            "_version": 1,
        }
        self._write(company.store(spec.name), row["id"], row)
        for index, line in enumerate(lines):
            self._insert_invoice_line(company, row, line, (index + 1) * 10000)
        self._recompute_totals(company, row["id"])
        return company.store(spec.name)[row["id"]]

    def _invoice_header_values(self, company: _Company, data: Mapping[str, Any]) -> dict[str, Any]:
        vendor = None
        if not _blank_guid(data.get("vendorId")):
            vendor = company.vendors.get(str(data["vendorId"]).lower())
            if vendor is None:
                raise _record_missing("Vendor", f"Id='{data['vendorId']}'")
        elif data.get("vendorNumber"):
            vendor = company.by_number("vendors", str(data["vendorNumber"]))
            if vendor is None:
                raise _record_missing("Vendor", f"No.='{data['vendorNumber']}'")
        if vendor is None:
            raise _fail(400, "Application_DialogException", "A vendorNumber or a vendorId must be provided.")
        dates = {}
        for name in ("invoiceDate", "postingDate", "dueDate"):
            value = data.get(name)
            if value in (None, "", "0001-01-01"):
                continue
            parsed = _parse_date(value)
            if parsed is None:
                raise _fail(
                    400,
                    "BadRequest",
                    f"Cannot convert the literal '{value}' to the expected type 'Edm.Date'.",
                )
            dates[name] = parsed.isoformat()
        invoice_date = (
            dates.get("invoiceDate") or datetime.fromtimestamp(self.clock(), UTC).date().isoformat()
        )
        currency = str(
            data.get("currencyCode") if data.get("currencyCode") is not None else vendor["currencyCode"]
        )
        if currency == company.local_currency:
            currency = ""
        if currency and currency not in company.currencies:
            raise _record_missing("Currency", f"Code='{currency}'")
        return {
            "invoiceDate": invoice_date,
            "postingDate": dates.get("postingDate") or invoice_date,
            "dueDate": dates.get("dueDate") or invoice_date,
            "vendorInvoiceNumber": str(data.get("vendorInvoiceNumber") or ""),
            "vendorId": vendor["id"],
            "vendorNumber": vendor["number"],
            "vendorName": vendor["displayName"],
            "payToVendorId": vendor["id"],
            "payToVendorNumber": vendor["number"],
            "payToName": vendor["displayName"],
            "currencyId": GUID_ZERO,
            "currencyCode": currency,
            "pricesIncludeTax": bool(data.get("pricesIncludeTax", False)),
            "discountAmount": float(data.get("discountAmount") or 0),
            "lastModifiedDateTime": self._now_text(),
        }

    def _insert_invoice_line(
        self, company: _Company, invoice: Mapping[str, Any], data: Mapping[str, Any], sequence: int
    ) -> dict[str, Any]:
        line_type = data.get("lineType") or (
            "Account" if not _blank_guid(data.get("accountId")) else "Comment"
        )
        if line_type not in LINE_TYPES:
            raise _fail(
                400,
                "Application_EvaluateException",
                f'The value "{line_type}" can\'t be evaluated into type Option. The existing options are: '
                f"{', '.join(LINE_TYPES)}",
            )
        account = None
        if line_type == "Account":
            if not _blank_guid(data.get("accountId")):
                account = company.accounts.get(str(data["accountId"]).lower())
            elif data.get("lineObjectNumber"):
                account = company.by_number("accounts", str(data["lineObjectNumber"]))
            if account is None:
                raise _record_missing(
                    "G/L Account", f"No.='{data.get('lineObjectNumber') or data.get('accountId')}'"
                )
        elif line_type != "Comment":
            raise _fail(
                400, "Application_DialogException", f"Line type {line_type} is not set up in this company."
            )
        tax_code = str(data.get("taxCode") or "")
        if tax_code and tax_code not in company.tax_codes:
            raise _record_missing("VAT Product Posting Group", f"Code='{tax_code}'")
        numbers = {}
        for name in ("quantity", "unitCost", "discountAmount", "discountPercent"):
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(
                    400,
                    "BadRequest",
                    f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'.",
                )
            numbers[name] = float(value)
        percent = company.tax_codes.get(tax_code, 0.0)
        gross = numbers["quantity"] * numbers["unitCost"]
        discount = numbers["discountAmount"] or round(gross * numbers["discountPercent"] / 100, 2)
        amount = round(gross - discount, 2)
        if invoice["pricesIncludeTax"]:
            tax = round(amount - amount / (1 + percent / 100), 2)
            excluding = round(amount - tax, 2)
        else:
            excluding = amount
            tax = round(excluding * percent / 100, 2)
        row = {
            "id": self._guid("purchaseInvoiceLines"),
            "documentId": invoice["id"],
            "sequence": int(data.get("sequence") or sequence),
            "itemId": GUID_ZERO,
            "accountId": account["id"] if account else GUID_ZERO,
            "lineType": line_type,
            "lineObjectNumber": account["number"] if account else "",
            "description": str(data.get("description") or (account or {}).get("displayName", "")),
            "unitOfMeasureId": GUID_ZERO,
            "unitOfMeasureCode": str(data.get("unitOfMeasureCode") or ""),
            "unitCost": numbers["unitCost"],
            "quantity": numbers["quantity"],
            "discountAmount": discount,
            "discountPercent": numbers["discountPercent"],
            "amountExcludingTax": excluding,
            "taxCode": tax_code,
            "taxPercent": percent,
            "totalTaxAmount": tax,
            "amountIncludingTax": round(excluding + tax, 2),
            "netAmount": excluding,
            "netTaxAmount": tax,
            "netAmountIncludingTax": round(excluding + tax, 2),
            "expectedReceiptDate": data.get("expectedReceiptDate") or invoice["invoiceDate"],
            "_version": 1,
        }
        self._write(company.store("purchaseInvoiceLines"), row["id"], row)
        return row

    def _recompute_totals(self, company: _Company, invoice_id: str) -> None:
        store = company.store("purchaseInvoices")
        lines = [
            line
            for line in company.store("purchaseInvoiceLines").values()
            if line["documentId"] == invoice_id
        ]
        totals = {
            "totalAmountExcludingTax": round(sum(line["amountExcludingTax"] for line in lines), 2),
            "totalTaxAmount": round(sum(line["totalTaxAmount"] for line in lines), 2),
            "totalAmountIncludingTax": round(sum(line["amountIncludingTax"] for line in lines), 2),
        }
        row = store[invoice_id]
        if any(row[k] != v for k, v in totals.items()):
            self._write(store, invoice_id, {**row, **totals})

    def _list_invoice_lines(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            invoice = self._find(company, ENTITIES["purchaseInvoices"], call.params["id"])
            rows = [
                self._render(company, "purchaseInvoiceLines", line)
                for line in company.store("purchaseInvoiceLines").values()
                if line["documentId"] == invoice["id"]
            ]
            rows.sort(key=lambda line: line["sequence"])
            context = f"companies({company.id})/purchaseInvoices({invoice['id']})/purchaseInvoiceLines"
            return self._collection_response(
                call, "purchaseInvoiceLines", "purchaseInvoiceLine", rows, context=context
            )

    def _create_invoice_line(self, call: Call) -> httpx.Response:
        with self._lock:
            company = self._company(call)
            invoice = self._find(company, ENTITIES["purchaseInvoices"], call.params["id"])
            if invoice["status"] != "Draft":
                raise _fail(
                    400, "Application_DialogException", "You cannot change a posted purchase invoice."
                )
            data = _json_object(call)
            _check_properties(ENTITIES["purchaseInvoiceLines"], data, creating=True)
            existing = [
                line["sequence"]
                for line in company.store("purchaseInvoiceLines").values()
                if line["documentId"] == invoice["id"]
            ]
            line = self._insert_invoice_line(company, invoice, data, max(existing, default=0) + 10000)
            self._recompute_totals(company, invoice["id"])
            body = self._render(company, "purchaseInvoiceLines", line)
            return self._entity_response(call, company, "purchaseInvoiceLines", body, 201)

    def _post_invoice(self, call: Call) -> httpx.Response:
        """The bound action `Microsoft.NAV.post`: the purchase invoice becomes a posted ("Open") invoice."""
        with self._lock:
            company = self._company(call)
            invoice = self._find(company, ENTITIES["purchaseInvoices"], call.params["id"])
            if invoice["status"] != "Draft":
                raise _fail(
                    400,
                    "Application_DialogException",
                    f"Purchase Invoice {invoice['number']} has already been posted.",
                )
            if not invoice["vendorInvoiceNumber"]:
                raise _fail(
                    400,
                    "Application_FieldValidationException",
                    f"Vendor Invoice No. must have a value in Purchase Header: Document Type=Invoice, "
                    f"No.={invoice['number']}. It cannot be zero or empty.",
                )
            posting = date.fromisoformat(invoice["postingDate"])
            low, high = company.allow_posting_from, company.allow_posting_to
            if (low and posting < low) or (high and posting > high):
                raise _fail(
                    400,
                    "Application_FieldValidationException",
                    "Posting Date is not within your range of allowed posting dates.",
                )
            for other in company.store("purchaseInvoices").values():
                if (
                    other["id"] != invoice["id"]
                    and other["status"] != "Draft"
                    and other["vendorId"] == invoice["vendorId"]
                    and other["vendorInvoiceNumber"] == invoice["vendorInvoiceNumber"]
                ):
                    raise _fail(
                        400,
                        "Application_DialogException",
                        f"Purchase Invoice {invoice['vendorInvoiceNumber']} already exists for this vendor.",
                    )
            self._write(
                company.store("purchaseInvoices"),
                invoice["id"],
                {
                    **invoice,
                    "status": "Open",
                    "_version": invoice["_version"] + 1,
                    "lastModifiedDateTime": self._now_text(),
                },
            )
        return httpx.Response(204)

    # ------------------------------------------------------------------ JSON $batch
    def _batch(self, call: Call) -> httpx.Response:
        body = call.body
        requests = body.get("requests") if isinstance(body, dict) else None
        if isinstance(body, MalformedBody) or not isinstance(requests, list):
            return bc_error(400, "BadRequest", "Invalid Request Body")
        if len(requests) > self.max_batch_operations:
            return bc_error(
                400,
                "BadRequest",
                f"The batch request contains {len(requests)} operations. A batch request can contain at most "
                f"{self.max_batch_operations} operations.",
            )
        with self._meta:
            self._batch_seq += 1
            batch_index = self._batch_seq
        transactional = call.request.headers.get("isolation", "").strip().lower() == "snapshot"
        origin = self._api_origin(call)
        responses = []
        with self._lock:
            self._undo = [] if transactional else None
            try:
                for operation in requests:
                    responses.append(self._run_operation(call, origin, operation, batch_index))
                if transactional and any(r["status"] >= 400 for r in responses):
                    self._rollback(self._undo or [])
            finally:
                self._undo = None
        return json_response(200, {"responses": responses}, content_type=ODATA_JSON)

    def _run_operation(self, call: Call, origin: str, operation: Any, batch_index: int) -> dict[str, Any]:
        if not isinstance(operation, dict) or not operation.get("method") or not operation.get("url"):
            answer = bc_error(400, "BadRequest", "Invalid Request Body")
            return self._batch_answer(
                operation if isinstance(operation, dict) else {}, answer, "", batch_index
            )
        method = str(operation["method"]).upper()
        url = str(operation["url"])
        target = url if urlsplit(url).scheme else f"{origin}/{url.lstrip('/')}"
        headers = {k: str(v) for k, v in (operation.get("headers") or {}).items()}
        if "authorization" not in {k.lower() for k in headers}:
            headers["Authorization"] = call.request.headers.get("authorization", "")
        inner = httpx.Request(method, target, headers=headers, json=operation.get("body"))
        inner_call, route = self._match_route(inner)
        if route is None or not route.governed or route.handler == self._batch:
            answer = self.not_found_response(inner_call)
        else:
            answer = self.authorize(inner_call) or self._dispatch(route, inner_call)
        return self._batch_answer(operation, answer, inner_call.path, batch_index)

    def _batch_answer(
        self, operation: Mapping[str, Any], answer: httpx.Response, path: str, batch_index: int
    ) -> dict[str, Any]:
        self._operations.append(
            BatchOperation(
                batch_index,
                operation.get("id"),
                str(operation.get("method", "")).upper(),
                path,
                answer.status_code,
                time.time(),
            )
        )
        headers = {
            k.lower(): v
            for k, v in answer.headers.items()
            if k.lower() in ("content-type", "location", "etag")
        }
        result: dict[str, Any] = {"id": operation.get("id"), "status": answer.status_code, "headers": headers}
        if answer.content:
            headers.setdefault("odata-version", "4.0")
            result["body"] = answer.json()
        return result

    def operations(
        self, method: str | None = None, path_contains: str | None = None, *, status: int | None = None
    ) -> list[BatchOperation]:
        """Operations run inside `$batch` requests (each batch is one entry in `requests`)."""
        with self._meta:
            found = list(self._operations)
        return [
            op
            for op in found
            if (method is None or op.method == method.upper())
            and (path_contains is None or path_contains in op.path)
            and (status is None or op.status == status)
        ]

    # ------------------------------------------------------------------ rendering
    def _render(self, company: _Company, entity: str, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"@odata.etag": _etag(company, entity, row), **_public(row)}

    def _with_lines(self, company: _Company, body: dict[str, Any]) -> dict[str, Any]:
        lines = [
            self._render(company, "purchaseInvoiceLines", line)
            for line in company.store("purchaseInvoiceLines").values()
            if line["documentId"] == body["id"]
        ]
        return {**body, "purchaseInvoiceLines": sorted(lines, key=lambda line: line["sequence"])}

    def _entity_response(
        self, call: Call, company: _Company, entity: str, body: dict[str, Any], status: int
    ) -> httpx.Response:
        context = f"{self._api_origin(call)}/$metadata#companies({company.id})/{entity}/$entity"
        headers = {"ETag": body.get("@odata.etag", "")}
        return json_response(
            status, {"@odata.context": context, **body}, headers=headers, content_type=ODATA_JSON
        )

    def _collection_response(
        self, call: Call, entity: str, type_name: str, rows: list[dict[str, Any]], *, context: str
    ) -> httpx.Response:
        query = call.query
        if query.get("$filter"):
            try:
                keep = odata_filter(query["$filter"])
                rows = [r for r in rows if keep(r)]
            except KeyError as error:
                raise _fail(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{error.args[0]}' on type 'Microsoft.NAV.{type_name}'.",
                ) from None
            except ValueError as error:
                raise _fail(400, "BadRequest", str(error)) from None
        if query.get("$orderby"):
            for clause in reversed(query["$orderby"].split(",")):
                name, _, direction = clause.strip().partition(" ")
                rows.sort(
                    key=lambda r, n=name: (r.get(n) is None, r.get(n)), reverse=direction.strip() == "desc"
                )
        offset = _int_param(query.get("$skiptoken"), 0) + _int_param(query.get("$skip"), 0)
        top = _int_param(query.get("$top"), None)
        window = rows[offset:]
        if top is not None:
            window = window[:top]
        page = window[: self.page_size]
        if query.get("$select"):
            wanted = {s.strip() for s in query["$select"].split(",")} | {"@odata.etag"}
            page = [{k: v for k, v in r.items() if k in wanted} for r in page]
        body: dict[str, Any] = {
            "@odata.context": f"{self._api_origin(call)}/$metadata#{context}",
            "value": page,
        }
        if len(window) > self.page_size and top is None:
            next_query = httpx.QueryParams({**query, "$skiptoken": str(offset + self.page_size)})
            next_query = next_query.remove("$skip")
            body["@odata.nextLink"] = f"{call.origin}{call.path}?{next_query}"
        return json_response(200, body, content_type=ODATA_JSON)

    def _api_origin(self, call: Call) -> str:
        """The API root the caller used (`.../v2.0/{tenant}/{environment}/api/v2.0` or `.../api/v2.0`)."""
        path = call.path
        root = path[: path.index("/api/v2.0") + len("/api/v2.0")] if "/api/v2.0" in path else self.api_path
        return f"{call.origin}{root}"

    def _guid(self, kind: str) -> str:
        self._guid_counter += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub-bc:{self.id_seed}:{kind}:{self._guid_counter}"))

    def _now_text(self) -> str:
        return (
            datetime.fromtimestamp(self.clock(), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    # ------------------------------------------------------------------ seeding
    def seed_company(
        self,
        name: str,
        *,
        local_currency: str | None = None,
        currencies: Iterable[str] = ("EUR", "USD"),
        tax_codes: Mapping[str, float] | None = None,
    ) -> str:
        """A company with a G/L expense account set, tax codes and currencies; returns its id."""
        with self._lock:
            if any(c.name == name for c in self._companies.values()):
                raise ValueError(f"company {name!r} exists")
            company = _Company(
                id=self._guid("companies"),
                name=name,
                local_currency=local_currency or self.local_currency,
                created_at=self._now_text(),
                currencies=set(currencies),
                tax_codes=dict(tax_codes or {"STANDARD": 20.0, "REDUCED": 5.0, "ZERO": 0.0, "REVERSE": 0.0}),
            )
            self._companies[company.id] = company
            setup_id = self._guid("generalLedgerSetup")
            company.store("generalLedgerSetup")[setup_id] = {
                "id": setup_id,
                "allowPostingFrom": EMPTY_DATE,
                "allowPostingTo": EMPTY_DATE,
                "lastModifiedDateTime": company.created_at,
                "_version": 1,
            }
            for number, display in (
                ("64100", "Travel"),
                ("64200", "Meals and Entertainment"),
                ("64300", "Accommodation"),
                ("64400", "Mileage"),
                ("64900", "Other Expenses"),
            ):
                self._seed_account(company, number, display)
            return company.id

    def company(self, name_or_id: str) -> str:
        """A company's id, by name or id."""
        with self._lock:
            return self._company_named(name_or_id).id

    def _company_named(self, name_or_id: str) -> _Company:
        found = self._companies.get(str(name_or_id).lower())
        if found is None:
            found = next((c for c in self._companies.values() if c.name == name_or_id), None)
        if found is None:
            raise KeyError(f"no company {name_or_id!r}")
        return found

    def seed_employee(self, company: str, number: str, name: str = "Alex Consultant") -> str:
        with self._lock:
            target = self._company_named(company)
            given, _, surname = name.partition(" ")
            row = {
                "id": self._guid("employees"),
                "number": number,
                "displayName": name,
                "givenName": given,
                "surname": surname,
                "status": "Active",
                "lastModifiedDateTime": self._now_text(),
                "_version": 1,
            }
            target.employees[row["id"]] = row
            return row["id"]

    def seed_employees(self, company: str, count: int, prefix: str = "E") -> list[str]:
        """`count` employees numbered "{prefix}0001"...; returns their ids."""
        return [
            self.seed_employee(company, f"{prefix}{n:04d}", f"Consultant {n}") for n in range(1, count + 1)
        ]

    def seed_project(
        self, company: str, number: str, name: str = "Implementation", tasks: Iterable[str] = ("100", "200")
    ) -> str:
        """A project (job) with its task numbers; returns its id."""
        with self._lock:
            target = self._company_named(company)
            row = {"id": self._guid("projects"), "number": number, "displayName": name, "_version": 1}
            target.projects[row["id"]] = row
            target.project_tasks[row["id"]] = set(tasks)
            return row["id"]

    def seed_vendor(
        self, company: str, number: str, name: str = "Alex Consultant", currency_code: str = ""
    ) -> str:
        """A vendor (an employee reimbursed through purchase invoices is one); returns its id."""
        with self._lock:
            target = self._company_named(company)
            row = {
                "id": self._guid("vendors"),
                "number": number,
                "displayName": name,
                "currencyCode": currency_code,
                "blocked": " ",
                "lastModifiedDateTime": self._now_text(),
                "_version": 1,
            }
            target.vendors[row["id"]] = row
            return row["id"]

    def seed_tax_code(self, company: str, code: str, percent: float) -> None:
        """A tax code purchase invoice lines may carry (e.g. "NO VAT" at 0 %)."""
        with self._lock:
            self._company_named(company).tax_codes[code] = float(percent)

    def seed_account(self, company: str, number: str, name: str) -> str:
        with self._lock:
            return self._seed_account(self._company_named(company), number, name)

    def _seed_account(self, company: _Company, number: str, name: str) -> str:
        row = {
            "id": self._guid("accounts"),
            "number": number,
            "displayName": name,
            "category": "Expense",
            "accountType": "Posting",
            "directPosting": True,
            "blocked": False,
            "_version": 1,
        }
        company.accounts[row["id"]] = row
        return row["id"]

    def set_allowed_posting_dates(self, company: str, start: str | None, end: str | None) -> None:
        """The company's "Allow Posting From/To" (None lifts a bound): posting outside is refused."""
        with self._lock:
            target = self._company_named(company)
            target.allow_posting_from = _parse_date(start) if start else None
            target.allow_posting_to = _parse_date(end) if end else None
            for setup in target.store("generalLedgerSetup").values():
                setup.update(
                    allowPostingFrom=target.allow_posting_from.isoformat()
                    if target.allow_posting_from
                    else EMPTY_DATE,
                    allowPostingTo=target.allow_posting_to.isoformat()
                    if target.allow_posting_to
                    else EMPTY_DATE,
                    lastModifiedDateTime=self._now_text(),
                    _version=setup["_version"] + 1,
                )

    def seed_accounting_periods(
        self, company: str, first_month: str = "2025-01", count: int = 12
    ) -> list[str]:
        """Monthly accounting periods (open, January starts a fiscal year) from `first_month` ("2026-10");
        returns their ids. What closes posting is the allowed posting dates (`set_allowed_posting_dates`)."""
        year, month = (int(part) for part in first_month.split("-"))
        ids = []
        with self._lock:
            target = self._company_named(company)
            for _ in range(count):
                row = {
                    "id": self._guid("accountingPeriods"),
                    "startingDate": date(year, month, 1).isoformat(),
                    "name": date(year, month, 1).strftime("%B"),
                    "newFiscalYear": month == 1,
                    "closed": False,
                    "dateLocked": False,
                    "lastModifiedDateTime": self._now_text(),
                    "_version": 1,
                }
                target.store("accountingPeriods")[row["id"]] = row
                ids.append(row["id"])
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return ids

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"companies": [{"name", "employees": [{"number","name"}], "projects": [{"number","name","tasks"}],
        "vendors": [{"number","name"}]}]}; answers the ids."""
        created: dict[str, Any] = {"companies": []}
        for spec in payload.get("companies", []):
            name = spec["name"]
            company_id = self.company(name) if self._find_company(name) else self.seed_company(name)
            created["companies"].append(
                {
                    "id": company_id,
                    "employees": [
                        self.seed_employee(company_id, e["number"], e.get("name", e["number"]))
                        for e in spec.get("employees", [])
                    ],
                    "projects": [
                        self.seed_project(
                            company_id, p["number"], p.get("name", p["number"]), p.get("tasks", ("100",))
                        )
                        for p in spec.get("projects", [])
                    ],
                    "vendors": [
                        self.seed_vendor(company_id, v["number"], v.get("name", v["number"]))
                        for v in spec.get("vendors", [])
                    ],
                }
            )
        return created

    def _find_company(self, name: str) -> bool:
        return any(c.name == name for c in self._companies.values())

    # ------------------------------------------------------------------ inspection
    def records(self, company: str, entity: str) -> list[dict[str, Any]]:
        """Every record of an entity in a company, as the API renders it (without `@odata.etag`)."""
        with self._lock:
            target = self._company_named(company)
            return [_public(r) for r in target.store(entity).values()]

    def count(self, company: str, entity: str) -> int:
        with self._lock:
            return len(self._company_named(company).store(entity))

    def duplicates(self, company: str, entity: str, key: str) -> dict[Any, int]:
        """Values of `key` held by more than one record (e.g. purchaseInvoices by vendorInvoiceNumber)."""
        seen: dict[Any, int] = {}
        for row in self.records(company, entity):
            seen[row.get(key)] = seen.get(row.get(key), 0) + 1
        return {value: n for value, n in seen.items() if n > 1}

    def requests_in_window(self, client_id: str | None = None) -> int:
        """Requests the principal has in the current sliding window."""
        now = self.clock()
        with self._meta:
            window = self._windows.get(client_id or self.client_id, deque())
            return sum(1 for at in window if at > now - self.rate_window)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        operations = self.operations()
        stats.update(
            batch_operations=len(operations),
            batches=len({op.batch for op in operations}),
            peak_waiting=self.peak_waiting,
            peak_connections=self.peak_connections,
            queue_limit=self.queue_limit,
            rate_limit={"requests": self.rate_limit_requests, "window_seconds": self.rate_window},
        )
        return stats

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tenant_id": self.tenant_id,
                "environment": self.environment,
                "companies": [
                    {
                        **self._company_row(c),
                        "employees": [_public(r) for r in c.employees.values()],
                        "projects": [
                            {**_public(r), "tasks": sorted(c.project_tasks.get(r["id"], ()))}
                            for r in c.projects.values()
                        ],
                        "vendors": [_public(r) for r in c.vendors.values()],
                        "accounts": [_public(r) for r in c.accounts.values()],
                        "records": {
                            name: [_public(r) for r in rows.values()] for name, rows in c.records.items()
                        },
                    }
                    for c in self._companies.values()
                ],
            }


# ---------------------------------------------------------------------------------------------- OData $filter
_FILTER_OR = re.compile(r"\s+or\s+(?=(?:[^']*'[^']*')*[^']*$)")
_FILTER_AND = re.compile(r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)")
_FILTER_TERM = re.compile(r"^\s*(?P<name>\w+)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+(?P<value>.+?)\s*$")


def odata_filter(expression: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile an OData `$filter` (comparisons joined by `and` / `or`, no parentheses) into a predicate.
    Raises KeyError(property) for an unknown property (checked per record) and ValueError for bad syntax."""
    groups = [
        [_filter_term(t) for t in _FILTER_AND.split(group)] for group in _FILTER_OR.split(expression.strip())
    ]
    return lambda row: any(all(test(row) for test in group) for group in groups)


def _filter_term(text: str) -> Callable[[Mapping[str, Any]], bool]:
    match = _FILTER_TERM.match(text)
    if not match:
        raise ValueError(f"Syntax error in the $filter expression: '{text.strip()}'.")
    name, op, raw = match["name"], match["op"], match["value"]
    value = _literal(raw)

    def test(row: Mapping[str, Any]) -> bool:
        if name not in row:
            raise KeyError(name)
        actual = row[name]
        left, right = _comparable(actual, value)
        if left is None:
            return op == "ne"
        return {
            "eq": left == right,
            "ne": left != right,
            "gt": left > right,
            "ge": left >= right,
            "lt": left < right,
            "le": left <= right,
        }[op]

    return test


def _literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if re.fullmatch(GUID, raw):
        return raw.lower()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return raw
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"Syntax error in the $filter expression: unknown literal '{raw}'.") from None


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any]:
    if wanted is None or actual is None:
        return (None, None) if actual is None and wanted is not None else (actual, wanted)
    if isinstance(wanted, bool):
        return bool(actual), wanted
    if isinstance(wanted, float):
        try:
            return float(actual), wanted
        except (TypeError, ValueError):
            return str(actual), str(wanted)
    return str(actual).lower() if _is_guid(actual) else str(actual), wanted


# ---------------------------------------------------------------------------------------------- helpers
def _entra_error(status: int, error: str, code: int, description: str) -> httpx.Response:
    trace = str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
        "error_codes": [code],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return json_response(status, body, content_type="application/json; charset=utf-8")


def _record_missing(table: str, key: str) -> Reply:
    return _fail(
        400,
        "Internal_RecordNotFound",
        f"The {table} does not exist. Identification fields and values: {key}",
    )


def _check_properties(spec: EntitySpec, data: Mapping[str, Any], *, creating: bool) -> None:
    for name in data:
        if name.startswith("@odata."):
            continue
        if name not in spec.properties:
            raise _fail(
                400,
                "BadRequest",
                f"The property '{name}' does not exist on type 'Microsoft.NAV.{spec.type_name}'. Make sure to "
                f"only use property names that are defined by the type.",
            )
        if name in spec.read_only:
            raise _fail(400, "BadRequest_InvalidOperation", f"Control '{name}' is read-only.")


def _json_object(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise _fail(400, "BadRequest", "Invalid Request Body")
    return call.body


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _etag(company: _Company, entity: str, row: Mapping[str, Any]) -> str:
    token = base64.b64encode(f"'{entity};{row['id']};{row.get('_version', 1)};'".encode()).decode()
    return f'W/"{token}"'


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _blank_guid(value: Any) -> bool:
    return _blank(value) or str(value) == GUID_ZERO


def _is_guid(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(GUID, value) is not None


def _int_param(value: str | None, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return max(int(value), 0)
    except ValueError:
        raise _fail(400, "BadRequest", f"Invalid value '{value}' for a query option.") from None
