"""Each function's settings, read from its environment once (cached), never at import time.

The infra tests compare every function's synthesized environment with the model named here, so a variable
is declared exactly once. Field ``ledger_table`` is read from ``LEDGER_TABLE`` and so on.
"""

from __future__ import annotations

import functools
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FunctionSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

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
    # ERP system id (as in the routing table) -> ARN of the secret holding that system's connection.
    erp_secret_arns: dict[str, str]


S = TypeVar("S", bound=FunctionSettings)


@functools.cache
def load(settings_cls: type[S]) -> S:
    return settings_cls()  # type: ignore[call-arg]


# function folder name -> its settings model; the infra tests walk this map.
FUNCTION_SETTINGS: dict[str, type[FunctionSettings]] = {
    "crm_webhook": CrmWebhookSettings,
    "transactions_api": TransactionsApiSettings,
    "initiation_starter": InitiationStarterSettings,
    "initiation_steps": InitiationStepsSettings,
}
