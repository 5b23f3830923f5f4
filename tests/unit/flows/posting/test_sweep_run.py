"""One sweep run: every approved change in the window becomes a pointer on the posting queue, and the watermark
moves to the window's end only once the whole window was read and enqueued. A hand-written PSA keeps its
entries in memory with the instant each was changed (and the instant the change became visible), on a clock
the tests move; the store is an in-memory compare-and-set; the queue is a list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from hub.connectors.kantata import Unmappable
from hub.errors import DataValidationError, PermanentError, ThrottledError, TransientError
from hub.flows.posting.messages import PostingRequest
from hub.flows.posting.sweep_run import SweepReport, run_sweep
from hub.model import ExpenseLine, TimeEntry
from tests.support.clock import Clock
from tests.support.time_expense_builders import expense_line, time_entry

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 23, 45, 0, tzinfo=UTC)
SEC = dt.timedelta(seconds=1)
MIN = dt.timedelta(minutes=1)
OVERLAP = 2 * MIN
SPAN = dt.timedelta(hours=6)
LOOKBACK = dt.timedelta(hours=1)
PLENTY = 900.0  # seconds left in the invocation


@dataclass
class Change:
    psa_id: str
    version: int
    updated_at: dt.datetime
    visible_at: dt.datetime  # when the PSA's API shows it (commit, replication): at or after updated_at
    unmappable: bool = False


@dataclass
class FakeSweepPsa:
    """The PSA's approved entries of both kinds, read by window like Kantata: ``after <= updated_at < before``
    among the changes visible when the read reaches them, in ``updated_at`` order."""

    clock: Clock
    changes: dict[str, dict[str, Change]] = field(default_factory=lambda: {"time-entry": {}, "expense": {}})
    windows: list[tuple[str, dt.datetime, dt.datetime]] = field(default_factory=list)
    yielded: int = 0
    fail_at: int | None = None  # raise ``error`` instead of the record at this position of a read
    error: Exception = field(default_factory=lambda: TransientError("kantata 503", system="kantata"))
    while_reading: Callable[[int], None] | None = None  # called after each record handed over

    def change(
        self,
        kind: str,
        psa_id: str,
        *,
        at: dt.datetime | None = None,
        lag: dt.timedelta = dt.timedelta(0),
        **kw,
    ) -> Change:
        stamped = at or self.clock()
        previous = self.changes[kind].get(psa_id)
        change = Change(psa_id, previous.version + 1 if previous else 1, stamped, stamped + lag, **kw)
        self.changes[kind][psa_id] = change
        return change

    def approved_time_entries(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: Callable[[Unmappable], None] | None = None,
    ) -> Iterator[TimeEntry]:
        for change in self._read("time-entry", updated_after, updated_before, on_unmappable):
            yield time_entry(psa_id=change.psa_id, version=change.version)

    def approved_expenses(
        self,
        *,
        updated_after: dt.datetime,
        updated_before: dt.datetime,
        on_unmappable: Callable[[Unmappable], None] | None = None,
    ) -> Iterator[ExpenseLine]:
        for change in self._read("expense", updated_after, updated_before, on_unmappable):
            yield expense_line(psa_id=change.psa_id, version=change.version)

    def _read(
        self,
        kind: str,
        after: dt.datetime,
        before: dt.datetime,
        on_unmappable: Callable[[Unmappable], None] | None,
    ) -> Iterator[Change]:
        self.windows.append((kind, after, before))
        listing = sorted(self.changes[kind].values(), key=lambda c: (c.updated_at, c.psa_id))
        for position, change in enumerate(listing):
            if position == self.fail_at:
                raise self.error
            if not (after <= change.updated_at < before and change.visible_at <= self.clock()):
                continue
            self.yielded += 1
            if change.unmappable:
                error = DataValidationError("no legal entity", problems=[], system="kantata")
                if on_unmappable is None:
                    raise error
                on_unmappable(Unmappable(kind=kind.replace("-", " "), psa_id=change.psa_id, error=error))
            else:
                yield change
            if self.while_reading is not None:
                self.while_reading(self.yielded)


@dataclass
class Saved:
    watermark: dt.datetime
    window: tuple[dt.datetime, dt.datetime] | None
    counts: dict[str, int] | None


@dataclass
class FakeStore:
    """The watermark per kind with the real store's compare-and-set."""

    saved: dict[str, Saved] = field(default_factory=dict)
    before_save: Callable[[], None] | None = None  # another run, between this run's read and its save

    def get(self, kind: str) -> dt.datetime | None:
        return self.saved[kind].watermark if kind in self.saved else None

    def save(
        self,
        kind: str,
        new: dt.datetime,
        *,
        expected: dt.datetime | None,
        window: tuple[dt.datetime, dt.datetime] | None = None,
        counts: dict[str, int] | None = None,
    ) -> bool:
        if self.before_save is not None:
            self.before_save()
        if self.get(kind) != expected or (expected is not None and new < expected):
            return False
        self.saved[kind] = Saved(new, window, counts)
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def psa(clock: Clock) -> FakeSweepPsa:
    return FakeSweepPsa(clock)


