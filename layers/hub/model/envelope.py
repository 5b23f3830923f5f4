"""One envelope for every business event: CloudEvents 1.0 attributes plus correlation id and schema version."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.model.canonical import SCHEMA_VERSION

EVENT_SOURCE = "pshub"


class EventEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    source: str = Field(default=EVENT_SOURCE, min_length=1)
    type: str = Field(pattern=r"^[A-Z][A-Za-z]+$", description="e.g. ProjectActivated")
    time: AwareDatetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    subject: str | None = None
    datacontenttype: str = "application/json"
    correlationid: str = Field(min_length=1)
    schemaversion: str = SCHEMA_VERSION
    data: dict[str, Any] = Field(default_factory=dict)

    def to_entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry: ``DetailType`` is the event type, ``Detail`` the whole envelope."""
        return {
            "Source": self.source,
            "DetailType": self.type,
            "Detail": self.model_dump_json(),
            "EventBusName": bus_name,
        }
