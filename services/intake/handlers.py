"""Intake's handlers: the counters' HTTP API, and the projection of what the other services
did with each dossier (so that GET /v1/dossiers/{code} shows it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.intake.domain import (
    dossier_code,
    issue_receipt,
    received_event,
    resolve,
)
from services.intake.repository import InMemoryIntakeUnitOfWork, IntakeUnitOfWork
from services.intake.schemas import DossierSubmission, Receipt
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    AlertRaised,
    ApologyIssued,
    ApologyObligationRecorded,
    DossierClockPaused,
    DossierClockResumed,
    DossierClockStarted,
    DossierCompleted,
    DossierRouted,
    DossierStatus,
    DueSoonDetected,
    Event,
    HandOffRecorded,
    OverdueDetected,
    StepOverdueDetected,
)
from shared.messaging.consumer import Handler
from shared.telemetry import (
    annotate_current_span,
    current_trace_id,
    current_traceparent,
)

UnitOfWorkFactory = Callable[[], IntakeUnitOfWork | InMemoryIntakeUnitOfWork]


@dataclass(frozen=True)
class Intake:
    catalog: Catalog
    calendars: UnitCalendars
    unit_of_work: UnitOfWorkFactory
    clock: Callable[[], datetime]


async def receive_dossier(
    intake: Intake, submission: DossierSubmission, idempotency_key: str | None
) -> tuple[Receipt, bool]:
    """Store the dossier and its DossierReceived event in one transaction.

    Returns the receipt and whether it is new: a repeated Idempotency-Key gets the receipt
    issued the first time, so a counter can retry a post without creating a second dossier."""
    procedure, unit = resolve(submission, intake.catalog)
    for _ in range(2):  # a concurrent post with the same key wins the race at most once
        async with intake.unit_of_work() as uow:
            if idempotency_key:
                existing = await uow.dossiers.code_for_idempotency_key(idempotency_key)
                if existing is not None:
                    stored = await uow.dossiers.get(existing)
                    assert stored is not None
                    annotate_current_span(stored.receipt)
                    return stored.receipt, False
            received_at = intake.clock()
            receipt_date = received_at.astimezone(intake.calendars.default.tz).date()
            sequence = await uow.dossiers.next_sequence(unit.code, receipt_date)
            receipt = issue_receipt(
                submission,
                code=dossier_code(unit.code, receipt_date, sequence),
                procedure=procedure,
                unit=unit,
                received_at=received_at,
                calendar=intake.calendars.of(procedure.agency),  # the competent unit's hours
                trace_id=current_trace_id(),
            )
            try:
                await uow.dossiers.add(receipt, idempotency_key, current_traceparent())
            except asyncpg.UniqueViolationError:
                continue
            event = received_event(receipt)
            annotate_current_span(event)
            uow.emit(event, occurred_at=received_at)
            await uow.commit()
            return receipt, True
    raise RuntimeError("idempotency key raced twice")  # pragma: no cover


async def on_dossier_routed(event: DossierRouted, uow: IntakeUnitOfWork) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(
        event.dossier_code, "routing", outcome, DossierStatus.PROCESSING
    )
    await uow.ledger.update(
        event.dossier_code,
        competent_unit_code=event.competent_unit_code,
        current_unit_code=event.current_unit_code,
        current_step=1,
        step_units=[step.unit_code for step in event.steps],
    )
    await uow.ledger.append(event, event.routed_at, event.current_unit_code)


async def on_clock_started(event: DossierClockStarted, uow: IntakeUnitOfWork) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(event.dossier_code, "deadline", outcome, None)
    await uow.ledger.update(event.dossier_code, due_at=event.due_at)
    await uow.ledger.append(event, event.started_at, event.responsible_unit_code)


async def on_apology_obligation_recorded(
    event: ApologyObligationRecorded, uow: IntakeUnitOfWork
) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(event.dossier_code, "notifier", outcome, None)


async def on_hand_off_recorded(event: HandOffRecorded, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.record_step(
        event.dossier_code,
        sequence=event.step_sequence,
        unit_code=event.from_unit_code,
        official=event.official,
        started_at=event.step_started_at,
        finished_at=event.handed_off_at,
        due_at=event.step_due_at,
        timeliness=event.timeliness.value,
    )
    await uow.ledger.append(event, event.handed_off_at, event.from_unit_code)


async def on_clock_paused(event: DossierClockPaused, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.append(event, event.paused_at, None)


async def on_clock_resumed(event: DossierClockResumed, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.update(event.dossier_code, paused_since=None, due_at=event.due_at)
    await uow.ledger.append(event, event.resumed_at, None)


async def on_due_soon(event: DueSoonDetected, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.append(event, event.detected_at, event.responsible_unit_code)


async def on_overdue(event: OverdueDetected, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.update(event.dossier_code, overdue_at=event.detected_at)
    await uow.ledger.append(event, event.detected_at, event.responsible_unit_code)


async def on_step_overdue(event: StepOverdueDetected, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.append(event, event.detected_at, event.unit_code)


async def on_completed(event: DossierCompleted, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.update(
        event.dossier_code, completed_at=event.completed_at, timeliness=event.timeliness.value
    )
    await uow.ledger.append(event, event.completed_at, event.responsible_unit_code)


async def on_apology_issued(event: ApologyIssued, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.update(event.dossier_code, apology_issued_at=event.issued_at)
    await uow.ledger.append(event, event.issued_at, event.unit_code)


async def on_alert_raised(event: AlertRaised, uow: IntakeUnitOfWork) -> None:
    await uow.ledger.append(event, event.raised_at, event.unit_code)


PROJECTIONS: dict[type[Event], Handler] = {
    DossierRouted: on_dossier_routed,
    HandOffRecorded: on_hand_off_recorded,
    DossierClockStarted: on_clock_started,
    DossierClockPaused: on_clock_paused,
    DossierClockResumed: on_clock_resumed,
    DueSoonDetected: on_due_soon,
    OverdueDetected: on_overdue,
    StepOverdueDetected: on_step_overdue,
    DossierCompleted: on_completed,
    ApologyObligationRecorded: on_apology_obligation_recorded,
    ApologyIssued: on_apology_issued,
    AlertRaised: on_alert_raised,
}
