"""Worker queue consumer (SQS event source, partial batch failures): apply each changed worker to the PSA's
resource pool (``hub.flows.workforce.consumer``).

Each record's body is a whole canonical worker (``WorkerMessage``); its ``throttled`` message attribute counts
how often it was sent back for throttling. Records end as: applied / unchanged / duplicate (deleted); parked
(held in the worker DLQ with ``parkedReason``, for ops to redrive once the PSA side is fixed); throttled (sent
again with a growing delay); other retryable failures (a batch item failure: SQS redelivers it). Logs and
metrics carry counts, never worker data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.observability import entry
from hub.settings import WorkerConsumerSettings, load

FATE_METRICS = {
    "applied": "WorkersApplied",
    "unchanged": "WorkersUnchanged",
    "duplicate": "WorkersDuplicate",
    "parked": "WorkersParked",
    "retry": "WorkersRetry",
    "malformed": "WorkersMalformed",
}


@dataclass
class Handlers:
    consume: Callable[
        [list[tuple[str, str, int]]], Any
    ]  # (message id, body, times throttled) -> BatchMessages


def build_deps(
    settings: WorkerConsumerSettings, *, psa: Any, sqs: Any, today: Callable[[], dt.date] | None = None
) -> Handlers:
    """The consumer wired to its ledger, bus and queues; ``psa`` (a ``PsaResourcePort``) from ``default_deps``
    (the PSA secret) or a test."""
    from hub.events import EventPublisher
    from hub.flows.workforce.consumer import WorkerConsumerDeps, consume_workers
    from hub.flows.workforce.projects import enqueue_projects
    from hub.flows.workforce.sync import WorkerMessage
    from hub.ledger import Ledger
    from hub.planning import PlanningStore
    from hub.redelivery import hold_attributes

    def hold(body: str, reason: str, correlation_id: str | None) -> None:
        sqs.send_message(
            QueueUrl=settings.worker_dlq_url,
            MessageBody=body,
            MessageAttributes=hold_attributes(reason, correlation_id),
        )

    def resend(message: WorkerMessage, delay: int, times: int) -> None:
        sqs.send_message(
            QueueUrl=settings.worker_queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=delay,
            MessageAttributes={
                "correlationId": {"DataType": "String", "StringValue": message.correlation_id},
                "throttled": {"DataType": "Number", "StringValue": str(times)},
            },
        )

    deps = WorkerConsumerDeps(
        ledger=Ledger(settings.ledger_table),
        psa=psa,
        events=EventPublisher(settings.event_bus_name),
        hold=hold,
        resend=resend,
        planning=PlanningStore(settings.planning_table),
        reprice=lambda requests: enqueue_projects(sqs, settings.margin_queue_url, requests),
    )
    if today is not None:
        deps.today = today
    return Handlers(consume=lambda messages: consume_workers(messages, deps))


@functools.cache
def default_deps() -> Handlers:
    from hub import aws
    from hub.connectors.secret_bound import SecretResources, secret_reader

    settings = load(WorkerConsumerSettings)
    return build_deps(
        settings, psa=SecretResources(secret_reader(settings.psa_secret_arn)), sqs=aws.client("sqs")
    )


def _throttled(record: dict[str, Any]) -> int:
    attribute = (record.get("messageAttributes") or {}).get("throttled") or {}
    try:
        return int(attribute.get("stringValue") or 0)
    except ValueError:
        return 0


@entry(WorkerConsumerSettings)
def handler(event: dict[str, Any], context: Any, deps: Handlers | None = None) -> dict[str, Any]:
    from hub.redelivery import partial_batch_answer

    deps = deps or default_deps()
    records = event.get("Records") or []
    outcome = deps.consume([(r["messageId"], r.get("body") or "", _throttled(r)) for r in records])
    return partial_batch_answer(event, context, outcome, fate_metrics=FATE_METRICS, what="worker")
