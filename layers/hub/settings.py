"""Each function's settings, read from its environment once (cached), never at import time.

The infra tests compare every function's synthesized environment with the model named here, so a variable
is declared exactly once. Field ``ledger_table`` is read from ``LEDGER_TABLE`` and so on.

Plain pydantic models over ``os.environ`` rather than pydantic-settings: all a function needs is
"environment variable -> validated field" (JSON for structured values, via ``Json``), and importing
pydantic-settings cost about 150 ms of every cold start here (``make bench``), for features (dotenv files,
secrets directories, CLI parsing) a Lambda never uses.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, Json

S = TypeVar("S", bound="FunctionSettings")


class FunctionSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_environment(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
        """Fields from the variables of the same name, upper-cased; a missing or bad one names itself."""
        source = os.environ if environ is None else environ
        return cls.model_validate({k.lower(): v for k, v in source.items() if k.lower() in cls.model_fields})

    powertools_service_name: str = Field(min_length=1)
    powertools_metrics_namespace: str = Field(min_length=1)
    log_level: str = "INFO"


class CrmWebhookSettings(FunctionSettings):
    ledger_table: str
    idempotency_table: str
    intake_queue_url: str
    webhook_secret_arn: str
    crm_org_id: str = Field(pattern=r"^[A-Za-z0-9]{15,18}$")
    max_body_bytes: int = 1_048_576


class TransactionsApiSettings(FunctionSettings):
    ledger_table: str


class InitiationStarterSettings(FunctionSettings):
    ledger_table: str
    state_machine_arn: str


class InitiationStepsSettings(FunctionSettings):
    ledger_table: str
    routing_table: str
    idempotency_table: str
    event_bus_name: str
    crm_secret_arn: str
    psa_secret_arn: str
    planning_table: str  # the initiated project's profile, for its margin
    # ERP system id (as in the routing table) -> ARN of the secret holding that system's connection.
    erp_secret_arns: Json[dict[str, str]]


class PsaWebhookSettings(FunctionSettings):
    idempotency_table: str
    posting_queue_url: str
    margin_queue_url: str  # assignment changes: the projects to re-price
    psa_webhook_secret_arn: str
    max_body_bytes: int = 1_048_576


class PostingSweepSettings(FunctionSettings):
    ledger_table: str  # holds the sweep's watermarks (pk=SWEEP#{kind})
    posting_queue_url: str
    psa_secret_arn: str
    sweep_overlap_seconds: int = Field(default=900, ge=0)
    sweep_max_span_seconds: int = Field(default=6 * 3600, ge=1)
    sweep_first_lookback_seconds: int = Field(default=7 * 24 * 3600, ge=0)


class WorkerSyncSettings(FunctionSettings):
    ledger_table: str  # holds the sync's watermark (pk=SWEEP#workers) and parked workers
    worker_queue_url: str
    hcm_secret_arn: str
    planning_table: str  # workers whose rate or placement takes effect today (pk=EFFECTIVE#{day})
    sync_overlap_seconds: int = Field(default=900, ge=0)
    sync_max_span_seconds: int = Field(default=24 * 3600, ge=1)
    sync_first_lookback_seconds: int = Field(default=2 * 3600, ge=0)


class WorkerConsumerSettings(FunctionSettings):
    ledger_table: str
    event_bus_name: str
    worker_queue_url: str  # throttled workers are sent back here with a delay
    worker_dlq_url: str  # parked workers are held here with their reason, for ops to redrive
    psa_secret_arn: str
    planning_table: str  # the worker as applied (for margins), and its future-dated changes
    margin_queue_url: str  # a worker's cost-rate change re-prices the projects they are planned on


class MarginConsumerSettings(FunctionSettings):
    ledger_table: str
    planning_table: str
    event_bus_name: str
    margin_dlq_url: str  # parked projects are held here with their reason, for ops to redrive
    psa_secret_arn: str
    analytics_bucket: str  # ProjectMarginChanged records, append-only (margins/date=YYYY-MM-DD/...)
    alerts_topic_arn: str  # the delivery managers' topic
    default_margin_floor: str = Field(default="0.20", pattern=r"^0?\.[0-9]{1,4}$|^1(\.0+)?$|^0$")


class AssignmentSweepSettings(FunctionSettings):
    ledger_table: str  # holds the sweep's watermark (pk=SWEEP#assignments)
    margin_queue_url: str
    psa_secret_arn: str
    sweep_overlap_seconds: int = Field(default=900, ge=0)
    sweep_max_span_seconds: int = Field(default=2 * 24 * 3600, ge=1)
    sweep_first_lookback_seconds: int = Field(default=2 * 24 * 3600, ge=0)


class ErpBudget(BaseModel):
    """The concurrency pool an ERP system draws on (systems of one NetSuite account share one pool)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pool: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    limit: int = Field(ge=1)


class PostingConsumerSettings(FunctionSettings):
    ledger_table: str
    routing_table: str
    event_bus_name: str
    posting_queue_url: str  # throttled requests are sent back here with a delay
    posting_dlq_url: str  # parked requests are held here with their reason, for ops to redrive
    psa_secret_arn: str
    erp_secret_arns: Json[dict[str, str]]
    # ERP system id -> its concurrency pool and limit; the budget items live in the routing table.
    erp_budgets: Json[dict[str, ErpBudget]]


@functools.cache
def load(settings_cls: type[S]) -> S:
    return settings_cls.from_environment()


# function folder name -> its settings model; the infra tests walk this map.
FUNCTION_SETTINGS: dict[str, type[FunctionSettings]] = {
    "crm_webhook": CrmWebhookSettings,
    "transactions_api": TransactionsApiSettings,
    "initiation_starter": InitiationStarterSettings,
    "initiation_steps": InitiationStepsSettings,
    "psa_webhook": PsaWebhookSettings,
    "posting_sweep": PostingSweepSettings,
    "posting_consumer": PostingConsumerSettings,
    "worker_sync": WorkerSyncSettings,
    "worker_consumer": WorkerConsumerSettings,
    "margin_consumer": MarginConsumerSettings,
    "assignment_sweep": AssignmentSweepSettings,
}
