"""Sending many messages to an SQS queue: ``SendMessageBatch`` calls of ten, the entries SQS reports failed
sent again, a ``TransientError`` if some still could not be queued (the caller retries; nothing is lost
silently). Each message carries its correlation id as a message attribute, for ops in the console."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.errors import TransientError

SQS_BATCH = 10  # SendMessageBatch's limit
SEND_ATTEMPTS = 3


def send_all(sqs: Any, queue_url: str, messages: Sequence[tuple[str, str]], *, what: str) -> int:
    """``messages``: (body, correlation id) pairs; the number sent. ``what`` names them in the error."""
    for start in range(0, len(messages), SQS_BATCH):
        _send_batch(sqs, queue_url, messages[start : start + SQS_BATCH], what)
    return len(messages)


def _send_batch(sqs: Any, queue_url: str, chunk: Sequence[tuple[str, str]], what: str) -> None:
    pending = {str(i): message for i, message in enumerate(chunk)}
    for _ in range(SEND_ATTEMPTS):
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": entry_id,
                    "MessageBody": body,
                    "MessageAttributes": {"correlationId": {"DataType": "String", "StringValue": cid}},
                }
                for entry_id, (body, cid) in pending.items()
            ],
        )
        pending = {f["Id"]: pending[f["Id"]] for f in answer.get("Failed") or [] if f["Id"] in pending}
        if not pending:
            return
    raise TransientError(f"{len(pending)} {what} could not be queued", system="sqs", code="send_failed")
