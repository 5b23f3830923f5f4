"""Dynamics 365 Business Central (ERP) adapter over API v2.0: time and expenses posted in JSON ``$batch`` requests.

- Auth: OAuth 2.0 client credentials at Microsoft Entra ID (``POST /{tenant}/oauth2/v2.0/token`` with
  ``scope=https://api.businesscentral.dynamics.com/.default``), cached and shared by every call.
- Base: ``https://api.businesscentral.dynamics.com/v2.0/{tenant}/{environment}/api/v2.0``; everything is
  company-scoped, and the routed ``subsidiary_id`` of an item IS the BC company id.
- Time: one ``timeRegistrationEntries`` POST per entry. Expenses: one purchase invoice per expense line, from
  the worker's vendor record, created with its line in one POST (deep insert), then posted with the bound
  action ``Microsoft.NAV.post`` (BC checks the allowed posting dates, and refuses a second posted invoice
  with the same vendor invoice number, only then).
- Every operation travels in a ``$batch`` of at most 100 (one request against BC's 6,000-per-5-minutes
  window, whatever it carries); each operation is answered with its own status and becomes its item's
  ``PostingResult``. Batches are not transactional (no ``Isolation: snapshot``): one bad entry must not roll
  back the 99 others.

Idempotency without an upsert: BC's POST always creates. Before creating, one batched GET looks every item up by
the hub's reference (``hub.mapping.business_central``): an invoice by ``vendorInvoiceNumber``, a time entry by
employee, date and the ``lineNumber`` derived from its reference. What is found is not created again, so a
redelivery, a sweep overlap or a DLQ redrive answers the record already there (``created=False``). A crash (or a
lost answer) between BC's create and the hub's record of it is caught the same way on the next delivery. An
ambiguous batch failure (timeout, 5xx) is never replayed blind: its items come back as ``TransientError`` and
the next call looks them up first. Two deliveries of one entry running at the same moment could both miss each
other's record; the hub's idempotency record (entry id + version, held while in progress) keeps them apart.
Should copies exist anyway, the next lookup that sees them answers the first and deletes the others still open
(time entries not yet submitted, invoice drafts; BC itself refuses to post a second invoice with the same vendor
invoice number).

Throttling: the 429 of the request window (``Application_TooManyRequests``, with ``Retry-After``) is a
``ThrottledError``; the ``ApiClient`` retries it within its sleep budget (a refused ``$batch`` was not
processed, so replaying it is safe), and what is still throttled after that comes back in the results for the
caller to retry, without sending the rest of the call's batches.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from hub.connectors.ports import CLOSED_PERIOD, PostExpense, PostingResult, PostTime
from hub.errors import (
    ConflictError,
    DataValidationError,
    HubError,
    PermanentError,
    ThrottledError,
    TransientError,
    mapped,
    unmapped,
)
from hub.mapping import business_central as bm
from hub.model import AccountingCalendar, ExpenseCategory, PostingAction, PostingDecision

logger = logging.getLogger("hub.connectors")

SYSTEM = "business-central"
MAX_BATCH = 100
BATCH_PATH = "/$batch"
DRAFT = "Draft"  # a purchase invoice not yet posted
OPEN = "Open"  # a time registration entry not yet submitted
TIME_ENTITY = "timeRegistrationEntries"
INVOICE_ENTITY = "purchaseInvoices"
TIME_SELECT = ("id", "employeeNumber", "date", "lineNumber", "status")
INVOICE_SELECT = (
    "id",
    "number",
    "vendorInvoiceNumber",
    "vendorNumber",
    "status",
    "postingDate",
    "invoiceDate",
)

# error.code -> taxonomy class, whatever the status (the status decides the rest).
ERROR_CODES: dict[str, type[HubError]] = {
    "Application_TooManyRequests": ThrottledError,
    "Request_EntityChanged": ConflictError,
    "Internal_ServiceUnavailable": TransientError,
    "Internal_ServerError": TransientError,
    "Authentication_InvalidCredentials": PermanentError,
    "BadRequest_InvalidToken": PermanentError,  # a PATCH/DELETE without If-Match: the hub's own bug
    "BadRequest_MethodNotAllowed": PermanentError,
    "BadRequest_ResourceNotFound": PermanentError,
    "Internal_CompanyNotFound": PermanentError,
}


def classify_for(system: str) -> Classifier:
    def classify(response: httpx.Response) -> HubError | None:
        """Business Central's answer onto the taxonomy: on the status and ``error.code``, never on text."""
        status = response.status_code
        if status < 300:
            return None
        body = parse_json(response)
        code = bm.error_code(body)
        kind = ERROR_CODES.get(code or "")
        if status == 429 or kind is ThrottledError:
            return ThrottledError(
                f"{system} request limit", retry_after=retry_after_of(response), system=system, code=code
            )
        if status >= 500 or kind is TransientError:
            return classify_status(response, system=system, code=code)
        if kind is PermanentError or status in (401, 403, 404):
            return PermanentError(f"{system} answered {status}", system=system, code=code or str(status))
        if kind is ConflictError or status in (409, 412):
            return ConflictError(f"{system} answered a conflict", system=system, code=code or str(status))
        if status == 400:
            problem = {"field": "record", "problem": bm.error_message(body), "code": code or "400"}
            return DataValidationError(
                f"{system} rejected the data", problems=[problem], system=system, code=code
            )
        return classify_status(response, system=system, code=code)

    return classify


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    headers: Mapping[str, str]

    def response(self) -> httpx.Response:
        """The operation's answer as a response of its own, for the classifier."""
        if self.body is None:
            return httpx.Response(self.status, headers=self.headers)
        content = json.dumps(self.body, default=str).encode()  # numbers were read as Decimal
        return httpx.Response(
            self.status, content=content, headers={**self.headers, "content-type": "application/json"}
        )


