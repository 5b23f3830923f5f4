"""The webhook handler against moto: verify, validate, record, enqueue, answer 202 (or why not)."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from functions.crm_webhook.handler import handler
from hub.ledger import Ledger
from tests.support.aws import REGION, drain, lambda_context
from tests.support.events import load_json, load_text
from tests.support.webhooks import OLD_SECRET, TEST_SECRET, api_event, change_body, signed_headers


def _send(body: bytes, headers: dict[str, str]) -> dict:
    return handler(api_event(body, headers), lambda_context())


def _ledger(hub) -> Ledger:
    return Ledger(hub.ledger_table)


def test_closed_won_webhook_is_recorded_enqueued_and_answered_202(hub):
    body = change_body(load_json("opportunity_closed_won.json"))
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202
    cid = json.loads(answer["body"])["correlationId"]
    messages = drain(hub.intake_queue_url)
    assert [json.loads(m["Body"])["correlationId"] for m in messages] == [cid]
    assert json.loads(messages[0]["Body"])["opportunity"]["crm_id"] == "0065g00000AbCdEAAV"
    tx = _ledger(hub).get(cid)
    assert tx["status"] == "QUEUED" and tx["subject"] == "0065g00000AbCdEAAV"
    assert len(tx["deliveries"]) == 1


def test_same_delivery_replayed_is_answered_with_the_same_correlation_id_and_enqueued_once(hub):
    body = change_body(load_json("opportunity_closed_won.json"))
    headers = signed_headers(body, msg_id="msg_replayed")
    first, second = _send(body, headers), _send(body, headers)
    assert first["statusCode"] == second["statusCode"] == 202
    assert json.loads(first["body"])["correlationId"] == json.loads(second["body"])["correlationId"]
    assert len(drain(hub.intake_queue_url)) == 1


def test_same_deal_in_distinct_deliveries_is_one_transaction_enqueued_once(hub):
    record = load_json("opportunity_closed_won.json")
    ids = set()
    for _ in range(3):
        body = change_body(record)
        ids.add(json.loads(_send(body, signed_headers(body))["body"])["correlationId"])
    assert len(ids) == 1
    assert len(drain(hub.intake_queue_url)) == 1
    assert len(_ledger(hub).get(ids.pop())["deliveries"]) == 3


def test_concurrent_deliveries_of_one_deal_make_one_transaction(hub):
    record = load_json("opportunity_closed_won.json")
    answers: list[dict] = []

    def deliver() -> None:
        body = change_body(record)
        answers.append(_send(body, signed_headers(body)))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a["statusCode"] for a in answers} == {202}
    assert len({json.loads(a["body"])["correlationId"] for a in answers}) == 1
    # a racing duplicate may enqueue too; the execution name makes the second one a no-op downstream
    assert 1 <= len(drain(hub.intake_queue_url)) <= 4


def test_other_changes_are_acknowledged_and_recorded_as_ignored(hub):
    record = load_json("opportunity_closed_won.json")
    record["StageName"] = "Negotiation"
    body = change_body(record, changed=["StageName", "Amount"])
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202
    assert json.loads(answer["body"])["status"] == "IGNORED"
    assert drain(hub.intake_queue_url) == []


def test_closed_won_record_without_a_stage_change_is_ignored(hub):
    body = change_body(load_json("opportunity_closed_won.json"), changed=["Amount"])
    assert json.loads(_send(body, signed_headers(body))["body"])["status"] == "IGNORED"
    assert drain(hub.intake_queue_url) == []


@pytest.mark.parametrize("mutate", ["tamper", "wrong-secret", "stale", "unsigned"])
def test_unverified_sender_gets_401_and_nothing_is_recorded(hub, mutate):
    body = change_body(load_json("opportunity_closed_won.json"))
    headers = signed_headers(
        body,
        OLD_SECRET if mutate == "wrong-secret" else TEST_SECRET,
        timestamp=1_000_000_000 if mutate == "stale" else None,
    )
    if mutate == "tamper":
        body = body.replace(b"120000.0", b"1.0")
    if mutate == "unsigned":
        del headers["webhook-signature"]
    answer = _send(body, headers)
    assert answer["statusCode"] == 401
    assert "unverified sender" in json.loads(answer["body"])["error"]
    assert drain(hub.intake_queue_url) == []
    assert boto3.client("dynamodb", region_name=REGION).scan(TableName=hub.ledger_table)["Count"] == 0


def test_malformed_body_gets_400_naming_the_field(hub):
    body = json.dumps({"type": "opportunity.changed", "data": {"record": {}}}).encode()
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400
    fields = [p["field"] for p in json.loads(answer["body"])["problems"]]
    assert "data.changedFields" in fields
    assert drain(hub.intake_queue_url) == []


def test_verified_closed_won_record_with_a_bad_value_is_recorded_for_the_flow_to_park(hub):
    record = load_json("opportunity_closed_won.json")
    record["Amount"] = "a lot"
    body = change_body(record)
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 202
    messages = [json.loads(m["Body"]) for m in drain(hub.intake_queue_url)]
    assert len(messages) == 1 and messages[0]["opportunity"]["needs_hydration"] is True
    assert messages[0]["opportunity"]["crm_id"] == "0065g00000AbCdEAAV"


def test_record_without_a_usable_id_gets_400_naming_the_field(hub):
    record = load_json("opportunity_closed_won.json")
    record["Id"] = "not an id"
    body = change_body(record)
    answer = _send(body, signed_headers(body))
    assert answer["statusCode"] == 400
    problems = json.loads(answer["body"])["problems"]
    assert any(p["field"].startswith("data.record.") for p in problems)
    assert drain(hub.intake_queue_url) == []


def test_a_broken_signing_secret_is_a_503_not_the_senders_fault(hub):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # the handler caches the secret for five minutes
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=hub.webhook_secret_arn, SecretString=json.dumps({"secrets": ["whsec_%%%"]})
    )
    body = change_body(load_json("opportunity_closed_won.json"))
    try:
        assert _send(body, signed_headers(body))["statusCode"] == 503
    finally:
        parameters.clear_caches()


def test_wrong_content_type_gets_415(hub):
    body = b"StageName=Closed Won"
    headers = signed_headers(body)
    headers["content-type"] = "application/x-www-form-urlencoded"
    assert _send(body, headers)["statusCode"] == 415


def test_body_over_the_limit_gets_413(hub, monkeypatch):
    body = change_body(load_json("opportunity_closed_won.json"))
    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    from hub.settings import load

    load.cache_clear()
    from functions.crm_webhook import handler as module

    module.default_deps.cache_clear()
    try:
        assert _send(body, signed_headers(body))["statusCode"] == 413
    finally:
        module.default_deps.cache_clear()


def test_outbound_message_is_acked_and_each_notification_enqueued(hub):
    body = load_text("outbound_message.xml").encode()
    answer = _send(body, {"content-type": "text/xml; charset=utf-8"})
    assert answer["statusCode"] == 200 and "<Ack>true</Ack>" in answer["body"]
    messages = [json.loads(m["Body"]) for m in drain(hub.intake_queue_url)]
    assert sorted(m["opportunity"]["crm_id"] for m in messages) == [
        "0065g00000OmOm1AAA",
        "0065g00000OmOm2AAA",
    ]
    assert all(m["opportunity"]["needs_hydration"] for m in messages)


def test_outbound_message_redelivered_is_acked_and_not_enqueued_again(hub):
    body = load_text("outbound_message.xml").encode()
    _send(body, {"content-type": "text/xml"})
    drain(hub.intake_queue_url)
    answer = _send(body, {"content-type": "text/xml"})
    assert "<Ack>true</Ack>" in answer["body"]
    assert drain(hub.intake_queue_url) == []


def test_outbound_message_from_another_org_is_refused(hub):
    body = load_text("outbound_message.xml").replace("00D000000000001AAA", "00D000000000009ZZZ").encode()
    answer = _send(body, {"content-type": "text/xml"})
    assert answer["statusCode"] == 401 and "Fault" in answer["body"]
    assert drain(hub.intake_queue_url) == []


def test_logs_carry_ids_and_outcomes_not_customer_data(hub, monkeypatch):
    import io

    from hub.observability import logger
    from hub.settings import load

    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    load.cache_clear()
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # read exactly what the function writes
    try:
        record = load_json("opportunity_closed_won.json")
        body = change_body(record)
        _send(body, signed_headers(body))
        _send(load_text("outbound_message.xml").encode(), {"content-type": "text/xml"})
    finally:
        logger.registered_handler.setStream(previous)
    logs = buffer.getvalue()
    assert "delivery accepted" in logs  # the logs are really read here
    for personal in (
        "Northwind Traders",
        "Northwind ERP roll-out",
        "Contoso",
        "120000",
        "Discovery and design",
    ):
        assert personal not in logs
