import time

import pytest

from hub.webhooks import SignatureError, signing_secrets, verify_standard_webhook
from tests.support.webhooks import OLD_SECRET, TEST_SECRET, signed_headers

BODY = b'{"type":"opportunity.changed","data":{}}'


def test_valid_signature_is_verified_and_returns_the_delivery_id():
    headers = signed_headers(BODY, TEST_SECRET, msg_id="msg_1")
    assert verify_standard_webhook(BODY, headers, [TEST_SECRET]) == "msg_1"


def test_tampered_body_is_rejected():
    headers = signed_headers(BODY, TEST_SECRET)
    with pytest.raises(SignatureError, match="no valid signature"):
        verify_standard_webhook(BODY.replace(b"changed", b"chAnged"), headers, [TEST_SECRET])


def test_signature_made_with_an_unknown_secret_is_rejected():
    headers = signed_headers(BODY, OLD_SECRET)
    with pytest.raises(SignatureError):
        verify_standard_webhook(BODY, headers, [TEST_SECRET])


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamp_outside_five_minutes_is_stale(skew):
    headers = signed_headers(BODY, TEST_SECRET, timestamp=int(time.time()) + skew)
    with pytest.raises(SignatureError, match="5-minute window"):
        verify_standard_webhook(BODY, headers, [TEST_SECRET])


def test_timestamp_inside_the_window_passes():
    headers = signed_headers(BODY, TEST_SECRET, timestamp=int(time.time()) - 290)
    assert verify_standard_webhook(BODY, headers, [TEST_SECRET])


def test_sender_rotating_its_secret_may_send_both_signatures():
    headers = signed_headers(BODY, OLD_SECRET, TEST_SECRET)
    assert verify_standard_webhook(BODY, headers, [TEST_SECRET])


def test_receiver_rotating_accepts_the_old_secret_until_it_is_removed():
    headers = signed_headers(BODY, OLD_SECRET)
    assert verify_standard_webhook(BODY, headers, [TEST_SECRET, OLD_SECRET])
    with pytest.raises(SignatureError):
        verify_standard_webhook(BODY, headers, [TEST_SECRET])


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing):
    headers = signed_headers(BODY, TEST_SECRET)
    del headers[missing]
    with pytest.raises(SignatureError, match=missing):
        verify_standard_webhook(BODY, headers, [TEST_SECRET])


@pytest.mark.parametrize("signature", ["v1", "garbage", "v1,%%%notbase64"])
def test_malformed_signature_header_is_rejected_not_crashing(signature):
    headers = signed_headers(BODY, TEST_SECRET)
    headers["webhook-signature"] = signature
    with pytest.raises(SignatureError):
        verify_standard_webhook(BODY, headers, [TEST_SECRET])


def test_non_utf8_body_cannot_be_verified():
    headers = signed_headers(b"\xff\xfe", TEST_SECRET)
    with pytest.raises(SignatureError):
        verify_standard_webhook(b"\xff\xfe", headers, [TEST_SECRET])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"secrets": ["whsec_a", "whsec_b"]}', ["whsec_a", "whsec_b"]),
        ('["whsec_a"]', ["whsec_a"]),
        ("whsec_a", ["whsec_a"]),
    ],
)
def test_signing_secrets_are_read_in_every_supported_shape(value, expected):
    assert signing_secrets(value) == expected


def test_a_secret_without_signing_secrets_is_a_configuration_error():
    with pytest.raises(ValueError):
        signing_secrets('{"secrets": []}')
