"""Canonical -> NetSuite REST record bodies, external ids, and NetSuite answers -> ids and problems.

References (subsidiary, parent customer, currency, billing schedule) are sent as ``{"id": internal id}``, as
NetSuite documents them. Currency internal ids are per account, so the adapter is given the account's table
(ISO code -> internal id); ``{"refName": code}`` is only a fallback for an account configured without one
(NetSuite does not promise to resolve a currency by name).

Time and expenses (issue 3): records the hub owns or shares with another system are referenced by their
external id, ``{"externalId"}``, which NetSuite resolves like an internal id: the employee by the HCM worker id,
the project (job) by the hub's ``sf-opp-...`` id it was upserted with, the project task by
:func:`task_external_id`. Lists whose ids differ per account (expense categories, tax codes, the service item,
accounting periods) go by internal id from the adapter's configuration or from the account itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from hub.mapping.fields import Field, FieldMap, date_out, lookup, money_amount_out
from hub.model import (
    Account,
    AccountingCalendar,
    AccountingPeriod,
    BillingType,
    ExpenseLine,
    PeriodStatus,
    Project,
    ProjectRef,
    TaskRef,
    TaxKind,
    TimeEntry,
)

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


# ------------------------------------------------------------------------------ time and expenses (issue 3)


def time_external_id(entry: TimeEntry) -> str:
    """``te-{psa id}-v{version}``: a redelivery upserts the same time bill, a new version is another one.
    PSA ids are already ``[A-Za-z0-9_-]`` and the version only digits, so the id is injective as it is."""
    return f"te-{entry.psa_id}-v{entry.version}"


def expense_external_id(line: ExpenseLine) -> str:
    """``ex-{psa id}-v{version}``: one expense report per expense line and version."""
    return f"ex-{line.psa_id}-v{line.version}"


def task_external_id(project: ProjectRef, task: TaskRef) -> str:
    """The project task's external id: the project's external id and the task's WBS code (``1.2`` ->
    ``sf-opp-X-wbs-1_2e2``), the key whoever creates the project's tasks in NetSuite must give them."""
    return safe_external_id(f"{project.external_id}-wbs-{task.wbs_code}")


def memo(psa_id: str, version: int, original_date: dt.date | None = None) -> str:
    """The hub's reference on the record (``pshub:TE-1:v2``), plus the original date when it is not the
    record's own transaction date."""
    text = f"pshub:{psa_id}:v{version}"
    return text if original_date is None else f"{text} (dated {original_date.isoformat()})"


def number_out(value: Decimal) -> int | float:
    """A JSON number (NetSuite refuses amounts and durations as strings); integers stay integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def timebill_body(
    entry: TimeEntry,
    *,
    tran_date: dt.date,
    original_date: dt.date,
    subsidiary_id: str,
    service_item_id: str | None,
    project_tasks: bool,
) -> dict[str, Any]:
    """A ``timebill`` (Track Time). ``tran_date`` decides its accounting period (a time bill has no posting
    period of its own); when it is not the original date, the memo keeps the original one."""
    body: dict[str, Any] = {
        "externalId": time_external_id(entry),
        "employee": {"externalId": entry.worker_id},
        "tranDate": tran_date.isoformat(),
        "hours": number_out(entry.hours),
        "customer": {"externalId": entry.project.external_id},
        "isBillable": entry.billable,
        "subsidiary": _ref_by_id(subsidiary_id),
        "memo": memo(entry.psa_id, entry.version, None if tran_date == original_date else original_date),
    }
    if project_tasks and entry.task is not None:
        body["caseTaskEvent"] = {"externalId": task_external_id(entry.project, entry.task)}
    if entry.billable and service_item_id is not None:
        body["item"] = _ref_by_id(service_item_id)
    return body


def expense_amounts(
    gross: Decimal, net: Decimal, tax: Decimal, kind: TaxKind, tax_code_id: str | None
) -> dict[str, Any]:
    """The line's amount fields. With a tax code: ``amount`` is the net, and for tax paid to the supplier
    ``tax1Amt`` + ``grossAmt`` pin the hub's rounding (a reverse charge is self-assessed by NetSuite from
    its code: the supplier was paid the net). Without one (an account that books the tax as cost, e.g. US
    sales tax without SuiteTax): ``amount`` is the gross."""
    if tax_code_id is None:
        return {"amount": number_out(gross)}
    amounts: dict[str, Any] = {"amount": number_out(net), "taxCode": _ref_by_id(tax_code_id)}
    if kind is not TaxKind.REVERSE_CHARGE:
        amounts.update(tax1Amt=number_out(tax), grossAmt=number_out(gross))
    return amounts


def expense_report_body(
    line: ExpenseLine,
    *,
    tran_date: dt.date,
    posting_period_id: str,
    subsidiary_id: str,
    currency: Mapping[str, str],
    category_id: str,
    amounts: Mapping[str, Any],
) -> dict[str, Any]:
    """An ``expensereport`` holding this one line: the original date as ``tranDate`` and the decided
    ``postingPeriod`` (NetSuite accepts a report dated in a closed period into a later open one). The PSA
    approval is the supervisor's; accounting approval stays with finance. Upsert it with
    ``?replace=expense`` so a redelivery replaces the line instead of appending a second one."""
    reference = memo(line.psa_id, line.version)
    item: dict[str, Any] = {
        "expenseDate": line.expense_date.isoformat(),
        "category": _ref_by_id(category_id),
        "currency": dict(currency),
        **amounts,
        "receipt": line.receipt_attached,
        "isBillable": line.billable,
        "customer": {"externalId": line.project.external_id},
        "memo": f"{reference} {line.merchant}" if line.merchant else reference,
    }
    return {
        "externalId": expense_external_id(line),
        "entity": {"externalId": line.worker_id},
        "tranDate": tran_date.isoformat(),
        "postingPeriod": _ref_by_id(posting_period_id),
        "subsidiary": _ref_by_id(subsidiary_id),
        "currency": dict(currency),
        "memo": reference,
        "supervisorApproval": True,
        "expense": {"items": [item]},
    }


# ----------------------------------------------------------------------------------- accounting periods

PERIODS_QUERY = (
    "SELECT id, periodname, startdate, enddate, closed, aplocked, alllocked, isadjust, isinactive "
    "FROM accountingperiod WHERE isposting = 'T' ORDER BY startdate"
)
"""The account's posting periods (months, not quarters or years), through SuiteQL: one call for all."""

