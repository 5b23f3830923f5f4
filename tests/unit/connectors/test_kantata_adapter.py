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
    """Workspaces (with an embedded external reference), external references (create_or_update), stories and
    billing milestones, paginated as Kantata does; filters Kantata does not know are ignored, as it does.

    ``script`` maps "METHOD /path" to answers returned instead of processing the request; the special answer
    ``"lose"`` processes the request and then loses the answer (a read timeout); ``embed_references=False``
    drops a workspace's embedded reference (a vendor that ignores it).
    """

    FILTERS = {
        "workspaces": {},
        "stories": {"workspace_id": "workspace_id"},
        "billing_milestones": {"workspace_ids": "workspace_id"},
        "external_references": {
            name: name for name in ("subject_type", "service_name", "service_model", "service_model_ref")
        },
    }

    def __init__(
        self, page_size: int = 200, script: dict[str, list] | None = None, embed_references: bool = True
    ) -> None:
        self.page_size = page_size
        self.script = script or {}
        self.embed_references = embed_references
        self.tables: dict[str, dict[str, dict]] = {name: {} for name in self.FILTERS}
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
        if request.method == "POST" and collection == "external_references/create_or_update":
            body = json.loads(request.content)["external_reference"]
            response = self._answer("external_references", [self._upsert_reference(body)])
        elif collection not in self.tables or request.method not in ("GET", "POST"):
            return httpx.Response(404, json={"errors": [{"type": "system", "message": "Page Not Found"}]})
        elif request.method == "GET":
            return self._list(collection, request.url.params)
        else:
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
        if collection == "external_references" and "subject_type" not in params:
            return httpx.Response(
                400, json={"errors": [{"type": "system", "message": "param is missing: subject_type"}]}
            )
        rows = list(self.tables[collection].values())
        for param, field in self.FILTERS[collection].items():
            if param in params:
                rows = [r for r in rows if str(r.get(field)) == params[param]]
        if collection == "workspaces" and "search" in params:
            found = re.fullmatch(r"description:'(.*)'", params["search"])
            rows = [r for r in rows if found and found.group(1) in (r.get("description") or "")]
        size = min(int(params.get("per_page", 20)), self.page_size)
        page = int(params.get("page", 1))
        page_count = max(1, -(-len(rows) // size))
        return self._answer(collection, rows[(page - 1) * size : page * size], page, page_count)

    def _insert(self, collection: str, fields: dict) -> dict:
        self.next_id += 1
        row = {**fields, "id": str(self.next_id)}
        for ref in ("workspace_id", "subject_id", "parent_id", "story_id"):
            if ref in row and row[ref] is not None:
                row[ref] = str(row[ref])
        self.tables[collection][row["id"]] = row
        return row

    def _upsert_reference(self, fields: dict) -> dict:
        """One reference per subject and service name: a second one updates the first."""
        subject = (fields["subject_type"], str(fields["subject_id"]), fields["service_name"])
        for row in self.tables["external_references"].values():
            if (row["subject_type"], row["subject_id"], row["service_name"]) == subject:
                row.update({k: v for k, v in fields.items() if k != "subject_id"})
                return row
        return self._insert("external_references", {"status": "pending", **fields})

    def _create(self, collection: str, body: dict) -> httpx.Response:
        singular = {"workspaces": "workspace", "stories": "story"}.get(collection, collection[:-1])
        fields = dict(body[singular])
        if collection == "stories" and not fields.get("title"):
            return httpx.Response(
                422, json={"errors": [{"type": "validation", "message": "can't be blank", "field": "title"}]}
            )
        if collection == "workspaces" and fields.get("budgeted") and fields.get("price") is None:
            return httpx.Response(
                422, json={"errors": [{"type": "validation", "message": "is required", "field": "price"}]}
            )
        reference = fields.pop("external_reference", None)
        row = self._insert(collection, fields)
        if reference is not None and self.embed_references:
            self._upsert_reference({**reference, "subject_type": "Workspace", "subject_id": row["id"]})
        return self._answer(collection, [row])

    # -- test helpers -----------------------------------------------------------------------------------

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == "/api/v1" + path)

    def seed(self, collection: str, **fields) -> str:
        return self._insert(collection, fields)["id"]


def psa(fake: FakeKantata, retry) -> KantataPsa:
    return KantataPsa(
        httpx.Client(transport=httpx.MockTransport(fake)), token="kantata-token", base_url=BASE, retry=retry
    )


def kantata_error(status: int, **kwargs) -> httpx.Response:
    return httpx.Response(status, **kwargs)


def empty(collection: str) -> httpx.Response:
    return httpx.Response(200, json={"count": 0, "results": [], collection: {}, "meta": {"page_count": 0}})


# --------------------------------------------------------------------------------------------- project


def test_given_a_new_opportunity_when_ensuring_the_project_then_the_workspace_is_created_linked_in_one_call(
    retry,
):
    fake = FakeKantata()

    workspace_id = psa(fake, retry).ensure_project(project())

    (workspace,) = fake.tables["workspaces"].values()
    assert workspace_id == workspace["id"]
    assert workspace["title"] == "Acme - ERP rollout"
    assert workspace["price"] == "125000.00"
    assert "price_in_cents" not in workspace
    assert workspace["currency"] == "GBP" and workspace["budgeted"] is True
    assert f"pshub:opportunity:{OPP_ID}" in workspace["description"]
    (reference,) = fake.tables["external_references"].values()
    assert reference["subject_id"] == workspace_id
    assert (
        reference["service_name"],
        reference["service_model"],
        reference["service_model_ref"],
        reference["status"],
    ) == ("pshub", "Opportunity", OPP_ID, "successful")
    assert fake.calls("POST", "/workspaces.json") == 1
    assert fake.calls("POST", "/external_references/create_or_update.json") == 0  # embedded, no second call


def test_given_the_project_exists_when_ensuring_it_twice_then_one_workspace_and_the_same_id(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)

    first = adapter.ensure_project(project())
    second = adapter.ensure_project(project())

    assert first == second
    assert len(fake.tables["workspaces"]) == 1
    assert len(fake.tables["external_references"]) == 1
    assert fake.calls("POST", "/workspaces.json") == 1


def test_given_an_unlinked_workspace_with_the_marker_when_ensured_then_it_is_adopted_and_linked(retry):
    fake = FakeKantata()
    orphan = fake.seed(
        "workspaces", title="Acme - ERP rollout", description=f"pshub:opportunity:{OPP_ID}\nold run"
    )

    workspace_id = psa(fake, retry).ensure_project(project())

    assert workspace_id == orphan
    assert list(fake.tables["workspaces"]) == [orphan]
    (reference,) = fake.tables["external_references"].values()
    assert (reference["subject_id"], reference["service_model_ref"]) == (orphan, OPP_ID)
    assert fake.calls("POST", "/workspaces.json") == 0


def test_given_the_link_call_fails_when_rerun_then_the_orphan_is_linked_once(retry):
    fake = FakeKantata(script={"POST /external_references/create_or_update.json": [kantata_error(500)] * 3})
    fake.seed("workspaces", title="Acme", description=f"pshub:opportunity:{OPP_ID}")
    adapter = psa(fake, retry)
    with pytest.raises(TransientError):
        adapter.ensure_project(project())
    assert fake.tables["external_references"] == {}

    workspace_id = adapter.ensure_project(project())
    adapter.ensure_project(project())

    assert len(fake.tables["workspaces"]) == 1
    assert [r["subject_id"] for r in fake.tables["external_references"].values()] == [workspace_id]


def test_given_the_vendor_drops_the_embedded_reference_when_ensured_then_the_workspace_is_linked_explicitly(
    retry,
):
    fake = FakeKantata(embed_references=False)
    adapter = psa(fake, retry)

    workspace_id = adapter.ensure_project(project())
    again = adapter.ensure_project(project())

    assert again == workspace_id
    assert len(fake.tables["workspaces"]) == 1
    assert [r["subject_id"] for r in fake.tables["external_references"].values()] == [workspace_id]
    assert fake.calls("POST", "/external_references/create_or_update.json") == 1


def test_given_the_workspace_create_answer_is_lost_when_rerun_then_it_is_found_by_its_reference(
    retry, sleeps
):
    fake = FakeKantata(script={"POST /workspaces.json": ["lose"]})
    adapter = psa(fake, retry)

    with pytest.raises(TransientError):
        adapter.ensure_project(project())
    assert fake.calls("POST", "/workspaces.json") == 1  # an ambiguous create is never replayed in-call

    workspace_id = adapter.ensure_project(project())

    assert list(fake.tables["workspaces"]) == [workspace_id]
    assert len(fake.tables["external_references"]) == 1
    assert fake.calls("POST", "/workspaces.json") == 1


def test_given_a_concurrent_run_linked_first_when_both_linked_then_every_run_settles_on_the_first(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)
    winner = adapter.ensure_project(project())
    # This run did not see the winner's reference (it read before it existed) and created its own workspace.
    fake.script["GET /external_references.json"] = [empty("external_references")]
    fake.script["GET /workspaces.json"] = [empty("workspaces")]

    result = adapter.ensure_project(project())

    assert result == winner
    assert len(fake.tables["workspaces"]) == 2
    assert adapter.ensure_project(project()) == winner


def test_given_a_reference_of_another_opportunity_listed_when_ensuring_then_it_is_not_taken(retry):
    fake = FakeKantata()
    other = fake.seed("workspaces", title="Other", description="")
    # A listing that ignored the filters: another opportunity's link comes back too.
    fake.script["GET /external_references.json"] = [
        httpx.Response(
            200,
            json={
                "count": 1,
                "results": [{"key": "external_references", "id": "9"}],
                "external_references": {
                    "9": {
                        "id": "9",
                        "subject_type": "Workspace",
                        "subject_id": other,
                        "service_name": "pshub",
                        "service_model": "Opportunity",
                        "service_model_ref": "006Dn00000B9z8yAAB",
                    }
                },
                "meta": {"page_count": 1},
            },
        )
    ]

    workspace_id = psa(fake, retry).ensure_project(project())

    assert workspace_id != other


def test_given_a_different_opportunity_when_ensuring_then_it_gets_its_own_workspace(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)

    first = adapter.ensure_project(project())
    other = adapter.ensure_project(project("006Dn00000B9z8yAAB"))

    assert first != other
    assert len(fake.tables["workspaces"]) == 2
    assert len(fake.tables["external_references"]) == 2


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
    fake.seed("stories", workspace_id="77", title="Someone's task", description=None)

    second = adapter.ensure_wbs("77", WBS)

    assert {code: second[code] for code in first} == first
    assert len(fake.tables["stories"]) == 6
    assert fake.calls("POST", "/stories.json") == 5
    list_pages = [
        r.url.params["page"] for r in fake.requests if r.method == "GET" and "stories" in r.url.path
    ]
    assert list_pages == ["1", "1", "2", "3"]


def test_given_another_projects_task_with_the_same_marker_when_listed_then_it_is_not_reused(retry):
    fake = FakeKantata()
    fake.seed("stories", workspace_id="88", title="Discovery", description="pshub:wbs:1")
    fake.FILTERS = {**FakeKantata.FILTERS, "stories": {}}  # a listing that ignores workspace_id

    ids = psa(fake, retry).ensure_wbs("77", WBS[:1])

    assert fake.tables["stories"][ids["1"]]["workspace_id"] == "77"


def test_given_a_task_whose_parent_is_missing_when_ensured_then_data_validation_error_names_it(retry):
    fake = FakeKantata()
    orphan = (WbsTask(code="3.1", name="Orphan", kind="task", parent_code="3"),)

    with pytest.raises(DataValidationError) as caught:
        psa(fake, retry).ensure_wbs("77", orphan)

    assert caught.value.problems[0]["field"] == "wbs[3.1].parent_code"
    assert fake.calls("POST", "/stories.json") == 0


# --------------------------------------------------------------------------------------------- billing


def test_given_a_schedule_when_ensured_twice_then_each_milestone_is_one_billing_milestone(retry):
    fake = FakeKantata()
    adapter = psa(fake, retry)
    task_ids = adapter.ensure_wbs("77", WBS)

    first = adapter.ensure_billing_schedule("77", SCHEDULE, task_ids)
    second = adapter.ensure_billing_schedule("77", SCHEDULE, task_ids)

    assert first == second
    items = fake.tables["billing_milestones"]
    assert len(items) == 2
    assert [
        (
            items[i]["title"],
            items[i]["amount_in_cents"],
            items[i]["date_to_invoice"],
            items[i]["billing_type"],
            items[i]["story_id"],
        )
        for i in first
    ] == [
        ("M1 - Kick-off", 2_500_000, "2026-11-16", "fixed_date", task_ids["1"]),
        ("M2 - Go-live", 10_000_000, "2027-03-31", "fixed_date", task_ids["2.2"]),
    ]
    listed = [r for r in fake.requests if r.method == "GET" and "billing_milestones" in r.url.path]
    assert all(r.url.params["workspace_ids"] == "77" for r in listed)


def test_given_another_project_has_the_same_milestone_title_when_ensured_then_this_project_gets_its_own(
    retry,
):
    fake = FakeKantata()
    adapter = psa(fake, retry)
    fake.seed("billing_milestones", workspace_id="88", title="M1 - Kick-off", amount_in_cents=1)
    fake.FILTERS = {**FakeKantata.FILTERS, "billing_milestones": {}}  # the filter ignored
    task_ids = adapter.ensure_wbs("77", WBS)

    ids = adapter.ensure_billing_schedule("77", SCHEDULE, task_ids)

    assert all(fake.tables["billing_milestones"][i]["workspace_id"] == "77" for i in ids)
    assert len(fake.tables["billing_milestones"]) == 3


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


def test_given_429_without_retry_after_when_retried_then_the_policy_backs_off_on_its_own(retry, sleeps):
    fake = FakeKantata(script={"GET /stories.json": [kantata_error(429), kantata_error(429)]})

    psa(fake, retry).ensure_wbs("77", WBS[:1])

    assert classify(kantata_error(429)).retry_after is None
    assert sleeps == [0.5, 1.0]  # full jitter at its ceiling: base_delay, then doubled
    assert len(fake.tables["stories"]) == 1
