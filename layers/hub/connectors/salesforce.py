"""Salesforce (CRM) adapter over the REST API: reads won opportunities, writes the hub's back-references.

The token call (client-credentials flow) answers 400 ``invalid_client_id`` for an unknown client id and
``invalid_client`` for a wrong secret (both permanent), with no ``expires_in`` (the session lasts until a 401)
and no ``Sforce-Limit-Info`` header: only data answers carry the API usage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from hub.connectors.http import (
    ApiClient,
    OAuth2ClientCredentials,
    RetryPolicy,
    classify_status,
    parse_json,
)
from hub.errors import (
    ConflictError,
    DataValidationError,
    HubError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from hub.mapping.salesforce import (
    ACCOUNT_FIELDS,
    LINE_ITEM_FIELDS,
    OPPORTUNITY_FIELDS,
    opportunity_from_salesforce,
    write_back_to_salesforce,
)
from hub.model import Opportunity

logger = logging.getLogger("hub.connectors.salesforce")

SYSTEM = "salesforce"
_CRM_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")

# errorCode -> taxonomy class, for 400 answers (and any status not decided by the status alone).
ERROR_CODES: dict[str, type[HubError]] = {
    "UNABLE_TO_LOCK_ROW": TransientError,
    "REQUEST_LIMIT_EXCEEDED": ThrottledError,
    "SERVER_UNAVAILABLE": TransientError,
    "DUPLICATE_VALUE": ConflictError,
    "DUPLICATES_DETECTED": ConflictError,
    "ENTITY_IS_DELETED": PermanentError,
    "NOT_FOUND": PermanentError,
    "INVALID_SESSION_ID": PermanentError,  # reached only once the one token refresh has been spent
    "INSUFFICIENT_ACCESS_OR_READONLY": PermanentError,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": PermanentError,
    "INVALID_FIELD": DataValidationError,
    "INVALID_FIELD_FOR_INSERT_UPDATE": DataValidationError,
    "INVALID_CROSS_REFERENCE_KEY": DataValidationError,
    "REQUIRED_FIELD_MISSING": DataValidationError,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": DataValidationError,
    "FIELD_INTEGRITY_EXCEPTION": DataValidationError,
    "INVALID_TYPE_ON_FIELD_IN_RECORD": DataValidationError,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": DataValidationError,
    "STRING_TOO_LONG": DataValidationError,
    "MALFORMED_ID": DataValidationError,
    "INVALID_ID_FIELD": DataValidationError,
    "JSON_PARSER_ERROR": DataValidationError,
    "NUMBER_OUTSIDE_VALID_RANGE": DataValidationError,
}

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def api_usage(response: httpx.Response) -> tuple[int, int] | None:
    """``Sforce-Limit-Info: api-usage=N/LIMIT`` as (used, limit)."""
    found = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
    return (int(found.group(1)), int(found.group(2))) if found else None


def _errors(response: httpx.Response) -> list[Mapping[str, Any]]:
    body = parse_json(response)
    if isinstance(body, Mapping):
        body = [body]
    return [e for e in body if isinstance(e, Mapping)] if isinstance(body, list) else []


def classify(response: httpx.Response) -> HubError | None:
    """Salesforce's answer onto the taxonomy: on the status and the ``errorCode``, never on the message."""
    status = response.status_code
    if status < 300:
        return None
    if status == 300:
        return ConflictError(
            "salesforce external id matches several records", system=SYSTEM, code="MULTIPLE_CHOICES"
        )
    errors = _errors(response)
    code = str(errors[0].get("errorCode")) if errors and errors[0].get("errorCode") else None
    if status >= 500:
        return TransientError(f"salesforce answered {status}", system=SYSTEM, code=code or str(status))
    kind = ERROR_CODES.get(code or "")
    if kind is ThrottledError:
        usage = api_usage(response)
        detail = f" (api usage {usage[0]}/{usage[1]})" if usage else ""
        # No Retry-After: the org's rolling 24 h limit; back off and let Step Functions wait longer.
        return ThrottledError(
            f"salesforce API limit exceeded{detail}", retry_after=None, system=SYSTEM, code=code
        )
    if kind is DataValidationError or (kind is None and status == 400):
        problems = [
            {"field": field, "problem": str(e.get("message") or ""), "code": str(e.get("errorCode") or "")}
            for e in errors
            for field in (e.get("fields") or ["record"])
        ]
        return DataValidationError(
            f"salesforce rejected the data ({code or status})", problems=problems, system=SYSTEM, code=code
        )
    if kind is not None:
        return kind(f"salesforce answered {status} {code}", system=SYSTEM, code=code)
    return classify_status(response, system=SYSTEM, code=code)


