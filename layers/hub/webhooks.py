"""Verifying and unwrapping inbound webhooks, before anything is parsed as business data.

- Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``): verified with the
  reference implementation (``standardwebhooks``: constant-time compare, 5-minute window) against every
  active secret, so a sender may sign with several secrets while one is rotated out.
- Salesforce Outbound Messages (SOAP 1.1, up to 100 notifications): parsed with ``defusedxml`` (no entity
  expansion, no external entities); the organization id must be the configured one. The answer is the SOAP
  ``Ack`` Salesforce waits for, or it redelivers for 24 hours.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

OM_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100
TOLERANCE_SECONDS = 300  # the Standard Webhooks window, also enforced by the reference implementation


class SignatureError(Exception):
    """The sender could not be verified (missing, malformed, tampered, stale or unknown signature)."""


class MalformedBody(Exception):
    """The body is not what the channel promises; ``problems`` name the fields."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [{"field": "body", "problem": message}]


def signing_secrets(secret_value: str) -> list[str]:
    """The active signing secrets from the secret's value: ``{"secrets": [...]}``, a JSON list, or one string."""
    text = secret_value.strip()
    if text.startswith("{") or text.startswith("["):
        parsed = json.loads(text)
        secrets = parsed.get("secrets", []) if isinstance(parsed, dict) else parsed
    else:
        secrets = [text]
    secrets = [s for s in secrets if isinstance(s, str) and s]
    if not secrets:
        raise ValueError("the webhook secret holds no signing secret")
    return secrets


def verify_standard_webhook(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> str:
    """Verify a Standard Webhooks signature against any active secret; the ``webhook-id`` on success."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not lowered.get(name):
            raise SignatureError(f"missing {name} header")
    try:
        sent_at = float(lowered["webhook-timestamp"])
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not a Unix timestamp") from exc
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp outside the 5-minute window")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("body is not UTF-8, it cannot carry a valid signature") from exc
    try:
        verifiers = [Webhook(secret) for secret in secrets]
    except Exception as exc:  # our configuration, not the sender's fault: surfaces as a 5xx, retried
        raise ValueError("a configured webhook signing secret is not a valid whsec_ secret") from exc
    for verifier in verifiers:
        try:
            verifier.verify(text, lowered, json_parse=False)
            return lowered["webhook-id"]
        except WebhookVerificationError:
            continue
        except (ValueError, TypeError) as exc:  # a malformed signature list such as "v1" without a comma
            raise SignatureError("malformed webhook-signature header") from exc
    raise SignatureError("no valid signature")


@dataclass(frozen=True)
class Notification:
    notification_id: str
    sobject_type: str
    fields: dict[str, str | None]


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    action_id: str | None
    notifications: list[Notification] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """Unwrap a Salesforce Outbound Message (safe XML parsing); MalformedBody names what is wrong."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedBody(f"not a well-formed SOAP envelope: {type(exc).__name__}") from exc
    notifications_el = root.find(f"{{{SOAP_NS}}}Body/{{{OM_NS}}}notifications")
    if notifications_el is None:
        raise MalformedBody(
            "not an Outbound Message", [{"field": "Envelope.Body.notifications", "problem": "missing"}]
        )
    org = (notifications_el.findtext(f"{{{OM_NS}}}OrganizationId") or "").strip()
    if not org:
        raise MalformedBody("missing OrganizationId", [{"field": "OrganizationId", "problem": "missing"}])
    items = notifications_el.findall(f"{{{OM_NS}}}Notification")
    if not items:
        raise MalformedBody(
            "no Notification", [{"field": "Notification", "problem": "at least one required"}]
        )
    if len(items) > MAX_NOTIFICATIONS:
        raise MalformedBody(
            "too many notifications",
            [{"field": "Notification", "problem": f"{len(items)} > {MAX_NOTIFICATIONS}"}],
        )
    notifications = []
    for index, item in enumerate(items):
        nid = (item.findtext(f"{{{OM_NS}}}Id") or "").strip()
        sobject = item.find(f"{{{OM_NS}}}sObject")
        if not nid or sobject is None:
            raise MalformedBody(
                "incomplete notification",
                [{"field": f"Notification[{index}]", "problem": "Id and sObject are required"}],
            )
        sobject_type = sobject.get(f"{{{XSI_NS}}}type", "").split(":")[-1]
        fields: dict[str, str | None] = {}
        for child in sobject:
            nil = child.get(f"{{{XSI_NS}}}nil") == "true"
            fields[_local(child.tag)] = None if nil else (child.text or "")
        notifications.append(Notification(notification_id=nid, sobject_type=sobject_type, fields=fields))
    return OutboundMessage(
        organization_id=org,
        action_id=(notifications_el.findtext(f"{{{OM_NS}}}ActionId") or None),
        notifications=notifications,
    )


def soap_ack(ack: bool = True) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
        f'<notificationsResponse xmlns="{OM_NS}"><Ack>{"true" if ack else "false"}</Ack></notificationsResponse>'
        "</soapenv:Body></soapenv:Envelope>"
    )


def soap_fault(message: str, *, client_fault: bool = True) -> str:
    from xml.sax.saxutils import escape

    code = "soapenv:Client" if client_fault else "soapenv:Server"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
