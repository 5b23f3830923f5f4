import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hub.model import Account, EventEnvelope, LegalEntity, Money, Opportunity
from tests.support.builders import money, opportunity


def test_money_keeps_decimal_precision_and_rounds_half_up_to_cents():
    assert Money(amount=Decimal("0.005"), currency="USD").rounded().amount == Decimal("0.01")
    assert money("19.999").cents() == 2000


@pytest.mark.parametrize("currency", ["usd", "US", "EURO", ""])
def test_money_needs_an_iso_currency(currency):
    with pytest.raises(ValidationError):
        Money(amount=Decimal(1), currency=currency)


def test_money_refuses_non_finite_amounts():
    with pytest.raises(ValidationError):
        Money(amount=Decimal("NaN"), currency="USD")


def test_adding_money_in_two_currencies_is_an_error():
    with pytest.raises(ValueError, match="GBP"):
        money(1, "USD") + money(1, "GBP")


def test_instants_must_carry_a_timezone():
    with pytest.raises(ValidationError, match="timezone"):
        opportunity(last_modified=dt.datetime(2026, 11, 20, 16, 42))


def test_unknown_fields_are_refused_so_mapping_mistakes_surface():
    with pytest.raises(ValidationError, match="extra"):
        Account(crm_id="0015g00000XyZaBAAV", name="x", nickname="y")


@pytest.mark.parametrize("crm_id", ["006", "0065g00000AbCdE-AV", "0065g00000AbCdEAAVXX"])
def test_crm_ids_are_constrained(crm_id):
    with pytest.raises(ValidationError):
        opportunity(crm_id=crm_id)


def test_entities_are_immutable():
    opp = opportunity()
    with pytest.raises(ValidationError):
        opp.stage = "Closed Lost"


def test_opportunity_version_is_its_utc_modification_instant():
    opp = opportunity(
        last_modified=dt.datetime(2026, 11, 20, 17, 42, 11, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    )
    assert opp.version == "20261120T164211000000Z"


def test_line_item_total_is_quantity_times_price_in_cents():
    item = opportunity().line_items[1]
    assert item.total == money("80000.00")


def test_legal_entity_has_country_currency_and_timezone():
    entity = LegalEntity(
        code="UK01", name="Hub Ltd", country="GB", functional_currency="GBP", timezone="Europe/London"
    )
    assert entity.model_dump()["timezone"] == "Europe/London"


def test_opportunity_round_trips_through_json():
    opp = opportunity()
    assert Opportunity.model_validate_json(opp.model_dump_json()) == opp


def test_event_envelope_carries_cloudevents_attributes_correlation_and_schema_version():
    envelope = EventEnvelope(type="ProjectActivated", correlationid="c-1", subject="006", data={"a": 1})
    entry = envelope.to_entry("pshub-events")
    detail = json.loads(entry["Detail"])
    assert entry["DetailType"] == "ProjectActivated" and entry["Source"] == "pshub"
    assert {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "correlationid",
        "schemaversion",
        "datacontenttype",
        "data",
    } <= set(detail)
    assert detail["specversion"] == "1.0" and detail["schemaversion"] == "1.0"


def test_event_type_must_be_a_business_event_name():
    with pytest.raises(ValidationError):
        EventEnvelope(type="project.activated", correlationid="c-1")
