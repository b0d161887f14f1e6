"""The dossier's clock in legal working time. Pure, no I/O."""

from __future__ import annotations

from datetime import timedelta

from shared.calendar import WorkingCalendar
from shared.events import DossierClockStarted, DossierRouted


def start_clock(
    routed: DossierRouted, calendar: WorkingCalendar, due_soon_lead: timedelta
) -> DossierClockStarted:
    """The clock runs from the counting start; it warns `due_soon_lead` of working time
    before the due time (by default one working day: when an apology must go out)."""
    started_at = calendar.counting_start(routed.received_at)
    allowed = calendar.working_time_between(started_at, routed.due_at)
    due_soon_at = calendar.add_working_time(started_at, max(allowed - due_soon_lead, timedelta()))
    return DossierClockStarted(
        dossier_code=routed.dossier_code,
        responsible_unit_code=routed.current_unit_code,
        started_at=started_at,
        due_at=routed.due_at,
        due_soon_at=due_soon_at,
    )
