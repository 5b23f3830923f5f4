"""The ERP posting adapters against the NetSuite and Business Central sandboxes in-process.

Entries are canonical (``tests.support.time_expense_builders``) and their posting decisions come from the
posting checks (``hub.flows.posting.checks``), as the posting service makes them. Every count is read back with
the sandboxes' own helpers: records per type, duplicates by the hub's reference, requests and `$batch`
operations. Retries inside the adapters never really sleep: the policy's ``sleep`` is a no-op, or advances the
Business Central sandbox's clock so its request window slides.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Sequence

import httpx
import pytest

from hub.connectors.business_central import BusinessCentralErp
from hub.connectors.http import RetryPolicy
from hub.connectors.netsuite import CLOSED_PERIOD, NetSuiteErp
from hub.connectors.ports import PostExpense, PostingResult, PostTime
from hub.errors import DataValidationError, ThrottledError, TransientError
from hub.flows.posting.checks import Outcome, check_expense_line, check_time_entry
from hub.mapping import netsuite as nm
from hub.model import AccountingCalendar, ExpenseCategory, ExpenseLine, ProjectStatus, TaskStatus, TimeEntry
from local.sandboxes import BusinessCentralSandbox, Faults, NetSuiteSandbox
from tests.support.time_expense_builders import (
    entity,
    expense_line,
    monthly_calendar,
    posting_policy,
    project_ref,
    task_ref,
    tax_rules,
    time_entry,
)

pytestmark = pytest.mark.disable_socket

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
WORKERS = [f"W-{n:02d}" for n in range(25)]
NETSUITE_TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
SUBSIDIARY = "1"


def no_wait() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None)


# --------------------------------------------------------------------------------------- canonical entries


def time_entries(n: int, code: str, *, version: int = 1, prefix: str = "TE", **overrides) -> list[TimeEntry]:
    """``n`` entries of 2 hours, 25 workers, spread over November (at most 2 per worker and day)."""
    return [
        time_entry(
            psa_id=f"{prefix}-{i:05d}",
            version=version,
            legal_entity_code=code,
            worker_id=WORKERS[i % len(WORKERS)],
            work_date=dt.date(2026, 11, 2 + (i // len(WORKERS)) % 20),
            hours="2",
            **overrides,
        )
        for i in range(n)
    ]


def expense_lines(n: int, code: str, *, prefix: str = "EX", **overrides) -> list[ExpenseLine]:
    return [
        expense_line(
            entity_code=code,
            psa_id=f"{prefix}-{i:05d}",
            worker_id=WORKERS[i % len(WORKERS)],
            expense_date=dt.date(2026, 11, 2 + (i // len(WORKERS)) % 20),
            gross="40.00",
            **overrides,
        )
        for i in range(n)
    ]


def to_post_time(
    entries: Sequence[TimeEntry], calendar: AccountingCalendar, subsidiary: str
) -> list[PostTime]:
    """Each entry checked as the posting service checks it; all of them must be postable."""
    items = []
    for entry in entries:
        code = entry.legal_entity_code
        check = check_time_entry(
            entry,
            entity=entity(code),
            policy=posting_policy(code),
            calendar=calendar,
            now_utc=NOW,
            project_status=ProjectStatus.ACTIVE,
            task_status=TaskStatus.OPEN,
        )
        assert check.outcome is Outcome.POST, check
        items.append(PostTime(entry=entry, decision=check.decision, subsidiary_id=subsidiary))
    return items


def to_post_expense(
    lines: Sequence[ExpenseLine], calendar: AccountingCalendar, subsidiary: str
) -> list[PostExpense]:
    items = []
    for line in lines:
        code = line.legal_entity_code
        check = check_expense_line(
            line,
            entity=entity(code),
            policy=posting_policy(code),
            calendar=calendar,
            tax_rules=tax_rules(),
            now_utc=NOW,
            project_status=ProjectStatus.ACTIVE,
        )
        assert check.outcome is Outcome.POST and check.tax is not None, check
        items.append(PostExpense(line=line, decision=check.decision, tax=check.tax, subsidiary_id=subsidiary))
    return items


def posted(results: Sequence[PostingResult]) -> bool:
    return all(r.posted and r.error is None for r in results)


# ---------------------------------------------------------------------------------------------- NetSuite


@pytest.fixture
def netsuite() -> NetSuiteSandbox:
    sandbox = NetSuiteSandbox("TSTDRV-US", concurrency_limit=5)
    sandbox.seed_accounting_periods("2026-09", 6)
    customer = sandbox.seed_customer("sf-001Dn00000Z9y8xAAA", companyName="Acme Ltd")
    job = sandbox.seed_job(project_ref().external_id, customer, companyName="Acme - ERP rollout")
    sandbox.seed_project_task(nm.task_external_id(project_ref(), task_ref()), job, "Design")
    for worker in WORKERS:
        sandbox.seed_employee(worker, f"Consultant {worker}")
    return sandbox


def netsuite_adapter(sandbox: NetSuiteSandbox, **overrides) -> NetSuiteErp:
    options = {
        "retry": no_wait(),
        "currency_ids": {code: internal_id for internal_id, code in sandbox.currencies.items()},
        "expense_category_ids": {ExpenseCategory.MEALS: "2", ExpenseCategory.TRAVEL: "1"},
        "tax_code_ids": {"US-ST": None},
        "service_item_id": "10",
        **overrides,
    }
    return NetSuiteErp(
        httpx.Client(transport=sandbox.transport()),
        account_id=sandbox.account_id,
        base_url=sandbox.base_url,
        token_url=sandbox.base_url + NETSUITE_TOKEN_PATH,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        **options,
    )


def test_netsuite_calendar_is_the_accounts_posting_periods(netsuite):
    netsuite.close_period("Sep 2026")

    calendar = netsuite_adapter(netsuite).accounting_calendar("US01", subsidiary_id=SUBSIDIARY)

    assert [(p.name, p.status.value) for p in calendar.periods] == [
        ("Sep-2026", "closed"),
        ("Oct-2026", "open"),
        ("Nov-2026", "open"),
        ("Dec-2026", "open"),
        ("Jan-2027", "open"),
        ("Feb-2027", "open"),
    ]
    assert netsuite.call_count("POST", "/query/v1/suiteql") == 1


def test_250_time_entries_posted_twice_are_250_time_bills_at_one_call_per_entry(netsuite):
    erp = netsuite_adapter(netsuite)
    items = to_post_time(time_entries(250, "US01"), erp.accounting_calendar("US01", subsidiary_id="1"), "1")

    first = erp.post_time_entries(items)
    again = erp.post_time_entries(items)

    assert posted(first) and posted(again)
    assert [r.erp_id for r in first] == [r.erp_id for r in again]
    assert netsuite.count("timebill") == 250 and len({r.erp_id for r in first}) == 250
    assert netsuite.call_count("PUT", "/timebill/") == 500  # one call per entry, each time
    bill = netsuite.by_external_id("timebill", "te-TE-00000-v1")
    assert (bill["tranDate"], bill["hours"], bill["isBillable"]) == ("2026-11-02", 2.0, True)


def test_250_expense_lines_posted_twice_are_250_reports_of_one_line_each(netsuite):
    erp = netsuite_adapter(netsuite)
    items = to_post_expense(
        expense_lines(250, "US01"), erp.accounting_calendar("US01", subsidiary_id="1"), "1"
    )

    first = erp.post_expense_lines(items)
    again = erp.post_expense_lines(items)

    assert posted(first) and posted(again) and [r.erp_id for r in first] == [r.erp_id for r in again]
    reports = netsuite.records("expensereport")
    assert len(reports) == 250 and {len(r["expense"]["items"]) for r in reports} == {1}  # ?replace=expense
    assert netsuite.call_count("PUT", "/expensereport/") == 500
    nov = netsuite.period_for("2026-11-02")["id"]
    assert {r["postingPeriod"]["id"] for r in reports} == {nov} and reports[0]["expense"]["items"][0][
        "amount"
    ] == 40


def test_a_new_version_posts_as_a_new_netsuite_record(netsuite):
    erp = netsuite_adapter(netsuite)
    calendar = erp.accounting_calendar("US01", subsidiary_id="1")
    [v1] = erp.post_time_entries(to_post_time(time_entries(1, "US01"), calendar, "1"))

    [v2] = erp.post_time_entries(
        to_post_time(time_entries(1, "US01", version=2, billable=False), calendar, "1")
    )

    assert v1.erp_id != v2.erp_id and netsuite.count("timebill") == 2
    assert netsuite.by_external_id("timebill", "te-TE-00000-v2")["isBillable"] is False


def test_a_period_closed_after_the_decision_is_a_data_error_naming_it(netsuite):
    erp = netsuite_adapter(netsuite)
    calendar = erp.accounting_calendar("US01", subsidiary_id="1")
    times = to_post_time(time_entries(3, "US01"), calendar, "1")
    expenses = to_post_expense(expense_lines(3, "US01"), calendar, "1")
    netsuite.close_period("Nov 2026")

    results = erp.post_time_entries(times) + erp.post_expense_lines(expenses)

    for result in results:
        assert isinstance(result.error, DataValidationError) and result.error.code == CLOSED_PERIOD
        assert [p["period"] for p in result.error.problems] == ["Nov-2026"]
    assert netsuite.count("timebill") == netsuite.count("expensereport") == 0


def test_entries_dated_in_a_closed_period_post_into_the_next_open_one(netsuite):
    netsuite.close_period("Oct 2026")
    erp = netsuite_adapter(netsuite)
    calendar = erp.accounting_calendar("US01", subsidiary_id="1")
    october = dt.date(2026, 10, 15)
    [item_time] = to_post_time([time_entry(work_date=october)], calendar, "1")
    [item_expense] = to_post_expense([expense_line(expense_date=october)], calendar, "1")

    results = erp.post_time_entries([item_time]) + erp.post_expense_lines([item_expense])

    assert posted(results)
    report = netsuite.by_external_id("expensereport", "ex-EX-2001-v1")
    assert report["tranDate"] == "2026-10-15"  # the original date is kept...
    assert report["postingPeriod"]["id"] == netsuite.period_for("2026-11-01")["id"]  # ...posted in November
    bill = netsuite.by_external_id("timebill", "te-TE-1001-v1")
    assert bill["tranDate"] == "2026-11-01" and bill["memo"] == "pshub:TE-1001:v1 (dated 2026-10-15)"


def test_good_and_bad_entries_get_their_own_netsuite_results(netsuite):
    erp = netsuite_adapter(netsuite)
    calendar = erp.accounting_calendar("US01", subsidiary_id="1")
    entries = time_entries(6, "US01")
    entries[1] = time_entry(psa_id="TE-BAD-1", worker_id="W-GONE")
    entries[4] = time_entry(psa_id="TE-BAD-2", project=project_ref(external_id="sf-opp-UNKNOWN"))

    results = erp.post_time_entries(to_post_time(entries, calendar, "1"))

    assert [r.posted for r in results] == [True, False, True, True, False, True]
    assert [p["field"] for p in results[1].error.problems] == ["employee"]
    assert [p["field"] for p in results[4].error.problems] == ["customer"]
    assert netsuite.count("timebill") == 4


def test_netsuite_throttling_comes_back_as_results_and_a_retry_posts_once(netsuite):
    erp = netsuite_adapter(netsuite)
    items = to_post_time(time_entries(10, "US01"), erp.accounting_calendar("US01", subsidiary_id="1"), "1")
    netsuite.set_faults(Faults(throttle_rate=1.0, path_pattern="/timebill/"))

    throttled = erp.post_time_entries(items)
    netsuite.set_faults(Faults())
    retried = erp.post_time_entries([i for i, r in zip(items, throttled, strict=True) if not r.posted])

    assert all(isinstance(r.error, ThrottledError) for r in throttled)
    assert throttled[0].error.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert posted(retried) and netsuite.count("timebill") == 10


def test_lost_netsuite_answers_are_replayed_without_duplicates(netsuite):
    erp = netsuite_adapter(netsuite)
    items = to_post_time(time_entries(60, "US01"), erp.accounting_calendar("US01", subsidiary_id="1"), "1")
    netsuite.set_faults(Faults(lost_response_rate=0.3, path_pattern="/timebill/", seed=7))

    pending = items
    for _ in range(5):  # the caller's redeliveries, for what even the client's retries lost
        results = erp.post_time_entries(pending)
        pending = [i for i, r in zip(pending, results, strict=True) if not r.posted]
        assert all(isinstance(r.error, TransientError) for r in results if not r.posted)

    assert pending == [] and netsuite.count("timebill") == 60
    assert netsuite.call_count(fault="lost_response") > 0


def test_workers_within_the_pool_post_in_parallel_without_limit_errors(netsuite):
    netsuite.set_faults(Faults(latency=0.002))
    erp = netsuite_adapter(netsuite, workers=5)
    items = to_post_time(time_entries(100, "US01"), erp.accounting_calendar("US01", subsidiary_id="1"), "1")

    results = erp.post_time_entries(items)

    assert posted(results) and netsuite.count("timebill") == 100
    assert 1 < netsuite.peak_in_flight <= 5 and netsuite.call_count(fault="concurrency") == 0


# ------------------------------------------------------------------------------------- Business Central

UK_CALENDAR = monthly_calendar("UK01")


@pytest.fixture
def business_central() -> BusinessCentralSandbox:
    return seeded(BusinessCentralSandbox(concurrency_limit=5))


def seeded(sandbox: BusinessCentralSandbox) -> BusinessCentralSandbox:
    company = sandbox.company("PS Hub UK Ltd")
    for worker in [*WORKERS, "W-17"]:
        sandbox.seed_employee(company, worker, f"Consultant {worker}")
        sandbox.seed_vendor(company, worker, f"Consultant {worker}")
    sandbox.seed_project(company, project_ref().psa_project_id, "Acme - ERP rollout", tasks=("1.1", "1.2"))
    return sandbox


def bc_adapter(
    sandbox: BusinessCentralSandbox, *, transport: httpx.BaseTransport | None = None, **overrides
) -> BusinessCentralErp:
    options = {
        "retry": no_wait(),
        "expense_accounts": {ExpenseCategory.MEALS: "64200", ExpenseCategory.TRAVEL: "64100"},
        "tax_codes": {"GB-S20": "STANDARD", "GB-Z0": "ZERO"},
        "local_currency": "GBP",
        **overrides,
    }
    return BusinessCentralErp(
        httpx.Client(transport=transport or sandbox.transport()),
        tenant_id=sandbox.tenant_id,
        environment=sandbox.environment,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        base_url=sandbox.api_url,
        token_url=sandbox.token_url,
        **options,
    )


def company_of(sandbox: BusinessCentralSandbox) -> str:
    return sandbox.company("PS Hub UK Ltd")


def batches(sandbox: BusinessCentralSandbox) -> int:
    return sandbox.call_count("POST", "/$batch")


class LosesBatchAnswers(httpx.BaseTransport):
    """The sandbox processes every request, but the answers of the `$batch` requests ``lose`` picks never
    arrive: the crash window between Business Central's create and the hub's record of it."""

    def __init__(self, sandbox: BusinessCentralSandbox, lose: Callable[[list[dict]], bool]) -> None:
        self.sandbox = sandbox
        self.lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.sandbox.handle(request)
        if request.url.path.endswith("/$batch") and self.lose(json.loads(request.content)["requests"]):
            raise httpx.ReadTimeout("answer lost after processing", request=request)
        return response


def creates(operations: list[dict]) -> bool:
    return any(op["method"] == "POST" and not op["url"].endswith("Microsoft.NAV.post") for op in operations)


def test_250_time_entries_posted_twice_are_250_registrations_in_business_central(business_central):
    company = company_of(business_central)
    erp = bc_adapter(business_central)
    items = to_post_time(time_entries(250, "UK01"), UK_CALENDAR, company)

    first = erp.post_time_entries(items)
    first_batches = batches(business_central)
    again = erp.post_time_entries(items)

    assert posted(first) and all(r.created for r in first)
    assert posted(again) and not any(r.created for r in again)
    assert [r.erp_id for r in first] == [r.erp_id for r in again]
    assert business_central.count(company, "timeRegistrationEntries") == 250
    assert business_central.duplicates(company, "timeRegistrationEntries", "lineNumber") == {}
    assert first_batches == 4 and batches(business_central) == 5  # lookup + 3 creates; then the lookup only


def test_250_expense_lines_posted_twice_are_250_posted_invoices(business_central):
    company = company_of(business_central)
    erp = bc_adapter(business_central)
    items = to_post_expense(expense_lines(250, "UK01"), UK_CALENDAR, company)

    first = erp.post_expense_lines(items)
    again = erp.post_expense_lines(items)

    assert posted(first) and posted(again) and [r.erp_id for r in first] == [r.erp_id for r in again]
    invoices = business_central.records(company, "purchaseInvoices")
    assert len(invoices) == 250 and {i["status"] for i in invoices} == {"Open"}
    assert business_central.duplicates(company, "purchaseInvoices", "vendorInvoiceNumber") == {}
    invoice = next(i for i in invoices if i["vendorInvoiceNumber"] == "EX-EX-00000-V1")
    assert (invoice["invoiceDate"], invoice["postingDate"], invoice["totalAmountIncludingTax"]) == (
        "2026-11-02",
        "2026-11-02",
        40.0,
    )
    assert (
        invoice["totalTaxAmount"] == 6.67
    )  # 40.00 with 20 % VAT included, as the hub's tax treatment has it


@pytest.mark.parametrize(("kind", "expected_batches"), [("time", 11), ("expenses", 21)])
def test_business_central_takes_a_handful_of_batches_per_1000_entries(
    business_central, kind, expected_batches
):
    company = company_of(business_central)
    erp = bc_adapter(business_central)
    if kind == "time":
        results = erp.post_time_entries(to_post_time(time_entries(1000, "UK01"), UK_CALENDAR, company))
    else:
        results = erp.post_expense_lines(to_post_expense(expense_lines(1000, "UK01"), UK_CALENDAR, company))

    assert posted(results) and len(results) == 1000
    # 1 lookup (50 filtered reads) + 10 creates (+ 10 posts for invoices), 100 operations at most each.
    assert batches(business_central) == expected_batches
    sizes = Counter(op.batch for op in business_central.operations())
    assert max(sizes.values()) == 100 and len(sizes) == expected_batches


def test_a_new_version_posts_as_a_new_business_central_record(business_central):
    company = company_of(business_central)
    erp = bc_adapter(business_central)
    [v1] = erp.post_time_entries(to_post_time(time_entries(1, "UK01"), UK_CALENDAR, company))

    [v2] = erp.post_time_entries(to_post_time(time_entries(1, "UK01", version=2), UK_CALENDAR, company))

    assert v2.created and v1.erp_id != v2.erp_id
    assert business_central.count(company, "timeRegistrationEntries") == 2


def test_a_posting_date_bc_does_not_allow_is_a_data_error_naming_the_period_then_posts_once_redecided(
    business_central,
):
    company = company_of(business_central)
    business_central.set_allowed_posting_dates(company, "2026-12-01", None)  # November is closed in BC
    erp = bc_adapter(business_central)
    lines = expense_lines(2, "UK01")

    refused = erp.post_expense_lines(to_post_expense(lines, UK_CALENDAR, company))
    redecided = to_post_expense(lines, monthly_calendar("UK01", closed=("2026-11",)), company)
    retried = erp.post_expense_lines(redecided)

    for result in refused:
        assert isinstance(result.error, DataValidationError)
        assert [(p["period"], p["postingDate"]) for p in result.error.problems] == [("2026-11", "2026-11-02")]
    assert posted(retried) and not any(r.created for r in retried)  # the drafts were re-dated and posted
    invoices = business_central.records(company, "purchaseInvoices")
    assert len(invoices) == 2 and {(i["status"], i["postingDate"], i["invoiceDate"]) for i in invoices} == {
        ("Open", "2026-12-01", "2026-11-02")
    }


def test_good_and_bad_entries_get_their_own_business_central_results(business_central):
    company = company_of(business_central)
    erp = bc_adapter(business_central)
    entries = time_entries(5, "UK01")
    entries[2] = time_entry(psa_id="TE-BAD", legal_entity_code="UK01", worker_id="W-GONE")
    lines = expense_lines(3, "UK01")
    lines[0] = expense_line(entity_code="UK01", psa_id="EX-BAD", worker_id="W-GONE")

    times = erp.post_time_entries(to_post_time(entries, UK_CALENDAR, company))
    expenses = erp.post_expense_lines(to_post_expense(lines, UK_CALENDAR, company))

    assert [r.posted for r in times] == [True, True, False, True, True]
    assert [r.posted for r in expenses] == [False, True, True]
    for error in (times[2].error, expenses[0].error):
        assert isinstance(error, DataValidationError) and error.code == "Internal_RecordNotFound"
    assert business_central.count(company, "timeRegistrationEntries") == 4
    assert business_central.count(company, "purchaseInvoices") == 2


def test_the_request_window_is_waited_out_and_everything_posts():
    clock = [1_000.0]
    sandbox = seeded(
        BusinessCentralSandbox(concurrency_limit=5, rate_limit=3, rate_window=10.0, clock=lambda: clock[0])
    )
    company = company_of(sandbox)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the window slides while the client waits
        waits.append(seconds)
        clock[0] += seconds

    erp = bc_adapter(sandbox, retry=RetryPolicy(max_attempts=5, max_total_sleep=60.0, sleep=sleep))

    times = erp.post_time_entries(to_post_time(time_entries(250, "UK01"), UK_CALENDAR, company))
    expenses = erp.post_expense_lines(to_post_expense(expense_lines(250, "UK01"), UK_CALENDAR, company))

    assert posted(times) and posted(expenses)
    assert (
        sandbox.count(company, "timeRegistrationEntries") == 250
        and sandbox.count(company, "purchaseInvoices") == 250
    )
    refused = sandbox.call_count(fault="rate_limit")
    assert refused > 0 and len(waits) == refused and all(w >= 1 for w in waits)  # Retry-After, honoured


def test_throttling_beyond_the_clients_budget_is_returned_and_the_redelivery_posts_once():
    clock = [1_000.0]
    sandbox = seeded(
        BusinessCentralSandbox(concurrency_limit=5, rate_limit=3, rate_window=30.0, clock=lambda: clock[0])
    )
    company = company_of(sandbox)
    erp = bc_adapter(sandbox, retry=RetryPolicy(max_attempts=2, max_total_sleep=5.0, sleep=lambda s: None))
    items = to_post_time(time_entries(350, "UK01"), UK_CALENDAR, company)

    first = erp.post_time_entries(items)  # lookup, 2 creates, then the window is full (Retry-After: 30 s)
    clock[0] += 30.0
    redelivered = erp.post_time_entries(items)

    assert [r.posted for r in first] == [True] * 200 + [False] * 150
    assert all(isinstance(r.error, ThrottledError) and r.error.retry_after for r in first[200:])
    assert posted(redelivered) and [r.created for r in redelivered] == [False] * 200 + [True] * 150
    assert sandbox.count(company, "timeRegistrationEntries") == 350
    # the 4th create batch of the first call was never sent: 3 + 1 refused, then lookup + 2 creates
    assert batches(sandbox) == 7 and sandbox.call_count(fault="rate_limit") == 1


def test_a_lost_create_answer_is_found_by_the_next_delivery_not_created_twice(business_central):
    company = company_of(business_central)
    lossy = bc_adapter(business_central, transport=LosesBatchAnswers(business_central, creates))
    erp = bc_adapter(business_central)
    times = to_post_time(time_entries(120, "UK01"), UK_CALENDAR, company)
    expenses = to_post_expense(expense_lines(120, "UK01"), UK_CALENDAR, company)

    lost = lossy.post_time_entries(times) + lossy.post_expense_lines(expenses)
    redelivered = erp.post_time_entries(times) + erp.post_expense_lines(expenses)

    assert all(isinstance(r.error, TransientError) for r in lost)
    assert business_central.count(company, "timeRegistrationEntries") == 120  # created, answer lost
    assert posted(redelivered) and not any(r.created for r in redelivered)
    assert business_central.count(company, "timeRegistrationEntries") == 120
    invoices = business_central.records(company, "purchaseInvoices")
    assert len(invoices) == 120 and {i["status"] for i in invoices} == {"Open"}  # the drafts, posted once
