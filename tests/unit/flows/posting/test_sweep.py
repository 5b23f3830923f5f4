"""The sweep's watermark rules: windows in whole UTC seconds that overlap, and a watermark that only moves to
the end of a window read to its last page, so a change made during a run is never skipped."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.sweeps.windows import Window, advance, sweep_window

UTC = dt.UTC
LA = ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2026, 11, 30, 23, 45, 0, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)
SEC = dt.timedelta(seconds=1)
OVERLAP = 2 * MIN
SPAN = dt.timedelta(hours=6)

instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(
    [UTC, LA, ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")]
)
offsets = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=2))
spans = st.timedeltas(min_value=SEC, max_value=dt.timedelta(days=2))


# ------------------------------------------------------------------------------------------------ windows


def test_the_window_starts_an_overlap_before_the_watermark_and_ends_now():
    window = sweep_window(T0, T0 + 15 * MIN, OVERLAP, SPAN)

    assert window == Window(T0 - OVERLAP, T0 + 15 * MIN)


def test_a_sweep_far_behind_reads_at_most_max_span_and_the_next_run_continues_from_there():
    first = sweep_window(T0, T0 + dt.timedelta(days=3), OVERLAP, SPAN)
    second = sweep_window(advance(T0, first, []), T0 + dt.timedelta(days=3), OVERLAP, SPAN)

    assert first == Window(T0 - OVERLAP, T0 + SPAN)
    assert second == Window(T0 + SPAN - OVERLAP, T0 + 2 * SPAN)


def test_the_bounds_are_whole_utc_seconds_widened_at_the_start_and_narrowed_at_the_end():
    watermark = dt.datetime(2026, 11, 30, 15, 45, 0, 700_000, tzinfo=LA)  # 23:45:00.7 UTC
    now = dt.datetime(2026, 12, 1, 0, 0, 9, 999_999, tzinfo=UTC)

    window = sweep_window(watermark, now, OVERLAP, SPAN)

    assert window == Window(
        dt.datetime(2026, 11, 30, 23, 43, 0, tzinfo=UTC), dt.datetime(2026, 12, 1, 0, 0, 9, tzinfo=UTC)
    )
    assert window.updated_after.tzinfo is UTC and window.updated_before.tzinfo is UTC


def test_a_clock_that_went_back_before_the_window_gives_an_empty_window_and_keeps_the_watermark():
    window = sweep_window(T0, T0 - 10 * MIN, OVERLAP, SPAN)

    assert window.updated_after == window.updated_before == T0 - OVERLAP
    assert advance(T0, window, []) == T0


@pytest.mark.parametrize(
    ("watermark", "now"),
    [(T0.replace(tzinfo=None), T0), (T0, T0.replace(tzinfo=None))],
    ids=["naive watermark", "naive now"],
)
def test_naive_instants_are_refused(watermark, now):
    with pytest.raises(ValueError, match="timezone-aware"):
        sweep_window(watermark, now, OVERLAP, SPAN)


@pytest.mark.parametrize(
    ("overlap", "max_span", "message"),
    [(-SEC, SPAN, "overlap"), (OVERLAP, dt.timedelta(0), "max_span"), (OVERLAP, SEC / 2, "max_span")],
)
def test_a_negative_overlap_or_an_empty_span_is_refused(overlap, max_span, message):
    with pytest.raises(ValueError, match=message):
        sweep_window(T0, T0 + MIN, overlap, max_span)


@given(watermark=instants, now=instants, overlap=offsets, max_span=spans, zone=zones)
def test_every_window_is_well_formed_whatever_the_timezone_of_its_inputs(
    watermark, now, overlap, max_span, zone
):
    after, before = sweep_window(watermark.astimezone(zone), now.astimezone(zone), overlap, max_span)

    assert after.tzinfo is UTC and before.tzinfo is UTC
    assert after.microsecond == 0 and before.microsecond == 0
    assert after <= before
    assert after <= watermark - overlap < after + SEC  # the start: widened, by less than a second
    assert before <= max(now, after) and before <= max(watermark + max_span, after)
    if now >= watermark + SEC:
        assert before > watermark  # the run makes progress towards now


# ------------------------------------------------------------------------------------------------ advance


def test_the_watermark_moves_to_the_windows_end_not_to_the_latest_change_seen():
    window = sweep_window(T0, T0 + 15 * MIN, OVERLAP, SPAN)
    seen = [T0 + 3 * MIN, T0 + 15 * MIN + 30 * SEC]  # the second: made during the run, shown early

    assert advance(T0, window, seen) == T0 + 15 * MIN


def test_a_window_that_starts_after_the_watermark_is_refused_as_a_gap():
    with pytest.raises(ValueError, match="gap"):
        advance(T0, Window(T0 + SEC, T0 + 15 * MIN), [])


def test_an_inverted_window_or_a_naive_seen_instant_is_refused():
    with pytest.raises(ValueError, match="before it starts"):
        advance(T0, Window(T0, T0 - SEC), [])
    with pytest.raises(ValueError, match="timezone-aware"):
        advance(T0, Window(T0 - OVERLAP, T0 + MIN), [(T0 + SEC).replace(tzinfo=None)])


@given(watermark=instants, now=instants, overlap=offsets, max_span=spans, seen=st.lists(instants, max_size=5))
def test_the_watermark_never_moves_back_never_passes_the_window_and_ignores_what_was_seen(
    watermark, now, overlap, max_span, seen
):
    window = sweep_window(watermark, now, overlap, max_span)

    moved = advance(watermark, window, seen)

    assert moved == max(watermark, window.updated_before)
    assert moved == advance(watermark, window, [])


# ------------------------------------------------------------------------------------ runs over time


@dataclass(frozen=True)
class Change:
    """A change the PSA stamped at ``stamp`` (its clock), visible through its API from ``visible`` (hub time)."""

    name: int
    stamp: dt.datetime
    visible: dt.datetime


def run_sweeps(
    changes: list[Change], run_times: list[dt.datetime], start: dt.datetime, overlap: dt.timedelta, max_span
) -> list[list[int]]:
    """Each run reads what is in its window and visible by the time it reads (a run reads at its start, the
    earliest it could; reading later only shows more), then advances. The reads of every run, in order."""
    watermark = start
    reads = []
    for now in run_times:
        window = sweep_window(watermark, now, overlap, max_span)
        read = [
            c
            for c in changes
            if window.updated_after <= c.stamp.replace(microsecond=0) < window.updated_before
            and c.visible <= now
        ]
        reads.append([c.name for c in read])
        watermark = advance(watermark, window, [c.stamp for c in read])
    return reads


@st.composite
def histories(draw):
    """Changes over two hours with a PSA clock up to ``skew`` behind the hub's and up to ``delay`` before they
    are visible; runs every 1-30 minutes (at least ``lag`` apart), then runs until everything is swept."""
    skew = draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(seconds=90)))
    delay = draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(seconds=30)))
    lag = skew + delay
    overlap = draw(st.one_of(st.just(lag), st.timedeltas(min_value=lag, max_value=lag + 5 * MIN)))
    max_span = draw(st.sampled_from([10 * MIN, dt.timedelta(hours=1), SPAN]))
    gaps = draw(st.lists(st.timedeltas(min_value=max(MIN, lag), max_value=30 * MIN), min_size=1, max_size=12))
    run_times = []
    moment = T0
    for gap in gaps:
        moment += gap
        run_times.append(moment)
    end = run_times[-1]
    changes = []
    for name in range(draw(st.integers(min_value=1, max_value=40))):
        if draw(st.booleans()):  # anywhere in the two hours
            made = T0 + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=end - T0))  # hub time
        else:  # around a run: just before it, while it reads, just after
            near = draw(st.sampled_from(run_times))
            made = max(T0, near + draw(st.timedeltas(min_value=-lag - 5 * SEC, max_value=MIN)))
        stamp = made - draw(st.timedeltas(min_value=dt.timedelta(0), max_value=skew))
        visible = made + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=delay))
        changes.append(Change(name, stamp, visible))
    last = max([end, *(c.visible for c in changes), *(c.stamp for c in changes)])
    drain = last + lag + SEC
    step = max(SEC, lag)
    run_times += [drain + n * step for n in range(1, int((drain - T0) / max_span) + 3)]
    return changes, run_times, overlap, max_span


@settings(max_examples=300, deadline=None)
@given(histories())
def test_every_change_is_read_by_some_run_even_one_made_while_a_run_reads(history):
    changes, run_times, overlap, max_span = history

    reads = run_sweeps(changes, run_times, T0, overlap, max_span)

    read = {name for run in reads for name in run}
    assert read == {c.name for c in changes}


def test_a_change_made_while_a_run_reads_is_read_by_the_next_run():
    # The run starts at 00:00:00 and reads its page at 00:00:00; the PSA's clock is 20 s behind, so a change
    # made during the run is stamped 23:59:50, inside the window that was already read, visible only after.
    now = T0 + 15 * MIN
    late = Change(1, stamp=now - 10 * SEC, visible=now + 2 * SEC)

    reads = run_sweeps([late], [now, now + 15 * MIN], T0, OVERLAP, SPAN)

    assert reads == [[], [1]]


def test_a_change_at_the_windows_end_is_read_once_per_window_and_twice_across_overlapping_windows():
    first_end = T0 + 15 * MIN
    just_before = Change(1, stamp=first_end - dt.timedelta(microseconds=1), visible=first_end - SEC)
    at_the_end = Change(2, stamp=first_end, visible=first_end)

    reads = run_sweeps([just_before, at_the_end], [first_end, first_end + 15 * MIN], T0, OVERLAP, SPAN)

    assert reads == [[1], [1, 2]]


@settings(max_examples=200, deadline=None)
@given(history=histories())
def test_each_window_starts_at_least_an_overlap_before_the_previous_one_ended(history):
    _, run_times, overlap, max_span = history
    watermark = T0
    previous = None
    for now in run_times:
        window = sweep_window(watermark, now, overlap, max_span)
        if previous is not None and previous.updated_before >= T0:
            assert window.updated_after <= previous.updated_before - overlap
            assert window.updated_before >= previous.updated_before
        watermark = advance(watermark, window, [])
        previous = window
