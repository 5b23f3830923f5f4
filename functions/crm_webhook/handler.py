"""POST /v1/webhooks/crm/opportunities: verify, validate, record, enqueue, answer fast.

Two channels share the route, told apart by content type:
- ``application/json``: a Standard Webhooks-signed opportunity change -> ``202 {"correlationId"}``;
- ``text/xml``: a Salesforce Outbound Message (SOAP, up to 100 notifications) -> the SOAP ``Ack``.
Bad input is answered with what is wrong and nothing is enqueued: 401 unverified sender, 400 malformed body
(the problems name the fields), 413 too large, 415 wrong content type. Nothing is processed here beyond
recording and enqueueing; the project is built by the project-initiation state machine.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import field_problems
from hub.flows.initiation.intake import (
    Accepted,
    Delivery,
    OpportunityChanged,
    accept,
    minimal_opportunity,
)
from hub.http_answers import json_answer, media_type, problem_answer, request_body, request_headers
from hub.observability import entry, logger, metrics
from hub.settings import CrmWebhookSettings, load
from hub.webhooks import (
    MalformedBody,
    SignatureError,
    parse_outbound_message,
    signing_secrets,
    soap_ack,
    soap_fault,
    verify_standard_webhook,
)

JSON_TYPES = frozenset({"application/json"})
SOAP_TYPES = frozenset({"text/xml", "application/soap+xml"})


@dataclass
class WebhookDeps:
    secrets: Callable[[], list[str]]
    accept: Callable[[Delivery], Accepted]
    org_id: str
    max_body_bytes: int
    on_invoke: Callable[[Any], None] = lambda context: None


@functools.cache
def default_deps() -> WebhookDeps:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from hub import aws
    from hub.ledger import Ledger

    settings = load(CrmWebhookSettings)
    ledger = Ledger(settings.ledger_table)
    sqs = aws.client("sqs")

    def enqueue(message: dict[str, Any]) -> None:
        sqs.send_message(
            QueueUrl=settings.intake_queue_url,
            MessageBody=json.dumps(message),
            MessageAttributes={
                "correlationId": {"DataType": "String", "StringValue": message["correlationId"]}
            },
        )

    config = IdempotencyConfig(event_key_jmespath="delivery_id", expires_after_seconds=14 * 24 * 3600)

    @idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        config=config,
        key_prefix="crm-webhook.delivery",
    )
    def accept_once(delivery: Delivery) -> dict[str, Any]:
        return accept(delivery, ledger=ledger, enqueue=enqueue).model_dump()

    return WebhookDeps(
        secrets=lambda: signing_secrets(parameters.get_secret(settings.webhook_secret_arn, max_age=300)),
        accept=lambda delivery: Accepted.model_validate(accept_once(delivery=delivery)),
        org_id=settings.crm_org_id,
        max_body_bytes=settings.max_body_bytes,
        on_invoke=config.register_lambda_context,
    )


def _xml(status: int, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "text/xml; charset=utf-8"}, "body": body}


def _reject(
    status: int, error: str, problems: list[dict[str, str]] | None = None, soap: bool = False
) -> dict:
    metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
    logger.info("webhook rejected", extra={"status": status, "error": error})
    if soap:
        return _xml(status, soap_fault(error if not problems else f"{error}: {problems}"))
    return problem_answer(status, error, problems)


def _json_delivery(body: bytes, headers: dict[str, str], deps: WebhookDeps) -> dict[str, Any]:
    from hub.mapping.salesforce import opportunity_from_salesforce

    try:
        delivery_id = verify_standard_webhook(body, headers, deps.secrets())
    except SignatureError as exc:
        return _reject(401, f"unverified sender: {exc}")
    try:
        change = OpportunityChanged.model_validate_json(body)
    except ValueError as exc:
        return _reject(400, "malformed body", field_problems(exc))
    try:
        opportunity = opportunity_from_salesforce(change.data.record)
    except ValueError as exc:
        try:  # a verified deal with a bad value is parked by the flow with its problems, not bounced
            opportunity = minimal_opportunity(change.data.record)
        except ValueError:
            return _reject(400, "malformed opportunity record", field_problems(exc, "data.record."))
        logger.info(
            "record does not map; the flow will read it again and park it",
            extra={"problems": [p["field"] for p in field_problems(exc)]},
        )
    accepted = deps.accept(
        Delivery(
            delivery_id=delivery_id,
            channel="webhook",
            stage_changed="StageName" in change.data.changedFields,
            opportunity=opportunity,
        )
    )
    metrics.add_metric(name="OpportunityDeliveries", unit="Count", value=1)
    logger.info(
        "delivery accepted",
        extra={
            "correlation_id": accepted.correlation_id,
            "status": accepted.status,
            "enqueued": accepted.enqueued,
        },
    )
    return json_answer(202, {"correlationId": accepted.correlation_id, "status": accepted.status})


def _soap_delivery(body: bytes, deps: WebhookDeps) -> dict[str, Any]:
    from hub.mapping.salesforce import opportunity_from_salesforce

    try:
        message = parse_outbound_message(body)
    except MalformedBody as exc:
        return _reject(400, str(exc), exc.problems, soap=True)
    if message.organization_id[:15] != deps.org_id[:15]:
        return _reject(401, "unverified sender: unknown OrganizationId", soap=True)
    deliveries = []
    for index, note in enumerate(message.notifications):
        if note.sobject_type != "Opportunity":
            return _reject(
                400,
                "unsupported sObject",
                [
                    {
                        "field": f"Notification[{index}].sObject",
                        "problem": f"{note.sobject_type} is not Opportunity",
                    }
                ],
                soap=True,
            )
        try:
            opportunity = opportunity_from_salesforce(note.fields)
        except ValueError as exc:
            return _reject(
                400,
                "malformed opportunity",
                field_problems(exc, f"Notification[{index}].sObject."),
                soap=True,
            )
        # An Outbound Message fires on its workflow rule (stage reached Closed Won): that is the change.
        deliveries.append(
            Delivery(
                delivery_id=note.notification_id,
                channel="outbound-message",
                stage_changed=True,
                opportunity=opportunity,
            )
        )
    for delivery in deliveries:  # validated all first: a bad notification rejects the message whole
        accepted = deps.accept(delivery)
        logger.info(
            "notification accepted",
            extra={
                "correlation_id": accepted.correlation_id,
                "status": accepted.status,
                "enqueued": accepted.enqueued,
            },
        )
    metrics.add_metric(name="OpportunityDeliveries", unit="Count", value=len(deliveries))
    return _xml(200, soap_ack(True))


@entry(CrmWebhookSettings, correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: Any, deps: WebhookDeps | None = None) -> dict[str, Any]:
    deps = deps or default_deps()
    deps.on_invoke(context)
    headers = request_headers(event)
    content_type = media_type(headers)
    soap = content_type in SOAP_TYPES
    try:
        body = request_body(event)
    except ValueError:
        return _reject(
            400, "body is not valid base64", [{"field": "body", "problem": "invalid base64"}], soap=soap
        )
    if len(body) > deps.max_body_bytes:
        return _reject(
            413, f"body of {len(body)} bytes exceeds the {deps.max_body_bytes}-byte limit", soap=soap
        )
    if not soap and content_type not in JSON_TYPES:
        return _reject(
            415,
            f"unsupported content type {content_type or '(none)'}; send application/json "
            "(Standard Webhooks) or text/xml (Salesforce Outbound Message)",
        )
    try:
        return _soap_delivery(body, deps) if soap else _json_delivery(body, headers, deps)
    except Exception:  # the sender retries on 5xx and every step above is idempotent: nothing is lost
        logger.exception("could not record the delivery")
        metrics.add_metric(name="WebhookErrors", unit="Count", value=1)
        message = "temporarily unable to record the delivery; retry later"
        return (
            _xml(503, soap_fault(message, client_fault=False))
            if soap
            else json_answer(503, {"error": message})
        )