@dataclass
class _Item:
    """One distinct reference of a call: the positions it was asked at, and what to send for it."""

    positions: list[int]
    psa_id: str
    version: int
    ref: str
    company: str
    body: dict[str, Any]
    lookup_term: str
    decision: PostingDecision
    result: PostingResult | None = None
    found: list[Mapping[str, Any]] = field(default_factory=list)


class BusinessCentralErp:
    """``ErpPostingPort`` over Business Central API v2.0 (one per environment; companies are subsidiaries).

    Numbers BC knows the hub's records by: ``employee_numbers`` (worker id -> employee No.), ``vendor_numbers``
    (worker id -> the vendor No. expenses are reimbursed through) and ``job_numbers`` (PSA project id ->
    project No.) default to the hub's own ids; ``expense_accounts`` (category -> G/L account No.) and
    ``tax_codes`` (the hub's tax code -> BC tax code, or None where the tax is booked as cost) are required for
    expenses. ``local_currency``: the companies' local currency, sent as BC's empty currency code.
    ``post_invoices=False`` leaves purchase invoices as drafts for finance to post.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str | None,
        environment: str = "production",
        system: str = SYSTEM,
        base_url: str | None = None,
        token_url: str | None = None,
        retry: RetryPolicy | None = None,
        employee_numbers: Mapping[str, str] | None = None,
        vendor_numbers: Mapping[str, str] | None = None,
        job_numbers: Mapping[str, str] | None = None,
        expense_accounts: Mapping[ExpenseCategory, str] | None = None,
        tax_codes: Mapping[str, str | None] | None = None,
        local_currency: str | None = None,
        post_invoices: bool = True,
        batch_size: int = MAX_BATCH,
        lookup_terms: int = 20,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH or lookup_terms < 1:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH} and lookup_terms >= 1")
        self.system = system
        self._auth = OAuth2ClientCredentials(
            client,
            token_url=token_url or bm.token_url(tenant_id),
            client_id=client_id,
            client_secret=client_secret,
            system=system,
            extra_form={"scope": bm.SCOPE},
        )
        self._api = ApiClient(
            client,
            system=system,
            base_url=base_url or bm.api_root(tenant_id, environment),
            auth=self._auth,
            classify=classify_for(system),
            retry=retry,
        )
        self._classify = classify_for(system)
        self._employees = dict(employee_numbers or {})
        self._vendors = dict(vendor_numbers or {})
        self._jobs = dict(job_numbers or {})
        self._accounts = dict(expense_accounts or {})
        self._tax_codes = dict(tax_codes or {})
        self._local_currency = local_currency
        self._post_invoices = post_invoices
        self._batch_size = batch_size
        self._lookup_terms = lookup_terms

    # ---------------------------------------------------------------------------------- ErpPostingPort

    def accounting_calendar(self, legal_entity_code: str, *, subsidiary_id: str) -> AccountingCalendar:
        """The company's ``accountingPeriods`` and its ``generalLedgerSetup`` (allowed posting dates), read in
        one ``$batch``, as the entity's calendar (see ``hub.mapping.business_central.accounting_calendar``)."""
        periods_url = bm.company_path(subsidiary_id, "accountingPeriods") + "?$orderby=startingDate"
        setup_url = bm.company_path(subsidiary_id, "generalLedgerSetup")
        answers = self._send_batch(
            [bm.operation("periods", "GET", periods_url), bm.operation("setup", "GET", setup_url)]
        )
        for op_id in ("periods", "setup"):
            answer = answers.get(op_id)
            if answer is None:
                raise TransientError(
                    f"{self.system} left a read unanswered", system=self.system, code="no_answer"
                )
            error = self._classify(answer.response())
            if error is not None:
                raise error
        setups = bm.collection(answers["setup"].body)
        try:
            return bm.accounting_calendar(
                legal_entity_code, bm.collection(answers["periods"].body), setups[0] if setups else None
            )
        except ValueError as exc:  # pydantic's ValidationError is one
            raise DataValidationError(
                f"{self.system} answered accounting periods the hub cannot use",
                problems=[{"field": "accountingPeriods", "problem": type(exc).__name__}],
                system=self.system,
                code="bad_period",
            ) from None

    def post_time_entries(self, items: Sequence[PostTime]) -> list[PostingResult]:
        """Look every entry up (one batched GET per call, 20 entries per filter), create the missing ones in
        ``$batch`` requests of up to 100; about 11 requests per 1,000 entries."""
        results: list[PostingResult | None] = [None] * len(items)
        distinct: dict[str, _Item] = {}
        for position, request in enumerate(items):
            entry = request.entry
            try:
                _require_post(request.decision, self.system)
                ref = bm.time_reference(entry)
                number = bm.line_number(ref)
                employee = self._employees.get(entry.worker_id, entry.worker_id)
                day = request.decision.original_date
                body = bm.time_entry_body(
                    entry,
                    day=day,
                    employee_number=employee,
                    job_number=self._jobs.get(entry.project.psa_project_id, entry.project.psa_project_id),
                    number=number,
                )
            except (HubError, ValueError) as exc:
                results[position] = PostingResult(entry.psa_id, entry.version, error=self._as_error(exc))
                continue
            _add(distinct, position, ref, entry.psa_id, entry.version, request, body)
            distinct[ref].lookup_term = bm.time_lookup_term(employee, day, number)

        by_key = {
            (i.body["employeeNumber"], i.body["date"], i.body["lineNumber"]): i.ref for i in distinct.values()
        }

        def key(record: Mapping[str, Any]) -> str | None:
            found = (
                str(record.get("employeeNumber")),
                str(record.get("date")),
                _int(record.get("lineNumber")),
            )
            return by_key.get(found)

        for company, group in _by_company(distinct.values()).items():
            self._look_up(company, TIME_ENTITY, TIME_SELECT, group, key)
            self._create_time_of(company, group)
        return _spread(results, distinct.values())

    def post_expense_lines(self, items: Sequence[PostExpense]) -> list[PostingResult]:
        """Look every line's invoice up (one batched GET), create the missing ones (deep insert) in batches of
        up to 100, then post the drafts with ``Microsoft.NAV.post`` in batches of up to 100; about 21 requests
        per 1,000 lines (11 with ``post_invoices=False``). One purchase invoice per line: a posted invoice
        cannot take lines that are approved later, and each line keeps its own version."""
        results: list[PostingResult | None] = [None] * len(items)
        distinct: dict[str, _Item] = {}
        vendor_of: dict[str, str] = {}
        for position, request in enumerate(items):
            line, decision = request.line, request.decision
            try:
                posting_date = _require_post(request.decision, self.system)
                ref = bm.expense_reference(line)
                vendor = self._vendors.get(line.worker_id, line.worker_id)
                body = bm.purchase_invoice_body(
                    line,
                    request.tax,
                    ref=ref,
                    vendor_number=vendor,
                    account_number=self._account(line.category),
                    tax_code=self._tax_code(request.tax.code),
                    posting_date=posting_date,
                    document_date=decision.original_date,
                    currency_code="" if line.gross.currency == self._local_currency else line.gross.currency,
                )
            except (HubError, ValueError) as exc:
                results[position] = PostingResult(line.psa_id, line.version, error=self._as_error(exc))
                continue
            _add(distinct, position, ref, line.psa_id, line.version, request, body)
            distinct[ref].lookup_term = bm.invoice_lookup_term(ref)
            vendor_of[ref] = vendor

        def key(record: Mapping[str, Any]) -> str | None:
            ref = str(record.get("vendorInvoiceNumber"))
            return ref if vendor_of.get(ref) == str(record.get("vendorNumber")) else None

        for company, group in _by_company(distinct.values()).items():
            self._look_up(company, INVOICE_ENTITY, INVOICE_SELECT, group, key)
            self._post_invoices_of(company, group, key)
        return _spread(results, distinct.values())

    # -------------------------------------------------------------------------------------- time entries

    def _create_time_of(self, company: str, group: list[_Item]) -> None:
        entries = bm.company_path(company, TIME_ENTITY)
        writes: list[tuple[_Item | None, dict[str, Any]]] = []
        for item in group:
            if item.result is not None:
                continue
            if not item.found:
                writes.append((item, bm.operation("", "POST", entries, body=item.body)))
                continue
            keep, *surplus = item.found
            item.result = PostingResult(item.psa_id, item.version, erp_id=str(keep["id"]))
            # Copies left by a race would double the hours: remove those still open (best effort).
            writes += [(None, _delete(entries, copy)) for copy in surplus if copy.get("status") == OPEN]
        for item, answer in self._run(writes):
            if item is None:
                _note_deletion(answer, self.system)
                continue
            written = self._written(answer)
            item.result = (
                PostingResult(item.psa_id, item.version, error=written)
                if isinstance(written, HubError)
                else PostingResult(item.psa_id, item.version, erp_id=written, created=True)
            )

    # ------------------------------------------------------------------------------------------ invoices

    def _post_invoices_of(
        self, company: str, group: list[_Item], key: Callable[[Mapping[str, Any]], str | None]
    ) -> None:
        invoices = bm.company_path(company, INVOICE_ENTITY)
        writes: list[tuple[_Item | None, dict[str, Any]]] = []
        kinds: dict[int, str] = {}
        ready: list[tuple[_Item, str, bool]] = []  # (item, invoice id, created by this call)
        for item in group:
            if item.result is not None:
                continue
            posted = [r for r in item.found if r.get("status") != DRAFT]
            drafts = [r for r in item.found if r.get("status") == DRAFT]
            keep = posted[0] if posted else (drafts[0] if drafts else None)
            for surplus in (d for d in drafts if d is not keep):  # left by a race or a crash: never posted
                writes.append((None, _delete(invoices, surplus)))
            if keep is None:
                kinds[len(writes)] = "create"
                writes.append((item, bm.operation("", "POST", invoices, body=item.body)))
            elif posted or not self._post_invoices:
                item.result = PostingResult(item.psa_id, item.version, erp_id=str(keep["id"]))
            elif (keep.get("postingDate"), keep.get("invoiceDate")) != (
                item.body["postingDate"],
                item.body["invoiceDate"],
            ):  # a draft left by an earlier decision (e.g. refused for its period): date it as decided now
                kinds[len(writes)] = "patch"
                dates = {"postingDate": item.body["postingDate"], "invoiceDate": item.body["invoiceDate"]}
                member = f"{invoices}({keep['id']})"
                writes.append(
                    (item, bm.operation("", "PATCH", member, body=dates, etag=keep.get("@odata.etag")))
                )
            else:
                ready.append((item, str(keep["id"]), False))
        for index, (item, answer) in enumerate(self._run(writes)):
            if item is None:
                _note_deletion(answer, self.system)
                continue
            invoice_id = self._written(answer)
            if isinstance(invoice_id, HubError):
                item.result = PostingResult(item.psa_id, item.version, error=invoice_id)
            elif self._post_invoices:
                ready.append((item, invoice_id, kinds[index] == "create"))
            else:
                item.result = PostingResult(item.psa_id, item.version, erp_id=invoice_id, created=True)
        posts = [
            (item, bm.operation("", "POST", f"{invoices}({invoice_id})/Microsoft.NAV.post"))
            for item, invoice_id, _ in ready
        ]
        refused: list[tuple[_Item, str, DataValidationError]] = []
        for (item, invoice_id, created), (_, answer) in zip(ready, self._run(posts), strict=True):
            error = self._error_of(answer)
            if error is None:
                item.result = PostingResult(item.psa_id, item.version, erp_id=invoice_id, created=created)
            elif isinstance(error, DataValidationError):
                refused.append((item, invoice_id, error))
            else:
                item.result = PostingResult(item.psa_id, item.version, error=error)
        if refused:
            self._explain_refusals(company, refused, key)

    def _explain_refusals(
        self,
        company: str,
        refused: list[tuple[_Item, str, DataValidationError]],
        key: Callable[[Mapping[str, Any]], str | None],
    ) -> None:
        """BC refuses ``Microsoft.NAV.post`` for an invoice posted meanwhile ("already been posted", or the
        vendor invoice number posted on another invoice) as it refuses a date outside the allowed posting
        dates. Look the invoices up again (one batched GET): one found posted is this line's record; the rest
        are refusals naming the period and date they were meant for (the draft stays and is reused, re-dated
        if the decision changed, on the next delivery)."""
        group = [item for item, _, _ in refused]
        for item in group:
            item.found = []
        self._look_up(company, INVOICE_ENTITY, INVOICE_SELECT, group, key)
        for item, _, error in refused:
            if item.result is not None:  # the lookup itself failed: its error stands
                continue
            posted = [r for r in item.found if r.get("status") != DRAFT]
            if posted:
                item.result = PostingResult(item.psa_id, item.version, erp_id=str(posted[0]["id"]))
                continue
            period = str(item.decision.period)
            about_dates = bm.refused_for_posting_date(error.problems)
            item.result = PostingResult(
                item.psa_id,
                item.version,
                error=DataValidationError(
                    f"{self.system} refused to post the invoice into accounting period {period}"
                    if about_dates
                    else f"{self.system} refused to post the invoice: "
                    + "; ".join(str(p.get("problem")) for p in error.problems),
                    problems=[
                        {**p, "period": period, "postingDate": item.body["postingDate"]}
                        for p in error.problems
                    ],
                    system=self.system,
                    code=CLOSED_PERIOD if about_dates else error.code,
                ),
            )

    # ------------------------------------------------------------------------------------------- lookups

    def _look_up(
        self,
        company: str,
        entity: str,
        select: Sequence[str],
        group: list[_Item],
        key: Callable[[Mapping[str, Any]], str | None],
    ) -> None:
        """Fill ``found`` of every item with the records carrying its reference (a failed read: its error)."""
        path = bm.company_path(company, entity)
        by_ref = {item.ref: item for item in group}
        reads = [
            (
                chunk,
                bm.operation(
                    "", "GET", bm.query_url(path, filter_terms=[i.lookup_term for i in chunk], select=select)
                ),
            )
            for chunk in _chunks(group, self._lookup_terms)
        ]
        for chunk, answer in self._run(reads, idempotent=True):
            records: list[Mapping[str, Any]] = []
            error = self._error_of(answer)
            if error is None and isinstance(answer, _Answer):
                try:
                    records = self._all_pages(company, entity, answer.body)
                except HubError as exc:
                    error = exc
            if error is not None:  # without a sure answer nothing is created
                for item in chunk:
                    item.result = PostingResult(item.psa_id, item.version, error=error)
                continue
            for record in records:
                ref = key(record)
                if ref in by_ref:
                    by_ref[ref].found.append(record)

    def _all_pages(self, company: str, entity: str, body: Any) -> list[Mapping[str, Any]]:
        records = bm.collection(body)
        next_link = body.get("@odata.nextLink") if isinstance(body, Mapping) else None
        while next_link:
            params = dict(parse_qsl(urlsplit(str(next_link)).query, keep_blank_values=True))
            page = self._api.get_json(
                "/companies({company})/" + entity, path_params={"company": company}, params=params
            )
            records.extend(bm.collection(page))
            next_link = page.get("@odata.nextLink") if isinstance(page, Mapping) else None
        return records

    # ------------------------------------------------------------------------------------------- batches

    def _run(
        self, work: Sequence[tuple[Any, dict[str, Any]]], *, idempotent: bool = False
    ) -> Iterator[tuple[Any, _Answer | HubError]]:
        """Send operations in ``$batch`` requests of up to ``batch_size``; yield (tag, answer or error) for
        each, in order. After a batch is throttled beyond the client's retries, the rest are not sent."""
        throttled: ThrottledError | None = None
        for chunk in _chunks(list(work), self._batch_size):
            operations = [{**op, "id": str(n)} for n, (_, op) in enumerate(chunk, start=1)]
            answers: Mapping[str, _Answer] | HubError
            if throttled is not None:
                answers = throttled
            else:
                try:
                    answers = self._send_batch(operations, idempotent=idempotent)
                except HubError as error:
                    answers = error
                    if isinstance(error, ThrottledError):
                        throttled = error
            for (tag, _), op in zip(chunk, operations, strict=True):
                if isinstance(answers, HubError):
                    yield tag, answers
                else:
                    yield (
                        tag,
                        answers.get(op["id"])
                        or TransientError(
                            f"{self.system} left an operation unanswered",
                            system=self.system,
                            code="no_answer",
                        ),
                    )

    def _send_batch(self, operations: list[dict[str, Any]], *, idempotent: bool = True) -> dict[str, _Answer]:
        response = self._api.request(
            "POST",
            BATCH_PATH,
            json={"requests": operations},
            headers={"Prefer": "odata.continue-on-error"},
            idempotent=idempotent,
        )
        body = parse_json(response)
        responses = body.get("responses") if isinstance(body, Mapping) else None
        if not isinstance(responses, list):
            raise TransientError(f"{self.system} $batch answered without responses", system=self.system)
        answers: dict[str, _Answer] = {}
        for answer in responses:
            if isinstance(answer, Mapping) and isinstance(answer.get("status"), int):
                raw_headers = answer.get("headers")
                headers = (
                    {str(k): str(v) for k, v in raw_headers.items()}
                    if isinstance(raw_headers, Mapping)
                    else {}
                )
                answers[str(answer.get("id"))] = _Answer(answer["status"], answer.get("body"), headers)
        return answers

    # ------------------------------------------------------------------------------------------- helpers

    def _error_of(self, answer: _Answer | HubError) -> HubError | None:
        return answer if isinstance(answer, HubError) else self._classify(answer.response())

    def _written(self, answer: _Answer | HubError) -> str | HubError:
        """The id of the record an operation wrote, or its error (an answer without the id is a vendor fault
        worth retrying: the next lookup finds the record if it was written)."""
        error = self._error_of(answer)
        if error is not None:
            return error
        body = answer.body if isinstance(answer, _Answer) else None
        record_id = body.get("id") if isinstance(body, Mapping) else None
        if not record_id:
            return TransientError(f"{self.system} answered without the record's id", system=self.system)
        return str(record_id)

    def _account(self, category: ExpenseCategory) -> str:
        account = self._accounts.get(category)
        if account is None:
            raise self._unmapped("lineObjectNumber", f"no G/L account configured for {category}")
        return account

    def _tax_code(self, code: str) -> str | None:
        return mapped(
            self._tax_codes,
            code,
            system=self.system,
            field="taxCode",
            problem=f"no tax code configured for the hub's {code}",
        )

    def _unmapped(self, field: str, problem: str) -> DataValidationError:
        return unmapped(self.system, field, problem)

    def _as_error(self, exc: Exception) -> HubError:
        if isinstance(exc, HubError):
            return exc
        return DataValidationError(
            f"{self.system} cannot take the entry",
            problems=[{"field": "version", "problem": str(exc)}],
            system=self.system,
            code="UNREPRESENTABLE",
        )


