"""The two query languages the NetSuite sandbox understands, each a small documented subset.

* Record collection filters, `GET /services/rest/record/v1/{type}?q=...`: conditions `field OPERATOR value`
  joined by `AND` / `OR` (AND binds tighter, no parentheses). Operators as NetSuite names them: `IS`, `IS_NOT`,
  `EQUAL`, `NOT_EQUAL`, `GREATER`, `GREATER_OR_EQUAL`, `LESS`, `LESS_OR_EQUAL`, `START_WITH`, `CONTAIN`,
  `ANY_OF`, `EMPTY`, `EMPTY_NOT`, and for dates `AFTER`, `BEFORE`, `ON`, `ON_OR_AFTER`, `ON_OR_BEFORE`. Values
  are bare words or double-quoted; dates ISO (`2025-01-31`) or `M/D/YYYY`.
* SuiteQL, `POST /services/rest/query/v1/suiteql` with `{"q": "SELECT ... FROM table [WHERE ...] [ORDER BY
  col [ASC|DESC]]"}`: columns by name or `*`, conditions `col = | != | <> | < | <= | > | >= value` joined by
  `AND`, values `'text'`, numbers, or `TO_DATE('2025-01-31', 'YYYY-MM-DD')`. Booleans are `'T'` / `'F'` and
  dates are `M/D/YYYY` in answers, as SuiteQL gives them.

Anything outside the subset raises `QueryError` (the sandbox answers it with NetSuite's 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any


class QueryError(ValueError):
    """A query the sandbox (or NetSuite) cannot run."""


# ------------------------------------------------------------------------------ record collection `q`
_Q_CONDITION = re.compile(
    r'^\s*(?P<field>[A-Za-z_][\w.]*)\s+(?P<op>[A-Z_]+)(?:\s+(?P<value>"[^"]*"|\S.*?))?\s*$'
)
_Q_SPLIT_OR = re.compile(r'\s+OR\s+(?=(?:[^"]*"[^"]*")*[^"]*$)')
_Q_SPLIT_AND = re.compile(r'\s+AND\s+(?=(?:[^"]*"[^"]*")*[^"]*$)')
_Q_OPERATORS = {
    "IS",
    "IS_NOT",
    "EQUAL",
    "NOT_EQUAL",
    "GREATER",
    "GREATER_OR_EQUAL",
    "LESS",
    "LESS_OR_EQUAL",
    "START_WITH",
    "CONTAIN",
    "ANY_OF",
    "EMPTY",
    "EMPTY_NOT",
    "AFTER",
    "BEFORE",
    "ON",
    "ON_OR_AFTER",
    "ON_OR_BEFORE",
}


def parse_date(value: Any) -> date | None:
    """ISO `YYYY-MM-DD` or the account format `M/D/YYYY`; None when it is neither."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if match:
        month, day, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            return None
    return None


def record_filter(q: str, field_value: Callable[[Mapping[str, Any], str], Any]) -> Callable[[Mapping], bool]:
    """Compile a `q` expression into a predicate over records; `field_value(record, field)` reads a field
    (raising KeyError for a field the record type does not have)."""
    groups = [
        [_q_condition(part) for part in _Q_SPLIT_AND.split(group)] for group in _Q_SPLIT_OR.split(q.strip())
    ]

    def matches(record: Mapping[str, Any]) -> bool:
        return any(all(test(record, field_value) for test in group) for group in groups)

    return matches


def _q_condition(text: str) -> Callable[[Mapping[str, Any], Callable], bool]:
    match = _Q_CONDITION.match(text)
    if not match or match["op"] not in _Q_OPERATORS:
        raise QueryError(f"Invalid search query: {text.strip()!r}")
    field, op, raw = match["field"], match["op"], match["value"]
    if raw is None and op not in ("EMPTY", "EMPTY_NOT"):
        raise QueryError(f"Invalid search query: {text.strip()!r} has no value")
    value = raw[1:-1] if raw and raw.startswith('"') else raw

    def test(record: Mapping[str, Any], field_value: Callable) -> bool:
        try:
            actual = field_value(record, field)
        except KeyError:
            raise QueryError(f"Invalid search query: unknown field '{field}'") from None
        return _q_compare(op, actual, value)

    return test


