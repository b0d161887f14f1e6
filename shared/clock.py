"""Clocks the services read `now` from: the system clock, or a simulated one that tests and
the demo move forward by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def system_clock() -> datetime:
    return datetime.now(UTC)


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs a timezone-aware start")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta():
            raise ValueError("time only moves forward")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> datetime:
        return self.advance(moment - self._now)
