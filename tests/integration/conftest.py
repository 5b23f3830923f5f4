"""Integration tier: moto in-process, real handlers, the real ASL executed."""

from __future__ import annotations

import sys

import pytest
from moto import mock_aws

from tests.support.aws import REGION, HubResources, build


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from aws_lambda_powertools.utilities import parameters

    from hub import aws
    from hub.settings import load

    def forget() -> None:
        aws.reset_all()
        load.cache_clear()
        parameters.clear_caches()
        for module in list(sys.modules.values()):  # handlers cache their wiring per container, as in Lambda
            if (getattr(module, "__name__", "") or "").startswith("functions.") and hasattr(
                module, "default_deps"
            ):
                module.default_deps.cache_clear()

    forget()
    yield
    forget()
    aws.reset_all()
    load.cache_clear()


@pytest.fixture
def hub(aws_env, monkeypatch):
    """The hub's resources in moto, with every function's environment set."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        res = build(HubResources())
        for key, value in res.env.items():
            monkeypatch.setenv(key, value)
        yield res
