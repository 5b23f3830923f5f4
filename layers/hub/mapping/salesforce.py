"""Salesforce <-> canonical: Opportunity (with its Account and OpportunityLineItems) and the hub's write-back.

``opportunity_from_salesforce`` accepts the three shapes an opportunity reaches the hub in:

a. REST API records (typed JSON values; the adapter passes line items and account read separately);
b. a JSON webhook nested like a SOQL result (``"Account": {...}``,
   ``"OpportunityLineItems": {"records": [...]}``, a child relationship with no rows being ``null``);
c. a SOAP Outbound Message, every value a string and no line items: the opportunity is then marked
   ``needs_hydration`` so the flow reads the full record before validating it.

A missing optional field stays ``None`` (whether the deal is complete is decided later in the flow). A
malformed value raises pydantic's ``ValidationError`` naming the canonical field (e.g. ``amount.amount``).

The account's country is the one deliberate exception: ``BillingCountry`` is free text in an org without
state and country picklists ("United States"), so the canonical ISO alpha-2 ``billing_country`` is taken from
``BillingCountryCode`` when present, else from ``BillingCountry`` only when that already is a 2-letter code,
else left ``None``: a country spelt out never fails a deal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hub.mapping.fields import (
    MISSING_VALUES,
    Field,
    FieldMap,
    date_out,
    decimal_in,
    money_amount_out,
    money_currency_out,
    money_in,
    number_out,
    picklist,
)
from hub.model import BillingType, Opportunity

BILLING_TYPES: dict[str, BillingType] = {
    "Fixed Fee - Milestones": BillingType.FIXED_FEE_MILESTONES,
    "Time and Materials": BillingType.TIME_AND_MATERIALS,
    "Retainer": BillingType.RETAINER,
    "Subscription": BillingType.SUBSCRIPTION,
}
"""``Billing_Type__c`` picklist values -> canonical billing type."""

_billing_in, _billing_out = picklist(BILLING_TYPES)


def datetime_out(value: dt.datetime) -> str:
    """Salesforce's REST datetime format: UTC, milliseconds, ``+0000`` (e.g. 2026-11-02T10:00:00.000+0000)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


COUNTRY_FIELDS = ("BillingCountryCode", "BillingCountry")
_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")


def country_code_in(_value: Any, record: Mapping[str, Any]) -> str | None:
    """The first of ``BillingCountryCode``, ``BillingCountry`` that is an ISO alpha-2 code, upper-cased; else
    None (a free-text country such as "United States" is not guessed at, and never fails the deal)."""
    for name in COUNTRY_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and _COUNTRY_CODE.fullmatch(value.strip()):
            return value.strip().upper()
    return None


ACCOUNT = FieldMap(
    Field("Id", "crm_id"),
    Field("Name", "name"),
    # With state and country picklists enabled the ISO code is in BillingCountryCode; prefer it when present.
    Field("BillingCountry", "billing_country", load=country_code_in, load_from=COUNTRY_FIELDS),
    Field("CurrencyIsoCode", "currency"),
)

LINE_ITEM = FieldMap(
    Field("Id", "crm_id"),
    Field("ProductCode", "product_code"),
    Field("Name", "name"),
    Field("Quantity", "quantity", load=decimal_in, dump=number_out),
    # A line item's currency is its opportunity's; the loader gets it from the context when the row lacks it.
    Field("UnitPrice", "unit_price", load=money_in("CurrencyIsoCode"), dump=money_amount_out),
    Field("CurrencyIsoCode", "unit_price", dump=money_currency_out, direction="dump"),
    Field("TotalPrice", "total", dump=money_amount_out, direction="dump"),  # derived; read-only in Salesforce
    Field("Service_Line__c", "service_line"),
    Field("ServiceDate", "service_date", dump=date_out),
)

OPPORTUNITY = FieldMap(
    Field("Id", "crm_id"),
    Field("Name", "name"),
    Field("StageName", "stage"),
    Field("Amount", "amount", load=money_in("CurrencyIsoCode"), dump=money_amount_out),
    Field("CurrencyIsoCode", "amount", dump=money_currency_out, direction="dump"),
    Field("CloseDate", "close_date", dump=date_out),
    Field("AccountId", "account.crm_id", direction="dump"),
    Field("Legal_Entity__c", "legal_entity_code"),
    Field("Billing_Type__c", "billing_type", load=_billing_in, dump=_billing_out),
    Field("Start_Date__c", "start_date", dump=date_out),
    Field("End_Date__c", "end_date", dump=date_out),
    Field("SystemModstamp", "last_modified", dump=datetime_out),
)