def sweep(
    psa: FakeSweepPsa,
    store: FakeStore,
    sent: list[PostingRequest],
    *,
    kind: str = "time-entry",
    deadline: Callable[[], float] = lambda: PLENTY,
    **overrides,
) -> SweepReport:
    return run_sweep(
        kind,  # type: ignore[arg-type]
        psa=psa,
        store=store,
        enqueue=overrides.pop("enqueue", sent.extend),
        now=psa.clock(),
        overlap=OVERLAP,
        max_span=SPAN,
        first_lookback=LOOKBACK,
        deadline=deadline,
        **overrides,
    )


def ids(requests: list[PostingRequest]) -> list[str]:
    return [r.psa_id for r in requests]


# ----------------------------------------------------------------------------------------- the watermark


def test_a_first_run_reads_from_the_first_lookback_and_saves_the_windows_end(psa, clock):
    psa.change("time-entry", "TE-OLD", at=T0 - 2 * LOOKBACK)  # before the sweep's time: the initial load's
    psa.change("time-entry", "TE-1", at=T0 + 30 * SEC - LOOKBACK - OVERLAP)  # the first window's first second
    psa.change("time-entry", "TE-2", at=T0 - 30 * MIN)
    clock.tick(30 * SEC)
    store, sent = FakeStore(), []

    report = sweep(psa, store, sent)

    assert ids(sent) == ["TE-1", "TE-2"]
    assert {(r.kind, r.source, r.seen_version) for r in sent} == {("time-entry", "sweep", 1)}
    assert (report.window.updated_after, report.window.updated_before) == (
        T0 + 30 * SEC - LOOKBACK - OVERLAP,
        T0 + 30 * SEC,
    )
    assert report.watermark == T0 + 30 * SEC - LOOKBACK
    assert report.complete and report.reason is None
    assert report.advanced_to == store.get("time-entry") == T0 + 30 * SEC
    assert report.counts.model_dump() == {"read": 2, "enqueued": 2, "unmappable": 0}
    assert store.saved["time-entry"].counts == {"read": 2, "enqueued": 2, "unmappable": 0}
    assert store.saved["time-entry"].window == (T0 + 30 * SEC - LOOKBACK - OVERLAP, T0 + 30 * SEC)


def test_the_watermark_moves_to_the_windows_end_not_to_the_latest_change_read(psa, clock):
    store = FakeStore({"time-entry": Saved(T0, None, None)})
    psa.change("time-entry", "TE-1", at=T0 + 3 * MIN)
    clock.tick(15 * MIN + dt.timedelta(microseconds=700_000))

    report = sweep(psa, store, [])

    assert report.advanced_to == store.get("time-entry") == T0 + 15 * MIN  # whole seconds, not T0 + 3 min
    assert report.watermark == T0


