"""The posting queue's message: a pointer to one PSA time entry or expense line, never a copy of it.

The PSA webhook and the sweep both say only *which* entry changed. The consumer reads every entry of a batch
again from the PSA (a few calls per batch) just before it checks and posts, so what posts is the entry as it
is now: an approval withdrawn after the message was sent is seen and nothing posts, a later edit posts its
newest version, and a message redriven from the dead-letter queue a week later cannot post stale data.

``enqueue`` sends requests with ``SendMessageBatch`` (10 per call), retrying the entries SQS refused, and
raises :class:`~hub.errors.TransientError` naming how many are still unsent, so the caller (a webhook that
answers 503, a sweep that keeps its watermark) lets the sender try again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.model.time_expense import PsaId
from hub.queues import send_all

Kind = Literal["time-entry", "expense"]
Source = Literal["webhook", "sweep", "redrive"]


def correlation_id_for(kind: str, psa_id: str) -> str:
    """One correlation id per PSA entry, across its versions (the ledger keys the entry on it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pshub:{kind}:{psa_id}"))


class PostingRequest(BaseModel):
    """``{"kind": "time-entry", "psaId": "4711", "source": "sweep", "seenVersion": 3}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Kind
    psa_id: PsaId = Field(alias="psaId")
    source: Source
    # The version the sender saw, for the trail only: the consumer posts the entry as the PSA has it now.
    seen_version: int | None = Field(default=None, alias="seenVersion", ge=1)
    # How many times this request was sent back because the ERP (or its budget) was full: sets its delay.
    throttled: int = Field(default=0, ge=0)

    @property
    def correlation_id(self) -> str:
        return correlation_id_for(self.kind, self.psa_id)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.psa_id)

    def body(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude_defaults=True)


def enqueue(sqs: Any, queue_url: str, requests: Iterable[PostingRequest]) -> int:
    """Send every request (deduplicated by kind and id); the number sent. TransientError if some could not be."""
    unique = list({r.key: r for r in requests}.values())
    return send_all(sqs, queue_url, [(r.body(), r.correlation_id) for r in unique], what="posting request(s)")


def parse(body: str) -> PostingRequest:
    """A queue message body as a request; ValueError (pydantic's) naming the fields at fault."""
    return PostingRequest.model_validate(json.loads(body))


def held_requests(ledger: Any, *, limit: int = 1000) -> list[PostingRequest]:
    """A request for every entry the ledger holds for a closed period (status HELD), so the consumer looks
    at each again: once finance reopens the period (or the next one opens under a roll-forward policy) it
    posts; until then it stays held. Nobody needs to act on a held entry."""
    from hub.ledger import Status

    requests = []
    for header in ledger.by_status(Status.HELD, limit=limit):
        kind, _, psa_id = str(header.get("business_key", "")).partition(":")
        if kind in ("time-entry", "expense") and psa_id:
            requests.append(PostingRequest(kind=kind, psa_id=psa_id, source="sweep"))  # type: ignore[arg-type]
    return requests
