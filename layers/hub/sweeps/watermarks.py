"""The sweep's watermarks in the ledger table: one item per kind of entry, moved only forward.

Item layout (``pk=SWEEP#{kind}``, ``sk=WATERMARK``)::

    watermark    "2026-11-30T23:45:00.000000+00:00"   ISO-8601 UTC, fixed width (compares as text)
    updated_at   "2026-11-30T23:45:03.120000+00:00"   when a run last moved it
    last_window  {"updated_after": "...", "updated_before": "..."}   the window of that run
    last_counts  {"read": 12, "enqueued": 12, "unmappable": 1}      what that run read and enqueued

``save`` is a compare-and-set on the watermark the run read (``expected``): if another run moved it since,
or the new value would move it back, nothing is written and ``save`` answers ``False``. Two overlapping runs
therefore never lose or regress a watermark: the loser does not advance, and the messages it enqueued are
harmless (the consumer posts idempotently by entry id and version).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from hub import aws

SK = "WATERMARK"


def _pk(kind: str) -> str:
    return f"SWEEP#{kind}"


def _utc(name: str, moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(dt.UTC)


def _text(name: str, moment: dt.datetime) -> str:
    """Fixed-width UTC text: equal instants give equal strings, and order as text is order in time."""
    return _utc(name, moment).isoformat(timespec="microseconds")


def _parse(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    return _utc("the stored watermark", moment)


class WatermarkPort(Protocol):
    """Where a sweep keeps its watermark per kind (:class:`WatermarkStore`; a fake in tests)."""

    def get(self, kind: str) -> dt.datetime | None: ...

    def save(
        self,
        kind: str,
        new: dt.datetime,
        *,
        expected: dt.datetime | None,
        window: tuple[dt.datetime, dt.datetime] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> bool: ...


class WatermarkStore:
    """The sweep's watermark per kind (``time-entry``, ``expense``) in the ledger table."""

    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else aws.table(table_name)

    def get(self, kind: str) -> dt.datetime | None:
        """The stored watermark (aware, UTC), or ``None`` before the first completed run."""
        item = self._table.get_item(Key={"pk": _pk(kind), "sk": SK}, ConsistentRead=True).get("Item")
        if not item or "watermark" not in item:
            return None
        return _parse(str(item["watermark"]))

    def save(
        self,
        kind: str,
        new: dt.datetime,
        *,
        expected: dt.datetime | None,
        window: tuple[dt.datetime, dt.datetime] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> bool:
        """Move the watermark of ``kind`` from ``expected`` (what this run read; ``None``: there was none) to
        ``new``, with the run's window and counts. ``False`` if another run moved it since ``expected``, or
        if ``new`` is earlier than the stored watermark: nothing is written then."""
        new_text = _text("new", new)
        if expected is not None and new_text < _text("expected", expected):
            raise ValueError(f"a watermark never moves back: {new} is before {expected}")
        names = {"#w": "watermark"}
        values: dict[str, Any] = {":w": new_text, ":u": _text("now", dt.datetime.now(dt.UTC))}
        sets = ["#w = :w", "updated_at = :u"]
        if window is not None:
            values[":lw"] = {
                "updated_after": _text("updated_after", window[0]),
                "updated_before": _text("updated_before", window[1]),
            }
            sets.append("last_window = :lw")
        if counts is not None:
            values[":lc"] = {str(k): int(v) for k, v in counts.items()}
            sets.append("last_counts = :lc")
        if expected is None:
            condition = "attribute_not_exists(#w)"
        else:
            values[":e"] = _text("expected", expected)
            condition = "#w = :e AND #w <= :w"  # the second half is a guard: new >= expected is checked above
        exceptions = self._table.meta.client.exceptions
        try:
            self._table.update_item(
                Key={"pk": _pk(kind), "sk": SK},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except exceptions.ConditionalCheckFailedException:
            return False
        return True
