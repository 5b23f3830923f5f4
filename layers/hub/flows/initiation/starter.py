"""From the intake queue to one orchestration per business transaction (and per redrive attempt).

The execution name is the correlation id (``{id}-{attempt}`` for redrives), so Step Functions itself refuses
a second execution of the same attempt: duplicates from the queue, concurrent deliveries and redriven
messages cannot start a second project. An explicit redrive of a parked transaction (its held message,
moved back from the dead-letter queue or rebuilt from the ledger) starts the next attempt, which re-reads
the opportunity from the CRM so that a fix made there is picked up; every step is idempotent, so a resumed
transaction completes what is missing.
"""

from __future__ import annotations

import json
from typing import Any

from hub.flows.initiation import FLOW
from hub.ledger import Ledger, Status


def execution_name(correlation_id: str, attempt: int) -> str:
    return correlation_id if attempt <= 1 else f"{correlation_id}-{attempt}"


def start(message: dict[str, Any], *, ledger: Ledger, sfn: Any, state_machine_arn: str) -> str:
    """Start (or recognise) the orchestration for one intake message; returns what happened."""
    cid = message["correlationId"]
    header = ledger.header(cid)
    if header is None:  # the door recorded nothing (a hand-made or replayed message): record it now
        header, _ = ledger.open(
            cid,
            flow=FLOW,
            business_key=message["businessKey"],
            subject=message["opportunity"]["crm_id"],
            source="queue",
            status=Status.QUEUED,
        )
    status = Status(header["status"])
    attempt = int(header.get("attempt", 1))
    if status in (Status.COMPLETED, Status.IGNORED):
        ledger.checkpoint(cid, "start", "duplicate", attempt=attempt, detail={"status": str(status)})
        return f"duplicate-{status.lower()}"
    redrive = "parkedReason" in message and int(message.get("attempt", 0)) == attempt
    if status is Status.PARKED or (redrive and status is Status.RUNNING):
        # Only an explicit redrive (a held message of the attempt that parked) starts the next attempt; a
        # stale copy of an older message (SQS at-least-once, a racing delivery) must not restart a parked
        # deal by itself. RUNNING with a held message: the park step failed to write the ledger.
        if not redrive:
            ledger.checkpoint(cid, "start", "duplicate", attempt=attempt, detail={"status": str(status)})
            return "duplicate-parked"
        moved = ledger.set_status(
            cid,
            Status.QUEUED,
            attempt=attempt + 1,
            only_if_attempt=attempt,
            only_if_in=frozenset({Status.PARKED, Status.RUNNING}),
        )
        if not moved:
            return "duplicate-redrive"  # another redrive of the same transaction won the race
        attempt += 1
    payload = {
        "correlationId": cid,
        "attempt": attempt,
        "businessKey": message["businessKey"],
        "opportunity": dict(message["opportunity"], needs_hydration=True)
        if attempt > 1
        else message["opportunity"],
    }
    name = execution_name(cid, attempt)
    try:
        answer = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    except sfn.exceptions.ExecutionAlreadyExists:
        ledger.checkpoint(cid, "start", "duplicate", attempt=attempt, detail={"execution": name})
        return "duplicate-execution"
    ledger.set_status(
        cid,
        Status.RUNNING,
        refs={"executionArn": answer["executionArn"]},
        only_if_in=frozenset({Status.RECEIVED, Status.QUEUED}),
    )
    ledger.checkpoint(cid, "start", "ok", attempt=attempt, detail={"execution": name})
    return "started"
