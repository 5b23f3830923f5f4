"""What a queue consumer does with each message of a batch, and how long a throttled one waits.

Every message ends one way (:class:`Disposition`): done (deleted), held in the dead-letter queue with its
reason (parked, or malformed), sent again with a delay (throttled: throttling alone never walks a message to
the dead-letter queue), or reported as a batch item failure (SQS redelivers it, and after ``maxReceiveCount``
the DLQ holds it). The delay is exponential from 20 s with full jitter, at least the system's Retry-After,
at most SQS's longest delay (15 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_DELAY_SECONDS = 900  # SQS's longest message delay
BASE_DELAY_SECONDS = 20


def redelivery_delay(times_throttled: int, retry_after: float | None, jitter: float) -> int:
    """Seconds to delay the message; ``jitter`` is uniform in [0, 1)."""
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** min(times_throttled, 6))
    delay = max(float(retry_after or 0), ceiling * jitter)
    return int(min(MAX_DELAY_SECONDS, max(1, round(delay))))


class Disposition(StrEnum):
    DONE = "done"
    HELD_IN_DLQ = "held-in-dlq"
    RESENT = "resent"
    RETRY = "retry"


@dataclass
class MessageOutcome:
    message_id: str
    disposition: Disposition
    fate: str  # the flow's fate (a StrEnum value), or "malformed"
    reason: str | None = None


@dataclass
class BatchMessages:
    """The outcome of each message of one batch."""

    messages: list[MessageOutcome] = field(default_factory=list)

    @property
    def failed_ids(self) -> list[str]:
        return [m.message_id for m in self.messages if m.disposition is Disposition.RETRY]

    def count(self, fate: str) -> int:
        return sum(1 for m in self.messages if m.fate == fate)


def hold_attributes(reason: str, correlation_id: str | None) -> dict[str, Any]:
    """Message attributes a held message carries into the dead-letter queue, read by ops in the console."""
    attributes: dict[str, Any] = {"parkedReason": {"DataType": "String", "StringValue": reason[:1000]}}
    if correlation_id:
        attributes["correlationId"] = {"DataType": "String", "StringValue": correlation_id}
    return attributes


class RetryLater(Exception):
    """This message could not be decided now (a timeout, a 5xx, another consumer on it): SQS redelivers it."""


def partial_batch_answer(
    event: dict[str, Any], context: Any, outcome: BatchMessages, *, fate_metrics: dict[str, str], what: str
) -> dict[str, Any]:
    """The SQS event source's answer for a decided batch (Powertools' batch processor: the messages to retry
    are its batch item failures), one business metric per fate and one log line of counts."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from hub.observability import logger, metrics

    by_id = {m.message_id: m for m in outcome.messages}

    def record_handler(record: SQSRecord) -> str:
        decided = by_id[record.message_id]
        if decided.disposition is Disposition.RETRY:
            raise RetryLater(decided.reason or "retry")
        return str(decided.fate)

    fates: dict[str, int] = {}
    for message in outcome.messages:
        fates[str(message.fate)] = fates.get(str(message.fate), 0) + 1
    for fate, count in fates.items():
        metrics.add_metric(name=fate_metrics[fate], unit="Count", value=count)
    logger.info(
        f"{what} batch decided",
        extra={"messages": len(event.get("Records") or []), "fates": fates, "retry": len(outcome.failed_ids)},
    )
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
