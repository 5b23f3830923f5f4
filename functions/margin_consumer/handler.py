"""Margin queue consumer (SQS event source, partial batch failures): re-price each named project
(``hub.flows.workforce.repricing``).

Each record's body is a ``MarginRequest`` (the PSA project and what changed). Records end as: repriced /
unchanged / not-planned (a project the hub did not initiate) / duplicate (deleted); parked (held in the margin
DLQ with ``parkedReason``: a missing FX rate, a billing schedule in another currency; ops redrive once
finance fixed it); retry (a PSA throttle or outage, another computation first: a batch item failure, SQS
redelivers it). A margin that falls below its floor alerts the delivery managers' SNS topic. Logs and
metrics carry counts, never worker data.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.observability import entry
from hub.settings import MarginConsumerSettings, load

FATE_METRICS = {
    "repriced": "ProjectsRepriced",
    "unchanged": "ProjectsUnchanged",
    "not-planned": "ProjectsNotPlanned",
    "duplicate": "ProjectsDuplicate",
    "parked": "ProjectsParked",
    "retry": "ProjectsRetry",
    "malformed": "ProjectsMalformed",
}


@dataclass
class Handlers:
    consume: Callable[[list[tuple[str, str]]], Any]  # (message id, body) -> BatchMessages
    deps: Any  # the RepricingDeps it runs with


def export_key(prefix: str, at: dt.datetime) -> str:
    """``margins/date=2026-11-26/hour=09/<uuid>.jsonl``: partitions a lake query engine prunes by."""
    utc = at.astimezone(dt.UTC)
    return f"{prefix}/date={utc.date().isoformat()}/hour={utc.hour:02d}/{uuid.uuid4().hex}.jsonl"


def build_deps(
    settings: MarginConsumerSettings,
    *,
    psa: Any,
    sqs: Any,
    s3: Any,
    sns: Any,
    now: Callable[[], dt.datetime] | None = None,
) -> Handlers:
    """The consumer wired to its tables, bus, queue, bucket and topic; ``psa`` (a ``PsaResourcePort``) from
    ``default_deps`` (the PSA secret) or a test."""
    import json

    from hub.events import EventPublisher
    from hub.flows.workforce.repricing import MarginAlert, RepricingDeps, reprice_batch
    from hub.ledger import Ledger
    from hub.planning import PlanningStore
    from hub.redelivery import hold_attributes

    clock = now or (lambda: dt.datetime.now(dt.UTC))

    def hold(body: str, reason: str, correlation_id: str) -> None:
        sqs.send_message(
            QueueUrl=settings.margin_dlq_url,
            MessageBody=body,
            MessageAttributes=hold_attributes(reason, correlation_id or None),
        )

    def export(records: Sequence[Mapping[str, Any]]) -> None:
        s3.put_object(
            Bucket=settings.analytics_bucket,
            Key=export_key("margins", clock()),
            Body="".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode(),
            ContentType="application/x-ndjson",
        )

    def alert(message: MarginAlert) -> None:
        sns.publish(
            TopicArn=settings.alerts_topic_arn,
            Subject=message.subject,
            Message=message.message,
            MessageAttributes={
                "psaProjectId": {"DataType": "String", "StringValue": message.psa_project_id},
                "kind": {"DataType": "String", "StringValue": "margin-below-floor"},
            },
        )

    deps = RepricingDeps(
        psa=psa,
        store=PlanningStore(settings.planning_table),
        ledger=Ledger(settings.ledger_table),
        publish=EventPublisher(settings.event_bus_name).publish,
        export=export,
        alert=alert,
        hold=hold,
        default_floor=Decimal(settings.default_margin_floor),
        now=clock,
    )
    return Handlers(consume=lambda messages: reprice_batch(messages, deps), deps=deps)


@functools.cache
def default_deps() -> Handlers:
    from hub import aws
    from hub.connectors.secret_bound import SecretResources, secret_reader

    settings = load(MarginConsumerSettings)
    return build_deps(
        settings,
        psa=SecretResources(secret_reader(settings.psa_secret_arn)),
        sqs=aws.client("sqs"),
        s3=aws.client("s3"),
        sns=aws.client("sns"),
    )


@entry(MarginConsumerSettings)
def handler(event: dict[str, Any], context: Any, deps: Handlers | None = None) -> dict[str, Any]:
    from hub.redelivery import partial_batch_answer

    deps = deps or default_deps()
    records = event.get("Records") or []
    outcome = deps.consume([(r["messageId"], r.get("body") or "") for r in records])
    return partial_batch_answer(event, context, outcome, fate_metrics=FATE_METRICS, what="margin")
