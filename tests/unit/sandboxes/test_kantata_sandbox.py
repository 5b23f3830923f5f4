"""Kantata OX sandbox: response envelope, validation errors, pagination, external references, billing."""

import threading
import time

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.kantata import KantataSandbox

pytestmark = pytest.mark.disable_socket

KANTATA_URL = "https://api.mavenlink.com/api/v1/"

PROJECT = {
    "title": "Globex - ERP rollout",
    "description": "Won in Salesforce",
    "currency": "GBP",
    "start_date": "2025-07-01",
    "due_date": "2025-12-31",
    "budgeted": True,
    "price": 150000,
}


def _create_workspace(psa_api, **overrides) -> str:
    response = psa_api.post("workspaces.json", json={"workspace": {**PROJECT, **overrides}})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["id"]


def _fields(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


# ------------------------------------------------------------------------------------------- auth
def test_a_missing_or_revoked_token_is_an_oauth_401(kantata, psa_api):
    with kantata.client("https://api.mavenlink.com/api/v1/") as anonymous:
        missing = anonymous.get("workspaces.json")
    kantata.revoke_token("psa-token")
    revoked = psa_api.get("workspaces.json")

    for response in (missing, revoked):
        assert response.status_code == 401
        assert response.json() == {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}


# ------------------------------------------------------------------------------------------- workspaces
def test_creating_a_workspace_answers_the_kantata_envelope_with_money_in_cents(kantata, psa_api):
    response = psa_api.post("workspaces.json", json={"workspace": PROJECT})

    body = response.json()
    [result] = body["results"]
    workspace = body["workspaces"][result["id"]]
    assert response.status_code == 200
    assert body["count"] == 1 and result == {"key": "workspaces", "id": workspace["id"]}
    assert isinstance(workspace["id"], str)
    assert body["meta"] == {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20}
    assert (workspace["price_in_cents"], workspace["currency"], workspace["due_date"]) == (
        15_000_000,
        "GBP",
        "2025-12-31",
    )
    assert kantata.workspace(workspace["id"])["title"] == "Globex - ERP rollout"


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"title": ""}, {"title"}),
        ({"price": None}, {"price"}),
        ({"currency": "XXX"}, {"currency"}),
        ({"creator_role": "owner"}, {"creator_role"}),
        ({"due_date": "2025-06-01"}, {"due_date"}),
        ({"title": None, "start_date": "soon"}, {"title", "start_date"}),
    ],
)
def test_an_invalid_workspace_is_a_422_naming_each_field(kantata, psa_api, overrides, fields):
    response = psa_api.post("workspaces.json", json={"workspace": {**PROJECT, **overrides}})

    assert response.status_code == 422
    assert _fields(response) == fields
    assert all(error["type"] == "validation" for error in response.json()["errors"])
    assert kantata.workspaces() == []


def test_price_in_cents_is_not_a_create_parameter_so_a_budgeted_project_still_lacks_a_price(psa_api):
    workspace = {k: v for k, v in PROJECT.items() if k != "price"}

    response = psa_api.post(
        "workspaces.json", json={"workspace": {**workspace, "price_in_cents": 15_000_000}}
    )

    assert response.status_code == 422 and _fields(response) == {"price"}


