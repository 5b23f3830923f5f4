"""The one private moto method the local stack replaces still exists and behaves as the local stack needs."""

from __future__ import annotations

import json
import sys

import boto3
import moto
import pytest
from moto.awslambda.models import LambdaFunction

from local import lambda_runtime
from tests.support.aws import REGION, create_function


def test_moto_is_the_pinned_minor_version_whose_private_invoke_is_patched():
    assert moto.__version__.startswith("5.2."), "re-verify local/lambda_runtime.py before moving moto"
    assert callable(getattr(LambdaFunction, "_invoke_lambda", None))


@pytest.fixture
def function(hub):
    lambda_runtime.install()
    name = "pshub-runtime-probe"
    create_function(name)
    yield name
    lambda_runtime.clear()


def test_invocation_runs_the_registered_handler_in_process_with_a_lambda_context(function):
    seen = {}

    def handler(event, context):
        seen.update(name=context.function_name, remaining=context.get_remaining_time_in_millis())
        return {"echo": event["value"]}

    lambda_runtime.register(function, handler)
    answer = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName=function, Payload=json.dumps({"value": 7})
    )
    assert json.loads(answer["Payload"].read()) == {"echo": 7}
    assert seen["name"] == function and seen["remaining"] > 0


def test_an_exception_becomes_the_lambda_error_payload_named_by_its_class(function):
    class ThrottledError(Exception):
        pass

    def handler(event, context):
        raise ThrottledError("slow down")

    lambda_runtime.register(function, handler)
    answer = boto3.client("lambda", region_name=REGION).invoke(FunctionName=function, Payload=b"{}")
    assert answer["FunctionError"]
    payload = json.loads(answer["Payload"].read())
    assert payload["errorType"] == "ThrottledError" and payload["errorMessage"] == "slow down"


def test_a_function_without_a_registered_handler_fails_loudly(function):
    answer = boto3.client("lambda", region_name=REGION).invoke(FunctionName=function, Payload=b"{}")
    assert json.loads(answer["Payload"].read())["errorType"] == "HandlerNotRegistered"


def test_clear_forgets_the_loaded_handler_modules_so_the_next_stack_starts_cold():
    """A handler caches its wiring (clients, table names, endpoints) per container: a second local stack in
    the same process (``make bench`` runs two) must not reuse the first one's."""
    first = lambda_runtime.load_handler("posting_sweep")
    module = sys.modules[first.__module__]
    assert lambda_runtime.load_handler("posting_sweep") is first  # one container: loaded once

    lambda_runtime.clear()

    again = lambda_runtime.load_handler("posting_sweep")
    assert first.__module__ not in sys.modules or sys.modules[first.__module__] is not module
    assert again is not first and sys.modules[again.__module__] is not module
    lambda_runtime.clear()
