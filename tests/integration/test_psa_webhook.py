"""The PSA approval webhook against moto: verify, validate, enqueue one pointer per entry, answer 202 (or why not)."""

from __future__ import annotations

import base64
import io
import json
import time

import boto3
import pytest

from functions.psa_webhook.handler import WebhookDeps, build_deps, handler
from hub.flows.posting.messages import correlation_id_for
from hub.settings import PsaWebhookSettings, load
from tests.support.aws import REGION, drain, lambda_context
from tests.support.events import load_json
from tests.support.webhooks import OLD_SECRET, TEST_SECRET, api_event, signed_headers

TIME_ENTRIES = "/v1/webhooks/psa/time-entries"
EXPENSES = "/v1/webhooks/psa/expenses"
APPROVED_IDS = ["608211447", "608211448", "608211452"]  # in tests/events/psa_time_entries_approved.json


def _encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def _approved(**changes) -> dict:
    return {**load_json("psa_time_entries_approved.json"), **changes}


def _items(*items: dict) -> dict:
    return _approved(data={"items": list(items)})


def _send(body: bytes, headers: dict[str, str], path: str = TIME_ENTRIES, deps: WebhookDeps | None = None):
    return handler(api_event(body, headers, path=path), lambda_context(), deps=deps)


def _answer(answer: dict) -> dict:
    return json.loads(answer["body"])


def _posted(hub) -> list[dict]:
    return [json.loads(m["Body"]) for m in drain(hub.posting_queue_url)]


def _fields(answer: dict) -> list[str]:
    return [p["field"] for p in _answer(answer)["problems"]]


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


def test_approved_time_entries_are_answered_202_with_one_pointer_message_per_entry(hub):
    body = _encode(_approved())
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202
    expected_ids = {psa_id: correlation_id_for("time-entry", psa_id) for psa_id in APPROVED_IDS}
    assert _answer(answer) == {"accepted": 3, "correlationIds": expected_ids}
    messages = drain(hub.posting_queue_url)
    assert sorted(json.loads(m["Body"])["psaId"] for m in messages) == APPROVED_IDS
    for message in messages:
        request = json.loads(message["Body"])
        assert message["MessageAttributes"]["correlationId"]["StringValue"] == expected_ids[request["psaId"]]
    by_id = {json.loads(m["Body"])["psaId"]: json.loads(m["Body"]) for m in messages}
    assert by_id["608211447"] == {
        "kind": "time-entry",
        "psaId": "608211447",
        "source": "webhook",
        "seenVersion": 3,
    }
    assert "seenVersion" not in by_id["608211452"]  # the sender did not say which version it saw


def test_withdrawn_expense_approval_is_enqueued_for_the_consumer_to_see(hub):
    body = _encode(load_json("psa_expenses_withdrawn.json"))
    answer = _send(body, signed_headers(body), path=EXPENSES)
    assert answer["statusCode"] == 202
    assert _answer(answer)["correlationIds"] == {"91355012": correlation_id_for("expense", "91355012")}
    assert _posted(hub) == [{"kind": "expense", "psaId": "91355012", "source": "webhook", "seenVersion": 5}]


def test_an_entry_named_twice_in_one_delivery_is_enqueued_once_with_the_newest_version(hub):
    body = _encode(_items({"id": "4711", "version": 3}, {"id": "4711", "version": 5}, {"id": "4711"}))
    answer = _send(body, signed_headers(body))
    assert _answer(answer)["accepted"] == 1
    assert _posted(hub) == [{"kind": "time-entry", "psaId": "4711", "source": "webhook", "seenVersion": 5}]


def test_redelivered_webhook_is_answered_again_and_enqueues_nothing_new(hub):
    body = _encode(_approved())
    headers = signed_headers(body, msg_id="msg_psa_redelivered")
    first = _send(body, headers)
    assert len(_posted(hub)) == 3
    second = _send(body, headers)
    assert first["statusCode"] == second["statusCode"] == 202
    assert _answer(second) == _answer(first)
    assert _posted(hub) == []


