"""Workday (HCM) simulator: one tenant's OAuth token endpoint, the Staffing REST `workers` resource and one RaaS
custom report of worker changes.

Simulated vendor behaviour (numbers in brackets are the sources listed at the end):

* OAuth 2.0 for an "API Client for Integrations" (the refresh-token grant of an Integration System User)
  [1][2][3]: `POST /ccx/oauth2/{tenant}/token`, form `grant_type=refresh_token&refresh_token=...`, the client id
  and secret as HTTP Basic (or `client_id` / `client_secret` in the form). Answer
  `{"access_token","token_type":"Bearer","expires_in":3600,"refresh_token"}`: 60-minute access tokens
  ("Enforce 60 Minutes Access Token Expiry" [4]); the refresh token is non-expiring [3] and echoed back.
  Errors are OAuth's `{"error","error_description"}`: unknown tenant or no grant type -> 400 `invalid_request`;
  wrong client id or secret -> 401 `invalid_client` (400 when the credentials came in the form); another grant
  -> 400 `unsupported_grant_type`; an unknown or revoked refresh token -> 400 `invalid_grant`.
* Every API call needs `Authorization: Bearer <access token>`: missing, unknown or expired -> 401
  `{"error":"invalid_token","error_description"}` with `WWW-Authenticate: Bearer`. An unknown tenant is 404.
* Staffing REST [5][6][7]: `GET /ccx/api/staffing/{version}/{tenant}/workers` (versions v6 and v7 accepted;
  another service or version is 404) answers `{"total": N, "data": [...]}`; `limit` defaults to 20, the
  documented maximum is 100, `offset` is zero-based; `search` matches name or worker ID (case-insensitive,
  space-separated terms OR-ed); the resource holds non-terminated workers unless `includeTerminatedWorkers=true`.
  A limit over 100 is refused with 400 (`limit_over_max="cap"` serves 100 instead: Workday's own behaviour is
  not documented, and refusing is the one that cannot hide a skipped page). `GET .../workers/{ID}` takes the
  WID, or a reference ID as `Employee_ID=21001` / `Contingent_Worker_ID=C10001`; terminated workers are
  readable by ID. A worker is `{id, descriptor, workerId, workerType{id,descriptor}, person{id,email},
  primaryJob{id, descriptor, businessTitle, supervisoryOrganization{id,descriptor}, jobType{descriptor},
  jobProfile{id,descriptor}, location{id,descriptor,country{descriptor}}}}`: the v6 worker model. It carries no
  company, cost centre, hire or termination date and no cost rates: those come from the report.
  Errors follow the documented error model `{"error","code","field"}` [6].
* RaaS [8][9][10]: `GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json` with the report's
  prompts as query parameters named by their aliases (`Changed_Since`, `Effective_as_of_Date`). One report,
  `ISU_PSHub/PSHub_Worker_Changes` (Advanced report, web-service enabled, owned by the ISU): one row per worker
  whose last update is at or after `Changed_Since` (every worker without the prompt), values as of
  `Effective_as_of_Date` (default: today in the tenant). RaaS does not page: the whole answer comes at once
  `{"Report_Entry": [...]}` (10,000 rows are fine). Only `format=json` is served; an unknown parameter is
  refused (400) so a misspelt prompt cannot silently return everything.
  Row columns (the report's XML aliases): `Employee_ID` (employee or contingent worker ID), `WID`,
  `Worker_Type` ("Employee" | "Contingent Worker"), `Worker`, `Company`, `Company_ID`, `Cost_Center`,
  `Cost_Center_ID`, `Supervisory_Organization`, `Supervisory_Organization_ID`, `Manager_Employee_ID`,
  `Skills`, `Scheduled_Weekly_Hours`, `Working_Days`, `Location_Country`, `Location_Country_ISO_Code`,
  `Hire_Date`, `Termination_Date`, `Last_Updated`, `Cost_Rates_group`: a list of
  `{"Amount","Currency","Effective_Date","End_Date"}` (the full effective-dated history), and
  `Organization_Assignments_group`: a list of `{"Effective_Date","Company_ID","Cost_Center_ID",
  "Supervisory_Organization_ID","Location_Country_ISO_Code"}` (every organization assignment, past and
  future-dated: a transfer entered today for next month is seen today, when its change is stamped).
  Rendering as RaaS JSON does: multi-instance single fields are one string joined by "; " (`Skills`,
  `Working_Days`) [11]; fields of a multi-instance related object are a `<alias>_group` list; numbers are
  strings ("150.00", "37.5"); dates `YYYY-MM-DD`; moments (`Last_Updated`) in the TENANT's time zone with
  offset and milliseconds (`2025-01-15T10:00:00.000-08:00`); empty fields are left out
  (`empty_report_fields="null"` renders them as null instead).
  `Changed_Since` takes ISO 8601 with an offset or `Z`; without one it is read in the tenant's time zone; a
  bare date (or Workday's `2025-01-15-08:00` date-with-offset) is that day's start. The comparison is
  inclusive and to the microsecond while rendered moments keep milliseconds, so feeding a rendered
  `Last_Updated` back re-reads that row: a sweep must tolerate re-reads.
* Throttling: Workday answers 429 with `Retry-After` when a client is over its rate [12]; no per-second cap is
  documented (~10 calls/s per tenant is only reported as observed [13]), so the sandbox has none: 429s come
  from injected faults (`Faults(throttle_rate=...)`), with `Retry-After: retry_after_seconds`.

Sandbox choices (not Workday facts): every change helper stamps the worker's last-updated moment from the clock
when the change is MADE (its effective date may be past or future), strictly increasing; a worker's manager is
the manager of their supervisory organization (`set_manager`); org assignments (company, cost centre,
supervisory organization, country) are effective-dated; a new cost rate ends the one it supersedes the day
before and drops rates starting on or after it. Holidays are left to the hub: the sandbox keeps each worker's
country (ISO 3166 alpha-2) and working days, not holiday calendars.

Sources:
[1] https://www.nango.dev/docs/api-integrations/workday-refresh-token/connect (token endpoint path)
[2] https://docs.serval.com/sections/integrations/workday.md (refresh-token grant for an ISU + API Client)
[3] https://www.ibm.com/docs/en/app-connect/13.0.x?topic=workday-obtaining-connection-values
[4] https://prismatic.io/docs/components/workday
[5] https://www.lava.so/docs/gateway/providers/pipedream-workday.md (/ccx/api/<service>/<version>/<tenant>)
[6] https://github.com/konfig-sdks/workday-staffing-typescript-sdk (generated from Workday's Staffing v6
    OpenAPI: GET /workers parameters, WorkerData, PrimaryJob, Location, ERRORMODELREFERENCE)
[7] https://openapi.city/providers/workday-staffing (v6; limit default 20, maximum 100);
    https://prismatic.io/docs/changelog/connectors/2026/04/22/workday/ (Staffing v7)
[8] https://raw.githubusercontent.com/api-evangelist/workday-report-writer/refs/heads/main/openapi/workday-report-writer-raas-openapi.yml
[9] https://knowledgelib.io/business/erp-integration/workday-raas-integration/2026 (RaaS REST: no pagination)
[10] a published ServiceNow/Workday RaaS guide: prompts are request parameters (`Worker_Type!WID=...`)
[11] a published RaaS JSON sample: a multi-instance `businessTitle` rendered "A; B; C"
[12] https://easihub.com/community/t/bulk-course-enrollments-via-learning-api-trigger-429-rate-limit-errors-and-partial-processing/9071
[13] https://knowledgelib.io/business/erp-integration/workday-rest-soap-api-capabilities/2026
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx

from local.sandboxes.base import Call, Faults, Reply, Sandbox, json_response, utc_now

DEFAULT_HOST = "wd2-impl-services1.workday.com"
SERVICE = "staffing"
API_VERSIONS = ("v6", "v7")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
REPORT_OWNER = "ISU_PSHub"
REPORT_NAME = "PSHub_Worker_Changes"
REPORT_PROMPTS = ("Changed_Since", "Effective_as_of_Date")
EMPLOYEE = "Employee"
CONTINGENT = "Contingent Worker"
WORKER_TYPES = (EMPLOYEE, CONTINGENT)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
ALL_DAYS = (*WEEKDAYS, "Saturday", "Sunday")

COUNTRIES = {  # ISO 3166 alpha-2 -> (Workday country descriptor, a city for the work location)
    "US": ("United States of America", "San Francisco"),
    "GB": ("United Kingdom", "London"),
    "DE": ("Germany", "Berlin"),
    "FR": ("France", "Paris"),
    "NL": ("Netherlands", "Amsterdam"),
    "IE": ("Ireland", "Dublin"),
    "ES": ("Spain", "Madrid"),
    "CA": ("Canada", "Toronto"),
    "AU": ("Australia", "Sydney"),
    "IN": ("India", "Bengaluru"),
}
_FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn")
_LAST_NAMES = ("Smith", "Patel", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Kim", "Larsen", "Dubois")
_DATE_WITH_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Company:
    """A legal entity (Workday "Company"): its reference ID, name, country and currency."""

    id: str
    name: str
    country: str
    currency: str


DEFAULT_COMPANIES = (
    Company("PSHUB_US", "PS Hub Inc.", "US", "USD"),
    Company("PSHUB_UK", "PS Hub UK Ltd", "GB", "GBP"),
)
DEFAULT_COST_CENTRES = {"CC100": "Consulting", "CC200": "Delivery", "CC300": "Sales"}


@dataclass
class CostRate:
    """One effective-dated cost rate (`effective_to` None: open-ended)."""

    amount: Decimal
    currency: str
    effective_from: date
    effective_to: date | None = None


@dataclass(frozen=True)
class _Assignment:
    """A worker's organization assignments from `effective` on."""

    effective: date
    company: str
    cost_centre: str
    department: str
    country: str


