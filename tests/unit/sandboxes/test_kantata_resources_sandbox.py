"""Kantata OX sandbox: the resource pool (members and their attributes) and resource planning (assignments)."""

from datetime import UTC, datetime

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.kantata import KantataSandbox

pytestmark = pytest.mark.disable_socket

KANTATA_URL = "https://api.mavenlink.com/api/v1/"
T0 = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)
MONDAY, FRIDAY, NEXT_FRIDAY = "2025-03-03", "2025-03-07", "2025-03-14"


def _clock(start: datetime = T0):
    now = [start]
    return now, (lambda: now[0])


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def _one(response, key: str) -> dict:
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["key"] == key
    return response.json()[key][result["id"]]


def _fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


def _project(kantata: KantataSandbox, title: str = "Globex - ERP rollout") -> tuple[str, str]:
    workspace = kantata.seed_workspace(title=title, currency="USD")
    return workspace, kantata.seed_story(workspace, title="Build")


def _membership_of(psa_api, user_id: str, **params) -> dict:
    return _one(
        psa_api.get("account_memberships.json", params={"by_user_id": user_id, **params}),
        "account_memberships",
    )


# ------------------------------------------------------------------------------------------- joining the account
def test_an_invited_person_becomes_a_member_only_when_they_accept(kantata, psa_api):
    role = kantata.seed_role("Consultant")
    response = psa_api.post(
        "account_invitations.json",
        params={"include": "invitee"},
        json={
            "account_invitation": {
                "full_name": "Ada Lovelace",
                "email_address": "ada@example.com",
                "permission": "collaborator",
                "default_role_id": role,
                "cost_rate_in_cents": 9_000,
                "external_reference": {
                    "service_name": "hcm",
                    "service_model": "Worker",
                    "service_model_ref": "W-1",
                },
            }
        },
    )

    invitation = _one(response, "account_invitations")
    user = invitation["invitee_id"]
    assert invitation["pending"] is True and invitation["cost_rate_in_cents"] == 9_000
    assert response.json()["users"][user]["full_name"] == "Ada Lovelace"
    assert psa_api.get(f"users/{user}.json").status_code == 200
    assert user not in _ids(psa_api.get("users.json", params={"on_my_account": "true"}))
    assert psa_api.get("account_memberships.json", params={"by_user_id": user}).json()["count"] == 0

    kantata.accept_invitation(invitation["id"])

    membership = _membership_of(psa_api, user, include="default_role")
    assert (membership["permission"], membership["cost_rate_in_cents"], membership["default_role_id"]) == (
        "collaborator",
        9_000,
        role,
    )
    assert user in _ids(psa_api.get("users.json", params={"on_my_account": "true"}))
    assert psa_api.get("account_invitations.json").json()["count"] == 0  # only pending ones by default
    assert psa_api.get("account_invitations.json", params={"only_pending": "false"}).json()["count"] == 1
    [reference] = kantata.external_references()
    assert (reference["subject_type"], str(reference["subject_id"]), reference["service_model_ref"]) == (
        "User",
        user,
        "W-1",
    )


@pytest.mark.parametrize(
    ("overrides", "invalid"),
    [
        ({"full_name": ""}, {"full_name"}),
        ({"email_address": None}, {"email_address"}),
        ({"email_address": "not-an-email"}, {"email_address"}),
        ({"email_address": "taken@example.com"}, {"email_address"}),
        ({"permission": "owner"}, {"permission"}),
        ({"permission": "external_collaborator"}, {"permission"}),
        ({"default_role_id": "1"}, {"default_role_id"}),
        ({"cost_rate_in_cents": "ninety"}, {"cost_rate_in_cents"}),
        (
            {"external_reference": {"service_name": "hcm"}},
            {"external_reference.service_model", "external_reference.service_model_ref"},
        ),
    ],
)
def test_an_invalid_invitation_is_a_422_naming_the_field(kantata, psa_api, overrides, invalid):
    kantata.seed_member("Taken", "taken@example.com")
    body = {"full_name": "Grace Hopper", "email_address": "grace@example.com", **overrides}

    response = psa_api.post("account_invitations.json", json={"account_invitation": body})

    assert _fields(response) == invalid
    assert kantata.account_invitations() == []


def test_bulk_invitations_are_all_or_nothing_and_name_the_bad_item_by_index(kantata, psa_api):
    good = {"full_name": "Ann", "email_address": "ann@example.com"}
    bad = {"full_name": "Bob", "email_address": "ann@example.com"}  # the same address twice

    refused = psa_api.post("account_invitations.json", json={"account_invitations": [good, bad]})
    too_many = psa_api.post(
        "account_invitations.json",
        json={
            "account_invitations": [{"full_name": f"P{n}", "email_address": f"p{n}@x.io"} for n in range(51)]
        },
    )
    created = psa_api.post("account_invitations.json", json={"account_invitations": [good]})

    assert refused.status_code == 422 and refused.json()["errors"][0]["index"] == 1
    assert too_many.status_code == 400
    assert len(_ids(created)) == 1 and len(kantata.account_invitations()) == 1


def test_a_pending_invitation_is_updated_resent_and_withdrawn(kantata, psa_api):
    invitation = _one(
        psa_api.post(
            "account_invitations.json",
            json={"account_invitation": {"full_name": "Eve", "email_address": "eve@example.com"}},
        ),
        "account_invitations",
    )

    updated = psa_api.put(
        f"account_invitations/{invitation['id']}.json",
        json={"account_invitation": {"permission": "project_lead"}},
    )
    invalid = psa_api.put(
        f"account_invitations/{invitation['id']}.json", json={"account_invitation": {"permission": "boss"}}
    )
    resent = psa_api.put(f"account_invitations/{invitation['id']}/resend.json")
    deleted = psa_api.delete(f"account_invitations/{invitation['id']}.json")

    assert _one(updated, "account_invitations")["permission"] == "project_lead"
    assert _fields(invalid) == {"permission"}
    assert resent.status_code == 200 and deleted.status_code == 204
    assert psa_api.get(f"account_invitations/{invitation['id']}.json").status_code == 404


# ------------------------------------------------------------------------------------------- users
def test_users_list_project_participants_unless_asked_for_everyone_on_the_account(kantata, psa_api):
    workspace, story = _project(kantata)
    staffed, benched = kantata.seed_members(2)
    kantata.assign(staffed, story, hours_per_day=8, start=MONDAY, end=FRIDAY)

    participants = _ids(psa_api.get("users.json"))
    everyone = _ids(psa_api.get("users.json", params={"on_my_account": "true"}))

    assert participants == [staffed]
    assert set(everyone) == {kantata.api_user_id, staffed, benched}
    assert _ids(psa_api.get("users.json", params={"participant_in": workspace, "on_my_account": "true"})) == [
        staffed
    ]


def test_a_user_is_rendered_in_kantatas_shape_with_its_relations_only_when_included(kantata, psa_api):
    user = kantata.seed_member("Ann Analyst", "ann@example.com", role="Consultant")

    plain = _one(psa_api.get(f"users/{user}.json"), "users")
    response = psa_api.get(f"users/{user}.json", params={"include": "account_membership,role"})
    rich = _one(response, "users")

    assert set(plain) == {"id", "full_name", "email_address", "headline", "photo_path"}
    membership = response.json()["account_memberships"][rich["account_membership_id"]]
    assert "user_id" not in membership and membership["permission"] == "collaborator"
    assert response.json()["roles"][rich["role_id"]]["name"] == "Consultant"
    assert _one(psa_api.get("users/me.json"), "users")["id"] == kantata.api_user_id


