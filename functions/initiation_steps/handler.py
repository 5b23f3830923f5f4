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


@functools.cache
def default_deps() -> StepDeps:
    from aws_lambda_powertools.utilities import parameters

    from hub.connectors import factory
    from hub.events import EventPublisher
    from hub.ledger import Ledger
    from hub.routing import RoutingTable

    settings = load(InitiationStepsSettings)

    def secret(arn: str) -> dict[str, Any]:
        return json.loads(parameters.get_secret(arn, max_age=300))

    return StepDeps(
        ledger=Ledger(settings.ledger_table),
        routing=RoutingTable(settings.routing_table),
        events=EventPublisher(settings.event_bus_name),
        crm=functools.cache(lambda: factory.crm_from_secret(secret(settings.crm_secret_arn))),
        psa=functools.cache(lambda: factory.psa_from_secret(secret(settings.psa_secret_arn))),
        erp=functools.cache(
            lambda system: factory.erp_from_secret(system, secret(settings.erp_secret_arns[system]))
        ),
        idempotent=_powertools_idempotent(settings.idempotency_table),
    )


@entry(InitiationStepsSettings, correlation_id_path="state.correlationId")
def handler(event: dict[str, Any], context: Any, deps: StepDeps | None = None) -> Result:
    deps = deps or default_deps()
    _CONTEXT[0] = context
    return run_step(event["step"], event["state"], deps)
