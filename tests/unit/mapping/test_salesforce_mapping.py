"""Salesforce <-> canonical opportunity mapping, both ways, from the three shapes Salesforce sends."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.mapping.salesforce import (
    BILLING_TYPES,
    datetime_out,
    opportunity_from_salesforce,
    opportunity_to_salesforce,
    write_back_from_salesforce,
    write_back_to_salesforce,
)
from hub.model import Account, BillingType, LineItem, Money, Opportunity

OPP_ID = "006Dn00000A1b2cAAB"
ACC_ID = "001Dn00000Z9y8xAAA"

REST_RECORD = {
    "attributes": {"type": "Opportunity", "url": f"/services/data/v62.0/sobjects/Opportunity/{OPP_ID}"},
    "Id": OPP_ID,
    "Name": "Acme - ERP rollout",
    "StageName": "Closed Won",
    "Amount": Decimal("125000.0"),
    "CurrencyIsoCode": "GBP",
    "CloseDate": "2026-10-30",
    "AccountId": ACC_ID,
    "Legal_Entity__c": "UK01",
    "Billing_Type__c": "Time and Materials",
    "Start_Date__c": "2026-11-16",
    "End_Date__c": None,
    "SystemModstamp": "2026-11-02T10:00:00.000+0000",
}
LINE_ITEM = {
    "attributes": {"type": "OpportunityLineItem"},
    "Id": "00kDn00000Q1w2eAAB",
    "ProductCode": "CONS-SR",
    "Name": "Senior consultant",
    "Quantity": 100.0,
    "UnitPrice": 1250.0,
    "TotalPrice": 125000.0,
    "Service_Line__c": "ERP",
    "ServiceDate": "2026-11-16",
}
ACCOUNT = {"Id": ACC_ID, "Name": "Acme Ltd", "BillingCountry": "GB", "CurrencyIsoCode": "GBP"}


def test_given_rest_records_when_mapped_then_the_canonical_opportunity_is_complete():
    opp = opportunity_from_salesforce(REST_RECORD, line_items=[LINE_ITEM], account=ACCOUNT)

    assert opp.crm_id == OPP_ID and opp.stage == "Closed Won" and opp.is_closed_won
    assert opp.amount == Money(amount=Decimal("125000.0"), currency="GBP")
    assert opp.billing_type is BillingType.TIME_AND_MATERIALS
    assert opp.close_date == dt.date(2026, 10, 30) and opp.start_date == dt.date(2026, 11, 16)
    assert opp.end_date is None
    assert opp.legal_entity_code == "UK01"
    assert opp.last_modified == dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
    assert opp.account == Account(crm_id=ACC_ID, name="Acme Ltd", billing_country="GB", currency="GBP")
    (item,) = opp.line_items
    assert item == LineItem(
        crm_id="00kDn00000Q1w2eAAB",
        product_code="CONS-SR",
        name="Senior consultant",
        quantity=Decimal("100.0"),
        unit_price=Money(amount=Decimal("1250.0"), currency="GBP"),
        service_line="ERP",
        service_date=dt.date(2026, 11, 16),
    )
    assert opp.needs_hydration is False


def test_given_json_floats_when_mapped_then_amounts_are_exact_decimals():
    opp = opportunity_from_salesforce({**REST_RECORD, "Amount": 0.1}, line_items=[], account=ACCOUNT)
    assert opp.amount.amount == Decimal("0.1")


def test_given_a_webhook_nested_like_soql_when_mapped_then_account_and_line_items_come_from_the_nesting():
    record = {
        **REST_RECORD,
        "Account": {"attributes": {"type": "Account"}, **ACCOUNT},
        "OpportunityLineItems": {"totalSize": 1, "done": True, "records": [LINE_ITEM]},
    }

    opp = opportunity_from_salesforce(json.loads(json.dumps(record, default=str)))

    assert opp.account.name == "Acme Ltd"
    assert [li.product_code for li in opp.line_items] == ["CONS-SR"]
    assert opp.needs_hydration is False


def test_given_a_webhook_with_a_null_relationship_when_mapped_then_no_line_items_and_no_hydration():
    record = {**REST_RECORD, "Account": ACCOUNT, "OpportunityLineItems": None}

    opp = opportunity_from_salesforce(record)

    assert opp.line_items == ()
    assert opp.needs_hydration is False


def test_given_an_outbound_message_of_strings_when_mapped_then_values_convert_and_hydration_is_needed():
    soap_values = {
        "Id": OPP_ID,
        "Name": "Acme - ERP rollout",
        "StageName": "Closed Won",
        "Amount": "125000.0",
        "CurrencyIsoCode": "GBP",
        "CloseDate": "2026-10-30",
        "AccountId": ACC_ID,
        "Legal_Entity__c": "UK01",
        "Billing_Type__c": "Fixed Fee - Milestones",
        "Start_Date__c": "2026-11-16",
        "End_Date__c": "",
        "SystemModstamp": "2026-11-02T10:00:00.000Z",
    }

    opp = opportunity_from_salesforce(soap_values)

    assert opp.amount == Money(amount=Decimal("125000.0"), currency="GBP")
    assert opp.billing_type is BillingType.FIXED_FEE_MILESTONES
    assert opp.last_modified == dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
    assert opp.end_date is None
    assert opp.account is None and opp.line_items == ()
    assert opp.needs_hydration is True


def test_given_missing_optional_fields_when_mapped_then_they_stay_none():
    minimal = {
        "Id": OPP_ID,
        "Name": "Acme",
        "StageName": "Closed Won",
        "SystemModstamp": "2026-11-02T10:00:00.000+0000",
    }

    opp = opportunity_from_salesforce(minimal, line_items=[])

    assert (opp.amount, opp.billing_type, opp.legal_entity_code, opp.close_date, opp.account) == (None,) * 5
    assert opp.needs_hydration is False


def test_given_picklist_country_codes_when_mapped_then_the_iso_code_wins_over_the_country_name():
    account = {**ACCOUNT, "BillingCountry": "United Kingdom", "BillingCountryCode": "GB"}
    opp = opportunity_from_salesforce(REST_RECORD, line_items=[], account=account)
    assert opp.account.billing_country == "GB"


@pytest.mark.parametrize(
    ("fields", "country"),
    [
        ({"BillingCountry": "US"}, "US"),
        ({"BillingCountry": " gb "}, "GB"),  # a code, only typed loosely
        ({"BillingCountry": "United States"}, None),  # free text: not guessed at, and the deal still maps
        ({"BillingCountry": "USA"}, None),  # alpha-3 is not the canonical alpha-2
        ({"BillingCountry": ""}, None),
        ({"BillingCountry": None}, None),
        ({"BillingCountry": "United States", "BillingCountryCode": "US"}, "US"),
        ({"BillingCountry": "DE", "BillingCountryCode": None}, "DE"),
        ({"BillingCountry": "FR", "BillingCountryCode": "Francia"}, "FR"),
    ],
)
def test_given_a_free_text_billing_country_when_mapped_then_only_an_iso_code_is_kept_and_nothing_fails(
    fields, country
):
    account = {k: v for k, v in ACCOUNT.items() if k != "BillingCountry"} | fields

    opp = opportunity_from_salesforce(REST_RECORD, line_items=[], account=account)

    assert opp.account.billing_country == country


@pytest.mark.parametrize(
    ("field", "value", "canonical"),
    [
        ("Amount", "12,5", ("amount", "amount")),
        ("CurrencyIsoCode", "pounds", ("amount", "currency")),
        ("Billing_Type__c", "Barter", ("billing_type",)),
        ("SystemModstamp", "yesterday", ("last_modified",)),
        ("SystemModstamp", "2026-11-02T10:00:00", ("last_modified",)),  # no offset: not an instant
        ("CloseDate", "30/10/2026", ("close_date",)),
        ("Legal_Entity__c", "uk 01", ("legal_entity_code",)),
        ("Id", "006-not-an-id", ("crm_id",)),
    ],
)
def test_given_a_malformed_value_when_mapped_then_validation_error_names_the_canonical_field(
    field, value, canonical
):
    with pytest.raises(ValidationError) as caught:
        opportunity_from_salesforce({**REST_RECORD, field: value}, line_items=[], account=ACCOUNT)

    assert [tuple(e["loc"]) for e in caught.value.errors()] == [canonical]


def test_given_a_malformed_line_item_when_mapped_then_validation_error_names_the_item_field():
    with pytest.raises(ValidationError) as caught:
        opportunity_from_salesforce(
            REST_RECORD, line_items=[{**LINE_ITEM, "Quantity": "-1"}], account=ACCOUNT
        )

    assert [tuple(e["loc"]) for e in caught.value.errors()] == [("line_items", 0, "quantity")]


def test_given_a_canonical_opportunity_when_mapped_to_salesforce_then_fields_and_nesting_follow_the_vendor():
    opp = opportunity_from_salesforce(REST_RECORD, line_items=[LINE_ITEM], account=ACCOUNT)

    record = opportunity_to_salesforce(opp)

    assert record["Id"] == OPP_ID
    assert record["Amount"] == 125000 and record["CurrencyIsoCode"] == "GBP"
    assert record["Billing_Type__c"] == "Time and Materials"
    assert record["AccountId"] == ACC_ID
    assert record["SystemModstamp"] == "2026-11-02T10:00:00.000+0000"
    assert "End_Date__c" not in record
    assert record["Account"] == ACCOUNT
    assert record["OpportunityLineItems"]["records"] == [
        {
            "Id": "00kDn00000Q1w2eAAB",
            "ProductCode": "CONS-SR",
            "Name": "Senior consultant",
            "Quantity": 100,
            "UnitPrice": 1250,
            "CurrencyIsoCode": "GBP",
            "TotalPrice": 125000,
            "Service_Line__c": "ERP",
            "ServiceDate": "2026-11-16",
        }
    ]


def test_given_every_billing_type_when_mapped_both_ways_then_the_picklist_value_is_kept():
    assert set(BILLING_TYPES.values()) == set(BillingType)
    for label, billing_type in BILLING_TYPES.items():
        opp = opportunity_from_salesforce(
            {**REST_RECORD, "Billing_Type__c": label}, line_items=[], account=ACCOUNT
        )
        assert opp.billing_type is billing_type
        assert opportunity_to_salesforce(opp)["Billing_Type__c"] == label


def test_given_an_offset_datetime_when_written_then_it_is_utc_with_milliseconds():
    value = dt.datetime(2026, 11, 2, 11, 30, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert datetime_out(value) == "2026-11-02T10:30:05.123+0000"


def test_given_back_references_when_mapped_both_ways_then_the_hub_fields_round_trip():
    body = write_back_to_salesforce(status="Project Created", psa_project_id="9876", erp_customer_id="647")

    assert body == {
        "Integration_Status__c": "Project Created",
        "PSA_Project_Id__c": "9876",
        "ERP_Customer_Id__c": "647",
        "Integration_Error__c": None,
    }
    assert write_back_from_salesforce(body) == {
        "status": "Project Created",
        "psa_project_id": "9876",
        "erp_customer_id": "647",
        "error": None,
    }


def test_given_a_long_error_when_written_back_then_it_is_truncated_and_other_fields_left_alone():
    body = write_back_to_salesforce(status="Failed", error="x" * 5000)
    assert body == {"Integration_Status__c": "Failed", "Integration_Error__c": "x" * 1000}


# ------------------------------------------------------------------------------------- round-trip property

_ids = st.from_regex(r"[A-Za-z0-9]{18}", fullmatch=True)
_currencies = st.sampled_from(["GBP", "USD", "EUR", "JPY"])
_money_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999999.99"), places=2)
_text = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")
_timezones = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
)
_instants = st.builds(
    lambda moment, ms, tz: moment.replace(microsecond=ms * 1000, tzinfo=tz),
    st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30)),
    st.integers(0, 999),
    _timezones,
)
_dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


@st.composite
def opportunities(draw: st.DrawFn) -> Opportunity:
    currency = draw(_currencies)
    needs_hydration = draw(st.booleans())
    items = ()
    if not needs_hydration:
        items = tuple(
            LineItem(
                crm_id=draw(_ids),
                product_code=draw(st.none() | _text),
                name=draw(_text),
                quantity=draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999"), places=2)),
                unit_price=Money(amount=draw(_money_amounts), currency=currency),
                service_line=draw(st.none() | _text),
                service_date=draw(st.none() | _dates),
            )
            for _ in range(draw(st.integers(0, 3)))
        )
    account = draw(
        st.none()
        | st.builds(
            Account,
            crm_id=_ids,
            name=_text,
            billing_country=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
            currency=st.none() | _currencies,
        )
    )
    return Opportunity(
        crm_id=draw(_ids),
        name=draw(_text),
        stage=draw(st.sampled_from(["Prospecting", "Negotiation/Review", "Closed Won", "Closed Lost"])),
        account=account,
        legal_entity_code=draw(st.none() | st.from_regex(r"[A-Z0-9][A-Z0-9_-]{0,8}", fullmatch=True)),
        amount=draw(st.none() | _money_amounts.map(lambda a: Money(amount=a, currency=currency))),
        billing_type=draw(st.none() | st.sampled_from(list(BillingType))),
        close_date=draw(st.none() | _dates),
        start_date=draw(st.none() | _dates),
        end_date=draw(st.none() | _dates),
        line_items=items,
        last_modified=draw(_instants),
        needs_hydration=needs_hydration,
    )


@settings(max_examples=100, deadline=None)
@given(opportunities())
def test_property_any_opportunity_survives_a_round_trip_through_the_salesforce_shape(opp):
    assert opportunity_from_salesforce(opportunity_to_salesforce(opp)) == opp


@settings(max_examples=100, deadline=None)
@given(opportunities())
def test_property_any_opportunity_survives_a_round_trip_through_webhook_json(opp):
    wire = json.loads(json.dumps(opportunity_to_salesforce(opp)))
    assert opportunity_from_salesforce(wire) == opp


@settings(max_examples=100, deadline=None)
@given(opportunities())
def test_property_an_outbound_message_of_the_header_fields_maps_to_the_same_header_needing_hydration(opp):
    record = opportunity_to_salesforce(opp)
    as_soap = {k: str(v) for k, v in record.items() if not isinstance(v, dict)}  # SOAP: strings, no nesting

    header = opportunity_from_salesforce(as_soap)

    assert header == opp.model_copy(update={"account": None, "line_items": (), "needs_hydration": True})
