"""Where the posting flow reads each legal entity's configuration: the routing table, beside its routes.

Items (same table and key schema as ``hub.routing``):
- ``pk=LE#{code}``, ``sk=POSTING_POLICY``: the entity's ``PostingPolicy`` (hours, expense limits, receipts,
  closed-period behaviour);
- ``pk=LE#{code}``, ``sk=TAX#{category}`` (``TAX#*`` for the entity's default): its ``TaxRule`` objects.

Finance edits these as data (no deploy). Each Lambda container caches what it read for ``ttl`` seconds, so a
change reaches every container within that time. Project and task statuses belong to the PSA: they come in
as callables (the PSA port), cached the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hub import aws
from hub.errors import DataValidationError
from hub.model import PostingPolicy, ProjectStatus, TaskStatus, TaxRule

POLICY_SK = "POSTING_POLICY"
TAX_PREFIX = "TAX#"


class TableConfig:
    """``PostingConfig`` over the routing table (see the module doc)."""

    def __init__(
        self,
        table_name: str,
        table: Any | None = None,
        *,
        project_status: Callable[[str], ProjectStatus],
        task_status: Callable[[str], TaskStatus | None],
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table if table is not None else aws.table(table_name)
        self._project_status = project_status
        self._task_status = task_status
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def _cached(self, kind: str, key: str, load: Callable[[], Any]) -> Any:
        now = self._clock()
        hit = self._cache.get((kind, key))
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = load()
        self._cache[(kind, key)] = (now, value)
        return value

    # -- PostingConfig ------------------------------------------------------------------------------------
    def policy(self, legal_entity_code: str) -> PostingPolicy:
        def load() -> PostingPolicy:
            item = self._table.get_item(Key={"pk": f"LE#{legal_entity_code}", "sk": POLICY_SK}).get("Item")
            if item is None:
                raise DataValidationError(
                    f"no posting policy for legal entity {legal_entity_code}",
                    problems=[
                        {
                            "field": "legal_entity_code",
                            "problem": f"{legal_entity_code} has no posting policy",
                        }
                    ],
                    code="NO_POSTING_POLICY",
                )
            return PostingPolicy.model_validate_json(item["policy"])

        return self._cached("policy", legal_entity_code, load)  # type: ignore[no-any-return]

    def tax_rules(self, legal_entity_code: str) -> tuple[TaxRule, ...]:
        def load() -> tuple[TaxRule, ...]:
            page = self._table.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :tax)",
                ExpressionAttributeValues={":pk": f"LE#{legal_entity_code}", ":tax": TAX_PREFIX},
            )
            return tuple(TaxRule.model_validate_json(item["rule"]) for item in page.get("Items", []))

        return self._cached("tax", legal_entity_code, load)  # type: ignore[no-any-return]

    def project_status(self, psa_project_id: str) -> ProjectStatus:
        status = self._cached("project", psa_project_id, lambda: self._project_status(psa_project_id))
        if status is None:
            raise DataValidationError(
                f"the PSA has no project {psa_project_id}",
                problems=[
                    {"field": "project.psa_project_id", "problem": f"{psa_project_id} is not in the PSA"}
                ],
                code="UNKNOWN_PROJECT",
            )
        return status  # type: ignore[no-any-return]

    def task_status(self, psa_task_id: str) -> TaskStatus | None:
        status = self._cached("task", psa_task_id, lambda: self._task_status(psa_task_id))
        if status is None:
            raise DataValidationError(
                f"the PSA has no task {psa_task_id}",
                problems=[{"field": "task.psa_task_id", "problem": f"{psa_task_id} is not in the PSA"}],
                code="UNKNOWN_TASK",
            )
        return status  # type: ignore[no-any-return]

    # -- statuses read in bulk by the consumer (one PSA call per batch, not one per project) -------------
    def stale_statuses(self, kind: str, ids: Sequence[str]) -> list[str]:
        """The ``kind`` ("project" or "task") ids not cached, or cached longer than the TTL."""
        now = self._clock()
        return [i for i in ids if (hit := self._cache.get((kind, i))) is None or now - hit[0] >= self._ttl]

    def prime_statuses(self, kind: str, asked: Sequence[str], values: Mapping[str, Any]) -> None:
        """Cache what the PSA answered for ``asked``; an id it did not answer for is cached as unknown."""
        now = self._clock()
        for psa_id in asked:
            self._cache[(kind, psa_id)] = (now, values.get(psa_id))

    # -- for the seed and for finance's tooling -------------------------------------------------------------
    def put_policy(self, policy: PostingPolicy) -> None:
        self._table.put_item(
            Item={"pk": f"LE#{policy.legal_entity_code}", "sk": POLICY_SK, "policy": policy.model_dump_json()}
        )
        self._cache.pop(("policy", policy.legal_entity_code), None)

    def put_tax_rule(self, rule: TaxRule) -> None:
        category = rule.category.value if rule.category is not None else "*"
        self._table.put_item(
            Item={
                "pk": f"LE#{rule.legal_entity_code}",
                "sk": f"{TAX_PREFIX}{category}",
                "rule": rule.model_dump_json(),
            }
        )
        self._cache.pop(("tax", rule.legal_entity_code), None)
