"""Canonical workers -> Kantata member bodies, and Kantata answers (users, rates, fields, workweeks,
assignments) -> what the resource sync compares and the canonical assignments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hub.mapping import kantata_resources as rm
from hub.model import Money
from hub.model.workforce import StandardCalendar
from tests.support.workforce_builders import placement, rate, worker

TODAY = dt.date(2026, 3, 4)  # a Wednesday
FIELDS = rm.UserFields()


def answer(collection: str, rows: list[dict], **included: list[dict]) -> dict:
    """A Kantata answer: ``results`` in order, every collection keyed by id."""
    body = {
        "count": len(rows),
        "results": [{"key": collection, "id": r["id"]} for r in rows],
        collection: {r["id"]: r for r in rows},
    }
    for key, extra in included.items():
        body.setdefault(key, {}).update({r["id"]: r for r in extra})
    return body


# ------------------------------------------------------------------------------------------- what to do


@pytest.mark.parametrize(
    ("overrides", "action"),
    [
        ({}, rm.Action.SYNC),
        ({"end_date": TODAY}, rm.Action.SYNC),  # the last day worked is still a working day
        ({"end_date": TODAY - dt.timedelta(days=1)}, rm.Action.DEACTIVATE),
        ({"hire_date": TODAY + dt.timedelta(days=1)}, rm.Action.WAIT),
    ],
)
def test_a_worker_is_synced_while_employed_deactivated_after_the_last_day_and_awaited_before_hire(
    overrides, action
):
    assert rm.action_of(worker(**overrides), TODAY) is action


def test_what_kantata_should_hold_is_what_is_in_effect_on_the_day_of_the_run():
    moved = worker(
        skills=("SAP FI", "sap fi", "Python"),
        manager_hcm_id="E0001",
        placements=(
            placement("US01", end=TODAY - dt.timedelta(days=1)),
            placement("GB01", start=TODAY, cost_centre="CC-200", department="Advisory"),
        ),
        cost_rates=(
            rate("80.00", start=dt.date(2024, 1, 1), end=TODAY),
            rate("95.00", start=TODAY + dt.timedelta(1)),
        ),
    )

    wanted = rm.wanted(moved, TODAY, FIELDS)

    assert wanted.rate == Money(
        amount=Decimal("80.00"), currency="USD"
    )  # next month's rate is not in effect yet
    assert wanted.department == "Advisory"
    assert wanted.fields == {"Legal Entity": "GB01", "Cost Centre": "CC-200", "HCM ID": "E1001"}
    assert wanted.skills == ("sap fi", "Python")  # one per name, whatever the case
    assert (wanted.full_name, wanted.manager_hcm_id) == ("Consultant 1001", "E0001")


def test_without_an_hcm_id_field_and_without_a_placement_today_those_fields_are_left_out():
    gap = worker(placements=(placement(end=TODAY - dt.timedelta(days=1)),), cost_rates=())

    wanted = rm.wanted(gap, TODAY, rm.UserFields(hcm_id=None))

    assert wanted.fields == {} and wanted.department is None and wanted.rate is None
    assert rm.UserFields(hcm_id=None).names() == ("Legal Entity", "Cost Centre")


# --------------------------------------------------------------------------------------------- calendar


def test_a_standard_calendar_is_a_kantata_workweek_in_whole_minutes_from_sunday():
    four_days = StandardCalendar(hours_per_day=Decimal("7.33"), working_days=(1, 2, 3, 7), country="GB")

    assert rm.week_minutes(four_days) == {
        "sunday": 440,  # ISO 7; 7.33 h = 439.8 min, half up
        "monday": 440,
        "tuesday": 440,
        "wednesday": 440,
        "thursday": 0,
        "friday": 0,
        "saturday": 0,
    }


@pytest.mark.parametrize(
    ("day", "sunday"),
    [
        (TODAY, dt.date(2026, 3, 1)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 1)),
        (dt.date(2026, 1, 3), dt.date(2025, 12, 28)),
    ],
)
def test_a_workweek_starts_on_the_sunday_on_or_before_the_day(day, sunday):
    assert rm.week_start(day) == sunday


def test_workweeks_are_read_back_as_minutes_by_day():
    week = {"id": "9", **{f"{d}_minutes": 480 if d not in ("sunday", "saturday") else 0 for d in rm.DAYS}}
    body = answer(
        "workweek_memberships",
        [{"id": "1", "user_id": 42, "start_date": "2026-03-01", "workweek_id": "9"}],
        workweeks=[week],
    )

    [(user, own)] = rm.own_workweeks_of(body).items()

    assert (user, own.membership_id, own.start_date) == ("42", "1", "2026-03-01")
    assert own.minutes == rm.week_minutes(StandardCalendar(hours_per_day=Decimal(8), country="US"))
    defaults = answer(
        "workweeks",
        [
            {**week, "start_date": "2000-01-02"},
            {**week, "id": "10", "start_date": "2027-01-03", "monday_minutes": 1},
        ],
    )
    assert rm.default_workweek_of(defaults, TODAY) == own.minutes  # the one in effect, not the future one
    body = rm.workweek_body("42", dt.date(2026, 3, 1), own.minutes)["workweek_membership"]
    assert body["user_id"] == 42 and body["start_date"] == "2026-03-01" and body["friday_minutes"] == 480


# ----------------------------------------------------------------------------------------------- bodies


def test_an_invitation_carries_the_name_the_address_the_reference_and_a_rate_in_the_account_currency():
    item = rm.invitation_item(worker(display_name="Ada Lovelace"), "e1001@staff.example", 8_000)

    assert item == {
        "full_name": "Ada Lovelace",
        "email_address": "e1001@staff.example",
        "external_reference": {
            "service_name": "pshub",
            "service_model": "Worker",
            "service_model_ref": "E1001",
            "status": "successful",
        },
        "cost_rate_in_cents": 8_000,
    }
    assert rm.invitation_rate(Money(amount=Decimal("80.005"), currency="USD"), "USD") == 8_001
    assert rm.invitation_rate(Money(amount=Decimal("70"), currency="GBP"), "USD") is None
    assert rm.invitation_rate(Money(amount=Decimal("70"), currency="USD"), None) is None
    assert rm.invitation_email("{hcm_id}@staff.example")(worker(hcm_id="AB-12")) == "ab-12@staff.example"


def test_a_cost_rate_is_sent_in_the_currencys_subunits_and_compared_per_currency():
    yen = Money(amount=Decimal("9000"), currency="JPY")

    assert rm.cost_rate_item("3000001", yen) == {
        "account_membership_id": 3000001,
        "currency": "JPY",
        "amount_in_subunits": 9000,
    }
    assert not rm.rate_differs(yen, {"JPY": 9000, "USD": 1})
    assert rm.rate_differs(yen, {"USD": 9000})
    assert not rm.rate_differs(None, {})


def test_bodies_for_references_values_skills_organizations_and_managers_use_integer_ids():
    assert rm.user_reference_body("17", "E1")["external_reference"]["subject_id"] == 17
    assert rm.value_item("17", "400001", "US01") == {
        "subject_type": "User",
        "subject_id": 17,
        "custom_field_id": 400001,
        "value": "US01",
    }
    assert rm.skill_membership_item("17", "50001") == {"user_id": 17, "skill_id": 50001}
    assert rm.organization_membership_item("17", "20001", "20002")["member_type"] == "User"
    assert rm.manager_body("18") == {"account_membership": {"manager_id": 18}}
    assert rm.manager_body(None) == {"account_membership": {"manager_id": None}}
    assert rm.skill_body("Rust", "9001")["skill"] == {
        "name": "Rust",
        "max_level": 1,
        "skill_category_id": 9001,
    }


# ------------------------------------------------------------------------------------------------ users


def test_a_user_is_read_with_its_hcm_id_membership_skills_values_and_manager():
    body = answer(
        "users",
        [
            {
                "id": "17",
                "full_name": "Ada Lovelace",
                "email_address": "Ada@Staff.example",
                "account_membership_id": "3000001",
                "skill_membership_ids": ["900001"],
                "custom_field_value_ids": ["10000001"],
                "manager_id": "18",
            },
            {
                "id": "18",
                "full_name": "Grace Hopper",
                "email_address": "g@x.example",
                "account_membership_id": None,
            },
        ],
        account_memberships=[{"id": "3000001", "disabled_at": "2026-03-01T00:00:00+00:00"}],
        skill_memberships=[{"id": "900001", "cached_skill_name": "SAP FI"}],
        custom_field_values=[{"id": "10000001", "custom_field_name": "Legal Entity", "value": "US01"}],
        external_references=[
            {
                "id": "1",
                "subject_type": "User",
                "subject_id": 17,
                "service_name": "pshub",
                "service_model": "Worker",
                "service_model_ref": "E1",
            },
            # another service's reference on the second user, and ours on a workspace: neither links it
            {
                "id": "2",
                "subject_type": "User",
                "subject_id": 18,
                "service_name": "other",
                "service_model": "Worker",
                "service_model_ref": "E2",
            },
            {
                "id": "3",
                "subject_type": "Workspace",
                "subject_id": 18,
                "service_name": "pshub",
                "service_model": "Worker",
                "service_model_ref": "E3",
            },
        ],
    )

    ada, grace = rm.users_of(body)

    assert (ada.user_id, ada.hcm_id, ada.membership_id, ada.disabled, ada.manager_id) == (
        "17",
        "E1",
        "3000001",
        True,
        "18",
    )
    assert ada.skills == {"sap fi": "900001"}
    assert ada.values == {"legal entity": ("10000001", "US01")}
    assert (grace.hcm_id, grace.membership_id, grace.disabled) == (None, None, False)


def test_pending_invitations_are_read_with_their_invitee():
    body = answer(
        "account_invitations",
        [
            {
                "id": "400001",
                "email_address": "a@x.example",
                "invitee_id": "17",
                "pending": True,
                "cost_rate_in_cents": 8000,
            },
            {"id": "400002", "email_address": "b@x.example", "invitee_id": "18", "pending": False},
            {"id": "400003", "email_address": "c@x.example"},  # read without include=invitee
        ],
    )

    assert rm.invitations_of(body) == [rm.Invitation("400001", "a@x.example", "17", 8000)]


def test_a_members_rates_are_read_per_currency():
    body = answer(
        "account_memberships",
        [{"id": "3000001", "cost_rate_ids": ["600001", "600002"]}, {"id": "3000002"}],
        cost_rates=[
            {"id": "600001", "currency": "USD", "amount_in_subunits": 8000},
            {"id": "600002", "currency": "GBP", "amount_in_subunits": 7000},
        ],
    )

    assert rm.cost_rates_of(body) == {"3000001": {"USD": 8000, "GBP": 7000}, "3000002": {}}


# ---------------------------------------------------------------------------------------- custom fields


def fields_answer() -> dict:
    return answer(
        "custom_fields",
        [
            {
                "id": "1",
                "name": "Legal Entity",
                "subject_type": "User",
                "value_type": "single",
                "choice_ids": ["11", "12"],
            },
            {"id": "2", "name": "Cost Centre", "subject_type": "User", "value_type": "string"},
            {"id": "3", "name": "HCM ID", "subject_type": "User", "value_type": "number"},
            {"id": "4", "name": "Region", "subject_type": "Workspace", "value_type": "string"},
        ],
        custom_field_choices=[{"id": "11", "label": "US01"}, {"id": "12", "label": "GB01"}],
    )


def test_custom_fields_are_found_by_name_and_what_the_account_lacks_is_named():
    fields = {f.name.casefold(): f for f in rm.custom_fields_of(fields_answer())}

    assert sorted(fields) == ["cost centre", "hcm id", "legal entity"]  # User fields only
    assert fields["legal entity"].choices == {"US01": "11", "GB01": "12"}
    problems = rm.field_problems(["Legal Entity", "Cost Centre", "HCM ID", "Worker Type"], fields)
    assert [p["field"] for p in problems] == ["custom_fields[HCM ID]", "custom_fields[Worker Type]"]


def test_a_text_is_written_as_is_and_a_choice_by_its_label():
    fields = {f.name.casefold(): f for f in rm.custom_fields_of(fields_answer())}

    values, problems = rm.field_values(
        {"Legal Entity": "gb01", "Cost Centre": "CC-200", "HCM ID": "E1"}, fields
    )

    assert {field_id: value for field_id, (_, value) in values.items()} == {"1": [12], "2": "CC-200"}
    assert problems == []
    _, problems = rm.field_values({"Legal Entity": "FR01"}, fields)
    assert problems == [
        {
            "field": "custom_fields[Legal Entity]",
            "problem": "the field has no choice labelled 'FR01': an administrator adds it",
        }
    ]
    single, text = fields["legal entity"], fields["cost centre"]
    assert rm.same_value(single, ["12"], [12]) and not rm.same_value(single, ["11"], [12])
    assert rm.same_value(text, "CC-200", "CC-200") and not rm.same_value(text, None, "CC-200")


# ------------------------------------------------------------------------------- skills and organizations


def test_skills_to_add_and_skills_no_longer_held_are_told_apart_by_name():
    add, extra = rm.skill_changes(("SAP FI", "Rust"), {"sap fi": "1", "negotiation": "2"})

    assert (add, extra) == (["Rust"], ["2"])


def test_departments_and_the_roots_of_both_trees_are_read_from_one_listing():
    organizations = rm.Organizations()
    organizations.add(
        answer(
            "organizations",
            [
                {"id": "1", "name": "Departments", "type": "Department", "parent_id": None},
                {"id": "2", "name": "Geographies", "type": "Geography", "parent_id": None},
                {"id": "3", "name": "Delivery", "type": "Department", "parent_id": "1"},
                {"id": "4", "name": "EMEA", "type": "Geography", "parent_id": "2"},
            ],
        )
    )

    assert organizations.departments == {"departments": "1", "delivery": "3"}
    assert (organizations.department_root, organizations.geography_root) == ("1", "2")
    membership = rm.organization_membership_of(
        answer(
            "organization_memberships",
            [
                {
                    "id": "7",
                    "member_id": "17",
                    "member_type": "User",
                    "department_id": "3",
                    "geography_id": "4",
                }
            ],
        ),
        "17",
    )
    assert membership == rm.OrganizationMembership("7", "3", "4")


# ------------------------------------------------------------------------------------------- parameters


def test_members_are_looked_up_by_the_hubs_reference_disabled_ones_included():
    params = rm.users_by_reference_params(["E1", "E2"])

    assert params["external_reference_service_model_refs"] == "E1,E2"
    assert (params["external_reference_service_name"], params["external_reference_service_model"]) == (
        "pshub",
        "Worker",
    )
    assert params["on_my_account"] == params["show_disabled"] == "true"


def test_a_change_window_is_read_a_second_wider_than_kantatas_strict_filter_and_in_utc():
    after = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
    before = dt.datetime(2026, 3, 4, 11, 0, tzinfo=dt.UTC)

    params = rm.allocation_day_changes_params(after, before)

    assert params["updated_after"] == "2026-03-04T09:59:59+00:00"
    assert params["updated_before"] == "2026-03-04T11:00:00+00:00"
    assert params["include_unnamed"] == "true" and params["in_unarchived_workspaces"] == "false"
    assert rm.project_assignments_params("880001")["plannable"] == "true"  # Kantata needs it for the days


# ------------------------------------------------------------------------------------------- assignments


def test_an_assignment_is_read_with_its_daily_hours_in_date_order():
    body = answer(
        "assignments",
        [
            {
                "id": "90000001",
                "story_id": "800000001",
                "assignee_id": "17",
                "story_allocation_day_ids": ["2", "1", "3"],
            }
        ],
        stories=[{"id": "800000001", "workspace_id": "880001"}],
        story_allocation_days=[
            {"id": "1", "date": "2026-03-09", "minutes": 450},
            {"id": "2", "date": "2026-03-10", "minutes": 50},
            {"id": "3", "date": "2026-03-11", "minutes": 0},
        ],
    )
    [record] = body["assignments"].values()

    assignment = rm.assignment_of(record, rm.assignment_days(record, body), "880001", "E1")

    assert rm.project_of_assignment(record, body) == "880001"
    assert (assignment.psa_assignment_id, assignment.psa_project_id, assignment.worker_hcm_id) == (
        "90000001",
        "880001",
        "E1",
    )
    assert [(d.day, d.hours) for d in assignment.days] == [
        (dt.date(2026, 3, 9), Decimal("7.5")),
        (dt.date(2026, 3, 10), Decimal("0.833333")),  # 50 minutes, to six places
        (dt.date(2026, 3, 11), Decimal("0")),
    ]