@dataclass
class _Worker:
    seq: int
    wid: str
    worker_id: str
    worker_type: str
    name: str
    email: str
    business_title: str
    hire_date: date
    assignments: list[_Assignment]
    skills: list[str]
    weekly_hours: Decimal
    working_days: tuple[str, ...]
    cost_rates: list[CostRate]
    last_updated: datetime
    termination_date: date | None = None

    def assignment(self, on: date) -> _Assignment:
        """The assignment in effect on `on` (the first one before it starts)."""
        current = self.assignments[0]
        for candidate in self.assignments:
            if candidate.effective <= on:
                current = candidate
        return current

    def terminated(self, on: date) -> bool:
        """After the termination date (the last day of work) the worker is terminated."""
        return self.termination_date is not None and self.termination_date < on


@dataclass
class _Organization:
    id: str  # reference ID (the report's Supervisory_Organization_ID)
    wid: str  # Workday ID (the REST API's id)
    name: str
    manager_id: str | None = None


@dataclass
class _Token:
    client_id: str
    expires_at: datetime


@dataclass
class _Counters:
    employee: int = 21001
    contingent: int = 10001
    seq: int = 0


class WorkdaySandbox(Sandbox):
    """One Workday tenant: its API client, workers, organizations and the worker-changes report.

    Args:
        tenant: the URL's `{tenant}` (`/ccx/api/staffing/v6/{tenant}/workers`).
        host: the data-centre host in `base_url` (the sandbox answers on any origin).
        client_id / client_secret: the API Client for Integrations.
        refresh_tokens: the ISU refresh tokens the client accepts (non-expiring).
        report_owner / report_name: the RaaS report's path (`customreport2/{tenant}/{owner}/{report}`).
        time_zone: the tenant's time zone (IANA name): report moments render in it and `Changed_Since`
            without an offset is read in it; "today" (terminations, as-of dates) is its date.
        clock: time source (aware datetimes; default: the wall clock, UTC); see also `advance_clock`.
        token_ttl: access-token lifetime in seconds (3600).
        api_versions: Staffing versions served.
        limit_over_max: "reject" (400) or "cap" (serve 100) for `limit` over 100.
        retry_after_seconds: `Retry-After` on 429 answers (None: no header).
        empty_report_fields: "omit" (leave empty report fields out) or "null".
        companies: the legal entities at start (more with `add_company`).
        faults / concurrency_limit: see `Sandbox` (Workday documents no concurrency limit).
    """

    vendor = "workday"

    def __init__(
        self,
        tenant: str = "pshub_impl",
        *,
        host: str = DEFAULT_HOST,
        client_id: str = "MzJkNWQ1YjMtZDk2Ny00YjQ0LWE3ZDAtMmM5ZDQzZjhlYjI4",
        client_secret: str = "pshub-workday-client-secret",
        refresh_tokens: Iterable[str] = ("pshub-isu-refresh-token",),
        report_owner: str = REPORT_OWNER,
        report_name: str = REPORT_NAME,
        time_zone: str = "America/Los_Angeles",
        clock: Callable[[], datetime] | None = None,
        token_ttl: int = 3600,
        api_versions: Iterable[str] = API_VERSIONS,
        limit_over_max: Literal["reject", "cap"] = "reject",
        retry_after_seconds: int | None = 1,
        empty_report_fields: Literal["omit", "null"] = "omit",
        companies: Iterable[Company] = DEFAULT_COMPANIES,
        faults: Faults | None = None,
        concurrency_limit: int | None = None,
    ) -> None:
        if limit_over_max not in ("reject", "cap"):
            raise ValueError("limit_over_max must be 'reject' or 'cap'")
        if empty_report_fields not in ("omit", "null"):
            raise ValueError("empty_report_fields must be 'omit' or 'null'")
        if token_ttl < 1:
            raise ValueError("token_ttl must be >= 1")
        self.tenant = tenant
        self.host = host
        self.client_id = client_id
        self.client_secret = client_secret
        self.initial_refresh_tokens = tuple(refresh_tokens)
        self.report_owner = report_owner
        self.report_name = report_name
        self.time_zone = time_zone
        self.tz: tzinfo = ZoneInfo(time_zone)
        self._clock = clock or utc_now
        self.token_ttl = token_ttl
        self.api_versions = tuple(api_versions)
        self.limit_over_max = limit_over_max
        self.retry_after_seconds = retry_after_seconds
        self.empty_report_fields = empty_report_fields
        self.initial_companies = tuple(companies)
        super().__init__(faults=faults, concurrency_limit=concurrency_limit)

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def token_path(self) -> str:
        return f"/ccx/oauth2/{self.tenant}/token"

    def workers_path(self, version: str = "v6") -> str:
        return f"/ccx/api/{SERVICE}/{version}/{self.tenant}/workers"

    @property
    def report_path(self) -> str:
        return f"/ccx/service/customreport2/{self.tenant}/{self.report_owner}/{self.report_name}"

    # ------------------------------------------------------------------ state and routes
    def _reset_state(self) -> None:
        self._clock_offset = timedelta()
        self._last_stamp = datetime(1970, 1, 1, tzinfo=UTC)
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens = set(self.initial_refresh_tokens)
        self._companies = {c.id: c for c in self.initial_companies}
        self._cost_centres = dict(DEFAULT_COST_CENTRES)
        self._orgs: dict[str, _Organization] = {}
        self._workers: dict[str, _Worker] = {}  # by worker ID, in hire order
        self._by_wid: dict[str, str] = {}
        self._counters = _Counters()

    def _register_routes(self) -> None:
        self.route("POST", r"/ccx/oauth2/(?P<tenant>[^/]+)/token", self._token, governed=False)
        api = r"/ccx/api/(?P<service>[^/]+)/(?P<version>[^/]+)/(?P<tenant>[^/]+)/workers"
        self.route("GET", api, self._list_workers)
        self.route("GET", api + r"/(?P<id>[^/]+)", self._get_worker)
        report = r"/ccx/service/customreport2/(?P<tenant>[^/]+)/(?P<owner>[^/]+)/(?P<report>[^/]+)"
        self.route("GET", report, self._report)

    # ------------------------------------------------------------------ vendor answers
    def authorize(self, call: Call) -> httpx.Response | None:
        if call.params.get("tenant") != self.tenant:
            return _error(404, "Resource not found.", code="TENANT_NOT_FOUND")
        token = self._tokens.get(call.bearer_token() or "")
        if token is None or token.expires_at <= self.now():
            return json_response(
                401,
                {"error": "invalid_token", "error_description": "The access token is invalid or has expired"},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return None

    def not_found_response(self, call: Call) -> httpx.Response:
        return _error(404, "Resource not found.")

    def throttled_response(self, call: Call) -> httpx.Response:
        headers = {} if self.retry_after_seconds is None else {"Retry-After": str(self.retry_after_seconds)}
        return json_response(429, {"error": "Too Many Requests", "code": "429"}, headers=headers)

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return self.throttled_response(call)

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        message = "Service Unavailable" if status == 503 else "An unexpected error occurred."
        return _error(status, message)

    # ------------------------------------------------------------------ OAuth 2.0 (API Client for Integrations)
    def _token(self, call: Call) -> httpx.Response:
        form = call.body if isinstance(call.body, dict) else {}
        if call.params["tenant"] != self.tenant:
            return _oauth_error(400, "invalid_request", f"Unknown tenant '{call.params['tenant']}'.")
        client_id, secret, basic = form.get("client_id"), form.get("client_secret"), False
        scheme, _, encoded = call.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            basic = True
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id, secret = None, None
        if client_id != self.client_id or not hmac.compare_digest(
            str(secret or "").encode(), self.client_secret.encode()
        ):
            headers = {"WWW-Authenticate": 'Basic realm="workday"'} if basic else None
            return _oauth_error(
                401 if basic else 400, "invalid_client", "Invalid client credentials.", headers
            )
        grant = form.get("grant_type")
        if not grant:
            return _oauth_error(400, "invalid_request", "Missing grant_type.")
        if grant != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type '{grant}'.")
        refresh = str(form.get("refresh_token") or "")
        if refresh not in self._refresh_tokens:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token.")
        return json_response(
            200,
            {
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "refresh_token": refresh,
            },
        )

    def issue_token(self) -> str:
        """A valid access token for the API client (what the token endpoint hands out)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(self.client_id, self.now() + timedelta(seconds=self.token_ttl))
        return token

    def expire_token(self, token: str) -> None:
        with self._lock:
            if token in self._tokens:
                self._tokens[token].expires_at = datetime(1970, 1, 1, tzinfo=UTC)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """The ISU's refresh token is revoked (e.g. regenerated in Workday)."""
        with self._lock:
            self._refresh_tokens.discard(refresh_token)

    # ------------------------------------------------------------------ Staffing REST: workers
    def _check_api(self, call: Call) -> None:
        if call.params["service"] != SERVICE or call.params["version"] not in self.api_versions:
            raise Reply(self.not_found_response(call))

    def _list_workers(self, call: Call) -> httpx.Response:
        self._check_api(call)
        limit = _int_query(call, "limit", DEFAULT_LIMIT)
        offset = _int_query(call, "offset", 0)
        if limit < 1 or (limit > MAX_LIMIT and self.limit_over_max == "reject"):
            raise Reply(
                _error(400, f"The limit must be between 1 and {MAX_LIMIT}.", "INVALID_LIMIT", "limit")
            )
        if offset < 0:
            raise Reply(_error(400, "The offset must be 0 or more.", "INVALID_OFFSET", "offset"))
        limit = min(limit, MAX_LIMIT)
        include_terminated = call.query.get("includeTerminatedWorkers", "").lower() == "true"
        terms = [t.lower() for t in call.query.get("search", "").split()]
        with self._lock:
            today = self.today()
            rows = [
                w
                for w in self._workers.values()
                if (include_terminated or not w.terminated(today)) and (not terms or _matches(w, terms))
            ]
            page = [self._render_worker(w, today) for w in rows[offset : offset + limit]]
            return json_response(200, {"total": len(rows), "data": page})

    def _get_worker(self, call: Call) -> httpx.Response:
        self._check_api(call)
        with self._lock:
            worker = self._find(call.params["id"])
            if worker is None:
                raise Reply(_error(404, "Resource not found.", "RESOURCE_NOT_FOUND"))
            return json_response(200, self._render_worker(worker, self.today()))

    def _find(self, key: str) -> _Worker | None:
        kind, sep, value = key.partition("=")
        if not sep:
            worker_id = self._by_wid.get(key)
            return None if worker_id is None else self._workers[worker_id]
        worker = self._workers.get(value)
        wanted = {"Employee_ID": EMPLOYEE, "Contingent_Worker_ID": CONTINGENT}.get(kind)
        return worker if worker is not None and worker.worker_type == wanted else None

    def _render_worker(self, worker: _Worker, today: date) -> dict[str, Any]:
        current = worker.assignment(today)
        org = self._orgs[current.department]
        country_name, city = _country(current.country)
        return {
            "id": worker.wid,
            "descriptor": worker.name,
            "workerId": worker.worker_id,
            "workerType": {
                "id": self._wid("workerType", worker.worker_type),
                "descriptor": worker.worker_type,
            },
            "person": {"id": self._wid("person", worker.worker_id), "email": worker.email},
            "primaryJob": {
                "id": self._wid("position", worker.worker_id),
                "descriptor": f"P-{worker.seq:05d} {worker.business_title}",
                "businessTitle": worker.business_title,
                "supervisoryOrganization": {"id": org.wid, "descriptor": self._org_descriptor(org)},
                "jobType": {"descriptor": "Primary"},
                "jobProfile": {
                    "id": self._wid("jobProfile", worker.business_title),
                    "descriptor": worker.business_title,
                },
                "location": {
                    "id": self._wid("location", current.country),
                    "descriptor": city,
                    "country": {"descriptor": country_name},
                },
            },
        }

    # ------------------------------------------------------------------ RaaS: the worker-changes report
    def _report(self, call: Call) -> httpx.Response:
        if (call.params["owner"], call.params["report"]) != (self.report_owner, self.report_name):
            raise Reply(_error(404, f"Report '{call.params['owner']}/{call.params['report']}' not found."))
        unknown = sorted(set(call.query) - {"format", *REPORT_PROMPTS})
        if unknown:
            raise Reply(_error(400, f"Invalid report parameter(s): {', '.join(unknown)}.", "INVALID_PROMPT"))
        if call.query.get("format") != "json":
            raise Reply(_error(400, "The sandbox serves this report with format=json only.", "FORMAT"))
        since = self._prompt(call, "Changed_Since", self._parse_moment)
        with self._lock:
            as_of = self._prompt(call, "Effective_as_of_Date", _parse_prompt_date) or self.today()
            rows = [
                self._render_row(w, as_of)
                for w in self._workers.values()
                if since is None or w.last_updated >= since
            ]
        return json_response(200, {"Report_Entry": rows})

    def _prompt(self, call: Call, name: str, parse: Callable[[str], Any]) -> Any:
        text = call.query.get(name)
        if text is None or not text.strip():
            return None
        try:
            return parse(text.strip().replace(" ", "+"))
        except ValueError:
            raise Reply(
                _error(400, f"Invalid value '{text}' for prompt {name}.", "INVALID_PROMPT", name)
            ) from None

    def _parse_moment(self, text: str) -> datetime:
        match = _DATE_WITH_OFFSET.match(text)
        if match:
            offset = "+00:00" if match[2] == "Z" else match[2]
            return datetime.fromisoformat(f"{match[1]}T00:00:00{offset}").astimezone(UTC)
        if "T" not in text:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=self.tz).astimezone(UTC)
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=self.tz)).astimezone(UTC)

    def _render_row(self, worker: _Worker, as_of: date) -> dict[str, Any]:
        current = worker.assignment(as_of)
        company = self._companies[current.company]
        org = self._orgs[current.department]
        manager = org.manager_id if org.manager_id != worker.worker_id else None
        row: dict[str, Any] = {
            "Employee_ID": worker.worker_id,
            "WID": worker.wid,
            "Worker_Type": worker.worker_type,
            "Worker": worker.name,
            "Company": company.name,
            "Company_ID": company.id,
            "Cost_Center": f"{current.cost_centre} {self._cost_centres[current.cost_centre]}".strip(),
            "Cost_Center_ID": current.cost_centre,
            "Supervisory_Organization": self._org_descriptor(org),
            "Supervisory_Organization_ID": org.id,
            "Manager_Employee_ID": manager,
            "Skills": "; ".join(worker.skills) or None,
            "Scheduled_Weekly_Hours": _number(worker.weekly_hours),
            "Working_Days": "; ".join(worker.working_days) or None,
            "Location_Country": _country(current.country)[0],
            "Location_Country_ISO_Code": current.country,
            "Hire_Date": worker.hire_date.isoformat(),
            "Termination_Date": worker.termination_date.isoformat() if worker.termination_date else None,
            "Last_Updated": self.render_moment(worker.last_updated),
            "Cost_Rates_group": [
                {
                    "Amount": f"{rate.amount:.2f}",
                    "Currency": rate.currency,
                    "Effective_Date": rate.effective_from.isoformat(),
                    "End_Date": rate.effective_to.isoformat() if rate.effective_to else None,
                }
                for rate in worker.cost_rates
            ]
            or None,
            "Organization_Assignments_group": [
                {
                    "Effective_Date": assignment.effective.isoformat(),
                    "Company_ID": assignment.company,
                    "Cost_Center_ID": assignment.cost_centre,
                    "Supervisory_Organization_ID": self._orgs[assignment.department].id,
                    "Location_Country_ISO_Code": assignment.country,
                }
                for assignment in worker.assignments
            ],
        }
        return _drop_empty(row) if self.empty_report_fields == "omit" else row

    def render_moment(self, moment: datetime) -> str:
        """A moment as the report renders it: tenant time zone, offset, milliseconds."""
        return moment.astimezone(self.tz).isoformat(timespec="milliseconds")

    # ------------------------------------------------------------------ clock and ids
    def now(self) -> datetime:
        """The sandbox's current time (the wall clock, or the injected clock, plus `advance_clock`)."""
        return self._clock() + self._clock_offset

    def today(self) -> date:
        """Today in the tenant's time zone."""
        return self.now().astimezone(self.tz).date()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += timedelta(seconds=seconds)

    def _stamp(self) -> datetime:
        """A strictly increasing change moment (microsecond precision, UTC)."""
        moment = self.now().astimezone(UTC)
        if moment <= self._last_stamp:
            moment = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = moment
        return moment

    def _wid(self, kind: str, key: str) -> str:
        """A deterministic 32-hex-digit Workday ID."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"workday:{self.tenant}:{kind}:{key}").hex

    def _org_descriptor(self, org: _Organization) -> str:
        manager = self._workers.get(org.manager_id or "")
        return f"{org.name} ({manager.name})" if manager else org.name

    # ------------------------------------------------------------------ reference data
    def add_company(self, company_id: str, name: str, country: str, currency: str) -> None:
        """A legal entity workers can be assigned to."""
        with self._lock:
            self._companies[company_id] = Company(company_id, name, country.upper(), currency.upper())

    def add_cost_centre(self, cost_centre_id: str, name: str) -> None:
        with self._lock:
            self._cost_centres[cost_centre_id] = name

    def set_manager(self, department: str, employee_id: str) -> None:
        """Make a worker the manager of a supervisory organization; its members' last update is stamped."""
        with self._lock:
            self._worker(employee_id)
            org = self._org(department)
            org.manager_id = employee_id
            today = self.today()
            for worker in self._workers.values():
                if worker.assignment(today).department == department or worker.worker_id == employee_id:
                    worker.last_updated = self._stamp()

    def _org(self, department: str) -> _Organization:
        org = self._orgs.get(department)
        if org is None:
            org = _Organization(
                f"SUP_{_slug(department)}", self._wid("supervisoryOrganization", department), department
            )
            self._orgs[department] = org
        return org

    def _company(self, company_id: str) -> Company:
        company = self._companies.get(company_id)
        if company is None:
            raise ValueError(f"unknown legal entity {company_id!r} (add it with add_company)")
        return company

    def _worker(self, employee_id: str) -> _Worker:
        worker = self._workers.get(employee_id)
        if worker is None:
            raise KeyError(f"no worker {employee_id!r}")
        return worker

    # ------------------------------------------------------------------ seeding and changes (no HTTP)
    def hire(
        self,
        *,
        legal_entity: str,
        cost_centre: str,
        department: str,
        hire_date: date | str,
        name: str | None = None,
        worker_type: str = EMPLOYEE,
        country: str | None = None,
        business_title: str = "Consultant",
        cost_rate: Decimal | str | int | None = None,
        currency: str | None = None,
        skills: Iterable[str] = (),
        weekly_hours: Decimal | str | int | float = 40,
        working_days: Iterable[str] = WEEKDAYS,
        employee_id: str | None = None,
        manager: bool = False,
    ) -> str:
        """Hire a worker; returns the employee (or contingent worker) ID. The cost rate (in the company's
        currency unless given) starts on the hire date. `manager=True` makes them their organization's manager
        (so does being the first worker in it)."""
        with self._lock:
            company = self._company(legal_entity)
            if worker_type not in WORKER_TYPES:
                raise ValueError(f"worker_type must be one of {WORKER_TYPES}, got {worker_type!r}")
            start = _as_date(hire_date)
            counters = self._counters
            counters.seq += 1
            if employee_id is None:
                if worker_type == EMPLOYEE:
                    employee_id, counters.employee = str(counters.employee), counters.employee + 1
                else:
                    employee_id, counters.contingent = f"C{counters.contingent}", counters.contingent + 1
            if employee_id in self._workers:
                raise ValueError(f"worker {employee_id!r} already exists")
            name = name or _name(counters.seq)
            self._cost_centres.setdefault(cost_centre, "")
            worker = _Worker(
                seq=counters.seq,
                wid=self._wid("worker", employee_id),
                worker_id=employee_id,
                worker_type=worker_type,
                name=name,
                email=f"{name.lower().replace(' ', '.')}.{employee_id.lower()}@pshub.example",
                business_title=business_title,
                hire_date=start,
                assignments=[
                    _Assignment(
                        start, company.id, cost_centre, department, (country or company.country).upper()
                    )
                ],
                skills=list(skills),
                weekly_hours=_decimal(weekly_hours),
                working_days=_days(working_days),
                cost_rates=[],
                last_updated=self._stamp(),
            )
            if cost_rate is not None:
                worker.cost_rates.append(
                    CostRate(_decimal(cost_rate), (currency or company.currency).upper(), start)
                )
            self._workers[employee_id] = worker
            self._by_wid[worker.wid] = employee_id
            org = self._org(department)
            if manager or org.manager_id is None:
                org.manager_id = employee_id
            return employee_id

    def seed_workers(
        self,
        count: int,
        *,
        legal_entities: Sequence[str] = ("PSHUB_US",),
        cost_centres: Sequence[str] = ("CC100",),
        departments: Sequence[str] = ("Consulting",),
        worker_types: Sequence[str] = (EMPLOYEE,),
        countries: Sequence[str] | None = None,
        hire_date: date | str = "2024-01-02",
        cost_rate: Decimal | str | int | None = None,
        skills: Sequence[str] = ("Consulting",),
        weekly_hours: Decimal | str | int | float = 40,
    ) -> list[str]:
        """`count` workers, deterministic: the n-th takes the n-th (cycled) legal entity, cost centre,
        department, worker type and country (default: its company's), a cost rate of 100 + 25 * (n % 5) in
        its company's currency (or `cost_rate`) from the hire date. Returns their employee IDs."""
        if count < 0:
            raise ValueError("count must be >= 0")
        ids = []
        with self._lock:
            for n in range(count):
                ids.append(
                    self.hire(
                        legal_entity=legal_entities[n % len(legal_entities)],
                        cost_centre=cost_centres[n % len(cost_centres)],
                        department=departments[n % len(departments)],
                        worker_type=worker_types[n % len(worker_types)],
                        country=countries[n % len(countries)] if countries else None,
                        hire_date=hire_date,
                        cost_rate=cost_rate if cost_rate is not None else 100 + 25 * (n % 5),
                        skills=skills,
                        weekly_hours=weekly_hours,
                    )
                )
        return ids

    def terminate(self, employee_id: str, end_date: date | str) -> None:
        """Terminate a worker; `end_date` is the last day of work (they leave `/workers` the day after)."""
        with self._lock:
            worker = self._worker(employee_id)
            end = _as_date(end_date)
            if end < worker.hire_date:
                raise ValueError("a termination date cannot precede the hire date")
            worker.termination_date = end
            worker.last_updated = self._stamp()

    def transfer(
        self,
        employee_id: str,
        *,
        legal_entity: str,
        cost_centre: str,
        effective: date | str,
        department: str | None = None,
        country: str | None = None,
    ) -> None:
        """Move a worker to another legal entity / cost centre (and optionally organization and country) from
        `effective` on; what they had keeps applying before that date."""
        with self._lock:
            worker = self._worker(employee_id)
            self._company(legal_entity)
            start = _as_date(effective)
            before = worker.assignment(start)
            self._cost_centres.setdefault(cost_centre, "")
            moved = replace(
                before,
                effective=start,
                company=legal_entity,
                cost_centre=cost_centre,
                department=department or before.department,
                country=(country or before.country).upper(),
            )
            self._org(moved.department)
            worker.assignments = sorted(
                [a for a in worker.assignments if a.effective != start] + [moved], key=lambda a: a.effective
            )
            worker.last_updated = self._stamp()

    def change_cost_rate(
        self, employee_id: str, amount: Decimal | str | int | float, currency: str, effective_from: date | str
    ) -> None:
        """A new cost rate from `effective_from`: the rate in effect the day before ends that day; rates that
        started on or after `effective_from` are replaced."""
        with self._lock:
            worker = self._worker(employee_id)
            start = _as_date(effective_from)
            rates = [r for r in worker.cost_rates if r.effective_from < start]
            for rate in rates:
                if rate.effective_to is None or rate.effective_to >= start:
                    rate.effective_to = start - timedelta(days=1)
            rates.append(CostRate(_decimal(amount), currency.upper(), start))
            worker.cost_rates = rates
            worker.last_updated = self._stamp()

    def set_skills(self, employee_id: str, skills: Iterable[str]) -> None:
        with self._lock:
            worker = self._worker(employee_id)
            worker.skills = list(skills)
            worker.last_updated = self._stamp()

    def set_working_time(
        self,
        employee_id: str,
        *,
        weekly_hours: Decimal | str | int | float | None = None,
        working_days: Iterable[str] | None = None,
    ) -> None:
        with self._lock:
            worker = self._worker(employee_id)
            if weekly_hours is not None:
                worker.weekly_hours = _decimal(weekly_hours)
            if working_days is not None:
                worker.working_days = _days(working_days)
            worker.last_updated = self._stamp()

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """{"companies": [{"id","name","country","currency"}], "workers": {"count", "legal_entities", ...},
        "hires": [{"legal_entity","cost_centre","department","hire_date",...}], "terminations":
        [{"employee_id","end_date"}]}; answers the employee IDs created."""
        for spec in payload.get("companies", []):
            self.add_company(spec["id"], spec["name"], spec["country"], spec["currency"])
        created: list[str] = []
        workers = payload.get("workers")
        if workers:
            options = {k: v for k, v in workers.items() if k != "count"}
            created += self.seed_workers(int(workers["count"]), **options)
        created += [self.hire(**spec) for spec in payload.get("hires", [])]
        for spec in payload.get("terminations", []):
            self.terminate(spec["employee_id"], spec["end_date"])
        return {"employee_ids": created}

    # ------------------------------------------------------------------ inspection
    def wid(self, employee_id: str) -> str:
        with self._lock:
            return self._worker(employee_id).wid

    def worker(self, employee_id: str) -> dict[str, Any]:
        """A worker's full record (every effective-dated value), as JSON."""
        with self._lock:
            return self._state_of(self._worker(employee_id))

    def employee_ids(self) -> list[str]:
        with self._lock:
            return list(self._workers)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tenant": self.tenant,
                "time_zone": self.time_zone,
                "now": self.render_moment(self.now()),
                "companies": [vars(c) for c in self._companies.values()],
                "cost_centres": dict(self._cost_centres),
                "supervisory_organizations": [vars(o) for o in self._orgs.values()],
                "workers": [self._state_of(w) for w in self._workers.values()],
            }

    def _state_of(self, worker: _Worker) -> dict[str, Any]:
        return {
            "employee_id": worker.worker_id,
            "wid": worker.wid,
            "worker_type": worker.worker_type,
            "name": worker.name,
            "business_title": worker.business_title,
            "hire_date": worker.hire_date.isoformat(),
            "termination_date": worker.termination_date.isoformat() if worker.termination_date else None,
            "assignments": [{**vars(a), "effective": a.effective.isoformat()} for a in worker.assignments],
            "skills": list(worker.skills),
            "weekly_hours": _number(worker.weekly_hours),
            "working_days": list(worker.working_days),
            "cost_rates": [
                {
                    "amount": f"{r.amount:.2f}",
                    "currency": r.currency,
                    "effective_from": r.effective_from.isoformat(),
                    "effective_to": r.effective_to.isoformat() if r.effective_to else None,
                }
                for r in worker.cost_rates
            ],
            "last_updated": self.render_moment(worker.last_updated),
        }


