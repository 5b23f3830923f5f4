"""A client-side pace: at most ``rate`` requests per second from this process, with bursts of up to ``burst``.

For a SaaS API whose limit is a request *rate* (not a number in flight), e.g. Kantata's per-account API rate:
each process that writes to it paces itself to its share of the account's rate (the rate over the consumers
that run at once, the event source mapping's maximum concurrency), so a full sync fans out without tripping the
limit; a 429 that still comes back is retried by the adapter and the queue like any throttling.

A token bucket: ``burst`` tokens, refilled continuously at ``rate``; a request takes one token, waiting for it
if none is left. ``slot`` is the context manager ``ApiClient(concurrency=...)`` and ``ConcurrencyTransport``
take, so a pace wraps a transport exactly as a concurrency budget does. Thread-safe: the wait happens outside
the lock, on a reservation, so waiting threads are served in order.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class RatePacer:
    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a pace needs rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic or time.monotonic
        self._sleep = sleep or time.sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._at = self._monotonic()

    def reserve(self) -> float:
        """Take the next token; the seconds to wait before using it (0 when one was there)."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1.0  # may go negative: later callers queue behind this reservation
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        yield
