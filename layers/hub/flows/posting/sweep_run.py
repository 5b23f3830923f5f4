"""One sweep run for one kind of entry: read a window of approved PSA changes, enqueue a pointer per entry, and
move the watermark only once the whole window is read and enqueued.

The rules of the window and of the watermark are in :mod:`hub.sweeps.windows`; this is the run around
them:

1. the watermark of ``kind`` (none yet: ``now - first_lookback``) gives the window (``sweep_window``);
2. every page of the window is read; each entry becomes a ``PostingRequest`` (``source="sweep"``) and the
   requests are enqueued in chunks of ``chunk_size`` as the read goes on (a month end of 20,000 entries is
   never held in memory). A record the PSA adapter cannot map is enqueued as well: the consumer re-reads it
   and parks it with its reason, where ops see it; it is counted as ``unmappable``;
3. only when the whole window was read and enqueued, the watermark moves to the window's end (``advance``)
   with a compare-and-set on the value this run read: a run that overlapped another and lost does not move it.

A PSA that throttles or fails transiently, an enqueue that fails, or a Lambda about to time out (``deadline``
returns the seconds left) stops the run: the watermark stays, the report says ``complete=False`` and why, and
the next run reads the whole window again. Whatever was enqueued stays enqueued: the consumer re-reads each
entry and posts idempotently by entry id and version, so reading an entry twice is harmless; skipping one is
the only failure, and nothing here can skip one. Any other error (rejected credentials, a bug) propagates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hub.errors import ThrottledError, TransientError
from hub.flows.posting.messages import Kind, PostingRequest
from hub.model import ExpenseLine, TimeEntry
from hub.sweeps.watermarks import WatermarkPort
from hub.sweeps.windows import advance, sweep_window

if TYPE_CHECKING:
    from hub.connectors.kantata import OnUnmappable, Unmappable

KINDS: tuple[Kind, ...] = ("time-entry", "expense")
CHUNK = 500  # requests enqueued at a time (50 SendMessageBatch calls)
MIN_REMAINING_SECONDS = 15.0  # stop reading when less is left: enough to enqueue one chunk and save

StopReason = Literal["deadline", "psa-throttled", "psa-unavailable", "enqueue-failed", "watermark-moved"]


class SweepPsa(Protocol):
    """The PSA reads the sweep needs (``KantataPsa`` has them): every approved entry changed in the window, and
    each record that cannot be mapped handed to ``on_unmappable`` instead of stopping the read."""

    def approved_time_entries(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: OnUnmappable | None = None,
    ) -> Iterator[TimeEntry]: ...

    def approved_expenses(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: OnUnmappable | None = None,
    ) -> Iterator[ExpenseLine]: ...


Enqueue = Callable[[list[PostingRequest]], object]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepWindow(_Model):
    updated_after: AwareDatetime
    updated_before: AwareDatetime


class SweepCounts(_Model):
    read: int  # records the PSA handed over in the window, unmappable ones included
    enqueued: int  # pointers sent to the posting queue
    unmappable: int  # of those read, records the adapter could not map (enqueued, parked by the consumer)


class SweepReport(_Model):
    """What one run of one kind did. ``complete``: the whole window was read and enqueued. ``advanced_to``: the
    new watermark, or ``None`` when it did not move (incomplete, or another run moved it first: ``reason``)."""

    kind: Kind
    window: SweepWindow
    counts: SweepCounts
    watermark: AwareDatetime  # the one this run started from (now - first_lookback when there was none)
    advanced_to: AwareDatetime | None
    complete: bool
    reason: StopReason | None = None


class _Stop(Exception):
    """Ends the read early (raised from inside the PSA's iteration when it comes from its callback)."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason = reason


def run_sweep(
    kind: Kind,
    *,
    psa: SweepPsa,
    store: WatermarkPort,
    enqueue: Enqueue,
    now: dt.datetime,
    overlap: dt.timedelta,
    max_span: dt.timedelta,
    first_lookback: dt.timedelta,
    deadline: Callable[[], float],
    min_remaining: float = MIN_REMAINING_SECONDS,
    chunk_size: int = CHUNK,
) -> SweepReport:
    """Sweep one window of ``kind`` (``time-entry`` or ``expense``); see the module's docstring."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    stored = store.get(kind)
    watermark = stored if stored is not None else now - first_lookback
    window = sweep_window(watermark, now, overlap, max_span)
    read = enqueued = unmappable = 0
    pending: list[PostingRequest] = []

    def flush() -> None:
        nonlocal enqueued
        if not pending:
            return
        chunk = list(pending)
        try:
            enqueue(chunk)
        except TransientError as error:
            raise _Stop("enqueue-failed") from error
        pending.clear()
        enqueued += len(chunk)

    def take(request: PostingRequest) -> None:
        nonlocal read
        read += 1
        pending.append(request)
        if len(pending) >= chunk_size:
            flush()
        if deadline() < min_remaining:
            raise _Stop("deadline")

    def on_unmappable(record: Unmappable) -> None:
        nonlocal unmappable
        unmappable += 1
        take(PostingRequest(kind=kind, psa_id=record.psa_id, source="sweep"))

    reader = psa.approved_time_entries if kind == "time-entry" else psa.approved_expenses
    reason: StopReason | None = None
    try:
        if deadline() < min_remaining:
            raise _Stop("deadline")
        entries: Iterator[TimeEntry | ExpenseLine] = reader(
            updated_after=window.updated_after,
            updated_before=window.updated_before,
            on_unmappable=on_unmappable,
        )
        for entry in entries:
            take(PostingRequest(kind=kind, psa_id=entry.psa_id, source="sweep", seen_version=entry.version))
        flush()
    except _Stop as stop:
        reason = stop.reason
    except (ThrottledError, TransientError) as error:
        reason = "psa-throttled" if isinstance(error, ThrottledError) else "psa-unavailable"
        with contextlib.suppress(_Stop):  # what was read is worth sending now (it is re-read either way)
            flush()

    counts = SweepCounts(read=read, enqueued=enqueued, unmappable=unmappable)
    advanced_to: dt.datetime | None = None
    if reason is None:
        # Every entry the PSA changed in the window is on the queue: the watermark may pass the window's end.
        # No ``seen`` instants: they never move the watermark, and holding them all is what chunks avoid.
        new = advance(watermark, window, ())
        if store.save(kind, new, expected=stored, window=window, counts=counts.model_dump()):
            advanced_to = new
        else:
            reason = "watermark-moved"
    return SweepReport(
        kind=kind,
        window=SweepWindow(updated_after=window.updated_after, updated_before=window.updated_before),
        counts=counts,
        watermark=watermark,
        advanced_to=advanced_to,
        complete=reason in (None, "watermark-moved"),
        reason=reason,
    )
