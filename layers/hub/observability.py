"""The one entry decorator every handler uses: settings, logging with correlation id, metrics, in that order.

PII never reaches the logs: handlers log ids, counts and outcomes, and ``safe()`` masks the keys that could
carry personal data before anything free-form is logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from hub.settings import FunctionSettings, load

logger = Logger(use_rfc3339=True)
metrics = Metrics()

F = TypeVar("F", bound=Callable[..., Any])

_PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "fullname",
        "full_name",
        "name",
        "firstname",
        "lastname",
        "address",
        "sessionid",
        "access_token",
        "client_secret",
        "token",
        "authorization",
    }
)


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


def safe(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` fit for logs: values under personal-data keys are masked, recursively."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.replace("-", "_").lower() in _PII_KEYS:
            out[key] = "*****"
        elif isinstance(value, Mapping):
            out[key] = safe(value)
        else:
            out[key] = value
    return out
