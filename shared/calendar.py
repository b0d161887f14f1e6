"""Legal working time: office hours, weekends, Vietnamese public holidays and the agency's
own overrides. Pure code, no I/O; every function takes and returns timezone-aware datetimes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from shared.catalog import ProcessingTime, TimeUnit

HCMC = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class OfficeHours:
    """Working periods of one day; 07:00–11:30 and 13:30–17:00 make the legal 8-hour day."""

    periods: tuple[tuple[time, time], ...] = (
        (time(7, 0), time(11, 30)),
        (time(13, 30), time(17, 0)),
    )

    def __post_init__(self) -> None:
        previous_end = time.min
        for start, end in self.periods:
            if not previous_end <= start < end:
                raise ValueError(f"office periods must be ordered and disjoint: {self.periods}")
            previous_end = end

    @property
    def working_day(self) -> timedelta:
        return sum((_span(start, end) for start, end in self.periods), timedelta())

    @property
    def closing(self) -> time:
        return self.periods[-1][1]


@dataclass(frozen=True)
class CalendarOverrides:
    """The government's yearly swap decisions that the holidays package does not know yet."""

    extra_days_off: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        clash = self.extra_days_off & self.extra_working_days
        if clash:
            raise ValueError(f"a day cannot be both off and working: {sorted(clash)}")


class WorkingCalendar:
    def __init__(
        self,
        office_hours: OfficeHours | None = None,
        overrides: CalendarOverrides | None = None,
        tz: ZoneInfo = HCMC,
    ) -> None:
        self.office_hours = office_hours or OfficeHours()
        self.overrides = overrides or CalendarOverrides()
        self.tz = tz
        public_holidays = holidays.country_holidays("VN")
        self._is_working_day = lru_cache(maxsize=4096)(
            lambda day: self._decide_working_day(public_holidays, day)
        )

    def _decide_working_day(self, public_holidays: holidays.HolidayBase, day: date) -> bool:
        if day in self.overrides.extra_working_days:
            return True
        if day in self.overrides.extra_days_off:
            return False
        return bool(public_holidays.is_working_day(day))

    def is_working_day(self, day: date) -> bool:
        return bool(self._is_working_day(day))

    def is_working_time(self, moment: datetime) -> bool:
        local = self._local(moment)
        if not self.is_working_day(local.date()):
            return False
        return any(start <= local.time() <= end for start, end in self.office_hours.periods)

    def counting_start(self, received_at: datetime) -> datetime:
        """When the clock starts: at once in office hours, else at the next working period."""
        return next(self._periods_from(received_at))[0]

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        if duration < timedelta():
            raise ValueError("duration must not be negative")
        remaining = duration
        for period_start, period_end in self._periods_from(start):
            available = period_end - period_start
            if remaining <= available:
                return period_start + remaining
            remaining -= available
        raise AssertionError("unreachable: periods never run out")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta()
        if end <= start:
            return total
        for period_start, period_end in self._periods_from(start):
            if period_start >= end:
                return total
            total += min(period_end, end) - period_start
        raise AssertionError("unreachable: periods never run out")

    def next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def closing_of(self, day: date) -> datetime:
        return datetime.combine(day, self.office_hours.closing, self.tz)

    def due_at(
        self,
        received_at: datetime,
        processing_time: ProcessingTime,
        same_day_cutoff: time | None = None,
    ) -> datetime:
        """The appointment (ngày hẹn trả) for a complete dossier received at `received_at`."""
        local = self._local(received_at)
        if same_day_cutoff is not None:
            # Same-day procedures: received before the cutoff on a working day, done that day.
            if self.is_working_day(local.date()) and local.time() < same_day_cutoff:
                return self.closing_of(local.date())
            return self.closing_of(self.next_working_day(local.date()))
        start = self.counting_start(received_at)
        if processing_time.unit is TimeUnit.CALENDAR_DAYS:
            # A period whose last day is a day off ends with the next working day.
            last_day = start.date() + timedelta(days=round(processing_time.value))
            if not self.is_working_day(last_day):
                last_day = self.next_working_day(last_day)
            return self.closing_of(last_day)
        return self.add_working_time(start, self.working_duration(processing_time))

    def working_duration(self, processing_time: ProcessingTime) -> timedelta:
        if processing_time.unit is TimeUnit.WORKING_HOURS:
            return timedelta(hours=processing_time.value)
        if processing_time.unit is TimeUnit.WORKING_DAYS:
            return self.office_hours.working_day * processing_time.value
        # Calendar days have no working duration of their own; steps share the 8-hour days.
        return self.office_hours.working_day * processing_time.value

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware moment")
        return moment.astimezone(self.tz)

    def _periods_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods from `moment` on, the first one clipped to start at `moment`."""
        local = self._local(moment)
        day = local.date()
        while True:
            if self.is_working_day(day):
                for start, end in self.office_hours.periods:
                    period_start = datetime.combine(day, start, self.tz)
                    period_end = datetime.combine(day, end, self.tz)
                    if period_end < local:
                        continue
                    yield max(period_start, local), period_end
            day += timedelta(days=1)


def _span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)