def test_a_body_without_the_workspace_object_is_a_400(psa_api):
    response = psa_api.post("workspaces.json", json={"title": "Flat"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "system"


def test_a_workspace_reads_by_id_and_an_unknown_one_is_404(psa_api):
    workspace_id = _create_workspace(psa_api)

    found = psa_api.get(f"workspaces/{workspace_id}.json")
    missing = psa_api.get("workspaces/1.json")

    assert found.json()["workspaces"][workspace_id]["title"] == PROJECT["title"]
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["type"] == "system"


def test_archived_workspaces_are_left_out_of_lists_unless_asked_for(kantata, psa_api):
    live = kantata.seed_workspace(title="Live")
    kantata.seed_workspace(title="Old", archived=True)

    default = psa_api.get("workspaces.json").json()
    everything = psa_api.get("workspaces.json", params={"include_archived": "true"}).json()

    assert [r["id"] for r in default["results"]] == [live]
    assert everything["count"] == 2


def test_only_fetches_by_id_without_404s(kantata, psa_api):
    wanted = kantata.seed_workspace(title="A")
    kantata.seed_workspace(title="B")

    body = psa_api.get("workspaces.json", params={"only": f"{wanted},999"}).json()

    assert [r["id"] for r in body["results"]] == [wanted]


# ------------------------------------------------------------------------------------------- stories
def test_a_wbs_task_is_created_under_its_parent(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)
    phase = kantata.seed_story(workspace_id, title="Phase 1", story_type="milestone")

    response = psa_api.post(
        "stories.json",
        json={
            "story": {
                "workspace_id": workspace_id,
                "title": "Design",
                "story_type": "task",
                "parent_id": phase,
                "start_date": "2025-07-01",
                "due_date": "2025-07-31",
                "budget_estimate_in_cents": 2_500_000,
                "description": "pshub:wbs:1.1",
            }
        },
    )

    story = next(iter(response.json()["stories"].values()))
    assert response.status_code == 200
    assert (story["workspace_id"], story["parent_id"], story["ancestry_depth"]) == (workspace_id, phase, 1)
    assert story["budget_estimate_in_cents"] == 2_500_000 and story["description"] == "pshub:wbs:1.1"


def test_an_invalid_task_is_a_422_naming_title_workspace_and_story_type(kantata, psa_api):
    response = psa_api.post("stories.json", json={"story": {"workspace_id": "404", "story_type": "epic"}})

    assert response.status_code == 422
    assert _fields(response) == {"title", "workspace_id", "story_type"}
    assert kantata.stories() == []


def test_a_parent_from_another_project_is_refused(kantata, psa_api):
    first, second = _create_workspace(psa_api), _create_workspace(psa_api, title="Other")
    foreign = kantata.seed_story(second, title="Elsewhere")

    response = psa_api.post(
        "stories.json", json={"story": {"workspace_id": first, "title": "T", "parent_id": foreign}}
    )

    assert response.status_code == 422 and _fields(response) == {"parent_id"}


def test_tasks_can_be_created_in_bulk_and_a_bad_item_is_reported_by_index(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)

    good = psa_api.post(
        "stories.json",
        json={
            "stories": [
                {"workspace_id": workspace_id, "title": "A"},
                {"workspace_id": workspace_id, "title": "B"},
            ]
        },
    )
    bad = psa_api.post(
        "stories.json",
        json={"stories": [{"workspace_id": workspace_id, "title": "C"}, {"workspace_id": workspace_id}]},
    )

    assert good.json()["count"] == 2
    assert bad.status_code == 422 and bad.json()["errors"][0]["index"] == 1
    assert len(kantata.stories(workspace_id)) == 2


def test_a_projects_tasks_are_listed_page_by_page_with_meta(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)
    other = _create_workspace(psa_api, title="Other")
    created = {kantata.seed_story(workspace_id, title=f"Task {n}") for n in range(45)}
    kantata.seed_story(other, title="Not mine")

    pages = [
        psa_api.get("stories.json", params={"workspace_id": workspace_id, "per_page": 20, "page": p}).json()
        for p in (1, 2, 3, 4)
    ]

    assert [p["meta"] for p in pages[:3]] == [
        {"count": 45, "page_count": 3, "page_number": n, "page_size": 20} for n in (1, 2, 3)
    ]
    assert [len(p["results"]) for p in pages] == [20, 20, 5, 0]
    seen = [r["id"] for p in pages for r in p["results"]]
    assert len(seen) == len(set(seen)) and set(seen) == created
    assert all(set(p["stories"]) == {r["id"] for r in p["results"]} for p in pages)


@pytest.mark.parametrize(("per_page", "size"), [("500", 200), ("0", 20), ("lots", 20), (None, 20)])
def test_per_page_is_capped_at_200_and_falls_back_to_20(kantata, psa_api, per_page, size):
    workspace_id = _create_workspace(psa_api)
    kantata.seed_story(workspace_id)
    params = {"workspace_id": workspace_id} | ({"per_page": per_page} if per_page else {})

    assert psa_api.get("stories.json", params=params).json()["meta"]["page_size"] == size


def test_limit_and_offset_page_when_both_are_given(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)
    for n in range(5):
        kantata.seed_story(workspace_id, title=f"T{n}")

    body = psa_api.get("stories.json", params={"workspace_id": workspace_id, "limit": 2, "offset": 4}).json()

    assert len(body["results"]) == 1 and body["count"] == 5


# ---------------------------------------------------------------------------------- external references
def _link(psa_api, workspace_id: str, opportunity: str = "0065g00002yFDrZAAW", **extra):
    return psa_api.post(
        "external_references/create_or_update.json",
        json={
            "external_reference": {
                "subject_type": "Workspace",
                "subject_id": int(workspace_id),
                "service_name": "pshub",
                "service_model": "Opportunity",
                "service_model_ref": opportunity,
                "status": "successful",
                **extra,
            }
        },
    )


def test_a_project_is_found_by_the_hubs_reference_to_its_opportunity(psa_api):
    workspace_id = _create_workspace(psa_api)
    _link(psa_api, workspace_id)

    body = psa_api.get(
        "external_references.json",
        params={
            "subject_type": "Workspace",
            "service_name": "pshub",
            "service_model": "Opportunity",
            "service_model_ref": "0065g00002yFDrZAAW",
        },
    ).json()
    other = psa_api.get(
        "external_references.json",
        params={"subject_type": "Workspace", "service_model_ref": "0065g00000OTHERAAA"},
    ).json()

    [reference] = body["external_references"].values()
    assert body["count"] == 1 and reference["subject_id"] == int(workspace_id)
    assert other["count"] == 0


def test_linking_the_same_project_and_service_again_updates_the_one_reference(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)

    first = _link(psa_api, workspace_id, status="pending").json()["results"][0]["id"]
    second = _link(psa_api, workspace_id, status="successful").json()["results"][0]["id"]

    assert first == second
    [reference] = kantata.external_references()
    assert reference["status"] == "successful"


def test_a_reference_with_a_status_kantata_does_not_know_is_a_422(psa_api):
    workspace_id = _create_workspace(psa_api)

    response = _link(psa_api, workspace_id, status="synced")

    assert response.status_code == 422 and _fields(response) == {"status"}


def test_a_reference_to_a_missing_project_or_without_its_keys_is_a_422(psa_api):
    missing = _link(psa_api, "12345")
    incomplete = psa_api.post(
        "external_references/create_or_update.json",
        json={"external_reference": {"subject_type": "Workspace"}},
    )

    assert missing.status_code == 422 and _fields(missing) == {"subject"}
    assert _fields(incomplete) == {"subject_id", "service_name", "service_model", "service_model_ref"}


def test_listing_references_requires_a_subject_type(psa_api):
    assert psa_api.get("external_references.json", params={"service_name": "pshub"}).status_code == 400


def test_there_is_no_plain_create_route_for_references(psa_api):
    workspace_id = _create_workspace(psa_api)

    response = psa_api.post(
        "external_references.json",
        json={
            "external_reference": {
                "subject_type": "Workspace",
                "subject_id": int(workspace_id),
                "service_name": "pshub",
                "service_model": "Opportunity",
                "service_model_ref": "006",
            }
        },
    )

    assert response.status_code == 404


def test_a_workspace_created_with_an_embedded_reference_is_linked_at_once(kantata, psa_api):
    workspace_id = _create_workspace(
        psa_api,
        external_reference={
            "service_name": "pshub",
            "service_model": "Opportunity",
            "service_model_ref": "0065g00002yFDrZAAW",
            "status": "successful",
        },
    )

    [reference] = kantata.external_references()
    assert (reference["subject_type"], reference["subject_id"]) == ("Workspace", int(workspace_id))


def test_a_reference_can_be_deleted(kantata, psa_api):
    reference = _link(psa_api, _create_workspace(psa_api)).json()["results"][0]["id"]

    assert psa_api.delete(f"external_references/{reference}.json").status_code == 204
    assert psa_api.delete(f"external_references/{reference}.json").status_code == 404
    assert kantata.external_references() == []


# ------------------------------------------------------------------------------------------- billing schedule
def test_billing_milestones_are_created_and_listed_by_workspace_ids(kantata, psa_api):
    workspace_id = _create_workspace(psa_api)
    other = kantata.seed_workspace(title="Other")
    kantata_item = {
        "workspace_id": workspace_id,
        "title": "Deposit",
        "amount_in_cents": 3_000_000,
        "date_to_invoice": "2025-07-01",
        "billing_type": "fixed_date",
    }

    created = psa_api.post("billing_milestones.json", json={"billing_milestone": kantata_item})
    psa_api.post(
        "billing_milestones.json", json={"billing_milestone": {**kantata_item, "workspace_id": other}}
    )
    listed = psa_api.get("billing_milestones.json", params={"workspace_ids": workspace_id}).json()

    assert created.status_code == 200
    [milestone] = listed["billing_milestones"].values()
    assert (milestone["amount_in_cents"], milestone["workspace_id"]) == (3_000_000, workspace_id)


def test_an_unknown_filter_is_ignored_like_kantata_does(kantata, psa_api):
    first, second = _create_workspace(psa_api), kantata.seed_workspace(title="Other")
    for workspace_id in (first, second):
        psa_api.post(
            "billing_milestones.json",
            json={
                "billing_milestone": {
                    "workspace_id": workspace_id,
                    "title": "Fee",
                    "amount_in_cents": 100,
                    "date_to_invoice": "2025-07-01",
                }
            },
        )

    body = psa_api.get("billing_milestones.json", params={"workspace_id": first}).json()

    assert body["count"] == 2


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        ({"amount_in_cents": "30000.00"}, {"amount_in_cents"}),
        ({"date_to_invoice": None}, {"date_to_invoice"}),
        ({"billing_type": "upon_completion"}, {"story_id"}),
        ({"billing_type": "monthly"}, {"billing_type"}),
    ],
)
def test_an_invalid_billing_milestone_is_a_422_naming_the_field(psa_api, item, fields):
    workspace_id = _create_workspace(psa_api)
    milestone = {
        "workspace_id": workspace_id,
        "title": "Fee",
        "amount_in_cents": 100,
        "date_to_invoice": "2025-07-01",
    }

    response = psa_api.post("billing_milestones.json", json={"billing_milestone": {**milestone, **item}})

    assert response.status_code == 422 and _fields(response) == fields


