"""The deadline service's clock repository port, kept in dictionaries. The scheduler's claims
are not here: they rest on PostgreSQL's row locks and are tested against the real server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.deadline.repository import Clock, ClockNotStarted, ClockRepository, PlannedClock
from shared.events import ConsultationRequested, DossierClockStarted, StepDue
from tests.fakes.unit_of_work import InMemoryUnitOfWork


@dataclass
class StoredClock:
    """A row of `clocks`."""

    dossier_code: str
    responsible_unit_code: str
    started_at: datetime
    appointed_at: datetime
    due_at: datetime
    due_soon_at: datetime
    competent_unit_code: str | None
    submission_traceparent: str | None
    status: str = "running"
    paused_at: datetime | None = None
    pause_cause: str | None = None
    supplement_due_at: datetime | None = None
    paused_working_seconds: int = 0
    overdue_detected_at: datetime | None = None
    current_step: int = 1
    completed_at: datetime | None = None
    timeliness: str | None = None
    fault_unit_code: str | None = None
    promised_at: datetime | None = None
    promise_unit_code: str | None = None
    promise_due_soon_at: datetime | None = None


@dataclass
class StoredStep:
    """A row of `step_clocks`."""

    unit_code: str
    due_at: datetime
    completed_at: datetime | None = None
    timeliness: str | None = None
    share: float | None = None
    stage: int = 0
    started_at: datetime | None = None


class InMemoryClockRepository(ClockRepository):
    def __init__(self) -> None:
        self.clocks: dict[str, StoredClock] = {}
        self.steps: dict[str, dict[int, StoredStep]] = {}
        # (dossier, consultation id) -> [unit, reply due time, replied at]
        self.consultations: dict[tuple[str, int], list[object]] = {}

    async def add(
        self, clock: DossierClockStarted, competent_unit_code: str, traceparent: str | None
    ) -> None:
        if clock.dossier_code in self.clocks:
            raise ValueError(f"clock of {clock.dossier_code} already started")  # primary key
        self.clocks[clock.dossier_code] = StoredClock(
            dossier_code=clock.dossier_code,
            responsible_unit_code=clock.responsible_unit_code,
            started_at=clock.started_at,
            appointed_at=clock.due_at,
            due_at=clock.due_at,
            due_soon_at=clock.due_soon_at,
            competent_unit_code=competent_unit_code,
            submission_traceparent=traceparent,
        )

    async def add_steps(
        self,
        dossier_code: str,
        steps: tuple[StepDue, ...],
        holder: str,
        at: datetime,
        plan: tuple[PlannedClock, ...],
    ) -> None:
        self.steps[dossier_code] = {
            s.sequence: StoredStep(
                unit_code=s.unit_code,
                due_at=s.due_at,
                share=p.share,
                stage=p.stage,
                started_at=at if p.stage == 1 else None,
            )
            for s, p in zip(steps, plan, strict=True)
        }
        clock = self.clocks[dossier_code]
        clock.current_step, clock.responsible_unit_code = 1, holder

    async def lock(self, dossier_code: str) -> Clock:
        stored = self.clocks.get(dossier_code)
        if stored is None:
            raise ClockNotStarted(f"no clock for dossier {dossier_code}")
        return Clock(
            dossier_code=stored.dossier_code,
            status=stored.status,
            responsible_unit_code=stored.responsible_unit_code,
            started_at=stored.started_at,
            appointed_at=stored.appointed_at,
            due_at=stored.due_at,
            due_soon_at=stored.due_soon_at,
            paused_at=stored.paused_at,
            paused_working_seconds=stored.paused_working_seconds,
            overdue_detected_at=stored.overdue_detected_at,
            current_step=stored.current_step,
            competent_unit_code=stored.competent_unit_code,
            submission_traceparent=stored.submission_traceparent,
            pause_cause=stored.pause_cause,
            fault_unit_code=stored.fault_unit_code,
        )

    async def open_steps(self, dossier_code: str) -> list[StepDue]:
        return [
            StepDue(sequence=sequence, unit_code=step.unit_code, due_at=step.due_at)
            for sequence, step in sorted(self.steps.get(dossier_code, {}).items())
            if step.completed_at is None
        ]

    async def pause(
        self,
        dossier_code: str,
        at: datetime,
        cause: str,
        supplement_due_at: datetime | None = None,
    ) -> None:
        clock = self.clocks[dossier_code]
        clock.status, clock.paused_at, clock.pause_cause = "paused", at, cause
        clock.supplement_due_at = supplement_due_at

    async def resume(
        self,
        dossier_code: str,
        *,
        due_at: datetime,
        due_soon_at: datetime,
        paused: timedelta,
        step_due_at: list[tuple[int, datetime]],
    ) -> None:
        clock = self.clocks[dossier_code]
        clock.status, clock.paused_at, clock.pause_cause = "running", None, None
        clock.due_at, clock.due_soon_at = due_at, due_soon_at
        clock.paused_working_seconds += int(paused.total_seconds())
        for sequence, due in step_due_at:
            self.steps[dossier_code][sequence].due_at = due

    async def step(self, dossier_code: str, sequence: int) -> tuple[str, datetime] | None:
        step = self.steps.get(dossier_code, {}).get(sequence)
        return (step.unit_code, step.due_at) if step else None

    async def complete_step(
        self,
        dossier_code: str,
        sequence: int,
        at: datetime,
        timeliness: str,
        started: tuple[int, ...] = (),
        *,
        responsible_unit_code: str,
        fault_unit_code: str | None,
    ) -> None:
        step = self.steps[dossier_code][sequence]
        step.completed_at, step.timeliness = at, timeliness
        for other in started:
            self.steps[dossier_code][other].started_at = at
        clock = self.clocks[dossier_code]
        clock.responsible_unit_code = responsible_unit_code
        clock.fault_unit_code = fault_unit_code
        if started:
            clock.current_step = started[0]

    async def planned(self, dossier_code: str) -> list[PlannedClock]:
        return [
            PlannedClock(sequence=n, unit_code=s.unit_code, share=s.share, stage=s.stage)
            for n, s in sorted(self.steps.get(dossier_code, {}).items())
        ]

    async def reopen(
        self,
        dossier_code: str,
        dues: list[tuple[int, datetime]],
        started: int,
        holder: str,
        at: datetime,
    ) -> None:
        for sequence, due in dues:
            step = self.steps[dossier_code][sequence]
            step.due_at, step.completed_at, step.timeliness = due, None, None
            step.started_at = at if sequence == started else None
        clock = self.clocks[dossier_code]
        clock.current_step, clock.responsible_unit_code = started, holder

    async def promise(
        self, dossier_code: str, *, unit_code: str, promised_at: datetime, due_soon_at: datetime
    ) -> bool:
        clock = self.clocks[dossier_code]
        if clock.promised_at is not None:
            return False
        clock.promised_at, clock.promise_unit_code = promised_at, unit_code
        clock.promise_due_soon_at = due_soon_at
        return True

    async def mark_overdue(self, dossier_code: str, at: datetime) -> None:
        self.clocks[dossier_code].overdue_detected_at = at

    async def finish(
        self, dossier_code: str, status: str, at: datetime, timeliness: str | None
    ) -> None:
        clock = self.clocks[dossier_code]
        clock.status, clock.completed_at, clock.timeliness = status, at, timeliness

    async def add_consultations(self, event: ConsultationRequested) -> None:
        for c in event.consulted:
            key = (event.dossier_code, c.consultation_id)
            self.consultations.setdefault(key, [c.unit_code, c.reply_due_at, None])

    async def consultation_replied(
        self, dossier_code: str, consultation_id: int, at: datetime
    ) -> int:
        self.consultations[(dossier_code, consultation_id)][2] = at
        return sum(
            1
            for (code, _), row in self.consultations.items()
            if code == dossier_code and row[2] is None
        )


class InMemoryDeadlineUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, clocks: InMemoryClockRepository | None = None) -> None:
        super().__init__()
        self.clocks = clocks or InMemoryClockRepository()
