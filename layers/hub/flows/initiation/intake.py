"""At the door: turn a verified delivery into a recorded, enqueued business transaction (or an ignored one).

A deal that reaches Closed Won is one business transaction, whatever the channel and however often it is
delivered: its correlation id is derived from the opportunity id, so duplicates (redeliveries, the same
change over both channels, concurrent retries) land on the same ledger item and the same execution name.
Changes that do not move StageName to Closed Won are acknowledged and recorded as ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.flows.initiation import FLOW
from hub.ledger import Ledger, Status
from hub.model import Opportunity

_NAMESPACE = uuid.UUID("6f1d3c1e-5b0e-4f0a-9a51-2f7c4f1b9e10")
CLOSED_WON = "Closed Won"


class Delivery(BaseModel):
    """One inbound notification about one opportunity, after verification and mapping."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str = Field(min_length=1, max_length=200)
    channel: Literal["webhook", "outbound-message"]
    stage_changed: bool
    opportunity: Opportunity


class Accepted(BaseModel):
    correlation_id: str
    status: str
    enqueued: bool


def business_key(opportunity_id: str) -> str:
    return f"opportunity-won:{opportunity_id}"


def correlation_id_for(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, key))


def starts_project(delivery: Delivery) -> bool:
    return delivery.stage_changed and delivery.opportunity.stage == CLOSED_WON


def intake_message(correlation_id: str, opportunity: Opportunity, attempt: int = 1) -> dict[str, Any]:
    """The intake queue's message: everything the orchestration needs, nothing personal beyond the deal."""
    return {
        "correlationId": correlation_id,
        "attempt": attempt,
        "businessKey": business_key(opportunity.crm_id),
        "opportunity": opportunity.model_dump(mode="json"),
    }


def accept(delivery: Delivery, *, ledger: Ledger, enqueue: Callable[[dict[str, Any]], None]) -> Accepted:
    """Record the delivery and, for a new closed-won deal, enqueue it. Safe to call again with any duplicate."""
    opp = delivery.opportunity
    if not starts_project(delivery):
        key = f"opportunity-change:{opp.crm_id}:{opp.version}"
        cid = correlation_id_for(key)
        header, _ = ledger.open(
            cid,
            flow=FLOW,
            business_key=key,
            subject=opp.crm_id,
            source=delivery.channel,
            status=Status.IGNORED,
            reason=f"stage is {opp.stage!r}"
            + ("" if delivery.stage_changed else " and StageName did not change"),
            summary={"stage": opp.stage},
        )
        ledger.record_delivery(cid, delivery.delivery_id, channel=delivery.channel)
        return Accepted(correlation_id=cid, status=header["status"], enqueued=False)

    key = business_key(opp.crm_id)
    cid = correlation_id_for(key)
    header, _created = ledger.open(
        cid,
        flow=FLOW,
        business_key=key,
        subject=opp.crm_id,
        source=delivery.channel,
        summary={"opportunity": opp.name, "stage": opp.stage},
    )
    ledger.record_delivery(cid, delivery.delivery_id, channel=delivery.channel)
    if header["status"] != Status.RECEIVED:
        # Already queued, running, done or parked: a duplicate. Parked ones are redriven by ops, not by
        # the sender retrying, so a fix is never raced by an old redelivery.
        return Accepted(correlation_id=cid, status=header["status"], enqueued=False)
    # RECEIVED: new, or a previous attempt died before enqueueing. Enqueueing twice is harmless: the
    # execution name is the correlation id, so only one orchestration can start.
    enqueue(intake_message(cid, opp, attempt=int(header.get("attempt", 1))))
    ledger.set_status(cid, Status.QUEUED, only_if_in=frozenset({Status.RECEIVED}))
    return Accepted(correlation_id=cid, status=str(Status.QUEUED), enqueued=True)


class ChangeData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    changedFields: list[str] = Field(min_length=1)  # noqa: N815 - the sender's field name
    record: dict[str, Any]


class OpportunityChanged(BaseModel):
    """The JSON body of a Standard Webhooks delivery: one opportunity change, the record nested like SOQL."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["opportunity.changed"]
    data: ChangeData


def minimal_opportunity(record: dict[str, Any]) -> Opportunity:
    """The opportunity's identity only, for a verified delivery whose record does not map cleanly.

    The deal is then recorded and read again from the CRM by the flow (``needs_hydration``), which parks it
    with the mapping problems where ops and sales can see and fix them, instead of a 400 that the sender
    retries and eventually drops. Raises ValueError when even the identity is unusable.
    """
    import datetime as dt

    modified = record.get("SystemModstamp") or record.get("LastModifiedDate")
    try:
        last_modified = dt.datetime.fromisoformat(str(modified).replace("Z", "+00:00")) if modified else None
    except ValueError:
        last_modified = None
    if last_modified is not None and last_modified.tzinfo is None:
        last_modified = None
    return Opportunity(
        crm_id=str(record.get("Id") or ""),
        name=str(record.get("Name") or record.get("Id") or "?"),
        stage=str(record.get("StageName") or ""),
        last_modified=last_modified or dt.datetime.now(dt.UTC),
        needs_hydration=True,
    )