def _q_compare(op: str, actual: Any, wanted: str | None) -> bool:
    if isinstance(actual, dict):  # a reference compares by its id
        actual = actual.get("id")
    if op == "EMPTY":
        return actual in (None, "", [])
    if op == "EMPTY_NOT":
        return actual not in (None, "", [])
    if op in ("IS", "IS_NOT"):
        equal = _loose_equal(actual, wanted)
        return equal if op == "IS" else not equal
    if op == "ANY_OF":
        return any(_loose_equal(actual, part.strip()) for part in (wanted or "").split(","))
    if op == "START_WITH":
        return str(actual or "").lower().startswith((wanted or "").lower())
    if op == "CONTAIN":
        return (wanted or "").lower() in str(actual or "").lower()
    if op in ("AFTER", "BEFORE", "ON", "ON_OR_AFTER", "ON_OR_BEFORE"):
        left, right = parse_date(actual), parse_date(wanted)
        if right is None:
            raise QueryError(f"Invalid search query: '{wanted}' is not a date")
        if left is None:
            return False
        return {
            "AFTER": left > right,
            "BEFORE": left < right,
            "ON": left == right,
            "ON_OR_AFTER": left >= right,
            "ON_OR_BEFORE": left <= right,
        }[op]
    try:
        left_n, right_n = float(actual), float(wanted or "")
    except (TypeError, ValueError):
        return False
    return {
        "EQUAL": left_n == right_n,
        "NOT_EQUAL": left_n != right_n,
        "GREATER": left_n > right_n,
        "GREATER_OR_EQUAL": left_n >= right_n,
        "LESS": left_n < right_n,
        "LESS_OR_EQUAL": left_n <= right_n,
    }[op]


def _loose_equal(actual: Any, wanted: str | None) -> bool:
    if isinstance(actual, bool):
        return str(wanted).lower() == str(actual).lower()
    return str(actual) == str(wanted)


# ------------------------------------------------------------------------------ SuiteQL
_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+(?P<table>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?)?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SQL_SPLIT_AND = re.compile(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)
_SQL_CONDITION = re.compile(r"^\s*(?P<column>\w+)\s*(?P<op><=|>=|<>|!=|=|<|>)\s*(?P<value>.+?)\s*$")
_TO_DATE = re.compile(r"^TO_DATE\(\s*'(?P<text>[^']*)'\s*,\s*'(?P<format>[^']*)'\s*\)$", re.IGNORECASE)


def suiteql_date(value: date) -> str:
    """SuiteQL's default date rendering (the account's M/D/YYYY format)."""
    return f"{value.month}/{value.day}/{value.year}"


def run_suiteql(
    query: str, tables: Mapping[str, Callable[[], Iterable[Mapping[str, Any]]]]
) -> list[dict[str, Any]]:
    """Run a SuiteQL query over `tables` (name -> rows of SuiteQL-shaped columns); returns the result rows."""
    match = _SELECT.match(query or "")
    if not match:
        raise QueryError("Invalid search query. Search error occurred: Invalid or unsupported search.")
    table = match["table"].lower()
    if table not in tables:
        raise QueryError(f"Invalid search query. Search error occurred: Record '{table}' was not found.")
    rows = [dict(row) for row in tables[table]()]
    known = set(rows[0]) if rows else None
    conditions = (
        [] if not match["where"] else [_sql_condition(c) for c in _SQL_SPLIT_AND.split(match["where"])]
    )
    for column, _, _ in conditions:
        if known is not None and column not in known:
            raise QueryError(f"Invalid search query. Search error occurred: Field '{column}' was not found.")
    rows = [row for row in rows if all(_sql_compare(row.get(c), op, v) for c, op, v in conditions)]
    if match["order"]:
        key = match["order"].lower()
        rows.sort(key=lambda r: _sortable(r.get(key)), reverse=(match["direction"] or "").upper() == "DESC")
    columns = [c.strip().lower() for c in match["columns"].split(",")]
    if columns == ["*"]:
        return rows
    for column in columns:
        if known is not None and column not in known:
            raise QueryError(f"Invalid search query. Search error occurred: Field '{column}' was not found.")
    return [{c: row.get(c) for c in columns} for row in rows]


def _sql_condition(text: str) -> tuple[str, str, Any]:
    match = _SQL_CONDITION.match(text)
    if not match:
        raise QueryError(f"Invalid search query. Search error occurred: cannot parse '{text.strip()}'.")
    raw = match["value"]
    to_date = _TO_DATE.match(raw)
    if to_date:
        value: Any = parse_date(to_date["text"])
        if value is None:
            raise QueryError(f"Invalid search query. Search error occurred: bad date '{to_date['text']}'.")
    elif raw.startswith("'") and raw.endswith("'"):
        value = raw[1:-1]
    else:
        try:
            value = float(raw)
        except ValueError:
            raise QueryError(f"Invalid search query. Search error occurred: bad value '{raw}'.") from None
    return match["column"].lower(), match["op"], value


def _sql_compare(actual: Any, op: str, wanted: Any) -> bool:
    if isinstance(wanted, date):
        left: Any = parse_date(actual)
        if left is None:
            return False
        right: Any = wanted
    elif isinstance(wanted, float):
        try:
            left, right = float(actual), wanted
        except (TypeError, ValueError):
            return False
    else:
        left, right = str(actual) if actual is not None else None, wanted
        if left is None:
            return False
    return {
        "=": left == right,
        "!=": left != right,
        "<>": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _sortable(value: Any) -> tuple[int, Any]:
    as_date = parse_date(value) if isinstance(value, str) and "/" in value else None
    if as_date is not None:
        return (0, as_date.toordinal())
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))