# ---------------------------------------------------------------------------------------------- helpers
def _error(
    status: int, message: str, code: str | None = None, field_name: str | None = None
) -> httpx.Response:
    """Workday's REST error model: {"error", "code"?, "field"?}."""
    body = {"error": message}
    if code:
        body["code"] = code
    if field_name:
        body["field"] = field_name
    return json_response(status, body)


def _oauth_error(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return json_response(status, {"error": error, "error_description": description}, headers=headers)


def _int_query(call: Call, name: str, default: int) -> int:
    text = call.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise Reply(_error(400, f"Invalid value '{text}' for {name}.", "INVALID_PARAMETER", name)) from None


def _matches(worker: _Worker, terms: list[str]) -> bool:
    name, worker_id = worker.name.lower(), worker.worker_id.lower()
    return any(term in name or term == worker_id for term in terms)


def _parse_prompt_date(text: str) -> date:
    match = _DATE_WITH_OFFSET.match(text)
    return date.fromisoformat(match[1] if match else text[:10] if "T" in text else text)


def _drop_empty(row: dict[str, Any]) -> dict[str, Any]:
    result = {}
    for key, value in row.items():
        if isinstance(value, list):
            value = [_drop_empty(v) if isinstance(v, dict) else v for v in value]
        if value is not None:
            result[key] = value
    return result


def _country(code: str) -> tuple[str, str]:
    return COUNTRIES.get(code, (code, f"{code} Office"))


def _name(n: int) -> str:
    return f"{_FIRST_NAMES[n % len(_FIRST_NAMES)]} {_LAST_NAMES[(n // len(_FIRST_NAMES)) % len(_LAST_NAMES)]}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        raise ValueError("pass a date, not a datetime")
    return value if isinstance(value, date) else date.fromisoformat(value)


def _decimal(value: Decimal | str | int | float) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return result


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _days(days: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(days)
    unknown = [d for d in chosen if d not in ALL_DAYS]
    if unknown:
        raise ValueError(f"unknown working days {unknown}; use {ALL_DAYS}")
    return tuple(d for d in ALL_DAYS if d in chosen)
