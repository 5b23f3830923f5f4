"""Workday as the hub's HCM (``HcmPort``): the worker-changes custom report and the Staffing workers resource.

- Sign-in: an API Client for Integrations with a non-expiring refresh token for the integration system user;
  ``POST /ccx/oauth2/{tenant}/token`` with ``grant_type=refresh_token`` answers hour-long access tokens,
  cached and refreshed by :class:`~hub.connectors.http.OAuth2ClientCredentials` (the same token flow, another
  grant).
- Changes: ``GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json&Changed_Since=...`` (RaaS
  does not page: one answer). The prompt is the window's start in the tenant's time zone; the report has no
  upper bound, so rows changed at or after the window's end are left to the next window (the watermark's
  overlap re-reads the boundary harmlessly).
- Every worker: ``GET /ccx/api/staffing/{version}/{tenant}/workers?limit=100&offset=...`` (100 is the
  documented maximum; ``includeTerminatedWorkers=true`` so leavers are listed too).
- Errors: 429 with ``Retry-After`` is throttled, 5xx transient, 401 refreshes the token once, other 4xx
  permanent (the shared classification).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from hub.connectors.http import ApiClient, OAuth2ClientCredentials, RetryPolicy
from hub.connectors.ports import WorkerChanges
from hub.errors import DataValidationError, TransientError
from hub.mapping import workday as wm

SYSTEM = "workday"
PAGE_LIMIT = 100  # the Staffing API's documented maximum
REPORT = "PSHub_Worker_Changes"


class WorkdayHcm:
    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        report_owner: str,
        legal_entities: Mapping[str, str],
        report_name: str = REPORT,
        tenant_time_zone: str = "America/Los_Angeles",
        api_version: str = "v6",
        retry: RetryPolicy | None = None,
        system: str = SYSTEM,
    ) -> None:
        """``legal_entities``: Workday company reference ID -> the hub's legal entity code.
        ``tenant_time_zone``: the tenant's IANA zone (report moments and prompts are in it)."""
        base = base_url.rstrip("/")
        self.system = system
        self._tenant = tenant
        self._owner = report_owner
        self._report = report_name
        self._version = api_version
        self._zone = ZoneInfo(tenant_time_zone)
        self._entities = dict(legal_entities)
        auth = OAuth2ClientCredentials(
            http,
            token_url=f"{base}/ccx/oauth2/{tenant}/token",
            client_id=client_id,
            client_secret=client_secret,
            system=system,
            extra_form={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        self._api = ApiClient(http, system=system, base_url=base, auth=auth, retry=retry)

    def changed_workers(self, *, changed_since: dt.datetime, until: dt.datetime) -> WorkerChanges:
        if changed_since.tzinfo is None or until.tzinfo is None:
            raise ValueError("changed_since and until must be timezone-aware")
        answer = self._api.get_json(
            "/ccx/service/customreport2/{tenant}/{owner}/{report}",
            path_params={"tenant": self._tenant, "owner": self._owner, "report": self._report},
            params={"format": "json", "Changed_Since": wm.moment_out(changed_since, self._zone)},
        )
        rows = answer.get("Report_Entry") if isinstance(answer, Mapping) else None
        if not isinstance(rows, list):
            raise TransientError(
                "the report answered without Report_Entry", system=self.system, code="bad_body"
            )
        workers = []
        unmappable: dict[str, DataValidationError] = {}
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            if not self._before(row, until):
                continue  # changed after the window: the next one reads it
            try:
                workers.append(wm.worker_from_row(row, entities=self._entities))
            except DataValidationError as error:
                unmappable[str(row.get("Employee_ID") or f"row-{len(unmappable)}")] = error
        return WorkerChanges(workers=tuple(workers), unmappable=unmappable)

    def worker_ids(self) -> Iterator[str]:
        offset = 0
        while True:
            page = self._api.get_json(
                "/ccx/api/staffing/{version}/{tenant}/workers",
                path_params={"version": self._version, "tenant": self._tenant},
                params={"limit": PAGE_LIMIT, "offset": offset, "includeTerminatedWorkers": "true"},
            )
            data = page.get("data") if isinstance(page, Mapping) else None
            if not isinstance(data, list):
                raise TransientError(
                    "the workers page came without data", system=self.system, code="bad_body"
                )
            for worker in data:
                if isinstance(worker, Mapping) and worker.get("workerId"):
                    yield str(worker["workerId"])
            offset += len(data)
            total = page.get("total")
            if not data or (isinstance(total, int) and offset >= total):
                return

    @staticmethod
    def _before(row: Mapping[str, Any], until: dt.datetime) -> bool:
        try:
            return wm.moment(row.get("Last_Updated")) < until
        except (TypeError, ValueError):
            return True  # cannot tell: keep it (it parks as unmappable, naming Last_Updated)
