"""What ops do at month end, as code: list parked transactions, read one, redrive them.

Two queues hold parked work: ``intake`` (closed-won deals that did not become projects) and ``posting``
(time entries and expense lines that did not post; each held message carries its ``parkedReason``).

Works against AWS (default credentials) or the local stack (``--endpoint-url``). In the AWS console the same
redrive is SQS's "Start DLQ redrive" on the dead-letter queue; this is the scripted equivalent (and the only
one in moto, which does not implement StartMessageMoveTask).
"""

from __future__ import annotations

import json
from typing import Any

import typer


def redrive(
    sqs: Any, dlq_url: str, queue_url: str, *, correlation_id: str | None = None, limit: int = 1000
) -> list[str]:
    """Move messages from the dead-letter queue back to their source queue; the correlation ids moved.

    With ``correlation_id``, only that transaction's messages move; the others stay where they are.
    """
    moved: list[str] = []
    skipped: list[dict[str, Any]] = []
    while len(moved) < limit:
        got = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
        )
        messages = got.get("Messages", [])
        if not messages:
            break
        for message in messages:
            cid = _correlation_id(message)
            if correlation_id and cid != correlation_id:
                skipped.append(message)
                continue
            attributes = {  # the reason it was parked stays in the ledger, not on the redriven message
                k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                for k, v in (message.get("MessageAttributes") or {}).items()
                if "StringValue" in v and k != "parkedReason"
            }
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved.append(cid)
    for message in skipped:  # make the others visible again at once
        sqs.change_message_visibility(
            QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return moved


def _correlation_id(message: dict[str, Any]) -> str:
    """From the body (intake messages) or the ``correlationId`` attribute (posting messages)."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    attribute = (message.get("MessageAttributes") or {}).get("correlationId") or {}
    found = (body.get("correlationId") if isinstance(body, dict) else None) or attribute.get("StringValue")
    return str(found or "?")


def redrive_posting_from_ledger(
    sqs: Any, ledger: Any, queue_url: str, *, correlation_id: str | None = None
) -> list[str]:
    """Send every parked time entry or expense line back to the posting queue from the ledger (its held message
    may have expired after 14 days): the consumer reads the entry again from the PSA and checks it anew."""
    from hub.flows.posting import FLOW
    from hub.flows.posting.messages import PostingRequest, enqueue
    from hub.ledger import Status

    if correlation_id:
        header = ledger.header(correlation_id)
        parked = [header] if header and header["status"] == Status.PARKED else []
    else:
        parked = ledger.by_status(Status.PARKED, limit=10_000)
    requests = []
    for tx in parked:
        kind, _, psa_id = str(tx.get("business_key", "")).partition(":")
        if tx.get("flow") == FLOW and kind in ("time-entry", "expense"):
            requests.append(PostingRequest(kind=kind, psa_id=psa_id, source="redrive"))  # type: ignore[arg-type]
    enqueue(sqs, queue_url, requests)
    return [r.correlation_id for r in requests]


def redrive_from_ledger(
    sqs: Any, ledger: Any, queue_url: str, *, correlation_id: str | None = None
) -> list[str]:
    """Redrive parked transactions from the ledger itself (their held messages may have expired after the
    dead-letter queue's 14-day retention). The flow re-reads each deal from the CRM, so the message only
    needs the transaction's identity and the attempt that parked."""
    import datetime as dt

    from hub.ledger import Status

    if correlation_id:
        header = ledger.header(correlation_id)
        parked = [header] if header and header["status"] == Status.PARKED else []
    else:
        parked = ledger.by_status(Status.PARKED, limit=10_000)
    moved = []
    for tx in parked:
        if tx.get("flow") not in (None, "project-initiation"):
            continue  # another flow's transaction: see redrive_posting_from_ledger
        message = {
            "correlationId": tx["correlation_id"],
            "attempt": int(tx.get("attempt", 1)),
            "businessKey": tx["business_key"],
            "parkedReason": tx.get("reason") or "parked",
            "opportunity": {
                "crm_id": tx["subject"],
                "name": (tx.get("summary") or {}).get("opportunity") or tx["subject"],
                "stage": "Closed Won",
                "last_modified": dt.datetime.now(dt.UTC).isoformat(),
                "needs_hydration": True,
            },
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
        moved.append(tx["correlation_id"])
    return moved


cli = typer.Typer(add_completion=False, help="Ops commands for the hub (AWS or the local stack).")


def _session(endpoint_url: str | None, region: str) -> tuple[Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    return session, (lambda service: session.client(service, endpoint_url=endpoint_url))


def _outputs(client: Any, stack: str) -> dict[str, str]:
    described = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


QUEUES = {
    "intake": ("IntakeQueueUrl", "IntakeDlqUrl"),
    "posting": ("PostingQueueUrl", "PostingDlqUrl"),
    "workers": ("WorkerQueueUrl", "WorkerDlqUrl"),
    "margin": ("MarginQueueUrl", "MarginDlqUrl"),
}
FLOWS = {
    "intake": "project-initiation",
    "posting": "time-expense-posting",
    "workers": "worker-sync",
    "margin": "project-margin",
}
QUEUE_HELP = "intake (deals), posting (time and expenses), workers (HCM workers) or margin (project margins)"


@cli.command("parked")
def parked_command(
    queue: str = typer.Option("intake", help=QUEUE_HELP),
    stack: str = "pshub",
    endpoint_url: str | None = None,
    region: str = "us-east-1",
) -> None:
    """List parked transactions of a flow with their reasons."""
    import sys

    sys.path.insert(0, "layers")
    from hub.ledger import Ledger, Status

    session, client = _session(endpoint_url, region)
    table_name = _outputs(client, stack)["LedgerTableName"]
    ledger = Ledger(table_name, session.resource("dynamodb", endpoint_url=endpoint_url).Table(table_name))
    if queue not in FLOWS:
        raise typer.BadParameter(f"queue must be one of {sorted(FLOWS)}")
    for tx in ledger.by_status(Status.PARKED, limit=10_000):
        if tx.get("flow", FLOWS["intake"]) != FLOWS[queue]:
            continue
        typer.echo(
            f"{tx['correlation_id']}  {tx['subject']}  attempt {tx.get('attempt', 1)}  {tx.get('reason')}"
        )


@cli.command("redrive")
def redrive_command(
    correlation_id: str | None = None,
    queue: str = typer.Option("intake", help=QUEUE_HELP),
    from_ledger: bool = typer.Option(
        False, help="redrive what the ledger says is parked (held message expired)"
    ),
    stack: str = "pshub",
    endpoint_url: str | None = None,
    region: str = "us-east-1",
) -> None:
    """Redrive parked transactions (all, or one) from a dead-letter queue, or from the ledger."""
    import sys

    sys.path.insert(0, "layers")
    if queue not in QUEUES:
        raise typer.BadParameter(f"queue must be one of {sorted(QUEUES)}")
    session, client = _session(endpoint_url, region)
    outputs = _outputs(client, stack)
    source_key, dlq_key = QUEUES[queue]
    if from_ledger:
        if queue not in ("intake", "posting"):
            raise typer.BadParameter("--from-ledger redrives deals and time and expenses only")
        from hub.ledger import Ledger

        table_name = outputs["LedgerTableName"]
        ledger = Ledger(table_name, session.resource("dynamodb", endpoint_url=endpoint_url).Table(table_name))
        again = redrive_posting_from_ledger if queue == "posting" else redrive_from_ledger
        moved = again(client("sqs"), ledger, outputs[source_key], correlation_id=correlation_id)
    else:
        moved = redrive(client("sqs"), outputs[dlq_key], outputs[source_key], correlation_id=correlation_id)
    typer.echo(f"redriven: {len(moved)} {moved}")


if __name__ == "__main__":
    cli()
