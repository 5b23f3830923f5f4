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
import json
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


@functools.lru_cache(maxsize=4)
def _resources(secret_value: str) -> Any:
    from hub.connectors import factory

    return factory.psa_resources_from_secret(json.loads(secret_value))


def build_deps(
    settings: WorkerConsumerSettings, *, psa: Any, sqs: Any, today: Callable[[], dt.date] | None = None
) -> Handlers:
    """The consumer wired to its ledger, bus and queues; ``psa`` (a ``PsaResourcePort``) from ``default_deps``
    (the PSA secret) or a test."""
    from hub.events import EventPublisher
    from hub.flows.workforce.consumer import WorkerConsumerDeps, consume_workers
    from hub.flows.workforce.sync import WorkerMessage
    from hub.ledger import Ledger
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
    )
    if today is not None:
        deps.today = today
    return Handlers(consume=lambda messages: consume_workers(messages, deps))


class _SecretResources:
    """The resource pool adapter of the current secret value, resolved per call (rotation used at once)."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def upsert_resources(self, workers: Any, *, today: dt.date) -> Any:
        return _resources(self._secret()).upsert_resources(workers, today=today)

    def assignments_changed(self, **window: Any) -> Any:
        return _resources(self._secret()).assignments_changed(**window)

    def project_assignments(self, psa_project_id: str) -> Any:
        return _resources(self._secret()).project_assignments(psa_project_id)


@functools.cache
def default_deps() -> Handlers:
    from aws_lambda_powertools.utilities import parameters

    from hub import aws

    settings = load(WorkerConsumerSettings)

    def secret() -> str:
        value = parameters.get_secret(settings.psa_secret_arn, max_age=300)
        return value if isinstance(value, str) else json.dumps(value)

    return build_deps(settings, psa=_SecretResources(secret), sqs=aws.client("sqs"))


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