# ------------------------------------------------------------------------------------------- throttling
def test_throttling_answers_429_with_retry_after(kantata, psa_api):
    kantata.set_faults(Faults(throttle_rate=1.0))

    response = psa_api.get("workspaces.json")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["errors"][0]["type"] == "system"


def test_retry_after_can_be_left_out_as_kantata_documents_none():
    kantata = KantataSandbox(tokens=["t"], retry_after_seconds=None, faults=Faults(throttle_rate=1.0))
    with kantata.client("https://api.mavenlink.com/api/v1/", headers={"Authorization": "Bearer t"}) as api:
        response = api.get("workspaces.json")

    assert response.status_code == 429 and "Retry-After" not in response.headers


def test_a_request_over_the_concurrency_limit_is_a_429_with_retry_after():
    kantata = KantataSandbox(tokens=["t"], concurrency_limit=1, faults=Faults(latency=0.2))
    headers = {"Authorization": "Bearer t"}

    def slow_call() -> None:
        with kantata.client(KANTATA_URL, headers=headers) as api:
            api.get("workspaces.json")

    worker = threading.Thread(target=slow_call, daemon=True)
    worker.start()
    for _ in range(2_000):
        if kantata.in_flight:
            break
        time.sleep(0.001)
    with kantata.client(KANTATA_URL, headers=headers) as api:
        refused = api.get("workspaces.json")
    worker.join()

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert kantata.peak_in_flight == 1


def test_there_is_no_fixed_fee_items_resource(psa_api):
    workspace_id = _create_workspace(psa_api)

    response = psa_api.post(
        "fixed_fee_items.json",
        json={"fixed_fee_item": {"workspace_id": workspace_id, "title": "Fee", "amount_in_cents": 100}},
    )

    assert response.status_code == 404
