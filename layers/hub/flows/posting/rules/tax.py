"""Tax treatment of an expense line, by legal entity and category (``TaxRule``).

- Domestic supplier (same country as the entity): the gross includes the tax;
  ``tax = gross * rate / (1 + rate)``, ``net = gross - tax``.
- Foreign supplier, category reverse-charged (cross-border services; US use tax): the supplier is paid the
  gross and charged no tax; the entity self-assesses ``tax = gross * rate`` (``net = gross``).
- Foreign supplier, category not reverse-charged (a meal abroad): any foreign tax is part of the cost,
  outside the entity's scope (``tax = 0``).
- Regime ``none`` (e.g. mileage): no tax.
Recoverable tax is ``tax * recoverable_share``; the rest is non-recoverable (e.g. UK client entertainment,
0 % recoverable; US sales tax, normally 0 %). Every amount is rounded half up to the currency's minor unit,
the gross first, and the non-recoverable part and the net are computed by difference, so the parts always
add up to the cent.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from hub.errors import DataValidationError
from hub.flows.posting.rules.violation import Rule, Violation, label
from hub.model import (
    ExpenseCategory,
    ExpenseLine,
    LegalEntity,
    Money,
    TaxKind,
    TaxRegime,
    TaxRule,
    TaxTreatment,
    minor_unit,
    round_money,
)


def find_tax_rule(entity_code: str, category: ExpenseCategory, rules: Iterable[TaxRule]) -> TaxRule | None:
    """The entity's rule for the category, else its default rule (``category=None``), else None. ``rules``
    may hold every entity's rules."""
    default = None
    for rule in rules:
        if rule.legal_entity_code != entity_code:
            continue
        if rule.category is category:
            return rule
        if rule.category is None and default is None:
            default = rule
    return default


def check_tax_rule(line: ExpenseLine, rules: Iterable[TaxRule]) -> list[Violation]:
    if find_tax_rule(line.legal_entity_code, line.category, rules) is not None:
        return []
    category = line.category.replace("_", " ")
    return [
        Violation(
            rule=Rule.TAX_RULE,
            field="category",
            value=str(line.category),
            limit=None,
            message=f"{label(line)}: {line.legal_entity_code} has no tax rule for {category} (nor a default "
            "one), so its tax cannot be determined; add one to the tax table",
        )
    ]


def tax_treatment(line: ExpenseLine, entity: LegalEntity, rules: Iterable[TaxRule]) -> TaxTreatment:
    """The tax of ``line`` for ``entity``; ``DataValidationError`` (code ``NO_TAX_RULE``) without a rule."""
    if line.legal_entity_code != entity.code:
        raise ValueError(f"entity {entity.code} passed for an expense of {line.legal_entity_code}")
    rule = find_tax_rule(entity.code, line.category, rules)
    if rule is None:
        raise DataValidationError(
            f"no tax rule for {line.category} in {entity.code}",
            problems=[{"field": "category", "problem": f"{entity.code} has no tax rule for {line.category}"}],
            code="NO_TAX_RULE",
        )
    gross = round_money(line.gross)
    currency = gross.currency
    unit = minor_unit(currency)

    def rounded(amount: Decimal) -> Decimal:
        return amount.quantize(unit, rounding=ROUND_HALF_UP)

    def money(amount: Decimal) -> Money:
        return Money(amount=amount, currency=currency)

    zero = rounded(Decimal(0))
    domestic = line.supplier_country == entity.country
    if rule.regime is TaxRegime.NONE:
        kind, rate, tax, code = TaxKind.NO_TAX, Decimal(0), zero, rule.code
    elif domestic:
        kind, rate, code = TaxKind.DOMESTIC, rule.rate, rule.code
        tax = rounded(gross.amount * rate / (1 + rate))
    elif rule.reverse_charge:
        assert rule.reverse_charge_code is not None  # the model guarantees it
        kind, rate, code = TaxKind.REVERSE_CHARGE, rule.rate, rule.reverse_charge_code
        tax = rounded(gross.amount * rate)
    else:
        kind, rate, tax, code = TaxKind.OUTSIDE_SCOPE, Decimal(0), zero, rule.out_of_scope_code
    reverse_charge = kind is TaxKind.REVERSE_CHARGE
    recoverable = rounded(tax * rule.recoverable_share)
    return TaxTreatment(
        gross=gross,
        net=gross if reverse_charge else money(gross.amount - tax),
        tax=money(tax),
        rate=rate,
        recoverable_tax=money(recoverable),
        non_recoverable_tax=money(tax - recoverable),
        reverse_charge=reverse_charge,
        kind=kind,
        regime=rule.regime,
        code=code,
    )
