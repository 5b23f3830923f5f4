"""The scheduled worker sync: one run reads the HCM's worker changes for a window and queues them.

Each run (hourly by default, EventBridge):
1. reads the watermark (``SWEEP#workers`` in the ledger table); the first run starts ``first_lookback``
   before now;
2. reads ``[watermark - overlap, min(now, watermark + max_span))`` from the HCM's change report
   (:func:`hub.sweeps.windows.sweep_window`: a change made while a run reads is stamped inside the next
   window or its overlap, so the watermark never skips it);
3. sends each changed worker, whole (every effective-dated rate and placement), to the worker queue in
   batches of ten; the consumer upserts them into the PSA within its rate limit, one failing worker never
   blocking the rest. A worker the HCM has but that cannot be a canonical worker is recorded PARKED in the
   ledger with every column at fault (correcting it in the HCM re-stamps it, and the next run reads it);
4. moves the watermark to the window's end only once the whole window is queued, with a compare-and-set:
   of two overlapping runs one advances, and the other's messages are harmless (the consumer is
   idempotent per worker and change).
A run that is behind catches up window after window until it reaches now or its time runs short (the loop
is :func:`hub.sweeps.catch_up.catch_up`, shared with the nightly assignment sweep).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hub.connectors.ports import HcmPort
from hub.errors import DataValidationError, ThrottledError, TransientError
from hub.model.workforce import Worker
from hub.sweeps.catch_up import Worked, catch_up
from hub.sweeps.watermarks import WatermarkPort
from hub.sweeps.windows import Window

KIND = "workers"  # the watermark's kind in the ledger table (SWEEP#workers)
MIN_REMAINING_SECONDS = 20.0


Source = Literal["schedule", "full-sync", "redrive", "effective-date"]
EFFECTIVE_KIND = "effective-dates"  # the watermark of the days whose effective-dated changes were queued


class WorkerMessage(BaseModel):
    """One worker on the worker queue: the canonical worker as the HCM has it at ``worker.changed_at``;
    ``effective_on``: sent again on the day one of its future-dated changes (a rate, a transfer, a hire or the
    day after the last) takes effect, for a PSA that holds only what is in effect today."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker: Worker
    source: Source = "schedule"
    effective_on: dt.date | None = None

    @property
    def correlation_id(self) -> str:
        return correlation_id_for(self.worker.hcm_id)

    @property
    def version(self) -> int:
        """The change's version, in microseconds: the HCM's change instant, or the start (UTC) of the day it
        takes effect when that is later, so a change applied early is applied again on its day, and any
        later HCM change supersedes both."""
        if self.worker.changed_at is None:
            raise ValueError(f"worker {self.worker.hcm_id} has no change instant")
        changed = int(self.worker.changed_at.timestamp() * 1_000_000)
        if self.effective_on is None:
            return changed
        day = dt.datetime.combine(self.effective_on, dt.time(), tzinfo=dt.UTC)
        return max(changed, int(day.timestamp() * 1_000_000))


def correlation_id_for(hcm_id: str) -> str:
    return f"worker:{hcm_id}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncWindow(_Model):
    changed_since: AwareDatetime
    until: AwareDatetime


class SyncRun(_Model):
    """One window: what was read, queued and parked, and where the watermark went (None: it did not move,
    ``reason`` says why)."""

    window: SyncWindow
    read: int
    enqueued: int
    unmappable: int
    advanced_to: AwareDatetime | None
    reason: str | None = None


Enqueue = Callable[[Sequence[WorkerMessage]], object]
Park = Callable[[str, DataValidationError], object]


def run_worker_sync(
    *,
    hcm: HcmPort,
    store: WatermarkPort,
    enqueue: Enqueue,
    park: Park,
    now: Callable[[], dt.datetime],
    overlap: dt.timedelta,
    max_span: dt.timedelta,
    first_lookback: dt.timedelta,
    remaining: Callable[[], float],
) -> list[SyncRun]:
    """Read and queue window after window until caught up with now (or out of time, or stopped by the HCM);
    one :class:`SyncRun` per window read."""

    def work(window: Window) -> Worked:
        try:
            changes = hcm.changed_workers(changed_since=window.updated_after, until=window.updated_before)
        except (ThrottledError, TransientError) as failed:
            reason = "hcm-throttled" if isinstance(failed, ThrottledError) else "hcm-unavailable"
            return Worked(counts={"read": 0, "enqueued": 0, "unmappable": 0}, stopped=reason)
        messages = [WorkerMessage(worker=w) for w in changes.workers]
        for hcm_id, problem in changes.unmappable.items():
            park(hcm_id, problem)
        read, unmappable = len(messages) + len(changes.unmappable), len(changes.unmappable)
        try:
            if messages:
                enqueue(messages)
        except TransientError:
            return Worked({"read": read, "enqueued": 0, "unmappable": unmappable}, stopped="enqueue-failed")
        return Worked({"read": read, "enqueued": len(messages), "unmappable": unmappable})

    runs = catch_up(
        KIND,
        work=work,
        store=store,
        now=now,
        overlap=overlap,
        max_span=max_span,
        first_lookback=first_lookback,
        remaining=remaining,
        min_remaining=MIN_REMAINING_SECONDS,
    )
    return [
        SyncRun(
            window=SyncWindow(changed_since=r.window.updated_after, until=r.window.updated_before),
            read=r.counts["read"],
            enqueued=r.counts["enqueued"],
            unmappable=r.counts["unmappable"],
            advanced_to=r.advanced_to,
            reason=r.reason,
        )
        for r in runs
    ]


class DueRun(_Model):
    """The effective-dated changes queued for the days since the last run (``days``), or why not."""

    days: list[dt.date]
    enqueued: int
    reason: str | None = None


def queue_due_changes(
    *,
    store: WatermarkPort,
    due: Callable[[dt.date], Sequence[Worker]],
    enqueue: Enqueue,
    today: dt.date,
) -> DueRun:
    """Queue every worker with a change taking effect on a day since the last run, up to ``today`` (first run:
    today only), as the hub last applied them; the day-watermark moves only once they are queued, so a
    missed hour or day is caught up and a day is not queued twice by runs that agree on the watermark."""
    stored = store.get(EFFECTIVE_KIND)
    first = stored.date() + dt.timedelta(days=1) if stored is not None else today
    days = [first + dt.timedelta(days=n) for n in range((today - first).days + 1)]
    if not days:
        return DueRun(days=[], enqueued=0)
    messages = [
        WorkerMessage(worker=w, source="effective-date", effective_on=day) for day in days for w in due(day)
    ]
    try:
        if messages:
            enqueue(messages)
    except TransientError:
        return DueRun(days=days, enqueued=0, reason="enqueue-failed")
    moved = store.save(EFFECTIVE_KIND, dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC), expected=stored)
    return DueRun(days=days, enqueued=len(messages), reason=None if moved else "moved-by-another-run")
