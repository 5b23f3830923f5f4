from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import DataValidationError
from hub.flows.posting.rules import Rule, check_tax_rule, find_tax_rule, tax_treatment
from hub.model import ExpenseCategory, TaxKind, TaxRegime, minor_unit
from tests.support.builders import money
from tests.support.time_expense_builders import entity, expense_line, tax_rule, tax_rules

CAT = ExpenseCategory


@pytest.mark.parametrize(
    ("case", "entity_code", "category", "gross", "supplier", "expected"),
    [
        # (net, tax, recoverable, non-recoverable, kind, code)
        (
            "UK meal, VAT 20 % included",
            "UK01",
            CAT.MEALS,
            "120.00",
            "GB",
            ("100.00", "20.00", "20.00", "0.00", TaxKind.DOMESTIC, "GB-S20"),
        ),
        (
            "UK VAT fraction rounds to the penny",
            "UK01",
            CAT.MEALS,
            "10.00",
            "GB",
            ("8.33", "1.67", "1.67", "0.00", TaxKind.DOMESTIC, "GB-S20"),
        ),
        (
            "UK client entertainment: VAT 0 % recoverable",
            "UK01",
            CAT.CLIENT_ENTERTAINMENT,
            "120.00",
            "GB",
            ("100.00", "20.00", "0.00", "20.00", TaxKind.DOMESTIC, "GB-S20-NR"),
        ),
        (
            "UK software from a US supplier: reverse charge",
            "UK01",
            CAT.SOFTWARE,
            "1000.00",
            "US",
            ("1000.00", "200.00", "200.00", "0.00", TaxKind.REVERSE_CHARGE, "GB-RC20"),
        ),
        (
            "UK subcontractor in Ireland: reverse charge",
            "UK01",
            CAT.SUBCONTRACTOR,
            "2500.00",
            "IE",
            ("2500.00", "500.00", "500.00", "0.00", TaxKind.REVERSE_CHARGE, "GB-RC20"),
        ),
        (
            "UK software from a UK supplier: domestic",
            "UK01",
            CAT.SOFTWARE,
            "1200.00",
            "GB",
            ("1000.00", "200.00", "200.00", "0.00", TaxKind.DOMESTIC, "GB-S20"),
        ),
        (
            "UK worker's meal in France: foreign VAT is a cost",
            "UK01",
            CAT.MEALS,
            "48.60",
            "FR",
            ("48.60", "0.00", "0.00", "0.00", TaxKind.OUTSIDE_SCOPE, "OUTSIDE_SCOPE"),
        ),
        (
            "UK rail fare: zero-rated",
            "UK01",
            CAT.TRAVEL,
            "86.40",
            "GB",
            ("86.40", "0.00", "0.00", "0.00", TaxKind.DOMESTIC, "GB-Z0"),
        ),
        (
            "UK mileage: no VAT",
            "UK01",
            CAT.MILEAGE,
            "45.00",
            "GB",
            ("45.00", "0.00", "0.00", "0.00", TaxKind.NO_TAX, "GB-NOVAT"),
        ),
        (
            "UK lodging falls back to the entity default",
            "UK01",
            CAT.LODGING,
            "180.00",
            "GB",
            ("150.00", "30.00", "30.00", "0.00", TaxKind.DOMESTIC, "GB-S20"),
        ),
        (
            "US meal: sales tax included, not recoverable",
            "US01",
            CAT.MEALS,
            "53.63",
            "US",
            ("50.00", "3.63", "0.00", "3.63", TaxKind.DOMESTIC, "US-ST"),
        ),
        (
            "US software from Ireland: use tax self-assessed",
            "US01",
            CAT.SOFTWARE,
            "500.00",
            "IE",
            ("500.00", "36.25", "0.00", "36.25", TaxKind.REVERSE_CHARGE, "US-USE"),
        ),
        (
            "JP meal: consumption tax in whole yen",
            "JP01",
            CAT.MEALS,
            "1100",
            "JP",
            ("1000", "100", "100", "0", TaxKind.DOMESTIC, "JP-10"),
        ),
        (
            "JP yen rounding",
            "JP01",
            CAT.MEALS,
            "1234",
            "JP",
            ("1122", "112", "112", "0", TaxKind.DOMESTIC, "JP-10"),
        ),
    ],
)
def test_given_an_expense_when_taxed_then_entity_category_and_supplier_decide_the_treatment(
    case, entity_code, category, gross, supplier, expected
):
    line = expense_line(entity_code=entity_code, category=category, gross=gross, supplier_country=supplier)
    treatment = tax_treatment(line, entity(entity_code), tax_rules())
    net, tax, recoverable, non_recoverable, kind, code = expected
    currency = entity(entity_code).functional_currency
    assert treatment.net == money(net, currency), case
    assert treatment.tax == money(tax, currency), case
    assert treatment.recoverable_tax == money(recoverable, currency), case
    assert treatment.non_recoverable_tax == money(non_recoverable, currency), case
    assert (treatment.kind, treatment.code) == (kind, code), case
    assert treatment.reverse_charge is (kind is TaxKind.REVERSE_CHARGE), case


