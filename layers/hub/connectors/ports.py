"""Ports: what the flows need from each system role, independent of the vendor behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hub.errors import DataValidationError, HubError
from hub.model import (
    Account,
    AccountingCalendar,
    BillingSchedule,
    ExpenseLine,
    Opportunity,
    PostingDecision,
    Project,
    ProjectStatus,
    TaskStatus,
    TaxTreatment,
    TimeEntry,
    WbsTask,
)
from hub.model.workforce import Assignment, Worker


class CrmPort(Protocol):
    def get_opportunity(self, crm_id: str) -> Opportunity:
        """The full opportunity (account and line items included), read from the CRM."""
        ...

    def write_back(
        self,
        crm_id: str,
        *,
        status: str,
        psa_project_id: str | None = None,
        erp_customer_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write the hub's back-references and integration status onto the opportunity."""
        ...


class PsaPort(Protocol):
    def ensure_project(self, project: Project) -> str:
        """Create the project shell once per opportunity (matched by the hub's external reference); its id."""
        ...

    def ensure_wbs(self, psa_project_id: str, wbs: tuple[WbsTask, ...]) -> dict[str, str]:
        """Create the WBS tasks that are not there yet; WBS code -> PSA task id for every task."""
        ...

    def ensure_billing_schedule(
        self, psa_project_id: str, schedule: BillingSchedule, task_ids: dict[str, str]
    ) -> list[str]:
        """Create the billing items (one per milestone) that are not there yet; the ids of all of them."""
        ...


class ErpPort(Protocol):
    def upsert_customer(self, account: Account, *, subsidiary_id: str, currency: str) -> str:
        """Create or update the financial customer by external id; its ERP internal id."""
        ...

    def upsert_project(self, project: Project, *, customer_id: str, subsidiary_id: str) -> str:
        """Create or update the project/job with its billing terms by external id; its ERP internal id."""
        ...


# -- time and expense to finance (issue 3) ---------------------------------------------------------------
@dataclass(frozen=True)
class PostTime:
    """A time entry that passed every check: where it lands (the routed subsidiary, the posting decision)."""

    entry: TimeEntry
    decision: PostingDecision
    subsidiary_id: str


@dataclass(frozen=True)
class PostExpense:
    line: ExpenseLine
    decision: PostingDecision
    tax: TaxTreatment
    subsidiary_id: str


CLOSED_PERIOD = "CLOSED_PERIOD"
"""``DataValidationError.code`` of a posting the ERP refused for its accounting period (closed, locked, outside
the allowed posting dates, or no period covers the date); its problems carry ``period``, the canonical period
name. The calendar the decision was made on was stale: the poster reads it again and decides again."""


@dataclass(frozen=True)
class PostingResult:
    """One item's outcome, in the order posted: ``erp_id`` when it is in the ERP (new or already there),
    else the typed ``error`` (throttled and transient ones are retried by the caller, never parked)."""

    psa_id: str
    version: int
    erp_id: str | None = None
    created: bool = False
    error: HubError | None = field(default=None, compare=False)

    @property
    def posted(self) -> bool:
        return self.erp_id is not None


LineKind = Literal["time-entry", "expense"]
"""A PSA line item's kind, as the posting queue's messages name it."""


@dataclass(frozen=True)
class LineItems:
    """Line items re-read by id: each id asked for is in exactly one of ``found`` (the entry as the PSA has it
    now, whatever its approval status), ``missing`` (the PSA does not return it: deleted, or never there) and
    ``unmappable`` (it is there but cannot be a canonical entry; the error names every problem)."""

    found: dict[str, TimeEntry | ExpenseLine] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    unmappable: dict[str, DataValidationError] = field(default_factory=dict)


