"""The PSA assignment webhook against moto: verify, validate, enqueue one margin request per project, answer
202 (or why not)."""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pytest

from functions.psa_webhook.handler import WebhookDeps, build_deps, handler
from hub.flows.workforce.projects import MarginRequest
from hub.settings import PsaWebhookSettings, load
from tests.support.aws import REGION, drain, lambda_context
from tests.support.events import load_json
from tests.support.webhooks import OLD_SECRET, TEST_SECRET, api_event, signed_headers

ASSIGNMENTS = "/v1/webhooks/psa/assignments"
TIME_ENTRIES = "/v1/webhooks/psa/time-entries"
SEEN_AT = dt.datetime(2026, 11, 30, 18, 2, 11, tzinfo=dt.UTC)  # in tests/events/psa_assignments_updated.json


def _encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def _updated(**changes) -> dict:
    return {**load_json("psa_assignments_updated.json"), **changes}


def _items(*items: dict, type: str = "assignments.updated") -> dict:
    return _updated(type=type, data={"items": list(items)})


def _send(body: bytes, headers: dict[str, str], path: str = ASSIGNMENTS, deps: WebhookDeps | None = None):
    return handler(api_event(body, headers, path=path), lambda_context(), deps=deps)


def _answer(answer: dict) -> dict:
    return json.loads(answer["body"])


def _fields(answer: dict) -> list[str]:
    return [p["field"] for p in _answer(answer)["problems"]]


def _repricing(hub) -> dict[str, MarginRequest]:
    """What the margin consumer will read: each message parsed as it parses it, by project."""
    messages = drain(hub.margin_queue_url)
    requests = {}
    for message in messages:
        request = MarginRequest.model_validate_json(message["Body"])
        assert message["MessageAttributes"]["correlationId"]["StringValue"] == request.correlation_id
        assert request.psa_project_id not in requests, "a project was queued twice"
        requests[request.psa_project_id] = request
    return requests


def test_signed_assignment_changes_enqueue_one_margin_request_per_project(hub):
    body = _encode(_updated())

    answer = _send(body, signed_headers(body))

    assert answer["statusCode"] == 202
    assert _answer(answer) == {
        "accepted": 2,
        "correlationIds": {"40233": "margin:40233", "40251": "margin:40251"},
    }
    queued = _repricing(hub)
    assert set(queued) == {"40233", "40251"}
    both = queued["40233"].cause
    assert (both.kind, both.detail, both.psa_assignment_id, both.at) == (
        "assignment",
        "2 assignments changed in the PSA",
        None,  # two assignments: the cause names neither
        SEEN_AT,
    )
    one = queued["40251"].cause
    assert (one.kind, one.detail, one.psa_assignment_id, one.at) == (
        "assignment",
        "assignment 907 updated in the PSA",
        "907",
        SEEN_AT,
    )
    assert drain(hub.posting_queue_url) == []  # nothing for the posting consumer


@pytest.mark.parametrize(
    ("event_type", "one", "several"),
    [
        ("assignments.created", "assignment 812 created in the PSA", "2 assignments created in the PSA"),
        ("assignments.deleted", "assignment 812 removed in the PSA", "2 assignments removed in the PSA"),
        (
            "allocations.updated",
            "daily hours of assignment 812 changed in the PSA",
            "daily hours of 2 assignments changed in the PSA",
        ),
    ],
)
def test_each_kind_of_assignment_change_is_explained_to_the_delivery_manager(hub, event_type, one, several):
    body = _encode(
        _items(
            {"id": "812", "projectId": "40233"},
            {"id": "812", "projectId": "40233"},  # named twice: one assignment
            {"id": "813", "projectId": "40251"},
            {"id": "814", "projectId": "40251"},
            type=event_type,
        )
    )

    assert _send(body, signed_headers(body))["statusCode"] == 202

    queued = _repricing(hub)
    assert queued["40233"].cause.detail == one and queued["40233"].cause.psa_assignment_id == "812"
    assert queued["40251"].cause.detail == several and queued["40251"].cause.psa_assignment_id is None


def test_redelivered_assignment_webhook_is_answered_again_and_enqueues_nothing_new(hub):
    body = _encode(_updated())
    headers = signed_headers(body, msg_id="msg_psa_assignments_redelivered")
    first = _send(body, headers)
    assert len(_repricing(hub)) == 2

    second = _send(body, headers)

    assert first["statusCode"] == second["statusCode"] == 202
    assert _answer(second) == _answer(first)
    assert _repricing(hub) == {}


def test_the_same_change_in_a_new_delivery_is_enqueued_again(hub):
    body = _encode(_updated())
    assert _send(body, signed_headers(body))["statusCode"] == 202
    assert _send(body, signed_headers(body))["statusCode"] == 202  # a new webhook-id: a new delivery
    assert len(drain(hub.margin_queue_url)) == 4


