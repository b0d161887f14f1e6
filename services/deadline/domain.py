"""The dossier's clock in legal working time, overall and per step. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.calendar import WorkingCalendar
from shared.catalog import stage_numbers
from shared.events import (
    ConsultationReplyOverdueDetected,
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
    """Each step is due when its share of the time allowed (receipt to appointment) has run
    out, counted from the end of the stages before it (a parallel group lasts as long as its
    longest step; its steps start together, each with its own due time), later by the working
    time the clock has been paused so far; a step ending the process is due when the dossier
    is."""
    allowed = calendar.working_time_between(started_at, appointed_at)
    begin = calendar.counting_start(started_at)
    fractions = stage_fractions(
        [step.share for step in steps], stage_numbers([s.parallel_group for s in steps])
    )
    dues = []
    for fraction in fractions:
        if fraction >= 1 - 1e-6:
            dues.append(due_at)
            continue
        planned = calendar.add_working_time(begin, allowed * fraction)
        dues.append(min(calendar.add_working_time(planned, paused), due_at))
    return tuple(
        StepDue(sequence=step.sequence, unit_code=step.unit_code, due_at=due)
        for step, due in zip(steps, dues, strict=True)
    )


def stage_fractions(shares: Sequence[float], stages: Sequence[int]) -> list[float]:
    """The fraction of the time at which each step is due: the longest shares of the stages
    before it, plus its own share (at most 1)."""
    longest: dict[int, float] = {}
    for share, stage in zip(shares, stages, strict=True):
        longest[stage] = max(longest.get(stage, 0.0), share)
    before: dict[int, float] = {}
    total = 0.0
    for stage in sorted(longest):
        before[stage] = total
        total += longest[stage]
    return [min(before[stage] + share, 1.0) for share, stage in zip(shares, stages, strict=True)]


def sent_back_dues(
    reopened: Sequence[tuple[int, float, int]],
    *,
    sent_back_at: datetime,
    allowed: timedelta,
    allotment: float,
    calendar: WorkingCalendar,
) -> list[tuple[int, datetime]]:
    """Fresh due times of the steps a send-back reopened, given as (sequence, share, stage):
    from the send-back on, each is due when `allotment` × its original share of the time
    allowed has run out after the reopened stages before it (a configurable default, 1: its
    original share). Not capped by the dossier's due time: the dossier stays due when the
    law says, and is late if the redone work takes it past that."""
    begin = calendar.counting_start(sent_back_at)
    fractions = stage_fractions([share for _, share, _ in reopened], [st for *_, st in reopened])
    # The fractions are capped at 1 for a whole plan; a reopened tail never exceeds 1 either.
    return [
        (sequence, calendar.add_working_time(begin, allowed * allotment * fraction))
        for (sequence, _, _), fraction in zip(reopened, fractions, strict=True)
    ]


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


def consultation_reply_overdue(
    *,
    dossier_code: str,
    consultation_id: int,
    unit_code: str,
    reply_due_at: datetime,
    now: datetime,
) -> ConsultationReplyOverdueDetected | None:
    """A consulted unit's reply is late once its due time has passed (strictly, as a dossier
    becomes overdue); a reply received by then is on time."""
    if now <= reply_due_at:
        return None
    return ConsultationReplyOverdueDetected(
        dossier_code=dossier_code,
        consultation_id=consultation_id,
        unit_code=unit_code,
        reply_due_at=reply_due_at,
        detected_at=now,
    )
