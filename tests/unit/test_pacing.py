"""The client-side pace: a token bucket, measured on an injected clock (no real sleeping)."""

from __future__ import annotations

import pytest

from hub.pacing import RatePacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(rate: float, burst: int = 1) -> tuple[RatePacer, FakeTime]:
    clock = FakeTime()
    return RatePacer(rate, burst=burst, monotonic=clock.monotonic, sleep=clock.sleep), clock


def test_back_to_back_requests_are_spaced_at_the_rate():
    pace, clock = pacer(5.0)
    started = []
    for _ in range(11):
        with pace.slot():
            started.append(clock.now)

    assert started[0] == 0.0
    assert started[-1] == pytest.approx(2.0)  # 10 intervals of 1/5 s
    assert all(b - a == pytest.approx(0.2) for a, b in zip(started, started[1:], strict=False))


def test_a_burst_goes_at_once_then_the_rate_applies():
    pace, clock = pacer(2.0, burst=3)
    started = []
    for _ in range(5):
        with pace.slot():
            started.append(clock.now)

    assert started == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])


def test_an_idle_pause_refills_up_to_the_burst_only():
    pace, clock = pacer(1.0, burst=2)
    for _ in range(2):
        pace.reserve()
    clock.now += 60  # a minute idle: two tokens, not sixty
    waits = [pace.reserve() for _ in range(3)]

    assert waits == pytest.approx([0.0, 0.0, 1.0])


def test_queued_callers_wait_in_turn_behind_each_reservation():
    pace, _ = pacer(4.0)
    waits = [pace.reserve() for _ in range(4)]  # four threads arriving at the same instant

    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_a_pace_needs_a_positive_rate_and_burst(rate, burst):
    with pytest.raises(ValueError):
        RatePacer(rate, burst=burst)