@pytest.mark.parametrize("mutate", ["tamper", "wrong-secret", "unsigned"])
def test_unverified_sender_gets_401_and_nothing_is_enqueued(hub, mutate):
    body = _encode(_updated())
    headers = signed_headers(body, OLD_SECRET if mutate == "wrong-secret" else TEST_SECRET)
    if mutate == "tamper":
        body = body.replace(b"40251", b"40252")
    if mutate == "unsigned":
        del headers["webhook-signature"]

    answer = _send(body, headers)

    assert answer["statusCode"] == 401
    assert "unverified sender" in _answer(answer)["error"]
    assert _repricing(hub) == {}


def test_unverified_sender_is_refused_before_the_body_is_read(hub):
    body = b'{"type": "assignments.updated", "data": {"items": [{"id": "not an id"}]}}'
    answer = _send(body, signed_headers(body, OLD_SECRET))
    assert answer["statusCode"] == 401
    assert "problems" not in _answer(answer)  # the body was never validated


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_items({"id": "812"}), "data.items.0.projectId"),
        (_items({"id": "812", "projectId": 40233}), "data.items.0.projectId"),  # ids are strings
        (_items({"id": "812", "projectId": "40 233"}), "data.items.0.projectId"),
        (_items({"id": "8" * 65, "projectId": "40233"}), "data.items.0.id"),
        (_items({"id": "812", "projectId": "40233", "hours": 7.5}), "data.items.0.hours"),
        (_items(), "data.items"),
        (_items(*({"id": str(n), "projectId": "40233"} for n in range(201))), "data.items"),
        (_updated(type="assignments.archived"), "type"),
        (_updated(type="time_entries.approved"), "type"),  # a time-entry event on the assignment route
        (_updated(timestamp="2026-11-30T18:02:11"), "timestamp"),  # no offset: which zone?
        ({k: v for k, v in _updated().items() if k != "timestamp"}, "timestamp"),
    ],
)
def test_malformed_assignment_delivery_gets_400_naming_the_field_and_nothing_is_enqueued(hub, body, field):
    raw = _encode(body)

    answer = _send(raw, signed_headers(raw))

    assert answer["statusCode"] == 400
    assert _answer(answer)["error"] == "malformed body"
    assert _fields(answer) == [field]
    assert _repricing(hub) == {}


def test_200_assignments_are_accepted_one_request_per_project(hub):
    body = _encode(_items(*({"id": str(n), "projectId": f"p{n % 12}"} for n in range(200))))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202 and _answer(answer)["accepted"] == 12
    assert len(_repricing(hub)) == 12


def test_an_assignment_event_on_the_time_entries_route_gets_400_naming_type(hub):
    body = _encode(_updated())
    answer = _send(body, signed_headers(body), path=TIME_ENTRIES)
    assert answer["statusCode"] == 400 and "type" in _fields(answer)
    assert drain(hub.posting_queue_url) == [] and _repricing(hub) == {}


class FlakySqs:
    """The moto SQS client, except that while ``down`` SendMessageBatch refuses every entry (as SQS can)."""

    def __init__(self) -> None:
        self.real = boto3.client("sqs", region_name=REGION)
        self.down = True

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803 (boto3's names)
        if self.down:
            failed = [{"Id": e["Id"], "SenderFault": False, "Code": "ServiceUnavailable"} for e in Entries]
            return {"Successful": [], "Failed": failed}
        return self.real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_margin_queue_refusing_the_messages_gets_503_and_the_retried_delivery_is_enqueued(hub):
    sqs = FlakySqs()
    deps = build_deps(load(PsaWebhookSettings), sqs=sqs)
    body = _encode(_updated())
    headers = signed_headers(body, msg_id="msg_psa_assignments_retried")
    assert _send(body, headers, deps=deps)["statusCode"] == 503
    assert _repricing(hub) == {}

    sqs.down = False  # the sender retries the same delivery (same webhook-id) later
    answer = _send(body, headers, deps=deps)

    assert answer["statusCode"] == 202 and _answer(answer)["accepted"] == 2
    assert set(_repricing(hub)) == {"40233", "40251"}


def test_logs_carry_ids_and_counts_not_the_body(hub, monkeypatch):
    from hub.observability import logger

    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    load.cache_clear()
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # read exactly what the function writes
    try:
        accepted = _encode(_updated())
        _send(accepted, signed_headers(accepted))
        personal = _encode(_items({"id": "812", "projectId": "40233", "assignee": "Jane Doe"}))
        rejected = _send(personal, signed_headers(personal))
    finally:
        logger.registered_handler.setStream(previous)
    logs = buffer.getvalue()
    assert "delivery accepted" in logs and "webhook rejected" in logs  # the logs are really read here
    assert '"kind":"assignment"' in logs and "40233" in logs  # ids and counts are what the logs carry
    assert "data.items.0.assignee" in logs  # and the names of the fields at fault
    for content in ("2026-11-30T18:02:11", "Jane Doe", '"items": ['):
        assert content not in logs
        assert content not in rejected["body"]
