"""GET /v1/transactions/{correlationId} through the Powertools resolver, against the moto ledger."""

from __future__ import annotations

import json

from functions.transactions_api.handler import handler
from hub.ledger import Ledger, Status
from tests.support.aws import lambda_context

CID = "3f1c9d3e-8b1a-5c1e-9d2f-0a1b2c3d4e5f"


def _get(correlation_id: str) -> dict:
    path = f"/v1/transactions/{correlation_id}"
    event = {
        "resource": "/v1/transactions/{correlationId}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {},
        "pathParameters": {"correlationId": correlation_id},
        "queryStringParameters": None,
        "requestContext": {
            "requestId": "r-1",
            "stage": "v1",
            "resourcePath": "/v1/transactions/{correlationId}",
            "httpMethod": "GET",
            "path": f"/v1{path}",
        },
        "body": None,
        "isBase64Encoded": False,
    }
    return handler(event, lambda_context("pshub-transactions-api"))


def test_transaction_is_returned_with_every_checkpoint_in_order(hub):
    ledger = Ledger(hub.ledger_table)
    ledger.open(
        CID,
        flow="project-initiation",
        business_key="opportunity-won:0065g00000AbCdEAAV",
        subject="0065g00000AbCdEAAV",
        source="webhook",
    )
    ledger.record_delivery(CID, "msg_1", channel="webhook")
    ledger.checkpoint(CID, "validate", "ok", attempt=1)
    ledger.checkpoint(CID, "enrich", "ok", attempt=1, detail={"erpSystem": "netsuite-us"})
    ledger.set_status(CID, Status.PARKED, reason="DataValidationError: missing legal entity")
    answer = _get(CID)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["status"] == "PARKED" and body["reason"].endswith("missing legal entity")
    assert [c["step"] for c in body["checkpoints"]] == ["validate", "enrich"]
    assert body["checkpoints"][1]["detail"] == {"erpSystem": "netsuite-us"}
    assert body["deliveries"][0]["delivery_id"] == "msg_1"
    assert "pk" not in body and "gsi1pk" not in body


def test_unknown_transaction_is_404(hub):
    answer = _get(CID)
    assert answer["statusCode"] == 404 and CID in json.loads(answer["body"])["error"]


def test_malformed_correlation_id_is_400_naming_the_parameter(hub):
    answer = _get("not-a-uuid")
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["problems"][0]["field"] == "correlationId"


def test_ledger_finds_transactions_by_business_key_and_status(hub):
    ledger = Ledger(hub.ledger_table)
    ledger.open(
        CID, flow="project-initiation", business_key="opportunity-won:X", subject="X", source="webhook"
    )
    ledger.set_status(CID, Status.PARKED, reason="r")
    assert [t["correlation_id"] for t in ledger.by_business_key("opportunity-won:X")] == [CID]
    assert [t["correlation_id"] for t in ledger.by_status(Status.PARKED)] == [CID]
    assert ledger.by_status(Status.QUEUED) == []
