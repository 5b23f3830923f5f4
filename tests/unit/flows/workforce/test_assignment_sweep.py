"""The assignment sweep's run without AWS: a hand-written PSA that lists the projects changed in a window, the
watermark in memory with the real store's compare-and-set, the queue a list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from hub.errors import PermanentError
from hub.flows.workforce.assignment_sweep import KIND, run_assignment_sweep
from hub.flows.workforce.projects import MarginRequest
from tests.support.clock import Clock

T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
OVERLAP = dt.timedelta(minutes=15)


@dataclass
class MemoryStore:
    watermarks: dict[str, dt.datetime] = field(default_factory=dict)
    summaries: dict[str, tuple[object, object]] = field(default_factory=dict)

    def get(self, kind: str) -> dt.datetime | None:
        return self.watermarks.get(kind)

    def save(self, kind, new, *, expected, window=None, counts=None) -> bool:
        if self.watermarks.get(kind) != expected:
            return False
        self.watermarks[kind] = new
        self.summaries[kind] = (window, counts)
        return True


@dataclass
class ListedPsa:
    """Projects by the instant their staffing changed."""

    changes: list[tuple[dt.datetime, str]] = field(default_factory=list)
    fail: Exception | None = None
    windows: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def assignments_changed(self, *, updated_after, updated_before) -> Iterator[str]:
        self.windows.append((updated_after, updated_before))
        if self.fail is not None:
            raise self.fail
        return iter([p for at, p in self.changes if updated_after <= at < updated_before])


def sweep(psa, store, clock, queued, remaining=lambda: 900.0, max_span=2 * DAY):
    return run_assignment_sweep(
        psa=psa,
        store=store,
        enqueue=queued.extend,
        now=clock,
        overlap=OVERLAP,
        max_span=max_span,
        first_lookback=2 * DAY,
        remaining=remaining,
    )


def test_a_run_short_of_time_stops_after_a_window_and_the_next_run_continues_from_it():
    clock, store, queued = Clock(T0), MemoryStore({KIND: T0 - 6 * DAY}), []
    psa = ListedPsa([(T0 - 5 * DAY, "early"), (T0 - DAY, "late")])
    left = iter([900.0, 5.0])

    [only] = sweep(psa, store, clock, queued, remaining=lambda: next(left))

    assert only.advanced_to == T0 - 4 * DAY and store.get(KIND) == T0 - 4 * DAY
    assert [r.psa_project_id for r in queued] == ["early"]
    results = sweep(psa, store, clock, queued)
    assert [r.advanced_to for r in results] == [T0 - 2 * DAY, T0]
    assert [r.psa_project_id for r in queued] == ["early", "late"]


def test_a_quiet_window_queues_nothing_and_moves_the_watermark_with_its_counts():
    clock, store, queued = Clock(T0), MemoryStore(), []

    [result] = sweep(ListedPsa(), store, clock, queued)

    assert queued == [] and (result.projects, result.enqueued, result.advanced_to) == (0, 0, T0)
    window, counts = store.summaries[KIND]
    assert window == (T0 - 2 * DAY - OVERLAP, T0) and counts == {"projects": 0, "enqueued": 0}


def test_a_project_listed_twice_is_queued_once():
    clock, store, queued = Clock(T0), MemoryStore(), []
    psa = ListedPsa([(T0 - DAY, "40233"), (T0 - DAY, "40233"), (T0 - DAY, "40251")])

    [result] = sweep(psa, store, clock, queued)

    assert [r.psa_project_id for r in queued] == ["40233", "40251"] and result.enqueued == 2
    assert all(isinstance(r, MarginRequest) and r.cause.kind == "sweep" for r in queued)


def test_a_permanent_psa_error_propagates_and_keeps_the_watermark():
    clock, store, queued = Clock(T0), MemoryStore({KIND: T0 - DAY}), []
    psa = ListedPsa(fail=PermanentError("kantata token rejected", system="kantata", code="401"))

    with pytest.raises(PermanentError):
        sweep(psa, store, clock, queued)

    assert store.get(KIND) == T0 - DAY and queued == []