def test_withdrawal_after_approval_of_the_same_entry_is_a_new_delivery_and_enqueued_again(hub):
    approved = _encode(_items({"id": "4711", "version": 3}))
    withdrawn = _encode(_approved(type="time_entries.approval_withdrawn", data={"items": [{"id": "4711"}]}))
    assert _send(approved, signed_headers(approved))["statusCode"] == 202
    assert _send(withdrawn, signed_headers(withdrawn))["statusCode"] == 202
    assert [m["psaId"] for m in _posted(hub)] == ["4711", "4711"]


@pytest.mark.parametrize("mutate", ["tamper", "wrong-secret", "unsigned"])
def test_unverified_sender_gets_401_and_nothing_is_enqueued(hub, mutate):
    body = _encode(_approved())
    headers = signed_headers(body, OLD_SECRET if mutate == "wrong-secret" else TEST_SECRET)
    if mutate == "tamper":
        body = body.replace(b"608211447", b"608211449")
    if mutate == "unsigned":
        del headers["webhook-signature"]
    answer = _send(body, headers)
    assert answer["statusCode"] == 401
    assert "unverified sender" in _answer(answer)["error"]
    assert _posted(hub) == []


def test_stale_delivery_gets_401_and_nothing_is_enqueued(hub):
    body = _encode(_approved())
    answer = _send(body, signed_headers(body, timestamp=int(time.time()) - 3600))
    assert answer["statusCode"] == 401
    assert "window" in _answer(answer)["error"]
    assert _posted(hub) == []


def test_unverified_sender_is_refused_before_the_body_is_read(hub):
    body = b"not json at all"
    headers = signed_headers(body, OLD_SECRET)
    assert _send(body, headers)["statusCode"] == 401


def test_time_entry_event_on_the_expenses_route_gets_400_naming_type(hub):
    body = _encode(_approved())
    answer = _send(body, signed_headers(body), path=EXPENSES)
    assert answer["statusCode"] == 400
    assert _fields(answer) == ["type"]
    assert _posted(hub) == []


def test_unknown_event_type_gets_400_naming_type(hub):
    body = _encode(_approved(type="time_entries.deleted"))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400 and _fields(answer) == ["type"]


def test_201_entries_get_400_naming_the_items_and_nothing_is_enqueued(hub):
    body = _encode(_items(*({"id": str(1000 + n)} for n in range(201))))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400
    assert _fields(answer) == ["data.items"]
    assert _posted(hub) == []


def test_200_entries_are_all_enqueued(hub):
    body = _encode(_items(*({"id": str(1000 + n), "version": 1} for n in range(200))))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202 and _answer(answer)["accepted"] == 200
    assert len(_posted(hub)) == 200


def test_empty_delivery_gets_400_naming_the_items(hub):
    body = _encode(_items())
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400 and _fields(answer) == ["data.items"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"id": "not an id"}, "data.items.0.id"),
        ({"id": 4711}, "data.items.0.id"),  # ids are strings, as the PSA's API gives them
        ({"id": "4711", "version": 0}, "data.items.0.version"),
        ({"id": "4711", "version": "3"}, "data.items.0.version"),
        ({"id": "4711", "hours": 7.5}, "data.items.0.hours"),
    ],
)
def test_bad_entry_gets_400_naming_the_field_and_nothing_is_enqueued(hub, item, field):
    body = _encode(_items(item))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400
    assert _fields(answer) == [field]
    assert _posted(hub) == []


def test_body_that_is_not_json_gets_400(hub):
    body = b'{"type": "time_entries.approved", '
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400 and _fields(answer) == ["body"]


def test_base64_encoded_body_is_accepted(hub):
    body = _encode(_approved())
    event = api_event(base64.b64encode(body), signed_headers(body), path=TIME_ENTRIES)
    event["isBase64Encoded"] = True
    assert handler(event, lambda_context())["statusCode"] == 202
    assert len(_posted(hub)) == 3


def test_wrong_content_type_gets_415(hub):
    body = _encode(_approved())
    headers = signed_headers(body)
    headers["content-type"] = "text/plain"
    answer = _send(body, headers)
    assert answer["statusCode"] == 415
    assert _posted(hub) == []


