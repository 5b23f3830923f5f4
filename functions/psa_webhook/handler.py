"""POST /v1/webhooks/psa/{time-entries,expenses,assignments}: verify, validate, enqueue pointers, answer.

The PSA (Kantata-shaped) tells the hub that time entries or expense lines changed approval, or that project
staffing changed. Kantata signs no webhooks of its own, so the relay in front of it speaks these hub-defined
contracts, signed with Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; the
secret at ``PSA_WEBHOOK_SECRET_ARN``). Every route reads a body of the same shape::

    {"type": "<collection>.<change>", "timestamp": "2026-11-30T18:02:11Z", "data": {"items": [...]}}

- ``timestamp``: when the PSA saw the change (ISO 8601 with an offset), for the trail; freshness is judged
  on the signed ``webhook-timestamp`` header, not on this;
- ``data.items``: 1 to 200 entries; ids are PSA ids (``[A-Za-z0-9_-]{1,64}``, strings). No other field is
  accepted, here or in an item.

Time entries and expenses (``/time-entries``, ``/expenses``)::

    {"type": "time_entries.approved", "timestamp": "2026-11-30T18:02:11Z",
     "data": {"items": [{"id": "4711", "version": 3}, {"id": "4712"}]}}

- ``type``: ``{collection}.approved``, ``{collection}.approval_withdrawn`` or ``{collection}.updated``, where
  the collection is the route's: ``time_entries`` on ``/time-entries``, ``expenses`` on ``/expenses``;
- an item: ``id`` the entry's PSA id, ``version`` the PSA revision the sender saw (optional, an integer >= 1).

All three types enqueue the same pointer, one ``PostingRequest`` per entry (an id named twice once, with the
highest version seen), on the posting queue: the consumer reads each entry from the PSA again and posts what
it finds, so a withdrawal is enqueued too and seen even if it arrives after its approval's message.
``correlationIds`` maps each entry's PSA id to its posting correlation id.

Assignments (``/assignments``)::

    {"type": "assignments.updated", "timestamp": "2026-11-30T18:02:11Z",
     "data": {"items": [{"id": "812", "projectId": "40233"}, {"id": "813", "projectId": "40233"}]}}

- ``type``: ``assignments.created``, ``assignments.updated``, ``assignments.deleted`` (an assignment
  created, changed or removed) or ``allocations.updated`` (an assignment's daily hours changed);
- an item: ``id`` the assignment's PSA id, ``projectId`` the PSA project (workspace) it belongs to.

Each distinct project is enqueued once on the margin queue (a ``MarginRequest``; the margin consumer reads the
project's assignments from the PSA again and re-prices it), its cause phrased for the delivery manager
("assignment 812 updated in the PSA", "3 assignments changed in the PSA") and dated with ``timestamp``.
``correlationIds`` maps each project id to ``margin:{projectId}``.

Answers: ``202 {"accepted": n, "correlationIds": {id: correlationId}}`` (``n`` messages enqueued); 401
unverified sender (checked before the body is parsed), 400 malformed body (the problems name the fields,
never their values), 404 unknown path, 413 too large, 415 not ``application/json``, 409 a retry racing its
first attempt, 503 when the delivery could not be enqueued (the sender retries; a redelivered
``webhook-id`` that was enqueued already is answered again without enqueueing). Logs carry ids and counts
only, never the body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from hub.errors import ConflictError, field_problems
from hub.flows.posting.messages import Kind, PostingRequest, enqueue
from hub.flows.workforce.projects import Cause, MarginRequest, enqueue_projects
from hub.http_answers import json_answer, media_type, problem_answer, request_body, request_headers
from hub.model.time_expense import PsaId
from hub.observability import entry, logger, metrics
from hub.settings import PsaWebhookSettings, load
from hub.webhooks import SignatureError, signing_secrets, verify_standard_webhook

JSON_TYPES = frozenset({"application/json"})
MAX_ITEMS = 200
DELIVERY_TTL_SECONDS = 14 * 24 * 3600

EventType = Literal[
    "time_entries.approved",
    "time_entries.approval_withdrawn",
    "time_entries.updated",
    "expenses.approved",
    "expenses.approval_withdrawn",
    "expenses.updated",
]
AssignmentEventType = Literal[
    "assignments.created",
    "assignments.updated",
    "assignments.deleted",
    "allocations.updated",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ------------------------------------------------------------------------------ time entries and expenses


class ChangedEntry(_Strict):
    id: PsaId
    version: int | None = Field(default=None, ge=1)


class ChangedEntries(_Strict):
    items: list[ChangedEntry] = Field(min_length=1, max_length=MAX_ITEMS)


class ApprovalChange(_Strict):
    """The body. Validate with ``context={"collection": ...}`` to hold ``type`` to the route's collection."""

    type: EventType
    timestamp: AwareDatetime
    data: ChangedEntries

    @field_validator("type")
    @classmethod
    def _belongs_on_the_route(cls, value: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("collection")
        collection = value.split(".", 1)[0]
        if expected and collection != expected:
            raise ValueError(f"a {collection} event on the {expected} route; send {expected}.* events here")
        return value


def posting_requests(kind: Kind, change: ApprovalChange) -> list[PostingRequest]:
    """One pointer per entry, in the order first named; an entry named twice keeps the highest version."""
    newest: dict[str, int | None] = {}
    for item in change.data.items:
        if item.id not in newest or (item.version or 0) > (newest[item.id] or 0):
            newest[item.id] = item.version
    return [
        PostingRequest(kind=kind, psa_id=psa_id, source="webhook", seen_version=version)
        for psa_id, version in newest.items()
    ]


# ------------------------------------------------------------------------------------------ assignments


class ChangedAssignment(_Strict):
    id: PsaId
    project_id: PsaId = Field(alias="projectId")


class ChangedAssignments(_Strict):
    items: list[ChangedAssignment] = Field(min_length=1, max_length=MAX_ITEMS)


class AssignmentChange(_Strict):
    """The body of an assignment delivery."""

    type: AssignmentEventType
    timestamp: AwareDatetime
    data: ChangedAssignments


# What happened to the assignments, in the delivery manager's words: (one, several).
_CHANGED: dict[str, tuple[str, str]] = {
    "assignments.created": ("assignment {id} created in the PSA", "{n} assignments created in the PSA"),
    "assignments.updated": ("assignment {id} updated in the PSA", "{n} assignments changed in the PSA"),
    "assignments.deleted": ("assignment {id} removed in the PSA", "{n} assignments removed in the PSA"),
    "allocations.updated": (
        "daily hours of assignment {id} changed in the PSA",
        "daily hours of {n} assignments changed in the PSA",
    ),
}


def margin_requests(change: AssignmentChange) -> list[MarginRequest]:
    """One request per project, in the order first named, its cause naming the assignment when there is one
    (an assignment named twice counts once)."""
    by_project: dict[str, list[str]] = {}
    for item in change.data.items:
        named = by_project.setdefault(item.project_id, [])
        if item.id not in named:
            named.append(item.id)
    one, several = _CHANGED[change.type]
    return [
        MarginRequest(
            psa_project_id=project,
            cause=Cause(
                kind="assignment",
                detail=one.format(id=ids[0]) if len(ids) == 1 else several.format(n=len(ids)),
                psa_assignment_id=ids[0] if len(ids) == 1 else None,
                at=change.timestamp,
            ),
        )
        for project, ids in by_project.items()
    ]


# --------------------------------------------------------------------------------------- every route


class Work(BaseModel):
    """What a delivery asks the hub to enqueue: entries for the posting queue, projects for the margin queue."""

    model_config = ConfigDict(frozen=True)
    requests: list[PostingRequest] = []
    projects: list[MarginRequest] = []

    def correlation_ids(self) -> dict[str, str]:
        return {r.psa_id: r.correlation_id for r in self.requests} | {
            r.psa_project_id: r.correlation_id for r in self.projects
        }


class Delivery(Work):
    """What one verified webhook asks for; deduplicated on ``delivery_id`` (the ``webhook-id``)."""

    delivery_id: str


class Enqueued(BaseModel):
    accepted: int
    correlation_ids: dict[str, str]


class Read(NamedTuple):
    """A valid body: its event type, how many items it named, and what it asks for."""

    event_type: str
    items: int
    work: Work


@dataclass(frozen=True)
class Route:
    kind: str  # what the route's items are, for the logs
    read: Callable[[bytes], Read]  # the body, validated (pydantic's ValidationError naming the fields)


def _approvals(kind: Kind, collection: str) -> Route:
    def read(body: bytes) -> Read:
        change = ApprovalChange.model_validate_json(body, context={"collection": collection})
        return Read(change.type, len(change.data.items), Work(requests=posting_requests(kind, change)))

    return Route(kind=kind, read=read)


def _read_assignments(body: bytes) -> Read:
    change = AssignmentChange.model_validate_json(body)
    return Read(change.type, len(change.data.items), Work(projects=margin_requests(change)))


ROUTES = {
    "/v1/webhooks/psa/time-entries": _approvals("time-entry", "time_entries"),
    "/v1/webhooks/psa/expenses": _approvals("expense", "expenses"),
    "/v1/webhooks/psa/assignments": Route(kind="assignment", read=_read_assignments),
}


@dataclass
class WebhookDeps:
    secrets: Callable[[], list[str]]
    enqueue: Callable[[Delivery], Enqueued]  # once per delivery id
    max_body_bytes: int
    on_invoke: Callable[[Any], None] = lambda context: None


def build_deps(settings: PsaWebhookSettings, *, sqs: Any) -> WebhookDeps:
    """The real wiring around a given SQS client: secrets from Secrets Manager, deliveries enqueued once."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

    config = IdempotencyConfig(event_key_jmespath="delivery_id", expires_after_seconds=DELIVERY_TTL_SECONDS)

    @idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        config=config,
        output_serializer=PydanticSerializer(Enqueued),
        key_prefix="psa-webhook.delivery",
    )
    def enqueue_once(delivery: Delivery) -> Enqueued:
        sent = 0
        if delivery.requests:
            sent += enqueue(sqs, settings.posting_queue_url, delivery.requests)
        if delivery.projects:
            sent += enqueue_projects(sqs, settings.margin_queue_url, delivery.projects)
        return Enqueued(accepted=sent, correlation_ids=delivery.correlation_ids())

    def enqueue_delivery(delivery: Delivery) -> Enqueued:
        try:
            return enqueue_once(delivery=delivery)
        except IdempotencyAlreadyInProgressError as exc:  # the sender's retry raced its first attempt
            raise ConflictError("this delivery is being enqueued right now", system="hub") from exc

    return WebhookDeps(
        secrets=lambda: signing_secrets(parameters.get_secret(settings.psa_webhook_secret_arn, max_age=300)),
        enqueue=enqueue_delivery,
        max_body_bytes=settings.max_body_bytes,
        on_invoke=config.register_lambda_context,
    )


@functools.cache
def default_deps() -> WebhookDeps:
    from hub import aws

    return build_deps(load(PsaWebhookSettings), sqs=aws.client("sqs"))


def _reject(status: int, error: str, problems: list[dict[str, str]] | None = None) -> dict[str, Any]:
    metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
    logger.info(
        "webhook rejected",
        extra={"status": status, "error": error, "fields": [p["field"] for p in problems or []]},
    )
    return problem_answer(status, error, problems)


def _route(event: dict[str, Any]) -> Route | None:
    for key in ("resource", "path"):
        route = ROUTES.get((event.get(key) or "").rstrip("/"))
        if route is not None:
            return route
    return None


def _delivery(route: Route, body: bytes, headers: dict[str, str], deps: WebhookDeps) -> dict[str, Any]:
    try:
        delivery_id = verify_standard_webhook(body, headers, deps.secrets())
    except SignatureError as exc:
        return _reject(401, f"unverified sender: {exc}")
    try:
        read = route.read(body)
    except ValidationError as exc:
        return _reject(400, "malformed body", field_problems(exc))
    work = read.work
    enqueued = deps.enqueue(Delivery(delivery_id=delivery_id, requests=work.requests, projects=work.projects))
    metrics.add_metric(name="PsaWebhookItems", unit="Count", value=enqueued.accepted)
    logger.info(
        "delivery accepted",
        extra={
            "delivery_id": delivery_id,
            "kind": route.kind,
            "event_type": read.event_type,
            "items": read.items,
            "accepted": enqueued.accepted,
            "psa_ids": list(enqueued.correlation_ids),
        },
    )
    return json_answer(202, {"accepted": enqueued.accepted, "correlationIds": enqueued.correlation_ids})


@entry(PsaWebhookSettings, correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: Any, deps: WebhookDeps | None = None) -> dict[str, Any]:
    deps = deps or default_deps()
    deps.on_invoke(context)
    route = _route(event)
    if route is None:
        return _reject(404, f"no PSA webhook here; POST to one of {', '.join(sorted(ROUTES))}")
    headers = request_headers(event)
    try:
        body = request_body(event)
    except ValueError:
        return _reject(400, "body is not valid base64", [{"field": "body", "problem": "invalid base64"}])
    if len(body) > deps.max_body_bytes:
        return _reject(413, f"body of {len(body)} bytes exceeds the {deps.max_body_bytes}-byte limit")
    content_type = media_type(headers)
    if content_type not in JSON_TYPES:
        return _reject(415, f"unsupported content type {content_type or '(none)'}; send application/json")
    try:
        return _delivery(route, body, headers, deps)
    except ConflictError as exc:  # a retry racing its first attempt: not a fault, the sender tries again
        logger.info("delivery already being enqueued", extra={"error": exc.message})
        answer = json_answer(409, {"error": f"{exc.message}; retry later"})
        answer["headers"]["Retry-After"] = "5"
        return answer
    except Exception:  # the sender retries on 5xx; a delivery that was enqueued is not enqueued again
        logger.exception("could not enqueue the delivery")
        metrics.add_metric(name="WebhookErrors", unit="Count", value=1)
        return json_answer(503, {"error": "temporarily unable to enqueue the delivery; retry later"})
