"""The margin queue's messages: "re-price this project", with what changed, from the assignment webhook, the
nightly assignment sweep and the worker consumer (a cost rate or placement change re-prices the worker's
projects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.flows.workforce import MARGIN_FLOW
from hub.queues import send_all

__all__ = ["MARGIN_FLOW", "Cause", "MarginRequest", "correlation_id_for", "enqueue_projects"]
CauseKind = Literal["assignment", "worker", "sweep", "redrive"]


class Cause(BaseModel):
    """What made the hub re-price the project, in words a delivery manager understands (no personal data:
    workers are named by their HCM id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CauseKind
    detail: str = Field(min_length=1, max_length=500)
    worker_hcm_id: str | None = None
    psa_assignment_id: str | None = None
    at: AwareDatetime


class MarginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    psa_project_id: str = Field(min_length=1, max_length=64)
    cause: Cause

    @property
    def correlation_id(self) -> str:
        return correlation_id_for(self.psa_project_id)


def correlation_id_for(psa_project_id: str) -> str:
    return f"margin:{psa_project_id}"


def enqueue_projects(sqs: Any, queue_url: str, requests: Sequence[MarginRequest]) -> int:
    """Each project once per call (its latest cause), ten a ``SendMessageBatch``; TransientError if some
    could not be queued."""
    latest: dict[str, MarginRequest] = {}
    for request in sorted(requests, key=lambda r: r.cause.at):
        latest[request.psa_project_id] = request
    return send_all(
        sqs,
        queue_url,
        [(r.model_dump_json(), r.correlation_id) for r in latest.values()],
        what="project(s) to re-price",
    )
