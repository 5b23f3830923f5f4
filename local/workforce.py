"""The demo's workforce step, on the stack the deals scenario ran on: workers from the Workday sandbox into the
Kantata resource pool, the projects the deals became staffed, and their planned margin moving as HCM changes
arrive.

1. 200 workers are hired in the HCM (US and UK companies, employees and contractors, USD and GBP cost rates);
   the hourly worker sync (fired as its schedule would) queues them and the worker consumer invites them into
   Kantata's resource pool with their department, skills, calendar, cost rate and legal entity; the invitees
   accept (what the e-mailed link does);
2. three of the projects the deals became are staffed in Kantata from the first of next month, half days
   (two US workers and a UK one paid in GBP each), and the PSA relay announces the assignments (signed
   webhook): each project gets its first planned margin, priced at each day's cost rate and FX rate;
3. the HCM changes: a cost-rate rise effective mid-month (the 16th, a raise that takes the first project
   half a point under its floor), a leaver whose last day was yesterday, a
   transfer to the UK company from today; the next sync applies them (the leaver is disabled in Kantata, the
   transfer moves the legal entity field) and the hub re-prices the projects those workers are planned on: a
   margin falls below its floor and the delivery manager is alerted, naming the project, customer, old and
   new margin and the change;
4. the report: what the pool holds, each project's margin versions, the alerts as the delivery managers'
   topic delivered them, and conservation (every HCM worker is in the pool, and every margin request is
   repriced, unchanged or parked).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from local import workforce_config
from local.pollers import wait_until_drained
from local.sandboxes.workday import CONTINGENT, EMPLOYEE
from local.stack import LocalStack

WORKERS = 200
PROJECTS = 3
MARGIN_HEADROOM = Decimal("0.27")  # each project is first staffed to a planned margin of at least 27 %
HOURS_PER_DAY = 4  # each worker is on two projects' worth of work: half days here
MIN_REVENUE = Decimal(30_000)  # a project staffed in the scenario plans at least this much revenue
RISE = Decimal("1.25")  # the least mid-month rate rise of the first project's first worker


@dataclass
class Staffing:
    psa_project_id: str
    name: str
    workers: list[str]
    start: dt.date
    end: dt.date
    hours_per_day: int


@dataclass
class WorkforceResult:
    hired: int = 0
    members: int = 0
    active: int = 0
    disabled: int = 0
    syncs: list[dict[str, Any]] = field(default_factory=list)
    staffed: list[Staffing] = field(default_factory=list)
    margins: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project -> versions
    alerts: list[dict[str, str]] = field(default_factory=list)
    changes: dict[str, str] = field(default_factory=dict)  # what changed in the HCM -> worker
    transferred_entity: str | None = None
    parked_margins: int = 0
    problems: list[str] = field(default_factory=list)


def run_workforce(
    stack: LocalStack, *, workers: int = WORKERS, today: dt.date | None = None
) -> WorkforceResult:
    result = WorkforceResult()
    today = today or dt.datetime.now(dt.UTC).date()
    workday, kantata = stack.sandboxes.workday, stack.sandboxes.kantata
    sqs = stack.client("sqs")

    # 1. hires, the first sync, the invitations accepted
    ids = workday.seed_workers(
        workers,
        legal_entities=("PSHUB_US", "PSHUB_US", "PSHUB_US", "PSHUB_UK"),
        departments=workforce_config.DEPARTMENTS,
        worker_types=(EMPLOYEE,) * 9 + (CONTINGENT,),
        skills=("Consulting", "Project management"),
    )
    result.hired = len(ids)
    result.syncs.append(_sync(stack))
    for invitation in kantata.account_invitations():
        if invitation.get("pending"):
            kantata.accept_invitation(invitation["id"])

    # 2. staff three initiated projects and announce the assignments
    users = _members_by_hcm_id(stack)
    profiles = _initiated_projects(stack)[:PROJECTS]
    us = [i for i in ids if _entity(workday, i) == "PSHUB_US" and i in users]
    uk = [i for i in ids if _entity(workday, i) == "PSHUB_UK" and i in users]
    start = _first_weekday((today.replace(day=1) + dt.timedelta(days=32)).replace(day=1))  # next month
    for n, profile in enumerate(profiles):
        team = [us[2 * n], uk[n], us[2 * n + 1]]
        staffing = _staff(stack, profile, team, users, start)
        result.staffed.append(staffing)
    _announce_assignments(stack, [s.psa_project_id for s in result.staffed])
    _drain(stack, "MarginQueueUrl")

    # 3. the HCM changes: a rate rise mid-assignment, a leaver, a transfer; the next sync
    if result.staffed:
        first = result.staffed[0]
        riser = max(first.workers, key=lambda w: (_currency(workday, w) == "USD", _rate(workday, w)))
        effective = _mid_month(first.start, first.end)
        rate = _rate(workday, riser)
        new_rate = _rate_to_breach(stack, first, riser, rate, effective)
        workday.change_cost_rate(riser, new_rate, "USD", effective)
        result.changes[f"cost rate {rate} -> {new_rate} USD/h from {effective.isoformat()}"] = riser
        if len(result.staffed) > 1:
            leaver = result.staffed[1].workers[2]
            workday.terminate(leaver, today - dt.timedelta(days=1))
            result.changes["left (last day yesterday)"] = leaver
    mover = us[-1]
    workday.transfer(mover, legal_entity="PSHUB_UK", cost_centre="CC200", effective=today)
    result.changes["transfer to PSHUB_UK from today"] = mover
    result.syncs.append(_sync(stack))
    _drain(stack, "MarginQueueUrl")

    # 4. what the pool, the margins and the alerts say
    synced = set(_members_by_hcm_id(stack).values())  # the integration user is a member too: not counted
    state = [m for m in kantata.account_memberships() if str(m["user_id"]) in synced]
    result.members = len(state)
    result.active = sum(1 for m in state if not m.get("disabled_at"))
    result.disabled = result.members - result.active
    result.transferred_entity = _legal_entity_of(stack, users.get(mover))
    store = _planning(stack)
    for staffing in result.staffed:
        result.margins[staffing.psa_project_id] = [
            {"version": m.version, **m.model, "floor": str(m.floor), "cause": m.cause}
            for m in store.margin_versions(staffing.psa_project_id)
        ]
    result.alerts = _alerts(stack)
    result.parked_margins = _depth(sqs, stack.outputs["MarginDlqUrl"])
    result.problems = _check(result, workday)
    return result


# ------------------------------------------------------------------------------------------------ steps


def _sync(stack: LocalStack) -> dict[str, Any]:
    """The hourly worker sync as its schedule fires it, then the worker queue drained by its consumer. A
    window ends on a whole second before now and a change stamped after it waits for the next run, so the
    demo lets the second of its last HCM change pass first (the schedule would fire an hour later)."""
    time.sleep(1.1)
    answer = stack.fire_schedule("worker_sync")
    _drain(stack, "WorkerQueueUrl")
    runs = answer.get("runs", [])
    return {
        "read": sum(r["read"] for r in runs),
        "enqueued": sum(r["enqueued"] for r in runs),
        "unmappable": sum(r["unmappable"] for r in runs),
        "effective": answer.get("effective", {}).get("enqueued", 0),
    }


def _drain(stack: LocalStack, output: str, timeout: float = 180.0) -> None:
    if not wait_until_drained(stack.client("sqs"), stack.outputs[output], timeout=timeout, interval=0.5):
        raise TimeoutError(f"{output} did not drain in {timeout:.0f} s")


def _members_by_hcm_id(stack: LocalStack) -> dict[str, str]:
    """HCM id -> Kantata user id, read as the hub reads it (the hub's external reference on the user)."""
    from hub.connectors.factory import psa_resources_from_secret

    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.outputs["PsaSecretArn"])
    adapter = psa_resources_from_secret(json.loads(secret["SecretString"]))
    users = [str(m["user_id"]) for m in stack.sandboxes.kantata.account_memberships()]
    return {hcm: user for user, hcm in adapter.hcm_ids_of(users).items()}


