"""Canonical workers -> Kantata OX account members, and Kantata assignments -> canonical assignments.

What Kantata can hold of a worker, and where (read by ``hub.connectors.kantata_resources``):

- identity: a User linked to the worker by an external reference (service ``pshub``, model ``Worker``, ref the
  HCM id, subject ``User``), embedded in the invitation that creates the user; ``full_name`` is the display name;
- employment: the account membership, disabled (never deleted) after the last day worked, enabled again on a
  rehire;
- cost: a cost rate of the membership in the rate's currency (``/cost_rates``, one per member and currency). It
  is NOT effective-dated in Kantata: the rate pushed is the one in effect on the day of the run;
- department: the User's organization membership (department tree; the geography is kept, or the root);
- skills: skill memberships, matched by skill name (case-insensitive);
- standard calendar: the User's workweek (minutes per weekday, weeks start on Sunday), only when it differs from
  the one in effect for the user (their own, else the account default);
- legal entity, cost centre and HCM id: User custom fields (Kantata has no field for them), named by
  :class:`UserFields` and created by an administrator (the API cannot create custom fields); string or
  single-choice fields (a choice is matched on its label);
- manager: the membership's ``manager_id`` (another member).

Not held (Kantata has no place for them, or the hub does not own them): the worker type, availability (Kantata's
capacity is the workweek), public holidays (holiday calendars are account data, not mapped here), a dated rate
history, bill rates and roles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from hub.mapping.fields import Field, FieldMap
from hub.mapping.kantata import (
    PAGE_SIZE,
    SERVICE_NAME,
    hours_from_minutes,
    included,
    instant_in,
    instant_out,
    kantata_id,
    money_subunits_out,
    records,
)
from hub.model import Money
from hub.model.workforce import Assignment, DayAllocation, StandardCalendar, Worker

SERVICE_MODEL = "Worker"
SUBJECT_TYPE = "User"
REFERENCE_STATUS = "successful"

USER_INCLUDES = "account_membership,external_references,skill_memberships,custom_field_values,manager"
"""What a member is read with: everything the sync compares, in the same answer."""

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
"""Kantata's weekdays, in its order (a Kantata week starts on Sunday)."""

LOOKUP_CHUNK = PAGE_SIZE  # HCM ids (or user ids) per lookup call
EMAIL_CHUNK = 100  # e-mail addresses per lookup call (longer than ids: keeps the URL short)
INVITATION_CHUNK = 50  # Kantata's bulk limit for account invitations
COST_RATE_CHUNK = 100
VALUE_CHUNK = 100
ORGANIZATION_MEMBERSHIP_CHUNK = 100
SKILL_MEMBERSHIP_CHUNK = 200

SKILL_CATEGORY = "Skill"  # the category of a skill the hub creates
NEW_SKILL_MAX_LEVEL = 1  # a skill the hub creates is held or not (the HCM has no levels)

_SECOND = dt.timedelta(seconds=1)


# ------------------------------------------------------------------------------------------------ what to do


class Action(StrEnum):
    SYNC = "sync"  # employed today: in the pool, up to date
    DEACTIVATE = "deactivate"  # past the last day worked: membership disabled
    WAIT = "wait"  # not hired yet: nothing is created before the hire date


def action_of(worker: Worker, today: dt.date) -> Action:
    if worker.active_on(today):
        return Action.SYNC
    if worker.end_date is not None and today > worker.end_date:
        return Action.DEACTIVATE
    return Action.WAIT


@dataclass(frozen=True)
class UserFields:
    """Names of the User custom fields the hub writes (an administrator creates them; ``hcm_id=None``: the HCM
    id is not written to a field, the external reference still links the user)."""

    legal_entity: str = "Legal Entity"
    cost_centre: str = "Cost Centre"
    hcm_id: str | None = "HCM ID"

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.legal_entity, self.cost_centre, self.hcm_id) if n)


@dataclass(frozen=True)
class Wanted:
    """What Kantata should hold of a worker on the day of the run."""

    full_name: str
    rate: Money | None  # hourly cost in effect today (None: no rate today, the one in Kantata is left)
    department: str | None
    skills: tuple[str, ...]
    week: dict[str, int]  # Kantata weekday -> minutes
    fields: dict[str, str]  # custom field name -> text
    manager_hcm_id: str | None


