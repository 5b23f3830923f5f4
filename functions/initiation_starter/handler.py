"""Intake queue consumer: one Step Functions execution per business transaction, partial batch failures."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hub.flows.initiation.starter import start
from hub.ledger import Ledger
from hub.observability import entry, logger, metrics
from hub.settings import InitiationStarterSettings, load


@dataclass
class StarterDeps:
    ledger: Ledger
    sfn: Any
    state_machine_arn: str


@functools.cache
def default_deps() -> StarterDeps:
    from hub import aws

    settings = load(InitiationStarterSettings)
    return StarterDeps(Ledger(settings.ledger_table), aws.client("stepfunctions"), settings.state_machine_arn)


@entry(InitiationStarterSettings)
def handler(event: dict[str, Any], context: Any, deps: StarterDeps | None = None) -> dict[str, Any]:
    deps = deps or default_deps()
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> str:
        message = json.loads(record.body)
        outcome = start(message, ledger=deps.ledger, sfn=deps.sfn, state_machine_arn=deps.state_machine_arn)
        logger.info("intake message", extra={"correlation_id": message["correlationId"], "outcome": outcome})
        metrics.add_metric(
            name="InitiationStarts" if outcome == "started" else "InitiationDuplicates", unit="Count", value=1
        )
        return outcome

    return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
        event=event, record_handler=record_handler, processor=processor, context=context
    )
