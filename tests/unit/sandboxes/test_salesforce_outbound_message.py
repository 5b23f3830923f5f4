"""Salesforce Outbound Messages: the SOAP body Salesforce sends, batching, redelivery, the listener's Ack."""

from xml.etree import ElementTree

import pytest

from local.sandboxes.base import Faults
from local.sandboxes.salesforce import (
    OUTBOUND_NS,
    SOAP_ENVELOPE_NS,
    SOBJECT_NS,
    XSI_NS,
    SalesforceSandbox,
    ack_accepted,
    outbound_message,
)

pytestmark = pytest.mark.disable_socket

ORG = "00D5g000000ABCDEAA"
NS = {"soapenv": SOAP_ENVELOPE_NS, "om": OUTBOUND_NS, "sf": SOBJECT_NS}


def _notifications(body: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(body)
    found = root.find("soapenv:Body/om:notifications", NS)
    assert found is not None
    return found


def _opportunity(n: int) -> dict:
    return {
        "Id": f"0065g00000ABC{n:02d}AAA",
        "Name": f"Deal {n}",
        "StageName": "Closed Won",
        "Amount": 1000 * n,
        "IsWon": True,
        "CloseDate": "2025-06-30",
        "Legal_Entity__c": None,
    }


def test_a_message_for_n_opportunities_parses_and_has_n_notifications():
    body = outbound_message(ORG, [_opportunity(n) for n in range(1, 4)])

    notifications = _notifications(body)
    items = notifications.findall("om:Notification", NS)
    assert len(items) == 3
    assert notifications.findtext("om:OrganizationId", namespaces=NS) == ORG
    assert notifications.findtext("om:ActionId", namespaces=NS).startswith("04k")
    assert notifications.find("om:SessionId", NS).get(f"{{{XSI_NS}}}nil") == "true"
    assert notifications.findtext("om:EnterpriseUrl", namespaces=NS).endswith(
        f"/services/Soap/c/62.0/{ORG[:15]}"
    )
    assert notifications.findtext("om:PartnerUrl", namespaces=NS).endswith(
        f"/services/Soap/u/62.0/{ORG[:15]}"
    )
    ids = [item.findtext("om:Id", namespaces=NS) for item in items]
    assert all(i.startswith("04l") and len(i) == 18 for i in ids) and len(set(ids)) == 3


def test_each_notification_carries_the_sobject_fields_in_the_enterprise_namespace():
    body = outbound_message(ORG, [_opportunity(7)], ["04l5g000000TEST1AAA"])

    item = _notifications(body).find("om:Notification", NS)
    sobject = item.find("om:sObject", NS)
    assert item.findtext("om:Id", namespaces=NS) == "04l5g000000TEST1AAA"
    assert sobject.get(f"{{{XSI_NS}}}type") == "sf:Opportunity"
    assert sobject[0].tag == f"{{{SOBJECT_NS}}}Id"
    assert sobject.findtext("sf:Id", namespaces=NS) == "0065g00000ABC07AAA"
    assert sobject.findtext("sf:Amount", namespaces=NS) == "7000"
    assert sobject.findtext("sf:IsWon", namespaces=NS) == "true"
    assert sobject.find("sf:Legal_Entity__c", NS).get(f"{{{XSI_NS}}}nil") == "true"


def test_text_that_looks_like_markup_is_escaped():
    body = outbound_message(ORG, [{"Id": "0065g00000ABC01AAA", "Name": "R&D <Phase 2>"}])

    sobject = _notifications(body).find("om:Notification/om:sObject", NS)
    assert sobject.findtext("sf:Name", namespaces=NS) == "R&D <Phase 2>"


def test_a_message_holds_one_to_one_hundred_notifications():
    with pytest.raises(ValueError, match="1 to 100"):
        outbound_message(ORG, [_opportunity(1)] * 101)
    with pytest.raises(ValueError, match="1 to 100"):
        outbound_message(ORG, [])
    with pytest.raises(ValueError, match="one notification id"):
        outbound_message(ORG, [_opportunity(1)], ["04l5g000000TEST1AAA", "04l5g000000TEST2AAA"])


def test_the_org_sends_its_opportunities_as_they_are_now_in_batches_of_at_most_100():
    salesforce = SalesforceSandbox()
    opportunities = [salesforce.seed_opportunity(Name=f"Deal {n}") for n in range(230)]

    messages = salesforce.outbound_messages(opportunities, fields=["Name", "StageName"])

    counts = [len(_notifications(m).findall("om:Notification", NS)) for m in messages]
    assert counts == [100, 100, 30]
    first = _notifications(messages[0]).find("om:Notification/om:sObject", NS)
    assert [child.tag.split("}")[1] for child in first] == ["Id", "Name", "StageName"]
    assert _notifications(messages[0]).findtext("om:OrganizationId", namespaces=NS) == salesforce.org_id


def test_with_a_duplicate_rate_notifications_are_redelivered_with_the_same_notification_id():
    salesforce = SalesforceSandbox(faults=Faults(duplicate_rate=1.0, seed=4))
    opportunities = [salesforce.seed_opportunity(Name=f"Deal {n}") for n in range(5)]

    [message] = salesforce.outbound_messages(opportunities)

    items = _notifications(message).findall("om:Notification", NS)
    notification_ids = [i.findtext("om:Id", namespaces=NS) for i in items]
    record_ids = [i.findtext("om:sObject/sf:Id", namespaces=NS) for i in items]
    assert len(items) == 10
    assert len(set(notification_ids)) == 5 and sorted(set(record_ids)) == sorted(opportunities)
    assert all(notification_ids.count(n) == 2 for n in notification_ids)


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        (
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
            b"</notificationsResponse></soapenv:Body></soapenv:Envelope>",
            True,
        ),
        (
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>false</Ack>'
            b"</notificationsResponse></soapenv:Body></soapenv:Envelope>",
            False,
        ),
        (b'{"ack": true}', False),
    ],
)
def test_only_an_ack_of_true_counts_as_delivered(answer, accepted):
    assert ack_accepted(answer) is accepted
