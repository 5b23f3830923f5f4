"""Shared helpers for the connector tests: a recording sleep and a retry policy that never waits."""

from __future__ import annotations

import pytest

from hub.connectors.http import RetryPolicy


class Sleeps(list):
    """Records every sleep the retry loop asks for, without sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    """3 attempts, deterministic full jitter at its ceiling, no real waiting."""
    return RetryPolicy(
        max_attempts=3, base_delay=0.5, max_delay=8.0, max_total_sleep=15.0, sleep=sleeps, random=lambda: 1.0
    )
