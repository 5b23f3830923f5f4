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
