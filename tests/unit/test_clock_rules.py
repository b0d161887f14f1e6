"""The deadline service's clock rules and the notifier's apology rules, as pure functions."""

from __future__ import annotations

from datetime import timedelta

from services.deadline.domain import due_soon_time, resume
from services.notifier.domain import letter_number, new_appointment
from shared.calendar import WorkingCalendar
from tests.unit.conftest import hcmc

DAY = timedelta(hours=8)


def test_due_soon_is_one_working_day_before_the_due_time(calendar: WorkingCalendar) -> None:
    started, due = hcmc(2026, 11, 23, 9, 0), hcmc(2026, 12, 7, 9, 0)
    warn = due_soon_time(started, due, calendar, DAY)
    assert calendar.working_time_between(warn, due) == DAY
    assert warn == hcmc(2026, 12, 4, 9, 0)  # Friday: the weekend is not working time


def test_a_pause_over_tet_moves_every_due_time_by_the_working_time_paused(
    calendar: WorkingCalendar,
) -> None:
    paused_at, resumed_at = hcmc(2026, 2, 12, 14, 0), hcmc(2026, 2, 24, 10, 0)
    moved = resume(
        paused_at=paused_at,
        resumed_at=resumed_at,
        due_at=hcmc(2026, 2, 27, 10, 0),
        due_soon_at=hcmc(2026, 2, 26, 10, 0),
        step_due_at=(hcmc(2026, 2, 25, 10, 0), hcmc(2026, 2, 27, 10, 0)),
        calendar=calendar,
    )
    # Thu 12/2 14:00–17:00 (3 h), Fri 13/2 (8 h), Tết 16–20/2 off, Mon 23/2 (8 h), Tue 07–10 (3 h)
    assert moved.paused == timedelta(hours=22)
    assert calendar.working_time_between(hcmc(2026, 2, 27, 10, 0), moved.due_at) == moved.paused
    for before, after in zip(
        (hcmc(2026, 2, 25, 10, 0), hcmc(2026, 2, 27, 10, 0)), moved.step_due_at, strict=True
    ):
        assert calendar.working_time_between(before, after) == moved.paused


def test_the_new_appointment_counts_the_extension_from_the_later_of_due_and_now(
    calendar: WorkingCalendar,
) -> None:
    due = hcmc(2026, 12, 4, 9, 0)
    assert new_appointment(calendar, due, hcmc(2026, 12, 3, 9, 0), 5 * DAY) == hcmc(
        2026, 12, 11, 9, 0
    )
    late_now = hcmc(2026, 12, 7, 18, 0)  # after hours: counting starts the next morning
    # One working day from Tuesday 07:00 ends at Tuesday's closing time.
    assert new_appointment(calendar, due, late_now, DAY) == hcmc(2026, 12, 8, 17, 0)


def test_letter_numbers_name_the_unit_and_year() -> None:
    assert letter_number(12, "000.00.05.H29", 2026) == "12/2026/XL-000.00.05.H29"
