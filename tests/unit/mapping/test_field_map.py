"""The declarative field-map mechanism the vendor mappings are built from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

import pytest

from hub.mapping.fields import (
    Field,
    FieldMap,
    date_out,
    decimal_in,
    lookup,
    money_amount_out,
    money_cents_out,
    money_currency_out,
    money_in,
    number_out,
    picklist,
)
from hub.model import Money


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


PRICE = FieldMap(
    Field("Label", "name"),
    Field("Price", "price", load=money_in("Currency"), dump=money_amount_out),
    Field("Currency", "price", dump=money_currency_out, direction="dump"),
    Field("Owner", "owner.name", direction="dump"),
    Field("Note", "note", keep_none=True),
    Field("Country", "country", load_from=("CountryCode", "Country")),
    constants={"Kind": "price"},
)


def test_given_a_vendor_record_when_loaded_then_canonical_arguments_come_out_converted():
    loaded = PRICE.load({"Label": "A", "Price": 1.1, "Currency": "EUR", "Note": "", "Country": "DE", "X": 1})

    assert loaded == {
        "name": "A",
        "price": {"amount": Decimal("1.1"), "currency": "EUR"},
        "note": None,  # the empty string a SOAP source gives is "not there"
        "country": "DE",
    }


def test_given_a_context_when_loading_then_it_fills_only_what_the_record_lacks():
    assert PRICE.load({"Price": "2"}, context={"Currency": "GBP"})["price"] == {
        "amount": "2",
        "currency": "GBP",
    }
    assert (
        PRICE.load({"Price": "2", "Currency": "USD"}, context={"Currency": "GBP"})["price"]["currency"]
        == "USD"
    )
    assert (
        PRICE.load({"Price": "2", "Currency": None}, context={"Currency": "GBP"})["price"]["currency"]
        == "GBP"
    )


def test_given_alternative_vendor_names_when_loading_then_the_first_present_wins():
    assert PRICE.load({"CountryCode": "GB", "Country": "United Kingdom"})["country"] == "GB"
    assert PRICE.load({"CountryCode": None, "Country": "FR"})["country"] == "FR"


def test_given_a_canonical_object_when_dumped_then_vendor_fields_constants_and_dotted_paths_are_written():
    source = {
        "name": "A",
        "price": Money(amount=Decimal("3.50"), currency="GBP"),
        "owner": {"name": "Ops"},
        "note": None,
        "country": None,
    }

    assert PRICE.dump(source) == {
        "Kind": "price",
        "Label": "A",
        "Price": 3.5,
        "Currency": "GBP",
        "Owner": "Ops",
        "Note": None,
    }


def test_given_a_missing_value_when_dumped_then_it_is_left_out_unless_kept():
    assert PRICE.dump({"name": "A"}) == {"Kind": "price", "Label": "A", "Note": None}


def test_given_a_map_when_listing_vendor_names_then_only_loaded_fields_appear_in_order():
    assert PRICE.vendor_names() == ["Label", "Price", "Note", "CountryCode", "Country"]


def test_given_converters_when_used_then_money_dates_numbers_and_tables_convert_both_ways():
    money = Money(amount=Decimal("1234.565"), currency="USD")
    assert money_cents_out(money) == 123457
    assert number_out(Decimal("10.00")) == 10 and isinstance(number_out(Decimal("10.00")), int)
    assert number_out(Decimal("10.25")) == 10.25
    assert decimal_in(0.30000000000000004) == Decimal("0.30000000000000004")
    assert decimal_in("7.1") == "7.1"
    assert date_out(dt.date(2026, 1, 2)) == "2026-01-02"
    load, dump = picklist({"Red!": Colour.RED})
    assert load("Red!", {}) is Colour.RED and dump(Colour.RED) == "Red!"
    assert load("Green!", {}) == "Green!"  # left for the model to reject
    with pytest.raises(KeyError):
        lookup({"a": 1})("b")
