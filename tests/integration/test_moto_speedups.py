"""The local stack's SQS speed-ups keep the queue semantics the hub relies on (moto in-process)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from local import moto_speedups
from tests.support.aws import REGION


@pytest.fixture
def sqs(aws_env):
    moto_speedups.install()
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        dlq = client.create_queue(QueueName="q-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue = client.create_queue(
            QueueName="q",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
            },
        )["QueueUrl"]
        yield client, queue, dlq


def count(client, url, name="ApproximateNumberOfMessages"):
    return int(client.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name])


def test_received_messages_are_hidden_until_their_visibility_ends_and_counted_as_in_flight(sqs):
    client, queue, _ = sqs
    for n in range(25):
        client.send_message(QueueUrl=queue, MessageBody=str(n))

    got = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]

    assert [m["Body"] for m in got] == [str(n) for n in range(10)]  # oldest first, ten at most
    assert count(client, queue) == 15 and count(client, queue, "ApproximateNumberOfMessagesNotVisible") == 10
    client.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert count(client, queue) == 16


def test_a_delayed_message_is_not_received_before_its_delay(sqs):
    client, queue, _ = sqs
    client.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=60)

    assert client.receive_message(QueueUrl=queue).get("Messages", []) == []
    assert count(client, queue) == 0 and count(client, queue, "ApproximateNumberOfMessagesDelayed") == 1


def test_a_long_poll_on_an_empty_queue_waits_then_answers_nothing(sqs):
    client, queue, _ = sqs
    started = time.monotonic()

    got = client.receive_message(QueueUrl=queue, WaitTimeSeconds=1)

    assert got.get("Messages", []) == [] and time.monotonic() - started >= 0.9


def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(sqs):
    client, queue, dlq = sqs
    client.send_message(QueueUrl=queue, MessageBody="poison")
    for _ in range(2):
        (message,) = client.receive_message(QueueUrl=queue)["Messages"]
        client.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    assert client.receive_message(QueueUrl=queue).get("Messages", []) == []
    assert [m["Body"] for m in client.receive_message(QueueUrl=dlq)["Messages"]] == ["poison"]