ERROR_TEXT_LIMIT = 1000

WRITE_BACK = FieldMap(
    Field("Integration_Status__c", "status"),
    Field("PSA_Project_Id__c", "psa_project_id"),
    Field("ERP_Customer_Id__c", "erp_customer_id"),
    # Always written: a successful run clears the previous run's error (JSON null empties a field).
    Field("Integration_Error__c", "error", keep_none=True, dump=lambda text: str(text)[:ERROR_TEXT_LIMIT]),
)

# The fields the hub reads (docs/vendor-apis.md), for the REST ``fields=`` projection.
OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "StageName",
    "Amount",
    "CurrencyIsoCode",
    "CloseDate",
    "AccountId",
    "Legal_Entity__c",
    "Billing_Type__c",
    "Start_Date__c",
    "End_Date__c",
    "SystemModstamp",
)
LINE_ITEM_FIELDS = (
    "Id",
    "ProductCode",
    "Name",
    "Quantity",
    "UnitPrice",
    "TotalPrice",
    "Service_Line__c",
    "ServiceDate",
)
# BillingCountryCode is not requested: it exists only in orgs with state and country picklists enabled (the
# sandbox org has none), and naming an unknown field fails the whole read with INVALID_FIELD. Payloads that
# carry it (webhooks, picklist-enabled orgs) are still read by the mapping.
ACCOUNT_FIELDS = ("Id", "Name", "BillingCountry", "CurrencyIsoCode")

LINE_ITEMS_RELATIONSHIP = "OpportunityLineItems"
ACCOUNT_RELATIONSHIP = "Account"


def relationship_records(record: Mapping[str, Any], name: str) -> list[Mapping[str, Any]] | None:
    """Child rows nested SOQL-style: ``None`` when the relationship is absent, ``[]`` when it is ``null``."""
    if name not in record:
        return None
    nested = record[name]
    if nested is None:
        return []
    if isinstance(nested, Mapping):
        rows = nested.get("records")
        return list(rows) if rows else []
    if isinstance(nested, Sequence) and not isinstance(nested, str | bytes):
        return list(nested)
    return []


def opportunity_from_salesforce(
    record: Mapping[str, Any],
    line_items: list[Mapping[str, Any]] | None = None,
    account: Mapping[str, Any] | None = None,
) -> Opportunity:
    """Canonical opportunity from a Salesforce record (REST, nested JSON webhook, or Outbound Message)."""
    data = OPPORTUNITY.load(record)
    items = line_items if line_items is not None else relationship_records(record, LINE_ITEMS_RELATIONSHIP)
    context = {"CurrencyIsoCode": record.get("CurrencyIsoCode")}
    data["line_items"] = [LINE_ITEM.load(item, context) for item in items or ()]
    if account is None:
        nested = record.get(ACCOUNT_RELATIONSHIP)
        account = nested if isinstance(nested, Mapping) else None
    data["account"] = ACCOUNT.load(account) if account is not None else None
    account_unread = account is None and record.get("AccountId") not in MISSING_VALUES
    data["needs_hydration"] = items is None or account_unread
    return Opportunity.model_validate(data)


def opportunity_to_salesforce(opp: Opportunity) -> dict[str, Any]:
    """The opportunity as Salesforce shapes it: record fields plus ``Account`` and ``OpportunityLineItems``
    nested as in a SOQL result (line items left out when the opportunity still needs hydration)."""
    out = OPPORTUNITY.dump(opp)
    if opp.account is not None:
        out[ACCOUNT_RELATIONSHIP] = ACCOUNT.dump(opp.account)
    if not opp.needs_hydration:
        rows = [LINE_ITEM.dump(item) for item in opp.line_items]
        out[LINE_ITEMS_RELATIONSHIP] = {"totalSize": len(rows), "done": True, "records": rows}
    return out


def write_back_to_salesforce(
    *,
    status: str,
    psa_project_id: str | None = None,
    erp_customer_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The PATCH body for the hub's back-references on the opportunity."""
    values = {
        "status": status,
        "psa_project_id": psa_project_id,
        "erp_customer_id": erp_customer_id,
        "error": error,
    }
    return WRITE_BACK.dump(values)


def write_back_from_salesforce(record: Mapping[str, Any]) -> dict[str, Any]:
    """The hub's back-references as read from an opportunity record (the reverse of the above)."""
    return WRITE_BACK.load(record)
