"""The posting queue's consumer: a batch of PSA entry pointers -> checked, posted to the ERP of each entry's legal
entity, and one answer per message (``batchItemFailures``), with Powertools' BatchProcessor.

The domain (``hub.flows.posting.consumer``) decides every message's fate for the whole batch at once (the PSA
is read in a few calls, each ERP gets one batched call); the record handler only turns that fate into
success or failure for its message. Each ERP's requests hold a slot of the ERP account's concurrency budget
(DynamoDB, shared by every container), so however many batches run, the account never sees more than its
limit in flight.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.observability import entry
from hub.settings import PostingConsumerSettings, load

# A consumer waits this long for a budget slot before it calls its entries throttled (and sends them again,
# ``THROTTLED_AGAIN_SECONDS`` later at the least). The posting queue's consumers outnumber the pool's slots
# (``postingMaxConcurrency`` against ``erpPools``), so at month end a batch waits its turn: ten batches of
# 100 on a pool of 5 at 100 ms a post take about 20 s to serve, and a shorter wait sends the last batches
# back to the queue for tens of seconds while the pool stands idle. 60 s leaves a 180 s invocation the time
# to post 100 entries one at a time and record them.
ACQUIRE_TIMEOUT_SECONDS = 60.0
THROTTLED_AGAIN_SECONDS = 5.0
# Workers of every consumer waiting for a slot look at the pool at most this far apart (full jitter): dozens
# of waiters at month end, so a freed slot is still found within tens of milliseconds, without each of them
# reading the pool five times a second.
WAIT_POLL_CAP_SECONDS = 1.0
# Each message's fate -> the business metric it counts in (the operations dashboard graphs these).
FATE_METRICS = {
    "posted": "EntriesPosted",
    "duplicate": "EntriesDuplicate",
    "adjustment": "EntriesAdjustment",
    "held": "EntriesHeld",
    "parked": "EntriesParked",
    "rejected": "EntriesRejected",
    "retry": "EntriesRetry",
    "malformed": "EntriesMalformed",
}


@dataclass
class Handlers:
    consume: Callable[[list[tuple[str, str]]], Any]  # (message id, body) pairs -> BatchMessages


@functools.lru_cache(maxsize=8)
def _psa(secret_value: str) -> Any:
    from hub.connectors import factory

    return factory.psa_from_secret(json.loads(secret_value))


@functools.lru_cache(maxsize=16)
def _erp(system: str, secret_value: str, pool: str, limit: int, table_name: str) -> Any:
    """One adapter per secret *value* (a rotated secret gets a fresh one), holding slots of its pool."""
    from hub.concurrency import ConcurrencyBudget
    from hub.connectors import factory

    budget = ConcurrencyBudget(
        pool,
        limit,
        table_name,
        acquire_timeout=ACQUIRE_TIMEOUT_SECONDS,
        retry_after=THROTTLED_AGAIN_SECONDS,
        backoff_cap=WAIT_POLL_CAP_SECONDS,
    )
    return factory.erp_from_secret(system, json.loads(secret_value), budget=budget, workers=limit)


def build_deps(
    settings: PostingConsumerSettings,
    *,
    psa: Any,
    erp: Callable[[str], Any],
    sqs: Any,
    now: Callable[[], Any] | None = None,
) -> Handlers:
    """The consumer wired to its tables, bus and queues; ``psa`` (a ``PsaReader``) and ``erp`` (system id ->
    ``ErpPostingPort``) come in from ``default_deps`` (secrets and budgets) or from a test, as may the clock
    the posting window is judged by (``now``, aware UTC)."""
    from hub.events import EventPublisher
    from hub.flows.posting.config import TableConfig
    from hub.flows.posting.consumer import ConsumerDeps, consume
    from hub.flows.posting.messages import PostingRequest
    from hub.flows.posting.service import PostingDeps
    from hub.ledger import Ledger
    from hub.redelivery import hold_attributes
    from hub.routing import RoutingTable

    def hold(body: str, reason: str, correlation_id: str | None) -> None:
        sqs.send_message(
            QueueUrl=settings.posting_dlq_url,
            MessageBody=body,
            MessageAttributes=hold_attributes(reason, correlation_id),
        )

    def resend(request: PostingRequest, delay: int) -> None:
        sqs.send_message(
            QueueUrl=settings.posting_queue_url,
            MessageBody=request.body(),
            DelaySeconds=delay,
            MessageAttributes={
                "correlationId": {"DataType": "String", "StringValue": request.correlation_id}
            },
        )

    config = TableConfig(
        settings.routing_table,
        project_status=lambda psa_id: psa.project_statuses([psa_id]).get(psa_id),
        task_status=lambda psa_id: psa.task_statuses([psa_id]).get(psa_id),
    )
    posting = PostingDeps(
        ledger=Ledger(settings.ledger_table),
        routing=RoutingTable(settings.routing_table),
        config=config,
        erp=erp,
        events=EventPublisher(settings.event_bus_name),
    )
    if now is not None:
        posting.now = now
    deps = ConsumerDeps(posting=posting, psa=psa, statuses=config, hold=hold, resend=resend)
    return Handlers(consume=lambda messages: consume(messages, deps))


class _SecretPsa:
    """The PSA adapter of the current secret value, resolved per call (a rotated secret is used at once)."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def line_items_by_id(self, kind: Any, psa_ids: Any) -> Any:
        return _psa(self._secret()).line_items_by_id(kind, psa_ids)

    def project_statuses(self, ids: Any) -> Any:
        return _psa(self._secret()).project_statuses(ids)

    def task_statuses(self, ids: Any) -> Any:
        return _psa(self._secret()).task_statuses(ids)

    def time_entries_on_days(self, worker_days: Any) -> Any:
        return _psa(self._secret()).time_entries_on_days(worker_days)


@functools.cache
def default_deps() -> Handlers:
    from aws_lambda_powertools.utilities import parameters

    from hub import aws
    from hub.errors import PermanentError

    settings = load(PostingConsumerSettings)

    def secret(arn: str) -> str:
        return parameters.get_secret(arn, max_age=300)  # rotation is picked up within five minutes

    def erp(system: str) -> Any:
        arn, budget = settings.erp_secret_arns.get(system), settings.erp_budgets.get(system)
        if arn is None or budget is None:
            raise PermanentError(
                f"no connection or concurrency budget is configured for ERP system {system!r}",
                system=system,
                code="UNKNOWN_ERP_SYSTEM",
            )
        return _erp(system, secret(arn), budget.pool, budget.limit, settings.routing_table)

    return build_deps(
        settings,
        psa=_SecretPsa(lambda: secret(settings.psa_secret_arn)),
        erp=erp,
        sqs=aws.client("sqs"),
    )


@entry(PostingConsumerSettings)
def handler(event: dict[str, Any], context: Any, deps: Handlers | None = None) -> dict[str, Any]:
    from hub.redelivery import partial_batch_answer

    deps = deps or default_deps()
    records = event.get("Records") or []
    outcome = deps.consume([(r["messageId"], r.get("body") or "") for r in records])
    return partial_batch_answer(event, context, outcome, fate_metrics=FATE_METRICS, what="posting")
