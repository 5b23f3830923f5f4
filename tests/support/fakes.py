"""Hand-written fakes of the ports, shared by the integration tests (the e2e tier uses the sandboxes).

Each fake keeps its records in memory, counts calls, and can be told to fail the next N calls of a method
with a given error, which is how the tests drive retries and parking deterministically.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hub.connectors.ports import CLOSED_PERIOD, LineItems, LineKind, PostingResult
from hub.errors import DataValidationError, HubError, PermanentError
from hub.model import (
    Account,
    ApprovalStatus,
    BillingSchedule,
    ExpenseLine,
    Opportunity,
    Project,
    ProjectStatus,
    TaskStatus,
    TimeEntry,
    WbsTask,
)


class _Fake:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._failures: dict[str, list[HubError]] = defaultdict(list)
        self._lock = threading.Lock()
        self._ids = itertools.count(1001)

    def fail_next(self, method: str, error: HubError, times: int = 1) -> None:
        self._failures[method].extend([error] * times)

    def _enter(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1
            if self._failures[method]:
                raise self._failures[method].pop(0)

    def _next_id(self) -> str:
        with self._lock:
            return str(next(self._ids))


class FakeCrm(_Fake):
    def __init__(self, opportunities: dict[str, Opportunity] | None = None) -> None:
        super().__init__()
        self.opportunities = dict(opportunities or {})
        self.write_backs: list[dict[str, Any]] = []

    def get_opportunity(self, crm_id: str) -> Opportunity:
        self._enter("get_opportunity")
        return self.opportunities[crm_id]

    def write_back(
        self,
        crm_id: str,
        *,
        status: str,
        psa_project_id: str | None = None,
        erp_customer_id: str | None = None,
        error: str | None = None,
    ) -> None:
        self._enter("write_back")
        self.write_backs.append(
            {
                "crm_id": crm_id,
                "status": status,
                "psa_project_id": psa_project_id,
                "erp_customer_id": erp_customer_id,
                "error": error,
            }
        )


class FakePsa(_Fake):
    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[str, str] = {}  # external id -> project id
        self.tasks: dict[str, dict[str, str]] = defaultdict(dict)  # project id -> code -> task id
        self.billing: dict[str, dict[str, str]] = defaultdict(dict)  # project id -> milestone code -> id

    def ensure_project(self, project: Project) -> str:
        self._enter("ensure_project")
        with self._lock:
            if project.external_id not in self.projects:
                self.projects[project.external_id] = f"ws-{next(self._ids)}"
            return self.projects[project.external_id]

    def ensure_wbs(self, psa_project_id: str, wbs: tuple[WbsTask, ...]) -> dict[str, str]:
        self._enter("ensure_wbs")
        for task in wbs:
            self.tasks[psa_project_id].setdefault(task.code, f"st-{self._next_id()}")
        return dict(self.tasks[psa_project_id])

    def ensure_billing_schedule(
        self, psa_project_id: str, schedule: BillingSchedule, task_ids: dict[str, str]
    ) -> list[str]:
        self._enter("ensure_billing_schedule")
        for milestone in schedule.milestones:
            self.billing[psa_project_id].setdefault(milestone.code, f"ff-{self._next_id()}")
        return list(self.billing[psa_project_id].values())


class FakeErp(_Fake):
    def __init__(self, system: str = "netsuite-us") -> None:
        super().__init__()
        self.system = system
        self.customers: dict[str, str] = {}
        self.jobs: dict[str, dict[str, Any]] = {}

    def upsert_customer(self, account: Account, *, subsidiary_id: str, currency: str) -> str:
        self._enter("upsert_customer")
        with self._lock:
            return self.customers.setdefault(account.crm_id, f"c-{next(self._ids)}")

    def upsert_project(self, project: Project, *, customer_id: str, subsidiary_id: str) -> str:
        self._enter("upsert_project")
        with self._lock:
            job = self.jobs.setdefault(project.external_id, {"id": f"j-{next(self._ids)}"})
            job.update(customer=customer_id, subsidiary=subsidiary_id, psa=project.psa_project_id)
            return job["id"]


class FakePsaTime(_Fake):
    """``PsaTimePort`` in memory. ``entries`` holds each line item as the PSA has it now, keyed by
    ``(kind, psa_id)`` (kind ``"time-entry"`` / ``"expense"``); change or delete one to simulate an edit, a
    withdrawn approval or a deletion between the message and the re-read. ``unmappable`` makes an id come back
    as unmappable; ``projects`` / ``tasks`` hold the statuses (an id not there is absent from the answer, as
    the PSA does not return it). ``calls`` counts each method, ``fail_next`` makes the next calls fail."""

    def __init__(
        self,
        entries: dict[tuple[str, str], TimeEntry | ExpenseLine] | None = None,
        *,
        projects: dict[str, ProjectStatus] | None = None,
        tasks: dict[str, TaskStatus] | None = None,
    ) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], TimeEntry | ExpenseLine] = dict(entries or {})
        self.unmappable: dict[tuple[str, str], DataValidationError] = {}
        self.projects: dict[str, ProjectStatus] = dict(projects or {})
        self.tasks: dict[str, TaskStatus] = dict(tasks or {})

    def put(self, *items: TimeEntry | ExpenseLine) -> None:
        """Store entries under their kind and id (replacing what was there: a new version, a new approval)."""
        for item in items:
            kind = "time-entry" if isinstance(item, TimeEntry) else "expense"
            self.entries[(kind, item.psa_id)] = item

    def approved_time_entries(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[TimeEntry]:
        self._enter("approved_time_entries")
        found = self._approved("time-entry", updated_after, updated_before)
        return iter([e for e in found if isinstance(e, TimeEntry)])

    def approved_expenses(
        self, *, updated_after: dt.datetime, updated_before: dt.datetime
    ) -> Iterator[ExpenseLine]:
        self._enter("approved_expenses")
        found = self._approved("expense", updated_after, updated_before)
        return iter([e for e in found if isinstance(e, ExpenseLine)])

    def _approved(self, kind: str, after: dt.datetime, before: dt.datetime) -> list[TimeEntry | ExpenseLine]:
        """Approved entries whose approval instant is in ``[after, before)``."""
        return [
            item
            for (k, _), item in sorted(self.entries.items())
            if k == kind
            and item.approval_status is ApprovalStatus.APPROVED
            and item.approved_at is not None
            and after <= item.approved_at < before
        ]

    def time_entry(self, psa_id: str) -> TimeEntry:
        self._enter("time_entry")
        item = self._one("time-entry", psa_id)
        assert isinstance(item, TimeEntry)
        return item

    def expense(self, psa_id: str) -> ExpenseLine:
        self._enter("expense")
        item = self._one("expense", psa_id)
        assert isinstance(item, ExpenseLine)
        return item

    def _one(self, kind: str, psa_id: str) -> TimeEntry | ExpenseLine:
        if (kind, psa_id) in self.unmappable:
            raise self.unmappable[(kind, psa_id)]
        if (kind, psa_id) not in self.entries:
            raise PermanentError(f"fake PSA has no {kind} {psa_id}", system="fake-psa", code="not_found")
        return self.entries[(kind, psa_id)]

    def line_items_by_id(self, kind: LineKind, psa_ids: Sequence[str]) -> LineItems:
        self._enter("line_items_by_id")
        wanted = list(dict.fromkeys(psa_ids))
        unmappable = {i: self.unmappable[(kind, i)] for i in wanted if (kind, i) in self.unmappable}
        found = {
            i: self.entries[(kind, i)] for i in wanted if (kind, i) in self.entries and i not in unmappable
        }
        missing = tuple(i for i in wanted if i not in found and i not in unmappable)
        return LineItems(found=found, missing=missing, unmappable=unmappable)

    def project_statuses(self, psa_project_ids: Sequence[str]) -> dict[str, ProjectStatus]:
        self._enter("project_statuses")
        return {i: self.projects[i] for i in psa_project_ids if i in self.projects}

    def task_statuses(self, psa_task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        self._enter("task_statuses")
        return {i: self.tasks[i] for i in psa_task_ids if i in self.tasks}

    def time_entries_on_days(self, worker_days: Iterable[tuple[str, dt.date]]) -> list[TimeEntry]:
        self._enter("time_entries_on_days")
        wanted = set(worker_days)
        return [
            item
            for (kind, _), item in sorted(self.entries.items())
            if isinstance(item, TimeEntry) and (item.worker_id, item.work_date) in wanted
        ]


class FakePostingErp:
    """``ErpPostingPort`` in memory: posts by (psa id, version), so a second post of the same version finds the
    first record (as NetSuite's external-id upsert does). ``fail`` maps a PSA id to the error its result
    carries; ``closed`` names closed periods of the monthly calendar, and a post decided into one of them (or
    into one of ``refused_periods``, closed without the calendar saying so) is refused as ``CLOSED_PERIOD``;
    ``calendar_errors`` maps a legal entity to the error its calendar read raises; ``during_post`` runs inside
    each post call (to interleave another consumer deterministically). ``posts`` counts the posts of each
    (psa id, version) that reached the ERP, ``calendar_reads`` the calendar reads."""

    def __init__(self, calendar_closed: tuple[str, ...] = ()):
        self.records: dict[tuple[str, int], str] = {}
        self.posts: Counter[tuple[str, int]] = Counter()
        self.calls = 0
        self.calendar_reads = 0
        self.closed = calendar_closed
        self.refused_periods: tuple[str, ...] = ()
        self.fail: dict[str, Exception] = {}
        self.calendar_errors: dict[str, Exception] = {}
        self._ids = itertools.count(5001)
        self.during_post: Callable[[], None] | None = None

    def accounting_calendar(self, legal_entity_code, *, subsidiary_id):
        from tests.support.time_expense_builders import monthly_calendar

        self.calendar_reads += 1
        if legal_entity_code in self.calendar_errors:
            raise self.calendar_errors[legal_entity_code]
        return monthly_calendar(legal_entity_code, closed=self.closed)

    def _post(self, key, decision):
        if key[0] in self.fail:
            return PostingResult(psa_id=key[0], version=key[1], error=self.fail[key[0]])
        if str(decision.period) in (*self.closed, *self.refused_periods):
            error = DataValidationError(
                f"the ERP refused to post into accounting period {decision.period}",
                problems=[{"field": "postingPeriod", "problem": "closed", "period": str(decision.period)}],
                system="fake-erp",
                code=CLOSED_PERIOD,
            )
            return PostingResult(psa_id=key[0], version=key[1], error=error)
        self.posts[key] += 1
        created = key not in self.records
        self.records.setdefault(key, str(next(self._ids)))
        return PostingResult(psa_id=key[0], version=key[1], erp_id=self.records[key], created=created)

    def post_time_entries(self, items):
        self.calls += 1
        if self.during_post:
            self.during_post()
        return [self._post((i.entry.psa_id, i.entry.version), i.decision) for i in items]

    def post_expense_lines(self, items):
        self.calls += 1
        if self.during_post:
            self.during_post()
        return [self._post((i.line.psa_id, i.line.version), i.decision) for i in items]


class FakePsaResources:
    """``PsaResourcePort`` in memory: the resource pool by HCM id (what the PSA holds of each worker), so an
    unchanged worker comes back "unchanged". ``fail`` maps an HCM id to the error its result carries;
    ``calls`` counts ``upsert_resources`` calls, ``upserted`` the workers they carried."""

    def __init__(self) -> None:
        self.pool: dict[str, dict[str, Any]] = {}
        self.fail: dict[str, HubError] = {}
        self.calls = 0
        self.upserted: list[str] = []
        self._ids = itertools.count(7001)

    def upsert_resources(self, workers, *, today):
        from hub.connectors.ports import ResourceResult

        self.calls += 1
        results = []
        for worker in workers:
            self.upserted.append(worker.hcm_id)
            if worker.hcm_id in self.fail:
                results.append(ResourceResult(worker.hcm_id, error=self.fail[worker.hcm_id]))
                continue
            rate = worker.rate_on(today)
            placement = worker.placement_on(today)
            held = {
                "active": worker.active_on(today),
                "rate": rate.hourly if rate else None,
                "entity": placement.legal_entity_code if placement else None,
                "skills": worker.skills,
            }
            known = self.pool.get(worker.hcm_id)
            if known is None and not held["active"]:
                results.append(ResourceResult(worker.hcm_id, outcome="unchanged"))
                continue
            if known is None:
                self.pool[worker.hcm_id] = {**held, "id": str(next(self._ids))}
                outcome = "created"
            elif {k: v for k, v in known.items() if k != "id"} == held:
                outcome = "unchanged"
            else:
                outcome = "updated" if held["active"] else "deactivated"
                known.update(held)
            results.append(ResourceResult(worker.hcm_id, self.pool[worker.hcm_id]["id"], outcome))
        return results

    def assignments_changed(self, *, updated_after, updated_before):
        return iter(())

    def project_assignments(self, psa_project_id):
        return []
