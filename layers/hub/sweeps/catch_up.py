"""A scheduled sync's run: window after window from its watermark until caught up with now.

The loop the scheduled syncs share (the worker sync, the nightly assignment sweep). One window:

1. reads the watermark of ``kind`` (``SWEEP#{kind}`` in the ledger table); the first run starts
   ``first_lookback`` before now;
2. hands ``[watermark - overlap, min(now, watermark + max_span))`` (:func:`hub.sweeps.windows.sweep_window`)
   to the caller's ``work``, which reads the vendor's changes in it and queues them, and answers what it did
   (:class:`Worked`): its counts, and ``stopped`` when it could not finish the window (the vendor or the
   queue failed);
3. moves the watermark to the window's end (:func:`hub.sweeps.windows.advance`) only when the window was
   finished, with a compare-and-set: of two overlapping runs one advances, the other reports
   ``watermark-moved``.

A run that is behind (the window stopped at ``max_span`` short of now) reads the next window at once, until
it reaches now, a window is not finished, or fewer than ``min_remaining`` seconds of the invocation are left
(the next run continues from the watermark). Errors ``work`` raises (a permanent one: rejected credentials)
propagate, with the watermark where it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.sweeps.watermarks import WatermarkPort
from hub.sweeps.windows import Window, advance, sweep_window

MIN_REMAINING_SECONDS = 20.0
WATERMARK_MOVED = "watermark-moved"  # another run moved the watermark first: not a failure


@dataclass(frozen=True)
class Worked:
    """What ``work`` did with one window: ``counts`` (stored with the watermark), and why the window is not
    finished (``None``: every change in it was queued)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    stopped: str | None = None


@dataclass(frozen=True)
class WindowRun:
    """One window read: what was done, and where the watermark went (``None``: it did not move, ``reason``
    says why)."""

    window: Window
    counts: Mapping[str, int]
    advanced_to: dt.datetime | None
    reason: str | None = None


def catch_up(
    kind: str,
    *,
    work: Callable[[Window], Worked],
    store: WatermarkPort,
    now: Callable[[], dt.datetime],
    overlap: dt.timedelta,
    max_span: dt.timedelta,
    first_lookback: dt.timedelta,
    remaining: Callable[[], float],
    min_remaining: float = MIN_REMAINING_SECONDS,
) -> list[WindowRun]:
    """Window after window until caught up with now (or out of time, or a window not finished); one
    :class:`WindowRun` per window read."""
    runs: list[WindowRun] = []
    while remaining() >= min_remaining:
        moment = now()
        run = one_window(
            kind,
            work=work,
            store=store,
            now=moment,
            overlap=overlap,
            max_span=max_span,
            first_lookback=first_lookback,
        )
        runs.append(run)
        behind = run.window.updated_before < moment.replace(microsecond=0)  # the window stopped at max_span
        if run.advanced_to is None or not behind:
            break
    return runs


def one_window(
    kind: str,
    *,
    work: Callable[[Window], Worked],
    store: WatermarkPort,
    now: dt.datetime,
    overlap: dt.timedelta,
    max_span: dt.timedelta,
    first_lookback: dt.timedelta,
) -> WindowRun:
    stored = store.get(kind)
    watermark = stored if stored is not None else now - first_lookback
    window = sweep_window(watermark, now, overlap, max_span)
    worked = work(window)
    counts = dict(worked.counts)
    if worked.stopped is not None:
        return WindowRun(window=window, counts=counts, advanced_to=None, reason=worked.stopped)
    new = advance(watermark, window, ())
    moved = store.save(kind, new, expected=stored, window=window, counts=counts)
    return WindowRun(
        window=window,
        counts=counts,
        advanced_to=new if moved else None,
        reason=None if moved else WATERMARK_MOVED,
    )


def seconds_left(context: Any) -> Callable[[], float]:
    """The invocation's remaining seconds, read from its Lambda context on each call; without one (a local
    run) there is no deadline."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return lambda: float("inf")
    return lambda: remaining() / 1000
