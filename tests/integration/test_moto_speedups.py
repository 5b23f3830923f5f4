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


def run_switching_fast(threads):
    """Start the threads and wait for them with threads switching every 10 us (not every 5 ms), so an unlocked
    race in moto shows within one run."""
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


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


def test_the_server_finds_each_hosts_backend_once_and_still_routes_every_service(aws_env, monkeypatch):
    from moto import backends
    from moto.server import ThreadedMotoServer

    from local.stack import free_port

    moto_speedups.install()
    listed = []
    real = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listed.append(1) or real())
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(20):
            dynamodb.put_item(TableName="t", Item={"pk": {"S": str(n)}})
        queue = sqs.create_queue(QueueName="routed")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="hello")

        assert dynamodb.scan(TableName="t")["Count"] == 20
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["hello"]
        assert len(listed) <= 2  # once per host (dynamodb, sqs), not once per request (24 of them)
    finally:
        server.stop()


def test_pollers_receiving_at_once_never_get_the_same_message(sqs):
    """Eight pollers on one queue, as the local stack runs them: every message goes to exactly one. (Threads
    switch every 10 us here, not every 5 ms, so an unlocked receive shows its race within one run.)"""
    import threading

    client, queue, _ = sqs
    for start in range(0, 400, 10):
        client.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
        )
    got: list[str] = []
    lock = threading.Lock()

    def poll():
        poller = boto3.client("sqs", region_name=REGION)
        while True:
            messages = poller.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300
            ).get("Messages", [])
            if not messages:
                return
            with lock:
                got.extend(m["Body"] for m in messages)

    run_switching_fast([threading.Thread(target=poll) for _ in range(8)])

    assert len(got) == 400 and len(set(got)) == 400


def test_a_deleted_message_is_gone_a_second_delete_is_harmless_and_an_unknown_handle_is_refused(sqs):
    client, queue, _ = sqs
    for n in range(30):
        client.send_message(QueueUrl=queue, MessageBody=str(n))
    got = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]

    client.delete_message(QueueUrl=queue, ReceiptHandle=got[3]["ReceiptHandle"])
    client.delete_message(QueueUrl=queue, ReceiptHandle=got[3]["ReceiptHandle"])  # again: no error

    left = []
    while batch := client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300).get(
        "Messages", []
    ):
        left.extend(m["Body"] for m in batch)
    assert sorted(left, key=int) == [str(n) for n in range(30) if n != 3]
    with pytest.raises(client.exceptions.ReceiptHandleIsInvalid):
        client.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle")


def test_events_still_reach_a_rules_queue_target_and_each_input_path_is_parsed_once(aws_env):
    import jsonpath_ng.ext

    moto_speedups.install()
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        queue = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["pshub"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "tap", "Arn": arn}])
        before = jsonpath_ng.ext.parse.cache_info().misses

        for n in range(20):
            events.put_events(
                Entries=[{"Source": "pshub", "DetailType": "TimePosted", "Detail": json.dumps({"n": n})}]
            )

        got = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            got.extend(json.loads(m["Body"])["detail"]["n"] for m in batch)
            for m in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        assert sorted(got) == list(range(20))
        assert (
            jsonpath_ng.ext.parse.cache_info().misses - before <= 10
        )  # per path, not per event (20 x paths)


def test_queue_attributes_answer_as_before_and_an_unknown_name_is_refused(sqs):
    client, queue, _ = sqs
    client.send_message(QueueUrl=queue, MessageBody="one")
    client.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=60)

    some = client.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    everything = client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]

    assert some == {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesDelayed": "1"}
    assert everything["QueueArn"].endswith(":q") and "RedrivePolicy" in everything
    with pytest.raises(client.exceptions.ClientError):
        client.get_queue_attributes(QueueUrl=queue, AttributeNames=["NoSuchAttribute"])


def test_the_installed_moto_is_the_one_send_message_was_copied_from():
    """``moto_speedups._send_message`` is moto's ``SQSBackend.send_message`` of this version with one line
    changed: another moto needs it compared again (moto's own sources, sqs/models.py) before the pin moves."""
    import moto

    assert moto.__version__ == moto_speedups.MOTO_VERSION


def test_sending_to_a_full_queue_never_computes_its_attributes(sqs, monkeypatch):
    """Installed: a send reads the one flag it needs, not every attribute (three of which walk the queue)."""
    from moto.sqs import models

    client, queue, _ = sqs
    for start in range(0, 50, 10):
        client.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
        )
    computed = []
    attributes = models.Queue.attributes
    monkeypatch.setattr(
        models.Queue, "attributes", property(lambda queue: computed.append(1) or attributes.fget(queue))
    )

    client.send_message(QueueUrl=queue, MessageBody="one more")
    client.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}]
    )

    assert computed == []
    monkeypatch.undo()
    assert count(client, queue) == 53


def _attributes_md5(attributes: dict) -> str:
    """SQS's MD5 of message attributes, as the SDKs check it: per name in order, the length-prefixed name, data
    type and (after a transport byte, 1 for strings and numbers) value."""
    import hashlib
    import struct

    md5 = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name, value["DataType"]):
            md5.update(struct.pack("!I", len(part.encode())) + part.encode())
        md5.update(
            b"\x01" + struct.pack("!I", len(value["StringValue"].encode())) + value["StringValue"].encode()
        )
    return md5.hexdigest()


