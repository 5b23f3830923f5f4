"""Seed the sandboxes with a month end of time and expenses as the hub finds it: workers, hub-made projects and
approved entries in Kantata, and what each entity's ERP must know to take them.

Everything is seeded directly in Python (no HTTP), so 20,000 entries take a second or two. Per legal entity
(``local.finance_config.ENTITIES``):

- workers: Kantata users, plus the ERP's records of them: a NetSuite employee (external id = the Kantata user
  id, which is the hub's worker id) or, in Business Central, an employee and a vendor numbered with it;
- projects as the hub creates them: a Kantata workspace whose description carries ``pshub:opportunity:{id}`` and
  ``pshub:entity:{code}``, linked by the hub's external reference, with WBS stories marked ``pshub:wbs:{code}``;
  in NetSuite a customer, the project (job, external id ``sf-opp-{id}``) and a project task per WBS code; in
  Business Central a project numbered with the workspace id and a task per WBS code;
- accounting periods: monthly NetSuite periods in both accounts, Business Central periods and allowed posting
  dates (and the G/L accounts and tax codes ``finance_config`` maps expenses to);
- time entries and expense lines, submitted and approved (one timesheet / expense report per project, worker
  and week, as Kantata groups them). Expense notes carry ``pshub:country:{ISO}`` (Kantata records no supplier
  country, and the deployed adapter is given no home countries).

``seed_month_end`` does all of it for a regular load and returns a :class:`Seeded` listing every id by kind and
entity; the building blocks (``seed_workers``, ``seed_project``, ``seed_periods``, ``seed_time``,
``seed_expense_lines``) let a scenario add the entries it needs for a particular case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hub.mapping import netsuite as nm
from hub.model import ProjectRef, TaskRef
from local import finance_config
from local.finance_config import ENTITIES
from local.stack import Sandboxes

ENTITY = {e["code"]: e for e in ENTITIES}
CODES = tuple(ENTITY)
WBS = ("1.1", "2.1")  # every project's WBS tasks (a phase's first task each)
BC_TAX_RATES = {"STANDARD": 19.0, "REDUCED": 7.0, "NO VAT": 0.0, "REVERSE": 0.0}
# Kantata category name, amount (functional currency, in cents) of a regular line: within every entity's limits.
REGULAR_EXPENSES = (
    ("Travel", 18_450),
    ("Food", 2_380),
    ("Lodging", 16_900),
    ("Mileage", 4_120),
)


def erp_system(entity: str) -> str:
    return str(ENTITY[entity]["erp_system"])


def is_business_central(sandboxes: Sandboxes, entity: str) -> bool:
    return erp_system(entity) in sandboxes.business_central


@dataclass(frozen=True)
class HubProject:
    """A project the hub created: its Kantata workspace, the opportunity it came from and its WBS stories."""

    entity: str
    workspace_id: str
    opportunity_id: str
    tasks: dict[str, str]  # WBS code -> Kantata story id

    @property
    def external_id(self) -> str:
        return f"sf-opp-{self.opportunity_id}"


@dataclass
class Seeded:
    """What was seeded, by kind and legal entity (ids are Kantata's)."""

    workers: dict[str, list[str]] = field(default_factory=dict)
    projects: dict[str, list[HubProject]] = field(default_factory=dict)
    time_entries: dict[str, list[str]] = field(default_factory=dict)
    expenses: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, entity: str, ids: Iterable[str]) -> list[str]:
        """Record ``ids`` of ``kind`` (``time-entry`` or ``expense``) for ``entity``; returns them as a list."""
        found = list(ids)
        book = self.time_entries if kind == "time-entry" else self.expenses
        book.setdefault(entity, []).extend(found)
        return found

    def ids(self, kind: str, entity: str | None = None) -> list[str]:
        book = self.time_entries if kind == "time-entry" else self.expenses
        return [i for code, ids in book.items() if entity in (None, code) for i in ids]

    @property
    def total(self) -> int:
        return len(self.ids("time-entry")) + len(self.ids("expense"))


# ------------------------------------------------------------------------------------------ building blocks


