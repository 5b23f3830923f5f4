"""A clock the tests move by hand (an aware UTC instant), shared by the sandboxes and the code under test."""

from __future__ import annotations

import datetime as dt


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, delta: dt.timedelta) -> dt.datetime:
        self.now += delta
        return self.now