def test_sent_messages_keep_their_attributes_checksums_and_delays(sqs):
    import hashlib

    client, queue, _ = sqs
    attributes = {
        "hcm_id": {"DataType": "String", "StringValue": "W-1001"},
        "version": {"DataType": "Number", "StringValue": "7"},
        "kind": {"DataType": "String.worker", "StringValue": "hire"},
    }

    sent = client.send_message(QueueUrl=queue, MessageBody='{"w": "é"}', MessageAttributes=attributes)
    batch = client.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "now", "MessageBody": "now", "MessageAttributes": {"hcm_id": attributes["hcm_id"]}},
            {"Id": "later", "MessageBody": "later", "DelaySeconds": 60},
            {"Id": "never", "MessageBody": "never", "DelaySeconds": 901},
        ],
    )
    got = client.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]

    assert sent["MD5OfMessageBody"] == hashlib.md5('{"w": "é"}'.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == _attributes_md5(attributes)
    successful = {entry["Id"]: entry for entry in batch["Successful"]}
    assert successful["now"]["MD5OfMessageAttributes"] == _attributes_md5({"hcm_id": attributes["hcm_id"]})
    assert "MD5OfMessageAttributes" not in successful["later"] and set(successful) == {"now", "later"}
    assert [(f["Id"], f["SenderFault"]) for f in batch["Failed"]] == [("never", True)]
    assert [m["Body"] for m in got] == ['{"w": "é"}', "now"]  # "later" is delayed
    assert got[0]["MessageAttributes"] == attributes and got[0]["MessageId"] == sent["MessageId"]
    assert "MessageDeduplicationId" not in got[0]["Attributes"]
    assert count(client, queue, "ApproximateNumberOfMessagesDelayed") == 1


def test_a_fifo_queue_still_drops_duplicates_and_numbers_its_messages(aws_env):
    moto_speedups.install()
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        by_content = client.create_queue(
            QueueName="by-content.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]
        by_id = client.create_queue(QueueName="by-id.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]

        first = client.send_message(QueueUrl=by_content, MessageBody="same", MessageGroupId="g")
        client.send_message(QueueUrl=by_content, MessageBody="same", MessageGroupId="g")
        client.send_message(QueueUrl=by_content, MessageBody="other", MessageGroupId="g")
        client.send_message_batch(
            QueueUrl=by_id,
            Entries=[
                {"Id": "a", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
                {"Id": "b", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
                {"Id": "c", "MessageBody": "c", "MessageGroupId": "g", "MessageDeduplicationId": "d2"},
            ],
        )
        with pytest.raises(client.exceptions.ClientError):  # a FIFO queue without content dedupe needs an id
            client.send_message(QueueUrl=by_id, MessageBody="no id", MessageGroupId="g")
        contents = client.receive_message(QueueUrl=by_content, MaxNumberOfMessages=10, AttributeNames=["All"])
        ids = client.receive_message(QueueUrl=by_id, MaxNumberOfMessages=10, AttributeNames=["All"])

    assert [m["Body"] for m in contents["Messages"]] == ["same", "other"]
    same = contents["Messages"][0]["Attributes"]
    assert same["MessageDeduplicationId"] == hashlib_sha256("same") and same["MessageGroupId"] == "g"
    assert "SequenceNumber" not in first  # content-based: moto numbers only messages sent with an id
    assert [m["Body"] for m in ids["Messages"]] == ["a", "c"]
    assert [len(m["Attributes"]["SequenceNumber"]) for m in ids["Messages"]] == [20, 20]


def hashlib_sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_send_adds_its_message_under_the_queues_lock(sqs, monkeypatch):
    """As receive, delete and visibility changes do: a FIFO send's dedupe check and its append are then one
    step (two senders of one deduplication id cannot both add it), and no send reads the queue mid-change."""
    from moto.sqs import models

    client, queue, _ = sqs
    held = []
    add_message = models.Queue.add_message

    def watched(queue, message):
        held.append(queue._messages_lock._is_owned())
        return add_message(queue, message)

    monkeypatch.setattr(models.Queue, "add_message", watched)

    client.send_message(QueueUrl=queue, MessageBody="one")
    client.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}]
    )

    assert held == [True, True, True]


def test_conditional_writes_racing_on_one_item_let_exactly_one_writer_win(aws_env):
    """Eight callers take the same budget slot at once, as the concurrency budget's callers do: the condition
    lets one in per round. (Threads switch every 10 us here: unlocked, moto checks the condition and writes
    in two steps, and two or more callers win a round within a few rounds.)"""
    import threading

    moto_speedups.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="budget",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        rounds, callers = 40, 8
        winners: dict[int, list[int]] = {n: [] for n in range(rounds)}
        barrier = threading.Barrier(callers)

        def take(caller: int) -> None:
            client = boto3.client("dynamodb", region_name=REGION)
            for n in range(rounds):
                barrier.wait()
                try:
                    client.update_item(
                        TableName="budget",
                        Key={"pk": {"S": f"SLOT#{n}"}},
                        UpdateExpression="SET #owner = :me",
                        ConditionExpression="attribute_not_exists(#owner)",
                        ExpressionAttributeNames={"#owner": "owner"},
                        ExpressionAttributeValues={":me": {"N": str(caller)}},
                    )
                except client.exceptions.ConditionalCheckFailedException:
                    continue
                winners[n].append(caller)

        run_switching_fast([threading.Thread(target=take, args=(c,)) for c in range(callers)])

        assert {n: len(w) for n, w in winners.items()} == {n: 1 for n in range(rounds)}
        for n, won in winners.items():
            item = dynamodb.get_item(TableName="budget", Key={"pk": {"S": f"SLOT#{n}"}})["Item"]
            assert item["owner"]["N"] == str(won[0])