def wanted(worker: Worker, today: dt.date, user_fields: UserFields) -> Wanted:
    placement = worker.placement_on(today)
    rate = worker.rate_on(today)
    texts: dict[str, str] = {}
    if placement is not None:
        texts[user_fields.legal_entity] = placement.legal_entity_code
        texts[user_fields.cost_centre] = placement.cost_centre
    if user_fields.hcm_id:
        texts[user_fields.hcm_id] = worker.hcm_id
    return Wanted(
        full_name=worker.display_name,
        rate=rate.hourly if rate is not None else None,
        department=placement.department if placement is not None else None,
        skills=tuple({s.casefold(): s for s in worker.skills}.values()),
        week=week_minutes(worker.calendar),
        fields=texts,
        manager_hcm_id=worker.manager_hcm_id,
    )


# ----------------------------------------------------------------------------------------------- calendar


def week_minutes(calendar: StandardCalendar) -> dict[str, int]:
    """The standard calendar as a Kantata workweek: minutes on each working day (whole minutes, half up)."""
    minutes = int((calendar.hours_per_day * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return {day: minutes if _iso_weekday(day) in calendar.working_days else 0 for day in DAYS}


def _iso_weekday(day: str) -> int:
    index = DAYS.index(day)
    return index if index else 7


def week_start(day: dt.date) -> dt.date:
    """The Sunday on or before ``day``: Kantata's workweeks start on Sundays."""
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def workweek_minutes(workweek: Mapping[str, Any]) -> dict[str, int]:
    return {day: _int(workweek.get(f"{day}_minutes")) for day in DAYS}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else 0


# ---------------------------------------------------------------------------------------------- e-mail


def invitation_email(template: str) -> Callable[[Worker], str | None]:
    """The address a new worker is invited at, from a template such as ``"{hcm_id}@corp.example"`` (the HCM id
    lower-cased). The canonical worker carries no e-mail address, and Kantata cannot invite without one."""

    def address(worker: Worker) -> str | None:
        return template.format(hcm_id=worker.hcm_id.lower())

    return address


# --------------------------------------------------------------------------------------------- references


def reference(hcm_id: str) -> dict[str, Any]:
    return {
        "service_name": SERVICE_NAME,
        "service_model": SERVICE_MODEL,
        "service_model_ref": hcm_id,
        "status": REFERENCE_STATUS,
    }


def user_reference_body(user_id: str, hcm_id: str) -> dict[str, Any]:
    """For ``POST /external_references/create_or_update`` (one reference per subject and service: replayable)."""
    return {
        "external_reference": {
            "subject_type": SUBJECT_TYPE,
            "subject_id": kantata_id(user_id),
            **reference(hcm_id),
        }
    }


def hcm_id_of(user_id: str, references: Iterable[Mapping[str, Any]]) -> str | None:
    """The HCM id the hub's reference on a user names (re-checked: a filter Kantata ignored must not link a
    reference of another subject or service)."""
    for ref in references:
        if (
            str(ref.get("subject_id")) == user_id
            and ref.get("subject_type") in (None, SUBJECT_TYPE)
            and ref.get("service_name") == SERVICE_NAME
            and ref.get("service_model") == SERVICE_MODEL
            and ref.get("service_model_ref") not in (None, "")
        ):
            return str(ref["service_model_ref"])
    return None


def id_order(value: str) -> tuple[int, int | str]:
    """Kantata ids are increasing integers: the lowest is the first created."""
    return (0, int(value)) if value.isdigit() else (1, value)


# -------------------------------------------------------------------------------------------------- users


@dataclass(frozen=True)
class KantataUser:
    """A Kantata user as the sync compares it."""

    user_id: str
    full_name: str
    email: str
    hcm_id: str | None = None
    membership_id: str | None = None  # None: not a member (yet)
    disabled: bool = False
    manager_id: str | None = None
    skills: dict[str, str] = field(default_factory=dict)  # skill name (case-folded) -> skill membership id
    values: dict[str, tuple[str, Any]] = field(
        default_factory=dict
    )  # field name (case-folded) -> (id, value)


def users_of(answer: Any) -> list[KantataUser]:
    """The users of an answer read with ``USER_INCLUDES`` (or a part of it), in order."""
    references = list(included(answer, "external_references").values())
    memberships = included(answer, "account_memberships")
    skill_memberships = included(answer, "skill_memberships")
    values = included(answer, "custom_field_values")
    users = []
    for user in records(answer, "users"):
        user_id = user["id"]
        membership = memberships.get(str(user.get("account_membership_id")))
        skills = {}
        for skill_membership_id in _ids(user.get("skill_membership_ids")):
            skill = skill_memberships.get(skill_membership_id)
            if skill is not None and skill.get("cached_skill_name"):
                skills[str(skill["cached_skill_name"]).casefold()] = skill_membership_id
        own_values = {}
        for value_id in _ids(user.get("custom_field_value_ids")):
            value = values.get(value_id)
            if value is not None and value.get("custom_field_name"):
                own_values[str(value["custom_field_name"]).casefold()] = (value_id, value.get("value"))
        users.append(
            KantataUser(
                user_id=user_id,
                full_name=str(user.get("full_name") or ""),
                email=str(user.get("email_address") or ""),
                hcm_id=hcm_id_of(user_id, references),
                membership_id=str(membership["id"]) if membership is not None else None,
                disabled=membership is not None and membership.get("disabled_at") not in (None, ""),
                manager_id=_text(user.get("manager_id")),
                skills=skills,
                values=own_values,
            )
        )
    return users


def new_user(user_id: str, worker: Worker, email: str) -> KantataUser:
    """A user just invited: nothing of the worker is on it yet but what the invitation carried."""
    return KantataUser(user_id=user_id, full_name=worker.display_name, email=email, hcm_id=worker.hcm_id)


def _ids(value: Any) -> list[str]:
    return [str(i) for i in value] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return None if value in (None, "") or isinstance(value, bool) else str(value)


# ------------------------------------------------------------------------------------------- invitations

INVITATION = FieldMap(Field("full_name", "display_name"))
"""Canonical worker -> the invitation's person (the e-mail address, rate and reference are added)."""


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    email: str
    user_id: str  # the invitee: a Kantata user at once, a member only once they accept
    cost_rate_in_cents: int | None = None
    updated_at: dt.datetime | None = None  # Kantata's stamp (its clock), for reading only what changed since


def invitations_of(answer: Any) -> list[Invitation]:
    """Pending invitations of an answer read with ``include=invitee``."""
    found = []
    for record in records(answer, "account_invitations"):
        invitee = _text(record.get("invitee_id"))
        if invitee is None or record.get("pending") is False:
            continue
        cents = record.get("cost_rate_in_cents")
        found.append(
            Invitation(
                invitation_id=record["id"],
                email=str(record.get("email_address") or ""),
                user_id=invitee,
                cost_rate_in_cents=cents if isinstance(cents, int) and not isinstance(cents, bool) else None,
                updated_at=instant_in(record.get("updated_at")),
            )
        )
    return found


def invitation_rate(rate: Money | None, account_currency: str | None) -> int | None:
    """The cost rate an invitation can carry: Kantata's ``cost_rate_in_cents`` is in the account's currency, so
    only a rate in that currency (a rate in another one is pushed once the invitee is a member)."""
    if rate is None or account_currency is None or rate.currency != account_currency:
        return None
    return money_subunits_out(rate)


def invitation_item(worker: Worker, email: str, cost_rate_in_cents: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        **INVITATION.dump(worker),
        "email_address": email,
        "external_reference": reference(worker.hcm_id),
    }
    if cost_rate_in_cents is not None:
        item["cost_rate_in_cents"] = cost_rate_in_cents
    return item


def invitation_rate_body(cost_rate_in_cents: int) -> dict[str, Any]:
    return {"account_invitation": {"cost_rate_in_cents": cost_rate_in_cents}}


def user_name_body(full_name: str) -> dict[str, Any]:
    return {"user": {"full_name": full_name}}


def manager_body(manager_user_id: str | None) -> dict[str, Any]:
    return {"account_membership": {"manager_id": kantata_id(manager_user_id) if manager_user_id else None}}


# ------------------------------------------------------------------------------------------------ cost rates


def cost_rates_of(answer: Any) -> dict[str, dict[str, int]]:
    """Membership id -> currency -> rate in subunits, from ``/account_memberships?include=cost_rates``."""
    rates = included(answer, "cost_rates")
    out: dict[str, dict[str, int]] = {}
    for membership in records(answer, "account_memberships"):
        own = out.setdefault(membership["id"], {})
        for rate_id in _ids(membership.get("cost_rate_ids")):
            rate = rates.get(rate_id)
            amount = (rate or {}).get("amount_in_subunits")
            if rate is not None and isinstance(amount, int) and isinstance(rate.get("currency"), str):
                own[rate["currency"]] = amount
    return out


def cost_rate_item(membership_id: str, rate: Money) -> dict[str, Any]:
    """For ``POST /cost_rates``: creates or overrides the member's rate in that currency (replayable)."""
    return {
        "account_membership_id": kantata_id(membership_id),
        "currency": rate.currency,
        "amount_in_subunits": money_subunits_out(rate),
    }


def rate_differs(rate: Money | None, current: Mapping[str, int]) -> bool:
    return rate is not None and current.get(rate.currency) != money_subunits_out(rate)


# --------------------------------------------------------------------------------------------- custom fields


@dataclass(frozen=True)
class CustomField:
    field_id: str
    name: str
    value_type: str
    choices: dict[str, str] = field(default_factory=dict)  # label -> choice id


SUPPORTED_VALUE_TYPES = ("string", "single")


def custom_fields_of(answer: Any) -> list[CustomField]:
    """User custom fields of an answer read with ``include=choices``."""
    choices = included(answer, "custom_field_choices")
    fields = []
    for record in records(answer, "custom_fields"):
        if record.get("subject_type") not in (None, SUBJECT_TYPE):
            continue
        labels = {
            str(choices[c]["label"]): c
            for c in _ids(record.get("choice_ids"))
            if c in choices and "label" in choices[c]
        }
        fields.append(
            CustomField(
                field_id=record["id"],
                name=str(record.get("name") or ""),
                value_type=str(record.get("value_type") or ""),
                choices=labels,
            )
        )
    return fields


def field_problems(names: Sequence[str], fields: Mapping[str, CustomField]) -> list[dict[str, str]]:
    """What the account lacks for the configured fields (``fields`` by case-folded name)."""
    problems = []
    for name in names:
        found = fields.get(name.casefold())
        if found is None:
            problems.append(
                {
                    "field": f"custom_fields[{name}]",
                    "problem": f"Kantata has no User custom field named {name!r}: an administrator creates it "
                    "(a text or single-choice field)",
                }
            )
        elif found.value_type not in SUPPORTED_VALUE_TYPES:
            problems.append(
                {
                    "field": f"custom_fields[{name}]",
                    "problem": f"the User custom field {name!r} is a {found.value_type} field; the hub writes text or "
                    "single-choice fields",
                }
            )
    return problems


def field_values(
    texts: Mapping[str, str], fields: Mapping[str, CustomField]
) -> tuple[dict[str, tuple[CustomField, Any]], list[dict[str, str]]]:
    """The vendor value of each text by field id, and the problems (a label no choice carries)."""
    out: dict[str, tuple[CustomField, Any]] = {}
    problems = []
    for name, text in texts.items():
        definition = fields.get(name.casefold())
        if definition is None or definition.value_type not in SUPPORTED_VALUE_TYPES:
            continue  # reported once for the call by ``field_problems``
        if definition.value_type == "string":
            out[definition.field_id] = (definition, text)
            continue
        choice = definition.choices.get(text) or next(
            (cid for label, cid in definition.choices.items() if label.casefold() == text.casefold()), None
        )
        if choice is None:
            problems.append(
                {
                    "field": f"custom_fields[{definition.name}]",
                    "problem": f"the field has no choice labelled {text!r}: an administrator adds it",
                }
            )
            continue
        out[definition.field_id] = (definition, [kantata_id(choice)])
    return out, problems


def same_value(definition: CustomField, current: Any, value: Any) -> bool:
    if definition.value_type == "single":
        return isinstance(current, list) and [str(c) for c in current] == [str(v) for v in value]
    return current is not None and str(current) == str(value)


def value_item(user_id: str, field_id: str, value: Any) -> dict[str, Any]:
    """For ``POST /custom_field_values``: creates or overrides the user's value of the field (replayable)."""
    return {
        "subject_type": SUBJECT_TYPE,
        "subject_id": kantata_id(user_id),
        "custom_field_id": kantata_id(field_id),
        "value": value,
    }


# ------------------------------------------------------------------------------------ skills, organizations


def skill_changes(wanted_skills: Sequence[str], current: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(skill names to add, skill membership ids the worker no longer has in the HCM)."""
    wanted_keys = {s.casefold() for s in wanted_skills}
    add = [s for s in wanted_skills if s.casefold() not in current]
    extra = [membership_id for name, membership_id in current.items() if name not in wanted_keys]
    return add, extra


def skill_membership_item(user_id: str, skill_id: str) -> dict[str, Any]:
    return {"user_id": kantata_id(user_id), "skill_id": kantata_id(skill_id)}


def skill_body(name: str, category_id: str) -> dict[str, Any]:
    return {
        "skill": {
            "name": name,
            "max_level": NEW_SKILL_MAX_LEVEL,
            "skill_category_id": kantata_id(category_id),
        }
    }


def named_ids(answer: Any, collection: str) -> dict[str, str]:
    """Case-folded name -> id of the records of a listing (skills, skill categories)."""
    return {
        str(r.get("name") or "").casefold(): r["id"] for r in records(answer, collection) if r.get("name")
    }


def creators_of(answer: Any) -> dict[str, str | None]:
    """Skill membership id -> the id of the user who created it (``include=creator``)."""
    return {r["id"]: _text(r.get("creator_id")) for r in records(answer, "skill_memberships")}


@dataclass
class Organizations:
    departments: dict[str, str] = field(default_factory=dict)  # case-folded name -> id
    department_root: str | None = None
    geography_root: str | None = None

    def add(self, answer: Any) -> None:
        for record in records(answer, "organizations"):
            kind = record.get("type")
            if kind == "Department":
                self.departments.setdefault(str(record.get("name") or "").casefold(), record["id"])
                if record.get("parent_id") in (None, ""):
                    self.department_root = self.department_root or record["id"]
            elif kind == "Geography" and record.get("parent_id") in (None, ""):
                self.geography_root = self.geography_root or record["id"]


def organization_body(name: str, parent_id: str) -> dict[str, Any]:
    return {"organization": {"name": name, "parent_id": kantata_id(parent_id)}}


@dataclass(frozen=True)
class OrganizationMembership:
    membership_id: str
    department_id: str | None
    geography_id: str | None


def organization_membership_of(answer: Any, user_id: str) -> OrganizationMembership | None:
    for record in records(answer, "organization_memberships"):
        if str(record.get("member_id")) == user_id and record.get("member_type") in (None, SUBJECT_TYPE):
            return OrganizationMembership(
                record["id"], _text(record.get("department_id")), _text(record.get("geography_id"))
            )
    return None


def organization_membership_item(user_id: str, department_id: str, geography_id: str) -> dict[str, Any]:
    return {
        "member_type": SUBJECT_TYPE,
        "member_id": kantata_id(user_id),
        "department_id": kantata_id(department_id),
        "geography_id": kantata_id(geography_id),
    }


def department_body(department_id: str) -> dict[str, Any]:
    return {"organization_membership": {"department_id": kantata_id(department_id)}}


# ----------------------------------------------------------------------------------------------- workweeks


@dataclass(frozen=True)
class OwnWorkweek:
    membership_id: str
    start_date: str
    minutes: dict[str, int]


def own_workweeks_of(answer: Any) -> dict[str, OwnWorkweek]:
    """User id -> their workweek membership in effect (``effective_date=``), from an answer with
    ``include=workweek``; the latest start wins if several are listed."""
    weeks = included(answer, "workweeks")
    out: dict[str, OwnWorkweek] = {}
    for record in records(answer, "workweek_memberships"):
        workweek = weeks.get(str(record.get("workweek_id")))
        user_id = _text(record.get("user_id"))
        start = str(record.get("start_date") or "")
        if workweek is None or user_id is None:
            continue
        if user_id not in out or out[user_id].start_date < start:
            out[user_id] = OwnWorkweek(record["id"], start, workweek_minutes(workweek))
    return out


def default_workweek_of(answer: Any, day: dt.date) -> dict[str, int] | None:
    """The account's default workweek in effect on ``day``."""
    candidates = [
        w for w in records(answer, "workweeks") if str(w.get("start_date") or "") <= day.isoformat()
    ]
    if not candidates:
        return None
    return workweek_minutes(max(candidates, key=lambda w: str(w.get("start_date"))))


def workweek_body(user_id: str, start: dt.date, minutes: Mapping[str, int]) -> dict[str, Any]:
    return {
        "workweek_membership": {
            "user_id": kantata_id(user_id),
            "start_date": start.isoformat(),
            **{f"{day}_minutes": minutes[day] for day in DAYS},
        }
    }


def workweek_update_body(minutes: Mapping[str, int]) -> dict[str, Any]:
    return {"workweek_membership": {f"{day}_minutes": minutes[day] for day in DAYS}}


# ------------------------------------------------------------------------------------------ request params


def users_by_reference_params(hcm_ids: Sequence[str]) -> dict[str, Any]:
    """Every account member (disabled ones too) carrying the hub's reference to one of these HCM ids."""
    return {
        "on_my_account": "true",
        "show_disabled": "true",
        "external_reference_service_name": SERVICE_NAME,
        "external_reference_service_model": SERVICE_MODEL,
        "external_reference_service_model_refs": ",".join(hcm_ids),
        "include": USER_INCLUDES,
        "per_page": PAGE_SIZE,
    }


def users_by_email_params(emails: Sequence[str]) -> dict[str, Any]:
    return {
        "on_my_account": "true",
        "show_disabled": "true",
        "by_email_addresses": ",".join(emails),
        "include": USER_INCLUDES,
        "per_page": PAGE_SIZE,
    }


def users_by_id_params(user_ids: Sequence[str]) -> dict[str, Any]:
    """Members by id with their references (disabled ones too: a leaver's assignments stay readable)."""
    return {
        "on_my_account": "true",
        "show_disabled": "true",
        "only": ",".join(user_ids),
        "include": "external_references",
        "per_page": PAGE_SIZE,
    }


def users_in_department_params(user_ids: Sequence[str], department_id: str) -> dict[str, Any]:
    """Which of these members are in the department (or a department below it: ``geographies;departments``)."""
    return {
        "on_my_account": "true",
        "show_disabled": "true",
        "only": ",".join(user_ids),
        "belonging_to_orgs": f";{department_id}",
        "per_page": PAGE_SIZE,
    }


def invitations_params(updated_after: dt.datetime | None = None) -> dict[str, Any]:
    """Pending invitations; with ``updated_after``, only those created or changed after it (Kantata's clock)."""
    params: dict[str, Any] = {"include": "invitee", "per_page": PAGE_SIZE}
    if updated_after is not None:
        params["updated_after"] = instant_out(updated_after)
    return params


def memberships_params(user_ids: Sequence[str]) -> dict[str, Any]:
    return {"with_user_ids": ",".join(user_ids), "include": "cost_rates", "per_page": PAGE_SIZE}


def workweek_memberships_params(user_ids: Sequence[str], day: dt.date) -> dict[str, Any]:
    return {
        "user_ids": ",".join(user_ids),
        "effective_date": day.isoformat(),
        "include": "workweek",
        "per_page": PAGE_SIZE,
    }


def workweeks_params(day: dt.date) -> dict[str, Any]:
    return {"effective_date": day.isoformat(), "per_page": PAGE_SIZE}


def custom_fields_params() -> dict[str, Any]:
    return {"subject_type": SUBJECT_TYPE, "include": "choices", "per_page": PAGE_SIZE}


def organization_membership_params(user_id: str) -> dict[str, Any]:
    return {
        "member_type": SUBJECT_TYPE,
        "member_id": user_id,
        "include": "department,geography",
        "per_page": PAGE_SIZE,
    }


def skill_creators_params(user_ids: Sequence[str]) -> dict[str, Any]:
    return {"user_ids": ",".join(user_ids), "include": "creator", "per_page": PAGE_SIZE}


def listing_params() -> dict[str, Any]:
    return {"per_page": PAGE_SIZE}


# -- planning

PLANNING_SCOPE = {
    "include_unnamed": "true",
    "in_unarchived_stories": "false",
    "in_unarchived_workspaces": "false",
}
"""Every assignment and daily allocation, placeholders and archived tasks and projects included (Kantata leaves
them out by default): a change to any of them changes the project's plan."""


def _changes(after: dt.datetime, before: dt.datetime) -> dict[str, Any]:
    # Kantata's updated_after is strict and its timestamps whole seconds: one second earlier, re-checked on
    # the client (``kantata.in_window``), reads [after, before) exactly.
    return {
        "updated_after": instant_out(after - _SECOND),
        "updated_before": instant_out(before),
        "order": "updated_at:asc",
    }


def assignment_changes_params(after: dt.datetime, before: dt.datetime) -> dict[str, Any]:
    return {**_changes(after, before), **PLANNING_SCOPE, "include": "story"}


def allocation_day_changes_params(after: dt.datetime, before: dt.datetime) -> dict[str, Any]:
    """Daily allocations changed in the window: their assignment's ``updated_at`` need not move."""
    return {**_changes(after, before), **PLANNING_SCOPE, "include": "workspace"}


def resource_changes_params(after: dt.datetime, before: dt.datetime) -> dict[str, Any]:
    """Project resources changed in the window: giving a resource to another person moves only the resource."""
    return {**_changes(after, before), "include_unnamed": "true"}


def project_assignments_params(workspace_id: str) -> dict[str, Any]:
    """The project's current assignments of named people, with their daily allocations (archived projects too;
    assignments on archived tasks are left out, as Kantata's planning leaves them out)."""
    return {
        "workspace_id": workspace_id,
        "current": "true",
        "plannable": "true",
        "in_unarchived_workspaces": "false",
        "include": "assignee,story,story_allocation_days",
        "per_page": PAGE_SIZE,
    }


def project_of_assignment(record: Mapping[str, Any], answer: Any) -> str | None:
    story = included(answer, "stories").get(str(record.get("story_id")))
    return _text((story or {}).get("workspace_id"))


def project_of_allocation_day(record: Mapping[str, Any]) -> str | None:
    return _text(record.get("workspace_id"))


def project_of_resource(record: Mapping[str, Any]) -> str | None:
    return _text(record.get("workspace_id"))


# ------------------------------------------------------------------------------------------- assignments


def _days(days: Any, _record: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    if not isinstance(days, list):
        return ()
    out = [
        {"day": d.get("date"), "hours": hours_from_minutes(d.get("minutes"))}
        for d in days
        if isinstance(d, Mapping)
    ]
    return tuple(sorted(out, key=lambda d: str(d["day"])))


def _text_load(value: Any, _record: Mapping[str, Any]) -> Any:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else value


ASSIGNMENT = FieldMap(
    Field("id", "psa_assignment_id", load=_text_load, direction="load"),
    Field("_workspace_id", "psa_project_id", load=_text_load, direction="load"),
    Field("_hcm_id", "worker_hcm_id", direction="load"),
    Field("_days", "days", load=_days, direction="load"),
)
"""Kantata assignment (with its project, its assignee's HCM id and its daily allocations) -> ``Assignment``."""


def assignment_days(record: Mapping[str, Any], answer: Any) -> list[dict[str, Any]]:
    """An assignment's daily allocations, from an answer read with ``include=story_allocation_days``."""
    days = included(answer, "story_allocation_days")
    return [days[d] for d in _ids(record.get("story_allocation_day_ids")) if d in days]


def assignment_of(
    record: Mapping[str, Any], days: list[dict[str, Any]], workspace_id: str, hcm_id: str
) -> Assignment:
    """A Kantata assignment as a canonical one: minutes a day as hours (``Decimal``), days in date order."""
    source = {**record, "_workspace_id": workspace_id, "_hcm_id": hcm_id, "_days": days}
    arguments = ASSIGNMENT.load(source)
    arguments["days"] = tuple(DayAllocation(**d) for d in arguments.get("days") or ())
    return Assignment(**arguments)
