"""The sweep's watermark: which window of PSA changes a run reads, and where the watermark goes after it.

The scheduled sweep catches what a webhook missed: every 15 minutes it reads the approved entries the PSA
changed (edited, or approved) in a window ``[updated_after, updated_before)`` and hands them on; the caller
dedupes by entry id + version (the posting is idempotent on it), so reading an entry twice is harmless and
skipping one is the only failure. Two pure functions decide the windows:

- ``sweep_window(watermark, now, overlap, max_span)``: from ``watermark - overlap`` to ``now`` (at most
  ``max_span`` past the watermark, to catch up in bounded steps), both in whole UTC seconds;
- ``advance(watermark, window, seen)``: after the run read every page of the window, the watermark becomes
  the window's end, ``updated_before``, fixed *before* the first read. Never the time the run ended and never
  the latest change it saw (``seen``): a change made while the run was reading is stamped after the window's
  end by the PSA, or, with clocks apart, inside the overlap the next window reads again; a watermark taken
  from the run's end or from the latest change seen would jump over it. A run that failed part-way does not
  call ``advance``: its watermark stays, and the next run reads the whole window again.

Invariant. Let ``W`` be the stored watermark, ``lag`` the most the PSA's clock runs behind the hub's plus the
most a change can take to become visible in its API after being stamped (commit, replication). If ``overlap >=
lag`` and runs are at least ``lag`` apart, then after every completed run:

    every change the PSA stamped before ``W - overlap`` has been read by some run, and a change stamped in
    ``[W - overlap, W)`` has been read unless it became visible only after its window was read; the next
    window starts at ``W - overlap`` and reads it then.

(A change is an entry's edit or an approval decision, stamped by the PSA; changes stamped before the first
watermark minus the overlap are not the sweep's: the initial load or the webhooks own them.)

Why: the first window whose end passes a change's stamp ``t`` starts at or before ``t`` (it starts at the
previous end minus the overlap), so it reads the change if the change is visible by then. If it is not, the
change was stamped less than ``lag`` before that run read (``t >= end - lag >= end - overlap``), so the next
window, which starts at ``end - overlap``, reads it. Kantata's rendering to the second needs nothing more: the
bounds are whole seconds, and ``floor(t) >= after`` is ``t >= after``.

Timezones: every instant is an aware ``datetime`` (naive ones are refused: the PSA renders times in the
account's zone, the hub runs in UTC, and a naive value has lost which one it was); windows are in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

_SECOND = dt.timedelta(seconds=1)


class Window(NamedTuple):
    """The changes a run reads: ``updated_after <= t < updated_before`` (whole UTC seconds; equal bounds: none)."""

    updated_after: dt.datetime
    updated_before: dt.datetime


def _aware(name: str, moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(dt.UTC)


def _floor_second(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def sweep_window(
    watermark: dt.datetime, now: dt.datetime, overlap: dt.timedelta, max_span: dt.timedelta
) -> Window:
    """The window a run reads: ``[watermark - overlap, min(now, watermark + max_span))``, widened at its start
    and narrowed at its end to whole UTC seconds (so ``updated_after <= watermark - overlap`` and
    ``updated_before <= now``). ``overlap`` re-reads the last stretch of the previous window, for changes
    that became visible late or were stamped by a clock behind the hub's; it must be at least that lag.
    ``max_span`` bounds a run that is far behind (the next run continues where it stopped). If ``now`` is
    before the window's start (the clock went back), the window is empty."""
    watermark = _aware("watermark", watermark)
    now = _aware("now", now)
    if overlap < dt.timedelta(0):
        raise ValueError(f"overlap must not be negative, got {overlap}")
    if max_span < _SECOND:
        raise ValueError(f"max_span must be at least one second, got {max_span}")
    after = _floor_second(watermark - overlap)
    before = _floor_second(min(now, watermark + max_span))
    return Window(after, max(after, before))


def advance(
    watermark: dt.datetime, window: tuple[dt.datetime, dt.datetime], seen: Iterable[dt.datetime]
) -> dt.datetime:
    """The watermark after a run read every page of ``window``: the window's end (never earlier than
    ``watermark``: it never moves back).

    ``seen`` are the instants of the changes the run read (entries' ``updated_at``, approvals' instants). They
    never move the watermark: one at or after the window's end is a change made during the run that the PSA
    showed early (a clock ahead of the hub's, or a filter it ignored); the next window reads it again, and
    nothing says every change before it was visible. They must be timezone-aware, like everything the sweep
    compares. A window that starts after the watermark would leave ``[watermark, updated_after)`` unread: it is
    refused.
    """
    watermark = _aware("watermark", watermark)
    after, before = (_aware("updated_after", window[0]), _aware("updated_before", window[1]))
    if before < after:
        raise ValueError(f"the window ends ({before}) before it starts ({after})")
    if after > watermark:
        raise ValueError(
            f"the window starts at {after}, after the watermark {watermark}: a gap would be skipped"
        )
    for moment in seen:
        _aware("a seen change instant", moment)
    return max(watermark, before)
