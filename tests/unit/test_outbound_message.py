import pytest

from hub.webhooks import MalformedBody, parse_outbound_message, soap_ack
from tests.support.events import load_text


def test_outbound_message_yields_each_notification_with_its_fields():
    message = parse_outbound_message(load_text("outbound_message.xml").encode())
    assert message.organization_id == "00D000000000001AAA"
    assert [n.notification_id for n in message.notifications] == ["04l5g00000AAAA1AAA", "04l5g00000AAAA2AAA"]
    first = message.notifications[0]
    assert first.sobject_type == "Opportunity"
    assert first.fields["StageName"] == "Closed Won"
    assert first.fields["Amount"] == "50000.0"


def test_nil_fields_are_none():
    body = load_text("outbound_message.xml").replace(
        "<sf:Legal_Entity__c>US01</sf:Legal_Entity__c>", '<sf:Legal_Entity__c xsi:nil="true"/>', 1
    )
    message = parse_outbound_message(body.encode())
    assert message.notifications[0].fields["Legal_Entity__c"] is None


def test_entity_expansion_is_refused():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<lolz>&lol2;</lolz>"
    )
    with pytest.raises(MalformedBody):
        parse_outbound_message(bomb.encode())


def test_external_entities_are_refused():
    xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(MalformedBody):
        parse_outbound_message(xxe.encode())


def test_a_soap_envelope_without_notifications_names_what_is_missing():
    body = b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>'
    with pytest.raises(MalformedBody) as caught:
        parse_outbound_message(body)
    assert caught.value.problems[0]["field"] == "Envelope.Body.notifications"


def test_more_than_100_notifications_is_malformed():
    text = load_text("outbound_message.xml")
    start, end = text.index("<Notification>"), text.index("</Notification>") + len("</Notification>")
    many = text[:start] + text[start:end] * 101 + text[end:]
    with pytest.raises(MalformedBody, match="too many"):
        parse_outbound_message(many.encode())


def test_ack_is_the_soap_answer_salesforce_waits_for():
    ack = soap_ack()
    assert "<Ack>true</Ack>" in ack and "http://soap.sforce.com/2005/09/outbound" in ack
