"""Intake's handlers: the counters' HTTP API, and the projection of what the other services
did with each dossier (so that GET /v1/dossiers/{code} shows it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.intake.commands import actor_of
from services.intake.domain import (
    IdempotencyKeyReused,
    applicant_recorded,
    body_digest,
    dossier_code,
    issue_receipt,
    lookup_pin,
    processed,
    received_event,
    resolve,
)
from services.intake.repository import (
    DailySequences,
    IdempotencyKey,
    IntakeUnitOfWorkPort,
    ReceivingUnitOfWork,
)
from services.intake.schemas import DossierSubmission, Receipt
from shared.auth import Principal
from shared.calendar import UnitCalendars
from shared.catalog import Catalog, stage_numbers
from shared.events import (
    AlertRaised,
    ApologyIssued,
    ApologyObligationRecorded,
    ConsultationReplyOverdueDetected,
    DossierClockPaused,
    DossierClockResumed,
    DossierClockStarted,
    DossierCompleted,
    DossierRouted,
    DossierSentBack,
    DossierStatus,
    DueSoonDetected,
    Event,
    HandOffRecorded,
    HandOffRejected,
    OverdueDetected,
    SendBackRejected,
    StepClocksRestarted,
    StepClocksStarted,
    StepCompleted,
    StepOverdueDetected,
    SupplementDeadlineMissed,
)
from shared.messaging.consumer import Handler
from shared.telemetry import (
    annotate_current_span,
    current_trace_id,
    current_traceparent,
)

UnitOfWorkFactory = Callable[[], ReceivingUnitOfWork]


@dataclass(frozen=True)
class Intake:
    catalog: Catalog
    calendars: UnitCalendars
    unit_of_work: UnitOfWorkFactory
    clock: Callable[[], datetime]
    lookup_pin_key: bytes
    sequences: DailySequences


async def receive_dossier(
    intake: Intake, submission: DossierSubmission, counter: Principal, idempotency_key: str | None
) -> tuple[Receipt, bool]:
    """Store the dossier and its DossierReceived event in one transaction.

    Returns the receipt and whether it is new: a repeated Idempotency-Key (the same caller's,
    with the same body) gets the receipt issued the first time, so a counter can retry a post
    without creating a second dossier."""
    procedure, unit = resolve(submission, intake.catalog, counter)
    idempotency = (
        IdempotencyKey(counter.subject, idempotency_key, body_digest(submission))
        if idempotency_key
        else None
    )
    for _ in range(2):  # a concurrent post with the same key wins the race at most once
        received_at = intake.clock()
        receipt_date = received_at.astimezone(intake.calendars.default.tz).date()
        # Before the dossier's transaction, not in it (DailySequences says why and the cost).
        sequence = await intake.sequences.next(unit.code, receipt_date)
        async with intake.unit_of_work() as uow:
            if idempotency:
                existing = await uow.dossiers.find_idempotent(idempotency.subject, idempotency.key)
                if existing is not None:
                    code, digest = existing
                    if digest != idempotency.body_sha256:
                        raise IdempotencyKeyReused(
                            f"Idempotency-Key {idempotency.key!r} was first sent with another"
                            f" body (dossier {code}); send a new key for a new dossier"
                        )
                    stored = await uow.dossiers.receipt(code)
                    assert stored is not None
                    annotate_current_span(stored)
                    return _with_pin(intake, stored), False
            code = dossier_code(unit.code, receipt_date, sequence)
            receipt = issue_receipt(
                submission,
                code=code,
                procedure=procedure,
                unit=unit,
                received_at=received_at,
                calendar=intake.calendars.of(procedure.agency),  # the competent unit's hours
                receiving_officer=counter.name,
                lookup_pin=lookup_pin(intake.lookup_pin_key, code),
                trace_id=current_trace_id(),
            )
            try:
                await uow.dossiers.add(receipt, idempotency, current_traceparent())
            except asyncpg.UniqueViolationError:
                continue
            event = received_event(receipt).model_copy(update={"actor": actor_of(counter)})
            annotate_current_span(event)
            uow.emit(event, occurred_at=received_at)
            # Same transaction: the applicant goes to the restricted topic, never the public one.
            applicant = applicant_recorded(receipt.dossier_code, submission.applicant)
            uow.emit(applicant.model_copy(update={"actor": event.actor}), occurred_at=received_at)
            await uow.commit()
            return receipt, True
    raise RuntimeError("idempotency key raced twice")  # pragma: no cover


def _with_pin(intake: Intake, receipt: Receipt) -> Receipt:
    pin = lookup_pin(intake.lookup_pin_key, receipt.dossier_code)
    return receipt.model_copy(update={"lookup_pin": pin})


# --- The projection of the other services' events: each updates the columns it owns --------


async def on_dossier_routed(event: DossierRouted, uow: IntakeUnitOfWorkPort) -> None:
    code = event.dossier_code
    await uow.ledger.plan_steps(code, event.steps)
    first_stage = [
        s.unit_code
        for s, stage in zip(
            event.steps, stage_numbers([s.parallel_group for s in event.steps]), strict=True
        )
        if stage == 1
    ]
    await uow.ledger.update(
        code,
        competent_unit_code=event.competent_unit_code,
        current_unit_code=event.current_unit_code,
        holding_unit_codes=list(dict.fromkeys(first_stage)),
        current_step=1,
        routed_at=event.routed_at,
    )
    await uow.ledger.update_status(code, DossierStatus.PROCESSING, only_from=DossierStatus.ACCEPTED)
    await uow.ledger.append(event, event.routed_at, event.current_unit_code)


async def on_hand_off_recorded(event: HandOffRecorded, uow: IntakeUnitOfWorkPort) -> None:
    code = event.dossier_code
    await uow.ledger.hand_step_off(
        code,
        event.step_sequence,
        official=event.official,
        started_at=event.step_started_at,
        at=event.handed_off_at,
    )
    if event.current_unit_codes and not event.started_steps:  # a parallel step finished
        await uow.ledger.update(
            code,
            current_unit_code=event.current_unit_code,
            holding_unit_codes=list(event.holders),
            last_rejection=None,
        )
    else:
        await uow.ledger.update(
            code,
            current_unit_code=event.current_unit_code,
            holding_unit_codes=list(event.holders),
            current_step=event.started_steps[0] if event.started_steps else event.step_sequence + 1,
            holder_since=event.handed_off_at,
            last_rejection=None,
        )
    await uow.ledger.append(event, event.handed_off_at, event.from_unit_code)
    if event.final:
        state = await uow.ledger.lock(code)
        decision = processed(state, event) if state is not None else None
        if decision is not None:
            await uow.ledger.update(code, status=decision.status)
            await uow.ledger.append(decision.event, event.handed_off_at, event.from_unit_code)
            uow.emit(decision.event, occurred_at=event.handed_off_at)


async def on_hand_off_rejected(event: HandOffRejected, uow: IntakeUnitOfWorkPort) -> None:
    rejection = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.ledger.update(event.dossier_code, last_rejection=rejection)
    await uow.ledger.append(event, event.rejected_at, event.from_unit_code)


async def on_sent_back(event: DossierSentBack, uow: IntakeUnitOfWorkPort) -> None:
    """A row of the control slip: who sent it back to which step, and why; the steps from
    there on are to be done again."""
    code = event.dossier_code
    await uow.ledger.reopen_steps(code, event.reopened_steps)
    await uow.ledger.update(
        code,
        current_unit_code=event.to_unit_code,
        holding_unit_codes=[event.to_unit_code],
        current_step=event.to_step_sequence,
        holder_since=event.sent_back_at,
        last_send_back=event.model_dump(mode="json", exclude={"dossier_code"}),
    )
    await uow.ledger.append(event, event.sent_back_at, event.from_unit_code)


async def on_send_back_rejected(event: SendBackRejected, uow: IntakeUnitOfWorkPort) -> None:
    details = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.ledger.update(event.dossier_code, last_send_back={"rejected": True, **details})
    await uow.ledger.append(event, event.rejected_at, event.from_unit_code)


async def on_clock_started(event: DossierClockStarted, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(
        event.dossier_code,
        clock_started_at=event.started_at,
        due_at=event.due_at,
        due_soon_at=event.due_soon_at,
    )
    await uow.ledger.append(event, event.started_at, event.responsible_unit_code)


async def on_step_clocks_started(event: StepClocksStarted, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.set_step_dues(
        event.dossier_code, [(s.sequence, s.due_at) for s in event.steps]
    )


async def on_step_clocks_restarted(event: StepClocksRestarted, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.set_step_dues(
        event.dossier_code, [(s.sequence, s.due_at) for s in event.steps]
    )


async def on_clock_paused(event: DossierClockPaused, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(
        event.dossier_code,
        paused_since=event.paused_at,
        supplement_due_at=event.supplement_due_at,
    )
    await uow.ledger.append(event, event.paused_at, None)


async def on_clock_resumed(event: DossierClockResumed, uow: IntakeUnitOfWorkPort) -> None:
    code = event.dossier_code
    await uow.ledger.update(
        code,
        paused_since=None,
        supplement_due_at=None,
        due_at=event.due_at,
        due_soon_at=event.due_soon_at,
    )
    await uow.ledger.set_step_dues(code, [(s.sequence, s.due_at) for s in event.open_steps])
    await uow.ledger.append(event, event.resumed_at, None)


async def on_step_completed(event: StepCompleted, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.judge_step(
        event.dossier_code, event.step_sequence, due_at=event.due_at, verdict=event.timeliness.value
    )


async def on_due_soon(event: DueSoonDetected, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.append(event, event.detected_at, event.responsible_unit_code)


async def on_overdue(event: OverdueDetected, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(event.dossier_code, overdue_at=event.detected_at)
    await uow.ledger.append(event, event.detected_at, event.responsible_unit_code)


async def on_step_overdue(event: StepOverdueDetected, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.append(event, event.detected_at, event.unit_code)


async def on_supplement_missed(event: SupplementDeadlineMissed, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(event.dossier_code, supplement_missed_at=event.detected_at)
    await uow.ledger.append(event, event.detected_at, event.unit_code)


async def on_consultation_overdue(
    event: ConsultationReplyOverdueDetected, uow: IntakeUnitOfWorkPort
) -> None:
    await uow.ledger.consultation_overdue(
        event.dossier_code, event.consultation_id, event.detected_at
    )
    await uow.ledger.append(event, event.detected_at, event.unit_code)


async def on_completed(event: DossierCompleted, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(
        event.dossier_code, completed_at=event.completed_at, timeliness=event.timeliness.value
    )
    await uow.ledger.append(event, event.completed_at, event.responsible_unit_code)


async def on_apology_obligation_recorded(
    event: ApologyObligationRecorded, uow: IntakeUnitOfWorkPort
) -> None:
    await uow.ledger.update(
        event.dossier_code,
        apology_signer=event.signer_title,
        apology_due_by=event.apology_due_by,
    )


async def on_apology_issued(event: ApologyIssued, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.update(event.dossier_code, apology_issued_at=event.issued_at)
    await uow.ledger.append(event, event.issued_at, event.unit_code)


async def on_alert_raised(event: AlertRaised, uow: IntakeUnitOfWorkPort) -> None:
    await uow.ledger.append(event, event.raised_at, event.unit_code)


PROJECTIONS: dict[type[Event], Handler] = {
    DossierRouted: on_dossier_routed,
    HandOffRecorded: on_hand_off_recorded,
    HandOffRejected: on_hand_off_rejected,
    DossierSentBack: on_sent_back,
    SendBackRejected: on_send_back_rejected,
    StepClocksRestarted: on_step_clocks_restarted,
    DossierClockStarted: on_clock_started,
    StepClocksStarted: on_step_clocks_started,
    DossierClockPaused: on_clock_paused,
    DossierClockResumed: on_clock_resumed,
    StepCompleted: on_step_completed,
    DueSoonDetected: on_due_soon,
    OverdueDetected: on_overdue,
    StepOverdueDetected: on_step_overdue,
    SupplementDeadlineMissed: on_supplement_missed,
    ConsultationReplyOverdueDetected: on_consultation_overdue,
    DossierCompleted: on_completed,
    ApologyObligationRecorded: on_apology_obligation_recorded,
    ApologyIssued: on_apology_issued,
    AlertRaised: on_alert_raised,
}