class PsaTimePort(Protocol):
    def approved_time_entries(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[TimeEntry]:
        """Approved time entries changed in ``[updated_after, updated_before)`` (the sweep's window, with its
        overlap), every page, as canonical entries (their ``version`` orders their changes)."""
        ...

    def approved_expenses(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[ExpenseLine]:
        """The same for expense lines."""
        ...

    def time_entry(self, psa_id: str) -> TimeEntry:
        """The entry as it is now (an approval withdrawn after the webhook shows here)."""
        ...

    def expense(self, psa_id: str) -> ExpenseLine: ...

    def line_items_by_id(self, kind: LineKind, psa_ids: Sequence[str]) -> LineItems:
        """The entries as they are now, read in a few batched calls (the posting consumer re-reads a batch of
        queue messages, which are only pointers, just before it checks and posts them)."""
        ...

    def time_entries_on_days(self, worker_days: Iterable[tuple[str, dt.date]]) -> list[TimeEntry]:
        """Every time entry of these (worker, day) pairs, whatever its approval: the rest of each worker's
        day, for the daily-hours rule, whichever batch its entries come in."""
        ...

    def project_statuses(self, psa_project_ids: Sequence[str]) -> dict[str, ProjectStatus]:
        """Each project's status now, batched; a project the PSA does not return is absent."""
        ...

    def task_statuses(self, psa_task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        """Each task's status now, batched; a task the PSA does not return is absent."""
        ...


class ErpPostingPort(Protocol):
    """One per ERP system. Posting is idempotent by the entry's id and version (the adapter's external id);
    adapters batch where the ERP allows it (Business Central ``$batch``), one record per call where not."""

    def accounting_calendar(self, legal_entity_code: str, *, subsidiary_id: str) -> AccountingCalendar: ...

    def post_time_entries(self, items: Sequence[PostTime]) -> list[PostingResult]: ...

    def post_expense_lines(self, items: Sequence[PostExpense]) -> list[PostingResult]: ...


# -- workforce and margin (issue 4) ----------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerChanges:
    """What the HCM says changed in a window: the workers as they are now (every effective-dated rate and
    placement), and the ids of records that changed but cannot be canonical workers (with the reason), so
    a sync parks them instead of skipping them silently."""

    workers: tuple[Worker, ...] = ()
    unmappable: dict[str, DataValidationError] = field(default_factory=dict)


class HcmPort(Protocol):
    def changed_workers(self, *, changed_since: dt.datetime, until: dt.datetime) -> WorkerChanges:
        """Workers changed in ``[changed_since, until)`` (hires, leavers, transfers, rate changes), read with
        the HCM's own change report; instants are aware, the adapter converts to the tenant's time zone."""
        ...

    def worker_ids(self) -> Iterator[str]:
        """Every worker's HCM id, page by page (a full sync, and finding who left the HCM altogether)."""
        ...


@dataclass(frozen=True)
class ResourceResult:
    """One worker's outcome: ``psa_user_id`` is the PSA's person (None when the worker is not there and was not
    created: a leaver never synced, a hire before its start date, or a failure before anything was created);
    ``error`` is set when something for this worker was refused (what was written before it stays)."""

    hcm_id: str
    psa_user_id: str | None = None
    outcome: Literal["created", "updated", "unchanged", "deactivated"] = "unchanged"
    error: HubError | None = field(default=None, compare=False)


class PsaResourcePort(Protocol):
    def upsert_resources(self, workers: Sequence[Worker], *, today: dt.date) -> list[ResourceResult]:
        """Each worker into the resource pool, matched by its HCM id (the hub's external reference): created
        if new, updated if changed, deactivated (never deleted) once past its last day; one result each, in
        order, an error per worker rather than for the call (throttled and transient errors may raise for the
        call: every write is found again, not repeated, by the next run).

        What the PSA holds is what is in effect on ``today`` (rates, placements): a PSA whose rates are not
        effective-dated gets a future rate from the first run on or after its date. Nothing is created for a
        worker before the hire date or after the last day. A re-run of an unchanged worker writes nothing and
        answers "unchanged". A person invited but not yet a member is "created" with the PSA's id for them."""
        ...

    def assignments_changed(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[str]:
        """The PSA project ids whose assignments, daily allocations or project resources changed in
        ``[updated_after, updated_before)`` (aware instants), each once. Hard deletes the PSA does not list are
        not seen: a periodic full re-read catches them."""
        ...

    def project_assignments(self, psa_project_id: str) -> list[Assignment]:
        """Every current assignment of the project, with its hours allocated by day; assignments of people
        the hub does not sync (no HCM id in the PSA) are left out."""
        ...
