"""Hand-written fakes of the ports, shared by the integration tests (the e2e tier uses the sandboxes).

Each fake keeps its records in memory, counts calls, and can be told to fail the next N calls of a method
with a given error, which is how the tests drive retries and parking deterministically.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, defaultdict
from typing import Any

from hub.errors import HubError
from hub.model import Account, BillingSchedule, Opportunity, Project, WbsTask


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
