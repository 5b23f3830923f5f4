"""NetSuite (ERP) adapter over the REST record API: customers and projects (jobs) upserted by external id.

``PUT /services/rest/record/v1/{type}/eid:{externalId}`` creates or updates, so a retry or a redrive can never
create a second record; the internal id comes from the ``Location`` header (or, failing that, a read by the
same external id).

References go by internal id (``{"id"}``); the account's currencies come as ``currency_ids`` (ISO code ->
internal id), because NetSuite's currency ids differ per account. The token answer's ``expires_in`` is a
string (``"3600"``); an invalid reference is 400 ``INVALID_CONTENT`` naming the field in ``o:errorPath``; a
missing record 404 ``NONEXISTENT_ID``; a bad or expired token 401 ``INVALID_LOGIN`` (refreshed once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from hub.connectors.http import (
    ApiClient,
    Classifier,
    OAuth2ClientCredentials,
    RetryPolicy,
    classify_status,
    parse_json,
    retry_after_of,
)
from hub.errors import (
    ConflictError,
    DataValidationError,
    HubError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from hub.mapping import netsuite as nm
from hub.model import Account, BillingType, Project

SYSTEM = "netsuite"
RECORD_ROOT = "/services/rest/record/v1"

# o:errorCode -> taxonomy class, whatever the status (the status decides the rest).
ERROR_CODES: dict[str, type[HubError]] = {
    "CONCURRENCY_LIMIT_EXCEEDED": ThrottledError,
    "SSS_REQUEST_LIMIT_EXCEEDED": ThrottledError,
    "RCRD_HAS_BEEN_CHANGED": TransientError,
    "RCRD_LOCKED_BY_WF": TransientError,
    "RCRD_DSNT_EXIST": PermanentError,
    "NONEXISTENT_ID": PermanentError,
    "INVALID_LOGIN": PermanentError,
    "INSUFFICIENT_PERMISSION": PermanentError,
    # On an upsert by external id, a duplicate means a concurrent first upsert of the same id won the race:
    # the same upsert, retried, updates the winner's record.
    "DUP_RCRD": TransientError,
    "INVALID_CONTENT": DataValidationError,
    "INVALID_VALUE": DataValidationError,
    "USER_ERROR": DataValidationError,
    "INVALID_KEY_OR_REF": DataValidationError,
    "INVALID_FLD_VALUE": DataValidationError,
}


def netsuite_base_url(account_id: str) -> str:
    """``https://{accountId}.suitetalk.api.netsuite.com``; ``1234567_SB1`` becomes ``1234567-sb1``."""
    host = account_id.strip().lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com"


def classify_for(system: str) -> Classifier:
    def classify(response: httpx.Response) -> HubError | None:
        """NetSuite's answer onto the taxonomy: on the status and ``o:errorCode``, never on text."""
        status = response.status_code
        if status < 300:
            return None
        body = parse_json(response)
        codes = nm.error_codes(body)
        code = codes[0] if codes else None
        kinds = [ERROR_CODES[c] for c in codes if c in ERROR_CODES]
        if status == 429 or ThrottledError in kinds:
            return ThrottledError(
                f"{system} concurrency limit", retry_after=retry_after_of(response), system=system, code=code
            )
        if status >= 500 or TransientError in kinds:
            return TransientError(f"{system} answered {status}", system=system, code=code or str(status))
        if status in (401, 403):
            return PermanentError(f"{system} refused the credentials ({status})", system=system, code=code)
        if status == 404:
            return PermanentError(f"{system} record not found", system=system, code=code or "404")
        if ConflictError in kinds or status == 409:
            return ConflictError(f"{system} answered a conflict", system=system, code=code or str(status))
        if status == 400:
            return DataValidationError(
                f"{system} rejected the data", problems=nm.validation_problems(body), system=system, code=code
            )
        return classify_status(response, system=system, code=code)

    return classify


class NetSuiteErp:
    """``ErpPort`` over NetSuite's REST record API (OAuth 2.0 client credentials; one per account)."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        account_id: str,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        system: str = "netsuite-us",
        base_url: str | None = None,
        billing_schedule_ids: Mapping[BillingType, str] | None = None,
        currency_ids: Mapping[str, str] | None = None,
        token_form: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.system = system
        self._auth = OAuth2ClientCredentials(
            client,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            system=system,
            extra_form=token_form,
        )
        self._api = ApiClient(
            client,
            system=system,
            base_url=base_url or netsuite_base_url(account_id),
            auth=self._auth,
            classify=classify_for(system),
            retry=retry,
        )
        self._billing_schedule_ids = dict(billing_schedule_ids or {})
        # None: the account was configured without a table (currencies then go by name, see the mapping).
        self._currency_ids = dict(currency_ids) if currency_ids is not None else None

    def upsert_customer(self, account: Account, *, subsidiary_id: str, currency: str) -> str:
        body = nm.customer_body(account, subsidiary_id=subsidiary_id, currency=self._currency(currency))
        return self._upsert("customer", nm.customer_external_id(account), body)

    def upsert_project(self, project: Project, *, customer_id: str, subsidiary_id: str) -> str:
        body = nm.job_body(
            project,
            customer_id=customer_id,
            subsidiary_id=subsidiary_id,
            currency=self._currency(project.currency),
            billing_schedule_id=self._billing_schedule_ids.get(project.billing_type),
        )
        return self._upsert("job", nm.project_external_id(project), body)

    def _currency(self, code: str) -> dict[str, str]:
        reference = nm.currency_reference(code, self._currency_ids)
        if reference is None:
            raise DataValidationError(
                f"{self.system} has no currency {code}",
                problems=[{"field": "currency", "problem": f"no internal id configured for {code}"}],
                system=self.system,
                code="UNKNOWN_CURRENCY",
            )
        return reference

    def _upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str:
        path = RECORD_ROOT + "/" + record_type + "/eid:{external_id}"
        response = self._api.request("PUT", path, path_params={"external_id": external_id}, json=body)
        internal_id = nm.internal_id_from_location(response.headers.get("Location"))
        if internal_id is not None:
            return internal_id
        # No usable Location: read the record back by the same external id.
        answer = parse_json(self._api.request("GET", path, path_params={"external_id": external_id}))
        internal_id = nm.record_id(answer)
        if internal_id is None:
            raise TransientError(
                f"{self.system} upsert answered without the record's id",
                system=self.system,
                code="no_location",
            )
        return internal_id
