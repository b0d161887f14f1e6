"""The dossier's clock in legal working time. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.calendar import WorkingCalendar
from shared.events import DossierClockStarted, DossierRouted


def start_clock(
    routed: DossierRouted, calendar: WorkingCalendar, due_soon_lead: timedelta
) -> DossierClockStarted:
    """The clock runs from the counting start; it warns `due_soon_lead` of working time
    before the due time (by default one working day: when an apology must go out)."""
    started_at = calendar.counting_start(routed.received_at)
    return DossierClockStarted(
        dossier_code=routed.dossier_code,
        responsible_unit_code=routed.current_unit_code,
        started_at=started_at,
        due_at=routed.due_at,
        due_soon_at=due_soon_time(started_at, routed.due_at, calendar, due_soon_lead),
    )


def due_soon_time(
    started_at: datetime, due_at: datetime, calendar: WorkingCalendar, lead: timedelta
) -> datetime:
    allowed = calendar.working_time_between(started_at, due_at)
    return calendar.add_working_time(started_at, max(allowed - lead, timedelta()))


@dataclass(frozen=True)
class Resumption:
    paused: timedelta
    due_at: datetime
    due_soon_at: datetime
    step_due_at: tuple[datetime, ...]


def resume(
    *,
    paused_at: datetime,
    resumed_at: datetime,
    due_at: datetime,
    due_soon_at: datetime,
    step_due_at: tuple[datetime, ...],
    calendar: WorkingCalendar,
) -> Resumption:
    """Every due time moves later by exactly the working time the clock was paused."""

    def moved(due: datetime) -> datetime:
        return calendar.resume_due(due, paused_at, resumed_at)

    return Resumption(
        paused=calendar.working_time_between(paused_at, resumed_at),
        due_at=moved(due_at),
        due_soon_at=moved(due_soon_at),
        step_due_at=tuple(moved(due) for due in step_due_at),
    )
