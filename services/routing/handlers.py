"""Routing's handlers: a received dossier goes to its competent unit; each hand-off moves it
to the next unit of its process and adds a row to its processing control slip (Mẫu 06)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.routing.domain import route
from services.routing.repository import (
    InMemoryRoutingUnitOfWork,
    RouteNotFound,
    RouteState,
    RoutingUnitOfWork,
)
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    DossierClockResumed,
    DossierHandedOff,
    DossierProcessed,
    DossierReceived,
    HandOffRecorded,
)
from shared.lifecycle import timeliness

UnitOfWork = RoutingUnitOfWork | InMemoryRoutingUnitOfWork


class NotRoutedYet(RouteNotFound):
    """Retried: the dossier's routing is on its way (events of one dossier arrive in order on
    one topic, but a resumed clock comes from the deadline service's topic)."""

    retriable = True


@dataclass(frozen=True)
class Routing:
    catalog: Catalog
    calendars: UnitCalendars
    clock: Callable[[], datetime]

    async def on_dossier_received(self, event: DossierReceived, uow: UnitOfWork) -> None:
        routed = route(event, self.catalog, self.calendars, routed_at=self.clock())
        await uow.routes.add(routed, event.receiving_unit_code)
        uow.emit(routed, occurred_at=routed.routed_at)

    async def on_dossier_handed_off(self, event: DossierHandedOff, uow: UnitOfWork) -> None:
        state = await uow.routes.lock(event.dossier_code)
        await self._complete_step(
            state, uow, official=event.official, at=event.handed_off_at, to=event.to_unit_code
        )

    async def on_dossier_processed(self, event: DossierProcessed, uow: UnitOfWork) -> None:
        state = await uow.routes.lock(event.dossier_code)
        await self._complete_step(
            state,
            uow,
            official=event.official,
            at=event.processed_at,
            to=state.receiving_unit_code,
        )

    async def on_clock_resumed(self, event: DossierClockResumed, uow: UnitOfWork) -> None:
        """Steps not finished yet are due later by exactly the working time paused."""
        try:
            state = await uow.routes.lock(event.dossier_code)
        except RouteNotFound as missing:
            raise NotRoutedYet(event.dossier_code) from missing
        paused = timedelta(minutes=event.paused_working_minutes)
        calendar = self.calendars.of(state.competent_unit_code)
        shifted = [calendar.add_working_time(due, paused) for due in state.step_due_at]
        await uow.routes.shift_open_steps(event.dossier_code, shifted)

    async def _complete_step(
        self, state: RouteState, uow: UnitOfWork, *, official: str, at: datetime, to: str
    ) -> None:
        index = state.current_step - 1
        step_due = state.step_due_at[index]
        verdict = timeliness(at, step_due, self.calendars.default.tz)
        await uow.routes.complete_step(state, official=official, at=at, timeliness=verdict.value)
        final = state.current_step >= len(state.step_units)
        uow.emit(
            HandOffRecorded(
                dossier_code=state.dossier_code,
                step_sequence=state.current_step,
                from_unit_code=state.step_units[index],
                to_unit_code=to,
                official=official,
                step_started_at=state.step_started_at,
                handed_off_at=at,
                step_due_at=step_due,
                timeliness=verdict,
                current_unit_code=to,
                final=final,
            ),
            occurred_at=at,
        )