def test_the_external_reference_of_a_user_round_trips(kantata, psa_api):
    user, other = kantata.seed_members(2)
    reference = {
        "service_name": "hcm",
        "service_model": "Worker",
        "service_model_ref": "E-1042",
        "status": "successful",
    }

    updated = psa_api.put(
        f"users/{user}.json", json={"user": {"headline": "Architect", "external_reference": reference}}
    )
    found = psa_api.get(
        "users.json",
        params={
            "on_my_account": "true",
            "external_reference_service_name": "hcm",
            "external_reference_service_model_ref": "E-1042",
            "include": "external_references",
        },
    )
    by_refs = psa_api.get(
        "users.json", params={"on_my_account": "true", "external_reference_service_model_refs": "E-1042,E-9"}
    )
    unlinked = psa_api.get(
        "users.json", params={"on_my_account": "true", "without_external_reference_service_name": "hcm"}
    )
    again = psa_api.post(
        "external_references/create_or_update.json",
        json={
            "external_reference": {
                **reference,
                "subject_type": "User",
                "subject_id": user,
                "status": "failed",
            }
        },
    )

    assert _one(updated, "users")["headline"] == "Architect"
    found_user = _one(found, "users")
    assert found_user["id"] == user
    [reference_id] = found_user["external_reference_ids"]
    assert found.json()["external_references"][reference_id]["service_model_ref"] == "E-1042"
    assert _ids(by_refs) == [user]
    assert user not in _ids(unlinked) and other in _ids(unlinked)
    assert _one(again, "external_references")["id"] == reference_id  # one reference per user and service
    assert len(kantata.external_references()) == 1


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"full_name": " "}, {"full_name"}),
        ({"email_address": "nope"}, {"email_address"}),
        ({"email_address": "taken@example.com"}, {"email_address"}),
        (
            {"external_reference": {"service_model": "Worker"}},
            {"external_reference.service_name", "external_reference.service_model_ref"},
        ),
    ],
)
def test_an_invalid_user_update_is_a_422(kantata, psa_api, body, invalid):
    user = kantata.seed_member("Sam", "sam@example.com")
    kantata.seed_member("Taken", "taken@example.com")

    assert _fields(psa_api.put(f"users/{user}.json", json={"user": body})) == invalid
    assert psa_api.put("users/999.json", json={"user": {"headline": "x"}}).status_code == 404


def test_users_are_found_by_email_name_and_change_time(kantata, psa_api):
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], clock=clock)
    ann = kantata.seed_member("Ann Analyst", "Ann@Example.com")
    watermark = "2025-03-03T09:30:00Z"
    now[0] = T0.replace(hour=10)
    bob = kantata.seed_member("Bob Builder", "bob@example.com")
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        everyone = {"on_my_account": "true"}
        by_email = api.get("users.json", params={**everyone, "by_email_address": "ann@example.com"})
        by_emails = api.get(
            "users.json", params={**everyone, "by_email_addresses": "ann@example.com,bob@example.com"}
        )
        by_name = api.get("users.json", params={**everyone, "by_full_name": "build"})
        changed = api.get("users.json", params={**everyone, "updated_after": watermark})
        bad = api.get("users.json", params={**everyone, "updated_after": "last week"})
        descending = api.get("users.json", params={**everyone, "order": "alphabetical:desc"})

    assert _ids(by_email) == [ann] and set(_ids(by_emails)) == {ann, bob} and _ids(by_name) == [bob]
    assert _ids(changed) == [bob]
    assert bad.status_code == 400
    assert _ids(descending)[0] == bob


# ------------------------------------------------------------------------------------------- account memberships
def test_disabling_a_member_keeps_every_record_readable_and_never_deletes(kantata, psa_api):
    workspace, story = _project(kantata)
    leaver = kantata.seed_member("Lee Leaver", cost_rate_in_cents=8_000)
    assignment = kantata.assign(leaver, story, hours_per_day=4, start=MONDAY, end=FRIDAY)
    [entry] = kantata.seed_time_entries(workspace, 1, user_ids=[leaver])
    membership = _membership_of(psa_api, leaver)

    disabled = _one(
        psa_api.put(f"account_memberships/{membership['id']}/disable.json"), "account_memberships"
    )

    assert disabled["disabled_at"] is not None and disabled["id"] == membership["id"]
    assert psa_api.get("account_memberships.json", params={"by_user_id": leaver}).json()["count"] == 0
    assert _ids(psa_api.get("account_memberships.json", params={"only_inactive": "true"})) == [
        membership["id"]
    ]
    assert psa_api.get(f"account_memberships/{membership['id']}.json").status_code == 404
    shown = _one(
        psa_api.get(f"account_memberships/{membership['id']}.json", params={"is_active": "false"}),
        "account_memberships",
    )
    assert shown["cost_rate_in_cents"] == 8_000
    assert _one(psa_api.get(f"users/{leaver}.json"), "users")["full_name"] == "Lee Leaver"
    assert leaver not in _ids(psa_api.get("users.json", params={"on_my_account": "true"}))
    assert leaver in _ids(
        psa_api.get("users.json", params={"on_my_account": "true", "show_disabled": "true"})
    )
    assert kantata.assignment(assignment)["assignee_id"] == leaver and kantata.time_entry(entry) is not None
    assert kantata.call_count("DELETE") == 0

    again = psa_api.put(f"account_memberships/{membership['id']}/disable.json")
    enabled = psa_api.put(f"account_memberships/{membership['id']}/enable.json")
    assert again.status_code == 422
    assert _one(enabled, "account_memberships")["disabled_at"] is None


def test_the_account_owner_cannot_be_disabled_or_removed_and_a_removed_member_stays_a_user(kantata, psa_api):
    owner = _membership_of(psa_api, kantata.api_user_id)
    member = kantata.seed_member("Mo")
    membership = _membership_of(psa_api, member)

    assert owner["is_owner"] is True and owner["is_administrator"] is True
    assert psa_api.put(f"account_memberships/{owner['id']}/disable.json").status_code == 422
    assert psa_api.delete(f"account_memberships/{owner['id']}.json").status_code == 422
    assert psa_api.delete(f"account_memberships/{membership['id']}.json").status_code == 204
    assert psa_api.get(f"users/{member}.json").status_code == 200
    assert member not in _ids(psa_api.get("users.json", params={"on_my_account": "true"}))


def test_a_membership_is_updated_and_an_invalid_change_is_a_422(kantata, psa_api):
    member, manager = kantata.seed_members(2)
    role = kantata.seed_role("Project Manager")
    membership = _membership_of(psa_api, member)
    url = f"account_memberships/{membership['id']}.json"

    updated = psa_api.put(
        url,
        params={"include": "manager,default_role,user"},
        json={
            "account_membership": {
                "permission": "project_lead",
                "default_role_id": role,
                "manager_id": manager,
                "bill_rate_in_cents": 20_000,
                "cost_rate_in_cents": 11_000,
            }
        },
    )
    invalid = psa_api.put(
        url,
        json={
            "account_membership": {
                "permission": "king",
                "default_role_id": "1",
                "manager_id": member,
                "cost_rate_in_cents": "x",
            }
        },
    )

    body = _one(updated, "account_memberships")
    assert (body["permission"], body["is_project_lead"], body["default_role_id"], body["manager_id"]) == (
        "project_lead",
        True,
        role,
        manager,
    )
    assert (body["user_id"], body["bill_rate_in_cents"], body["cost_rate_in_cents"]) == (
        member,
        20_000,
        11_000,
    )
    assert _fields(invalid) == {"permission", "default_role_id", "manager_id", "cost_rate_in_cents"}
    assert (
        psa_api.put(
            "account_memberships/1.json", json={"account_membership": {"permission": "collaborator"}}
        ).status_code
        == 404
    )


