"""Canonical -> Business Central API v2.0 bodies, the hub's references, OData filters and `$batch` operations,
and Business Central answers -> errors' codes and the accounting calendar.

Business Central has no upsert by an external key, so the hub writes its own reference on what it creates and
looks it up before creating again:

- a purchase invoice (an expense line) carries it in ``vendorInvoiceNumber`` (``Code[35]``, upper-cased by
  BC): :func:`expense_reference`;
- a time registration entry has no reference field at all; the hub sets ``lineNumber`` to a number derived from
  its reference (:func:`line_number`) and finds the entry again by employee, date and that number.

References are built upper-case (BC upper-cases code fields) and stay injective: a PSA id with lower-case
letters, or too long for 35 characters, is replaced by a hash of it under a different prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from hub.model import (
    AccountingCalendar,
    AccountingPeriod,
    ExpenseLine,
    PeriodStatus,
    TaxTreatment,
    TimeEntry,
)

SCOPE = "https://api.businesscentral.dynamics.com/.default"
API_HOST = "https://api.businesscentral.dynamics.com"
LOGIN_HOST = "https://login.microsoftonline.com"
REFERENCE_LENGTH = 35  # purchaseInvoice.vendorInvoiceNumber is a Code[35]
LINE_NUMBERS = 2**30 - 1  # an Integer field: leave headroom for BC's own numbering (+10000 steps)
EMPTY_DATE = "0001-01-01"  # how BC renders a date that is not set
DESCRIPTION_LENGTH = 100


def api_root(tenant_id: str, environment: str) -> str:
    return f"{API_HOST}/v2.0/{tenant_id}/{environment}/api/v2.0"


def token_url(tenant_id: str) -> str:
    return f"{LOGIN_HOST}/{tenant_id}/oauth2/v2.0/token"


# --------------------------------------------------------------------------------------------- references


def reference(kind: str, psa_id: str, version: int) -> str:
    """``{kind}-{PSA id}-V{version}`` (``EX-88123-V2``), or ``{kind}H-{hash of the PSA id}-V{version}`` when the
    PSA id has lower-case letters (BC would upper-case them, merging two ids) or the result exceeds 35
    characters. ValueError when even the hashed form does not fit (a version of more than 16 digits)."""
    plain = f"{kind}-{psa_id}-V{version}"
    if psa_id == psa_id.upper() and len(plain) <= REFERENCE_LENGTH:
        return plain
    digest = hashlib.sha256(psa_id.encode()).hexdigest()[:12].upper()
    hashed = f"{kind}H-{digest}-V{version}"
    if len(hashed) > REFERENCE_LENGTH:
        raise ValueError(f"version {version} is too long for a {REFERENCE_LENGTH}-character reference")
    return hashed


def time_reference(entry: TimeEntry) -> str:
    return reference("TE", entry.psa_id, entry.version)


def expense_reference(line: ExpenseLine) -> str:
    return reference("EX", line.psa_id, line.version)


def line_number(ref: str) -> int:
    """The time registration entry's ``lineNumber`` for a reference: stable, in ``[1, 2**30 - 1]``. Found again
    together with the employee and the date, so two entries collide only with the same worker, day and one
    chance in about a billion."""
    return 1 + int(hashlib.sha256(ref.encode()).hexdigest()[:15], 16) % (LINE_NUMBERS - 1)


# ------------------------------------------------------------------------------------------------- OData


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def time_lookup_term(employee_number: str, day: dt.date, number: int) -> str:
    return f"employeeNumber eq {odata_string(employee_number)} and date eq {day.isoformat()} and lineNumber eq {number}"


def invoice_lookup_term(ref: str) -> str:
    return f"vendorInvoiceNumber eq {odata_string(ref)}"


def query_url(path: str, *, filter_terms: Iterable[str], select: Iterable[str]) -> str:
    """A relative URL with ``$filter`` (the terms OR-ed: ``and`` binds tighter in OData) and ``$select``,
    percent-encoded for a ``$batch`` operation."""
    expression = " or ".join(filter_terms)
    return f"{path}?$filter={quote(expression, safe='')}&$select={quote(','.join(select), safe=',')}"


def operation(
    op_id: str,
    method: str,
    url: str,
    *,
    body: Mapping[str, Any] | None = None,
    etag: str | None = None,
) -> dict[str, Any]:
    """One JSON ``$batch`` operation (``url`` relative to the API root)."""
    headers: dict[str, str] = {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if etag is not None:
        headers["If-Match"] = etag
    op: dict[str, Any] = {"method": method, "id": op_id, "url": url, "headers": headers}
    if body is not None:
        op["body"] = dict(body)
    return op


def company_path(company_id: str, entity: str) -> str:
    return f"companies({company_id})/{entity}"


# ----------------------------------------------------------------------------------------------- bodies


def number_out(value: Decimal) -> int | float:
    """A JSON number (``Edm.Decimal`` refuses strings); integers stay integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def time_entry_body(
    entry: TimeEntry,
    *,
    day: dt.date,
    employee_number: str,
    job_number: str,
    number: int,
) -> dict[str, Any]:
    """A ``timeRegistrationEntry`` on the work date (a time sheet line is dated when the work was done; the
    posting date is chosen when BC posts the time sheet), against the project task by its WBS code."""
    body: dict[str, Any] = {
        "employeeNumber": employee_number,
        "jobNumber": job_number,
        "date": day.isoformat(),
        "quantity": number_out(entry.hours),
        "lineNumber": number,
    }
    if entry.task is not None:
        body["jobTaskNumber"] = entry.task.wbs_code
    return body


