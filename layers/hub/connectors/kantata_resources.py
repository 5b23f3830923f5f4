"""Kantata OX resource pool and planning (``PsaResourcePort``): the HCM's workers as account members, and the
projects' assignments read back as canonical ones.

``KantataResources`` is ``KantataPsa`` (same client, token, retries, error classification and listing helpers)
with the resource port added; what Kantata holds of a worker, and where, is in ``hub.mapping.kantata_resources``.

``upsert_resources(workers, today=)``, in a few batched calls however many workers:

1. Find: every member (disabled ones too) carrying the hub's external reference to one of the workers' HCM ids
   (or their managers'), ``LOOKUP_CHUNK`` ids a call. A worker not found so is looked for by the e-mail address
   it would be invited at (members, then pending invitations), so that a person an administrator added before
   the hub, or an invitation whose answer was lost, is linked instead of invited twice. A member found by
   e-mail that is linked to another HCM id is a ``ConflictError`` for that worker.
2. What to do, from the worker and the day of the run (``today``):

   - employed today (``Worker.active_on``): a new worker is invited (bulk ``POST /account_invitations``, up to
     50 a call, the external reference embedded; if Kantata refuses a bulk call, each is sent again on its own
     so that only the bad one fails); an existing one is updated where it differs: display name, cost rate,
     department, skills, workweek, custom fields, manager; a disabled one (a rehire) is enabled first;
   - past its end date: the account membership is disabled (never deleted; every record stays readable); a
     pending invitation is revoked instead (deleted: the person never joined); already disabled, or never in
     Kantata: nothing is written ("unchanged");
   - not hired yet: nothing is created or changed before the hire date.

   Nothing is written for an unchanged worker: a re-run answers "unchanged" with no write call.
3. The cost rate is the one in effect today (``worker.rate_on(today)``): Kantata's cost rates are not
   effective-dated (one per member and currency, a change applies to work from then on), so a future rate is
   pushed by the first run on or after its effective date, and a rate change backdated before the last run is
   not applied to the past. Likewise the legal entity, cost centre and department (``placement_on(today)``): a
   transfer reaches Kantata on its effective date.
4. An invited person is a Kantata user at once (``invitee``) but a member only once they accept the e-mailed
   invitation (no API accepts it). The worker's result is then "created" with the invitee's user id (the id the
   member keeps). What needs no membership is set on the invitee right away (skills, department, workweek,
   custom fields); the cost rate rides on the invitation when it is in the account's currency
   (``account_currency``), else, like the manager (which Kantata keeps on the membership), it is set by the
   first run after they accept. While the invitation is pending a re-run answers "unchanged" (it only updates
   the invitation's rate); after they accept the next run compares everything as for any member.
5. Skills: the HCM's skills are added (a missing skill is created in the "Skill" category); a skill the worker
   no longer has in the HCM is removed only if the integration user added it (a skill a manager added in
   Kantata is kept). Departments missing in Kantata are created under the department root; a member in a
   department below their HCM department (an administrator's refinement) is left there. Custom fields must
   exist (see ``UserFields``): if one is missing, every worker to sync fails with ``DataValidationError``
   (code ``UNMAPPED_VALUE``) and nothing is written for them; leavers are still disabled.

Results come one per worker, in order. A worker's failure (a 422 for its data, a conflict) is that worker's
``error``; the others go on. Throttling and transient errors raise for the whole call (every write is found
again, not repeated, by the next run: creates are never replayed after an ambiguous failure, and
``create_or_update``-style writes are replayable).

``assignments_changed(updated_after=, updated_before=)``: the projects whose assignments, daily allocations or
project resources changed in ``[updated_after, updated_before)``, each listed once: three listings by
``updated_at`` (Kantata need not move an assignment's ``updated_at`` when its daily hours change, nor when its
resource is given to someone else), archived tasks and projects and unnamed placeholders included. Hard deletes
(a deleted resource takes its assignments and daily hours with it; a daily allocation deleted on its own) leave
nothing to list: a periodic full re-read of the projects is needed to see them.

``project_assignments(psa_project_id)``: the project's current assignments of named people (archived projects
included, archived tasks left out as Kantata's planning leaves them out) with their daily hours (minutes / 60 as
``Decimal``), the worker's HCM id read from the assignee's external reference in one batched call. An assignment
of a person without the hub's reference (someone the hub does not sync) is skipped and counted in a warning: it
has no canonical worker to cost it with.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from hub.connectors.kantata import SYSTEM, KantataPsa
from hub.connectors.ports import ResourceResult
from hub.errors import (
    RETRYABLE,
    ConflictError,
    DataValidationError,
    HubError,
    TransientError,
    field_problems,
    unmapped,
)
from hub.mapping import kantata as km
from hub.mapping import kantata_resources as rm
from hub.model.workforce import Assignment, Worker

logger = logging.getLogger("hub.connectors.kantata_resources")

Outcome = Literal["created", "updated", "unchanged", "deactivated"]
EmailFor = Callable[[Worker], str | None]


INVITATIONS_REREAD = 600.0  # seconds between whole reads of the pending invitations
INVITATIONS_OVERLAP = dt.timedelta(seconds=5)  # re-read before the latest stamp seen (late commits, skew)


@dataclass(eq=False)
class _Slot:
    """One worker of the call and what became of it."""

    worker: Worker
    action: rm.Action
    user: rm.KantataUser | None = None  # the member (found, adopted by e-mail, or just invited)
    invitation: rm.Invitation | None = None  # a pending invitation: not a member yet
    email: str | None = None
    adopt: bool = False  # found by e-mail: the hub's reference is added
    fresh: bool = False  # invited by this call
    wanted: rm.Wanted | None = None
    values: dict[str, tuple[rm.CustomField, Any]] = field(default_factory=dict)  # field id -> value wanted
    outcome: Outcome = "unchanged"
    error: HubError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def user_id(self) -> str | None:
        if self.user is not None:
            return self.user.user_id
        return self.invitation.user_id if self.invitation is not None else None

    def fail(self, error: HubError) -> None:
        if self.error is None:
            self.error = error

    def wrote(self) -> None:
        if self.outcome == "unchanged":
            self.outcome = "updated"

    def result(self) -> ResourceResult:
        return ResourceResult(
            hcm_id=self.worker.hcm_id, psa_user_id=self.user_id, outcome=self.outcome, error=self.error
        )


@dataclass
class _Run:
    """What one call reads of the account once, when first needed."""

    today: dt.date
    managers: dict[str, rm.KantataUser] = field(default_factory=dict)  # HCM id -> member
    custom_fields: dict[str, rm.CustomField] | None = None  # case-folded name -> field
    organizations: rm.Organizations | None = None
    skills: dict[str, str] | None = None  # case-folded name -> skill id
    default_week: dict[str, int] | None = None


Item = tuple[_Slot, dict[str, Any]]


class KantataResources(KantataPsa):
    """``PsaPort``, ``PsaTimePort`` and ``PsaResourcePort`` over the Kantata OX API v1."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        email_for: EmailFor | None = None,
        account_currency: str | None = None,
        user_fields: rm.UserFields | None = None,
        **connection: Any,
    ) -> None:
        """``email_for``: the address a new worker is invited at (the canonical worker has none; e.g.
        ``hub.mapping.kantata_resources.invitation_email("{hcm_id}@corp.example")``); without it new workers
        fail with ``UNMAPPED_VALUE`` and nobody is looked for by e-mail. ``account_currency``: the Kantata
        account's currency, the only one an invitation can carry a cost rate in. ``user_fields``: the names of
        the User custom fields for the legal entity, cost centre and HCM id. ``connection``: what
        :class:`KantataPsa` takes (token, base URL, retry, home countries, time zone)."""
        super().__init__(client, **connection)
        self._email_for = email_for
        self._account_currency = account_currency
        self._user_fields = user_fields or rm.UserFields()
        self._me: str | None = None
        # Pending invitations as last read (see _pending_invitations), shared by the batches of a container.
        self._invitations: dict[str, rm.Invitation] = {}
        self._invitations_read: float | None = None  # monotonic time of the last whole read
        self._invitations_seen: dt.datetime | None = None  # the latest stamp Kantata showed
        self._invitations_lock = threading.Lock()

    # ======================================================================================== resource pool

    def upsert_resources(self, workers: Sequence[Worker], *, today: dt.date) -> list[ResourceResult]:
        slots = [_Slot(worker, rm.action_of(worker, today)) for worker in workers]
        seen: set[str] = set()
        for slot in slots:
            if slot.worker.hcm_id in seen:
                slot.fail(
                    DataValidationError(
                        "the worker is in the batch twice",
                        problems=[
                            {"field": "hcm_id", "problem": "duplicate in the batch: only the first is synced"}
                        ],
                        system=SYSTEM,
                    )
                )
            seen.add(slot.worker.hcm_id)
        live = [s for s in slots if s.ok]
        run = _Run(today)
        self._find(live, run)
        syncing = [s for s in live if s.ok and s.action is rm.Action.SYNC]
        if syncing:
            self._prepare(syncing, run)
        for slot in live:
            if slot.ok:
                self._identity(slot)
        self._invite([s for s in syncing if s.ok and s.user is None and s.invitation is None])
        members = [s for s in syncing if s.ok and s.user is not None]
        if members:
            self._attributes(members, run)
        return [slot.result() for slot in slots]

    # ------------------------------------------------------------------------------------------- find

    def _find(self, slots: list[_Slot], run: _Run) -> None:
        hcm_ids = [s.worker.hcm_id for s in slots]
        hcm_ids += [
            s.worker.manager_hcm_id for s in slots if s.action is rm.Action.SYNC and s.worker.manager_hcm_id
        ]
        found = self._members_by_reference(hcm_ids)
        run.managers = {hcm_id: user for hcm_id, user in found.items() if user.membership_id is not None}
        for slot in slots:
            slot.user = found.get(slot.worker.hcm_id)
        missing = [s for s in slots if s.user is None and s.action is not rm.Action.WAIT]
        if not missing or self._email_for is None:
            return
        for slot in missing:
            email = self._email_for(slot.worker)
            slot.email = email.strip() if email and email.strip() else None
        addressed = [s for s in missing if s.email is not None]
        if not addressed:
            return
        by_email = self._members_by_email([s.email for s in addressed if s.email])
        invitations: dict[str, rm.Invitation] | None = None
        for slot in addressed:
            key = (slot.email or "").casefold()
            user = by_email.get(key)
            if user is not None:
                if user.hcm_id not in (None, slot.worker.hcm_id):
                    slot.fail(
                        ConflictError(
                            "the worker's e-mail address belongs to a Kantata user linked to another worker",
                            system=SYSTEM,
                            code="email_linked_elsewhere",
                        )
                    )
                else:
                    slot.user, slot.adopt = user, user.hcm_id is None
                continue
            if invitations is None:
                invitations = self._pending_invitations()
            slot.invitation = invitations.get(key)

    def _members_by_reference(self, hcm_ids: Sequence[str]) -> dict[str, rm.KantataUser]:
        wanted = list(dict.fromkeys(hcm_ids))
        found: dict[str, rm.KantataUser] = {}
        for chunk in _chunks(wanted, rm.LOOKUP_CHUNK):
            asked = set(chunk)
            for answer in self._pages("/users.json", _paged(rm.users_by_reference_params(chunk))):
                for user in rm.users_of(answer):
                    if user.hcm_id in asked and (
                        user.hcm_id not in found
                        or rm.id_order(user.user_id) < rm.id_order(found[user.hcm_id].user_id)
                    ):
                        found[user.hcm_id] = user
        return found

    def _members_by_email(self, emails: Sequence[str]) -> dict[str, rm.KantataUser]:
        wanted = list(dict.fromkeys(emails))
        asked = {e.casefold() for e in wanted}
        found: dict[str, rm.KantataUser] = {}
        for chunk in _chunks(wanted, rm.EMAIL_CHUNK):
            for answer in self._pages("/users.json", _paged(rm.users_by_email_params(chunk))):
                for user in rm.users_of(answer):
                    key = user.email.casefold()
                    if key in asked and key not in found:
                        found[key] = user
        return found

    def _remember_invitations(self, invited: Mapping[str, rm.Invitation]) -> None:
        """Invitations this adapter sent: known at once, and their stamps move where the next read starts."""
        with self._invitations_lock:
            self._invitations.update(invited)
            for invitation in invited.values():
                stamp = invitation.updated_at
                if stamp is not None and (self._invitations_seen is None or stamp > self._invitations_seen):
                    self._invitations_seen = stamp

    def _pending_invitations(self) -> dict[str, rm.Invitation]:
        """Pending invitations by e-mail. The whole list is read once every ``INVITATIONS_REREAD``; in between,
        only the invitations Kantata stamped since the latest it showed (less ``INVITATIONS_OVERLAP``, on
        Kantata's own clock) are read and merged: during an initial load every batch of new workers would
        otherwise page through every invitation the earlier batches sent. An invitation withdrawn in Kantata
        meanwhile stays known until the next whole read; one accepted does not matter (its person is then
        found as a member, before invitations are consulted)."""
        with self._invitations_lock:
            now = time.monotonic()
            whole = self._invitations_read is None or now - self._invitations_read >= INVITATIONS_REREAD
            since = None if whole or self._invitations_seen is None else self._invitations_seen
            known = {} if whole else dict(self._invitations)
            after = None if since is None else since - INVITATIONS_OVERLAP
            for answer in self._pages("/account_invitations.json", _paged(rm.invitations_params(after))):
                for invitation in rm.invitations_of(answer):
                    key = invitation.email.casefold()
                    if whole:
                        known.setdefault(key, invitation)
                    else:
                        known[key] = invitation
                    stamp = invitation.updated_at
                    if stamp is not None and (
                        self._invitations_seen is None or stamp > self._invitations_seen
                    ):
                        self._invitations_seen = stamp
            self._invitations = known
            if whole:
                self._invitations_read = now
            return dict(known)

    # ---------------------------------------------------------------------------------------- prepare

    def _prepare(self, slots: list[_Slot], run: _Run) -> None:
        """What each worker should look like, checked before anything is written for it."""
        fields = self._custom_fields(run)
        missing = rm.field_problems(self._user_fields.names(), fields)
        for slot in slots:
            slot.wanted = rm.wanted(slot.worker, run.today, self._user_fields)
            slot.values, problems = rm.field_values(slot.wanted.fields, fields)
            if missing or problems:
                slot.fail(
                    DataValidationError(
                        "kantata lacks what the worker's data needs",
                        problems=missing + problems,
                        system=SYSTEM,
                        code="UNMAPPED_VALUE",
                    )
                )

    # --------------------------------------------------------------------------------------- identity

    def _identity(self, slot: _Slot) -> None:
        """Link, disable, enable, rename; revoke or update a pending invitation."""
        user, worker = slot.user, slot.worker
        if slot.action is rm.Action.WAIT:
            return
        if user is not None and slot.adopt:
            self._write(
                slot,
                "POST",
                "/external_references/create_or_update.json",
                json=rm.user_reference_body(user.user_id, worker.hcm_id),
                idempotent=True,
            )
        if slot.action is rm.Action.DEACTIVATE:
            if user is not None and user.membership_id is not None and not user.disabled:
                if self._write(
                    slot, "PUT", "/account_memberships/{id}/disable.json", record_id=user.membership_id
                ):
                    slot.outcome = "deactivated"
            elif user is None and slot.invitation is not None:
                invitation_id = slot.invitation.invitation_id
                if self._write(slot, "DELETE", "/account_invitations/{id}.json", record_id=invitation_id):
                    slot.outcome = "deactivated"
                    with self._invitations_lock:
                        self._invitations.pop(slot.invitation.email.casefold(), None)
            return
        if user is not None:
            if user.disabled and user.membership_id is not None:
                self._write(
                    slot, "PUT", "/account_memberships/{id}/enable.json", record_id=user.membership_id
                )
            if slot.ok and user.full_name != worker.display_name:
                self._write(
                    slot,
                    "PUT",
                    "/users/{id}.json",
                    record_id=user.user_id,
                    json=rm.user_name_body(worker.display_name),
                )
        elif slot.invitation is not None and slot.wanted is not None:
            cents = rm.invitation_rate(slot.wanted.rate, self._account_currency)
            if cents is not None and cents != slot.invitation.cost_rate_in_cents:
                self._write(
                    slot,
                    "PUT",
                    "/account_invitations/{id}.json",
                    record_id=slot.invitation.invitation_id,
                    json=rm.invitation_rate_body(cents),
                )

    # ----------------------------------------------------------------------------------------- invite

    def _invite(self, slots: list[_Slot]) -> None:
        items: list[Item] = []
        for slot in slots:
            if slot.email is None:
                slot.fail(
                    unmapped(
                        SYSTEM,
                        "email_address",
                        "Kantata invites people by e-mail and the hub has no address for this worker "
                        "(configure email_for)",
                    )
                )
                continue
            assert slot.wanted is not None
            cents = rm.invitation_rate(slot.wanted.rate, self._account_currency)
            items.append((slot, rm.invitation_item(slot.worker, slot.email, cents)))
        for chunk, answer in self._bulk(
            "/account_invitations.json",
            ("account_invitation", "account_invitations"),
            rm.INVITATION_CHUNK,
            items,
            params={"include": "invitee"},
            idempotent=False,
        ):
            invited = {i.email.casefold(): i for i in rm.invitations_of(answer)}
            self._remember_invitations(invited)
            for slot, item in chunk:
                invitation = invited.get(str(item["email_address"]).casefold())
                if invitation is None:
                    slot.fail(
                        TransientError(
                            "kantata answered an invitation without it", system=SYSTEM, code="bad_body"
                        )
                    )
                    continue
                slot.invitation = invitation
                slot.user = rm.new_user(invitation.user_id, slot.worker, invitation.email)
                slot.fresh = True
                slot.outcome = "created"

    # ------------------------------------------------------------------------------------- attributes

    def _attributes(self, slots: list[_Slot], run: _Run) -> None:
        """Cost rate, custom fields, skills, department, workweek and manager: read in batches, compared, and
        written where they differ (bulk where Kantata has it)."""
        existing = [s for s in slots if not s.fresh]
        user_ids = [s.user.user_id for s in existing if s.user is not None]
        rates = self._cost_rates([s.user.user_id for s in existing if s.user and s.user.membership_id])
        weeks = self._own_workweeks(user_ids, run.today)
        rate_items: list[Item] = []
        value_items: list[Item] = []
        for slot in slots:
            user, wanted = slot.user, slot.wanted
            assert user is not None and wanted is not None
            if user.membership_id is not None and rm.rate_differs(
                wanted.rate, rates.get(user.membership_id, {})
            ):
                assert wanted.rate is not None
                rate_items.append((slot, rm.cost_rate_item(user.membership_id, wanted.rate)))
            for field_id, (definition, value) in slot.values.items():
                current = user.values.get(definition.name.casefold())
                if current is None or not rm.same_value(definition, current[1], value):
                    value_items.append((slot, rm.value_item(user.user_id, field_id, value)))
        self._done(
            self._bulk(
                "/cost_rates.json",
                ("cost_rate", "cost_rates"),
                rm.COST_RATE_CHUNK,
                rate_items,
                idempotent=True,
            )
        )
        self._done(
            self._bulk(
                "/custom_field_values.json",
                ("custom_field_value", "custom_field_values"),
                rm.VALUE_CHUNK,
                value_items,
                idempotent=True,
            )
        )
        self._skills(slots, run)
        self._departments(slots, run)
        self._workweeks(slots, weeks, run)
        self._managers(slots, run)

    def _skills(self, slots: list[_Slot], run: _Run) -> None:
        adds: dict[_Slot, list[str]] = {}
        extras: dict[_Slot, list[str]] = {}
        for slot in slots:
            assert slot.user is not None and slot.wanted is not None
            add, extra = rm.skill_changes(slot.wanted.skills, slot.user.skills)
            if add:
                adds[slot] = add
            if extra and not slot.fresh:
                extras[slot] = extra
        if adds:
            skill_ids = self._skill_ids([name for names in adds.values() for name in names], run)
            items: list[Item] = []
            for slot, names in adds.items():
                for name in names:
                    found = skill_ids.get(name.casefold())
                    if isinstance(found, HubError):
                        slot.fail(found)
                    elif found is not None and slot.ok and slot.user is not None:
                        items.append((slot, rm.skill_membership_item(slot.user.user_id, found)))
            self._done(
                self._bulk(
                    "/skill_memberships.json",
                    ("skill_membership", "skill_memberships"),
                    rm.SKILL_MEMBERSHIP_CHUNK,
                    items,
                    idempotent=False,
                )
            )
        live = {s: ids for s, ids in extras.items() if s.ok and s.user is not None}
        if live:
            creators: dict[str, str | None] = {}
            owners = [s.user.user_id for s in live if s.user is not None]
            for chunk in _chunks(owners, rm.LOOKUP_CHUNK):
                for answer in self._pages("/skill_memberships.json", _paged(rm.skill_creators_params(chunk))):
                    creators.update(rm.creators_of(answer))
            me = self._integration_user()
            for slot, membership_ids in live.items():
                for membership_id in membership_ids:
                    if slot.ok and creators.get(membership_id) == me:
                        self._write(slot, "DELETE", "/skill_memberships/{id}.json", record_id=membership_id)

    def _skill_ids(self, names: list[str], run: _Run) -> dict[str, str | HubError]:
        """Case-folded skill name -> id, creating the missing skills (or the error that refused one)."""
        if run.skills is None:
            run.skills = self._skill_listing()
        out: dict[str, str | HubError] = dict(run.skills)
        missing = list(dict.fromkeys(n for n in names if n.casefold() not in out))
        if not missing:
            return out
        categories: dict[str, str] = {}
        for answer in self._pages("/skill_categories.json", _paged(rm.listing_params())):
            categories.update(rm.named_ids(answer, "skill_categories"))
        category = categories.get(rm.SKILL_CATEGORY.casefold())
        for name in missing:
            if category is None:
                out[name.casefold()] = unmapped(
                    SYSTEM, "skills", f"Kantata has no skill category named {rm.SKILL_CATEGORY!r}"
                )
                continue
            try:
                answer = self._call("POST", "/skills.json", json=rm.skill_body(name, category))
            except RETRYABLE:
                raise
            except HubError as error:  # refused: created by a concurrent batch meanwhile, or really refused
                run.skills = self._skill_listing()
                out[name.casefold()] = run.skills.get(name.casefold(), error)
                continue
            created = self._created(answer, "skills")
            run.skills[name.casefold()] = out[name.casefold()] = created
        return out

    def _departments(self, slots: list[_Slot], run: _Run) -> None:
        names = {s.wanted.department for s in slots if s.ok and s.wanted and s.wanted.department}
        if not names:
            return
        organizations = self._organizations(run)
        failed: dict[str, HubError] = {}
        for name in sorted(n for n in names if n.casefold() not in organizations.departments):
            if organizations.department_root is None:
                failed[name.casefold()] = unmapped(SYSTEM, "department", "Kantata has no department tree")
                continue
            try:
                answer = self._call(
                    "POST",
                    "/organizations.json",
                    json=rm.organization_body(name, organizations.department_root),
                )
            except RETRYABLE:
                raise
            except HubError as error:  # "name has already been taken": another batch created it meanwhile
                run.organizations = None
                organizations = self._organizations(run)
                if name.casefold() not in organizations.departments:
                    failed[name.casefold()] = error
                continue
            organizations.departments[name.casefold()] = self._created(answer, "organizations")
        wanted: dict[_Slot, str] = {}
        for slot in slots:
            department = slot.wanted.department if slot.wanted else None
            if department is None or not slot.ok:
                continue
            if department.casefold() in failed:
                slot.fail(failed[department.casefold()])
            else:
                wanted[slot] = organizations.departments[department.casefold()]
        # Members already in their department (or one below it) are left as they are.
        by_department: dict[str, list[_Slot]] = defaultdict(list)
        for slot, department_id in wanted.items():
            if not slot.fresh:
                by_department[department_id].append(slot)
        placed: set[_Slot] = set()
        for department_id, members in by_department.items():
            ids = {s.user.user_id: s for s in members if s.user is not None}
            for chunk in _chunks(list(ids), rm.LOOKUP_CHUNK):
                params = rm.users_in_department_params(chunk, department_id)
                for answer in self._pages("/users.json", _paged(params)):
                    placed.update(ids[r["id"]] for r in km.records(answer, "users") if r["id"] in ids)
        creates: list[Item] = []
        for slot, department_id in wanted.items():
            if slot in placed or slot.user is None:
                continue
            current = None if slot.fresh else self._organization_membership(slot)
            if not slot.ok:
                continue
            if current is not None:
                self._write(
                    slot,
                    "PUT",
                    "/organization_memberships/{id}.json",
                    record_id=current.membership_id,
                    json=rm.department_body(department_id),
                )
            elif organizations.geography_root is None:
                slot.fail(unmapped(SYSTEM, "department", "Kantata has no geography tree"))
            else:
                item = rm.organization_membership_item(
                    slot.user.user_id, department_id, organizations.geography_root
                )
                creates.append((slot, item))
        self._done(
            self._bulk(
                "/organization_memberships.json",
                ("organization_membership", "organization_memberships"),
                rm.ORGANIZATION_MEMBERSHIP_CHUNK,
                creates,
                idempotent=False,
            )
        )

    def _organization_membership(self, slot: _Slot) -> rm.OrganizationMembership | None:
        assert slot.user is not None
        user_id = slot.user.user_id
        try:
            for answer in self._pages(
                "/organization_memberships.json", _paged(rm.organization_membership_params(user_id))
            ):
                found = rm.organization_membership_of(answer, user_id)
                if found is not None:
                    return found
        except RETRYABLE:
            raise
        except HubError as error:
            slot.fail(error)
        return None

    def _workweeks(self, slots: list[_Slot], weeks: dict[str, rm.OwnWorkweek], run: _Run) -> None:
        start = rm.week_start(run.today)
        for slot in slots:
            if not slot.ok or slot.user is None or slot.wanted is None:
                continue
            own = weeks.get(slot.user.user_id)
            current = own.minutes if own is not None else self._default_week(run)
            if current == slot.wanted.week:
                continue
            if own is not None and own.start_date == start.isoformat():
                self._write(
                    slot,
                    "PUT",
                    "/workweek_memberships/{id}.json",
                    record_id=own.membership_id,
                    json=rm.workweek_update_body(slot.wanted.week),
                )
            else:
                self._write(
                    slot,
                    "POST",
                    "/workweek_memberships.json",
                    json=rm.workweek_body(slot.user.user_id, start, slot.wanted.week),
                )

    def _managers(self, slots: list[_Slot], run: _Run) -> None:
        """The manager, kept by Kantata on the membership: set once both are members. A manager the hub cannot
        find in Kantata is left as it is (set by a later run, once the manager is there)."""
        for slot in slots:
            user, wanted = slot.user, slot.wanted
            if not slot.ok or user is None or wanted is None or user.membership_id is None:
                continue
            if wanted.manager_hcm_id is None:
                target = None
            elif wanted.manager_hcm_id in run.managers:
                target = run.managers[wanted.manager_hcm_id].user_id
            else:
                continue
            if target == user.user_id or target == user.manager_id:
                continue
            self._write(
                slot,
                "PUT",
                "/account_memberships/{id}.json",
                record_id=user.membership_id,
                json=rm.manager_body(target),
            )

    # ------------------------------------------------------------------------------------------ reads

    def _cost_rates(self, user_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Membership id -> currency -> rate, read with the members' memberships (active ones: a rehire has
        been enabled by then)."""
        out: dict[str, dict[str, int]] = {}
        for chunk in _chunks(list(dict.fromkeys(user_ids)), rm.LOOKUP_CHUNK):
            for answer in self._pages("/account_memberships.json", _paged(rm.memberships_params(chunk))):
                out.update(rm.cost_rates_of(answer))
        return out

    def _own_workweeks(self, user_ids: Sequence[str], day: dt.date) -> dict[str, rm.OwnWorkweek]:
        out: dict[str, rm.OwnWorkweek] = {}
        for chunk in _chunks(list(dict.fromkeys(user_ids)), rm.LOOKUP_CHUNK):
            params = rm.workweek_memberships_params(chunk, day)
            for answer in self._pages("/workweek_memberships.json", _paged(params)):
                out.update({k: v for k, v in rm.own_workweeks_of(answer).items() if k in chunk})
        return out

    def _default_week(self, run: _Run) -> dict[str, int] | None:
        if run.default_week is None:
            for answer in self._pages("/workweeks.json", _paged(rm.workweeks_params(run.today))):
                week = rm.default_workweek_of(answer, run.today)
                if week is not None:
                    run.default_week = week
        return run.default_week

    def _custom_fields(self, run: _Run) -> dict[str, rm.CustomField]:
        if run.custom_fields is None:
            run.custom_fields = {}
            for answer in self._pages("/custom_fields.json", _paged(rm.custom_fields_params())):
                for definition in rm.custom_fields_of(answer):
                    run.custom_fields.setdefault(definition.name.casefold(), definition)
        return run.custom_fields

    def _skill_listing(self) -> dict[str, str]:
        skills: dict[str, str] = {}
        for answer in self._pages("/skills.json", _paged(rm.listing_params())):
            for name, skill_id in rm.named_ids(answer, "skills").items():
                skills.setdefault(name, skill_id)
        return skills

    def _organizations(self, run: _Run) -> rm.Organizations:
        if run.organizations is None:
            run.organizations = rm.Organizations()
            for answer in self._pages("/organizations.json", _paged(rm.listing_params())):
                run.organizations.add(answer)
        return run.organizations

    def _integration_user(self) -> str | None:
        """The user the token acts as (the creator of what the hub added), read once per adapter."""
        if self._me is None:
            found = km.records(self._call("GET", "/users/me.json"), "users")
            self._me = found[0]["id"] if found else None
        return self._me

    # ----------------------------------------------------------------------------------------- writes

    def _write(
        self, slot: _Slot, method: str, path: str, *, record_id: str | None = None, **kwargs: Any
    ) -> bool:
        """One write for one worker; a refusal is that worker's error (throttled / transient ones raise)."""
        if not slot.ok:
            return False
        try:
            path_params = {"id": record_id} if record_id is not None else None
            self._call(method, path, path_params=path_params, **kwargs)
        except RETRYABLE:
            raise
        except HubError as error:
            slot.fail(error)
            return False
        slot.wrote()
        return True

    def _bulk(
        self,
        path: str,
        keys: tuple[str, str],
        limit: int,
        items: list[Item],
        *,
        params: Mapping[str, Any] | None = None,
        idempotent: bool,
    ) -> list[tuple[list[Item], Any]]:
        """Items of many workers, ``limit`` a call (``{plural: [...]}``). Kantata refuses a bulk call whole when
        one item is bad: the items are then sent again one by one, so that only the bad one's worker fails."""
        singular, plural = keys
        answered: list[tuple[list[Item], Any]] = []
        live = [(slot, item) for slot, item in items if slot.ok]
        for start in range(0, len(live), limit):
            chunk = [(slot, item) for slot, item in live[start : start + limit] if slot.ok]
            if not chunk:
                continue
            body = {singular: chunk[0][1]} if len(chunk) == 1 else {plural: [item for _, item in chunk]}
            try:
                answer = self._call("POST", path, params=params, json=body, idempotent=idempotent)
            except RETRYABLE:
                raise
            except HubError as error:
                if len(chunk) == 1 or not isinstance(error, DataValidationError):
                    for slot, _ in chunk:
                        slot.fail(error)
                    continue
                for slot, item in chunk:
                    if not slot.ok:
                        continue
                    try:
                        one = self._call(
                            "POST", path, params=params, json={singular: item}, idempotent=idempotent
                        )
                    except RETRYABLE:
                        raise
                    except HubError as item_error:
                        slot.fail(item_error)
                        continue
                    answered.append(([(slot, item)], one))
                continue
            answered.append((chunk, answer))
        return answered

    @staticmethod
    def _done(answered: list[tuple[list[Item], Any]]) -> None:
        for chunk, _ in answered:
            for slot, _item in chunk:
                slot.wrote()

    # ============================================================================================ planning

    def assignments_changed(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[str]:
        after, before = km.window_bounds(updated_after, updated_before)  # checked now, not at first next()
        return self._changed_projects(after, before)

    def _changed_projects(self, after: dt.datetime, before: dt.datetime) -> Iterator[str]:
        if after == before:
            return
        seen: set[str] = set()
        listings: tuple[tuple[str, str, dict[str, Any], Callable[[dict[str, Any], Any], str | None]], ...] = (
            (
                "/assignments.json",
                "assignments",
                rm.assignment_changes_params(after, before),
                rm.project_of_assignment,
            ),
            (
                "/story_allocation_days.json",
                "story_allocation_days",
                rm.allocation_day_changes_params(after, before),
                lambda record, _answer: rm.project_of_allocation_day(record),
            ),
            (
                "/workspace_resources.json",
                "workspace_resources",
                rm.resource_changes_params(after, before),
                lambda record, _answer: rm.project_of_resource(record),
            ),
        )
        for path, collection, params, project_of in listings:
            for record, answer in self._scan(path, params, collection, km.change_anchor):
                if not km.in_window(record.get("updated_at"), after, before, self._time_zone):
                    continue  # re-checked: a filter Kantata ignored must not widen the window
                project = project_of(record, answer)
                if project is not None and project not in seen:
                    seen.add(project)
                    yield project

    def project_assignments(self, psa_project_id: str) -> list[Assignment]:
        project = str(psa_project_id)
        listed: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for answer in self._pages("/assignments.json", _paged(rm.project_assignments_params(project))):
            for record in km.records(answer, "assignments"):
                if rm.project_of_assignment(record, answer) != project or record.get("current") is False:
                    continue  # re-checked: an ignored filter must not bring another project's assignments
                listed.append((record, rm.assignment_days(record, answer)))
        assignees = {str(r["assignee_id"]) for r, _ in listed if r.get("assignee_id") not in (None, "")}
        hcm_ids = self.hcm_ids_of(sorted(assignees, key=rm.id_order))
        assignments: list[Assignment] = []
        unlinked = 0
        for record, days in listed:
            hcm_id = hcm_ids.get(str(record.get("assignee_id")))
            if hcm_id is None:
                unlinked += 1
                continue
            try:
                assignments.append(rm.assignment_of(record, days, project, hcm_id))
            except ValueError as error:  # pydantic's ValidationError is a ValueError
                raise DataValidationError(
                    f"kantata assignment {record['id']} cannot be read as a canonical assignment",
                    problems=field_problems(error),
                    system=SYSTEM,
                    code="unmappable",
                ) from None
        if unlinked:
            logger.warning(
                "assignments of people without the hub's reference skipped",
                extra={"system": SYSTEM, "workspace_id": project, "skipped": unlinked},
            )
        return assignments

    def hcm_ids_of(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Kantata user id -> the HCM id of the worker the hub linked it to (users without one are left out)."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(user_ids), rm.LOOKUP_CHUNK):
            for answer in self._pages("/users.json", _paged(rm.users_by_id_params(chunk))):
                for user in rm.users_of(answer):
                    if user.hcm_id is not None and user.user_id in chunk:
                        out[user.user_id] = user.hcm_id
        return out


def _chunks(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _paged(params: Mapping[str, Any]) -> Callable[[int], dict[str, Any]]:
    return lambda page: {**params, "page": page}
