"""Working-time rules on real dates (Tết 2026 and 2027, make-up days, lunch and after hours)."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import HCMC, CalendarOverrides, OfficeHours, WorkingCalendar
from shared.catalog import ProcessingTime, TimeUnit
from tests.unit.conftest import hcmc


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 13), True),  # Friday before Tết Bính Ngọ
        (date(2026, 2, 16), False),  # 29 Tết (Lunar New Year's Eve 2026)
        (date(2026, 2, 20), False),  # 4th day of Tết
        (date(2026, 2, 23), True),  # first Monday back
        (date(2027, 2, 5), False),  # Tết Đinh Mùi 2027
        (date(2027, 2, 10), False),
        (date(2027, 2, 11), True),
        (date(2026, 8, 22), True),  # make-up Saturday for 31/8/2026
        (date(2026, 8, 31), False),
        (date(2026, 9, 2), False),  # National Day
        (date(2026, 11, 21), False),  # an ordinary Saturday
    ],
)
def test_working_days_follow_the_vietnamese_calendar(
    calendar: WorkingCalendar, day: date, working: bool
) -> None:
    assert calendar.is_working_day(day) is working


def test_overrides_add_days_off_and_make_up_days() -> None:
    overrides = CalendarOverrides(
        extra_days_off=frozenset({date(2026, 12, 31)}),
        extra_working_days=frozenset({date(2026, 12, 26)}),
    )
    calendar = WorkingCalendar(overrides=overrides)
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.is_working_day(date(2026, 12, 26))


def test_a_day_cannot_be_both_off_and_working() -> None:
    with pytest.raises(ValueError, match="both off and working"):
        CalendarOverrides(
            extra_days_off=frozenset({date(2026, 12, 31)}),
            extra_working_days=frozenset({date(2026, 12, 31)}),
        )


@pytest.mark.parametrize(
    ("received", "starts"),
    [
        (hcmc(2026, 11, 23, 9, 15), hcmc(2026, 11, 23, 9, 15)),  # in office hours
        (hcmc(2026, 11, 23, 12, 0), hcmc(2026, 11, 23, 13, 30)),  # lunch break
        (hcmc(2026, 11, 23, 6, 0), hcmc(2026, 11, 23, 7, 0)),  # before opening
        (hcmc(2026, 11, 23, 18, 0), hcmc(2026, 11, 25, 7, 0)),  # after hours; 24/11 is off
        (hcmc(2026, 2, 13, 17, 30), hcmc(2026, 2, 23, 7, 0)),  # Friday evening before Tết
    ],
)
def test_counting_starts_at_the_next_working_period(
    calendar: WorkingCalendar, received: object, starts: object
) -> None:
    assert calendar.counting_start(received) == starts  # type: ignore[arg-type]


def test_working_days_skip_tet(calendar: WorkingCalendar) -> None:
    due = calendar.due_at(
        hcmc(2026, 2, 12, 9, 0), ProcessingTime(value=3, unit=TimeUnit.WORKING_DAYS)
    )
    # Thu 12/2 09:00 + 3 working days: Fri 13/2, (Tết 16–20/2), Mon 23/2, Tue 24/2 09:00
    assert due == hcmc(2026, 2, 24, 9, 0)


def test_half_a_working_day_is_four_hours(calendar: WorkingCalendar) -> None:
    due = calendar.due_at(
        hcmc(2026, 11, 23, 10, 0), ProcessingTime(value=0.5, unit=TimeUnit.WORKING_DAYS)
    )
    assert due == hcmc(2026, 11, 23, 16, 0)  # 1.5 h before lunch, 2.5 h after


def test_same_day_cutoff(calendar: WorkingCalendar) -> None:
    four_hours = ProcessingTime(value=4, unit=TimeUnit.WORKING_HOURS)
    before = calendar.due_at(hcmc(2026, 11, 23, 14, 59), four_hours, time(15, 0))
    after = calendar.due_at(hcmc(2026, 11, 23, 15, 1), four_hours, time(15, 0))
    assert before == hcmc(2026, 11, 23, 17, 0)
    assert after == hcmc(2026, 11, 25, 17, 0)  # 24/11 is Vietnam Culture Day


def test_calendar_days_ending_on_a_day_off_move_to_the_next_working_day(
    calendar: WorkingCalendar,
) -> None:
    due = calendar.due_at(
        hcmc(2026, 11, 18, 9, 0), ProcessingTime(value=3, unit=TimeUnit.CALENDAR_DAYS)
    )
    assert due == hcmc(2026, 11, 23, 17, 0)  # 21/11 is a Saturday


def test_office_hours_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="ordered and disjoint"):
        OfficeHours(periods=((time(13, 0), time(17, 0)), (time(7, 0), time(11, 0))))


def test_naive_datetimes_are_refused(calendar: WorkingCalendar) -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="naive"):
        calendar.counting_start(datetime(2026, 11, 23, 9, 0))


moments = st.datetimes(
    min_value=hcmc(2025, 1, 1).replace(tzinfo=None),
    max_value=hcmc(2027, 12, 1).replace(tzinfo=None),
    timezones=st.just(HCMC),
)
durations = st.integers(min_value=0, max_value=40 * 8 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations)
def test_a_due_time_never_falls_in_non_working_time(start, duration) -> None:  # type: ignore[no-untyped-def]
    calendar = WorkingCalendar()
    assert calendar.is_working_time(calendar.add_working_time(start, duration))


@settings(max_examples=200, deadline=None)
@given(start=moments, first=durations, second=durations)
def test_adding_working_time_is_additive_and_monotonic(start, first, second) -> None:  # type: ignore[no-untyped-def]
    calendar = WorkingCalendar()
    once = calendar.add_working_time(start, first + second)
    twice = calendar.add_working_time(calendar.add_working_time(start, first), second)
    assert once == twice
    assert calendar.add_working_time(start, first) <= once


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations)
def test_working_time_between_inverts_adding(start, duration) -> None:  # type: ignore[no-untyped-def]
    calendar = WorkingCalendar()
    begin = calendar.counting_start(start)
    assert (
        calendar.working_time_between(begin, calendar.add_working_time(begin, duration)) == duration
    )
