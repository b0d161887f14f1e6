"""The deadline service's handlers: it owns every dossier's clock, overall and per step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.deadline.domain import (
    due_soon_time,
    resume,
    sent_back_dues,
    start_clock,
    step_due_times,
    unit_at_fault,
    unit_to_answer,
)
from services.deadline.repository import DeadlineUnitOfWorkPort, PlannedClock
from shared.calendar import UnitCalendars
from shared.catalog import Catalog, stage_numbers
from shared.events import (
    ApologyIssued,
    ConsultationReplied,
    ConsultationRequested,
    DossierClockPaused,
    DossierClockResumed,
    DossierCompleted,
    DossierReceived,
    DossierRefused,
    DossierRouted,
    DossierSentBack,
    DossierWithdrawn,
    FinancialObligationFulfilled,
    FinancialObligationRequested,
    HandOffRecorded,
    OverdueDetected,
    ProcessingStopped,
    ReturnDatePromised,
    StepClocksRestarted,
    StepClocksStarted,
    StepCompleted,
    StepDue,
    SupplementReceived,
    SupplementRequested,
    Timeliness,
)
from shared.lifecycle import timeliness
from shared.telemetry import current_traceparent

CONSULTATION = "consultation"  # the pause cause while units are consulted, if configured


class UnknownStep(Exception):
    """A hand-off names a step the plan does not have: a defect upstream, dead-lettered."""


@dataclass(frozen=True)
class Deadlines:
    catalog: Catalog
    calendars: UnitCalendars
    due_soon_lead: timedelta
    clock: Callable[[], datetime]
    # The dossier's clock runs while units are consulted (our default); True pauses it until
    # every consulted unit has replied.
    consultation_pauses_clock: bool = False
    send_back_allotment: float = 1.0

    async def on_dossier_received(
        self, event: DossierReceived, uow: DeadlineUnitOfWorkPort
    ) -> None:
        """The clock starts at receipt, in the competent unit's calendar (its office hours)."""
        procedure = self.catalog.procedure(event.procedure_code)
        competent = procedure.agency if procedure else event.receiving_unit_code
        started = start_clock(
            event, self.calendars.of(competent), self.due_soon_lead, competent_unit_code=competent
        )
        # Later detections (due soon, overdue) start their own traces linked to this one.
        await uow.clocks.add(started, competent, current_traceparent())
        uow.emit(started, occurred_at=self.clock())

    async def on_dossier_routed(self, event: DossierRouted, uow: DeadlineUnitOfWorkPort) -> None:
        clock = await uow.clocks.lock(event.dossier_code)
        steps = step_due_times(
            event.steps,
            started_at=clock.started_at,
            appointed_at=clock.appointed_at,
            due_at=clock.due_at,
            paused=timedelta(seconds=clock.paused_working_seconds),
            calendar=self.calendars.of(clock.competent_unit_code or event.competent_unit_code),
        )
        stages = stage_numbers([step.parallel_group for step in event.steps])
        plan = tuple(
            PlannedClock(sequence=s.sequence, unit_code=s.unit_code, share=s.share, stage=stage)
            for s, stage in zip(event.steps, stages, strict=True)
        )
        await uow.clocks.add_steps(
            event.dossier_code, steps, event.current_unit_code, at=event.routed_at, plan=plan
        )
        uow.emit(
            StepClocksStarted(
                dossier_code=event.dossier_code, steps=steps, started_at=clock.started_at
            ),
            occurred_at=self.clock(),
        )

    async def on_hand_off_recorded(
        self, event: HandOffRecorded, uow: DeadlineUnitOfWorkPort
    ) -> None:
        clock = await uow.clocks.lock(event.dossier_code)
        step = await uow.clocks.step(event.dossier_code, event.step_sequence)
        if step is None:
            raise UnknownStep(f"step {event.step_sequence} of {event.dossier_code}")
        unit_code, step_due = step
        tz = self.calendars.default.tz
        verdict = timeliness(event.handed_off_at, step_due, tz)
        fault = unit_at_fault(clock.fault_unit_code, unit_code, verdict)
        responsible = unit_to_answer(fault, event.current_unit_code)
        await uow.clocks.complete_step(
            event.dossier_code,
            event.step_sequence,
            event.handed_off_at,
            verdict.value,
            started=_started(event),
            responsible_unit_code=responsible,
            fault_unit_code=fault,
        )
        uow.emit(
            StepCompleted(
                dossier_code=event.dossier_code,
                step_sequence=event.step_sequence,
                unit_code=unit_code,
                completed_at=event.handed_off_at,
                due_at=step_due,
                timeliness=verdict,
            ),
            occurred_at=event.handed_off_at,
        )
        if event.final:
            answers = unit_to_answer(fault, unit_code)
            await self._complete(event, clock.due_at, clock.overdue_detected_at, answers, uow)

    async def on_dossier_sent_back(
        self, event: DossierSentBack, uow: DeadlineUnitOfWorkPort
    ) -> None:
        """The steps sent back to are open again, each with a fresh due time."""
        clock = await uow.clocks.lock(event.dossier_code)
        plan = {step.sequence: step for step in await uow.clocks.planned(event.dossier_code)}
        even = 1 / len(plan)  # planned before shares were kept: an even split
        reopened = [
            (s, plan[s].share or even, plan[s].stage) for s in event.reopened_steps if s in plan
        ]
        if not reopened:
            raise UnknownStep(f"steps {event.reopened_steps} of {event.dossier_code}")
        calendar = self.calendars.of(clock.competent_unit_code or event.to_unit_code)
        dues = sent_back_dues(
            reopened,
            sent_back_at=event.sent_back_at,
            allowed=calendar.working_time_between(clock.started_at, clock.appointed_at),
            allotment=self.send_back_allotment,
            calendar=calendar,
        )
        await uow.clocks.reopen(
            event.dossier_code,
            dues,
            started=event.to_step_sequence,
            holder=event.to_unit_code,
            at=event.sent_back_at,
        )
        uow.emit(
            StepClocksRestarted(
                dossier_code=event.dossier_code,
                steps=tuple(
                    StepDue(sequence=s, unit_code=plan[s].unit_code, due_at=due) for s, due in dues
                ),
                restarted_at=event.sent_back_at,
            ),
            occurred_at=event.sent_back_at,
        )

    async def _complete(
        self,
        event: HandOffRecorded,
        due_at: datetime,
        overdue_detected_at: datetime | None,
        responsible: str,
        uow: DeadlineUnitOfWorkPort,
    ) -> None:
        """The result went back to the desk: the dossier is done early, on time or late; a
        late one is the unit at fault's."""
        code, done_at = event.dossier_code, event.handed_off_at
        verdict = timeliness(done_at, due_at, self.calendars.default.tz)
        if verdict is Timeliness.LATE and overdue_detected_at is None:
            # Finished late before the scan saw it: the lateness (and its apology) still counts.
            await uow.clocks.mark_overdue(code, done_at)
            uow.emit(
                OverdueDetected(
                    dossier_code=code,
                    responsible_unit_code=responsible,
                    due_at=due_at,
                    detected_at=done_at,
                ),
                occurred_at=done_at,
            )
        await uow.clocks.finish(code, "completed", done_at, verdict.value)
        uow.emit(
            DossierCompleted(
                dossier_code=code,
                responsible_unit_code=responsible,
                completed_at=done_at,
                due_at=due_at,
                timeliness=verdict,
            ),
            occurred_at=done_at,
        )

    async def on_apology_issued(self, event: ApologyIssued, uow: DeadlineUnitOfWorkPort) -> None:
        """The apology's new return date becomes a deadline of its own, warned the same lead
        before; set once, and only for a dossier still on the clock."""
        clock = await uow.clocks.lock(event.dossier_code)
        if clock.status not in ("running", "paused"):
            return  # done, withdrawn, refused or stopped: nothing left to promise
        calendar = self.calendars.of(event.unit_code)
        due_soon_at = due_soon_time(
            calendar.counting_start(event.issued_at), event.new_due_at, calendar, self.due_soon_lead
        )
        if not await uow.clocks.promise(
            event.dossier_code,
            unit_code=event.unit_code,
            promised_at=event.new_due_at,
            due_soon_at=due_soon_at,
        ):
            return
        uow.emit(
            ReturnDatePromised(
                dossier_code=event.dossier_code,
                unit_code=event.unit_code,
                original_due_at=event.original_due_at,
                promised_at=event.new_due_at,
                due_soon_at=due_soon_at,
            ),
            occurred_at=self.clock(),
        )

    async def on_supplement_requested(
        self, event: SupplementRequested, uow: DeadlineUnitOfWorkPort
    ) -> None:
        await self._pause(
            event.dossier_code,
            event.requested_at,
            "supplement",
            uow,
            supplement_due_at=event.supplement_due_at,
        )

    async def on_financial_obligation_requested(
        self, event: FinancialObligationRequested, uow: DeadlineUnitOfWorkPort
    ) -> None:
        await self._pause(event.dossier_code, event.requested_at, "financial_obligation", uow)

    async def on_supplement_received(
        self, event: SupplementReceived, uow: DeadlineUnitOfWorkPort
    ) -> None:
        await self._resume(event.dossier_code, event.received_at, uow)

    async def on_financial_obligation_fulfilled(
        self, event: FinancialObligationFulfilled, uow: DeadlineUnitOfWorkPort
    ) -> None:
        await self._resume(event.dossier_code, event.fulfilled_at, uow)

    async def on_consultation_requested(
        self, event: ConsultationRequested, uow: DeadlineUnitOfWorkPort
    ) -> None:
        """Each consulted unit's reply due time is kept here, so the scheduler enforces it."""
        await uow.clocks.lock(event.dossier_code)
        await uow.clocks.add_consultations(event)
        if self.consultation_pauses_clock:
            await self._pause(event.dossier_code, event.requested_at, CONSULTATION, uow)

    async def on_consultation_replied(
        self, event: ConsultationReplied, uow: DeadlineUnitOfWorkPort
    ) -> None:
        clock = await uow.clocks.lock(event.dossier_code)
        awaited = await uow.clocks.consultation_replied(
            event.dossier_code, event.consultation_id, event.replied_at
        )
        if awaited == 0 and clock.pause_cause == CONSULTATION:
            await self._resume(event.dossier_code, event.replied_at, uow)

    async def on_closed(
        self,
        event: DossierWithdrawn | DossierRefused | ProcessingStopped,
        uow: DeadlineUnitOfWorkPort,
    ) -> None:
        """A withdrawn, refused or stopped dossier is no longer on the clock."""
        await uow.clocks.lock(event.dossier_code)
        await uow.clocks.finish(event.dossier_code, "closed", self.clock(), None)

    async def _pause(
        self,
        code: str,
        at: datetime,
        cause: str,
        uow: DeadlineUnitOfWorkPort,
        supplement_due_at: datetime | None = None,
    ) -> None:
        clock = await uow.clocks.lock(code)
        if clock.status != "running":
            return
        # The supplement's due time is kept here, with the clock, so the scheduler enforces it.
        await uow.clocks.pause(code, at, cause, supplement_due_at)
        uow.emit(
            DossierClockPaused(
                dossier_code=code, paused_at=at, cause=cause, supplement_due_at=supplement_due_at
            ),
            occurred_at=at,
        )

    async def _resume(self, code: str, at: datetime, uow: DeadlineUnitOfWorkPort) -> None:
        clock = await uow.clocks.lock(code)
        if clock.status != "paused" or clock.paused_at is None:
            return
        open_steps = await uow.clocks.open_steps(code)
        moved = resume(
            paused_at=clock.paused_at,
            resumed_at=at,
            due_at=clock.due_at,
            due_soon_at=clock.due_soon_at,
            step_due_at=tuple(step.due_at for step in open_steps),
            calendar=self.calendars.of(clock.competent_unit_code or ""),
        )
        moved_steps = tuple(
            StepDue(sequence=step.sequence, unit_code=step.unit_code, due_at=due)
            for step, due in zip(open_steps, moved.step_due_at, strict=True)
        )
        await uow.clocks.resume(
            code,
            due_at=moved.due_at,
            due_soon_at=moved.due_soon_at,
            paused=moved.paused,
            step_due_at=[(step.sequence, step.due_at) for step in moved_steps],
        )
        uow.emit(
            DossierClockResumed(
                dossier_code=code,
                resumed_at=at,
                paused_working_minutes=round(moved.paused.total_seconds() / 60),
                previous_due_at=clock.due_at,
                due_at=moved.due_at,
                due_soon_at=moved.due_soon_at,
                open_steps=moved_steps,
            ),
            occurred_at=at,
        )


def _started(event: HandOffRecorded) -> tuple[int, ...]:
    """The steps this hand-off starts. An event from before parallel steps names no holders
    (nor started steps): then the next step starts, unless it was the last."""
    if event.current_unit_codes or event.final:
        return event.started_steps
    return (event.step_sequence + 1,)