def purchase_invoice_body(
    line: ExpenseLine,
    tax: TaxTreatment,
    *,
    ref: str,
    vendor_number: str,
    account_number: str,
    tax_code: str | None,
    posting_date: dt.date,
    document_date: dt.date,
    currency_code: str,
) -> dict[str, Any]:
    """A purchase invoice from the worker (as a vendor) with one G/L account line, deep-inserted in one POST.

    ``postingDate`` is the decided posting date, ``invoiceDate`` (the document date) the original one. The
    line's cost is the gross the worker paid: tax included for tax paid to the supplier (BC takes the tax
    back out with the hub's formula), excluded for a reverse charge (BC self-assesses it from the code); no
    tax code where the entity books the tax as cost."""
    invoice_line: dict[str, Any] = {
        "lineType": "Account",
        "lineObjectNumber": account_number,
        "description": description(line),
        "quantity": 1,
        "unitCost": number_out(tax.gross.amount),
    }
    if tax_code is not None:
        invoice_line["taxCode"] = tax_code
    return {
        "vendorNumber": vendor_number,
        "vendorInvoiceNumber": ref,
        "invoiceDate": document_date.isoformat(),
        "postingDate": posting_date.isoformat(),
        "currencyCode": currency_code,
        "pricesIncludeTax": not tax.reverse_charge,
        "purchaseInvoiceLines": [invoice_line],
    }


def description(line: ExpenseLine) -> str:
    text = f"pshub {line.psa_id} v{line.version} {line.category.value.replace('_', ' ')}"
    if line.merchant:
        text = f"{text} - {line.merchant}"
    return text[:DESCRIPTION_LENGTH]


# ---------------------------------------------------------------------------------------------- answers


def error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    return str(code) if code else None


def error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    return str(message or "")


def collection(body: Any) -> list[Mapping[str, Any]]:
    values = body.get("value") if isinstance(body, Mapping) else None
    return [v for v in values if isinstance(v, Mapping)] if isinstance(values, list) else []


# ------------------------------------------------------------------------------------ accounting calendar


def _date(value: Any) -> dt.date | None:
    if value in (None, "", EMPTY_DATE):
        return None
    return dt.date.fromisoformat(str(value)[:10])


def _month_after(day: dt.date) -> dt.date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(year=year, month=month, day=min(day.day, 28))


def refused_for_posting_date(problems: Iterable[Mapping[str, Any]]) -> bool:
    """Whether BC refused ``Microsoft.NAV.post`` for the posting date (outside the allowed posting dates). BC
    gives that refusal no code of its own (``Application_FieldValidationException``, as for any field), so
    this reads its message, "Posting Date is not within your range of allowed posting dates."; it labels the
    reason only, never whether the error is retried."""
    return any("posting date" in str(p.get("problem", "")).lower() for p in problems)


def accounting_calendar(
    legal_entity_code: str,
    periods: Iterable[Mapping[str, Any]],
    setup: Mapping[str, Any] | None,
) -> AccountingCalendar:
    """BC's ``accountingPeriods`` and ``generalLedgerSetup`` as the entity's calendar.

    A BC period has only a starting date: it ends the day before the next one starts (the last one is taken to
    last a month). A period is closed when its fiscal year is closed or when no day of it lies within the
    allowed posting dates (``allowPostingFrom`` / ``allowPostingTo``, what BC really checks when it posts).
    ``dateLocked`` only freezes the period's starting date, so it does not close anything. Names become
    canonical period names from the starting month (``2026-11``), since BC's are month names only."""
    rows = sorted(
        ((start, row) for row in periods if (start := _date(row.get("startingDate"))) is not None),
        key=lambda pair: pair[0],
    )
    allow_from = _date((setup or {}).get("allowPostingFrom"))
    allow_to = _date((setup or {}).get("allowPostingTo"))
    out = []
    for index, (start, row) in enumerate(rows):
        following = rows[index + 1][0] if index + 1 < len(rows) else _month_after(start)
        end = following - dt.timedelta(days=1)
        outside = (allow_from is not None and end < allow_from) or (allow_to is not None and start > allow_to)
        out.append(
            AccountingPeriod(
                legal_entity_code=legal_entity_code,
                name=f"{start:%Y-%m}" if start.day == 1 else start.isoformat(),
                start_date=start,
                end_date=end,
                status=PeriodStatus.CLOSED if row.get("closed") is True or outside else PeriodStatus.OPEN,
            )
        )
    return AccountingCalendar(legal_entity_code=legal_entity_code, periods=tuple(out))
