"""Canonical -> NetSuite bodies and external ids, and NetSuite answers -> ids and problems."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mapping import netsuite as nm
from hub.model import Account, BillingSchedule, BillingType, Money, Project

ACCOUNT = Account(crm_id="001Dn00000Z9y8xAAA", name="Acme Ltd")


def project(billing_type: BillingType, end_date: dt.date | None = None) -> Project:
    return Project(
        external_id="sf-opp-006Dn00000A1b2cAAB",
        name="Acme - ERP rollout",
        opportunity_crm_id="006Dn00000A1b2cAAB",
        customer=ACCOUNT,
        legal_entity_code="US01",
        currency="USD",
        contract_value=Money(amount=Decimal("99999.99"), currency="USD"),
        start_date=dt.date(2026, 11, 16),
        end_date=end_date,
        billing_type=billing_type,
        wbs=(),
        billing_schedule=BillingSchedule(billing_type=billing_type, currency="USD"),
    )


def test_given_canonical_ids_when_deriving_external_ids_then_they_are_prefixed_and_safe():
    assert nm.customer_external_id(ACCOUNT) == "sf-001Dn00000Z9y8xAAA"
    assert nm.project_external_id(project(BillingType.RETAINER)) == "sf-opp-006Dn00000A1b2cAAB"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("abc-XYZ_09", "abc-XYZ__09"),
        ("a.b", "a_2eb"),
        ("a b/c", "a_20b_2fc"),
        ("é", "_c3_a9"),
        ("a_2eb", "a__2eb"),
    ],
)
def test_given_unsafe_characters_when_sanitising_then_they_are_escaped(raw, safe):
    assert nm.safe_external_id(raw) == safe


@given(st.text(min_size=1, max_size=30))
def test_property_sanitised_external_ids_use_only_allowed_characters(raw):
    assert re.fullmatch(r"[A-Za-z0-9_-]+", nm.safe_external_id(raw))


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_property_distinct_raw_ids_never_collide_after_sanitising(first, second):
    if first != second:
        assert nm.safe_external_id(first) != nm.safe_external_id(second)


def test_given_an_account_when_mapped_then_the_customer_body_references_subsidiary_and_currency_by_id():
    assert nm.customer_body(ACCOUNT, subsidiary_id="1", currency={"id": "4"}) == {
        "companyName": "Acme Ltd",
        "subsidiary": {"id": "1"},
        "currency": {"id": "4"},
        "externalId": "sf-001Dn00000Z9y8xAAA",
    }


@pytest.mark.parametrize(
    ("code", "table", "reference"),
    [
        ("USD", {"USD": "1", "GBP": "2"}, {"id": "1"}),
        ("GBP", {"USD": "1", "GBP": "2"}, {"id": "2"}),
        ("EUR", {"USD": "1", "GBP": "2"}, None),  # the account has no such currency
        ("EUR", None, {"refName": "EUR"}),  # no table configured: by name (not promised by NetSuite)
    ],
)
def test_given_a_currency_table_when_referencing_a_currency_then_its_internal_id_is_used(
    code, table, reference
):
    assert nm.currency_reference(code, table) == reference


@pytest.mark.parametrize(
    ("billing_type", "netsuite"),
    [
        (BillingType.FIXED_FEE_MILESTONES, "FBM"),
        (BillingType.TIME_AND_MATERIALS, "TM"),
        (BillingType.RETAINER, "FBI"),
        (BillingType.SUBSCRIPTION, "FBI"),
    ],
)
def test_given_a_project_when_mapped_then_the_job_body_carries_its_billing_terms(billing_type, netsuite):
    body = nm.job_body(project(billing_type), customer_id="647", subsidiary_id="2", currency={"id": "1"})

    assert body == {
        "companyName": "Acme - ERP rollout",
        "currency": {"id": "1"},
        "startDate": "2026-11-16",
        "jobBillingType": {"id": netsuite},
        "custentity_pshub_contract_value": 99999.99,
        "parent": {"id": "647"},
        "subsidiary": {"id": "2"},
        "externalId": "sf-opp-006Dn00000A1b2cAAB",
    }


def test_given_an_end_date_and_schedule_id_when_mapped_then_both_are_sent():
    body = nm.job_body(
        project(BillingType.TIME_AND_MATERIALS, dt.date(2027, 3, 31)),
        customer_id="1",
        subsidiary_id="2",
        currency={"id": "1"},
        billing_schedule_id="9",
    )
    assert body["projectedEndDate"] == "2027-03-31"
    assert body["billingSchedule"] == {"id": "9"}


@pytest.mark.parametrize(
    ("location", "internal_id"),
    [
        ("https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/customer/647", "647"),
        ("https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/job/1201/", "1201"),
        ("/services/rest/record/v1/customer/88?expand=true", "88"),
        ("https://x.test/services/rest/record/v1/customer/eid:sf-001", None),
        ("", None),
        (None, None),
    ],
)
def test_given_a_location_header_when_parsed_then_the_internal_id_is_its_last_numeric_segment(
    location, internal_id
):
    assert nm.internal_id_from_location(location) == internal_id


def test_given_a_record_read_back_when_parsed_then_its_id_is_returned():
    assert nm.record_id({"id": "647", "externalId": "sf-1"}) == "647"
    assert nm.record_id({"links": []}) is None


def test_given_error_details_when_read_then_problems_name_the_field_or_the_record():
    body = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid subsidiary reference key 9.",
                "o:errorPath": "subsidiary",
                "o:errorCode": "INVALID_VALUE",
            },
            {"detail": "Please enter a value for Company Name.", "o:errorCode": "USER_ERROR"},
        ],
    }

    assert nm.validation_problems(body) == [
        {"field": "subsidiary", "problem": "Invalid subsidiary reference key 9.", "code": "INVALID_VALUE"},
        {"field": "record", "problem": "Please enter a value for Company Name.", "code": "USER_ERROR"},
    ]
    assert nm.error_codes(body) == ["INVALID_VALUE", "USER_ERROR"]
    assert nm.error_codes(None) == []
