"""Working-time rules on real dates (Tết 2026 and 2027, make-up days, lunch and after hours),
the agency's overrides, pauses, per-step due times, and invariants checked by hypothesis."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    DEFAULT_OVERRIDES,
    HCMC,
    CalendarOverrides,
    Calendars,
    OfficeHours,
    WorkingCalendar,
    calendar_for,
    load_overrides,
)
from shared.catalog import Catalog, ProcessingTime, TimeUnit
from tests.unit.conftest import hcmc

WORKING_DAYS = TimeUnit.WORKING_DAYS
WORKING_HOURS = TimeUnit.WORKING_HOURS
CALENDAR_DAYS = TimeUnit.CALENDAR_DAYS


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 13), True),  # Friday before Tết Bính Ngọ
        (date(2026, 2, 16), False),  # 29 Tết (Lunar New Year's Eve 2026)
        (date(2026, 2, 20), False),  # 4th day of Tết
        (date(2026, 2, 23), True),  # first Monday back
        (date(2027, 2, 3), True),  # Wednesday before Tết Đinh Mùi
        (date(2027, 2, 4), False),  # 29 Tết: the holidays package starts Tết 2027 here
        (date(2027, 2, 5), False),  # Tết Đinh Mùi 2027
        (date(2027, 2, 10), False),
        (date(2027, 2, 11), True),
        (date(2026, 8, 22), True),  # make-up Saturday for 31/8/2026
        (date(2026, 8, 29), False),  # the Saturday after it is an ordinary one
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
def test_a_due_time_never_falls_in_non_working_time(start, duration) -> None:
    calendar = WorkingCalendar()
    assert calendar.is_working_time(calendar.add_working_time(start, duration))


@settings(max_examples=200, deadline=None)
@given(start=moments, first=durations, second=durations)
def test_adding_working_time_is_additive_and_monotonic(start, first, second) -> None:
    calendar = WorkingCalendar()
    once = calendar.add_working_time(start, first + second)
    twice = calendar.add_working_time(calendar.add_working_time(start, first), second)
    assert once == twice
    assert calendar.add_working_time(start, first) <= once


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations)
def test_working_time_between_inverts_adding(start, duration) -> None:
    calendar = WorkingCalendar()
    begin = calendar.counting_start(start)
    assert (
        calendar.working_time_between(begin, calendar.add_working_time(begin, duration)) == duration
    )


# --- Due times on real dates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "processing_time", "due"),
    [
        pytest.param(
            hcmc(2026, 2, 14, 10, 0),
            ProcessingTime(value=1, unit=WORKING_DAYS),
            hcmc(2026, 2, 23, 17, 0),  # counting starts Mon 23/2 07:00, after Tết
            id="received on the Saturday before Tết 2026",
        ),
        pytest.param(
            hcmc(2026, 2, 17, 9, 0),
            ProcessingTime(value=4, unit=WORKING_HOURS),
            hcmc(2026, 2, 23, 11, 0),
            id="received on the first day of Tết 2026",
        ),
        pytest.param(
            hcmc(2027, 2, 3, 16, 0),
            ProcessingTime(value=1, unit=WORKING_DAYS),
            hcmc(2027, 2, 11, 16, 0),  # 1 h on 3/2, Tết 4–10/2, 7 h on 11/2
            id="one working day across Tết 2027",
        ),
        pytest.param(
            hcmc(2026, 8, 21, 15, 0),
            ProcessingTime(value=1, unit=WORKING_DAYS),
            hcmc(2026, 8, 22, 15, 0),  # 2 h on Friday, 6 h on the make-up Saturday
            id="make-up Saturday 22/8/2026 counts",
        ),
        pytest.param(
            hcmc(2026, 8, 28, 9, 0),
            ProcessingTime(value=2, unit=WORKING_DAYS),
            hcmc(2026, 9, 4, 9, 0),  # 6 h on 28/8; 31/8 (swapped), 1–2/9 off; 8 h on 3/9; 2 h
            id="swapped day off 31/8/2026 and National Day",
        ),
        pytest.param(
            hcmc(2026, 11, 23, 17, 1),
            ProcessingTime(value=4, unit=WORKING_HOURS),
            hcmc(2026, 11, 25, 11, 0),  # 24/11 is Vietnam Culture Day
            id="received after hours",
        ),
        pytest.param(
            hcmc(2026, 11, 27, 20, 0),
            ProcessingTime(value=0.5, unit=WORKING_DAYS),
            hcmc(2026, 11, 30, 11, 0),
            id="received on Friday evening",
        ),
        pytest.param(
            hcmc(2026, 11, 23, 12, 15),
            ProcessingTime(value=4, unit=WORKING_HOURS),
            hcmc(2026, 11, 25, 7, 30),  # from 13:30: 3.5 h on 23/11, 0.5 h on 25/11
            id="received at lunch",
        ),
        pytest.param(
            hcmc(2026, 11, 23, 9, 0),
            ProcessingTime(value=1.5, unit=WORKING_DAYS),
            hcmc(2026, 11, 25, 15, 0),  # 6 h on 23/11, 24/11 off, 6 h on 25/11
            id="a day and a half",
        ),
        pytest.param(
            hcmc(2026, 4, 28, 9, 0),
            ProcessingTime(value=2, unit=CALENDAR_DAYS),
            hcmc(2026, 5, 4, 17, 0),  # last day 30/4 (holiday), then 1/5 and the weekend
            id="calendar days ending on a holiday",
        ),
        pytest.param(
            hcmc(2026, 2, 2, 10, 0),
            ProcessingTime(value=15, unit=CALENDAR_DAYS),
            hcmc(2026, 2, 23, 17, 0),  # last day 17/2, in Tết
            id="calendar days ending in Tết",
        ),
    ],
)
def test_due_times_on_real_dates(
    calendar: WorkingCalendar, received: datetime, processing_time: ProcessingTime, due: datetime
) -> None:
    assert calendar.due_at(received, processing_time) == due


@pytest.mark.parametrize(
    ("received", "due"),
    [
        pytest.param(hcmc(2026, 11, 23, 6, 30), hcmc(2026, 11, 23, 17, 0), id="before opening"),
        pytest.param(hcmc(2026, 11, 23, 12, 0), hcmc(2026, 11, 23, 17, 0), id="at lunch"),
        pytest.param(hcmc(2026, 11, 23, 14, 59), hcmc(2026, 11, 23, 17, 0), id="14:59"),
        pytest.param(hcmc(2026, 11, 23, 15, 0), hcmc(2026, 11, 25, 17, 0), id="15:00 sharp"),
        pytest.param(hcmc(2026, 11, 27, 16, 0), hcmc(2026, 11, 30, 17, 0), id="Friday 16:00"),
        pytest.param(hcmc(2026, 11, 21, 10, 0), hcmc(2026, 11, 23, 17, 0), id="on a Saturday"),
        pytest.param(hcmc(2026, 8, 22, 10, 0), hcmc(2026, 8, 22, 17, 0), id="make-up Saturday"),
        pytest.param(hcmc(2026, 2, 13, 15, 30), hcmc(2026, 2, 23, 17, 0), id="eve of Tết"),
        pytest.param(hcmc(2026, 2, 18, 9, 0), hcmc(2026, 2, 23, 17, 0), id="during Tết"),
    ],
)
def test_same_day_cutoff_at_15(
    calendar: WorkingCalendar, received: datetime, due: datetime
) -> None:
    one_day = ProcessingTime(value=1, unit=WORKING_DAYS)
    assert calendar.due_at(received, one_day, time(15, 0)) == due


# --- The agency's overrides ----------------------------------------------------------------

YEAR_END_SWAP = CalendarOverrides(
    extra_days_off=frozenset({date(2026, 12, 31)}),  # a Thursday, before New Year's Day
    extra_working_days=frozenset({date(2026, 12, 26)}),  # a Saturday, worked back
)


def test_an_override_working_saturday_counts() -> None:
    received, one_day = hcmc(2026, 12, 25, 16, 0), ProcessingTime(value=1, unit=WORKING_DAYS)
    assert WorkingCalendar().due_at(received, one_day) == hcmc(2026, 12, 28, 16, 0)
    swapped = WorkingCalendar(overrides=YEAR_END_SWAP)
    assert swapped.due_at(received, one_day) == hcmc(2026, 12, 26, 16, 0)


def test_an_override_day_off_does_not_count() -> None:
    received, one_day = hcmc(2026, 12, 30, 9, 0), ProcessingTime(value=1, unit=WORKING_DAYS)
    assert WorkingCalendar().due_at(received, one_day) == hcmc(2026, 12, 31, 9, 0)
    swapped = WorkingCalendar(overrides=YEAR_END_SWAP)
    # 6 h on 30/12; 31/12 (override), 1/1 (New Year), the weekend off; 2 h on Monday 4/1/2027
    assert swapped.due_at(received, one_day) == hcmc(2027, 1, 4, 9, 0)
    assert swapped.counting_start(hcmc(2026, 12, 31, 9, 0)) == hcmc(2027, 1, 4, 7, 0)


def test_the_shipped_overrides_file_loads() -> None:
    overrides = load_overrides(DEFAULT_OVERRIDES)
    assert isinstance(overrides, CalendarOverrides)
    assert not overrides.extra_days_off & overrides.extra_working_days


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar_overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_accept_toml_dates_and_iso_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'extra_days_off = [2026-12-31, "2027-04-29"]\nextra_working_days = ["2026-12-26"]\n',
    )
    assert load_overrides(path) == CalendarOverrides(
        extra_days_off=frozenset({date(2026, 12, 31), date(2027, 4, 29)}),
        extra_working_days=frozenset({date(2026, 12, 26)}),
    )
    assert load_overrides(write(tmp_path, "")) == CalendarOverrides()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "extra_days_off = [2026-12-31]\nextra_working_days = [2026-12-31]",
            "a day cannot be both off and working: 2026-12-31",
            id="in both lists",
        ),
        pytest.param(
            'extra_days_off = ["31/12/2026"]',
            "extra_days_off: '31/12/2026' is not an ISO date (YYYY-MM-DD)",
            id="not ISO",
        ),
        pytest.param(
            'extra_days_off = ["2026-02-30"]',
            "extra_days_off: '2026-02-30': day is out of range for month",
            id="no such day",
        ),
        pytest.param(
            "extra_working_days = [2026-12-26T07:00:00]",
            "extra_working_days: datetime.datetime(2026, 12, 26, 7, 0) is not an ISO date",
            id="a datetime",
        ),
        pytest.param(
            'extra_days_off = "2026-12-31"',
            "extra_days_off must be a list of ISO dates",
            id="not a list",
        ),
        pytest.param(
            "extra_days_off = [2026-12-31, 2026-12-31]",
            "extra_days_off: 2026-12-31 is listed twice",
            id="listed twice",
        ),
        pytest.param(
            "extra_holidays = [2026-12-31]",
            "unknown key(s) extra_holidays",
            id="unknown key",
        ),
        pytest.param("extra_days_off = [", "not valid TOML", id="not TOML"),
    ],
)
def test_broken_overrides_are_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        load_overrides(path)
    assert str(path) in str(refused.value)


# --- Per-agency office hours ---------------------------------------------------------------

EARLY_HOURS = OfficeHours(periods=((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0))))


def test_a_unit_counts_with_its_own_office_hours(catalog: Catalog) -> None:
    ward = catalog.unit("000.41.04.H29")  # UBND phường Thủ Đức: 07:30–11:30, 13:00–17:00
    assert ward is not None
    calendar = calendar_for(ward)
    assert calendar.office_hours == EARLY_HOURS
    assert calendar.counting_start(hcmc(2026, 11, 23, 7, 10)) == hcmc(2026, 11, 23, 7, 30)
    assert calendar.counting_start(hcmc(2026, 11, 23, 11, 45)) == hcmc(2026, 11, 23, 13, 0)
    half_day = ProcessingTime(value=0.5, unit=WORKING_DAYS)
    assert calendar.due_at(hcmc(2026, 11, 23, 10, 0), half_day) == hcmc(2026, 11, 23, 15, 30)


def test_calendars_are_shared_between_units_with_the_same_hours(catalog: Catalog) -> None:
    centre, ward, social_insurance = (
        catalog.unit(code) for code in ("000.00.00.H29", "000.41.04.H29", "000.31.01.H29")
    )
    assert centre is not None and ward is not None and social_insurance is not None
    assert calendar_for(ward) is calendar_for(social_insurance)
    assert calendar_for(centre) is not calendar_for(ward)
    assert calendar_for(centre).office_hours == OfficeHours()
    assert calendar_for(ward, YEAR_END_SWAP) is not calendar_for(ward)

    calendars = Calendars(YEAR_END_SWAP)
    assert calendars.for_unit(ward) is calendars.for_unit(social_insurance)
    assert calendars.for_unit(centre) is calendars.for_hours(OfficeHours())
    assert calendars.for_unit(ward).is_working_day(date(2026, 12, 26))


def test_office_hours_need_a_period() -> None:
    with pytest.raises(ValueError, match="at least one working period"):
        OfficeHours(periods=())


# --- Counting backwards, pauses, per-step due times ----------------------------------------


@pytest.mark.parametrize(
    ("end", "duration", "start"),
    [
        pytest.param(
            hcmc(2026, 2, 23, 9, 0), timedelta(hours=8), hcmc(2026, 2, 13, 9, 0), id="Tết"
        ),
        pytest.param(
            hcmc(2026, 11, 23, 13, 30), timedelta(hours=1), hcmc(2026, 11, 23, 10, 30), id="lunch"
        ),
        pytest.param(
            hcmc(2026, 11, 23, 12, 0), timedelta(), hcmc(2026, 11, 23, 11, 30), id="zero at lunch"
        ),
        pytest.param(
            hcmc(2026, 11, 25, 8, 0), timedelta(hours=2), hcmc(2026, 11, 23, 16, 0), id="24/11 off"
        ),
    ],
)
def test_subtracting_working_time(
    calendar: WorkingCalendar, end: datetime, duration: timedelta, start: datetime
) -> None:
    assert calendar.subtract_working_time(end, duration) == start


@pytest.mark.parametrize(
    ("due", "paused", "resumed", "new_due"),
    [
        pytest.param(
            hcmc(2026, 2, 25, 9, 0),
            hcmc(2026, 2, 12, 10, 0),
            hcmc(2026, 2, 24, 10, 0),
            hcmc(2026, 3, 2, 9, 0),  # paused 5 + 8 + (Tết) + 8 + 3 h = 3 working days
            id="a pause spanning Tết 2026",
        ),
        pytest.param(
            hcmc(2026, 12, 3, 10, 0),
            hcmc(2026, 11, 27, 17, 30),
            hcmc(2026, 11, 30, 6, 45),
            hcmc(2026, 12, 3, 10, 0),
            id="a pause entirely outside working time moves nothing",
        ),
        pytest.param(
            hcmc(2026, 12, 3, 10, 0),
            hcmc(2026, 11, 27, 16, 0),
            hcmc(2026, 11, 30, 12, 0),
            hcmc(2026, 12, 4, 7, 30),  # 1 h on Friday + 4.5 h on Monday morning
            id="a pause ending at lunch counts up to 11:30",
        ),
        pytest.param(
            hcmc(2026, 11, 20, 17, 0),
            hcmc(2026, 11, 23, 9, 0),
            hcmc(2026, 11, 23, 10, 0),
            hcmc(2026, 11, 23, 8, 0),  # already late when paused: still moved by 1 h
            id="a pause after the due time",
        ),
    ],
)
def test_a_pause_moves_the_due_time(
    calendar: WorkingCalendar, due: datetime, paused: datetime, resumed: datetime, new_due: datetime
) -> None:
    assert calendar.resume_due(due, paused, resumed) == new_due


def test_a_pause_cannot_end_before_it_starts(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="before being paused"):
        calendar.resume_due(hcmc(2026, 12, 3), hcmc(2026, 11, 30, 9, 0), hcmc(2026, 11, 30, 8, 0))


def test_step_due_times_of_an_inter_agency_process(calendar: WorkingCalendar) -> None:
    received, ten_days = hcmc(2026, 2, 12, 9, 0), ProcessingTime(value=10, unit=WORKING_DAYS)
    dues = calendar.step_due_times(received, calendar.working_duration(ten_days), (0.4, 0.4, 0.2))
    # Working days after Thu 12/2: 13/2, (Tết), 23, 24, 25, 26, 27/2, 2, 3, 4, 5/3
    assert dues == [hcmc(2026, 2, 25, 9, 0), hcmc(2026, 3, 3, 9, 0), hcmc(2026, 3, 5, 9, 0)]
    assert dues[-1] == calendar.due_at(received, ten_days)


@pytest.mark.parametrize(
    ("shares", "message"),
    [((), "at least one step"), ((0.5, 0.4), "add up to 0.9"), ((1.5, -0.5), "in (0, 1]")],
)
def test_step_shares_must_cover_the_whole_time(
    calendar: WorkingCalendar, shares: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        calendar.step_due_times(hcmc(2026, 11, 23, 9, 0), timedelta(hours=8), shares)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.subtract_working_time(datetime(2026, 11, 23, 9, 0), timedelta(hours=1)),
        lambda c: c.resume_due(hcmc(2026, 12, 3), datetime(2026, 11, 30), hcmc(2026, 12, 1)),
        lambda c: c.resume_due(datetime(2026, 12, 3), hcmc(2026, 11, 30), hcmc(2026, 12, 1)),
        lambda c: c.step_due_times(datetime(2026, 11, 23, 9, 0), timedelta(hours=8), [1.0]),
        lambda c: c.working_time_between(datetime(2026, 11, 24), datetime(2026, 11, 23)),
        lambda c: c.due_at(datetime(2026, 11, 23), ProcessingTime(value=1, unit=WORKING_DAYS)),
    ],
)
def test_every_rule_refuses_naive_datetimes(calendar: WorkingCalendar, call) -> None:
    with pytest.raises(ValueError, match="naive"):
        call(calendar)


def test_results_are_in_hcmc_time(calendar: WorkingCalendar) -> None:
    from datetime import UTC

    received = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 in HCMC
    due = calendar.due_at(received, ProcessingTime(value=1, unit=WORKING_DAYS))
    assert due.tzinfo == HCMC and due == hcmc(2026, 11, 25, 9, 0)


# --- Invariants on any calendar ------------------------------------------------------------

CALENDARS = (
    WorkingCalendar(),
    WorkingCalendar(EARLY_HOURS, YEAR_END_SWAP),
    WorkingCalendar(OfficeHours(periods=((time(8, 0), time(16, 0)),))),
)
calendars = st.sampled_from(CALENDARS)
positive = st.integers(min_value=1, max_value=40 * 8 * 60).map(lambda m: timedelta(minutes=m))
pauses = st.integers(min_value=0, max_value=90 * 24 * 60).map(lambda m: timedelta(minutes=m))
shares_ = st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=4).map(
    lambda weights: [weight / sum(weights) for weight in weights]
)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, duration=durations)
def test_due_times_fall_in_working_time_on_any_calendar(calendar, start, duration) -> None:
    due = calendar.add_working_time(start, duration)
    assert calendar.is_working_time(due)
    assert due >= start and due.tzinfo == HCMC


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, first=moments, second=moments, duration=durations)
def test_adding_is_monotonic_in_the_start(calendar, first, second, duration) -> None:
    early, late = sorted((first, second))
    assert calendar.add_working_time(early, duration) <= calendar.add_working_time(late, duration)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, end=moments, duration=durations)
def test_subtracting_lands_in_working_time_exactly_that_far_back(calendar, end, duration) -> None:
    start = calendar.subtract_working_time(end, duration)
    assert calendar.is_working_time(start)
    assert start <= end or duration == timedelta()
    assert calendar.working_time_between(start, end) == duration


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, elapsed=positive, duration=durations)
def test_subtract_inverts_add(calendar, start, elapsed, duration) -> None:
    end = calendar.add_working_time(start, elapsed)  # a moment adding can return
    assert calendar.add_working_time(calendar.subtract_working_time(end, duration), duration) == end
    begin = calendar.counting_start(start)
    back = calendar.subtract_working_time(calendar.add_working_time(begin, duration), duration)
    assert calendar.working_time_between(min(back, begin), max(back, begin)) == timedelta()


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, due=moments, paused=moments, pause=pauses)
def test_a_pause_shifts_the_due_time_by_the_working_time_paused(
    calendar, due, paused, pause
) -> None:
    resumed = paused + pause
    new_due = calendar.resume_due(due, paused, resumed)
    assert new_due >= due
    assert calendar.is_working_time(new_due)
    assert calendar.working_time_between(due, new_due) == calendar.working_time_between(
        paused, resumed
    )


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, total=durations, shares=shares_)
def test_step_due_times_rise_to_the_overall_due_time(calendar, start, total, shares) -> None:
    dues = calendar.step_due_times(start, total, shares)
    assert len(dues) == len(shares)
    assert dues == sorted(dues)
    assert dues[-1] == calendar.add_working_time(start, total)
    assert all(calendar.is_working_time(due) for due in dues)