_PERIOD_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass(frozen=True)
class NetSuitePeriod:
    internal_id: str
    name: str  # the canonical name (NetSuite's, made safe: "Jan 2025" -> "Jan-2025")
    netsuite_name: str
    start_date: dt.date
    end_date: dt.date
    closed: bool

    def contains(self, day: dt.date) -> bool:
        return self.start_date <= day <= self.end_date


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().upper() in ("T", "TRUE")


def suiteql_date(value: Any) -> dt.date:
    """SuiteQL renders dates in the account's format; ``M/D/YYYY`` (the default) and ISO are read."""
    text = str(value or "").strip()
    match = _US_DATE.fullmatch(text)
    if match:
        month, day, year = (int(part) for part in match.groups())
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text[:10])


def period_name(netsuite_name: str) -> str:
    """NetSuite's period name as a canonical ``PeriodName`` (letters, digits, ``_.-``; 32 at most)."""
    name = _PERIOD_NAME_BAD.sub("-", netsuite_name.strip()).strip("-._")
    return (name or "period")[:32]


def periods_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[NetSuitePeriod]:
    """SuiteQL rows -> periods, without adjustment and inactive periods (they overlap the months). Closed,
    all-locked and A/P-locked periods count as closed (expense reports are A/P; the hub never posts where
    NetSuite would refuse it). Names made safe stay unique (the internal id is appended to a repeat)."""
    periods: list[NetSuitePeriod] = []
    seen: set[str] = set()
    for row in rows:
        if _flag(row.get("isadjust")) or _flag(row.get("isinactive")):
            continue
        netsuite_name = str(row.get("periodname") or row["id"])
        name = period_name(netsuite_name)
        if name in seen:
            name = period_name(f"{name[:20]}-{row['id']}")
        seen.add(name)
        periods.append(
            NetSuitePeriod(
                internal_id=str(row["id"]),
                name=name,
                netsuite_name=netsuite_name,
                start_date=suiteql_date(row.get("startdate")),
                end_date=suiteql_date(row.get("enddate")),
                closed=any(_flag(row.get(flag)) for flag in ("closed", "alllocked", "aplocked")),
            )
        )
    return periods


def accounting_calendar(legal_entity_code: str, periods: Iterable[NetSuitePeriod]) -> AccountingCalendar:
    return AccountingCalendar(
        legal_entity_code=legal_entity_code,
        periods=tuple(
            AccountingPeriod(
                legal_entity_code=legal_entity_code,
                name=p.name,
                start_date=p.start_date,
                end_date=p.end_date,
                status=PeriodStatus.CLOSED if p.closed else PeriodStatus.OPEN,
            )
            for p in periods
        ),
    )


# A malformed date is the hub's data error, not the period's.
_NOT_ABOUT_THE_PERIOD = frozenset({"INVALID_CONTENT", "INVALID_VALUE", "INVALID_FLD_VALUE"})


def period_problems(problems: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """The problems where NetSuite refused the transaction's period: any problem on ``postingPeriod``, and
    those on ``tranDate`` other than a malformed value (closed, locked, or no period covers the date)."""
    return [
        dict(p)
        for p in problems
        if p.get("field") == "postingPeriod"
        or (p.get("field") == "tranDate" and p.get("code") not in _NOT_ABOUT_THE_PERIOD)
    ]