# ------------------------------------------------------------------------------------------- cost rates
def test_a_cost_rate_per_member_and_currency_is_overridden_not_effective_dated(kantata, psa_api):
    member = kantata.seed_member("Cy")
    membership = _membership_of(psa_api, member)

    first = _one(
        psa_api.post(
            "cost_rates.json",
            json={
                "cost_rate": {
                    "account_membership_id": membership["id"],
                    "currency": "USD",
                    "amount_in_subunits": 9_000,
                }
            },
        ),
        "cost_rates",
    )
    second = _one(
        psa_api.post(
            "cost_rates.json",
            json={
                "cost_rate": {
                    "account_membership_id": membership["id"],
                    "currency": "USD",
                    "amount_in_subunits": 9_500,
                }
            },
        ),
        "cost_rates",
    )
    euros = psa_api.post(
        "cost_rates.json",
        json={
            "cost_rates": [
                {"account_membership_id": membership["id"], "currency": "EUR", "amount_in_subunits": 8_700}
            ]
        },
    )
    listed = psa_api.get(f"account_memberships/{membership['id']}.json", params={"include": "cost_rates"})

    assert second["id"] == first["id"] and second["amount_in_subunits"] == 9_500  # overridden: no history
    assert second["account_membership_id"] == int(membership["id"]) and second["in_use"] is False
    assert len(_ids(euros)) == 1
    body = _one(listed, "account_memberships")
    assert body["cost_rate_in_cents"] == 9_500  # the account-currency rate is the default cost rate
    assert {r["currency"]: r["amount_in_subunits"] for r in listed.json()["cost_rates"].values()} == {
        "USD": 9_500,
        "EUR": 8_700,
    }
    assert (
        psa_api.put(
            f"cost_rates/{first['id']}.json", json={"cost_rate": {"amount_in_subunits": 10_000}}
        ).status_code
        == 200
    )
    assert _membership_of(psa_api, member)["cost_rate_in_cents"] == 10_000
    assert psa_api.delete(f"cost_rates/{first['id']}.json").status_code == 204
    assert _membership_of(psa_api, member)["cost_rate_in_cents"] is None


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"account_membership_id": None}, {"account_membership_id"}),
        ({"account_membership_id": "1"}, {"account_membership_id"}),
        ({"currency": ""}, {"currency"}),
        ({"currency": "usd"}, {"currency"}),
        ({"amount_in_subunits": None}, {"amount_in_subunits"}),
        ({"amount_in_subunits": "lots"}, {"amount_in_subunits"}),
        ({"amount_in_subunits": -1}, {"amount_in_subunits"}),
    ],
)
def test_an_invalid_cost_rate_is_a_422(kantata, psa_api, body, invalid):
    membership = _membership_of(psa_api, kantata.seed_member("Di"))
    rate = {"account_membership_id": membership["id"], "currency": "USD", "amount_in_subunits": 100, **body}

    assert _fields(psa_api.post("cost_rates.json", json={"cost_rate": rate})) == invalid
    assert kantata.cost_rates() == []


# ------------------------------------------------------------------------------------------- departments, custom fields
def test_a_member_is_placed_in_a_department_and_geography(kantata, psa_api):
    member, elsewhere = kantata.seed_members(2)
    departments = [o for o in kantata.organizations() if o["type"] == "Department"]
    [root] = departments
    consulting = _one(
        psa_api.post(
            "organizations.json", json={"organization": {"name": "Consulting", "parent_id": root["id"]}}
        ),
        "organizations",
    )
    uk = kantata.seed_organization("United Kingdom", kind="Geography")

    created = psa_api.post(
        "organization_memberships.json",
        params={"include": "department,geography"},
        json={
            "organization_membership": {
                "department_id": consulting["id"],
                "geography_id": uk,
                "member_id": member,
                "member_type": "User",
            }
        },
    )
    duplicate = psa_api.post(
        "organization_memberships.json",
        json={
            "organization_membership": {
                "department_id": consulting["id"],
                "geography_id": uk,
                "member_id": member,
                "member_type": "User",
            }
        },
    )
    crossed = psa_api.post(
        "organization_memberships.json",
        json={
            "organization_membership": {
                "department_id": uk,
                "geography_id": consulting["id"],
                "member_id": elsewhere,
                "member_type": "User",
            }
        },
    )
    in_department = psa_api.get(
        "users.json", params={"on_my_account": "true", "belonging_to_orgs": f";{root['id']}"}
    )

    body = _one(created, "organization_memberships")
    assert consulting["type"] == "Department" and consulting["ancestor_ids"] == [root["id"]]
    assert (body["member_id"], body["member_type"], body["department_id"], body["geography_id"]) == (
        member,
        "User",
        consulting["id"],
        uk,
    )
    assert _fields(duplicate) == {"member_id"}
    assert _fields(crossed) == {"department_id", "geography_id"}
    assert _ids(in_department) == [member]  # a department and everything under it
    missing_parent = psa_api.post("organizations.json", json={"organization": {"name": "Orphan"}})
    assert _fields(missing_parent) == {"parent_id"}


def test_cost_centre_and_legal_entity_are_user_custom_field_values(kantata, psa_api):
    member = kantata.seed_member("Flo")
    cost_centre = kantata.seed_custom_field("Cost centre")
    entity = kantata.seed_custom_field(
        "Legal entity", value_type="single", choices=["PS Hub UK Ltd", "PS Hub Inc"]
    )
    choices = kantata.custom_field_choices(entity)

    first = _one(
        psa_api.post(
            "custom_field_values.json",
            json={
                "custom_field_value": {
                    "subject_type": "User",
                    "subject_id": member,
                    "custom_field_id": cost_centre,
                    "value": "CC-100",
                }
            },
        ),
        "custom_field_values",
    )
    moved = _one(
        psa_api.post(
            "custom_field_values.json",
            json={
                "custom_field_value": {
                    "subject_type": "User",
                    "subject_id": member,
                    "custom_field_id": cost_centre,
                    "value": "CC-200",
                }
            },
        ),
        "custom_field_values",
    )
    chosen = _one(
        psa_api.post(
            "custom_field_values.json",
            json={
                "custom_field_value": {
                    "subject_type": "User",
                    "subject_id": member,
                    "custom_field_id": entity,
                    "value": [choices["PS Hub UK Ltd"]],
                }
            },
        ),
        "custom_field_values",
    )
    listed = psa_api.get(
        "custom_field_values.json",
        params={"subject_type": "User", "with_subject_id": member, "include": "custom_field"},
    )

    assert moved["id"] == first["id"] and moved["value"] == "CC-200"  # a text value is overridden in place
    assert chosen["display_value"] == "PS Hub UK Ltd" and chosen["subject_id"] == int(member)
    assert "custom_field_id" not in chosen
    assert {v["custom_field_id"] for v in listed.json()["custom_field_values"].values()} == {
        cost_centre,
        entity,
    }
    assert psa_api.get("custom_field_values.json").status_code == 400  # subject_type is required


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"subject_type": "Planet"}, {"subject_type", "custom_field_id"}),
        ({"subject_id": "999"}, {"subject_id"}),
        ({"custom_field_id": None}, {"custom_field_id"}),
        ({"value": ["999"]}, {"value"}),
        ({"value": "PS Hub UK Ltd"}, {"value"}),
    ],
)
def test_an_invalid_custom_field_value_is_a_422(kantata, psa_api, body, invalid):
    member = kantata.seed_member("Gil")
    entity = kantata.seed_custom_field("Legal entity", value_type="single", choices=["PS Hub UK Ltd"])
    value = {
        "subject_type": "User",
        "subject_id": member,
        "custom_field_id": entity,
        "value": [kantata.custom_field_choices(entity)["PS Hub UK Ltd"]],
        **body,
    }

    assert _fields(psa_api.post("custom_field_values.json", json={"custom_field_value": value})) == invalid


