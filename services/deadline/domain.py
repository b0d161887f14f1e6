"""The dossier's clock in legal working time, overall and per step. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.calendar import WorkingCalendar
from shared.events import (
    DossierClockStarted,
    DossierReceived,
    PlannedStep,
    StepDue,
    SupplementDeadlineMissed,
    Timeliness,
)


def start_clock(
    received: DossierReceived,
    calendar: WorkingCalendar,
    due_soon_lead: timedelta,
    competent_unit_code: str,
) -> DossierClockStarted:
    """The clock runs from the counting start to the appointment on the receipt; it warns
    `due_soon_lead` of working time before (by default one working day: when an apology must
    go out)."""
    started_at = calendar.counting_start(received.received_at)
    return DossierClockStarted(
        dossier_code=received.dossier_code,
        responsible_unit_code=competent_unit_code,
        started_at=started_at,
        due_at=received.appointment_at,
        due_soon_at=due_soon_time(started_at, received.appointment_at, calendar, due_soon_lead),
    )


def due_soon_time(
    started_at: datetime, due_at: datetime, calendar: WorkingCalendar, lead: timedelta
) -> datetime:
    allowed = calendar.working_time_between(started_at, due_at)
    return calendar.add_working_time(started_at, max(allowed - lead, timedelta()))


def step_due_times(
    steps: Sequence[PlannedStep],
    *,
    started_at: datetime,
    appointed_at: datetime,
    due_at: datetime,
    paused: timedelta,
    calendar: WorkingCalendar,
) -> tuple[StepDue, ...]:
    """Each step is due when its cumulative share of the time allowed (receipt to appointment)
    has run out, later by the working time the clock has been paused so far; the last step is
    due when the dossier is."""
    allowed = calendar.working_time_between(started_at, appointed_at)
    planned = calendar.step_due_times(started_at, allowed, [step.share for step in steps])
    dues = [min(calendar.add_working_time(due, paused), due_at) for due in planned]
    dues[-1] = due_at
    return tuple(
        StepDue(sequence=step.sequence, unit_code=step.unit_code, due_at=due)
        for step, due in zip(steps, dues, strict=True)
    )


def unit_to_answer(fault_unit_code: str | None, holder: str) -> str:
    """The unit that answers for the dossier's lateness: the first whose step overran (late
    on the control slip, or held past its step's due time), else the one holding it now, whose
    time is running out. It apologises and its head signs (Nghị định 61/2018/NĐ-CP, art. 19(3),
    as amended by 107/2021/NĐ-CP: the agency at fault)."""
    return fault_unit_code or holder


def unit_at_fault(
    fault_unit_code: str | None, step_unit_code: str, verdict: Timeliness
) -> str | None:
    """Once a step overran, its unit stays at fault: a later unit does not take the blame."""
    if fault_unit_code is not None:
        return fault_unit_code
    return step_unit_code if verdict is Timeliness.LATE else None


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


class SupplementMissedPolicy(StrEnum):
    """What follows a supplement deadline that passed with nothing received (a configurable
    default, `alert`): the holding unit's head and the operators are alerted; `propose_refusal`
    also proposes that the unit refuse the dossier (Mẫu 03), which only the unit can do."""

    ALERT = "alert"
    PROPOSE_REFUSAL = "propose_refusal"


def supplement_missed(
    *,
    dossier_code: str,
    unit_code: str,
    supplement_due_at: datetime,
    now: datetime,
    policy: SupplementMissedPolicy,
) -> SupplementDeadlineMissed | None:
    """Missed once the due time has passed (strictly, as a dossier becomes overdue)."""
    if now <= supplement_due_at:
        return None
    return SupplementDeadlineMissed(
        dossier_code=dossier_code,
        unit_code=unit_code,
        supplement_due_at=supplement_due_at,
        detected_at=now,
        refusal_proposed=policy is SupplementMissedPolicy.PROPOSE_REFUSAL,
    )
