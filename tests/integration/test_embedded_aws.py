"""The local stack's embedded AWS in a process of its own: invocations come back to the handlers' process,
moto's own SQS -> Lambda trigger is off, connections stay open between requests, and it stops."""

from __future__ import annotations

import http.client
import json
import time

import boto3
import httpx
import pytest

from local import lambda_runtime
from local.embedded_aws import EmbeddedAws
from local.stack import free_port
from tests.support.aws import REGION, create_function

LIST_TABLES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


@pytest.fixture(scope="module")
def embedded():
    runtime = lambda_runtime.RuntimeServer().start()
    aws = EmbeddedAws(free_port(), runtime.url).start()
    yield aws
    aws.stop()
    runtime.stop()
    lambda_runtime.clear()


@pytest.fixture
def endpoint(embedded, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", embedded.endpoint)
    return embedded.endpoint


def test_an_invocation_in_the_other_process_runs_the_handler_registered_here(endpoint):
    name = "probe-forwarded"
    create_function(name)
    seen = {}

    def handler(event, context):
        seen.update(name=context.function_name, remaining=context.get_remaining_time_in_millis())
        if event.get("fail"):
            raise TimeoutError("the ERP did not answer")
        return {"echo": event["value"]}

    lambda_runtime.register(name, handler)
    client = boto3.client("lambda", region_name=REGION)

    answer = client.invoke(FunctionName=name, Payload=json.dumps({"value": 7}))
    assert json.loads(answer["Payload"].read()) == {"echo": 7} and not answer.get("FunctionError")
    assert seen["name"] == name and 0 < seen["remaining"] <= 60_000  # the function's own timeout

    failed = client.invoke(FunctionName=name, Payload=json.dumps({"fail": True}))
    payload = json.loads(failed["Payload"].read())
    assert failed["FunctionError"] and payload["errorType"] == "TimeoutError"


def test_a_queue_mapped_to_a_function_is_left_to_the_local_pollers(endpoint):
    name = "probe-not-triggered"
    create_function(name)
    calls = []
    lambda_runtime.register(name, lambda event, context: calls.append(event))
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="mapped")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("lambda", region_name=REGION).create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=10
    )

    sqs.send_message(QueueUrl=url, MessageBody="for the pollers")

    time.sleep(0.5)
    assert calls == []  # moto would have invoked it inside SendMessage
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in got] == ["for the pollers"]


def test_requests_share_one_connection_and_a_chunked_body_is_refused_by_name(embedded):
    connection = http.client.HTTPConnection("127.0.0.1", embedded.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200 and "TableNames" in json.loads(body)
            assert (answer.getheader("Connection") or "").lower() != "close"
        connection.putrequest("POST", "/")
        for key, value in {**LIST_TABLES, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(b"2\r\n{}\r\n0\r\n\r\n")
        refused = connection.getresponse()
        assert refused.status == 411 and b"Content-Length" in refused.read()
    finally:
        connection.close()


def test_the_process_is_gone_once_stopped(aws_env):
    runtime = lambda_runtime.RuntimeServer().start()
    aws = EmbeddedAws(free_port(), runtime.url).start()
    assert httpx.get(f"{aws.endpoint}/moto-api/data.json", timeout=5).status_code == 200

    aws.stop()
    runtime.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{aws.endpoint}/moto-api/data.json", timeout=2)


def test_the_process_stops_by_itself_when_the_process_that_started_it_is_killed(aws_env):
    """A ``make local`` killed outright (no cleanup runs) leaves no moto server behind."""
    import os
    import signal
    import subprocess
    import sys

    from local.embedded_aws import ROOT

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from local.embedded_aws import EmbeddedAws\n"
            "aws = EmbeddedAws(int(sys.argv[1]), 'http://127.0.0.1:9').start()\n"
            "print('up', flush=True)\n"
            "time.sleep(600)\n",
            str(port := free_port()),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "up"
        assert httpx.get(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=5).status_code == 200
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1)
            except httpx.TransportError:
                return
            time.sleep(0.2)
        pytest.fail("the embedded AWS outlived the process that started it")
    finally:
        if parent.poll() is None:
            parent.kill()
