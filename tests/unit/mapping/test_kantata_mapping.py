"""Canonical -> Kantata bodies, and Kantata answers -> records and ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hub.mapping import kantata as km
from hub.model import Account, BillingSchedule, BillingType, Milestone, Money, Project, WbsTask

OPP_ID = "006Dn00000A1b2cAAB"


def gbp(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


PROJECT = Project(
    external_id=f"sf-opp-{OPP_ID}",
    name="Acme - ERP rollout",
    opportunity_crm_id=OPP_ID,
    customer=Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd"),
    legal_entity_code="UK01",
    currency="GBP",
    contract_value=gbp("125000.005"),
    start_date=dt.date(2026, 11, 16),
    billing_type=BillingType.TIME_AND_MATERIALS,
    wbs=(),
    billing_schedule=BillingSchedule(billing_type=BillingType.TIME_AND_MATERIALS, currency="GBP"),
)


def test_given_a_project_when_mapped_then_the_workspace_body_carries_its_price_reference_and_marker():
    body = km.workspace_body(PROJECT)["workspace"]

    assert body["title"] == "Acme - ERP rollout"
    assert body["currency"] == "GBP"
    assert body["start_date"] == "2026-11-16"
    assert "due_date" not in body  # no end date: not sent
    assert body["price"] == "125000.01"  # currency units, a decimal string, rounded half up
    assert "price_in_cents" not in body  # read-only in Kantata
    assert body["budgeted"] is True
    assert km.carries_marker(body["description"], km.project_marker(OPP_ID))
    assert body["external_reference"] == {
        "service_name": "pshub",
        "service_model": "Opportunity",
        "service_model_ref": OPP_ID,
        "status": "successful",
    }


def test_given_a_workspace_and_opportunity_when_linking_then_the_reference_names_the_hub_service():
    assert km.external_reference_body("1234", OPP_ID) == {
        "external_reference": {
            "subject_type": "Workspace",
            "subject_id": 1234,
            "service_name": "pshub",
            "service_model": "Opportunity",
            "service_model_ref": OPP_ID,
            "status": "successful",
        }
    }
    assert km.external_reference_params(OPP_ID) == {
        "subject_type": "Workspace",
        "service_name": "pshub",
        "service_model": "Opportunity",
        "service_model_ref": OPP_ID,
    }


def test_given_listed_references_when_checked_then_only_the_hubs_link_to_this_opportunity_matches():
    link = {
        "subject_type": "Workspace",
        "subject_id": 7,
        "service_name": "pshub",
        "service_model": "Opportunity",
        "service_model_ref": OPP_ID,
    }

    assert km.references_workspace(link, OPP_ID)
    assert not km.references_workspace({**link, "service_model_ref": "006Dn00000B9z8yAAB"}, OPP_ID)
    assert not km.references_workspace({**link, "service_name": "other"}, OPP_ID)
    assert not km.references_workspace({**link, "subject_id": None}, OPP_ID)
    assert km.references_workspace({"subject_id": 7, "service_model_ref": OPP_ID}, OPP_ID)  # keys left out


@pytest.mark.parametrize(
    ("amount", "currency", "units", "subunits"),
    [
        ("125000.005", "GBP", "125000.01", 12_500_001),
        ("99.9", "USD", "99.90", 9990),
        ("1500000", "JPY", "1500000", 1_500_000),  # zero-decimal: Kantata's currency_base_unit is 1
        ("1499.5", "JPY", "1500", 1500),
    ],
)
def test_given_money_when_mapped_then_units_and_subunits_follow_the_currency(
    amount, currency, units, subunits
):
    money = Money(amount=Decimal(amount), currency=currency)

    assert km.money_units_out(money) == units
    assert km.money_subunits_out(money) == subunits


@pytest.mark.parametrize(
    ("kind", "story_type"), [("phase", "deliverable"), ("task", "task"), ("milestone", "milestone")]
)
def test_given_a_wbs_task_when_mapped_then_the_story_body_has_type_parent_budget_and_marker(kind, story_type):
    task = WbsTask(
        code="2.1",
        name="Configure",
        kind=kind,
        parent_code="2",
        budget=gbp("600.10"),
        start_date=dt.date(2026, 12, 1),
        due_date=dt.date(2027, 1, 31),
    )

    assert km.story_body("77", task, parent_id="1002") == {
        "story": {
            "workspace_id": 77,
            "title": "Configure",
            "story_type": story_type,
            "start_date": "2026-12-01",
            "due_date": "2027-01-31",
            "budget_estimate_in_cents": 60010,
            "parent_id": 1002,
            "description": "pshub:wbs:2.1",
        }
    }


def test_given_a_top_level_task_when_mapped_then_no_parent_is_sent():
    body = km.story_body("77", WbsTask(code="1", name="Discovery", kind="phase"), parent_id=None)["story"]
    assert "parent_id" not in body and "budget_estimate_in_cents" not in body


def test_given_a_milestone_when_mapped_then_the_billing_milestone_is_titled_by_code_and_name():
    milestone = Milestone(code="M1", name="Kick-off", amount=gbp("25000"), due_date=dt.date(2026, 11, 16))

    assert km.billing_milestone_body("77", milestone, story_id="1001") == {
        "billing_milestone": {
            "workspace_id": 77,
            "story_id": 1001,
            "title": "M1 - Kick-off",
            "amount_in_cents": 2_500_000,
            "date_to_invoice": "2026-11-16",
            "billing_type": "fixed_date",
        }
    }
    assert km.billing_milestone_params("77", 2) == {"workspace_ids": "77", "per_page": 200, "page": 2}


def test_given_listed_records_when_checked_then_only_those_of_the_workspace_belong_to_it():
    assert km.belongs_to({"workspace_id": "77"}, "77")
    assert km.belongs_to({"workspace_id": 77}, "77")
    assert not km.belongs_to({"workspace_id": "88"}, "77")
    assert not km.belongs_to({}, "77")


def test_given_a_kantata_answer_when_read_then_records_follow_results_order_with_string_ids():
    answer = {
        "count": 2,
        "results": [
            {"key": "stories", "id": "12"},
            {"key": "users", "id": "5"},
            {"key": "stories", "id": "11"},
        ],
        "stories": {"11": {"id": "11", "title": "b"}, "12": {"id": 12, "title": "a"}},
        "users": {"5": {"id": "5"}},
        "meta": {"count": 2, "page_count": 1, "page_number": 1, "page_size": 20},
    }

    assert [(r["id"], r["title"]) for r in km.records(answer, "stories")] == [("12", "a"), ("11", "b")]
    assert km.created_id(answer, "stories") == "12"
    assert km.created_id({"count": 0, "results": []}, "stories") is None
    assert km.records(None, "stories") == []


@pytest.mark.parametrize(
    ("answer", "page", "more"),
    [
        ({"results": [], "meta": {"page_count": 3}}, 1, True),
        ({"results": [], "meta": {"page_count": 3}}, 3, False),
        ({"results": [{}] * 200}, 1, True),  # no meta: a full page means maybe more
        ({"results": [{}] * 3}, 1, False),
    ],
)
def test_given_page_metadata_when_paginating_then_the_walk_stops_at_the_last_page(answer, page, more):
    assert km.has_more_pages(answer, page) is more


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("pshub:wbs:1.2", "1.2"),
        ("Imported\npshub:wbs:10", "10"),
        ("pshub:wbs:1.2.3 (do not edit)", "1.2.3"),
        ("xpshub:wbs:1", None),
        ("pshub:wbs:", None),
        (None, None),
    ],
)
def test_given_a_story_description_when_read_then_the_wbs_code_is_found_only_as_a_whole_marker(
    description, code
):
    assert km.wbs_code_of({"description": description}) == code


def test_given_similar_opportunity_ids_when_matching_markers_then_only_the_exact_id_matches():
    description = "pshub:opportunity:006Dn00000A1b2cAAB\nnotes"
    assert km.carries_marker(description, km.project_marker("006Dn00000A1b2cAAB"))
    assert not km.carries_marker(description, km.project_marker("006Dn00000A1b2c"))
    assert not km.carries_marker(None, km.project_marker("006Dn00000A1b2cAAB"))


def test_given_a_422_when_read_then_problems_name_fields():
    assert km.validation_problems(
        {"errors": [{"type": "validation", "message": "taken", "field": "title"}]}
    ) == [{"field": "title", "problem": "taken"}]
