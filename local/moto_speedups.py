"""Speed-ups of moto for the local stack's month-end volumes (a queue holding 20,000 messages, thousands of
DynamoDB calls a minute), and nothing else: same answers, less work per call.

moto re-derives "now" through two naive ``datetime`` conversions each time it asks whether one message is
visible or delayed, and ``ReceiveMessage`` first builds the list of *every* visible message before taking
ten. With 20,000 messages on a queue and a few pollers, that is millions of datetime conversions a second,
and the embedded AWS (one process, one GIL) spends its time there instead of serving the hub. Here:

1. ``unix_time_millis()`` with no argument, as the SQS models call it, is ``time.time() * 1000`` (the same
   epoch milliseconds; with an argument it is moto's own);
2. ``Queue.messages`` (visible, not delayed) is walked lazily, so a receive stops once it has its messages;
   ``ApproximateNumberOfMessages`` counts without building the list, and a long poll waits for the first
   visible message as before;
3. the server's dispatcher finds the backend of a host once, not per request: for every request it lists
   moto's package directory (``os.listdir`` and an ``isdir`` per entry, about 200) and tries its URL patterns,
   all under one lock that every request of every thread waits on. The answer depends on the host alone, so
   it is kept per host;
4. ``DeleteMessage`` finds the message in one pass that stops at it, and removes it in place: moto walks the
   whole queue twice and rebuilds its list for every delete, which on a 20,000-message queue is most of the
   drain's time (each consumer deletes its batch);
5. an EventBridge rule's target parses its JSONPath input paths (moto's default ones when the target has
   none) for every event, building a PLY lexer and parser each time: parsed paths are kept per expression
   (they are immutable), which took 40% of the CPU off a month-end drain publishing ``TimePosted``;
6. every received message checks its retention through ``GetQueueAttributes``, which computes all of the
   queue's attributes (three of them walk every message) three times per attribute asked: the retention
   is read from the queue itself, and ``GetQueueAttributes`` computes the attributes once per call;
7. ``SendMessage`` (and each entry of ``SendMessageBatch``, which sends through it) asks the queue's
   attributes for ``ContentBasedDeduplication``, which computes all of them, three walking every message on
   the queue: a 10,000-worker sync filling its queue walked it 150 million times. That one flag is read from the
   queue as ``attributes`` would render it (a FIFO queue's "true" / "false", nothing on a standard queue); the
   rest of ``send_message`` is moto's (``MOTO_VERSION``'s: ids, MD5s, delay, sequence numbers, FIFO dedupe).
   FIFO queues (the hub has none) still compute the attributes in moto's validation and dedupe;
8. and one fix: moto's SQS is not thread-safe. Two receives at once can hand one message to two pollers
   (two consumers then race on one entry), fail iterating a set another thread changes, or both try to move
   one message to the dead-letter queue. Each queue's send, receive, delete and visibility change run under the
   queue's own lock: the condition moto's long poll waits on (waiting releases it, so a long poll does not
   hold the others up) and a send notifies. (A FIFO send's dedupe check and its append are then one step;
   moto's own SQS->Lambda trigger, which ``LocalStack`` replaces with pollers, would run under it too.)

9. and the same for DynamoDB: a conditional write checks its condition and then writes, and another thread's
   write can land between the two (two callers of the concurrency budget then both take one slot: one more
   request reaches the ERP than its limit allows, and the first holder's release finds its lease gone); a
   query deep-copies items another thread is changing ("dictionary changed size during iteration", a 500).
   Each DynamoDB request is handled under one lock, from reading its body to rendering its answer (moto
   renders live items), as DynamoDB makes each single-item write atomic.

Patched once, process-wide, by ``LocalStack.start`` (and the benches); moto's version is pinned in the lock file
and ``tests/integration/test_moto_speedups.py`` checks it is the one ``send_message`` was copied from, and that
the queue semantics the hub relies on still hold.
"""

from __future__ import annotations

import functools
import hashlib
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

MOTO_VERSION = "5.2.5"  # the moto whose SQSBackend.send_message is copied below (see test_moto_speedups.py)

_lock = threading.Lock()
_installed = False


