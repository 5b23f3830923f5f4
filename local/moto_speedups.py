"""Two speed-ups of moto's SQS for the local stack's month-end volumes (a queue holding 20,000 messages), and
nothing else: same answers, less work per call.

moto re-derives "now" through two naive ``datetime`` conversions each time it asks whether one message is
visible or delayed, and ``ReceiveMessage`` first builds the list of *every* visible message before taking
ten. With 20,000 messages on a queue and a few pollers, that is millions of datetime conversions a second,
and the embedded AWS (one process, one GIL, shared with the handlers) spends its time there instead of
serving the hub. Here:

1. ``unix_time_millis()`` with no argument, as the SQS models call it, is ``time.time() * 1000`` (the same
   epoch milliseconds; with an argument it is moto's own);
2. ``Queue.messages`` (visible, not delayed) is walked lazily, so a receive stops once it has its messages;
   ``ApproximateNumberOfMessages`` counts without building the list, and a long poll waits for the first
   visible message as before.

Patched once, process-wide, only by ``LocalStack.start``; moto's minor version is pinned in the lock file and
``tests/integration/test_moto_speedups.py`` checks the queue semantics the hub relies on still hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_installed = False


def install() -> None:
    global _installed
    from moto.core import utils as core_utils
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
        _installed = True
