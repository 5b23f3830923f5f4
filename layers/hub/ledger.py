"""The transaction ledger: one item per business transaction, with every checkpoint beside it.

Layout (one DynamoDB table):
- header     ``pk=TX#{correlationId}``, ``sk=TX``: flow, business key, status, attempt, reason, refs;
  indexed by business key (``gsi1pk=BK#{key}``) and by status (``gsi2pk=ST#{status}``).
- checkpoint ``sk=CP#{time}#{step}``: each step's outcome (ok, retry, parked...), attempt and detail.
- delivery   ``sk=DL#{deliveryId}``: each inbound delivery that mapped to this transaction (duplicates show).

Everything is keyed on the correlation id so one query returns the whole story of a transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub import aws
from hub.errors import TransientError


class Status(enum.StrEnum):
    RECEIVED = "RECEIVED"  # recorded at the door, not yet handed to the queue
    QUEUED = "QUEUED"  # on the intake queue
    RUNNING = "RUNNING"  # an orchestration execution is working on it
    COMPLETED = "COMPLETED"
    PARKED = "PARKED"  # stopped with a reason; ops can fix and redrive
    HELD = "HELD"  # waiting on the calendar (a closed accounting period); re-evaluated, no one needs to act
    IGNORED = "IGNORED"  # a change that starts no business transaction (recorded, acknowledged)


TERMINAL = frozenset({Status.COMPLETED, Status.IGNORED})
NOT_COMPLETED = frozenset(Status) - {Status.COMPLETED}  # what a later outcome may overwrite: never a posting


@dataclass(frozen=True)
class Checkpoint:
    """One step's outcome for ``Ledger.checkpoints`` (written in batches)."""

    correlation_id: str
    step: str
    outcome: str
    attempt: int | None = None
    detail: Mapping[str, Any] | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _clean(value: Any) -> Any:
    """DynamoDB-safe: floats to Decimal, drop None inside maps."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """JSON-safe: Decimal back to int/str."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Ledger:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else aws.table(table_name)

    # -- writes -----------------------------------------------------------------------------------------
    def open(
        self,
        correlation_id: str,
        *,
        flow: str,
        business_key: str,
        subject: str,
        source: str,
        status: Status = Status.RECEIVED,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Record a new transaction; if it exists already, return it unchanged. ``(header, created)``."""
        item = self._new_header(
            correlation_id,
            flow=flow,
            business_key=business_key,
            subject=subject,
            source=source,
            status=status,
            reason=reason,
            summary=summary,
        )
        exceptions = self._table.meta.client.exceptions
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except exceptions.ConditionalCheckFailedException:
            existing = self.header(correlation_id)
            if existing is None:  # deleted between the two calls: extremely unlikely, try once more
                self._table.put_item(Item=item)
                return _plain(item), True
            return existing, False
        return _plain(item), True

    @staticmethod
    def _new_header(
        correlation_id: str,
        *,
        flow: str,
        business_key: str,
        subject: str,
        source: str,
        status: Status = Status.RECEIVED,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = _now()
        return _clean(  # type: ignore[no-any-return]
            {
                "pk": f"TX#{correlation_id}",
                "sk": "TX",
                "correlation_id": correlation_id,
                "flow": flow,
                "business_key": business_key,
                "subject": subject,
                "source": source,
                "status": str(status),
                "reason": reason,
                "attempt": 1,
                "summary": dict(summary or {}),
                "refs": {},
                "created_at": now,
                "updated_at": now,
                "gsi1pk": f"BK#{business_key}",
                "gsi1sk": now,
                "gsi2pk": f"ST#{status}",
                "gsi2sk": now,
            }
        )

    def record_delivery(self, correlation_id: str, delivery_id: str, *, channel: str) -> None:
        self._table.put_item(
            Item={
                "pk": f"TX#{correlation_id}",
                "sk": f"DL#{delivery_id}",
                "delivery_id": delivery_id,
                "channel": channel,
                "at": _now(),
            }
        )

    def set_status(
        self,
        correlation_id: str,
        status: Status,
        *,
        reason: str | None = None,
        refs: Mapping[str, Any] | None = None,
        attempt: int | None = None,
        only_if_in: frozenset[Status] | None = None,
        only_if_attempt: int | None = None,
        release: bool = False,
    ) -> bool:
        """Move the transaction to ``status``; with ``only_if_in``, only from those statuses (and with
        ``only_if_attempt``, only while it is at that attempt); ``release`` also ends a posting claim in the
        same write. True if moved."""
        now = _now()
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": str(status), ":u": now, ":g": f"ST#{status}"}
        sets = ["#s = :s", "updated_at = :u", "gsi2pk = :g", "gsi2sk = :u"]
        removes = []
        if reason is not None:
            sets.append("reason = :r")
            values[":r"] = reason
        elif status in (Status.COMPLETED, Status.RUNNING, Status.QUEUED):
            removes.append("reason")
        if release:
            removes.extend(("claim_owner", "claim_until", "claim_version"))
        if attempt is not None:
            sets.append("attempt = :a")
            values[":a"] = attempt
        for i, (key, value) in enumerate((refs or {}).items()):
            if value is None:
                continue
            names[f"#r{i}"] = key
            values[f":r{i}"] = _clean(value)
            sets.append(f"refs.#r{i} = :r{i}")
        condition = "attribute_exists(pk)"
        if only_if_in:
            allowed = []
            for i, allowed_status in enumerate(sorted(only_if_in)):
                values[f":o{i}"] = str(allowed_status)
                allowed.append(f":o{i}")
            condition += f" AND #s IN ({', '.join(allowed)})"
        if only_if_attempt is not None:
            values[":expected_attempt"] = only_if_attempt
            condition += " AND attempt = :expected_attempt"
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        exceptions = self._table.meta.client.exceptions
        try:
            self._table.update_item(
                Key={"pk": f"TX#{correlation_id}", "sk": "TX"},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim(
        self,
        correlation_id: str,
        *,
        version: int,
        owner: str,
        lease_seconds: float,
        create: Mapping[str, Any] | None = None,
    ) -> bool:
        """Take the right to post ``version`` of this transaction for ``lease_seconds``: one conditional write.

        Refused (False) while another owner's claim is live, or once this version (or a later one) is posted,
        so two consumers holding copies of one entry never both post it. A claim ends with ``release`` or
        with the status the poster records (``set_status(..., release=True)``), or lapses at its lease: a
        consumer that died holding it delays the entry by one lease, it does not lose it.

        With ``create`` (``flow``, ``business_key``, ``subject``, ``source``, ``summary``: what ``open`` takes),
        a transaction not recorded yet is recorded by the same write (status RECEIVED), so a first post costs
        one write here, not two."""
        now = dt.datetime.now(dt.UTC).timestamp()
        until = Decimal(str(round(now + lease_seconds, 3)))
        exceptions = self._table.meta.client.exceptions
        if create is not None:  # most likely new: record it with its claim in one conditional put
            item = self._new_header(correlation_id, **create)
            item.update(claim_owner=owner, claim_until=until, claim_version=version)
            try:
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
                return True
            except exceptions.ConditionalCheckFailedException:
                pass  # recorded meanwhile by another consumer: claim it as an existing one
        try:
            self._table.update_item(
                Key={"pk": f"TX#{correlation_id}", "sk": "TX"},
                UpdateExpression="SET claim_owner = :o, claim_until = :until, claim_version = :v",
                ConditionExpression=(
                    "attribute_exists(pk)"
                    " AND (attribute_not_exists(claim_until) OR claim_until < :now OR claim_owner = :o)"
                    " AND (attribute_not_exists(refs.postedVersion) OR refs.postedVersion < :v)"
                ),
                ExpressionAttributeValues={
                    ":o": owner,
                    ":until": until,
                    ":now": Decimal(str(round(now, 3))),
                    ":v": version,
                },
            )
        except exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, correlation_id: str, *, owner: str) -> None:
        """Give a claim back early (the post will be retried); a claim someone else holds is left alone."""
        exceptions = self._table.meta.client.exceptions
        with contextlib.suppress(exceptions.ConditionalCheckFailedException):
            self._table.update_item(
                Key={"pk": f"TX#{correlation_id}", "sk": "TX"},
                UpdateExpression="REMOVE claim_owner, claim_until, claim_version",
                ConditionExpression="claim_owner = :o",
                ExpressionAttributeValues={":o": owner},
            )

    def checkpoint(
        self,
        correlation_id: str,
        step: str,
        outcome: str,
        *,
        attempt: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        now = _now()
        self._table.put_item(
            Item=_clean(
                {
                    "pk": f"TX#{correlation_id}",
                    "sk": f"CP#{now}#{step}",
                    "step": step,
                    "outcome": outcome,
                    "attempt": attempt,
                    "detail": dict(detail or {}),
                    "at": now,
                }
            )
        )

    def checkpoints(self, entries: Sequence[Checkpoint]) -> None:
        """Many checkpoints (of any transactions) in ``BatchWriteItem`` calls of 25."""
        now = dt.datetime.now(dt.UTC)
        items = []
        for n, e in enumerate(entries):  # a microsecond apart: one transaction's checkpoints keep their order
            stamp = (now + dt.timedelta(microseconds=n)).isoformat(timespec="microseconds")
            items.append(
                _clean(
                    {
                        "pk": f"TX#{e.correlation_id}",
                        "sk": f"CP#{stamp}#{e.step}",
                        "step": e.step,
                        "outcome": e.outcome,
                        "attempt": e.attempt,
                        "detail": dict(e.detail or {}),
                        "at": stamp,
                    }
                )
            )
        client = self._table.meta.client
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            for attempt in range(5):
                answer = client.batch_write_item(RequestItems={self._table.name: requests})
                requests = (answer.get("UnprocessedItems") or {}).get(self._table.name) or []
                if not requests:
                    break
                time.sleep(0.05 * 2**attempt)
            if requests:
                raise TransientError(f"{len(requests)} checkpoint(s) not written", system="dynamodb")

    # -- reads ------------------------------------------------------------------------------------------
    def headers(self, correlation_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The headers of the transactions that exist, by correlation id (``BatchGetItem``, 100 per call)."""
        found: dict[str, dict[str, Any]] = {}
        keys = [{"pk": f"TX#{cid}", "sk": "TX"} for cid in dict.fromkeys(correlation_ids)]
        for item in aws.batch_get(self._table, keys, consistent=True, what="ledger headers"):
            header = _plain(item)
            found[header["correlation_id"]] = header
        return found

    def header(self, correlation_id: str) -> dict[str, Any] | None:
        got = self._table.get_item(Key={"pk": f"TX#{correlation_id}", "sk": "TX"}, ConsistentRead=True)
        item = got.get("Item")
        return _plain(item) if item else None

    def get(self, correlation_id: str) -> dict[str, Any] | None:
        """The transaction with its checkpoints (oldest first) and deliveries, or None."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": f"TX#{correlation_id}"},
            "ConsistentRead": True,
        }
        while True:
            page = self._table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        header = next((i for i in items if i["sk"] == "TX"), None)
        if header is None:
            return None
        view = {k: v for k, v in _plain(header).items() if not k.startswith("gsi") and k not in ("pk", "sk")}
        view["checkpoints"] = [
            {k: v for k, v in _plain(i).items() if k not in ("pk", "sk")}
            for i in sorted((i for i in items if i["sk"].startswith("CP#")), key=lambda i: i["sk"])
        ]
        view["deliveries"] = [
            {k: v for k, v in _plain(i).items() if k not in ("pk", "sk")}
            for i in items
            if i["sk"].startswith("DL#")
        ]
        return view

    def by_business_key(self, business_key: str) -> list[dict[str, Any]]:
        page = self._table.query(
            IndexName="by_business_key",
            KeyConditionExpression="gsi1pk = :k",
            ExpressionAttributeValues={":k": f"BK#{business_key}"},
        )
        return [_plain(i) for i in page.get("Items", [])]

    def by_status(self, status: Status, *, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": "by_status",
            "KeyConditionExpression": "gsi2pk = :k",
            "ExpressionAttributeValues": {":k": f"ST#{status}"},
        }
        while len(items) < limit:
            page = self._table.query(**kwargs)
            items.extend(_plain(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[:limit]
