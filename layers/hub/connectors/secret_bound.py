"""Adapters resolved from the current value of their secret on every call, so a rotated secret is used at once
(one adapter per secret value is cached, with its token)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any


@functools.lru_cache(maxsize=4)
def _resources(secret_value: str) -> Any:
    from hub.connectors import factory

    return factory.psa_resources_from_secret(json.loads(secret_value))


@functools.lru_cache(maxsize=4)
def _hcm(secret_value: str) -> Any:
    from hub.connectors import factory

    return factory.hcm_from_secret(json.loads(secret_value))


def hcm_of(secret: Callable[[], str]) -> Callable[[], Any]:
    """The HCM adapter (``HcmPort``) of the secret's current value, built once per value."""
    return lambda: _hcm(secret())


class SecretResources:
    """The PSA resource pool and planning adapter (``PsaResourcePort``) of the current secret value."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def upsert_resources(self, workers: Any, *, today: dt.date) -> Any:
        return _resources(self._secret()).upsert_resources(workers, today=today)

    def assignments_changed(self, **window: Any) -> Any:
        return _resources(self._secret()).assignments_changed(**window)

    def project_assignments(self, psa_project_id: str) -> Any:
        return _resources(self._secret()).project_assignments(psa_project_id)


def secret_reader(arn: str, *, max_age: int = 300) -> Callable[[], str]:
    """The secret's current value as text (Powertools' cache, ``max_age`` seconds)."""

    def read() -> str:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(arn, max_age=max_age)
        return value if isinstance(value, str) else json.dumps(value)

    return read