def test_a_workspace_field_cannot_hold_a_users_value(kantata, psa_api):
    member = kantata.seed_member("Hal")
    field = kantata.seed_custom_field("Region", subject_type="Workspace")

    response = psa_api.post(
        "custom_field_values.json",
        json={
            "custom_field_value": {
                "subject_type": "User",
                "subject_id": member,
                "custom_field_id": field,
                "value": "EMEA",
            }
        },
    )

    assert _fields(response) == {"custom_field_id"}


# ------------------------------------------------------------------------------------------- skills and roles
def test_skills_are_given_to_members_with_levels(kantata, psa_api):
    member = kantata.seed_member("Ivy")
    [category] = [
        c
        for c in psa_api.get("skill_categories.json").json()["skill_categories"].values()
        if c["name"] == "Skill"
    ]
    skill = _one(
        psa_api.post(
            "skills.json",
            json={"skill": {"name": "SAP FI", "max_level": 5, "skill_category_id": category["id"]}},
        ),
        "skills",
    )
    yes_no = kantata.seed_skill("SC clearance", max_level=1, category="Certification")

    given = psa_api.post(
        "skill_memberships.json",
        json={
            "skill_memberships": [
                {"skill_id": skill["id"], "user_id": member, "level": 4},
                {"skill_id": yes_no, "user_id": member, "level": 1},
            ]
        },
    )
    user = psa_api.get(f"users/{member}.json", params={"include": "skill_memberships,skills"})
    levelled_up = psa_api.put(
        f"skill_memberships/{_ids(given)[0]}.json", json={"skill_membership": {"level": 5}}
    )

    assert len(_ids(given)) == 2
    body = _one(user, "users")
    levels = {m["cached_skill_name"]: m["level"] for m in user.json()["skill_memberships"].values()}
    assert levels == {"SAP FI": 4, "SC clearance": 1} and set(body["skill_ids"]) == {skill["id"], yes_no}
    assert _one(levelled_up, "skill_memberships")["level"] == 5
    assert (
        _ids(psa_api.get("skill_memberships.json", params={"user_ids": member, "by_skill_id": yes_no})) != []
    )


@pytest.mark.parametrize(
    ("skill", "invalid"),
    [
        ({"name": ""}, {"name"}),
        ({"name": "Python"}, {"name"}),
        ({"max_level": 3}, {"max_level"}),
        ({"skill_category_id": None}, {"skill_category_id"}),
        ({"skill_category_id": "1"}, {"skill_category_id"}),
    ],
)
def test_an_invalid_skill_is_a_422(kantata, psa_api, skill, invalid):
    kantata.seed_skill("Python")
    [category] = list(psa_api.get("skill_categories.json").json()["skill_categories"])[:1]

    body = {"name": "Go", "max_level": 5, "skill_category_id": category, **skill}

    assert _fields(psa_api.post("skills.json", json={"skill": body})) == invalid


def test_an_invalid_skill_membership_is_a_422(kantata, psa_api):
    member = kantata.seed_member("Jo")
    binary = kantata.seed_skill("Driving licence", max_level=1, category="Certification")
    kantata.seed_skill_membership(member, binary, 1)

    too_high = psa_api.post(
        "skill_memberships.json",
        json={"skill_membership": {"skill_id": kantata.seed_skill("Go"), "user_id": member, "level": 6}},
    )
    twice = psa_api.post(
        "skill_memberships.json", json={"skill_membership": {"skill_id": binary, "user_id": member}}
    )
    nobody = psa_api.post(
        "skill_memberships.json", json={"skill_membership": {"skill_id": binary, "user_id": "1"}}
    )

    assert _fields(too_high) == {"level"}
    assert _fields(twice) == {"skill_id"}
    assert _fields(nobody) == {"user_id"}


def test_roles_are_listed_and_created_once(kantata, psa_api):
    created = psa_api.post("roles.json", json={"role": {"name": "Data Engineer"}})
    twice = psa_api.post("roles.json", json={"role": {"name": "data engineer"}})
    blank = psa_api.post("roles.json", json={"role": {"name": ""}})
    names = [r["name"] for r in psa_api.get("roles.json").json()["roles"].values()]

    assert _one(created, "roles")["name"] == "Data Engineer"
    assert _fields(twice) == {"name"} and _fields(blank) == {"name"}
    assert "Data Engineer" in names and "Consultant" in names


# ------------------------------------------------------------------------------------------- standard calendar
def test_a_members_workweek_changes_their_available_hours_from_a_sunday(kantata, psa_api):
    member = kantata.seed_member("Kim")
    four_days = {
        "monday_minutes": 480,
        "tuesday_minutes": 480,
        "wednesday_minutes": 480,
        "thursday_minutes": 480,
        "friday_minutes": 0,
    }

    created = psa_api.post(
        "workweek_memberships.json",
        params={"include": "workweek"},
        json={"workweek_membership": {"user_id": member, "start_date": "2025-03-09", **four_days}},
    )
    earlier = psa_api.post(
        "workweek_memberships.json",
        json={"workweek_membership": {"user_id": member, "start_date": "2025-03-02", "friday_minutes": 240}},
    )
    not_sunday = psa_api.post(
        "workweek_memberships.json", json={"workweek_membership": {"user_id": member, "start_date": MONDAY}}
    )
    invalid = psa_api.post(
        "workweek_memberships.json", json={"workweek_membership": {"user_id": "1", "monday_minutes": 2_000}}
    )
    listed = psa_api.get("workweek_memberships.json", params={"user_ids": member})

    body = _one(created, "workweek_memberships")
    workweek = created.json()["workweeks"][body["workweek_id"]]
    assert (body["user_id"], workweek["total_minutes"], workweek["default"]) == (int(member), 1_920, False)
    assert [m["end_date"] for m in (listed.json()["workweek_memberships"][i] for i in _ids(listed))] == [
        "2025-03-08",
        None,
    ]
    assert _one(earlier, "workweek_memberships")["start_date"] == "2025-03-02"
    assert kantata.available_minutes(member, "2025-03-07") == 240  # the week from 2025-03-02
    assert kantata.available_minutes(member, "2025-03-14") == 0  # the four-day week from 2025-03-09
    assert kantata.available_minutes(member, "2025-03-03") == 480  # a day not given takes the account default
    assert _fields(not_sunday) == {"start_date"}
    assert _fields(invalid) == {"user_id", "monday_minutes"}
    [default] = psa_api.get("workweeks.json").json()["workweeks"].values()
    assert default["default"] is True and default["monday_minutes"] == 480 and default["sunday_minutes"] == 0


def test_deleting_a_members_only_workweek_puts_them_back_on_the_account_default(kantata, psa_api):
    member = kantata.seed_member("Mel", workweek={"monday": 120})
    [membership] = kantata.workweek_memberships()

    deleted = psa_api.delete(f"workweek_memberships/{membership['id']}.json")

    assert deleted.status_code == 204 and kantata.workweek_memberships() == []
    assert kantata.available_minutes(member, MONDAY) == 480


