"""``make demo``: the local stack, the scripted closed-won scenario and then the month end (``local.month_end``)
on the same stack, with progress and a report each.

30 deals flow from the Salesforce sandbox through the hub into the Kantata and NetSuite sandboxes (two
NetSuite accounts, US and UK, chosen by the routing table): most as signed JSON webhooks, four in one
Outbound Message, some delivered several times (also concurrently), one without its legal entity, one
tampered delivery and one change that is not a stage change; throttling injected at both ERPs. The report
lists each deal with its project, steps, retries, or its parking reason.

The month end then posts about 2,040 approved time entries and expense lines of US01, UK01 and DE01 into
NetSuite (US, UK) and Business Central, with duplicated and missed webhooks, withdrawn approvals, entries that
fail a check, a period closed mid-run, and throttling; its report counts what each ERP sandbox holds (see
``local.month_end``). The exit code is non-zero if any deal or entry is unaccounted for, anything was created or
posted twice, or the month end's conservation does not hold.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.flows.initiation.intake import business_key, correlation_id_for
from local import month_end, workforce
from local.month_end import MonthEndConfig, run_month_end
from local.psa_seed import MonthEndLoad
from local.sandboxes.base import Faults
from local.scenario import Announcer, Deal, seed_deals
from local.stack import ORG_ID, LocalStack, Sandboxes

DEALS = 30
OUTBOUND = 4
MISSING_ENTITY = 17
# The month end's workers per entity: 20 make about 2,040 entries, and the whole demo under three minutes on two
# cores (the local stack runs every Lambda and the sandboxes in one Python process, moto in another).
MONTH_END_WORKERS = 20


@dataclass
class Outcome:
    deals: list[Deal]
    transactions: dict[str, dict[str, Any]]
    answers: Counter[str]
    elapsed: float
    problems: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(1 for t in self.transactions.values() if t["status"] == "COMPLETED")

    @property
    def parked(self) -> int:
        return sum(1 for t in self.transactions.values() if t["status"] == "PARKED")


def run_scenario(
    stack: LocalStack, *, deals: int = DEALS, progress: Progress | None = None, timeout: float = 240
) -> Outcome:
    sf = stack.sandboxes.salesforce
    batch = seed_deals(sf, deals, missing_entity=MISSING_ENTITY, outbound=OUTBOUND)
    announcer = Announcer(stack.webhook_url, stack.sign, sf)
    started = time.perf_counter()
    task = progress.add_task("sending deliveries", total=len(batch)) if progress else None
    webhook_deals = [d for d in batch if d.channel == "webhook"]

    def send(deal: Deal) -> None:
        announcer.webhook(deal)
        if progress:
            progress.advance(task)

    with ThreadPoolExecutor(max_workers=4) as pool:  # Salesforce sends deliveries in parallel too
        list(pool.map(send, webhook_deals))
    announcer.outbound([d for d in batch if d.channel == "outbound-message"], ORG_ID)
    if progress:
        progress.advance(task, OUTBOUND)
    # duplicates: a replay of the same delivery, redeliveries, and concurrent deliveries
    announcer.webhook(webhook_deals[0], msg_id="msg_replayed")
    announcer.webhook(webhook_deals[0], msg_id="msg_replayed")
    announcer.webhook(webhook_deals[1])
    announcer.concurrently(webhook_deals[2], 3)
    announcer.concurrently(webhook_deals[3], 3)
    announcer.tampered(webhook_deals[4])
    announcer.stage_unchanged(webhook_deals[5])
    for deal in batch:
        deal.correlation_id = deal.correlation_id or correlation_id_for(business_key(deal.opportunity_id))
    wait = progress.add_task("deals settled (completed or parked)", total=len(batch)) if progress else None

    def tick(done: int) -> None:
        if progress:
            progress.update(wait, completed=done)

    transactions = stack.wait_for(
        [d.correlation_id for d in batch if d.correlation_id], timeout=timeout, tick=tick
    )
    outcome = Outcome(batch, transactions, announcer.tally.answers, time.perf_counter() - started)
    outcome.problems = check(stack, outcome)
    return outcome


def check(stack: LocalStack, outcome: Outcome) -> list[str]:
    """Everything that would make the run wrong: unaccounted deals, anything created twice."""
    problems = []
    for deal in outcome.deals:
        tx = outcome.transactions.get(deal.correlation_id or "")
        if tx is None:
            problems.append(f"deal {deal.index} ({deal.opportunity_id}) is unaccounted for")
        elif tx["status"] == "PARKED" and not tx.get("reason"):
            problems.append(f"deal {deal.index} parked without a reason")
    workspaces = stack.sandboxes.kantata.workspaces()
    titles = Counter(w.get("title") for w in workspaces)
    problems += [f"{n} PSA projects titled {t!r}" for t, n in titles.items() if n > 1]
    for system, ns in stack.sandboxes.netsuite.items():
        for kind in ("customer", "job"):
            eids = Counter(r.get("externalId") for r in ns.records(kind))
            problems += [f"{system}: {n} {kind} records for {e}" for e, n in eids.items() if n > 1]
    return problems


def report(console: Console, stack: LocalStack, outcome: Outcome) -> None:
    table = Table(title=f"{len(outcome.deals)} closed-won deals through the hub", show_lines=False)
    for column in (
        "#",
        "deal",
        "entity",
        "via",
        "status",
        "PSA project",
        "ERP job",
        "steps",
        "retries",
        "deliveries",
    ):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=40)
    for deal in outcome.deals:
        tx = outcome.transactions.get(deal.correlation_id or "") or {}
        checkpoints = tx.get("checkpoints", [])
        ok_steps = sum(1 for c in checkpoints if c["outcome"] == "ok")
        retries = sum(1 for c in checkpoints if c["outcome"] == "retry")
        refs = tx.get("refs", {})
        status = tx.get("status", "UNACCOUNTED")
        colour = {"COMPLETED": "green", "PARKED": "yellow"}.get(status, "red")
        table.add_row(
            str(deal.index),
            deal.name[:28],
            deal.legal_entity or "-",
            "OM" if deal.channel == "outbound-message" else "webhook",
            f"[{colour}]{status}[/]",
            refs.get("psaProjectId", "-"),
            f"{refs.get('erpSystem', '-')}:{refs.get('erpProjectId', '-')}",
            str(ok_steps),
            str(retries),
            str(len(tx.get("deliveries", []))),
            (tx.get("reason") or "")[:160],
        )
    console.print(table)
    answers = outcome.answers
    rejected = sum(n for k, n in answers.items() if k.startswith("rejected"))
    console.print(
        f"deliveries sent: {sum(answers.values())}  accepted: {answers['accepted']}  rejected: {rejected} "
        f"({', '.join(k for k in answers if k.startswith('rejected')) or 'none'})"
    )
    console.print(
        f"deals: {len(outcome.deals)} = completed {outcome.completed} + parked {outcome.parked}"
        f" + unaccounted {len(outcome.deals) - outcome.completed - outcome.parked}"
    )
    ns_calls = {s: ns.call_count() for s, ns in stack.sandboxes.netsuite.items()}
    throttled = {s: ns.call_count(status=429) for s, ns in stack.sandboxes.netsuite.items()}
    console.print(
        f"ERP calls: {ns_calls}; answered 429 (retried): {throttled}; "
        f"peak in-flight: { {s: ns.peak_in_flight for s, ns in stack.sandboxes.netsuite.items()} }"
    )
    console.print(
        f"PSA projects: {len(stack.sandboxes.kantata.workspaces())}; "
        f"ERP customers: { {s: len(ns.records('customer')) for s, ns in stack.sandboxes.netsuite.items()} }"
        f"; ERP jobs: { {s: len(ns.records('job')) for s, ns in stack.sandboxes.netsuite.items()} }"
    )
    console.print(
        f"elapsed: {outcome.elapsed:.1f}s, {outcome.completed / outcome.elapsed:.2f} deals/s completed"
    )
    for problem in outcome.problems:
        console.print(f"[red]PROBLEM[/] {problem}")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def main(month_end_workers: int = MONTH_END_WORKERS, workforce_workers: int = workforce.WORKERS) -> int:
    """The closed-won scenario, then the month end on the same stack (``month_end_workers`` per entity sets
    its volume; 0 skips it). Non-zero if a deal is unaccounted for, anything was created or posted twice, or
    the month end does not add up."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    sandboxes = Sandboxes.create(erp_faults=Faults(throttle_rate=0.15, seed=11))
    with _progress(console) as progress:
        setup = progress.add_task("local stack", total=None)
        stack = LocalStack(
            sandboxes=sandboxes,
            progress=lambda message: progress.update(setup, description=f"local stack: {message}"),
        )
        try:
            stack.start()
            progress.update(setup, total=1, completed=1)
            outcome = run_scenario(stack, progress=progress)
        except BaseException:
            stack.stop()
            raise
    try:
        report(console, stack, outcome)
        month = None
        if month_end_workers > 0:
            console.rule("month end: time and expenses to finance")
            config = MonthEndConfig(load=MonthEndLoad(workers=month_end_workers))
            with _progress(console) as progress:
                month = run_month_end(stack, config, progress=progress)
            month_end.report(console, month)
        staffing = None
        if workforce_workers > 0:
            console.rule("workforce: HCM workers into the PSA, and the projects' planned margin")
            with console.status("worker sync, staffing, HCM changes, re-pricing"):
                staffing = workforce.run_workforce(stack, workers=workforce_workers)
            workforce.report(console, staffing)
    finally:
        stack.stop()
    unaccounted = len(outcome.deals) - outcome.completed - outcome.parked
    month_wrong = month is not None and (bool(month.problems) or not month.conserved)
    staffing_wrong = staffing is not None and bool(staffing.problems)
    return 1 if unaccounted or outcome.problems or month_wrong or staffing_wrong else 0
