"""Business Central adapter against a hand-written API v2.0 in BC's documented shapes: Entra token, JSON `$batch`
(each operation answered on its own), lookups by the hub's reference before creating, the 429 window."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import urllib.parse
from collections.abc import Callable

import httpx
import pytest

from hub.connectors.business_central import BusinessCentralErp, classify_for
from hub.connectors.ports import CLOSED_PERIOD, PostExpense, PostTime
from hub.errors import (
    ConflictError,
    DataValidationError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from hub.flows.posting.rules import posting_decision, tax_treatment
from hub.mapping import business_central as bm
from hub.model import ClosedPeriodAction, ExpenseCategory, PeriodStatus
from tests.support.time_expense_builders import (
    entity,
    expense_line,
    monthly_calendar,
    posting_policy,
    tax_rules,
    time_entry,
)

TENANT = "6f1d2c3b-4a59-4e8f-9c0d-1b2a3c4d5e6f"
ROOT = f"/v2.0/{TENANT}/production/api/v2.0"
COMPANY = "320e3cda-ef62-51e9-8d15-f93e3cc5cc54"
NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
ACCOUNTS = {ExpenseCategory.MEALS: "64200", ExpenseCategory.SOFTWARE: "64900"}
TAX_CODES = {"GB-S20": "STANDARD", "GB-RC20": "REVERSE", "GB-Z0": "ZERO"}

Rule = tuple[Callable[[dict], bool], tuple[int, dict | None]]


def bc_error(status: int, code: str, message: str = "vendor text  CorrelationId:  x.") -> dict:
    return {"error": {"code": code, "message": message}}


class FakeBusinessCentral:
    """Entra's token endpoint and BC's `$batch`: lookups answer every record of ``existing[entity]`` (the
    adapter must pick its own), creates answer 201 with a new id, the post action 204. ``rules`` answer
    chosen operations instead; ``batch_answers`` answer whole `$batch` requests first."""

    def __init__(self) -> None:
        self.existing: dict[str, list[dict]] = {"timeRegistrationEntries": [], "purchaseInvoices": []}
        self.rules: list[Rule] = []
        self.batch_answers: list[httpx.Response] = []
        self.batches: list[list[dict]] = []
        self.batch_headers: list[httpx.Headers] = []
        self.token_requests: list[httpx.Request] = []
        self.paths: list[str] = []
        self.urls: list[str] = []
        self._ids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.token_requests.append(request)
            return httpx.Response(
                200,
                json={
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": "t",
                },
            )
        self.paths.append(request.url.path)
        self.urls.append(str(request.url))
        if self.batch_answers:
            return self.batch_answers.pop(0)
        operations = json.loads(request.content)["requests"]
        self.batches.append(operations)
        self.batch_headers.append(request.headers)
        responses = []
        for op in operations:
            status, body = self.answer(op)
            responses.append(
                {"id": op["id"], "status": status, "headers": {}, **({"body": body} if body else {})}
            )
        return httpx.Response(200, json={"responses": responses})

    def answer(self, op: dict) -> tuple[int, dict | None]:
        for matches, answer in self.rules:
            if matches(op):
                return answer
        method, url = op["method"], op["url"]
        entity = url.split("?")[0].rsplit("/", 1)[-1]
        if method == "GET":
            return 200, {"value": self.existing.get(entity, [])}
        if method == "POST" and url.endswith("Microsoft.NAV.post"):
            return 204, None
        if method == "POST":
            record = {"id": f"00000000-0000-0000-0000-{next(self._ids):012d}", **op["body"]}
            if entity == "purchaseInvoices":
                record["status"] = "Draft"
            return 201, record
        if method == "PATCH":
            return 200, {"id": url.rsplit("(", 1)[-1].rstrip(")"), **op["body"]}
        return 204, None

    def ops(self, method: str | None = None, contains: str = "") -> list[dict]:
        return [
            op
            for batch in self.batches
            for op in batch
            if (method is None or op["method"] == method) and contains in op["url"]
        ]


def adapter(fake: FakeBusinessCentral, retry, **kwargs) -> BusinessCentralErp:
    options = {"expense_accounts": ACCOUNTS, "tax_codes": TAX_CODES, "local_currency": "GBP", **kwargs}
    return BusinessCentralErp(
        httpx.Client(transport=httpx.MockTransport(fake)),
        tenant_id=TENANT,
        client_id="bc-app",
        client_secret="bc-secret",
        retry=retry,
        **options,
    )


def post_time(entry=None, policy=None, closed=()) -> PostTime:
    entry = entry or time_entry(legal_entity_code="UK01")
    decision = posting_decision(
        entry.work_date,
        NOW,
        entity("UK01"),
        monthly_calendar("UK01", closed=closed),
        policy or posting_policy("UK01"),
    )
    return PostTime(entry=entry, decision=decision, subsidiary_id=COMPANY)


def post_expense(line=None, closed=()) -> PostExpense:
    line = line or expense_line(entity_code="UK01")
    decision = posting_decision(
        line.expense_date,
        NOW,
        entity("UK01"),
        monthly_calendar("UK01", closed=closed),
        posting_policy("UK01"),
    )
    return PostExpense(
        line=line,
        decision=decision,
        tax=tax_treatment(line, entity("UK01"), tax_rules()),
        subsidiary_id=COMPANY,
    )


def entries(n: int) -> list[PostTime]:
    return [post_time(time_entry(psa_id=f"TE-{i}", legal_entity_code="UK01")) for i in range(n)]


def existing_entry(item: PostTime, **changes) -> dict:
    ref = bm.time_reference(item.entry)
    record = {
        "@odata.etag": 'W/"1"',
        "id": "11111111-0000-0000-0000-000000000001",
        "employeeNumber": item.entry.worker_id,
        "date": item.entry.work_date.isoformat(),
        "lineNumber": bm.line_number(ref),
    }
    return {**record, **changes}


def existing_invoice(item: PostExpense, **changes) -> dict:
    record = {
        "@odata.etag": 'W/"7"',
        "id": "22222222-0000-0000-0000-000000000001",
        "number": "108001",
        "vendorInvoiceNumber": bm.expense_reference(item.line),
        "vendorNumber": item.line.worker_id,
        "status": "Open",
        "postingDate": item.decision.posting_date.isoformat(),
        "invoiceDate": item.decision.original_date.isoformat(),
    }
    return {**record, **changes}


def filter_of(op: dict) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(op["url"]).query)["$filter"][0]


# --------------------------------------------------------------------------------------------------- auth


def test_the_token_is_entras_client_credentials_grant_with_bcs_scope_and_the_api_is_tenant_scoped(retry):
    fake = FakeBusinessCentral()

    adapter(fake, retry).post_time_entries(entries(1))

    [token] = fake.token_requests
    assert str(token.url) == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert dict(urllib.parse.parse_qsl(token.content.decode())) == {
        "grant_type": "client_credentials",
        "client_id": "bc-app",
        "client_secret": "bc-secret",
        "scope": "https://api.businesscentral.dynamics.com/.default",
    }
    assert set(fake.urls) == {f"https://api.businesscentral.dynamics.com{ROOT}/$batch"}


# --------------------------------------------------------------------------------------------------- time


def test_entries_are_looked_up_then_created_in_one_batch_with_their_reference_as_line_number(retry):
    fake = FakeBusinessCentral()
    items = entries(3)

    results = adapter(fake, retry).post_time_entries(items)

    lookup, create = fake.batches
    [read] = lookup
    assert read["method"] == "GET" and read["url"].startswith(
        f"companies({COMPANY})/timeRegistrationEntries?"
    )
    assert filter_of(read) == " or ".join(
        f"employeeNumber eq 'W-17' and date eq 2026-11-30 and lineNumber eq {bm.line_number(f'TE-TE-{i}-V1')}"
        for i in range(3)
    )
    assert [op["method"] for op in create] == ["POST"] * 3
    assert create[0]["url"] == f"companies({COMPANY})/timeRegistrationEntries"
    assert create[0]["headers"] == {"Content-Type": "application/json"}
    assert create[0]["body"] == {
        "employeeNumber": "W-17",
        "jobNumber": "880001",
        "jobTaskNumber": "1.1",
        "date": "2026-11-30",
        "quantity": 8,
        "lineNumber": bm.line_number("TE-TE-0-V1"),
    }
    assert [(r.psa_id, r.created) for r in results] == [("TE-0", True), ("TE-1", True), ("TE-2", True)]
    assert len({r.erp_id for r in results}) == 3
    assert "Isolation" not in fake.batch_headers[1]  # one bad entry must not roll back the others


def test_numbers_bc_knows_can_be_mapped(retry):
    fake = FakeBusinessCentral()

    adapter(
        fake, retry, employee_numbers={"W-17": "E0001"}, job_numbers={"880001": "J1001"}
    ).post_time_entries(entries(1))

    body = fake.ops("POST")[0]["body"]
    assert (body["employeeNumber"], body["jobNumber"]) == ("E0001", "J1001")


def test_250_entries_take_one_lookup_and_three_create_batches_of_at_most_100(retry):
    fake = FakeBusinessCentral()

    results = adapter(fake, retry).post_time_entries(entries(250))

    assert [len(batch) for batch in fake.batches] == [13, 100, 100, 50]
    assert {op["method"] for op in fake.batches[0]} == {"GET"}
    assert all(r.created for r in results) and len(results) == 250


def test_an_entry_already_in_bc_is_not_created_again(retry):
    fake = FakeBusinessCentral()
    first, second = entries(2)
    fake.existing["timeRegistrationEntries"] = [
        existing_entry(first),
        existing_entry(second, id="someone-else", employeeNumber="W-99"),  # same number, other worker
    ]

    results = adapter(fake, retry).post_time_entries([first, second])

    assert results[0].erp_id == "11111111-0000-0000-0000-000000000001" and results[0].created is False
    assert results[1].created is True and len(fake.ops("POST")) == 1


def test_open_copies_left_by_a_race_are_deleted_and_the_first_answers(retry):
    fake = FakeBusinessCentral()
    [item] = entries(1)
    fake.existing["timeRegistrationEntries"] = [
        existing_entry(item, status="Open"),
        existing_entry(item, id="copy-open", status="Open", **{"@odata.etag": 'W/"5"'}),
        existing_entry(item, id="copy-submitted", status="Submitted"),  # someone's work now: left alone
    ]

    [result] = adapter(fake, retry).post_time_entries([item])

    [delete] = fake.ops("DELETE")
    assert delete["url"] == f"companies({COMPANY})/timeRegistrationEntries(copy-open)"
    assert delete["headers"] == {"If-Match": 'W/"5"'}
    assert result.erp_id == "11111111-0000-0000-0000-000000000001" and fake.ops("POST") == []


def test_a_repeat_in_the_same_call_is_created_once(retry):
    fake = FakeBusinessCentral()
    item = entries(1)[0]

    results = adapter(fake, retry).post_time_entries([item, item])

    assert len(fake.ops("POST")) == 1
    assert results[0].erp_id == results[1].erp_id and (results[0].created, results[1].created) == (
        True,
        False,
    )


def test_a_new_version_is_a_record_of_its_own(retry):
    fake = FakeBusinessCentral()
    v1 = post_time(time_entry(legal_entity_code="UK01"))
    fake.existing["timeRegistrationEntries"] = [existing_entry(v1)]

    [result] = adapter(fake, retry).post_time_entries(
        [post_time(time_entry(legal_entity_code="UK01", version=2))]
    )

    assert result.created is True and fake.ops("POST")[0]["body"]["lineNumber"] == bm.line_number(
        "TE-TE-1001-V2"
    )


def test_each_operation_answers_for_its_own_entry(retry):
    fake = FakeBusinessCentral()
    fake.rules.append(
        (
            lambda op: op["method"] == "POST" and op["body"]["employeeNumber"] == "W-NOBODY",
            (400, bc_error(400, "Internal_RecordNotFound", "The Employee does not exist.")),
        )
    )
    items = [
        post_time(time_entry(psa_id="TE-1", legal_entity_code="UK01")),
        post_time(time_entry(psa_id="TE-2", legal_entity_code="UK01", worker_id="W-NOBODY")),
        post_time(time_entry(psa_id="TE-3", legal_entity_code="UK01")),
    ]

    results = adapter(fake, retry).post_time_entries(items)

    assert [r.posted for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, DataValidationError) and error.code == "Internal_RecordNotFound"
    assert error.problems[0]["problem"].startswith("The Employee does not exist.")


def test_entries_whose_lookup_failed_are_not_created(retry):
    fake = FakeBusinessCentral()
    fake.rules.append((lambda op: op["method"] == "GET", (503, bc_error(503, "Internal_ServiceUnavailable"))))

    results = adapter(fake, retry).post_time_entries(entries(2))

    assert all(isinstance(r.error, TransientError) for r in results) and fake.ops("POST") == []


def test_an_ambiguous_create_batch_is_not_replayed_blind(retry):
    fake = FakeBusinessCentral()
    lookup_answer = httpx.Response(
        200, json={"responses": [{"id": "1", "status": 200, "body": {"value": []}}]}
    )
    fake.batch_answers = [lookup_answer, httpx.Response(500, json=bc_error(500, "Internal_ServerError"))]

    results = adapter(fake, retry).post_time_entries(entries(2))

    assert all(isinstance(r.error, TransientError) for r in results)
    assert len(fake.paths) == 2  # the lookup, and the create batch once: the next call looks up first


def test_a_throttled_batch_is_retried_after_retry_after(retry, sleeps):
    fake = FakeBusinessCentral()
    too_many = bc_error(429, "Application_TooManyRequests", "Too many requests reached.")
    fake.batch_answers = [httpx.Response(429, json=too_many, headers={"Retry-After": "2"})]

    results = adapter(fake, retry).post_time_entries(entries(2))

    assert sleeps == [2.0] and all(r.created for r in results)


def test_throttling_beyond_the_budget_returns_throttled_results_and_sends_nothing_more(retry, sleeps):
    fake = FakeBusinessCentral()
    too_many = bc_error(429, "Application_TooManyRequests", "Too many requests reached.")
    lookup = httpx.Response(
        200, json={"responses": [{"id": str(n), "status": 200, "body": {"value": []}} for n in range(1, 9)]}
    )
    fake.batch_answers = [lookup, httpx.Response(429, json=too_many, headers={"Retry-After": "60"})]

    results = adapter(fake, retry).post_time_entries(entries(150))

    assert len(results) == 150 and all(isinstance(r.error, ThrottledError) for r in results)
    assert results[0].error.retry_after == 60.0 and sleeps == []
    assert len(fake.paths) == 2  # the second create batch was never sent


def test_a_held_decision_is_not_posted(retry):
    fake = FakeBusinessCentral()
    held = post_time(
        closed=("2026-11",), policy=posting_policy("UK01", closed_period=ClosedPeriodAction.HOLD)
    )

    [result] = adapter(fake, retry).post_time_entries([held])

    assert result.error.code == "NOT_POSTABLE" and fake.batches == []


# ------------------------------------------------------------------------------------------------ expenses


def test_an_expense_line_is_a_purchase_invoice_created_with_its_line_then_posted(retry):
    fake = FakeBusinessCentral()
    line = expense_line(entity_code="UK01", merchant="Dishoom")

    [result] = adapter(fake, retry).post_expense_lines([post_expense(line)])

    lookup, create, post = fake.batches
    assert filter_of(lookup[0]) == "vendorInvoiceNumber eq 'EX-EX-2001-V1'"
    assert create[0]["url"] == f"companies({COMPANY})/purchaseInvoices"
    assert create[0]["body"] == {
        "vendorNumber": "W-17",
        "vendorInvoiceNumber": "EX-EX-2001-V1",
        "invoiceDate": "2026-11-27",
        "postingDate": "2026-11-27",
        "currencyCode": "",
        "pricesIncludeTax": True,
        "purchaseInvoiceLines": [
            {
                "lineType": "Account",
                "lineObjectNumber": "64200",
                "description": "pshub EX-2001 v1 meals - Dishoom",
                "quantity": 1,
                "unitCost": 48.6,
                "taxCode": "STANDARD",
            }
        ],
    }
    invoice_id = "00000000-0000-0000-0000-000000000001"
    assert post == [
        {
            "method": "POST",
            "id": "1",
            "url": f"companies({COMPANY})/purchaseInvoices({invoice_id})/Microsoft.NAV.post",
            "headers": {},
        }
    ]
    assert (result.erp_id, result.created) == (invoice_id, True)


def test_a_line_in_a_closed_period_keeps_its_document_date_and_posts_on_the_next_periods_first_day(retry):
    fake = FakeBusinessCentral()

    adapter(fake, retry).post_expense_lines([post_expense(closed=("2026-11",))])

    body = fake.ops("POST", "purchaseInvoices")[0]["body"]
    assert (body["invoiceDate"], body["postingDate"]) == ("2026-11-27", "2026-12-01")


def test_a_reverse_charge_excludes_tax_and_a_foreign_currency_is_named(retry):
    fake = FakeBusinessCentral()
    line = expense_line(
        entity_code="UK01", category=ExpenseCategory.SOFTWARE, supplier_country="US", gross="50.00"
    )
    line = line.model_copy(update={"gross": line.gross.model_copy(update={"currency": "EUR"})})
    item = post_expense(line)

    adapter(fake, retry).post_expense_lines([item])

    body = fake.ops("POST", "purchaseInvoices")[0]["body"]
    assert (body["pricesIncludeTax"], body["currencyCode"]) == (False, "EUR")
    assert body["purchaseInvoiceLines"][0]["taxCode"] == "REVERSE"


def test_an_invoice_already_posted_is_answered_as_it_is(retry):
    fake = FakeBusinessCentral()
    item = post_expense()
    fake.existing["purchaseInvoices"] = [existing_invoice(item)]

    [result] = adapter(fake, retry).post_expense_lines([item])

    assert (result.erp_id, result.created) == ("22222222-0000-0000-0000-000000000001", False)
    assert len(fake.batches) == 1  # the lookup only


def test_a_draft_left_by_a_crash_is_posted_not_created_again(retry):
    fake = FakeBusinessCentral()
    item = post_expense()
    fake.existing["purchaseInvoices"] = [existing_invoice(item, status="Draft")]

    [result] = adapter(fake, retry).post_expense_lines([item])

    assert [op["url"].rsplit("/", 1)[-1] for op in fake.ops("POST")] == ["Microsoft.NAV.post"]
    assert (result.erp_id, result.created) == ("22222222-0000-0000-0000-000000000001", False)


def test_a_draft_dated_by_an_earlier_decision_is_redated_then_posted(retry):
    fake = FakeBusinessCentral()
    item = post_expense(closed=("2026-11",))  # now decided: post on 2026-12-01
    fake.existing["purchaseInvoices"] = [existing_invoice(item, status="Draft", postingDate="2026-11-27")]

    [result] = adapter(fake, retry).post_expense_lines([item])

    [patch] = fake.ops("PATCH")
    assert patch["url"] == f"companies({COMPANY})/purchaseInvoices(22222222-0000-0000-0000-000000000001)"
    assert patch["headers"]["If-Match"] == 'W/"7"'
    assert patch["body"] == {"postingDate": "2026-12-01", "invoiceDate": "2026-11-27"}
    assert len(fake.ops("POST")) == 1 and result.posted


def test_surplus_drafts_of_a_reference_are_deleted_and_the_posted_invoice_answers(retry):
    fake = FakeBusinessCentral()
    item = post_expense()
    fake.existing["purchaseInvoices"] = [
        existing_invoice(item, id="draft-1", status="Draft", **{"@odata.etag": 'W/"3"'}),
        existing_invoice(item),
        existing_invoice(item, id="elsewhere", vendorNumber="V-OTHER", status="Draft"),  # not ours
    ]

    [result] = adapter(fake, retry).post_expense_lines([item])

    [delete] = fake.ops("DELETE")
    assert delete["url"].endswith("purchaseInvoices(draft-1)") and delete["headers"] == {"If-Match": 'W/"3"'}
    assert result.erp_id == "22222222-0000-0000-0000-000000000001" and fake.ops("POST") == []


def test_a_refused_posting_names_the_period_and_date_and_keeps_bcs_reason(retry):
    fake = FakeBusinessCentral()
    reason = "Posting Date is not within your range of allowed posting dates."
    fake.rules.append(
        (
            lambda op: op["url"].endswith("Microsoft.NAV.post"),
            (400, bc_error(400, "Application_FieldValidationException", reason)),
        )
    )

    [result] = adapter(fake, retry).post_expense_lines([post_expense()])

    error = result.error
    assert isinstance(error, DataValidationError) and "2026-11" in error.message
    assert error.code == CLOSED_PERIOD  # the poster reads the calendar again and decides again
    assert error.problems == [
        {
            "field": "record",
            "problem": reason,
            "code": "Application_FieldValidationException",
            "period": "2026-11",
            "postingDate": "2026-11-27",
        }
    ]


def test_a_posting_refused_because_another_caller_posted_the_invoice_meanwhile_is_that_record(retry):
    """Two posters racing on one line: the second one's post action is refused ("already been posted"); the
    adapter looks the invoice up again and answers the posted record, never a refusal to park."""
    fake = FakeBusinessCentral()
    item = post_expense()
    posted = existing_invoice(item, id="posted-by-the-other")

    def already_posted(op):
        if op["url"].endswith("Microsoft.NAV.post"):
            fake.existing["purchaseInvoices"] = [posted]  # what the next lookup sees
            return True
        return False

    message = "Purchase Invoice 108001 has already been posted."
    fake.rules.append((already_posted, (400, bc_error(400, "Application_DialogException", message))))

    [result] = adapter(fake, retry).post_expense_lines([item])

    assert result.error is None and result.erp_id == "posted-by-the-other"
    assert len(fake.batches) == 4  # lookup, create, post, the lookup after the refusal


def test_a_posting_refused_for_another_reason_keeps_bcs_code_and_reason(retry):
    fake = FakeBusinessCentral()
    message = "Vendor Invoice No. must have a value in Purchase Header."
    fake.rules.append(
        (
            lambda op: op["url"].endswith("Microsoft.NAV.post"),
            (400, bc_error(400, "Application_FieldValidationException", message)),
        )
    )

    [result] = adapter(fake, retry).post_expense_lines([post_expense()])

    assert result.error.code == "Application_FieldValidationException" and message in result.error.message


def test_invoices_can_be_left_as_drafts_for_finance(retry):
    fake = FakeBusinessCentral()

    [result] = adapter(fake, retry, post_invoices=False).post_expense_lines([post_expense()])

    assert len(fake.batches) == 2 and not any(op["url"].endswith("post") for op in fake.ops("POST"))
    assert result.created and result.posted


def test_an_unmapped_account_or_tax_code_fails_that_line_only(retry):
    fake = FakeBusinessCentral()
    travel = expense_line(entity_code="UK01", psa_id="EX-1", category=ExpenseCategory.TRAVEL)

    results = adapter(fake, retry).post_expense_lines([post_expense(travel), post_expense()])

    assert results[0].error.code == "UNMAPPED_VALUE" and results[1].posted


# -------------------------------------------------------------------------------------- calendar and errors


def test_the_calendar_reads_periods_and_allowed_posting_dates_in_one_batch(retry):
    fake = FakeBusinessCentral()
    periods = [
        {"id": "p9", "startingDate": "2026-09-01", "name": "September", "closed": True, "dateLocked": True},
        {"id": "p10", "startingDate": "2026-10-01", "name": "October", "closed": False, "dateLocked": True},
        {"id": "p11", "startingDate": "2026-11-01", "name": "November", "closed": False, "dateLocked": True},
        {"id": "p12", "startingDate": "2026-12-01", "name": "December", "closed": False, "dateLocked": False},
    ]
    setup = {"id": "s", "allowPostingFrom": "2026-11-01", "allowPostingTo": "0001-01-01"}
    fake.rules += [
        (lambda op: "accountingPeriods" in op["url"], (200, {"value": periods})),
        (lambda op: "generalLedgerSetup" in op["url"], (200, {"value": [setup]})),
    ]

    calendar = adapter(fake, retry).accounting_calendar("UK01", subsidiary_id=COMPANY)

    assert len(fake.batches) == 1 and {op["method"] for op in fake.batches[0]} == {"GET"}
    assert [(p.name, p.start_date, p.end_date, p.status) for p in calendar.periods] == [
        ("2026-09", dt.date(2026, 9, 1), dt.date(2026, 9, 30), PeriodStatus.CLOSED),
        ("2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31), PeriodStatus.CLOSED),  # before allowed dates
        ("2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30), PeriodStatus.OPEN),
        ("2026-12", dt.date(2026, 12, 1), dt.date(2026, 12, 31), PeriodStatus.OPEN),
    ]


def test_a_company_without_those_entities_raises_the_classified_error(retry):
    fake = FakeBusinessCentral()
    fake.rules.append(
        (lambda op: True, (404, bc_error(404, "BadRequest_ResourceNotFound", "Resource not found.")))
    )

    with pytest.raises(PermanentError) as raised:
        adapter(fake, retry).accounting_calendar("UK01", subsidiary_id=COMPANY)

    assert raised.value.code == "BadRequest_ResourceNotFound"


@pytest.mark.parametrize(
    ("status", "code", "headers", "expected"),
    [
        (429, "Application_TooManyRequests", {"Retry-After": "3"}, ThrottledError),
        (412, "Request_EntityChanged", {}, ConflictError),
        (400, "BadRequest_InvalidToken", {}, PermanentError),
        (400, "BadRequest", {}, DataValidationError),
        (401, "Authentication_InvalidCredentials", {}, PermanentError),
        (503, "Internal_ServiceUnavailable", {}, TransientError),
        (500, "Internal_ServerError", {}, TransientError),
    ],
)
def test_bcs_answers_map_onto_the_taxonomy(status, code, headers, expected):
    error = classify_for("bc")(httpx.Response(status, json=bc_error(status, code), headers=headers))

    assert type(error) is expected and error.code == code
    if expected is ThrottledError:
        assert error.retry_after == 3.0


# ------------------------------------------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("psa_id", "version", "pattern"),
    [
        ("88123", 2, r"EX-88123-V2"),
        ("EX-2001", 1, r"EX-EX-2001-V1"),
        ("ex-2001", 1, r"EXH-[0-9A-F]{12}-V1"),  # BC upper-cases codes: lower case would merge ids
        ("A" * 40, 3, r"EXH-[0-9A-F]{12}-V3"),  # too long for Code[35]
    ],
)
def test_references_are_upper_case_and_fit_bcs_35_characters(psa_id, version, pattern):
    ref = bm.reference("EX", psa_id, version)

    assert re.fullmatch(pattern, ref) and len(ref) <= 35


def test_references_stay_distinct_where_bc_would_merge_them():
    long_id = "A" * 40
    refs = {
        bm.reference("EX", "ab-1", 1),
        bm.reference("EX", "AB-1", 1),
        bm.reference("EX", long_id, 1),
        bm.reference("EX", long_id + "B", 1),
        bm.reference("EX", "AB-1", 2),
        bm.reference("TE", "AB-1", 1),
    }

    assert len(refs) == 6 and all(len(r) <= 35 for r in refs)
    assert bm.reference("EX", "ab-1", 1).startswith("EXH-")


def test_a_version_too_long_for_a_reference_fails_that_entry_only(retry):
    fake = FakeBusinessCentral()
    huge = post_time(time_entry(legal_entity_code="UK01", psa_id="te-lower", version=10**17))

    results = adapter(fake, retry).post_time_entries([huge, *entries(1)])

    assert results[0].error.code == "UNREPRESENTABLE" and results[1].posted
