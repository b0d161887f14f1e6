"""The deadline service's handlers: a routed dossier gets its clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.deadline.domain import start_clock
from services.deadline.repository import DeadlineUnitOfWork, InMemoryDeadlineUnitOfWork
from shared.calendar import WorkingCalendar
from shared.events import DossierRouted


@dataclass(frozen=True)
class Deadlines:
    calendar: WorkingCalendar
    due_soon_lead: timedelta
    clock: Callable[[], datetime]

    async def on_dossier_routed(
        self, event: DossierRouted, uow: DeadlineUnitOfWork | InMemoryDeadlineUnitOfWork
    ) -> None:
        started = start_clock(event, self.calendar, self.due_soon_lead)
        await uow.clocks.add(started)
        uow.emit(started, occurred_at=self.clock())