def test_a_change_stamped_while_the_run_reads_is_read_by_the_next_run(psa, clock):
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    psa.change("time-entry", "TE-2", at=T0 + 2 * MIN)
    clock.tick(15 * MIN)

    def edit_during_the_run(yielded: int) -> None:
        if yielded == 1:
            clock.tick(20 * SEC)
            psa.change("time-entry", "TE-1")  # edited after the first page was read: version 2

    psa.while_reading = edit_during_the_run
    first = sweep(psa, store, sent)
    psa.while_reading = None
    clock.tick(15 * MIN)
    second = sweep(psa, store, sent)

    assert [(r.psa_id, r.seen_version) for r in sent] == [("TE-1", 1), ("TE-2", 1), ("TE-1", 2)]
    assert first.advanced_to == T0 + 15 * MIN  # the run's start, not the edit's instant
    assert second.window.updated_after == T0 + 15 * MIN - OVERLAP
    assert second.advanced_to == T0 + 30 * MIN + 20 * SEC


def test_requests_are_enqueued_in_chunks_while_the_window_is_still_being_read(psa, clock):
    for n in range(1_234):
        psa.change("expense", f"EX-{n}", at=T0 - 10 * MIN + n * dt.timedelta(milliseconds=100))
    store = FakeStore({"expense": Saved(T0 - 15 * MIN, None, None)})
    chunks: list[tuple[int, int]] = []  # (chunk size, records the PSA had handed over when it was sent)

    def enqueue(requests: list[PostingRequest]) -> int:
        chunks.append((len(requests), psa.yielded))
        return len(requests)

    report = sweep(psa, store, [], kind="expense", enqueue=enqueue)

    assert chunks == [(500, 500), (500, 1_000), (234, 1_234)]
    assert report.counts.model_dump() == {"read": 1_234, "enqueued": 1_234, "unmappable": 0}
    assert report.advanced_to == T0


# -------------------------------------------------------------------------------------- stopping short


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TransientError("kantata 503", system="kantata"), "psa-unavailable"),
        (ThrottledError("kantata 429", retry_after=30, system="kantata"), "psa-throttled"),
    ],
)
def test_a_psa_failure_mid_window_leaves_the_watermark_and_the_next_run_reads_the_window_again(
    psa, clock, error, reason
):
    for n in range(5):
        psa.change("time-entry", f"TE-{n}", at=T0 + n * MIN)
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)
    psa.fail_at, psa.error = 3, error

    failed = sweep(psa, store, sent)

    assert (failed.complete, failed.reason, failed.advanced_to) == (False, reason, None)
    assert store.get("time-entry") == T0
    assert ids(sent) == ["TE-0", "TE-1", "TE-2"]  # what was read is sent; harmless, re-read below
    assert failed.counts.model_dump() == {"read": 3, "enqueued": 3, "unmappable": 0}

    psa.fail_at = None
    clock.tick(15 * MIN)
    again = sweep(psa, store, sent)

    assert again.window.updated_after == failed.window.updated_after == T0 - OVERLAP
    assert ids(sent)[3:] == [f"TE-{n}" for n in range(5)]
    assert again.complete and store.get("time-entry") == T0 + 30 * MIN


def test_a_deadline_running_short_stops_the_run_without_advancing(psa, clock):
    for n in range(10):
        psa.change("time-entry", f"TE-{n}", at=T0 + n * SEC)
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)
    left = iter([PLENTY, PLENTY, PLENTY, 14.0])  # checked before reading, then after each record

    report = sweep(psa, store, sent, deadline=lambda: next(left), chunk_size=2)

    assert (report.complete, report.reason, report.advanced_to) == (False, "deadline", None)
    assert store.get("time-entry") == T0
    assert report.counts.model_dump() == {"read": 3, "enqueued": 2, "unmappable": 0}
    assert ids(sent) == ["TE-0", "TE-1"]


def test_a_run_started_too_close_to_the_deadline_reads_nothing(psa, clock):
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)

    report = sweep(psa, store, sent, deadline=lambda: 3.0)

    assert (report.complete, report.reason) == (False, "deadline")
    assert psa.windows == [] and sent == [] and store.get("time-entry") == T0


