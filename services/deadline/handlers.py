"""The deadline service's handlers: it owns every dossier's clock, overall and per step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.deadline.domain import resume, start_clock
from services.deadline.repository import DeadlineUnitOfWork
from shared.calendar import UnitCalendars
from shared.events import (
    DossierClockPaused,
    DossierClockResumed,
    DossierCompleted,
    DossierProcessed,
    DossierRefused,
    DossierRouted,
    DossierWithdrawn,
    FinancialObligationFulfilled,
    FinancialObligationRequested,
    HandOffRecorded,
    OverdueDetected,
    ProcessingStopped,
    SupplementReceived,
    SupplementRequested,
    Timeliness,
)
from shared.lifecycle import timeliness
from shared.telemetry import current_traceparent


@dataclass(frozen=True)
class Deadlines:
    calendars: UnitCalendars
    due_soon_lead: timedelta
    clock: Callable[[], datetime]

    async def on_dossier_routed(self, event: DossierRouted, uow: DeadlineUnitOfWork) -> None:
        calendar = self.calendars.of(event.competent_unit_code)  # its office hours
        started = start_clock(event, calendar, self.due_soon_lead)
        # Later detections (due soon, overdue) start their own traces linked to this one.
        await uow.clocks.add(started, event.steps, event.competent_unit_code, current_traceparent())
        uow.emit(started, occurred_at=self.clock())

    async def on_supplement_requested(
        self, event: SupplementRequested, uow: DeadlineUnitOfWork
    ) -> None:
        await self._pause(event.dossier_code, event.requested_at, "supplement", uow)

    async def on_financial_obligation_requested(
        self, event: FinancialObligationRequested, uow: DeadlineUnitOfWork
    ) -> None:
        await self._pause(event.dossier_code, event.requested_at, "financial_obligation", uow)

    async def on_supplement_received(
        self, event: SupplementReceived, uow: DeadlineUnitOfWork
    ) -> None:
        await self._resume(event.dossier_code, event.received_at, uow)

    async def on_financial_obligation_fulfilled(
        self, event: FinancialObligationFulfilled, uow: DeadlineUnitOfWork
    ) -> None:
        await self._resume(event.dossier_code, event.fulfilled_at, uow)

    async def on_hand_off_recorded(self, event: HandOffRecorded, uow: DeadlineUnitOfWork) -> None:
        await uow.clocks.lock(event.dossier_code)
        await uow.clocks.complete_step(
            event.dossier_code, event.step_sequence, event.handed_off_at, event.current_unit_code
        )

    async def on_dossier_processed(self, event: DossierProcessed, uow: DeadlineUnitOfWork) -> None:
        clock = await uow.clocks.lock(event.dossier_code)
        verdict = timeliness(event.processed_at, clock.due_at, self.calendars.default.tz)
        if verdict is Timeliness.LATE and clock.overdue_detected_at is None:
            # Finished late before the scan saw it: the lateness (and its apology) still counts.
            await uow.clocks.mark_overdue(event.dossier_code, event.processed_at)
            uow.emit(
                OverdueDetected(
                    dossier_code=event.dossier_code,
                    responsible_unit_code=clock.responsible_unit_code,
                    due_at=clock.due_at,
                    detected_at=event.processed_at,
                ),
                occurred_at=event.processed_at,
            )
        await uow.clocks.finish(event.dossier_code, "completed", event.processed_at, verdict.value)
        uow.emit(
            DossierCompleted(
                dossier_code=event.dossier_code,
                responsible_unit_code=event.unit_code,
                completed_at=event.processed_at,
                due_at=clock.due_at,
                timeliness=verdict,
            ),
            occurred_at=event.processed_at,
        )

    async def on_closed(
        self, event: DossierWithdrawn | DossierRefused | ProcessingStopped, uow: DeadlineUnitOfWork
    ) -> None:
        """A withdrawn, refused or stopped dossier is no longer on the clock."""
        await uow.clocks.lock(event.dossier_code)
        await uow.clocks.finish(event.dossier_code, "closed", self.clock(), None)

    async def _pause(self, code: str, at: datetime, cause: str, uow: DeadlineUnitOfWork) -> None:
        clock = await uow.clocks.lock(code)
        if clock.status != "running":
            return
        await uow.clocks.pause(code, at, cause)
        uow.emit(DossierClockPaused(dossier_code=code, paused_at=at, cause=cause), occurred_at=at)

    async def _resume(self, code: str, at: datetime, uow: DeadlineUnitOfWork) -> None:
        clock = await uow.clocks.lock(code)
        if clock.status != "paused" or clock.paused_at is None:
            return
        open_steps = await uow.clocks.open_step_due_times(code)
        moved = resume(
            paused_at=clock.paused_at,
            resumed_at=at,
            due_at=clock.due_at,
            due_soon_at=clock.due_soon_at,
            step_due_at=tuple(due for _, due in open_steps),
            calendar=self.calendars.of(clock.competent_unit_code or ""),
        )
        await uow.clocks.resume(
            code,
            due_at=moved.due_at,
            due_soon_at=moved.due_soon_at,
            step_due_at=[
                (seq, due) for (seq, _), due in zip(open_steps, moved.step_due_at, strict=True)
            ],
        )
        uow.emit(
            DossierClockResumed(
                dossier_code=code,
                resumed_at=at,
                paused_working_minutes=round(moved.paused.total_seconds() / 60),
                previous_due_at=clock.due_at,
                due_at=moved.due_at,
                due_soon_at=moved.due_soon_at,
            ),
            occurred_at=at,
        )
