"""The project-initiation state machine's task function: runs the one step named in the event."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from hub.flows.initiation.steps import Result, State, StepDeps, idempotency_key, run_step
from hub.observability import entry
from hub.settings import InitiationStepsSettings, load

_CONTEXT: list[Any] = [None]  # the current invocation's context, for Powertools' in-progress expiry


def _powertools_idempotent(
    table_name: str,
) -> Callable[[str, Callable[[State], Result]], Callable[[State], Result]]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from hub.errors import TransientError

    def wrap(step: str, call: Callable[[State], Result]) -> Callable[[State], Result]:
        # one persistence layer and config per step: Powertools configures the layer per decorated function
        config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=14 * 24 * 3600)

        @idempotent_function(
            data_keyword_argument="request",
            persistence_store=DynamoDBPersistenceLayer(table_name=table_name),
            config=config,
            key_prefix=f"project-initiation.{step}",
        )
        def guarded(request: dict[str, Any]) -> Result:
            return call(request["state"])

        def run(state: State) -> Result:
            if _CONTEXT[0] is not None:
                config.register_lambda_context(_CONTEXT[0])
            try:
                return guarded(request={"key": idempotency_key(step, state), "state": dict(state)})
            except IdempotencyAlreadyInProgressError as exc:
                raise TransientError(f"{step} is already running for this opportunity", system="hub") from exc

        return run

    return wrap


@functools.lru_cache(maxsize=32)
def _adapter(kind: str, system: str, secret_value: str) -> Any:
    """One adapter (and its token cache) per secret *value*: a rotated secret gets a fresh adapter."""
    from hub.connectors import factory

    secret = json.loads(secret_value)
    if kind == "crm":
        return factory.crm_from_secret(secret)
    if kind == "psa":
        return factory.psa_from_secret(secret)
    return factory.erp_from_secret(system, secret)


@functools.cache
def default_deps() -> StepDeps:
    from aws_lambda_powertools.utilities import parameters

    from hub.errors import PermanentError
    from hub.events import EventPublisher
    from hub.ledger import Ledger
    from hub.planning import PlanningStore
    from hub.routing import RoutingTable

    settings = load(InitiationStepsSettings)

    def secret(arn: str) -> str:
        return parameters.get_secret(arn, max_age=300)  # re-read every five minutes: rotation is picked up

    def erp(system: str) -> Any:
        arn = settings.erp_secret_arns.get(system)
        if arn is None:
            raise PermanentError(
                f"no connection is configured for ERP system {system!r}",
                system=system,
                code="UNKNOWN_ERP_SYSTEM",
            )
        return _adapter("erp", system, secret(arn))

    return StepDeps(
        ledger=Ledger(settings.ledger_table),
        routing=RoutingTable(settings.routing_table),
        events=EventPublisher(settings.event_bus_name),
        crm=lambda: _adapter("crm", "salesforce", secret(settings.crm_secret_arn)),
        psa=lambda: _adapter("psa", "kantata", secret(settings.psa_secret_arn)),
        erp=erp,
        planning=PlanningStore(settings.planning_table),
        idempotent=_powertools_idempotent(settings.idempotency_table),
    )


@entry(InitiationStepsSettings, correlation_id_path="state.correlationId")
def handler(event: dict[str, Any], context: Any, deps: StepDeps | None = None) -> Result:
    deps = deps or default_deps()
    _CONTEXT[0] = context
    return run_step(event["step"], event["state"], deps)