def test_reverse_charge_is_computed_but_not_paid_to_the_supplier():
    line = expense_line(entity_code="UK01", category=CAT.SOFTWARE, gross="1000.00", supplier_country="US")
    treatment = tax_treatment(line, entity("UK01"), tax_rules())
    assert treatment.gross == money("1000.00", "GBP")  # what the supplier is paid
    assert treatment.rate == Decimal("0.20") and treatment.regime is TaxRegime.VAT
    assert treatment.cost == money("1000.00", "GBP")  # fully recovered: no cost beyond the net


def test_use_tax_that_cannot_be_recovered_is_a_cost_on_top_of_the_price():
    line = expense_line(category=CAT.SOFTWARE, gross="500.00", supplier_country="IE")
    assert tax_treatment(line, entity("US01"), tax_rules()).cost == money("536.25")


def test_partly_recoverable_tax_splits_to_the_cent():
    rule = tax_rule(recoverable_share=Decimal("0.5"))
    line = expense_line(entity_code="UK01", gross="10.00")
    treatment = tax_treatment(line, entity("UK01"), [rule])
    assert (treatment.recoverable_tax, treatment.non_recoverable_tax) == (
        money("0.84", "GBP"),
        money("0.83", "GBP"),
    )


def test_gross_with_sub_cent_digits_is_rounded_first():
    line = expense_line(entity_code="UK01", gross="120.004")
    treatment = tax_treatment(line, entity("UK01"), tax_rules())
    assert treatment.gross == money("120.00", "GBP") and treatment.tax == money("20.00", "GBP")


def test_a_category_rule_wins_over_the_entity_default_and_other_entities_rules_are_ignored():
    rules = tax_rules()
    assert find_tax_rule("UK01", CAT.SOFTWARE, rules).reverse_charge_code == "GB-RC20"
    assert find_tax_rule("UK01", CAT.OTHER, rules).code == "GB-S20"
    assert find_tax_rule("US01", CAT.OTHER, rules).code == "US-ST"
    assert find_tax_rule("DE01", CAT.MEALS, rules) is None


def test_without_a_tax_rule_the_treatment_is_a_typed_data_error():
    line = expense_line(entity_code="UK01")
    with pytest.raises(DataValidationError) as caught:
        tax_treatment(line, entity("UK01"), [r for r in tax_rules() if r.legal_entity_code != "UK01"])
    assert caught.value.code == "NO_TAX_RULE" and caught.value.problems[0]["field"] == "category"


def test_without_a_tax_rule_the_check_says_what_to_add():
    line = expense_line(entity_code="UK01", category=CAT.LODGING)
    (violation,) = check_tax_rule(line, [tax_rule(category=CAT.MEALS)])
    assert violation.rule is Rule.TAX_RULE and violation.value == "lodging"
    assert "UK01 has no tax rule for lodging" in violation.message
    assert check_tax_rule(line, tax_rules()) == []


def test_an_entity_that_is_not_the_lines_is_a_wiring_error():
    with pytest.raises(ValueError, match="UK01"):
        tax_treatment(expense_line(), entity("UK01"), tax_rules())


@given(
    units=st.integers(min_value=1, max_value=10**9),
    currency=st.sampled_from(["GBP", "USD", "JPY", "KWD"]),
    rate=st.integers(min_value=0, max_value=3000).map(lambda r: Decimal(r) / 10000),
    share=st.integers(min_value=0, max_value=100).map(lambda s: Decimal(s) / 100),
    supplier=st.sampled_from(["GB", "FR", "US"]),
    reverse_charge=st.booleans(),
)
def test_property_tax_parts_always_add_up_to_the_gross_to_the_minor_unit(
    units, currency, rate, share, supplier, reverse_charge
):
    unit = minor_unit(currency)
    gross = money(str(units * unit), currency)
    rule = tax_rule(
        rate=rate,
        recoverable_share=share,
        reverse_charge=reverse_charge,
        reverse_charge_code="GB-RC" if reverse_charge else None,
    )
    line = expense_line(entity_code="UK01", gross=gross, supplier_country=supplier)
    t = tax_treatment(line, entity("UK01"), [rule])
    amounts = [t.gross, t.net, t.tax, t.recoverable_tax, t.non_recoverable_tax]
    assert all(m.currency == currency and m.amount == m.amount.quantize(unit) for m in amounts)
    assert all(m.amount >= 0 for m in amounts)
    assert t.recoverable_tax.amount + t.non_recoverable_tax.amount == t.tax.amount
    if t.reverse_charge:
        assert t.net == t.gross
        exact = gross.amount * rate
    else:
        assert t.net.amount + t.tax.amount == t.gross.amount
        exact = gross.amount * rate / (1 + rate) if t.kind is TaxKind.DOMESTIC else Decimal(0)
    assert abs(t.tax.amount - exact) <= unit / 2
    assert abs(t.recoverable_tax.amount - t.tax.amount * share) <= unit / 2
    # the journal balances: expense (net + non-recoverable) + recoverable = paid to supplier + self-assessed
    self_assessed = t.tax.amount if t.reverse_charge else Decimal(0)
    assert t.cost.amount + t.recoverable_tax.amount == t.gross.amount + self_assessed
    assert t.kind is (
        TaxKind.DOMESTIC
        if supplier == "GB"
        else TaxKind.REVERSE_CHARGE
        if reverse_charge
        else TaxKind.OUTSIDE_SCOPE
    )
