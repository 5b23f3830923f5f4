"""SQS -> Lambda event source mappings, run the way the Lambda service runs them.

moto invokes a mapped function synchronously inside SendMessage, one message at a time, and ignores
``batchItemFailures``; a failed message is never retried or dead-lettered. The local stack turns that off
and polls instead, from the template's mappings: batches up to ``BatchSize``, ``ReportBatchItemFailures``
honoured (only successes are deleted), failures become visible again after a short local visibility
timeout, and the queue's own RedrivePolicy (moto applies maxReceiveCount on receive) moves poison
messages to the dead-letter queue, where ops redrive them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

LOCAL_VISIBILITY_SECONDS = 300  # while a batch is being handled: longer than any function timeout
LOCAL_RETRY_DELAY_SECONDS = 2  # a failed record comes back this soon (deployed: the queue's own timeout)
# A receive long-polls this long, as Lambda's pollers do: an idle poller waits inside the embedded SQS on a
# condition (woken by a send), where short polls every 0.2 s took a third of the process's CPU at month end.
LONG_POLL_SECONDS = 1


@dataclass
class Mapping:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    max_concurrency: int
    report_failures: bool


class QueuePoller:
    def __init__(self, mapping: Mapping, sqs: Any, lambda_client: Any) -> None:
        self.mapping = mapping
        self._sqs = sqs
        self._lambda = lambda_client
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.failed_records = 0

    def start(self) -> QueuePoller:
        for index in range(max(1, self.mapping.max_concurrency)):
            thread = threading.Thread(
                target=self._run, name=f"esm-{self.mapping.function_name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def pause(self) -> None:
        """Stop taking new batches (a batch being handled finishes), as disabling the mapping does."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.2):
                continue
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self.mapping.queue_url,
                    MaxNumberOfMessages=min(10, self.mapping.batch_size),
                    VisibilityTimeout=LOCAL_VISIBILITY_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=LONG_POLL_SECONDS,
                )
            except Exception:  # the embedded server is shutting down
                if self._stop.wait(0.2):
                    return
                continue
            messages = got.get("Messages", [])
            if not messages:
                continue
            if not self._running.is_set():  # paused while the long poll waited: leave them on the queue
                self._retry_later(messages, delay=0)
                continue
            while (
                10 <= len(messages) < self.mapping.batch_size
            ):  # a batch up to BatchSize, as Lambda's poller
                more = self._sqs.receive_message(
                    QueueUrl=self.mapping.queue_url,
                    MaxNumberOfMessages=min(10, self.mapping.batch_size - len(messages)),
                    VisibilityTimeout=LOCAL_VISIBILITY_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                if not more:
                    break
                messages.extend(more)
            try:
                self._deliver(messages)
            except Exception:  # the poller outlives any one batch; the records simply come back
                logging.getLogger(__name__).exception("delivering a batch failed")
                self._retry_later(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        answer = self._lambda.invoke(
            FunctionName=self.mapping.function_name, Payload=json.dumps(event).encode()
        )
        self.invocations += 1
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            failed = {m["MessageId"] for m in messages}  # the whole batch returns to the queue
        elif self.mapping.report_failures and isinstance(payload, dict):
            failed = {f["itemIdentifier"] for f in payload.get("batchItemFailures") or []}
        else:
            failed = set()
        self.failed_records += len(failed)
        self._retry_later([m for m in messages if m["MessageId"] in failed])
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )

    def _retry_later(self, messages: list[dict[str, Any]], delay: int = LOCAL_RETRY_DELAY_SECONDS) -> None:
        for message in messages:
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self.mapping.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=delay,
                )
            except Exception:  # already gone or moved: nothing to do
                logging.getLogger(__name__).debug("could not shorten visibility", exc_info=True)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: v for k, v in (message.get("Attributes") or {}).items()}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                k: {
                    "stringValue": v.get("StringValue"),
                    "dataType": v.get("DataType"),
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for k, v in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": "us-east-1",
        }


def wait_until_drained(sqs: Any, queue_url: str, timeout: float = 60.0, interval: float = 0.1) -> bool:
    """True once the queue holds nothing, visible or in flight (each look walks the whole queue in moto: a
    long queue is better asked every second than ten times a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if (
            int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
            == 0
        ):
            return True
        time.sleep(interval)
    return False
