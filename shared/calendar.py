"""Legal working time: office hours, weekends, Vietnamese public holidays and the agency's
own overrides. Pure code, no I/O (except `load_overrides`, which reads the agency's file once at
start); every function takes and returns timezone-aware datetimes and refuses naive ones.

Counting rules, in one place:
- working time is the union of the office periods (closed intervals: 11:30 and 13:30 are both
  working moments) of working days;
- a working day is a weekday that is not a public holiday, or a make-up Saturday, as the
  `holidays` package knows them, corrected by the agency's overrides (`CalendarOverrides`);
- a dossier received outside working time starts counting at the next working period;
- a pause (supplement requested) moves the due time later by exactly the working time that
  passed while paused: the parts of the pause outside working time count for nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

from shared.catalog import Catalog, OfficeHours, ProcessingTime, TimeUnit, Unit

__all__ = [
    "DEFAULT_OVERRIDES",
    "HCMC",
    "CalendarOverrides",
    "Calendars",
    "OfficeHours",
    "WorkingCalendar",
    "calendar_for",
    "load_overrides",
]

HCMC = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_OVERRIDES = Path(__file__).parent / "data" / "calendar_overrides.toml"


@dataclass(frozen=True)
class CalendarOverrides:
    """The government's yearly swap decisions that the holidays package does not know yet."""

    extra_days_off: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        clash = self.extra_days_off & self.extra_working_days
        if clash:
            days = ", ".join(day.isoformat() for day in sorted(clash))
            raise ValueError(f"a day cannot be both off and working: {days}")