def _initiated_projects(stack: LocalStack) -> list[Any]:
    """The projects the deals became (their profiles in the planning table) worth a team of three for a few
    weeks, by name."""
    from hub.flows.workforce.margin import planned_revenue

    table = _planning_table(stack)
    items: list[dict[str, Any]] = []
    scan: dict[str, Any] = {}
    while True:
        page = table.scan(**scan)
        items.extend(i for i in page["Items"] if str(i["pk"]).startswith("PROJECT#") and i["sk"] == "PROFILE")
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    store = _planning(stack)
    profiles = [store.project(str(i["pk"]).removeprefix("PROJECT#")) for i in items]
    staffable = [
        p
        for p in profiles
        if p is not None and p.project.currency == "USD" and planned_revenue(p.project).amount >= MIN_REVENUE
    ]
    return sorted(staffable, key=lambda p: p.project.name)


def _staff(
    stack: LocalStack, profile: Any, team: list[str], users: dict[str, str], start: dt.date
) -> Staffing:
    """Assign the team to the project's first task for as many working days as a planned margin of at least 27 %
    allows
    (at each worker's current rate, GBP at the demo's FX rate), ``HOURS_PER_DAY`` hours a working day."""
    from hub.flows.workforce.margin import planned_revenue

    workday, kantata = stack.sandboxes.workday, stack.sandboxes.kantata
    revenue = planned_revenue(profile.project).amount
    fx = {r.base: r.rate for r in workforce_config.FX_RATES if r.quote == "USD"}
    day_cost = sum(
        (_rate(workday, w) * fx.get(_currency(workday, w), Decimal(1)) * 8 for w in team), Decimal(0)
    )
    days = max(5, math.floor((revenue * (1 - MARGIN_HEADROOM)) / (day_cost * HOURS_PER_DAY / 8)))
    end = _after_working_days(start, days)
    story = _first_story(kantata, profile.psa_project_id)
    for worker in team:
        kantata.assign(
            users[worker], story, hours_per_day=HOURS_PER_DAY, start=start.isoformat(), end=end.isoformat()
        )
    return Staffing(profile.psa_project_id, profile.project.name, team, start, end, HOURS_PER_DAY)