def install() -> None:
    global _installed
    from moto.core import utils as core_utils
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import models

    with _lock:
        if _installed:
            return
        original = core_utils.unix_time_millis

        def unix_time_millis(dt: Any = None) -> float:
            return time.time() * 1000.0 if dt is None else original(dt)

        models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]

        def messages(self: Any) -> Iterator[Any]:
            now = time.time() * 1000.0
            return (m for m in self._messages if now > m.visible_at and not now < m.delayed_until)

        def approximate_number_of_messages(self: Any) -> int:
            now = time.time() * 1000.0
            return sum(1 for m in self._messages if now > m.visible_at and not now < m.delayed_until)

        def wait_for_messages(self: Any, timeout: int) -> None:  # a long poll: until one is visible
            with self._messages_lock:
                self._messages_lock.wait_for(lambda: next(self.messages, None) is not None, timeout=timeout)

        models.Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
        models.Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]
        models.Queue.approximate_number_of_messages = property(  # type: ignore[method-assign,assignment]
            approximate_number_of_messages
        )
        find_backend = DomainDispatcherApplication.get_backend_for_host
        backends: dict[str | None, Any] = {}

        def get_backend_for_host(self: Any, host: str | None) -> Any:  # called under the dispatcher's lock
            if host not in backends:
                backends[host] = find_backend(self, host)
            return backends[host]

        DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]

        def delete_message(self: Any, receipt_handle: str) -> None:
            if receipt_handle in self.deleted_messages:  # deleted before: as moto, nothing to do
                return
            for index, message in enumerate(self._messages):
                if message.had_receipt_handle(receipt_handle):
                    del self._messages[index]
                    self.pending_messages.discard(message)
                    self.deleted_messages.update(message.all_receipt_handles)
                    return
            raise models.ReceiptHandleIsInvalid()

        models.Queue.delete_message = delete_message  # type: ignore[method-assign]

        def retained(self: Any, queue_name: str, message: Any) -> bool:
            retention = int(self.get_queue(queue_name).message_retention_period)
            return retention + message.sent_timestamp / 1000 > time.time()

        models.SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]

        def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
            queue = self.get_queue(queue_name)  # an unknown queue is refused as moto does
            if not attribute_names:
                return {}
            valid = {"All", *models.Queue.BASE_ATTRIBUTES, *models.Queue.FIFO_ATTRIBUTES}
            valid |= set(models.Queue.KMS_ATTRIBUTES)
            unknown = next((name for name in attribute_names if name not in valid), None)
            if unknown is not None:
                raise models.InvalidAttributeName(unknown)
            everything = queue.attributes  # computed once
            if "All" in attribute_names:
                return everything  # type: ignore[no-any-return]
            return {n: everything[n] for n in attribute_names if everything.get(n) is not None}

        models.SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]
        models.SQSBackend.send_message = _send_message  # type: ignore[method-assign]

        import jsonpath_ng.ext as jsonpath_ext

        jsonpath_ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ext.parse)

        for name in ("send_message", "receive_message", "delete_message", "change_message_visibility"):
            setattr(models.SQSBackend, name, _under_queue_lock(getattr(models.SQSBackend, name)))
        from moto.dynamodb.responses import DynamoHandler

        DynamoHandler.call_action = _under(threading.RLock(), DynamoHandler.call_action)  # type: ignore[method-assign]
        _installed = True


def _under(lock: Any, method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return locked


def _under_queue_lock(method: Any) -> Any:
    @functools.wraps(method)
    def locked(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return method(self, queue_name, *args, **kwargs)

    return locked


def _content_based_deduplication(queue: Any) -> Any:
    """``queue.attributes.get("ContentBasedDeduplication")`` without computing the other attributes: only a FIFO
    queue lists it, its flag rendered as ``attributes`` renders booleans ("true" / "false")."""
    if not queue.fifo_queue:
        return None
    value = queue.content_based_deduplication
    return str(value).lower() if isinstance(value, bool) else value


def _send_message(
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    """moto's ``SQSBackend.send_message`` (``MOTO_VERSION``) step for step, but for the content-based dedupe flag,
    read by ``_content_based_deduplication`` instead of from every attribute of the queue."""
    from moto.sqs import models

    queue = self.get_queue(queue_name)

    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )

    delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds

    message_id = str(models.random.uuid4())
    message = models.Message(message_id, message_body, system_attributes)

    # if content based deduplication is set then set sha256 hash of the message as the deduplication_id
    if _content_based_deduplication(queue) == "true":
        sha256 = hashlib.sha256()
        sha256.update(message_body.encode("utf-8"))
        message.deduplication_id = sha256.hexdigest()

    # Attributes, but not *message* attributes
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(models.random.choice(string.digits) for _ in range(20))

    if group_id is not None:
        message.group_id = group_id

    if message_attributes:
        message.message_attributes = message_attributes

    if delay_seconds > models.MAXIMUM_MESSAGE_DELAY:
        msg = (
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
        raise models.InvalidParameterValue(msg)

    message.mark_sent(delay_seconds=delay_seconds)

    queue.add_message(message)

    return message
