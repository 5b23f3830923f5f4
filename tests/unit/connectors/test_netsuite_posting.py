"""NetSuite posting (time bills, expense reports, accounting periods) against hand-written answers in NetSuite's
documented shapes: one upsert per item, external ids with the version, per-item results, period refusals."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
import time
from decimal import Decimal

import httpx
import pytest

from hub.connectors.netsuite import CLOSED_PERIOD, NetSuiteErp
from hub.connectors.ports import PostExpense, PostTime
from hub.errors import DataValidationError, ThrottledError, TransientError
from hub.flows.posting.rules import posting_decision, tax_treatment
from hub.mapping import netsuite as nm
from hub.model import ClosedPeriodAction, ExpenseCategory, PeriodStatus
from tests.support.time_expense_builders import (
    entity,
    expense_line,
    posting_policy,
    tax_rules,
    time_entry,
)

BASE = "https://1234567.suitetalk.api.netsuite.com"
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
CATEGORIES = {ExpenseCategory.MEALS: "2", ExpenseCategory.SOFTWARE: "6"}
TAX_CODES = {"US-ST": None, "US-USE": "9", "GB-S20": "5", "GB-RC20": "8"}


def suiteql_row(internal_id, name, start, end, **flags):
    row = {
        "links": [],
        "id": internal_id,
        "periodname": name,
        "startdate": start,
        "enddate": end,
        "closed": "F",
        "aplocked": "F",
        "alllocked": "F",
        "isadjust": "F",
        "isinactive": "F",
    }
    row.update({k: "T" if v else "F" for k, v in flags.items()})
    return row


PERIOD_ROWS = [
    suiteql_row("31", "Oct 2026", "10/1/2026", "10/31/2026"),
    suiteql_row("32", "Nov 2026", "11/1/2026", "11/30/2026"),
    suiteql_row("33", "Dec 2026", "12/1/2026", "12/31/2026"),
]


def ns_error(status: int, code: str, detail: str = "vendor text", path: str | None = None, headers=None):
    item = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    body = {"type": "about:blank", "title": "Error", "status": status, "o:errorDetails": [item]}
    return httpx.Response(status, json=body, headers=headers)


class FakeNetSuite:
    """Token, SuiteQL over ``rows`` (paged by ``page``), and external-id upserts with stable internal ids.
    ``script`` maps ``"PUT timebill/eid:te-X-v1"`` to the answers to give first."""

    def __init__(self, rows=None, page: int = 1000, script=None):
        self.rows = list(PERIOD_ROWS if rows is None else rows)
        self.page = page
        self.script = script or {}
        self.ids: dict[str, str] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/token"):
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": "3600"}
            )
        self.requests.append(request)
        if path == SUITEQL:
            offset = int(request.url.params.get("offset", "0"))
            items = self.rows[offset : offset + self.page]
            has_more = offset + len(items) < len(self.rows)
            return httpx.Response(200, json={"items": items, "hasMore": has_more, "count": len(items)})
        key = path.removeprefix(RECORD + "/")
        scripted = self.script.get(f"{request.method} {key}")
        if scripted:
            return scripted.pop(0)
        record_type, _, eid = key.partition("/eid:")
        internal = self.ids.setdefault(f"{record_type}/{eid}", str(700 + len(self.ids)))
        return httpx.Response(204, headers={"Location": f"{BASE}{RECORD}/{record_type}/{internal}"})

    def puts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "PUT"]


def adapter(fake: FakeNetSuite, retry, **kwargs) -> NetSuiteErp:
    options = {
        "currency_ids": {"USD": "1", "GBP": "2"},
        "expense_category_ids": CATEGORIES,
        "tax_code_ids": TAX_CODES,
        "service_item_id": "10",
        **kwargs,
    }
    return NetSuiteErp(
        httpx.Client(transport=httpx.MockTransport(fake)),
        account_id="1234567",
        token_url=f"{BASE}/services/rest/auth/oauth2/v1/token",
        client_id="ns-client",
        client_secret="ns-secret",
        retry=retry,
        **options,
    )


def ns_calendar(code: str = "US01", closed: tuple[str, ...] = ()):
    """The calendar the adapter reads from PERIOD_ROWS (names as the adapter makes them)."""
    rows = [suiteql_row(r["id"], r["periodname"], r["startdate"], r["enddate"]) for r in PERIOD_ROWS]
    for row in rows:
        if nm.period_name(row["periodname"]) in closed:
            row["closed"] = "T"
    return nm.accounting_calendar(code, nm.periods_from_rows(rows))


def post_time(entry=None, calendar=None, policy=None, subsidiary="3") -> PostTime:
    entry = entry or time_entry()
    code = entry.legal_entity_code
    decision = posting_decision(
        entry.work_date, NOW, entity(code), calendar or ns_calendar(code), policy or posting_policy(code)
    )
    return PostTime(entry=entry, decision=decision, subsidiary_id=subsidiary)


def post_expense(line=None, calendar=None, subsidiary="3") -> PostExpense:
    line = line or expense_line()
    code = line.legal_entity_code
    decision = posting_decision(
        line.expense_date, NOW, entity(code), calendar or ns_calendar(code), posting_policy(code)
    )
    tax = tax_treatment(line, entity(code), tax_rules())
    return PostExpense(line=line, decision=decision, tax=tax, subsidiary_id=subsidiary)


def body_of(request: httpx.Request) -> dict:
    return json.loads(request.content)


# ---------------------------------------------------------------------------------------------- time bills


def test_a_time_entry_is_upserted_as_a_time_bill_by_its_id_and_version(retry):
    fake = FakeNetSuite()

    [result] = adapter(fake, retry).post_time_entries([post_time()])

    [put] = fake.puts()
    assert put.url.path == f"{RECORD}/timebill/eid:te-TE-1001-v1"
    assert body_of(put) == {
        "externalId": "te-TE-1001-v1",
        "employee": {"externalId": "W-17"},
        "tranDate": "2026-11-30",
        "hours": 8,
        "customer": {"externalId": "sf-opp-0065g00000AbCdEAAV"},
        "caseTaskEvent": {"externalId": "sf-opp-0065g00000AbCdEAAV-wbs-1_2e1"},
        "isBillable": True,
        "item": {"id": "10"},
        "subsidiary": {"id": "3"},
        "memo": "pshub:TE-1001:v1",
    }
    assert (result.psa_id, result.version, result.erp_id, result.error) == ("TE-1001", 1, "700", None)
    assert result.posted


def test_a_redelivery_upserts_the_same_record_and_a_new_version_is_another_record(retry):
    fake = FakeNetSuite()
    erp = adapter(fake, retry)

    first = erp.post_time_entries([post_time()])
    again = erp.post_time_entries([post_time()])
    edited = erp.post_time_entries([post_time(time_entry(version=2, hours="6.5"))])

    paths = [r.url.path.rsplit("/", 1)[-1] for r in fake.puts()]
    assert paths == ["eid:te-TE-1001-v1", "eid:te-TE-1001-v1", "eid:te-TE-1001-v2"]
    assert first[0].erp_id == again[0].erp_id == "700" and edited[0].erp_id == "701"
    assert body_of(fake.puts()[2])["hours"] == 6.5


def test_non_billable_time_without_a_task_sends_neither_task_nor_service_item(retry):
    fake = FakeNetSuite()

    adapter(fake, retry).post_time_entries([post_time(time_entry(billable=False, task=None))])

    body = body_of(fake.puts()[0])
    assert "caseTaskEvent" not in body and "item" not in body and body["isBillable"] is False


def test_an_account_without_project_tasks_gets_no_task_reference(retry):
    fake = FakeNetSuite()

    adapter(fake, retry, project_tasks=False).post_time_entries([post_time()])

    assert "caseTaskEvent" not in body_of(fake.puts()[0])


def test_time_in_a_closed_period_moves_to_the_next_open_period_and_the_memo_keeps_its_date(retry):
    fake = FakeNetSuite()
    item = post_time(time_entry(work_date=dt.date(2026, 11, 20)), calendar=ns_calendar(closed=("Nov-2026",)))

    adapter(fake, retry).post_time_entries([item])

    body = body_of(fake.puts()[0])
    assert item.decision.period == "Dec-2026"
    assert body["tranDate"] == "2026-12-01" and body["memo"] == "pshub:TE-1001:v1 (dated 2026-11-20)"


def test_one_bad_entry_is_its_own_result_and_the_others_post(retry):
    bad = time_entry(psa_id="TE-2", worker_id="W-NOBODY")
    fake = FakeNetSuite(
        script={
            "PUT timebill/eid:te-TE-2-v1": [ns_error(400, "INVALID_CONTENT", "Invalid employee", "employee")]
        }
    )

    results = adapter(fake, retry).post_time_entries(
        [post_time(time_entry(psa_id="TE-1")), post_time(bad), post_time(time_entry(psa_id="TE-3"))]
    )

    assert [r.psa_id for r in results] == ["TE-1", "TE-2", "TE-3"]
    assert [r.posted for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, DataValidationError) and error.code == "INVALID_CONTENT"
    assert error.problems == [{"field": "employee", "problem": "Invalid employee", "code": "INVALID_CONTENT"}]


def test_the_concurrency_limit_after_the_clients_retries_is_a_throttled_result_not_an_exception(
    retry, sleeps
):
    limit = ns_error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded.")
    fake = FakeNetSuite(script={"PUT timebill/eid:te-TE-1-v1": [limit, limit, limit]})

    results = adapter(fake, retry).post_time_entries(
        [post_time(time_entry(psa_id="TE-1")), post_time(time_entry(psa_id="TE-2"))]
    )

    assert isinstance(results[0].error, ThrottledError)
    assert results[0].error.code == "CONCURRENCY_LIMIT_EXCEEDED" and len(sleeps) == 2
    assert results[1].posted


def test_a_server_error_is_retried_then_a_transient_result(retry):
    failure = ns_error(503, "SERVICE_UNAVAILABLE")
    fake = FakeNetSuite(script={"PUT timebill/eid:te-TE-1001-v1": [failure, failure, failure]})

    [result] = adapter(fake, retry).post_time_entries([post_time()])

    assert isinstance(result.error, TransientError) and len(fake.puts()) == 3


def test_a_period_refusal_is_a_closed_period_error_naming_the_period(retry):
    refusal = ns_error(400, "USER_ERROR", "The accounting period Nov 2026 is closed.", "tranDate")
    fake = FakeNetSuite(script={"PUT timebill/eid:te-TE-1001-v1": [refusal]})

    [result] = adapter(fake, retry).post_time_entries([post_time()])

    error = result.error
    assert isinstance(error, DataValidationError) and error.code == CLOSED_PERIOD
    assert error.problems == [
        {
            "field": "tranDate",
            "problem": "The accounting period Nov 2026 is closed.",
            "code": "USER_ERROR",
            "period": "Nov-2026",
        }
    ]
    assert "Nov-2026" in error.message


def test_a_malformed_date_is_a_data_error_not_a_period_refusal(retry):
    malformed = ns_error(400, "INVALID_CONTENT", "Invalid Field Value", "tranDate")
    fake = FakeNetSuite(script={"PUT timebill/eid:te-TE-1001-v1": [malformed]})

    [result] = adapter(fake, retry).post_time_entries([post_time()])

    assert isinstance(result.error, DataValidationError) and result.error.code == "INVALID_CONTENT"


def test_a_held_decision_is_not_posted(retry):
    fake = FakeNetSuite()
    held = post_time(
        calendar=ns_calendar(closed=("Nov-2026",)),
        policy=posting_policy(closed_period=ClosedPeriodAction.HOLD),
    )

    [result] = adapter(fake, retry).post_time_entries([held])

    assert result.error.code == "NOT_POSTABLE" and fake.puts() == []


def test_several_workers_post_in_parallel_and_keep_the_order(retry):
    fake = FakeNetSuite()
    items = [post_time(time_entry(psa_id=f"TE-{n}")) for n in range(20)]

    results = adapter(fake, retry, workers=4).post_time_entries(items)

    assert [r.psa_id for r in results] == [f"TE-{n}" for n in range(20)]
    assert all(r.posted for r in results) and len(fake.puts()) == 20


def test_one_worker_at_a_time_waits_for_a_slot_and_stops_as_soon_as_the_batch_has_no_item_left(retry):
    """One slot for three workers: the one holding it posts the whole batch; of the others, one at a time
    waits for a slot (one reader of the budget per batch, not one per worker), and each gives up its wait
    (its hold is entered with None) once no item is left, instead of waiting for a slot it no longer needs
    (which held every batch open until the budget freed up)."""
    fake = FakeNetSuite()
    items = [post_time(time_entry(psa_id=f"TE-{n}")) for n in range(12)]
    holders: list[str] = []
    waiting, most_waiting = [0], [0]
    lock = threading.Lock()
    someone_waits = threading.Event()

    @contextlib.contextmanager
    def hold(wanted):
        with lock:
            first = not holders
            holders.append("slot" if first else "waiting")
        if first:
            yield "lease"
            return
        with lock:
            waiting[0] += 1
            most_waiting[0] = max(most_waiting[0], waiting[0])
        someone_waits.set()
        while wanted():  # the only slot stays taken: wait until the batch no longer needs this worker
            time.sleep(0.001)
        with lock:
            waiting[0] -= 1
        yield None

    def erp(request):  # the first post waits until another worker is waiting for a slot, and a little more
        if not someone_waits.is_set():  # (time for the third to start waiting too, if it could)
            assert someone_waits.wait(5)
            time.sleep(0.2)
        return fake(request)

    results = adapter(erp, retry, workers=3, hold=hold).post_time_entries(items)

    assert all(r.posted for r in results) and len(fake.puts()) == 12
    assert holders[:2] == ["slot", "waiting"] and len(holders) <= 3  # the third, if at all, after the second
    assert most_waiting == [1] and waiting == [0]


# ------------------------------------------------------------------------------------------ expense reports


def test_an_expense_line_is_one_report_replacing_its_lines_in_the_decided_period(retry):
    fake = FakeNetSuite()

    [result] = adapter(fake, retry).post_expense_lines([post_expense()])

    [put] = fake.puts()
    assert put.url.path == f"{RECORD}/expensereport/eid:ex-EX-2001-v1"
    assert put.url.params["replace"] == "expense"
    assert body_of(put) == {
        "externalId": "ex-EX-2001-v1",
        "entity": {"externalId": "W-17"},
        "tranDate": "2026-11-27",
        "postingPeriod": {"id": "32"},
        "subsidiary": {"id": "3"},
        "currency": {"id": "1"},
        "memo": "pshub:EX-2001:v1",
        "supervisorApproval": True,
        "expense": {
            "items": [
                {
                    "expenseDate": "2026-11-27",
                    "category": {"id": "2"},
                    "currency": {"id": "1"},
                    "amount": 48.6,  # US sales tax is cost here: the gross, no tax code
                    "receipt": True,
                    "isBillable": False,
                    "customer": {"externalId": "sf-opp-0065g00000AbCdEAAV"},
                    "memo": "pshub:EX-2001:v1",
                }
            ]
        },
    }
    assert result.erp_id == "700"


def test_periods_are_read_once_with_suiteql_then_reused(retry):
    fake = FakeNetSuite()
    erp = adapter(fake, retry)

    erp.post_expense_lines([post_expense(expense_line(psa_id=f"EX-{n}")) for n in range(3)])

    queries = [r for r in fake.requests if r.url.path == SUITEQL]
    assert len(queries) == 1 and queries[0].headers["Prefer"] == "transient"
    assert json.loads(queries[0].content) == {"q": nm.PERIODS_QUERY}


def test_a_line_in_a_closed_period_keeps_its_date_and_posts_into_the_next_open_period(retry):
    fake = FakeNetSuite()
    item = post_expense(calendar=ns_calendar(closed=("Nov-2026",)))

    adapter(fake, retry).post_expense_lines([item])

    body = body_of(fake.puts()[0])
    assert (body["tranDate"], body["postingPeriod"]) == ("2026-11-27", {"id": "33"})


def test_vat_paid_to_the_supplier_pins_net_tax_and_gross(retry):
    fake = FakeNetSuite()
    line = expense_line(entity_code="UK01", gross="120.00")

    adapter(fake, retry).post_expense_lines([post_expense(line, calendar=ns_calendar("UK01"))])

    item = body_of(fake.puts()[0])["expense"]["items"][0]
    assert (item["amount"], item["tax1Amt"], item["grossAmt"], item["taxCode"]) == (100, 20, 120, {"id": "5"})
    assert item["currency"] == {"id": "2"}


def test_a_reverse_charge_sends_the_net_and_its_code_and_lets_netsuite_self_assess(retry):
    fake = FakeNetSuite()
    line = expense_line(
        entity_code="UK01", category=ExpenseCategory.SOFTWARE, supplier_country="US", gross="50.00"
    )

    adapter(fake, retry).post_expense_lines([post_expense(line, calendar=ns_calendar("UK01"))])

    item = body_of(fake.puts()[0])["expense"]["items"][0]
    assert (item["amount"], item["taxCode"]) == (50, {"id": "8"})
    assert "tax1Amt" not in item and "grossAmt" not in item


def test_an_unmapped_category_or_tax_code_is_a_data_error_before_any_call(retry):
    fake = FakeNetSuite()
    travel = expense_line(psa_id="EX-1", category=ExpenseCategory.TRAVEL)

    results = adapter(fake, retry, tax_code_ids={}).post_expense_lines(
        [post_expense(travel), post_expense(expense_line(psa_id="EX-2"))]
    )

    assert [r.error.code for r in results] == ["UNMAPPED_VALUE", "UNMAPPED_VALUE"]
    assert results[0].error.problems[0]["field"] == "category"
    assert results[1].error.problems[0]["field"] == "taxCode"
    assert fake.puts() == []


def test_a_period_the_account_does_not_have_is_a_data_error(retry):
    fake = FakeNetSuite(rows=PERIOD_ROWS[:1])

    [result] = adapter(fake, retry).post_expense_lines([post_expense()])

    assert result.error.code == "UNKNOWN_PERIOD" and result.error.problems[0]["period"] == "Nov-2026"
    assert fake.puts() == []


def test_an_expense_report_refused_for_its_period_names_the_period(retry):
    refusal = ns_error(400, "USER_ERROR", "The accounting period Nov 2026 is locked.", "tranDate")
    fake = FakeNetSuite(script={"PUT expensereport/eid:ex-EX-2001-v1": [refusal]})

    [result] = adapter(fake, retry).post_expense_lines([post_expense()])

    assert result.error.code == CLOSED_PERIOD and result.error.problems[0]["period"] == "Nov-2026"


# -------------------------------------------------------------------------------------- accounting periods


def test_the_calendar_maps_closed_and_locked_periods_and_skips_adjustments_and_inactive_ones(retry):
    rows = [
        suiteql_row("30", "Sep 2026", "9/1/2026", "9/30/2026", closed=True),
        suiteql_row("31", "Oct 2026", "10/1/2026", "10/31/2026", alllocked=True),
        suiteql_row("32", "Nov 2026", "2026-11-01", "2026-11-30", aplocked=True),
        suiteql_row("33", "Dec 2026", "12/1/2026", "12/31/2026"),
        suiteql_row("34", "Adjust 2026", "12/31/2026", "12/31/2026", isadjust=True),
        suiteql_row("35", "Old", "1/1/2020", "1/31/2020", isinactive=True),
    ]
    fake = FakeNetSuite(rows=rows, page=2)

    calendar = adapter(fake, retry).accounting_calendar("US01", subsidiary_id="3")

    assert [(p.name, p.status, p.start_date, p.end_date) for p in calendar.periods] == [
        ("Sep-2026", PeriodStatus.CLOSED, dt.date(2026, 9, 1), dt.date(2026, 9, 30)),
        ("Oct-2026", PeriodStatus.CLOSED, dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        ("Nov-2026", PeriodStatus.CLOSED, dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
        ("Dec-2026", PeriodStatus.OPEN, dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ]
    assert calendar.legal_entity_code == "US01"
    assert [r.url.params["offset"] for r in fake.requests] == ["0", "2", "4"]


def test_period_names_become_canonical_and_stay_unique():
    rows = [
        suiteql_row("1", "Jan 2026", "1/1/2026", "1/31/2026"),
        suiteql_row("2", "Jan/2026", "2/1/2026", "2/28/2026"),
        suiteql_row("3", "FY 2026 : Q1 : Mar 2026", "3/1/2026", "3/31/2026"),
    ]

    names = [p.name for p in nm.periods_from_rows(rows)]

    assert names == ["Jan-2026", "Jan-2026-2", "FY-2026-Q1-Mar-2026"]


def test_expense_amounts_follow_the_tax_kind():
    from hub.model import TaxKind

    assert nm.expense_amounts(Decimal("12"), Decimal("10"), Decimal("2"), TaxKind.DOMESTIC, "5") == {
        "amount": 10,
        "taxCode": {"id": "5"},
        "tax1Amt": 2,
        "grossAmt": 12,
    }
    assert nm.expense_amounts(Decimal("12.5"), Decimal("12.5"), Decimal("0"), TaxKind.NO_TAX, None) == {
        "amount": 12.5
    }


@pytest.mark.parametrize(("psa_id", "version"), [("TE-1", 2), ("TE-1-v1", 2), ("a_b", 10)])
def test_external_ids_are_netsuite_safe_and_carry_the_version(psa_id, version):
    eid = nm.time_external_id(time_entry(psa_id=psa_id, version=version))

    assert eid == f"te-{psa_id}-v{version}" and re.fullmatch(r"[A-Za-z0-9_-]+", eid)