def test_a_member_is_put_on_a_holiday_calendar(kantata, psa_api):
    member = kantata.seed_member("Lou")
    calendar = _one(
        psa_api.post("holiday_calendars.json", json={"holiday_calendar": {"name": "England"}}),
        "holiday_calendars",
    )

    joined = psa_api.post(
        "holiday_calendar_memberships.json",
        params={"include": "holiday_calendar"},
        json={
            "holiday_calendar_membership": {
                "holiday_calendar_id": calendar["id"],
                "user_id": member,
                "start_date": "2025-01-01",
            }
        },
    )
    invalid = psa_api.post(
        "holiday_calendar_memberships.json",
        json={
            "holiday_calendar_membership": {
                "holiday_calendar_id": "1",
                "user_id": member,
                "start_date": "soon",
            }
        },
    )
    duplicate_calendar = psa_api.post(
        "holiday_calendars.json", json={"holiday_calendar": {"name": "England"}}
    )

    body = _one(joined, "holiday_calendar_memberships")
    assert (body["holiday_calendar_id"], body["user_id"], body["end_date"]) == (
        calendar["id"],
        int(member),
        None,
    )
    assert _fields(invalid) == {"holiday_calendar_id", "start_date"}
    assert _fields(duplicate_calendar) == {"name"}
    assert _ids(psa_api.get("holiday_calendar_memberships.json", params={"by_user_id": member})) == [
        body["id"]
    ]


# ------------------------------------------------------------------------------------------- project resources
def test_named_and_unnamed_resources_are_added_to_a_project(kantata, psa_api):
    workspace, _ = _project(kantata)
    member = kantata.seed_member("Max", role="Consultant")
    architect = kantata.seed_role("Solution Architect")

    created = psa_api.post(
        "workspace_resources.json",
        params={"include": "user,role"},
        json={
            "workspace_resources": [
                {"workspace_id": workspace, "user_id": member},
                {"workspace_id": workspace, "role_id": architect},
            ]
        },
    )
    named, unnamed = (created.json()["workspace_resources"][i] for i in _ids(created))
    listed = psa_api.get("workspace_resources.json", params={"workspace_id": workspace})
    with_unnamed = psa_api.get(
        "workspace_resources.json", params={"workspace_id": workspace, "include_unnamed": "true"}
    )

    assert (named["user_id"], named["role_name"], named["full_name"], named["workspace_id"]) == (
        member,
        "Consultant",
        "Max",
        int(workspace),
    )
    assert (unnamed["user_id"], unnamed["label"], unnamed["display_label"]) == (
        None,
        "Solution Architect 1",
        "Solution Architect 1",
    )
    assert _ids(listed) == [named["id"]] and set(_ids(with_unnamed)) == {named["id"], unnamed["id"]}
    assert "user_id" not in listed.json()["workspace_resources"][named["id"]]


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"workspace_id": None}, {"workspace_id"}),
        ({"workspace_id": "404"}, {"workspace_id"}),
        ({"user_id": None}, {"role_id"}),  # an unnamed resource needs a role
        ({"user_id": "1"}, {"user_id"}),
        ({"role_id": "1"}, {"role_id"}),
        ({"user_id": "disabled"}, {"user_id"}),
        ({"user_id": "again"}, {"role_id"}),
    ],
)
def test_an_invalid_resource_is_a_422(kantata, psa_api, body, invalid):
    workspace, _ = _project(kantata)
    member = kantata.seed_member("Ned", role="Consultant")
    gone = kantata.seed_member("Old", role="Consultant")
    kantata.disable_member(gone)
    kantata.seed_resource(workspace, member)
    aliases = {"disabled": gone, "again": member}
    resource = {"workspace_id": workspace, "user_id": kantata.seed_member("New", role="Consultant"), **body}
    if resource.get("user_id") in aliases:
        resource["user_id"] = aliases[resource["user_id"]]

    assert _fields(psa_api.post("workspace_resources.json", json={"workspace_resource": resource})) == invalid


def test_deleting_a_resource_deletes_its_assignments_but_not_a_members_last_primary_role(kantata, psa_api):
    workspace, story = _project(kantata)
    member = kantata.seed_member("Ola", role="Consultant")
    primary = kantata.seed_resource(workspace, member)
    extra = kantata.seed_resource(workspace, member, role="Project Manager")
    planned = _one(
        psa_api.post("assignments.json", json={"assignment": {"story_id": story, "resource_id": extra}}),
        "assignments",
    )
    psa_api.post(
        "story_allocation_days.json",
        json={"story_allocation_day": {"assignment_id": planned["id"], "date": MONDAY, "minutes": 60}},
    )

    refused = psa_api.delete(f"workspace_resources/{primary}.json")
    deleted = psa_api.delete(f"workspace_resources/{extra}.json")

    assert refused.status_code == 422
    assert deleted.status_code == 204
    assert kantata.assignment(planned["id"]) is None and kantata.story_allocation_days() == []


def test_a_resource_gets_another_member_and_its_assignments_follow(kantata, psa_api):
    workspace, story = _project(kantata)
    member = kantata.seed_member("Pat", role="Consultant")
    placeholder = kantata.seed_resource(workspace, role="Consultant")
    assignment = _one(
        psa_api.post(
            "assignments.json",
            json={"assignment": {"story_id": story, "resource_id": placeholder, "estimated_minutes": 600}},
        ),
        "assignments",
    )

    filled = psa_api.put(
        f"workspace_resources/{placeholder}.json", json={"workspace_resource": {"user_id": member}}
    )
    nobody = psa_api.put(
        f"workspace_resources/{placeholder}.json", json={"workspace_resource": {"user_id": "1"}}
    )

    assert _one(filled, "workspace_resources")["full_name"] == "Pat"
    assert kantata.assignment(assignment["id"])["assignee_id"] == member
    assert _fields(nobody) == {"user_id"}


# ------------------------------------------------------------------------------------------- assignments
def test_a_task_is_assigned_by_user_or_resource_and_unassigning_never_deletes(kantata, psa_api):
    workspace, story = _project(kantata)
    member = kantata.seed_member("Quinn", role="Consultant")
    resource = kantata.seed_resource(workspace, member)

    by_user = psa_api.post(
        "assignments.json",
        params={"include": "assignee,story"},
        json={"assignment": {"story_id": story, "assignee_id": member, "estimated_minutes": 960}},
    )
    assignment = _one(by_user, "assignments")
    changed = psa_api.put(
        f"assignments/{assignment['id']}.json", json={"assignment": {"estimated_minutes": 1_200}}
    )
    unassigned = psa_api.delete(f"assignments/{assignment['id']}.json")
    again = psa_api.post(
        "assignments.json", json={"assignment": {"story_id": story, "resource_id": resource}}
    )

    assert (assignment["resource_id"], assignment["assignee_id"], assignment["story_id"]) == (
        int(resource),
        member,
        story,
    )
    assert (assignment["current"], assignment["allocated_minutes"]) == (True, 0)
    assert _one(changed, "assignments")["estimated_minutes"] == 1_200
    assert unassigned.status_code == 204
    old = _one(psa_api.get(f"assignments/{assignment['id']}.json"), "assignments")
    assert old["current"] is False and old["estimated_minutes"] == 1_200
    assert len(_ids(again)) == 1  # the task can be assigned to the resource again
    assert set(_ids(psa_api.get("assignments.json", params={"story_id": story}))) == {
        assignment["id"],
        _ids(again)[0],
    }
    assert _ids(psa_api.get("assignments.json", params={"story_id": story, "current": "true"})) == _ids(again)


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"story_id": None}, {"story_id"}),
        ({"story_id": "404"}, {"story_id"}),
        ({"resource_id": None, "assignee_id": None}, {"resource_id"}),
        ({"resource_id": "other-project"}, {"resource_id"}),
        ({"resource_id": None, "assignee_id": "benched"}, {"assignee_id"}),
        ({"estimated_minutes": -5}, {"estimated_minutes"}),
        ({"resource_id": "taken"}, {"resource_id"}),
    ],
)
def test_an_invalid_assignment_is_a_422(kantata, psa_api, body, invalid):
    workspace, story = _project(kantata)
    other_workspace, _ = _project(kantata, "Initech")
    member, benched = kantata.seed_members(2, role="Consultant")
    resource = kantata.seed_resource(workspace, member)
    busy_member = kantata.seed_member("Busy", role="Consultant")
    busy = kantata.seed_resource(workspace, busy_member)
    kantata.assign(busy_member, story, hours_per_day=1, start=MONDAY, end=MONDAY)  # already on the task
    aliases = {
        "other-project": kantata.seed_resource(other_workspace, member),
        "benched": benched,
        "taken": busy,
    }
    assignment = {"story_id": story, "resource_id": resource, **body}
    for key in ("resource_id", "assignee_id"):
        if assignment.get(key) in aliases:
            assignment[key] = aliases[assignment[key]]

    assert _fields(psa_api.post("assignments.json", json={"assignment": assignment})) == invalid