class SalesforceCrm:
    """``CrmPort`` over the Salesforce REST API (client-credentials flow; base URL from the token answer)."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "v62.0",
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        system: str = SYSTEM,
    ) -> None:
        self._auth = OAuth2ClientCredentials(
            client, token_url=token_url, client_id=client_id, client_secret=client_secret, system=system
        )
        self._base_override = base_url
        self._api = ApiClient(
            client, system=system, base_url=self._base_url, auth=self._auth, classify=classify, retry=retry
        )
        self._root = f"/services/data/{api_version}"

    def _base_url(self) -> str:
        if self._base_override:
            return self._base_override
        instance_url = self._auth.current().answer.get("instance_url")
        if not isinstance(instance_url, str) or not instance_url.startswith(("https://", "http://")):
            raise PermanentError(
                "salesforce token answer has no instance_url", system=SYSTEM, code="no_instance"
            )
        return instance_url

    # ---------------------------------------------------------------------------------------------- reads

    def get_opportunity(self, crm_id: str) -> Opportunity:
        _check_id(crm_id, "crm_id")
        record = self._get(
            "/sobjects/Opportunity/{id}", {"id": crm_id}, params={"fields": ",".join(OPPORTUNITY_FIELDS)}
        )
        line_items = self._line_items(crm_id)
        account = None
        account_id = record.get("AccountId")
        if account_id:
            _check_id(str(account_id), "AccountId")
            account = self._get(
                "/sobjects/Account/{id}", {"id": account_id}, params={"fields": ",".join(ACCOUNT_FIELDS)}
            )
        return opportunity_from_salesforce(record, line_items=line_items, account=account)

    def _line_items(self, crm_id: str) -> list[Mapping[str, Any]]:
        answer = self._get(
            "/sobjects/Opportunity/{id}/OpportunityLineItems",
            {"id": crm_id},
            params={"fields": ",".join(LINE_ITEM_FIELDS)},
        )
        rows: list[Mapping[str, Any]] = list(answer.get("records") or [])
        query_root = self._root + "/query/"
        while not answer.get("done", True):
            # More rows than one batch: nextRecordsUrl is /services/data/vXX.X/query/{locator}-{offset}.
            next_url = answer.get("nextRecordsUrl")
            if not isinstance(next_url, str) or not next_url.startswith(query_root):
                raise TransientError(
                    "salesforce answered an unexpected nextRecordsUrl", system=SYSTEM, code="bad_body"
                )
            answer = self._get("/query/{locator}", {"locator": next_url[len(query_root) :]})
            rows.extend(answer.get("records") or [])
        return rows

    def _get(
        self, path: str, path_params: Mapping[str, Any], *, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        body = parse_json(self._api.request("GET", self._root + path, path_params=path_params, params=params))
        if not isinstance(body, Mapping):
            raise TransientError("salesforce answered an unexpected body", system=SYSTEM, code="bad_body")
        return body

    # --------------------------------------------------------------------------------------------- writes

    def write_back(
        self,
        crm_id: str,
        *,
        status: str,
        psa_project_id: str | None = None,
        erp_customer_id: str | None = None,
        error: str | None = None,
    ) -> None:
        _check_id(crm_id, "crm_id")
        body = write_back_to_salesforce(
            status=status, psa_project_id=psa_project_id, erp_customer_id=erp_customer_id, error=error
        )
        self._api.request(
            "PATCH", self._root + "/sobjects/Opportunity/{id}", path_params={"id": crm_id}, json=body
        )


def _check_id(value: str, field: str) -> None:
    if not _CRM_ID.fullmatch(value or ""):
        raise DataValidationError(
            "not a Salesforce record id",
            problems=[{"field": field, "problem": "must be 15 or 18 letters and digits"}],
            system=SYSTEM,
            code="MALFORMED_ID",
        )
