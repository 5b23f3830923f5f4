"""Ports: what the flows need from each system role, independent of the vendor behind it."""

from __future__ import annotations

from typing import Protocol

from hub.model import Account, BillingSchedule, Opportunity, Project, WbsTask


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
