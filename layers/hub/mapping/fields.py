"""A small declarative field map: vendor field name <-> canonical field, with a converter pair.

A :class:`FieldMap` is a tuple of :class:`Field` rows. ``load`` turns a vendor record into the keyword
arguments of a canonical model (pydantic then validates them, so a malformed value raises a
``ValidationError`` naming the canonical field); ``dump`` turns a canonical object into a vendor body.

Canonical names may be dotted paths (``customer.name``) for reading nested canonical values. Converters are
deliberately lenient normalisers (e.g. Salesforce's ``+0000`` offsets, floats to ``Decimal``): deciding what
is valid is the canonical model's job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from hub.model import Money

Loader = Callable[[Any, Mapping[str, Any]], Any]
"""(vendor value, whole vendor record with context) -> value handed to the canonical model."""
Dumper = Callable[[Any], Any]
"""canonical value -> vendor value."""

MISSING_VALUES = (None, "")
"""Values treated as "not there": JSON null, absent, and the empty string a SOAP/XML source gives."""


def same(value: Any, _record: Mapping[str, Any] | None = None) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One vendor field and the canonical field it carries.

    ``load_from`` lists vendor names to read, first present wins (default: ``vendor`` only); ``dump`` always
    writes ``vendor``. ``direction`` restricts a row to one way, for a vendor field that has no canonical home
    of its own (e.g. the currency code written next to an amount). ``keep_none`` writes ``None`` in dumps
    (useful to clear a field); by default ``None`` is left out.
    """

    vendor: str
    canonical: str
    load: Loader = same
    dump: Dumper = same
    load_from: tuple[str, ...] = ()
    direction: Literal["both", "load", "dump"] = "both"
    keep_none: bool = False

    def read(self, record: Mapping[str, Any]) -> Any:
        for name in self.load_from or (self.vendor,):
            value = record.get(name)
            if value not in MISSING_VALUES:
                return self.load(value, record)
        return None


class FieldMap:
    def __init__(self, *fields: Field, constants: Mapping[str, Any] | None = None) -> None:
        self.fields = fields
        self.constants = dict(constants or {})  # written on every dump (e.g. {"budgeted": True})

    def load(self, record: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Canonical keyword arguments; ``context`` fills vendor values the record lacks (e.g. currency)."""
        source: Mapping[str, Any] = record
        if context:
            merged = dict(record)
            for name, value in context.items():
                if merged.get(name) in MISSING_VALUES:
                    merged[name] = value
            source = merged
        out: dict[str, Any] = {}
        for row in self.fields:
            if row.direction == "dump":
                continue
            _put(out, row.canonical, row.read(source))
        return out

    def dump(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.constants)
        for row in self.fields:
            if row.direction == "load":
                continue
            value = _get(obj, row.canonical)
            vendor_value = None if value is None else row.dump(value)
            if vendor_value is not None or row.keep_none:
                out[row.vendor] = vendor_value
        return out

    def vendor_names(self) -> list[str]:
        """Every vendor field this map reads (e.g. for a ``fields=`` projection)."""
        names: list[str] = []
        for row in self.fields:
            if row.direction == "dump":
                continue
            for name in row.load_from or (row.vendor,):
                if name not in names:
                    names.append(name)
        return names


def _put(out: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        out[head] = value
        return
    _put(out.setdefault(head, {}), rest, value)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, Mapping) else getattr(obj, part, None)
    return obj


# ----------------------------------------------------------------------------------------- converters


def decimal_in(value: Any, _record: Mapping[str, Any] | None = None) -> Any:
    """JSON floats become exact decimals via their shortest repr (0.1 -> Decimal('0.1')); the rest as is."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def number_out(value: Decimal) -> float | int:
    """A decimal as a JSON number (vendors document numbers): integral values as int."""
    return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)


def money_in(currency_field: str) -> Loader:
    """Amount field + the record's currency field -> Money arguments (validated by the model)."""

    def load(value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        currency = record.get(currency_field)
        return {"amount": decimal_in(value), "currency": None if currency in MISSING_VALUES else currency}

    return load


def money_amount_out(money: Money) -> float | int:
    return number_out(money.amount)


def money_currency_out(money: Money) -> str:
    return money.currency


def money_cents_out(money: Money) -> int:
    return money.cents()


def date_out(value: dt.date) -> str:
    return value.isoformat()


def picklist(table: Mapping[str, Enum]) -> tuple[Loader, Dumper]:
    """A vendor picklist <-> canonical enum pair. An unknown label reaches the model as is and is rejected."""
    reverse = {member: label for label, member in table.items()}

    def load(value: Any, _record: Mapping[str, Any]) -> Any:
        return table.get(value, value) if isinstance(value, str) else value

    def dump(value: Enum) -> str:
        return reverse[value]

    return load, dump


def lookup(table: Mapping[Any, Any]) -> Dumper:
    """A canonical value -> vendor value table (dump only); an unmapped value raises ``KeyError``."""

    def dump(value: Any) -> Any:
        return table[value]

    return dump