def seed_workers(sandboxes: Sandboxes, entity: str, count: int) -> list[str]:
    """``count`` Kantata users of ``entity`` and their ERP records; returns their Kantata ids (worker ids)."""
    users = sandboxes.kantata.seed_users(count, prefix=f"{entity} Consultant")
    system = erp_system(entity)
    for n, user in enumerate(users, start=1):
        name = f"{entity} Consultant {n}"
        if is_business_central(sandboxes, entity):
            bc = sandboxes.business_central[system]
            bc.seed_employee(finance_config.BC_COMPANY, user, name)
            bc.seed_vendor(finance_config.BC_COMPANY, user, name)
        else:
            subsidiary = ENTITY[entity]["subsidiary_id"]
            sandboxes.netsuite[system].seed_employee(user, name, subsidiary={"id": subsidiary})
    return users


def opportunity_id(entity: str, index: int) -> str:
    """A Salesforce-shaped opportunity id (18 characters), unique per entity and index."""
    return f"006Dn0000{entity}{index:05d}"[:18]


def seed_project(
    sandboxes: Sandboxes, entity: str, index: int, *, title: str | None = None, wbs: Sequence[str] = WBS
) -> HubProject:
    """A project as the hub creates it, in Kantata and in the entity's ERP (see the module's doc)."""
    kantata = sandboxes.kantata
    opportunity = opportunity_id(entity, index)
    currency = str(ENTITY[entity]["functional_currency"])
    title = title or f"{entity} client {index} - implementation"
    workspace = kantata.seed_workspace(
        title=title,
        currency=currency,
        description=f"pshub:opportunity:{opportunity}\npshub:entity:{entity}\nCreated by the integration hub",
    )
    kantata.seed_external_reference(
        subject_type="Workspace",
        subject_id=workspace,
        service_model="Opportunity",
        service_model_ref=opportunity,
        status="successful",
    )
    tasks = {
        code: kantata.seed_story(workspace, title=f"Task {code}", description=f"pshub:wbs:{code}")
        for code in wbs
    }
    project = HubProject(entity, workspace, opportunity, tasks)
    system = erp_system(entity)
    if is_business_central(sandboxes, entity):
        sandboxes.business_central[system].seed_project(
            finance_config.BC_COMPANY, workspace, title, tasks=tuple(wbs)
        )
    else:
        netsuite = sandboxes.netsuite[system]
        subsidiary = {"id": ENTITY[entity]["subsidiary_id"]}
        customer = netsuite.seed_customer(
            f"sf-{entity}-client-{index}", companyName=f"{entity} client {index}", subsidiary=subsidiary
        )
        job = netsuite.seed_job(project.external_id, customer, companyName=title)
        ref = ProjectRef(psa_project_id=workspace, external_id=project.external_id)
        for code, story in tasks.items():
            task_eid = nm.task_external_id(ref, TaskRef(psa_task_id=story, wbs_code=code))
            netsuite.seed_project_task(task_eid, job, f"Task {code}")
    return project


def seed_periods(
    sandboxes: Sandboxes,
    *,
    first_month: str = "2026-10",
    count: int = 4,
    bc_allowed: tuple[str | None, str | None] = ("2026-11-01", "2026-12-31"),
) -> None:
    """Monthly accounting periods from ``first_month`` in every ERP (all open); Business Central's allowed
    posting dates, its G/L expense accounts and tax codes (as ``finance_config`` maps them)."""
    for netsuite in sandboxes.netsuite.values():
        netsuite.seed_accounting_periods(first_month, count)
    for bc in sandboxes.business_central.values():
        company = finance_config.BC_COMPANY
        bc.seed_accounting_periods(company, first_month, count)
        bc.set_allowed_posting_dates(company, *bc_allowed)
        known = {a["number"] for a in bc.records(company, "accounts")}
        for category, number in finance_config.BC_EXPENSE_ACCOUNTS.items():
            if number not in known:
                bc.seed_account(company, number, category.replace("_", " ").title())
                known.add(number)
        for code, rate in BC_TAX_RATES.items():
            bc.seed_tax_code(company, code, rate)