def test_listing_assignments_leaves_out_placeholders_and_archived_tasks_unless_asked(kantata, psa_api):
    workspace, story = _project(kantata)
    archived_story = kantata.seed_story(workspace, title="Old phase")
    member = kantata.seed_member("Rae", role="Consultant")
    named = kantata.assign(member, story, hours_per_day=2, start=MONDAY, end=MONDAY)
    old = kantata.assign(member, archived_story, hours_per_day=2, start=MONDAY, end=MONDAY)
    kantata.archive_story(archived_story)
    placeholder = kantata.seed_resource(workspace, role="Consultant")
    unnamed = _ids(
        psa_api.post("assignments.json", json={"assignment": {"story_id": story, "resource_id": placeholder}})
    )[0]

    assert _ids(psa_api.get("assignments.json")) == [named]
    assert set(_ids(psa_api.get("assignments.json", params={"include_unnamed": "true"}))) == {named, unnamed}
    assert set(_ids(psa_api.get("assignments.json", params={"in_unarchived_stories": "false"}))) == {
        named,
        old,
    }
    assert _ids(
        psa_api.get("assignments.json", params={"assignee_id": member, "workspace_id": workspace})
    ) == [named]


def test_including_daily_hours_needs_plannable(kantata, psa_api):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Sol", role="Consultant"), story, hours_per_day=1, start=MONDAY, end=FRIDAY
    )

    refused = psa_api.get("assignments.json", params={"include": "story_allocation_days"})
    planned = psa_api.get(
        "assignments.json", params={"include": "story_allocation_days", "plannable": "true"}
    )

    assert refused.status_code == 400
    body = _one(planned, "assignments")
    assert body["id"] == assignment and len(body["story_allocation_day_ids"]) == 5
    assert len(planned.json()["story_allocation_days"]) == 5


# ------------------------------------------------------------------------------------------- daily scheduled hours
def test_allocations_by_day_sum_to_the_assignment(kantata, psa_api):
    _, story = _project(kantata)
    member = kantata.seed_member("Tia", role="Consultant")

    assignment = kantata.assign(member, story, hours_per_day="6.5", start=MONDAY, end=NEXT_FRIDAY)

    days, page = [], 1
    while True:
        response = psa_api.get(
            "story_allocation_days.json",
            params={
                "assignment_id": assignment,
                "per_page": 3,
                "page": page,
                "order": "date:asc",
                "include": "assignment",
            },
        )
        days += [response.json()["story_allocation_days"][i] for i in _ids(response)]
        if page >= response.json()["meta"]["page_count"]:
            break
        page += 1
    body = _one(psa_api.get(f"assignments/{assignment}.json"), "assignments")

    assert [d["date"] for d in days][:5] == [
        "2025-03-03",
        "2025-03-04",
        "2025-03-05",
        "2025-03-06",
        "2025-03-07",
    ]
    assert len(days) == 10 and {d["minutes"] for d in days} == {390}  # weekdays only (the default workweek)
    assert {d["assignment_id"] for d in days} == {assignment}
    assert body["allocated_minutes"] == sum(d["minutes"] for d in days) == 3_900
    assert body["estimated_minutes"] == 3_900


def test_daily_hours_follow_the_members_workweek(kantata):
    _, story = _project(kantata)
    part_timer = kantata.seed_member(
        "Uma",
        role="Consultant",
        workweek={"monday": 300, "tuesday": 300, "wednesday": 300, "thursday": 0, "friday": 0},
    )

    assignment = kantata.assign(part_timer, story, hours_per_day=5, start=MONDAY, end=NEXT_FRIDAY)

    assert sorted(d["date"] for d in kantata.story_allocation_days(assignment)) == [
        "2025-03-03",
        "2025-03-04",
        "2025-03-05",
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
    ]
    assert kantata.assignment(assignment)["allocated_minutes"] == 6 * 300


def test_a_delivery_manager_changes_daily_hours_through_the_api(kantata, psa_api):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Val", role="Consultant"), story, hours_per_day=8, start=MONDAY, end=FRIDAY
    )
    [monday] = [d for d in kantata.story_allocation_days(assignment) if d["date"] == MONDAY]
    [tuesday] = [d for d in kantata.story_allocation_days(assignment) if d["date"] == "2025-03-04"]

    halved = psa_api.put(
        f"story_allocation_days/{monday['id']}.json", json={"story_allocation_day": {"minutes": 240}}
    )
    saturday = psa_api.post(
        "story_allocation_days.json",
        params={"include": "assignment,story,workspace"},
        json={"story_allocation_day": {"assignment_id": assignment, "date": "2025-03-08", "minutes": 120}},
    )
    dropped = psa_api.delete(f"story_allocation_days/{tuesday['id']}.json")
    within = psa_api.get("story_allocation_days.json", params={"date_between": "2025-03-07:2025-03-08"})

    assert _one(halved, "story_allocation_days")["minutes"] == 240
    extra = _one(saturday, "story_allocation_days")
    assert (extra["assignment_id"], extra["story_id"], extra["current"]) == (assignment, story, True)
    assert dropped.status_code == 204
    assert len(_ids(within)) == 2
    assert kantata.assignment(assignment)["allocated_minutes"] == 240 + 3 * 480 + 120


@pytest.mark.parametrize(
    ("body", "invalid"),
    [
        ({"assignment_id": None}, {"assignment_id"}),
        ({"assignment_id": "404"}, {"assignment_id"}),
        ({"assignment_id": "unassigned"}, {"assignment_id"}),
        ({"date": None}, {"date"}),
        ({"date": "03/10/2025"}, {"date"}),
        ({"date": MONDAY}, {"date"}),  # one per assignment and day
        ({"minutes": None}, {"minutes"}),
        ({"minutes": 1_441}, {"minutes"}),
        ({"minutes": "lots"}, {"minutes"}),
    ],
)
def test_invalid_daily_hours_are_a_422(kantata, psa_api, body, invalid):
    _, story = _project(kantata)
    member = kantata.seed_member("Wes", role="Consultant")
    assignment = kantata.assign(member, story, hours_per_day=8, start=MONDAY, end=MONDAY)
    other_story = kantata.seed_story(kantata.stories()[0]["workspace_id"], title="Other")
    unassigned = kantata.assign(member, other_story, hours_per_day=1, start=MONDAY, end=MONDAY)
    kantata.remove_assignment(unassigned)
    day = {"assignment_id": assignment, "date": "2025-03-10", "minutes": 60, **body}
    if day["assignment_id"] == "unassigned":
        day["assignment_id"] = unassigned

    assert _fields(psa_api.post("story_allocation_days.json", json={"story_allocation_day": day})) == invalid


