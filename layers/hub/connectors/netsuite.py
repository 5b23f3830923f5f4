"""NetSuite (ERP) adapter over the REST record API: customers and projects (jobs) upserted by external id.

``PUT /services/rest/record/v1/{type}/eid:{externalId}`` creates or updates, so a retry or a redrive can never
create a second record; the internal id comes from the ``Location`` header (or, failing that, a read by the
same external id).

Time and expenses (``ErpPostingPort``): NetSuite has no batch, so one upsert per item: a ``timebill`` per
time entry (``te-{psa id}-v{version}``) and an ``expensereport`` per expense line (``ex-{psa id}-v{version}``,
always with ``?replace=expense``: without it an update APPENDS the line again). The external id carries the
version, so a redelivery (same version) updates the same record and a new version is a record of its own,
which the caller reports as an adjustment. Each item's outcome is a ``PostingResult``; nothing is raised for
one item, so a bad entry never fails the others (throttled and transient errors, after the client's own
retries, are returned too, for the caller to retry). ``accounting_calendar`` reads the account's posting
periods with one SuiteQL query.

References go by internal id (``{"id"}``); the account's currencies come as ``currency_ids`` (ISO code ->
internal id), because NetSuite's currency ids differ per account. The token answer's ``expires_in`` is a
string (``"3600"``); an invalid reference is 400 ``INVALID_CONTENT`` naming the field in ``o:errorPath``; a
missing record 404 ``NONEXISTENT_ID``; a bad or expired token 401 ``INVALID_LOGIN`` (refreshed once).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
from hub.mapping import netsuite as nm
from hub.model import (
    Account,
    AccountingCalendar,
    BillingType,
    ExpenseCategory,
    PostingAction,
    PostingDecision,
    Project,
)

SYSTEM = "netsuite"
RECORD_ROOT = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
SUITEQL_PAGE = 1000

T = TypeVar("T")
# ``hold(wanted)``: a context holding one budget slot, entered with None (holding nothing) if ``wanted()``
# turns False while it waits for one (a ``ConcurrencyBudget.slot``)
Hold = Callable[[Callable[[], bool]], contextlib.AbstractContextManager[Any]]
HOLD_RENEW_SECONDS = 10.0  # a worker gives its budget slot back and takes one again this often (leases: 30 s)


def _identity(item: Any) -> tuple[str, int]:
    """(psa id, version) of a ``PostTime`` or ``PostExpense``."""
    record = item.entry if isinstance(item, PostTime) else item.line
    return record.psa_id, record.version


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
    "CLOSED_TRAN_PRD": DataValidationError,  # SOAP's code for a transaction dated in a closed period
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
        expense_category_ids: Mapping[ExpenseCategory, str] | None = None,
        tax_code_ids: Mapping[str, str | None] | None = None,
        service_item_id: str | None = None,
        project_tasks: bool = True,
        workers: int = 1,
        hold: Hold | None = None,
    ) -> None:
        """Time and expenses: ``expense_category_ids`` (canonical category -> the account's expense
        category internal id) and ``tax_code_ids`` (the hub's tax code -> tax code internal id, or None where
        the account books the tax as cost and takes gross amounts) are required for expenses;
        ``service_item_id`` is the service item billable time is billed with; ``project_tasks=False`` for an
        account whose projects have no tasks (no ``caseTaskEvent`` is sent); ``workers`` > 1 posts that many
        items at once (keep it within the account's concurrency pool, or give the client a shared budget);
        ``hold`` (a shared budget's ``slot``) lets each of those workers hold one slot for a run of posts
        (renewed every ``HOLD_RENEW_SECONDS``) instead of taking and giving back one per request: the budget's
        own calls fall from three per record to a few per batch, and the slot is never idle between two
        posts of a run. A worker that cannot get a slot stops; what no worker could post comes back as
        ``ThrottledError``. A worker still waiting for a slot when the others have posted every item stops
        waiting: the batch is done as soon as its last post is, not when its last worker gets a slot."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
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
        self._category_ids = dict(expense_category_ids or {})
        self._tax_code_ids = dict(tax_code_ids or {})
        self._service_item_id = service_item_id
        self._project_tasks = project_tasks
        self._workers = workers
        self._hold = hold
        self._periods: dict[str, nm.NetSuitePeriod] | None = None  # canonical name -> period, read once

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

    # ------------------------------------------------------------------------------- ErpPostingPort

    def accounting_calendar(self, legal_entity_code: str, *, subsidiary_id: str) -> AccountingCalendar:
        """The account's posting periods as the entity's calendar, read fresh (closed, all-locked and
        A/P-locked -> closed). NetSuite keeps one calendar per account unless the Multiple Calendars
        feature is on, which this adapter does not read: ``subsidiary_id`` does not change the answer."""
        return nm.accounting_calendar(legal_entity_code, self._load_periods().values())

    def post_time_entries(self, items: Sequence[PostTime]) -> list[PostingResult]:
        """One ``PUT timebill/eid:te-{psa id}-v{version}`` per entry, on the decided posting date (a time bill
        has no posting period: its date decides it; the memo keeps the original date when they differ).
        ``created`` stays False: NetSuite answers an upsert 204 whether it created or updated."""
        return self._each(items, self._post_time)

    def post_expense_lines(self, items: Sequence[PostExpense]) -> list[PostingResult]:
        """One ``PUT expensereport/eid:ex-{psa id}-v{version}?replace=expense`` per line: dated on the original
        date, in the decided posting period. One report per line (not per worker and period): lines arrive
        one by one over days, each with its own version, and NetSuite takes one record per call either way,
        so a report per line costs no more calls and keeps each line's upsert idempotent on its own."""
        return self._each(items, self._post_expense)

    def _each(self, items: Sequence[T], post: Callable[[T], PostingResult]) -> list[PostingResult]:
        if self._hold is None:
            if self._workers == 1 or len(items) < 2:
                return [post(item) for item in items]
            with ThreadPoolExecutor(max_workers=min(self._workers, len(items))) as pool:
                return list(pool.map(post, items))
        return self._each_holding(items, post, self._hold)

    def _each_holding(
        self,
        items: Sequence[T],
        post: Callable[[T], PostingResult],
        hold: Hold,
    ) -> list[PostingResult]:
        """Workers take the next item from one queue while each holds a budget slot (see ``hold``). One worker
        of the batch at a time waits for a slot; the next starts waiting once it has one: the batch still
        grows to every slot that is free, while on a full pool each batch has one waiter reading the budget,
        not one per worker (at month end, ten batches of five workers read it once per entry posted)."""
        pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(items)):
            pending.put(index)
        results: list[PostingResult | None] = [None] * len(items)
        refused: list[ThrottledError] = []

        turn = threading.Lock()  # one worker of the batch at a time waits for a slot

        def wanted() -> bool:
            return not pending.empty()

        def work() -> None:
            while not pending.empty():
                try:
                    with contextlib.ExitStack() as holding:
                        with turn:
                            held = holding.enter_context(hold(wanted))
                        if held is None:  # the other workers posted the rest while this one waited
                            return
                        renew_at = time.monotonic() + HOLD_RENEW_SECONDS
                        while time.monotonic() < renew_at:
                            try:
                                index = pending.get_nowait()
                            except queue.Empty:
                                return
                            results[index] = post(items[index])
                except ThrottledError as error:  # no slot freed up in time: leave the rest to the others
                    refused.append(error)
                    return

        workers = min(self._workers, len(items))
        if workers <= 1:
            work()
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for future in [pool.submit(work) for _ in range(workers)]:
                    future.result()
        error = refused[0] if refused else ThrottledError("no concurrency slot", system=self.system)
        return [
            result if result is not None else PostingResult(*_identity(items[i]), error=error)
            for i, result in enumerate(results)
        ]

    def _post_time(self, item: PostTime) -> PostingResult:
        entry, decision = item.entry, item.decision
        try:
            posting_date = _posting_date(decision, self.system)
            body = nm.timebill_body(
                entry,
                tran_date=posting_date,
                original_date=decision.original_date,
                subsidiary_id=item.subsidiary_id,
                service_item_id=self._service_item_id,
                project_tasks=self._project_tasks,
            )
            erp_id = self._upsert("timebill", nm.time_external_id(entry), body)
        except HubError as error:
            return PostingResult(entry.psa_id, entry.version, error=self._period_refusal(error, decision))
        return PostingResult(entry.psa_id, entry.version, erp_id=erp_id)

    def _post_expense(self, item: PostExpense) -> PostingResult:
        line, decision, tax = item.line, item.decision, item.tax
        try:
            _posting_date(decision, self.system)
            category_id = self._category(line.category)
            currency = self._currency(line.gross.currency)
            amounts = nm.expense_amounts(
                tax.gross.amount, tax.net.amount, tax.tax.amount, tax.kind, self._tax_code(tax.code)
            )
            period = self._period(str(decision.period))
            body = nm.expense_report_body(
                line,
                tran_date=decision.original_date,
                posting_period_id=period.internal_id,
                subsidiary_id=item.subsidiary_id,
                currency=currency,
                category_id=category_id,
                amounts=amounts,
            )
            erp_id = self._upsert(
                "expensereport", nm.expense_external_id(line), body, params={"replace": "expense"}
            )
        except HubError as error:
            return PostingResult(line.psa_id, line.version, error=self._period_refusal(error, decision))
        return PostingResult(line.psa_id, line.version, erp_id=erp_id)

    def _period_refusal(self, error: HubError, decision: PostingDecision) -> HubError:
        """NetSuite's refusal of the period as a ``CLOSED_PERIOD`` data error naming the decided period (the
        caller holds or parks it); any other error as it is."""
        problems = nm.period_problems(error.problems) if isinstance(error, DataValidationError) else []
        if not problems:
            return error
        return DataValidationError(
            f"{self.system} refused to post into accounting period {decision.period}",
            problems=[{**p, "period": str(decision.period)} for p in problems],
            system=self.system,
            code=CLOSED_PERIOD,
        )

    def _category(self, category: ExpenseCategory) -> str:
        internal_id = self._category_ids.get(category)
        if internal_id is None:
            raise self._unmapped("category", f"no expense category configured for {category}")
        return internal_id

    def _tax_code(self, code: str) -> str | None:
        return mapped(
            self._tax_code_ids,
            code,
            system=self.system,
            field="taxCode",
            problem=f"no tax code configured for the hub's {code}",
        )

    def _unmapped(self, field: str, problem: str) -> DataValidationError:
        return unmapped(self.system, field, problem)

    def _period(self, name: str) -> nm.NetSuitePeriod:
        """The NetSuite period behind a canonical period name (read once; read again if it is unknown)."""
        period = (self._periods or {}).get(name)
        if period is None:
            period = self._load_periods().get(name)
        if period is None:
            raise DataValidationError(
                f"{self.system} has no accounting period {name}",
                problems=[{"field": "period", "problem": f"no posting period named {name}", "period": name}],
                system=self.system,
                code="UNKNOWN_PERIOD",
            )
        return period

    def _load_periods(self) -> dict[str, nm.NetSuitePeriod]:
        rows: list[Any] = []
        offset = 0
        while True:
            response = self._api.request(
                "POST",
                SUITEQL_PATH,
                params={"limit": SUITEQL_PAGE, "offset": offset},
                json={"q": nm.PERIODS_QUERY},
                headers={"Prefer": "transient"},
                idempotent=True,  # a query: safe to replay
            )
            answer = parse_json(response)
            page = answer.get("items") if isinstance(answer, Mapping) else None
            if not isinstance(page, list):
                raise TransientError(
                    f"{self.system} SuiteQL answered without items", system=self.system, code="bad_answer"
                )
            rows.extend(page)
            if not page or not answer.get("hasMore"):
                break
            offset += len(page)
        try:
            periods = {p.name: p for p in nm.periods_from_rows(rows)}
        except (KeyError, ValueError) as exc:
            raise DataValidationError(
                f"{self.system} answered an accounting period the hub cannot read",
                problems=[{"field": "accountingperiod", "problem": type(exc).__name__}],
                system=self.system,
                code="bad_period",
            ) from None
        self._periods = periods
        return periods

    def _upsert(
        self,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        params: Mapping[str, str] | None = None,
    ) -> str:
        path = RECORD_ROOT + "/" + record_type + "/eid:{external_id}"
        response = self._api.request(
            "PUT", path, path_params={"external_id": external_id}, params=params, json=body
        )
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


def _posting_date(decision: PostingDecision, system: str) -> dt.date:
    """The decision's posting date; a held decision is the caller's mistake, returned as a data error."""
    if decision.action is not PostingAction.POST or decision.posting_date is None or decision.period is None:
        raise DataValidationError(
            "a held entry is not posted",
            problems=[{"field": "decision", "problem": decision.reason}],
            system=system,
            code="NOT_POSTABLE",
        )
    return decision.posting_date
