"""Canonical -> NetSuite REST record bodies, external ids, and NetSuite answers -> ids and problems.

References (subsidiary, parent customer, currency, billing schedule) are sent as ``{"id": internal id}``, as
NetSuite documents them. Currency internal ids are per account, so the adapter is given the account's table
(ISO code -> internal id); ``{"refName": code}`` is only a fallback for an account configured without one
(NetSuite does not promise to resolve a currency by name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hub.mapping.fields import Field, FieldMap, date_out, lookup, money_amount_out
from hub.model import Account, BillingType, Project

JOB_BILLING_TYPES: dict[BillingType, str] = {
    BillingType.FIXED_FEE_MILESTONES: "FBM",  # Fixed Bid, Milestone
    BillingType.TIME_AND_MATERIALS: "TM",  # Time and Materials
    BillingType.RETAINER: "FBI",  # Fixed Bid, Interval
    BillingType.SUBSCRIPTION: "FBI",
}
"""Canonical billing type -> NetSuite ``jobBillingType`` id (the project's billing type list)."""


def _ref_by_name(value: str) -> dict[str, str]:
    return {"refName": value}


def _ref_by_id(value: str) -> dict[str, str]:
    return {"id": value}


CUSTOMER = FieldMap(
    Field("companyName", "name"),
)

JOB = FieldMap(
    Field("companyName", "name"),
    Field("startDate", "start_date", dump=date_out),
    Field("projectedEndDate", "end_date", dump=date_out),
    Field(
        "jobBillingType", "billing_type", dump=lambda billing: _ref_by_id(lookup(JOB_BILLING_TYPES)(billing))
    ),
    Field("custentity_pshub_contract_value", "contract_value", dump=money_amount_out),
)


# --------------------------------------------------------------------------------------------- external ids

_SAFE_CHAR = re.compile(r"[A-Za-z0-9-]")


def safe_external_id(raw: str) -> str:
    """``raw`` made safe for NetSuite's ``[A-Za-z0-9_-]``, injectively: letters, digits and ``-`` stay,
    ``_`` doubles, any other character becomes ``_`` + the hex of its UTF-8 bytes (``a.b`` -> ``a_2eb``)."""
    if not raw:
        raise ValueError("an external id needs at least one character")
    out: list[str] = []
    for char in raw:
        if _SAFE_CHAR.fullmatch(char):
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.append("".join(f"_{byte:02x}" for byte in char.encode("utf-8")))
    return "".join(out)


def customer_external_id(account: Account) -> str:
    return safe_external_id(f"sf-{account.crm_id}")


def project_external_id(project: Project) -> str:
    return safe_external_id(f"sf-opp-{project.opportunity_crm_id}")


# ---------------------------------------------------------------------------------------------- requests


def currency_reference(code: str, currency_ids: Mapping[str, str] | None) -> dict[str, str] | None:
    """The currency as a NetSuite reference: ``{"id"}`` from the account's table; ``{"refName"}`` only when
    the account has no table at all; None when the table does not know the currency (the account lacks it)."""
    if currency_ids is None:
        return _ref_by_name(code)
    internal_id = currency_ids.get(code)
    return _ref_by_id(internal_id) if internal_id else None


def customer_body(account: Account, *, subsidiary_id: str, currency: Mapping[str, str]) -> dict[str, Any]:
    """``currency`` is the reference from :func:`currency_reference`."""
    return {
        **CUSTOMER.dump(account),
        "subsidiary": _ref_by_id(subsidiary_id),
        "currency": dict(currency),
        "externalId": customer_external_id(account),
    }


def job_body(
    project: Project,
    *,
    customer_id: str,
    subsidiary_id: str,
    currency: Mapping[str, str],
    billing_schedule_id: str | None = None,
) -> dict[str, Any]:
    body = {
        **JOB.dump(project),
        "currency": dict(currency),
        "parent": _ref_by_id(customer_id),
        "subsidiary": _ref_by_id(subsidiary_id),
        "externalId": project_external_id(project),
    }
    if billing_schedule_id is not None:
        body["billingSchedule"] = _ref_by_id(billing_schedule_id)
    return body


# ----------------------------------------------------------------------------------------------- answers

_INTERNAL_ID = re.compile(r"^[0-9]+$")


def internal_id_from_location(location: str | None) -> str | None:
    """The internal id at the end of a ``Location`` header (``.../record/v1/customer/647`` -> ``647``)."""
    if not location:
        return None
    path = urlsplit(location.strip()).path.rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    return last if _INTERNAL_ID.fullmatch(last) else None


def record_id(answer: Any) -> str | None:
    """The internal id of a record read back (``GET .../eid:{externalId}``)."""
    if isinstance(answer, Mapping) and answer.get("id") is not None:
        value = str(answer["id"])
        return value if _INTERNAL_ID.fullmatch(value) else None
    return None


def error_details(answer: Any) -> list[Mapping[str, Any]]:
    details = answer.get("o:errorDetails") if isinstance(answer, Mapping) else None
    return [d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else []


def error_codes(answer: Any) -> list[str]:
    return [str(d["o:errorCode"]) for d in error_details(answer) if d.get("o:errorCode")]


def validation_problems(answer: Any) -> list[dict[str, str]]:
    """``o:errorDetails`` as the hub's problems. The field is ``o:errorPath`` (or the query parameter or
    header at fault) when NetSuite names one, otherwise ``record``."""
    problems: list[dict[str, str]] = []
    for detail in error_details(answer):
        where = detail.get("o:errorPath") or detail.get("o:errorQueryParam") or detail.get("o:errorHeader")
        problems.append(
            {
                "field": str(where or "record"),
                "problem": str(detail.get("detail") or ""),
                "code": str(detail.get("o:errorCode") or ""),
            }
        )
    return problems