def test_daily_hours_are_deleted_in_bulk_all_or_nothing(kantata, psa_api):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Xi", role="Consultant"), story, hours_per_day=1, start=MONDAY, end=FRIDAY
    )
    ids = [d["id"] for d in kantata.story_allocation_days(assignment)]

    partly_missing = psa_api.request("DELETE", "story_allocation_days.json", params={"ids": f"{ids[0]},999"})
    by_query = psa_api.request("DELETE", "story_allocation_days.json", params={"ids": ",".join(ids[:2])})
    by_body = psa_api.request("DELETE", "story_allocation_days.json", json={"ids": ",".join(ids[2:4])})
    empty = psa_api.request("DELETE", "story_allocation_days.json")

    assert partly_missing.status_code == 422
    assert by_query.status_code == by_body.status_code == 204
    assert empty.status_code == 400
    assert [d["id"] for d in kantata.story_allocation_days(assignment)] == ids[4:]


def test_unassigned_daily_hours_stay_listed_but_not_as_current(kantata, psa_api):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Yul", role="Consultant"), story, hours_per_day=2, start=MONDAY, end=FRIDAY
    )

    kantata.remove_assignment(assignment)

    every = psa_api.get("story_allocation_days.json")
    current = psa_api.get("story_allocation_days.json", params={"current": "true"})
    assert len(_ids(every)) == 5 and {
        d["current"] for d in every.json()["story_allocation_days"].values()
    } == {False}
    assert _ids(current) == []


# ------------------------------------------------------------------------------------------- nightly sweeps
def test_listing_assignments_changed_since_an_instant_finds_the_changed_ones():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], clock=clock, time_zone="Europe/London")
    _, story = _project(kantata)
    people = kantata.seed_members(4, role="Consultant")
    planned = [kantata.assign(p, story, hours_per_day=8, start=MONDAY, end=FRIDAY) for p in people]
    now[0] = T0.replace(hour=22)  # the nightly sweep reads up to here
    watermark = kantata.now()
    now[0] = T0.replace(day=4, hour=10)
    kantata.change_assignment(planned[0], hours_per_day=4)  # re-planned
    kantata.remove_assignment(planned[1])  # unassigned
    kantata.change_assignment(planned[2], user_id=people[3])  # handed to someone else
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        changed = api.get(
            "assignments.json", params={"updated_after": watermark.isoformat(), "order": "updated_at:asc"}
        )
        changed_days = api.get(
            "story_allocation_days.json", params={"updated_after": watermark.isoformat(), "per_page": 50}
        )
        overlap = api.get("assignments.json", params={"updated_after": "2025-03-03T08:00:00Z"})

    assert _ids(changed) == planned[:3]
    assert len(_ids(changed_days)) == 5 and {
        d["minutes"] for d in changed_days.json()["story_allocation_days"].values()
    } == {240}
    assert set(_ids(overlap)) == set(planned)
    assert kantata.assignment(planned[2])["assignee_id"] == people[3]
    assert (
        kantata.assignment(planned[0])["allocated_minutes"]
        == kantata.assignment(planned[0])["estimated_minutes"]
        == 5 * 240
    )


def test_a_change_to_daily_hours_alone_does_not_move_the_assignment_unless_configured(kantata, psa_api):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Zed", role="Consultant"), story, hours_per_day=8, start=MONDAY, end=MONDAY
    )
    before = kantata.assignment(assignment)["updated_at"]
    [day] = kantata.story_allocation_days(assignment)
    kantata.advance_clock(60)

    psa_api.put(f"story_allocation_days/{day['id']}.json", json={"story_allocation_day": {"minutes": 60}})
    untouched = kantata.assignment(assignment)["updated_at"]
    kantata.allocation_changes_bump_assignment_updated_at = True
    psa_api.put(f"story_allocation_days/{day['id']}.json", json={"story_allocation_day": {"minutes": 90}})

    assert untouched == before
    assert kantata.assignment(assignment)["updated_at"] > before
    assert kantata.assignment(assignment)["allocated_minutes"] == 90


def test_change_assignment_shrinks_the_window_and_deletes_days_outside_it(kantata):
    _, story = _project(kantata)
    assignment = kantata.assign(
        kantata.seed_member("Ari", role="Consultant"), story, hours_per_day=8, start=MONDAY, end=NEXT_FRIDAY
    )

    kantata.change_assignment(assignment, end=FRIDAY, estimated_minutes=2_000)

    days = sorted(d["date"] for d in kantata.story_allocation_days(assignment))
    assert days == ["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07"]
    assert (
        kantata.assignment(assignment)["allocated_minutes"],
        kantata.assignment(assignment)["estimated_minutes"],
    ) == (
        2_400,
        2_000,
    )
    with pytest.raises(ValueError):
        kantata.change_assignment("404", hours_per_day=1)


# ------------------------------------------------------------------------------------------- lookups after changes
def _invite(api, *people: tuple[str, str]):
    return api.post(
        "account_invitations.json",
        json={"account_invitations": [{"full_name": name, "email_address": email} for name, email in people]},
    )


def test_pending_invitations_list_newest_first_without_the_accepted_and_withdrawn_ones():
    now, clock = _clock()
    kantata = KantataSandbox(tokens=["t"], clock=clock)
    with kantata.client(KANTATA_URL, headers={"Authorization": "Bearer t"}) as api:
        ids = []
        for n, name in enumerate(("Ann", "Bob", "Cy", "Di", "Ed")):
            now[0] = T0.replace(hour=9 + n)
            ids += _ids(_invite(api, (name, f"{name.lower()}@example.com")))
        now[0] = T0.replace(hour=6)  # the clock set back: the next one is still stamped after the others
        ids += _ids(_invite(api, ("Flo", "flo@example.com")))
        kantata.accept_invitation(ids[1])
        assert api.delete(f"account_invitations/{ids[3]}.json").status_code == 204

        pending = _ids(api.get("account_invitations.json"))
        oldest_first = _ids(api.get("account_invitations.json", params={"order": "created_at:asc"}))
        every = _ids(api.get("account_invitations.json", params={"only_pending": "false"}))
        second_page = api.get("account_invitations.json", params={"per_page": 2, "page": 2}).json()
        by_name = _ids(api.get("account_invitations.json", params={"order": "full_name:desc"}))
        named = _ids(api.get("account_invitations.json", params={"by_full_name": "FL"}))

    assert pending == [ids[5], ids[4], ids[2], ids[0]]
    assert oldest_first == [ids[0], ids[2], ids[4], ids[5]]
    assert every == [ids[5], ids[4], ids[2], ids[1], ids[0]]
    assert second_page["count"] == 4 and [r["id"] for r in second_page["results"]] == [ids[2], ids[0]]
    assert by_name == [ids[5], ids[4], ids[2], ids[0]] and named == [ids[5]]


def test_an_address_freed_by_a_change_can_be_invited_and_the_new_one_is_taken(kantata, psa_api):
    user = kantata.seed_member("Ann", "ann@example.com")

    changed = psa_api.put(f"users/{user}.json", json={"user": {"email_address": "Ann.New@example.com"}})
    reused = _invite(psa_api, ("Another Ann", "ANN@example.com"))
    taken = _invite(psa_api, ("Copy", "ann.new@EXAMPLE.com"))
    unchanged = psa_api.put(f"users/{user}.json", json={"user": {"full_name": "Ann A."}})
    found = psa_api.get(
        "users.json",
        params={"on_my_account": "true", "by_email_addresses": "ann.new@example.com,ann@example.com"},
    )

    assert changed.status_code == 200 and reused.status_code == 200 and unchanged.status_code == 200
    assert _fields(taken) == {"email_address"}
    assert _ids(found) == [user]  # the invitee is no member; the old address is nobody's now
    kantata.reset()
    assert _invite(psa_api, ("Ann again", "ann.new@example.com")).status_code == 200