def _require_post(decision: PostingDecision, system: str) -> dt.date:
    if decision.action is not PostingAction.POST or decision.posting_date is None:
        raise DataValidationError(
            "a held entry is not posted",
            problems=[{"field": "decision", "problem": decision.reason}],
            system=system,
            code="NOT_POSTABLE",
        )
    return decision.posting_date


def _add(
    distinct: dict[str, _Item],
    position: int,
    ref: str,
    psa_id: str,
    version: int,
    request: PostTime | PostExpense,
    body: dict[str, Any],
) -> None:
    """Register an item; a repeat of a reference in the same call rides on the first (never created twice)."""
    if ref in distinct:
        distinct[ref].positions.append(position)
        return
    distinct[ref] = _Item(
        positions=[position],
        psa_id=psa_id,
        version=version,
        ref=ref,
        company=request.subsidiary_id,
        body=body,
        lookup_term="",
        decision=request.decision,
    )


def _spread(results: list[PostingResult | None], items: Iterable[_Item]) -> list[PostingResult]:
    for item in items:
        result = item.result or PostingResult(
            item.psa_id, item.version, error=TransientError("no outcome", code="no_answer")
        )
        for n, position in enumerate(item.positions):
            # A repeat in the same call found what the first one wrote.
            results[position] = result if n == 0 or not result.created else _found(result)
    missing = [n for n, r in enumerate(results) if r is None]
    if missing:
        raise AssertionError(f"no outcome for positions {missing}")
    return [r for r in results if r is not None]


def _found(result: PostingResult) -> PostingResult:
    return PostingResult(result.psa_id, result.version, erp_id=result.erp_id, created=False)


def _by_company(items: Iterable[_Item]) -> dict[str, list[_Item]]:
    groups: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        groups[item.company].append(item)
    return groups


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _delete(collection_path: str, record: Mapping[str, Any]) -> dict[str, Any]:
    return bm.operation(
        "", "DELETE", f"{collection_path}({record['id']})", etag=record.get("@odata.etag") or "*"
    )


def _note_deletion(answer: _Answer | HubError, system: str) -> None:
    """A surplus copy's deletion is best effort: the next lookup that sees the copy tries again."""
    if isinstance(answer, HubError) or answer.status >= 300:
        logger.warning("surplus copy not deleted", extra={"system": system})


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
