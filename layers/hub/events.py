"""Publishing business events on the hub's bus, one envelope for all (see ``hub.model.envelope``)."""

from __future__ import annotations

from typing import Any

from hub import aws
from hub.errors import TransientError
from hub.model.envelope import EventEnvelope


class EventPublisher:
    def __init__(self, bus_name: str, client: Any | None = None) -> None:
        self._bus = bus_name
        self._client = client if client is not None else aws.client("events")

    def publish(self, *envelopes: EventEnvelope) -> None:
        """Put the events (in chunks of 10, PutEvents' limit); a partly failed put raises TransientError."""
        for start in range(0, len(envelopes), 10):
            chunk = envelopes[start : start + 10]
            answer = self._client.put_events(Entries=[e.to_entry(self._bus) for e in chunk])
            if answer.get("FailedEntryCount", 0):
                codes = sorted({e.get("ErrorCode", "?") for e in answer["Entries"] if "ErrorCode" in e})
                raise TransientError(
                    f"EventBridge rejected {answer['FailedEntryCount']} event(s): {codes}",
                    system="eventbridge",
                )
