"""Adapters built from their connection secret (a parsed JSON object; the caller fetches it, e.g. with
Powertools Parameters and its cache).

Secret shapes (extra keys are ignored):

- Salesforce: ``{"token_url", "client_id", "client_secret"}`` and optionally ``"base_url"`` (overrides the
  ``instance_url`` of the token answer) and ``"api_version"``;
- Kantata: ``{"base_url", "token"}``;
- NetSuite: ``{"base_url", "token_url", "account_id", "client_id", "client_secret"}`` and optionally
  ``"currency_ids"`` (ISO code -> the account's currency internal id, e.g. ``{"USD": "1", "GBP": "2"}``;
  references are sent by id, so every account should carry it: without it currencies go by name, which
  NetSuite does not promise to resolve); for time and expenses ``"expense_category_ids"`` (canonical
  category -> internal id), ``"tax_code_ids"`` (hub tax code -> internal id or null), ``"service_item_id"``
  and ``"project_tasks"`` (default true);
- Business Central: ``{"kind": "business-central", "tenant_id", "client_id", "client_secret"}`` and optionally
  ``"environment"``, ``"base_url"``, ``"token_url"`` (sandbox or sovereign clouds), ``"expense_accounts"``,
  ``"tax_codes"``, ``"local_currency"`` and the number maps ``"employee_numbers"``, ``"vendor_numbers"``,
  ``"job_numbers"`` (hub id -> BC number, where they differ).

An ERP secret without ``"kind"`` is NetSuite's.

A bad secret raises ``PermanentError`` naming the keys at fault, never their values.

``budget=`` (optional, a :class:`hub.concurrency.ConcurrencyBudget` of the system's pool) makes every HTTP
request of the adapter hold one slot of that shared budget while it is in flight (retries included, the slot
given back before any retry sleeps): the factory wraps the transport it builds, so pass ``transport=``
rather than ``client=`` with it. Without a budget nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from hub.connectors.business_central import BusinessCentralErp
from hub.connectors.http import DEFAULT_TIMEOUT, ConcurrencyTransport, RetryPolicy
from hub.connectors.kantata import KantataPsa
from hub.connectors.netsuite import NetSuiteErp
from hub.connectors.salesforce import SalesforceCrm
from hub.errors import PermanentError
from hub.model import ExpenseCategory

if TYPE_CHECKING:
    from hub.concurrency import ConcurrencyBudget
    from hub.connectors.kantata_resources import KantataResources
    from hub.connectors.workday import WorkdayHcm

_Url = Field(min_length=1, pattern=r"^https?://")
_Text = Field(min_length=1)
_CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
_InternalId = Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
_CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {value}") from None
    return value


class _Secret(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, str_strip_whitespace=True, hide_input_in_errors=True
    )


class SalesforceSecret(_Secret):
    token_url: str = _Url
    client_id: str = _Text
    client_secret: str = _Text
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    api_version: str = Field(default="v62.0", pattern=r"^v[0-9]+\.[0-9]$")


class KantataSecret(_Secret):
    base_url: str = _Url
    token: str = _Text
    # legal entity code -> ISO country: the supplier country of an expense whose notes name none
    home_countries: dict[str, _CountryCode] | None = None
    account_time_zone: str = Field(default="UTC", min_length=1)

    _zone = field_validator("account_time_zone")(lambda cls, value: _known_zone(value))


class KantataResourcesSecret(KantataSecret):
    """The PSA secret as the worker consumer reads it: the connection, plus what keeping the resource pool
    needs (all optional; without an invitation template new workers park with the reason)."""

    invitation_email_template: str | None = Field(default=None, pattern=r"^[^@\s]*\{hcm_id\}[^@\s]*@[^@\s]+$")
    account_currency: _CurrencyCode | None = None
    # Kantata limits its API by request rate per account; each container that reads or writes the pool paces
    # itself to this many requests a second: the account's rate over the containers that call it at once
    # (the worker and margin consumers' maximum concurrency, 2 each). None: no pace (a 429 is still retried).
    requests_per_second: float | None = Field(default=None, gt=0)
    request_burst: int = Field(default=5, ge=1)
    legal_entity_field: str = Field(default="Legal Entity", min_length=1)
    cost_centre_field: str = Field(default="Cost Centre", min_length=1)
    hcm_id_field: str | None = "HCM ID"


class NetSuiteSecret(_Secret):
    base_url: str = _Url
    token_url: str = _Url
    account_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    client_id: str = _Text
    client_secret: str = _Text
    currency_ids: dict[_CurrencyCode, _InternalId] | None = None
    expense_category_ids: dict[ExpenseCategory, _InternalId] | None = None
    tax_code_ids: dict[str, _InternalId | None] | None = None
    service_item_id: _InternalId | None = None
    project_tasks: bool = True


class WorkdaySecret(_Secret):
    base_url: str = _Url
    tenant: str = _Text
    client_id: str = _Text
    client_secret: str = _Text
    refresh_token: str = _Text
    report_owner: str = _Text
    report_name: str = Field(default="PSHub_Worker_Changes", min_length=1)
    # Workday company reference ID -> the hub's legal entity code
    legal_entities: dict[str, str] = Field(min_length=1)
    tenant_time_zone: str = Field(default="America/Los_Angeles", min_length=1)

    _zone = field_validator("tenant_time_zone")(lambda cls, value: _known_zone(value))


class BusinessCentralSecret(_Secret):
    tenant_id: str = _Text
    client_id: str = _Text
    client_secret: str = _Text
    environment: str = Field(default="production", min_length=1)
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    token_url: str | None = Field(default=None, pattern=r"^https?://")
    expense_accounts: dict[ExpenseCategory, str] | None = None
    tax_codes: dict[str, str | None] | None = None
    local_currency: _CurrencyCode | None = None
    employee_numbers: dict[str, str] | None = None
    vendor_numbers: dict[str, str] | None = None
    job_numbers: dict[str, str] | None = None


S = TypeVar("S", bound=_Secret)


def _parse(model: type[S], secret: Mapping[str, Any], system: str) -> S:
    try:
        return model.model_validate(dict(secret))
    except (ValidationError, TypeError, ValueError) as exc:
        keys = (
            sorted({".".join(str(part) for part in err["loc"]) for err in exc.errors()})
            if isinstance(exc, ValidationError)
            else []
        )
        raise PermanentError(
            f"the {system} connection secret is invalid (keys: {', '.join(keys) or 'shape'})",
            system=system,
            code="invalid_secret",
        ) from None


def _client(
    client: httpx.Client | None,
    transport: httpx.BaseTransport | None,
    budget: ConcurrencyBudget | None = None,
) -> httpx.Client:
    if budget is not None:
        if client is not None:
            raise ValueError(
                "a concurrency budget wraps the factory's own transport: pass transport=, not client="
            )
        transport = ConcurrencyTransport(transport or httpx.HTTPTransport(), budget.slot)
    if client is not None:
        return client
    # No redirects: Salesforce's 300 (several external-id matches) must reach the classifier.
    return httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def crm_from_secret(
    secret: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    budget: ConcurrencyBudget | None = None,
) -> SalesforceCrm:
    parsed = _parse(SalesforceSecret, secret, "salesforce")
    return SalesforceCrm(
        _client(client, transport, budget),
        token_url=parsed.token_url,
        client_id=parsed.client_id,
        client_secret=parsed.client_secret,
        api_version=parsed.api_version,
        base_url=parsed.base_url,
        retry=retry,
    )


def psa_from_secret(
    secret: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    budget: ConcurrencyBudget | None = None,
) -> KantataPsa:
    parsed = _parse(KantataSecret, secret, "kantata")
    return KantataPsa(_client(client, transport, budget), retry=retry, **parsed.model_dump())


def erp_from_secret(
    system_id: str,
    secret: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    budget: ConcurrencyBudget | None = None,
    workers: int = 1,
) -> NetSuiteErp | BusinessCentralErp:
    """The ERP adapter for ``system_id`` (as in the routing table, e.g. ``netsuite-us``), by the secret's
    ``kind``.

    With ``budget``, every request holds a slot of that shared budget (name it after the ERP account's pool:
    every system id reaching the same NetSuite account must share it). ``workers`` > 1 lets a NetSuite
    adapter post that many records at once (one per call); keep it at most the budget's limit.
    """
    kind = str(secret.get("kind", "netsuite")) if isinstance(secret, Mapping) else "netsuite"
    http = _client(client, transport, budget)
    if kind == "business-central":  # the secret's fields are the adapter's settings, by the same names
        bc = _parse(BusinessCentralSecret, secret, system_id)
        return BusinessCentralErp(http, system=system_id, retry=retry, **bc.model_dump())
    if kind != "netsuite":
        raise PermanentError(
            f"the {system_id} connection secret names an unknown ERP kind",
            system=system_id,
            code="invalid_secret",
        )
    parsed = _parse(NetSuiteSecret, secret, system_id)
    return NetSuiteErp(
        http,
        system=system_id,
        retry=retry,
        workers=workers,
        hold=budget.slot if budget is not None else None,
        **parsed.model_dump(),
    )


def hcm_from_secret(
    secret: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> WorkdayHcm:
    """The HCM adapter (Workday) from its connection secret: the integration user's refresh token, the
    change report's owner and name, the company -> legal entity map and the tenant's time zone."""
    from hub.connectors.workday import WorkdayHcm  # only the worker sync needs it: off the other cold starts

    parsed = _parse(WorkdaySecret, secret, "workday")
    return WorkdayHcm(_client(client, transport, None), retry=retry, **parsed.model_dump())


def psa_resources_from_secret(
    secret: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    budget: ConcurrencyBudget | None = None,
) -> KantataResources:
    """The PSA's resource pool (Kantata) from the PSA secret, for the worker consumer."""
    from hub.connectors.kantata_resources import KantataResources  # only the worker consumer needs it
    from hub.mapping import kantata_resources as rm

    parsed = _parse(KantataResourcesSecret, secret, "kantata")
    template = parsed.invitation_email_template
    if parsed.requests_per_second is not None:
        from hub.pacing import RatePacer

        if client is not None:
            raise ValueError("a pace wraps the factory's own transport: pass transport=, not client=")
        pace = RatePacer(parsed.requests_per_second, burst=parsed.request_burst)
        transport = ConcurrencyTransport(transport or httpx.HTTPTransport(), pace.slot)
    return KantataResources(
        _client(client, transport, budget),
        token=parsed.token,
        base_url=parsed.base_url,
        retry=retry,
        home_countries=parsed.home_countries,
        account_time_zone=parsed.account_time_zone,
        email_for=rm.invitation_email(template) if template else None,
        account_currency=parsed.account_currency,
        user_fields=rm.UserFields(
            legal_entity=parsed.legal_entity_field,
            cost_centre=parsed.cost_centre_field,
            hcm_id=parsed.hcm_id_field,
        ),
    )