def test_body_over_the_limit_gets_413(hub):
    settings = load(PsaWebhookSettings).model_copy(update={"max_body_bytes": 64})
    deps = build_deps(settings, sqs=boto3.client("sqs", region_name=REGION))
    body = _encode(_approved())
    answer = _send(body, signed_headers(body), deps=deps)
    assert answer["statusCode"] == 413
    assert _posted(hub) == []


def test_unknown_path_gets_404(hub):
    body = _encode(_approved())
    answer = _send(body, signed_headers(body), path="/v1/webhooks/psa/invoices")
    assert answer["statusCode"] == 404
    assert _posted(hub) == []


def test_queue_refusing_the_messages_gets_503_and_the_retried_delivery_is_enqueued(hub):
    sqs = FlakySqs()
    deps = build_deps(load(PsaWebhookSettings), sqs=sqs)
    body = _encode(_approved())
    headers = signed_headers(body, msg_id="msg_psa_retried")
    assert _send(body, headers, deps=deps)["statusCode"] == 503
    assert _posted(hub) == []
    sqs.down = False  # the sender retries the same delivery (same webhook-id) later
    answer = _send(body, headers, deps=deps)
    assert answer["statusCode"] == 202 and _answer(answer)["accepted"] == 3
    assert sorted(m["psaId"] for m in _posted(hub)) == APPROVED_IDS


def test_a_broken_signing_secret_is_a_503_not_the_senders_fault(hub):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # the handler caches the secret for five minutes
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=hub.psa_webhook_secret_arn, SecretString=json.dumps({"secrets": ["whsec_%%%"]})
    )
    body = _encode(_approved())
    try:
        assert _send(body, signed_headers(body))["statusCode"] == 503
    finally:
        parameters.clear_caches()
    assert _posted(hub) == []


def test_logs_carry_ids_and_counts_not_the_body(hub, monkeypatch):
    from hub.observability import logger

    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    load.cache_clear()
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # read exactly what the function writes
    try:
        accepted = _encode(_approved())
        _send(accepted, signed_headers(accepted))
        personal = _encode(
            _items({"id": "jane.doe@example.com"}, {"id": "4712", "notes": "Jane Doe, sick leave"})
        )
        rejected = _send(personal, signed_headers(personal))
    finally:
        logger.registered_handler.setStream(previous)
    logs = buffer.getvalue()
    assert "delivery accepted" in logs and "webhook rejected" in logs  # the logs are really read here
    assert "608211447" in logs  # ids are what the logs carry
    assert "data.items.1.notes" in logs  # and the names of the fields at fault
    for content in ("2026-11-30T18:02:11", "jane.doe", "Jane Doe", "sick leave", '"items": ['):
        assert content not in logs
        assert content not in rejected["body"]


class RetryDuringSend(FlakySqs):
    """While the first attempt is sending, the sender's retry of the same delivery arrives."""

    def __init__(self, retry) -> None:
        super().__init__()
        self.down = False
        self.retry = retry
        self.answers: list[dict] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:  # noqa: N803 (boto3's names)
        if not self.answers:
            self.answers.append(self.retry())
        return super().send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_a_retry_racing_its_first_attempt_is_answered_409_and_not_counted_as_an_error(hub, capsys):
    body = _encode(_approved())
    headers = signed_headers(body, msg_id="msg_psa_racing")
    sqs = RetryDuringSend(lambda: _send(body, headers, deps=deps))
    deps = build_deps(load(PsaWebhookSettings), sqs=sqs)

    first = _send(body, headers, deps=deps)

    (racing,) = sqs.answers
    assert racing["statusCode"] == 409 and racing["headers"]["Retry-After"] == "5"
    assert first["statusCode"] == 202
    assert sorted(m["psaId"] for m in _posted(hub)) == APPROVED_IDS  # once
    logs = capsys.readouterr().out
    assert '"level":"ERROR"' not in logs and "WebhookErrors" not in logs
