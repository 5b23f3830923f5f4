"""Kantata adapter against a hand-written, stateful Kantata OX API in its documented response format."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import httpx
import pytest
from hub.connectors.kantata import KantataPsa, classify
from hub.errors import DataValidationError, PermanentError, ThrottledError, TransientError
from hub.model import Account, BillingSchedule, BillingType, Milestone, Money, Project, WbsTask

BASE = "https://kantata.test/api/v1"
OPP_ID = "006Dn00000A1b2cAAB"


def gbp(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


WBS = (
    WbsTask(code="1", name="Discovery", kind="phase"),
    WbsTask(code="1.1", name="Workshops", kind="task", parent_code="1", budget=gbp("10000")),
    WbsTask(code="2", name="Build", kind="phase"),
    WbsTask(code="2.1", name="Configure", kind="task", parent_code="2", budget=gbp("60000.50")),
    WbsTask(code="2.2", name="Go-live", kind="milestone", parent_code="2", due_date=dt.date(2027, 3, 31)),
)
SCHEDULE = BillingSchedule(
    billing_type=BillingType.FIXED_FEE_MILESTONES,
    currency="GBP",
    milestones=(
        Milestone(
            code="M1", name="Kick-off", amount=gbp("25000"), due_date=dt.date(2026, 11, 16), wbs_code="1"
        ),
        Milestone(
            code="M2", name="Go-live", amount=gbp("100000"), due_date=dt.date(2027, 3, 31), wbs_code="2.2"
        ),
    ),
)


def project(opp_id: str = OPP_ID) -> Project:
    return Project(
        external_id=f"sf-opp-{opp_id}",
        name="Acme - ERP rollout",
        opportunity_crm_id=opp_id,
        customer=Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd"),
        legal_entity_code="UK01",
        currency="GBP",
        contract_value=gbp("125000"),
        start_date=dt.date(2026, 11, 16),
        end_date=dt.date(2027, 3, 31),
        billing_type=BillingType.FIXED_FEE_MILESTONES,
        wbs=WBS,
        billing_schedule=SCHEDULE,
    )


class FakeKantata:
    """Workspaces, external references, stories and fixed fee items, paginated as Kantata does.

    ``script`` maps "METHOD /path" to answers returned instead of processing the request; the special answer
    ``"lose"`` processes the request and then loses the answer (a read timeout).
    """

    def __init__(self, page_size: int = 200, script: dict[str, list] | None = None) -> None:
        self.page_size = page_size
        self.script = script or {}
        self.tables: dict[str, dict[str, dict]] = {
            "workspaces": {},
            "external_references": {},
            "stories": {},
            "fixed_fee_items": {},
        }
        self.next_id = 1000
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api/v1")
        key = f"{request.method} {path}"
        lose = False
        if self.script.get(key):
            answer = self.script[key].pop(0)
            if answer == "lose":
                lose = True
            else:
                return answer
        assert request.headers["Authorization"] == "Bearer kantata-token"
        collection = path.removeprefix("/").removesuffix(".json")
        if collection not in self.tables:
            return httpx.Response(404, json={"errors": [{"type": "system", "message": "not found"}]})
        if request.method == "GET":
            return self._list(collection, request.url.params)
        response = self._create(collection, json.loads(request.content))
        if lose:
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    # -- Kantata behaviour ---------------------------------------------------------------------------

    def _answer(
        self, collection: str, rows: list[dict], page: int = 1, page_count: int = 1
    ) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "count": len(rows),
                "results": [{"key": collection, "id": row["id"]} for row in rows],
                collection: {row["id"]: row for row in rows},
                "meta": {
                    "count": len(rows),
                    "page_count": page_count,
                    "page_number": page,
                    "page_size": len(rows),
                },
            },
        )

    def _list(self, collection: str, params: httpx.QueryParams) -> httpx.Response:
        rows = list(self.tables[collection].values())
        for name in ("workspace_id", "subject_type", "service_name", "service_model", "service_model_ref"):
            if name in params:
                rows = [r for r in rows if str(r.get(name)) == params[name]]
        if "search" in params:
            found = re.fullmatch(r"description:'(.*)'", params["search"])
            rows = [r for r in rows if found and found.group(1) in (r.get("description") or "")]
        size = min(int(params.get("per_page", 20)), self.page_size)
        page = int(params.get("page", 1))
        page_count = max(1, -(-len(rows) // size))
        return self._answer(collection, rows[(page - 1) * size : page * size], page, page_count)

    def _create(self, collection: str, body: dict) -> httpx.Response:
        singular = {"workspaces": "workspace", "stories": "story"}.get(collection, collection[:-1])
        fields = dict(body[singular])
        if collection == "external_references":
            clash = [
                r
                for r in self.tables[collection].values()
                if all(
                    r[k] == fields[k]
                    for k in ("subject_type", "service_name", "service_model", "service_model_ref")
                )
            ]
            if clash:
                return httpx.Response(
                    422,
                    json={
                        "errors": [
                            {
                                "type": "validation",
                                "message": "has already been taken",
                                "field": "service_model_ref",
                            }
                        ]
                    },
                )
        if collection == "stories" and not fields.get("title"):
            return httpx.Response(
                422, json={"errors": [{"type": "validation", "message": "can't be blank", "field": "title"}]}
            )
        self.next_id += 1
        row = {**fields, "id": str(self.next_id)}
        for ref in ("workspace_id", "subject_id", "parent_id", "story_id"):
            if ref in row and row[ref] is not None:
                row[ref] = str(row[ref])
        self.tables[collection][row["id"]] = row
        return self._answer(collection, [row])

    # -- test helpers -----------------------------------------------------------------------------------

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == "/api/v1" + path)


def psa(fake: FakeKantata, retry) -> KantataPsa:
    return KantataPsa(
        httpx.Client(transport=httpx.MockTransport(fake)), token="kantata-token", base_url=BASE, retry=retry
    )


def kantata_error(status: int, **kwargs) -> httpx.Response:
    return httpx.Response(status, **kwargs)


# --------------------------------------------------------------------------------------------- project


def test_given_a_new_opportunity_when_ensuring_the_project_then_a_workspace_is_created_and_linked(retry):
    fake = FakeKantata()

    workspace_id = psa(fake, retry).ensure_project(project())

    (workspace,) = fake.tables["workspaces"].values()
    assert workspace_id == workspace["id"]
    assert workspace["title"] == "Acme - ERP rollout"
    assert workspace["price_in_cents"] == 12_500_000
    assert workspace["currency"] == "GBP" and workspace["budgeted"] is True
    assert f"pshub:opportunity:{OPP_ID}" in workspace["description"]
    (reference,) = fake.tables["external_references"].values()
    assert reference["subject_id"] == workspace_id
    assert (reference["service_name"], reference["service_model"], reference["service_model_ref"]) == (
        "pshub",
        "Opportunity",
        OPP_ID,
    )


def test_given_the_project_exists_when_ensuring_it_twice_then_one_workspace_and_the_same_id(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)

    first = adapter.ensure_project(project())
    second = adapter.ensure_project(project())

    assert first == second
    assert len(fake.tables["workspaces"]) == 1
    assert len(fake.tables["external_references"]) == 1
    assert fake.calls("POST", "/workspaces.json") == 1


def test_given_a_crash_between_workspace_and_reference_when_rerun_then_the_orphan_is_adopted_not_duplicated(
    retry,
):
    fake = FakeKantata(script={"POST /external_references.json": [kantata_error(500)] * 3})
    adapter = psa(fake, retry)
    with pytest.raises(TransientError):
        adapter.ensure_project(project())
    assert len(fake.tables["workspaces"]) == 1
    assert fake.tables["external_references"] == {}

    workspace_id = adapter.ensure_project(project())

    assert len(fake.tables["workspaces"]) == 1
    assert workspace_id == next(iter(fake.tables["workspaces"]))
    assert len(fake.tables["external_references"]) == 1


def test_given_the_workspace_create_answer_is_lost_when_rerun_then_it_is_not_created_twice(retry, sleeps):
    fake = FakeKantata(script={"POST /workspaces.json": ["lose"]})
    adapter = psa(fake, retry)

    with pytest.raises(TransientError):
        adapter.ensure_project(project())
    assert fake.calls("POST", "/workspaces.json") == 1  # an ambiguous create is never replayed in-call

    workspace_id = adapter.ensure_project(project())

    assert list(fake.tables["workspaces"]) == [workspace_id]


def test_given_a_concurrent_run_linked_first_when_the_reference_is_refused_then_the_winners_workspace_is_used(
    retry,
):
    fake = FakeKantata()
    adapter = psa(fake, retry)
    winner = adapter.ensure_project(project())
    # This run did not see the winner's reference (it read before it existed) and created its own workspace.
    fake.script["GET /external_references.json"] = [
        httpx.Response(
            200, json={"count": 0, "results": [], "external_references": {}, "meta": {"page_count": 1}}
        )
    ]
    fake.script["GET /workspaces.json"] = [
        httpx.Response(200, json={"count": 0, "results": [], "workspaces": {}, "meta": {"page_count": 1}})
    ]

    result = adapter.ensure_project(project())

    assert result == winner
    assert len(fake.tables["external_references"]) == 1


def test_given_a_different_opportunity_when_ensuring_then_it_gets_its_own_workspace(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)

    first = adapter.ensure_project(project())
    other = adapter.ensure_project(project("006Dn00000B9z8yAAB"))

    assert first != other
    assert len(fake.tables["workspaces"]) == 2


# ------------------------------------------------------------------------------------------------- WBS


def test_given_a_wbs_when_ensured_then_every_task_is_created_parents_first_with_its_marker(retry):
    fake = FakeKantata()

    ids = psa(fake, retry).ensure_wbs("77", WBS)

    stories = fake.tables["stories"]
    assert set(ids) == {"1", "1.1", "2", "2.1", "2.2"}
    assert stories[ids["1.1"]]["parent_id"] == ids["1"]
    assert stories[ids["2.2"]]["parent_id"] == ids["2"]
    assert int(ids["1"]) < int(ids["1.1"]) and int(ids["2"]) < int(ids["2.1"])
    assert stories[ids["1"]]["story_type"] == "deliverable"
    assert stories[ids["2.2"]]["story_type"] == "milestone"
    assert stories[ids["2.1"]]["budget_estimate_in_cents"] == 6_000_050
    assert stories[ids["1.1"]]["description"] == "pshub:wbs:1.1"
    assert all(s["workspace_id"] == "77" for s in stories.values())


def test_given_children_listed_before_parents_when_ensured_then_parents_are_still_created_first(retry):
    fake = FakeKantata()

    ids = psa(fake, retry).ensure_wbs("77", tuple(reversed(WBS)))

    assert fake.tables["stories"][ids["2.1"]]["parent_id"] == ids["2"]


def test_given_tasks_already_there_across_pages_when_ensured_again_then_only_missing_ones_are_created(retry):
    fake = FakeKantata(page_size=2)
    adapter = psa(fake, retry)
    first = adapter.ensure_wbs("77", WBS[:4])
    fake.tables["stories"]["5"] = {
        "id": "5",
        "workspace_id": "77",
        "title": "Someone's task",
        "description": None,
    }

    second = adapter.ensure_wbs("77", WBS)

    assert {code: second[code] for code in first} == first
    assert len(fake.tables["stories"]) == 6
    assert fake.calls("POST", "/stories.json") == 5
    list_pages = [
        r.url.params["page"] for r in fake.requests if r.method == "GET" and "stories" in r.url.path
    ]
    assert list_pages == ["1", "1", "2", "3"]


def test_given_a_task_whose_parent_is_missing_when_ensured_then_data_validation_error_names_it(retry):
    fake = FakeKantata()
    orphan = (WbsTask(code="3.1", name="Orphan", kind="task", parent_code="3"),)

    with pytest.raises(DataValidationError) as caught:
        psa(fake, retry).ensure_wbs("77", orphan)

    assert caught.value.problems[0]["field"] == "wbs[3.1].parent_code"
    assert fake.calls("POST", "/stories.json") == 0


# --------------------------------------------------------------------------------------------- billing


def test_given_a_schedule_when_ensured_twice_then_each_milestone_is_one_fixed_fee_item(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)
    task_ids = adapter.ensure_wbs("77", WBS)

    first = adapter.ensure_billing_schedule("77", SCHEDULE, task_ids)
    second = adapter.ensure_billing_schedule("77", SCHEDULE, task_ids)

    assert first == second
    items = fake.tables["fixed_fee_items"]
    assert len(items) == 2
    assert [
        (items[i]["title"], items[i]["amount_in_cents"], items[i]["date"], items[i]["story_id"])
        for i in first
    ] == [
        ("M1 - Kick-off", 2_500_000, "2026-11-16", task_ids["1"]),
        ("M2 - Go-live", 10_000_000, "2027-03-31", task_ids["2.2"]),
    ]


def test_given_a_milestone_on_an_unknown_task_when_ensured_then_data_validation_error(retry):
    fake = FakeKantata()
    with pytest.raises(DataValidationError):
        psa(fake, retry).ensure_billing_schedule("77", SCHEDULE, {"1": "1001"})


# ------------------------------------------------------------------------------------------- taxonomy


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (kantata_error(429, headers={"Retry-After": "12"}), ThrottledError),
        (
            kantata_error(422, json={"errors": [{"type": "validation", "message": "bad", "field": "title"}]}),
            DataValidationError,
        ),
        (kantata_error(500), TransientError),
        (kantata_error(502), TransientError),
        (kantata_error(503), TransientError),
        (kantata_error(404, json={"errors": [{"type": "system", "message": "not found"}]}), PermanentError),
        (kantata_error(401), PermanentError),
        (kantata_error(403), PermanentError),
    ],
)
def test_given_a_kantata_answer_when_classified_then_it_maps_onto_the_taxonomy(response, expected):
    error = classify(response)
    assert type(error) is expected
    assert error.system == "kantata"


def test_given_429_with_retry_after_when_classified_then_the_hint_is_kept():
    assert classify(kantata_error(429, headers={"Retry-After": "12"})).retry_after == 12.0


def test_given_422_when_classified_then_problems_name_the_fields():
    error = classify(
        kantata_error(
            422,
            json={
                "errors": [
                    {"type": "validation", "message": "can't be blank", "field": "title"},
                    {"type": "validation", "message": "x"},
                ]
            },
        )
    )
    assert [p["field"] for p in error.problems] == ["title", "base"]


def test_given_persistent_rate_limiting_when_listing_then_throttled_error_after_retries_run_out(
    retry, sleeps
):
    fake = FakeKantata(script={"GET /stories.json": [kantata_error(429, headers={"Retry-After": "2"})] * 5})

    with pytest.raises(ThrottledError) as caught:
        psa(fake, retry).ensure_wbs("77", WBS)

    assert caught.value.retry_after == 2.0
    assert fake.calls("GET", "/stories.json") == 3
    assert sleeps == [2.0, 2.0]


def test_given_a_rate_limited_create_when_retried_then_the_story_is_created_once(retry, sleeps):
    fake = FakeKantata(script={"POST /stories.json": [kantata_error(429, headers={"Retry-After": "1"})]})

    psa(fake, retry).ensure_wbs("77", WBS[:1])

    assert len(fake.tables["stories"]) == 1
    assert sleeps == [1.0]