def test_only_and_the_email_filters_narrow_the_users_listed_together(kantata, psa_api):
    ann = kantata.seed_member("Ann", "ann@example.com")
    bob = kantata.seed_member("Bob", "bob@example.com")
    cy = kantata.seed_member("Cy", "cy@example.com")
    everyone = {"on_my_account": "true"}

    def listed(**params):
        return _ids(psa_api.get("users.json", params={**everyone, **params}))

    assert listed(only=f"{ann},{bob},999") == [ann, bob]
    assert listed(only=f"{ann},{bob}", by_email_addresses="ann@example.com,cy@example.com") == [ann]
    assert listed(by_email_address=" CY@example.com ", by_email_addresses="bob@example.com") == []
    assert listed(by_email_address="Cy@Example.com", order="alphabetical:desc") == [cy]
    assert listed(only="") == [] and listed(by_email_addresses="") == []


def test_a_members_organization_membership_removed_and_given_again_is_what_the_filters_see(kantata, psa_api):
    member, other = kantata.seed_members(2)
    consulting, delivery = kantata.seed_organization("Consulting"), kantata.seed_organization("Delivery")
    uk = kantata.seed_organization("UK", kind="Geography")

    def place(department: str):
        return psa_api.post(
            "organization_memberships.json",
            json={
                "organization_membership": {
                    "department_id": department,
                    "geography_id": uk,
                    "member_id": member,
                    "member_type": "User",
                }
            },
        )

    def users(**params):
        return _ids(
            psa_api.get("users.json", params={"on_my_account": "true", "only": f"{member},{other}", **params})
        )

    first = _one(place(consulting), "organization_memberships")
    in_consulting = users(belonging_to_orgs=f";{consulting}")
    placed = users(with_organizations="true")
    again = place(delivery)
    assert psa_api.delete(f"organization_memberships/{first['id']}.json").status_code == 204
    unplaced = users(with_organizations="false")
    second = _one(place(delivery), "organization_memberships")
    own = _ids(psa_api.get("organization_memberships.json", params={"member_id": member}))

    assert in_consulting == [member] and placed == [member] and _fields(again) == {"member_id"}
    assert set(unplaced) == {member, other}
    assert users(belonging_to_orgs=f";{consulting}") == [] and users(
        belonging_to_orgs=f"{uk};{delivery}"
    ) == [member]
    assert own == [second["id"]]
    assert _ids(psa_api.get("organization_memberships.json", params={"member_id": other})) == []


def test_a_users_custom_field_values_follow_overrides_replacements_and_deletes(kantata, psa_api):
    member, other = kantata.seed_members(2)
    cost_centre = kantata.seed_custom_field("Cost centre")
    entity = kantata.seed_custom_field("Legal entity", value_type="single", choices=["UK01", "US01"])
    choices = kantata.custom_field_choices(entity)

    def set_value(field: str, value, subject: str = member) -> str:
        body = {"subject_type": "User", "subject_id": subject, "custom_field_id": field, "value": value}
        return _one(
            psa_api.post("custom_field_values.json", json={"custom_field_value": body}), "custom_field_values"
        )["id"]

    text = set_value(cost_centre, "CC100")
    first_choice = set_value(entity, [choices["UK01"]])
    others = set_value(cost_centre, "CC300", other)
    overridden = set_value(cost_centre, "CC200")
    replaced = set_value(entity, [choices["US01"]])
    user = psa_api.get(f"users/{member}.json", params={"include": "custom_field_values"}).json()
    listed = _ids(
        psa_api.get("custom_field_values.json", params={"subject_type": "User", "with_subject_id": member})
    )
    assert psa_api.delete(f"custom_field_values/{text}.json").status_code == 204
    after_delete = _one(
        psa_api.get(f"users/{member}.json", params={"include": "custom_field_values"}), "users"
    )
    again = set_value(cost_centre, "CC400")

    assert overridden == text and replaced != first_choice  # text in place, a choice value gets a new id
    assert user["users"][member]["custom_field_value_ids"] == [text, replaced]
    assert user["custom_field_values"][text]["value"] == "CC200" and listed == [text, replaced]
    assert after_delete["custom_field_value_ids"] == [replaced]
    assert again not in (text, replaced) and _ids(
        psa_api.get(
            "users.json",
            params={"on_my_account": "true", "only": member, "include": "custom_field_values"},
        )
    ) == [member]
    assert _one(psa_api.get(f"users/{member}.json", params={"include": "custom_field_values"}), "users")[
        "custom_field_value_ids"
    ] == [replaced, again]
    assert _one(psa_api.get(f"users/{other}.json", params={"include": "custom_field_values"}), "users")[
        "custom_field_value_ids"
    ] == [others]


# ------------------------------------------------------------------------------------------- bulk and paging
def test_two_thousand_members_page_completely_and_are_found_by_their_hcm_id(kantata, psa_api):
    people = kantata.seed_members(
        2_000, external_ids=[f"E{n:05d}" for n in range(2_000)], cost_rate_in_cents=7_500
    )

    seen: list[str] = []
    page = 1
    while True:
        response = psa_api.get("users.json", params={"on_my_account": "true", "per_page": 200, "page": page})
        body = response.json()
        seen += _ids(response)
        if page >= body["meta"]["page_count"]:
            break
        page += 1
    memberships = psa_api.get("account_memberships.json", params={"per_page": 200, "page": 11})

    assert body["meta"] == {"count": 2_001, "page_count": 11, "page_number": 11, "page_size": 200}
    assert len(seen) == len(set(seen)) == 2_001 and set(people) <= set(seen)
    assert memberships.json()["count"] == 2_001 and len(_ids(memberships)) == 1
    hcm = psa_api.get(
        "users.json",
        params={
            "on_my_account": "true",
            "external_reference_service_name": "pshub",
            "external_reference_service_model_ref": "E01999",
        },
    )
    assert _ids(hcm) == [people[-1]]
    assert {r["amount_in_subunits"] for r in kantata.cost_rates()} == {7_500} and len(
        kantata.cost_rates()
    ) == 2_000


def test_seeded_members_can_carry_department_geography_and_role(kantata, psa_api):
    consulting = kantata.seed_organization("Consulting")
    uk = kantata.seed_organization("UK", kind="Geography")

    people = kantata.seed_members(
        3, department_id=consulting, geography_id=uk, role="Solution Architect", permission="project_lead"
    )

    memberships = psa_api.get(
        "organization_memberships.json", params={"department_id": consulting, "member_type": "user"}
    )
    assert len(_ids(memberships)) == 3
    assert {m["permission"] for m in kantata.account_memberships() if m["user_id"] in people} == {
        "project_lead"
    }
    with pytest.raises(ValueError):
        kantata.seed_members(1, department_id=uk)  # a geography is not a department


# ------------------------------------------------------------------------------------------- base behaviour
def test_throttling_and_faults_apply_to_the_new_endpoints(kantata, psa_api):
    kantata.set_faults(Faults(throttle_rate=1.0, path_pattern="assignments"))

    throttled = psa_api.get("assignments.json")
    fine = psa_api.get("workspace_resources.json")

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert fine.status_code == 200
    assert kantata.call_count("GET", "assignments", fault="throttle") == 1


def test_reset_clears_the_resource_pool_and_keeps_the_owner(kantata):
    _, story = _project(kantata)
    kantata.assign(
        kantata.seed_member("Bea", role="Consultant"), story, hours_per_day=1, start=MONDAY, end=MONDAY
    )

    kantata.reset()

    assert kantata.assignments() == [] and kantata.workspace_resources() == []
    [owner] = kantata.account_memberships()
    assert owner["user_id"] == kantata.api_user_id and owner["is_owner"] is True
    assert "assignments" in kantata.state() and "account_memberships" in kantata.state()


def test_a_missing_token_is_refused_on_the_new_endpoints(kantata):
    with kantata.client(KANTATA_URL) as anonymous:
        assert anonymous.get("account_memberships.json").status_code == 401
