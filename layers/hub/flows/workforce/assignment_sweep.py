"""The nightly assignment sweep: every project whose staffing the PSA changed since the last run, re-priced.

The PSA's assignment webhook names the projects whose assignments change as they change; the sweep catches
what it missed (a delivery lost, the relay down, a change the relay does not report). Each run
(EventBridge, nightly):

1. reads the watermark (``SWEEP#assignments`` in the ledger table); the first run starts ``first_lookback``
   before now;
2. asks the PSA which projects' assignments, daily hours or project resources changed in
   ``[watermark - overlap, min(now, watermark + max_span))`` (``PsaResourcePort.assignments_changed``;
   :func:`hub.sweeps.windows.sweep_window`: a change made while a run reads is stamped inside the next
   window or its overlap, so the watermark never skips it);
3. queues one ``MarginRequest`` per project on the margin queue, its cause "assignments changed between
   <from> and <to> UTC (nightly sweep)", for the margin consumer to re-price (it reads the project's
   assignments again, so a project the webhook queued already is only re-priced to the same margin);
4. moves the watermark to the window's end only once the whole window is queued (a compare-and-set, see
   :mod:`hub.sweeps.catch_up`). A PSA outage or throttling, or a queue that refuses the messages, leaves it
   where it was: the next run reads the same window again.

A run that is behind catches up window after window until it reaches now or its time runs short.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hub.connectors.ports import PsaResourcePort
from hub.errors import ThrottledError, TransientError
from hub.flows.workforce.projects import Cause, MarginRequest
from hub.sweeps.catch_up import Worked, catch_up
from hub.sweeps.watermarks import WatermarkPort
from hub.sweeps.windows import Window

KIND = "assignments"  # the watermark's kind in the ledger table (SWEEP#assignments)

Enqueue = Callable[[Sequence[MarginRequest]], object]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepWindow(_Model):
    updated_after: AwareDatetime
    updated_before: AwareDatetime


class SweepRun(_Model):
    """One window: how many projects changed in it and were queued, and where the watermark went (None: it
    did not move, ``reason`` says why)."""

    window: SweepWindow
    projects: int
    enqueued: int
    advanced_to: AwareDatetime | None
    reason: str | None = None


def _minute(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def sweep_cause(window: Window) -> Cause:
    """Why the sweep queued a project, for the delivery manager; dated at the window's end (the change was
    made before then)."""
    after, before = window
    return Cause(
        kind="sweep",
        detail=f"assignments changed between {_minute(after)} and {_minute(before)} UTC (nightly sweep)",
        at=before,
    )


def run_assignment_sweep(
    *,
    psa: PsaResourcePort,
    store: WatermarkPort,
    enqueue: Enqueue,
    now: Callable[[], dt.datetime],
    overlap: dt.timedelta,
    max_span: dt.timedelta,
    first_lookback: dt.timedelta,
    remaining: Callable[[], float],
) -> list[SweepRun]:
    """Read and queue window after window until caught up with now (or out of time, or stopped by the PSA or
    the queue); one :class:`SweepRun` per window read."""

    def work(window: Window) -> Worked:
        try:
            projects = list(
                psa.assignments_changed(
                    updated_after=window.updated_after, updated_before=window.updated_before
                )
            )
        except (ThrottledError, TransientError) as failed:
            return Worked(
                {"projects": 0, "enqueued": 0},
                stopped="psa-throttled" if isinstance(failed, ThrottledError) else "psa-unavailable",
            )
        cause = sweep_cause(window)
        requests = [MarginRequest(psa_project_id=p, cause=cause) for p in dict.fromkeys(projects)]
        try:
            if requests:
                enqueue(requests)
        except TransientError:
            return Worked({"projects": len(requests), "enqueued": 0}, stopped="enqueue-failed")
        return Worked({"projects": len(requests), "enqueued": len(requests)})

    runs = catch_up(
        KIND,
        work=work,
        store=store,
        now=now,
        overlap=overlap,
        max_span=max_span,
        first_lookback=first_lookback,
        remaining=remaining,
    )
    return [
        SweepRun(
            window=SweepWindow(updated_after=r.window.updated_after, updated_before=r.window.updated_before),
            projects=r.counts["projects"],
            enqueued=r.counts["enqueued"],
            advanced_to=r.advanced_to,
            reason=r.reason,
        )
        for r in runs
    ]
