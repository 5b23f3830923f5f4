"""The one entry decorator every handler uses: settings, logging with correlation id, metrics, in that order.

PII never reaches the logs: handlers log ids, counts and outcomes only, never a request body or a record
(``log_event`` stays off); the integration tests read the logs to hold that line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from hub.settings import FunctionSettings, load

logger = Logger(use_rfc3339=True)
metrics = Metrics()

F = TypeVar("F", bound=Callable[..., Any])


def entry(
    settings_cls: type[FunctionSettings], *, correlation_id_path: str | None = None
) -> Callable[[F], F]:
    """Wrap a Lambda handler: load its settings, inject context and correlation id, flush metrics."""

    def decorate(handler: F) -> F:
        inner = metrics.log_metrics(raise_on_empty_metrics=False)(handler)
        inner = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)(inner)

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            settings = load(settings_cls)
            logger.setLevel(settings.log_level)
            metrics.namespace = settings.powertools_metrics_namespace
            metrics.service = settings.powertools_service_name
            return inner(event, context, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