def _first_weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _mid_month(start: dt.date, end: dt.date) -> dt.date:
    """The 16th of a month within the assignment (its midpoint if none falls inside)."""
    day = (
        start.replace(day=16)
        if start.day <= 16
        else (start.replace(day=1) + dt.timedelta(days=32)).replace(day=16)
    )
    return day if day <= end else start + (end - start) / 2


def _rate_to_breach(
    stack: LocalStack, staffing: Staffing, riser: str, rate: Decimal, effective: dt.date
) -> Decimal:
    """The raise that takes the project's planned margin to half a point under its floor (the scenario wants an
    alert): the extra cost spread over the riser's hours from ``effective``."""
    latest = _planning(stack).latest_margin(staffing.psa_project_id)
    if latest is None:
        return (rate * RISE).quantize(Decimal("1"))
    revenue = Decimal(latest.model["revenue"]["amount"])
    margin = Decimal(latest.model["margin"]["amount"])
    floor = latest.floor if latest.floor is not None else Decimal("0.20")
    extra = margin - revenue * (floor - Decimal("0.005"))
    hours = Decimal(staffing.hours_per_day * _working_days(effective, staffing.end))
    return max(rate * RISE, rate + extra / max(hours, Decimal(1))).quantize(Decimal("1"))


def _working_days(start: dt.date, end: dt.date) -> int:
    return sum(1 for n in range((end - start).days + 1) if (start + dt.timedelta(days=n)).weekday() < 5)


def _announce_assignments(stack: LocalStack, projects: list[str]) -> None:
    """The PSA relay's signed webhook: the assignments of these projects changed."""
    kantata = stack.sandboxes.kantata
    items = [
        {"id": a["id"], "projectId": project} for project in projects for a in kantata.assignments(project)
    ]
    body = json.dumps(
        {
            "type": "assignments.created",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data": {"items": items},
        }
    ).encode()
    headers = stack.sign(body, msg_id=f"msg_{uuid.uuid4().hex}", secret=stack.psa_webhook_secret)
    answer = httpx.post(stack.psa_webhook_url("assignments"), content=body, headers=headers, timeout=30)
    if answer.status_code != 202:
        raise RuntimeError(f"the assignments webhook answered {answer.status_code}: {answer.text}")