_OVERRIDE_KEYS = ("extra_days_off", "extra_working_days")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def load_overrides(path: Path) -> CalendarOverrides:
    """Read the agency's override table (TOML: `extra_days_off`, `extra_working_days`, lists of
    ISO dates, as TOML dates or strings). Any mistake stops the service with a clear message."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from error
    unknown = sorted(set(document) - set(_OVERRIDE_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(unknown)}; expected {' and '.join(_OVERRIDE_KEYS)}"
        )
    lists = {key: _iso_dates(path, key, document.get(key, [])) for key in _OVERRIDE_KEYS}
    try:
        return CalendarOverrides(
            extra_days_off=lists["extra_days_off"], extra_working_days=lists["extra_working_days"]
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _iso_dates(path: Path, key: str, values: object) -> frozenset[date]:
    if not isinstance(values, list):
        raise ValueError(f"{path}: {key} must be a list of ISO dates such as 2026-01-02")
    days: list[date] = []
    for value in values:
        if isinstance(value, date) and not isinstance(value, datetime):
            day = value
        elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                day = date.fromisoformat(value)
            except ValueError as error:
                raise ValueError(f"{path}: {key}: {value!r}: {error}") from None
        else:
            raise ValueError(f"{path}: {key}: {value!r} is not an ISO date (YYYY-MM-DD)")
        if day in days:
            raise ValueError(f"{path}: {key}: {day.isoformat()} is listed twice")
        days.append(day)
    return frozenset(days)


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
        if isinstance(day, datetime):
            day = self._local(day).date()
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
        """The earliest moment by which `duration` of working time has passed since `start`."""
        if duration < timedelta():
            raise ValueError("duration must not be negative")
        remaining = duration
        for period_start, period_end in self._periods_from(start):
            available = period_end - period_start
            if remaining <= available:
                return period_start + remaining
            remaining -= available
        raise AssertionError("unreachable: periods never run out")

    def subtract_working_time(self, end: datetime, duration: timedelta) -> datetime:
        """The latest moment, in working time, from which `duration` of working time runs
        until `end`: `working_time_between(result, end) == duration` always holds, and
        `add_working_time(result, duration) == end` whenever `end` is in working time and not
        the very start of a period (a moment that `add_working_time` can return for a positive
        duration). A zero duration gives `end` itself in working time, else the close of the
        last period before it."""
        if duration < timedelta():
            raise ValueError("duration must not be negative")
        remaining = duration
        for period_start, period_end in self._periods_until(end):
            available = period_end - period_start
            if remaining <= available:
                return period_end - remaining
            remaining -= available
        raise AssertionError("unreachable: periods never run out")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end]; nothing if `end` is not after `start`."""
        self._local(start)
        self._local(end)
        total = timedelta()
        if end <= start:
            return total
        for period_start, period_end in self._periods_from(start):
            if period_start >= end:
                return total
            total += min(period_end, end) - period_start
        raise AssertionError("unreachable: periods never run out")

    def resume_due(self, due_at: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
        """The due time after a pause (supplement requested at `paused_at`, received at
        `resumed_at`): later by exactly `working_time_between(paused_at, resumed_at)`.

        Only working time counts as paused: a pause that starts outside working time (after
        hours, lunch, a weekend, a holiday) counts from the next working period, and one that
        ends outside working time counts up to the close of the last period before it. So a
        supplement asked for on Friday at 17:30 and received on Monday at 06:45 moves nothing,
        and one asked for at 16:00 on Friday and received on Monday at lunch moves the due time
        by 1 + 4.5 = 5.5 working hours. The rule is the same if the pause falls after the
        original due time (the dossier was already late): the due time still moves by the pause.
        """
        for moment in (due_at, paused_at, resumed_at):
            self._local(moment)
        if resumed_at < paused_at:
            raise ValueError(f"resumed at {resumed_at} before being paused at {paused_at}")
        return self.add_working_time(due_at, self.working_time_between(paused_at, resumed_at))

    def step_due_times(
        self, start: datetime, total_duration: timedelta, shares: Sequence[float]
    ) -> list[datetime]:
        """The due time of each step of a process (quy trình) that starts counting at `start`:
        step i is due when the cumulative share of `total_duration` up to and including it has
        run out. The last equals `add_working_time(start, total_duration)`, the overall due time.
        """
        if not shares:
            raise ValueError("a process needs at least one step")
        if any(not 0 < share <= 1 for share in shares):
            raise ValueError(f"each share must be in (0, 1]: {list(shares)}")
        if abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"shares add up to {sum(shares):g}, not 1")
        if total_duration < timedelta():
            raise ValueError("duration must not be negative")
        begin = self.counting_start(start)
        dues: list[datetime] = []
        cumulative = 0.0
        for share in shares[:-1]:
            cumulative += share
            elapsed = min(total_duration * cumulative, total_duration)
            dues.append(self.add_working_time(begin, elapsed))
        dues.append(self.add_working_time(begin, total_duration))
        return dues

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
        if moment.tzinfo is None or moment.utcoffset() is None:
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

    def _periods_until(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods up to `moment`, latest first, the first one clipped to end there."""
        local = self._local(moment)
        day = local.date()
        while True:
            if self.is_working_day(day):
                for start, end in reversed(self.office_hours.periods):
                    period_start = datetime.combine(day, start, self.tz)
                    period_end = datetime.combine(day, end, self.tz)
                    if period_start > local:
                        continue
                    yield period_start, min(period_end, local)
            day -= timedelta(days=1)


class Calendars:
    """One WorkingCalendar per distinct office hours, all sharing the agency's overrides."""

    def __init__(self, overrides: CalendarOverrides | None = None, tz: ZoneInfo = HCMC) -> None:
        self.overrides = overrides or CalendarOverrides()
        self.tz = tz
        self._by_hours: dict[OfficeHours, WorkingCalendar] = {}

    def for_hours(self, office_hours: OfficeHours) -> WorkingCalendar:
        calendar = self._by_hours.get(office_hours)
        if calendar is None:
            calendar = WorkingCalendar(office_hours, self.overrides, self.tz)
            self._by_hours[office_hours] = calendar
        return calendar

    def for_unit(self, unit: Unit) -> WorkingCalendar:
        return self.for_hours(unit.office_hours)


def calendar_for(unit: Unit, overrides: CalendarOverrides | None = None) -> WorkingCalendar:
    """The working calendar of a unit (its own office hours), cached per distinct office hours
    and overrides."""
    return _cached_calendar(unit.office_hours, overrides or CalendarOverrides())


@lru_cache(maxsize=64)
def _cached_calendar(office_hours: OfficeHours, overrides: CalendarOverrides) -> WorkingCalendar:
    return WorkingCalendar(office_hours, overrides)


class UnitCalendars:
    """The calendar each unit counts its time in: its own office hours (from the catalog) and
    the agency's overrides. A dossier's clock runs in its competent unit's calendar."""

    def __init__(self, catalog: Catalog, overrides: CalendarOverrides | None = None) -> None:
        self._catalog = catalog
        self._calendars = Calendars(overrides)
        self.default = self._calendars.for_hours(OfficeHours())

    def of(self, unit_code: str) -> WorkingCalendar:
        unit = self._catalog.unit(unit_code)
        return self._calendars.for_unit(unit) if unit is not None else self.default