def test_a_failed_enqueue_leaves_the_watermark(psa, clock):
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    store = FakeStore({"time-entry": Saved(T0, None, None)})
    clock.tick(15 * MIN)

    def refused(requests: list[PostingRequest]) -> None:
        raise TransientError("1 posting request(s) could not be queued", system="sqs")

    report = sweep(psa, store, [], enqueue=refused)

    assert (report.complete, report.reason, report.counts.enqueued) == (False, "enqueue-failed", 0)
    assert store.get("time-entry") == T0


def test_a_permanent_psa_error_propagates_and_leaves_the_watermark(psa, clock):
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    psa.fail_at, psa.error = 0, PermanentError("kantata refused the token (401)", system="kantata")
    store = FakeStore({"time-entry": Saved(T0, None, None)})
    clock.tick(15 * MIN)

    with pytest.raises(PermanentError):
        sweep(psa, store, [])
    assert store.get("time-entry") == T0


def test_a_run_that_lost_the_race_to_another_run_does_not_move_the_watermark(psa, clock):
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)

    def another_run_saves_first() -> None:
        store.before_save = None
        store.saved["time-entry"] = Saved(T0 + 16 * MIN, None, None)

    store.before_save = another_run_saves_first
    report = sweep(psa, store, sent)

    assert ids(sent) == ["TE-1"]  # enqueued all the same: harmless
    assert (report.complete, report.reason, report.advanced_to) == (True, "watermark-moved", None)
    assert store.get("time-entry") == T0 + 16 * MIN  # neither lost nor moved back


# -------------------------------------------------------------------------------------------- coverage


def test_overlapping_windows_re_read_but_together_enqueue_every_change_even_one_visible_late(psa, clock):
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    stamps = [T0, T0 + 14 * MIN + 59 * SEC, T0 + 15 * MIN, T0 + 29 * MIN, T0 + 44 * MIN + 59 * SEC]
    for n, at in enumerate(stamps):
        psa.change("time-entry", f"TE-{n}", at=at)
    late = psa.change("time-entry", "TE-LATE", at=T0 + 14 * MIN + 30 * SEC, lag=MIN)  # shown at 15:30

    reports = []
    for _ in range(3):
        clock.tick(15 * MIN)
        reports.append(sweep(psa, store, sent))

    every = {("time-entry", f"TE-{n}") for n in range(len(stamps))} | {("time-entry", late.psa_id)}
    assert {r.key for r in sent} == every
    assert len(sent) > len(every)  # the overlap reads some twice; the consumer dedupes by id and version
    assert ids(sent).count("TE-LATE") == 1  # missed by the first window, read by the second
    assert [r.advanced_to for r in reports] == [T0 + 15 * MIN, T0 + 30 * MIN, T0 + 45 * MIN]
    assert all(r.window.updated_after == p.advanced_to - OVERLAP for p, r in zip(reports, reports[1:]))


def test_an_unmappable_record_is_enqueued_for_the_consumer_to_park_and_counted(psa, clock):
    psa.change("expense", "EX-1", at=T0 + MIN)
    psa.change("expense", "EX-BAD", at=T0 + 2 * MIN, unmappable=True)
    store, sent = FakeStore({"expense": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)

    report = sweep(psa, store, sent, kind="expense")

    assert [(r.kind, r.psa_id, r.seen_version) for r in sent] == [
        ("expense", "EX-1", 1),
        ("expense", "EX-BAD", None),
    ]
    assert report.counts.model_dump() == {"read": 2, "enqueued": 2, "unmappable": 1}
    assert report.complete and report.advanced_to == T0 + 15 * MIN


def test_the_kinds_keep_separate_watermarks(psa, clock):
    psa.change("time-entry", "TE-1", at=T0 + MIN)
    psa.change("expense", "EX-1", at=T0 + MIN)
    store, sent = FakeStore({"time-entry": Saved(T0, None, None)}), []
    clock.tick(15 * MIN)

    sweep(psa, store, sent, kind="expense")

    assert [r.key for r in sent] == [("expense", "EX-1")]
    assert store.get("time-entry") == T0 and store.get("expense") == T0 + 15 * MIN


def test_an_unknown_kind_is_refused(psa):
    with pytest.raises(ValueError, match="unknown kind"):
        sweep(psa, FakeStore(), [], kind="invoice")