def seed_time(
    sandboxes: Sandboxes,
    project: HubProject,
    workers: Sequence[str],
    *,
    days: int,
    start: dt.date,
    minutes: int = 120,
    wbs: str | None = None,
    billable: bool = True,
    approve: bool = True,
) -> list[str]:
    """One entry per worker per weekday for ``days`` weekdays from ``start`` (against WBS task ``wbs``, the
    project's first by default), submitted and approved; returns their ids."""
    story = project.tasks[wbs or next(iter(project.tasks))]
    ids = sandboxes.kantata.seed_time_entries(
        project.workspace_id,
        len(workers) * days,
        user_ids=list(workers),
        story_id=story,
        start=start.isoformat(),
        time_in_minutes=minutes,
        billable=billable,
        notes=f"pshub seeded {project.entity}",
    )
    if approve:
        sandboxes.kantata.approve_time_entries(ids)
    return ids


def seed_expense_lines(
    sandboxes: Sandboxes,
    project: HubProject,
    workers: Sequence[str],
    count: int,
    *,
    start: dt.date,
    category: str,
    amount_in_cents: int,
    receipt: bool = True,
    supplier_country: str | None = None,
    approve: bool = True,
) -> list[str]:
    """``count`` expense lines (the workers taking turns by weekday from ``start``), supplier in the entity's
    country unless ``supplier_country``; submitted and approved; returns their ids."""
    country = supplier_country or str(ENTITY[project.entity]["country"])
    ids = sandboxes.kantata.seed_expenses(
        project.workspace_id,
        count,
        user_ids=list(workers),
        start=start.isoformat(),
        category=category,
        amount_in_cents=amount_in_cents,
        receipt=receipt,
        notes=f"pshub:country:{country} {category.lower()}",
    )
    if approve:
        sandboxes.kantata.approve_expenses(ids)
    return ids


# ------------------------------------------------------------------------------------------------ a month end


@dataclass(frozen=True)
class MonthEndLoad:
    """The regular load per entity: every worker logs an entry on each project every weekday of ``days``
    weekdays from ``start`` (time entries = workers x projects x days), ``minutes`` each (default: a day of
    ``hours_a_day`` split over the projects), and ``expenses`` lines spread over the projects and
    ``REGULAR_EXPENSES`` categories."""

    workers: int = 28
    projects: int = 4
    days: int = 7
    start: dt.date = dt.date(2026, 11, 23)
    minutes: int | None = None
    hours_a_day: int = 8
    expenses: int = 90
    entities: tuple[str, ...] = CODES
    first_month: str = "2026-10"
    months: int = 4

    @property
    def time_entries(self) -> int:
        return len(self.entities) * self.workers * self.projects * self.days

    @property
    def entry_minutes(self) -> int:
        return self.minutes or self.hours_a_day * 60 // self.projects


def seed_month_end(sandboxes: Sandboxes, load: MonthEndLoad | None = None, *, approve: bool = True) -> Seeded:
    """Workers, projects, periods and the regular load of every entity of ``load`` (see :class:`MonthEndLoad`),
    approved unless ``approve=False``. Fast: 20,000 entries in well under a second."""
    load = load or MonthEndLoad()
    seeded = Seeded()
    seed_periods(sandboxes, first_month=load.first_month, count=load.months)
    for entity in load.entities:
        workers = seeded.workers[entity] = seed_workers(sandboxes, entity, load.workers)
        projects = seeded.projects[entity] = [
            seed_project(sandboxes, entity, index) for index in range(1, load.projects + 1)
        ]
        for project in projects:
            seeded.add(
                "time-entry",
                entity,
                seed_time(
                    sandboxes,
                    project,
                    workers,
                    days=load.days,
                    start=load.start,
                    minutes=load.entry_minutes,
                    approve=approve,
                ),
            )
        groups = [(p, c) for p in projects for c in REGULAR_EXPENSES]
        for n, (project, (category, cents)) in enumerate(groups):
            count = load.expenses // len(groups) + (1 if n < load.expenses % len(groups) else 0)
            if count:
                lines = seed_expense_lines(
                    sandboxes,
                    project,
                    workers,
                    count,
                    start=load.start,
                    category=category,
                    amount_in_cents=cents + 37 * n,
                    approve=approve,
                )
                seeded.add("expense", entity, lines)
    return seeded