def _alerts(stack: LocalStack) -> list[dict[str, str]]:
    sqs = stack.client("sqs")
    alerts = []
    while True:
        got = sqs.receive_message(QueueUrl=stack.alerts_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return alerts
        for message in got:
            body = json.loads(message["Body"])
            alerts.append({"subject": body.get("Subject", ""), "message": body.get("Message", "")})
            sqs.delete_message(QueueUrl=stack.alerts_queue_url, ReceiptHandle=message["ReceiptHandle"])


def _check(result: WorkforceResult, workday: Any) -> list[str]:
    problems = []
    if result.members != result.hired:
        problems.append(f"{result.hired} workers hired, {result.members} in the resource pool")
    leavers = [w for change, w in result.changes.items() if change.startswith("left")]
    if leavers and result.disabled != len(leavers):
        problems.append(f"{len(leavers)} leaver(s), {result.disabled} disabled in Kantata")
    if result.transferred_entity not in (None, "UK01"):
        problems.append(f"the transferred worker's legal entity is {result.transferred_entity}, not UK01")
    for project, versions in result.margins.items():
        if not versions:
            problems.append(f"project {project} has no planned margin")
    if result.staffed and len(result.margins.get(result.staffed[0].psa_project_id, [])) < 2:
        problems.append("the cost-rate rise did not re-price its project")
    if result.parked_margins:
        problems.append(f"{result.parked_margins} margin request(s) parked")
    if not result.alerts:
        problems.append("no margin alert reached the delivery managers")
    return problems


# ------------------------------------------------------------------------------------------------ report


def report(console: Console, result: WorkforceResult) -> None:
    syncs = ", ".join(
        f"run {n + 1}: {s['enqueued']} queued ({s['read']} read, {s['unmappable']} unmappable)"
        for n, s in enumerate(result.syncs)
    )
    if len(result.syncs) > 1:
        syncs += " (a run re-reads its 15-minute overlap: a change already applied is a duplicate)"
    console.print(
        f"HCM -> PSA: {result.hired} workers hired; {syncs}; Kantata's pool holds {result.members} "
        f"({result.active} active, {result.disabled} disabled)",
        highlight=False,
    )
    for change, worker in result.changes.items():
        console.print(f"  HCM change: worker {worker} {change}", highlight=False)
    if result.transferred_entity:
        console.print(f"  the transferred worker's legal entity in Kantata: {result.transferred_entity}")
    table = Table(
        "project", "version", "planned hours", "unpriced h", "revenue", "cost", "margin", "floor", "why"
    )
    for staffing in result.staffed:
        for m in result.margins.get(staffing.psa_project_id, []):
            pct = m.get("margin_pct")
            table.add_row(
                f"{staffing.name} ({staffing.psa_project_id})",
                str(m["version"]),
                str(m["hours"]),
                str(sum((Decimal(str(u["hours"])) for u in m.get("unpriced", [])), Decimal(0))),
                f"{Decimal(m['revenue']['amount']):,.2f} {m['currency']}",
                f"{Decimal(m['cost']['amount']):,.2f}",
                "n/a" if pct is None else f"{Decimal(pct) * 100:.1f}%",
                f"{Decimal(m['floor']) * 100:.0f}%",
                str(m["cause"].get("detail", ""))[:70],
            )
    console.print(table)
    for alert in result.alerts:
        console.print(f"[bold]alert to the delivery managers:[/bold] {alert['subject']}")
        console.print("  " + alert["message"].replace("\n", "\n  "), highlight=False)
    for problem in result.problems:
        console.print(f"[red]problem:[/red] {problem}")


# ------------------------------------------------------------------------------------------------ reads


def _planning_table(stack: LocalStack) -> Any:
    return stack.session.resource("dynamodb", endpoint_url=stack.endpoint).Table(
        stack.outputs["PlanningTableName"]
    )


def _planning(stack: LocalStack) -> Any:
    from hub.planning import PlanningStore

    return PlanningStore(stack.outputs["PlanningTableName"], _planning_table(stack))


def _entity(workday: Any, hcm_id: str) -> str:
    return str(workday.worker(hcm_id)["assignments"][-1]["company"])


def _rate(workday: Any, hcm_id: str) -> Decimal:
    return Decimal(workday.worker(hcm_id)["cost_rates"][-1]["amount"])


def _currency(workday: Any, hcm_id: str) -> str:
    return str(workday.worker(hcm_id)["cost_rates"][-1]["currency"])


def _first_story(kantata: Any, workspace_id: str) -> str:
    stories = sorted(kantata.stories(workspace_id), key=lambda s: int(s["id"]))
    if not stories:
        return str(kantata.seed_story(workspace_id, title="Delivery"))
    return str(stories[0]["id"])


def _after_working_days(start: dt.date, days: int) -> dt.date:
    day, left = start, days - 1
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _legal_entity_of(stack: LocalStack, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    for value in stack.sandboxes.kantata.custom_field_values():
        if str(value.get("subject_id")) == user_id and value.get("custom_field_name") == "Legal Entity":
            return str(value.get("display_value"))
    return None


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
