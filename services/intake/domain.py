"""Intake's rules: receiving a dossier at the counter, and the lifecycle commands it
accepts. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.intake.schemas import (
    ApplicantIn,
    DossierSubmission,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    NamedCode,
    ReasonBody,
    Receipt,
    ResultReadyBody,
    SupplementRequestBody,
    UnitReasonBody,
)
from shared import lifecycle
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog, Procedure, Unit
from shared.events import (
    Applicant,
    ApplicantDetailsRecorded,
    Document,
    DossierProcessed,
    DossierReceived,
    DossierRefused,
    DossierStatus,
    DossierWithdrawn,
    Event,
    ExtensionRequested,
    FinancialObligationFulfilled,
    FinancialObligationRequested,
    HandOffRecorded,
    HandOffRequested,
    ProcessingStopped,
    ResultReturned,
    SupplementReceived,
    SupplementRequested,
)
from shared.lifecycle import Action

MAX_DAILY_SEQUENCE = 9999


class SubmissionRejected(Exception):
    """The submission is well-formed but names something the catalog does not know."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class DailySequenceExhausted(Exception):
    pass


def dossier_code(unit_code: str, receipt_date: date, sequence: int) -> str:
    """Mã hồ sơ: {receiving unit code}-{YYMMDD}-{4-digit sequence per unit per day}."""
    if not 1 <= sequence <= MAX_DAILY_SEQUENCE:
        raise DailySequenceExhausted(
            f"unit {unit_code} has used all {MAX_DAILY_SEQUENCE} dossier codes for {receipt_date}"
        )
    return f"{unit_code}-{receipt_date:%y%m%d}-{sequence:04d}"


def resolve(submission: DossierSubmission, catalog: Catalog) -> tuple[Procedure, Unit]:
    procedure = catalog.procedure(submission.procedure_code)
    if procedure is None:
        raise SubmissionRejected(
            "procedure_code", f"unknown procedure code {submission.procedure_code!r}"
        )
    unit = catalog.unit(submission.receiving_unit_code)
    if unit is None:
        raise SubmissionRejected(
            "receiving_unit_code", f"unknown receiving unit {submission.receiving_unit_code!r}"
        )
    return procedure, unit


def issue_receipt(
    submission: DossierSubmission,
    *,
    code: str,
    procedure: Procedure,
    unit: Unit,
    received_at: datetime,
    calendar: WorkingCalendar,
    trace_id: str | None = None,
) -> Receipt:
    appointment = calendar.due_at(received_at, procedure.processing_time, procedure.same_day_cutoff)
    return Receipt(
        dossier_code=code,
        receiving_unit=NamedCode(code=unit.code, name=unit.name),
        procedure=NamedCode(code=procedure.code, name=procedure.name),
        field=procedure.field,
        channel=submission.channel,
        applicant=submission.applicant,
        documents=submission.documents,
        sets=submission.sets,
        received_at=received_at.astimezone(calendar.tz),
        appointment_at=appointment,
        processing_time=procedure.processing_time,
        result_collection_place=unit.name,
        receiving_officer=submission.receiving_officer,
        trace_id=trace_id,
    )


def received_event(receipt: Receipt) -> DossierReceived:
    return DossierReceived(
        dossier_code=receipt.dossier_code,
        procedure_code=receipt.procedure.code,
        procedure_name=receipt.procedure.name,
        receiving_unit_code=receipt.receiving_unit.code,
        channel=receipt.channel,
        documents=tuple(Document.model_validate(d.model_dump()) for d in receipt.documents),
        sets=receipt.sets,
        received_at=receipt.received_at,
        appointment_at=receipt.appointment_at,
        receiving_officer=receipt.receiving_officer,
    )


def applicant_recorded(code: str, applicant: ApplicantIn) -> ApplicantDetailsRecorded:
    """The applicant, for the restricted topic only (DossierReceived carries none)."""
    return ApplicantDetailsRecorded(
        dossier_code=code, applicant=Applicant.model_validate(applicant.model_dump())
    )


# --- lifecycle commands: what intake decides itself -----------------------------------------
# Intake owns the portal status and the supplement requests; the plan and who holds the
# dossier are routing's (a hand-off is a request routing records or rejects), due times and
# pauses the deadline service's.


class Conflict(Exception):
    """The command contradicts the dossier's state (a 409 for the caller)."""


@dataclass(frozen=True)
class DossierState:
    code: str
    status: DossierStatus
    receiving_unit_code: str
    current_unit_code: str | None  # from routing's events
    supplement_requests: int
    submission_traceparent: str | None


@dataclass(frozen=True)
class Decision:
    status: DossierStatus
    event: Event
    changes: dict[str, object] = field(default_factory=dict)


def request_hand_off(state: DossierState, body: HandOffBody, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.HAND_OFF),
        HandOffRequested(
            dossier_code=state.code,
            from_unit_code=body.from_unit_code,
            to_unit_code=body.to_unit_code,
            official=body.official,
            requested_at=now,
        ),
    )


def report_result(state: DossierState, body: ResultReadyBody, now: datetime) -> Decision:
    """The last unit hands the result to the desk; the status moves to processed (9) when
    routing has recorded it."""
    return Decision(
        lifecycle.apply(state.status, Action.HAND_OFF),
        HandOffRequested(
            dossier_code=state.code,
            from_unit_code=body.unit_code,
            to_unit_code=None,
            official=body.official,
            requested_at=now,
        ),
    )


def request_supplement(
    state: DossierState, body: SupplementRequestBody, now: datetime, supplement_due_at: datetime
) -> Decision:
    status = lifecycle.apply(state.status, Action.REQUEST_SUPPLEMENT)
    if state.supplement_requests >= 1 and not body.override_reason:
        raise Conflict(
            "a supplement was already requested once; guidance must be given once,"
            " completely (give override_reason to record why a second one is needed)"
        )
    return Decision(
        status,
        SupplementRequested(
            dossier_code=state.code,
            unit_code=body.unit_code,
            official=body.official,
            reason=body.reason,
            missing_documents=tuple(body.missing_documents),
            requested_at=now,
            supplement_due_at=supplement_due_at,
            request_number=state.supplement_requests + 1,
            override_reason=body.override_reason,
        ),
        {"supplement_requests": state.supplement_requests + 1},
    )


def receive_supplement(state: DossierState, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.RECEIVE_SUPPLEMENT),
        SupplementReceived(dossier_code=state.code, received_at=now),
    )


def request_financial_obligation(
    state: DossierState, body: FinancialObligationBody, now: datetime
) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.REQUEST_FINANCIAL_OBLIGATION),
        FinancialObligationRequested(
            dossier_code=state.code,
            unit_code=body.unit_code,
            amount_vnd=body.amount_vnd,
            requested_at=now,
        ),
    )


def fulfil_financial_obligation(state: DossierState, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.FULFIL_FINANCIAL_OBLIGATION),
        FinancialObligationFulfilled(dossier_code=state.code, fulfilled_at=now),
    )


def request_extension(state: DossierState, body: ExtensionRequestBody, now: datetime) -> Decision:
    """Only the unit that holds the dossier (as routing last said) can declare it late."""
    status = lifecycle.apply(state.status, Action.REQUEST_EXTENSION)
    if state.current_unit_code != body.unit_code:
        raise Conflict(f"the dossier is held by {state.current_unit_code}, not {body.unit_code}")
    return Decision(
        status,
        ExtensionRequested(
            dossier_code=state.code,
            unit_code=body.unit_code,
            official=body.official,
            reason=body.reason,
            requested_at=now,
        ),
    )


def return_result(state: DossierState, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.RETURN_RESULT),
        ResultReturned(dossier_code=state.code, returned_at=now),
        {"closed_at": now},
    )


def withdraw(state: DossierState, body: ReasonBody, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.WITHDRAW),
        DossierWithdrawn(dossier_code=state.code, reason=body.reason, withdrawn_at=now),
        {"closed_at": now},
    )


def refuse(state: DossierState, body: UnitReasonBody, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.REFUSE),
        DossierRefused(
            dossier_code=state.code, unit_code=body.unit_code, reason=body.reason, refused_at=now
        ),
        {"closed_at": now},
    )


def stop_processing(state: DossierState, body: UnitReasonBody, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.STOP_PROCESSING),
        ProcessingStopped(
            dossier_code=state.code, unit_code=body.unit_code, reason=body.reason, stopped_at=now
        ),
        {"closed_at": now},
    )


def processed(state: DossierState, hand_off: HandOffRecorded) -> Decision | None:
    """Routing recorded the result's return to the desk: the dossier is processed (9). None
    if the dossier left processing meanwhile (withdrawn, say): its status stays."""
    try:
        status = lifecycle.apply(state.status, Action.MARK_RESULT_READY)
    except lifecycle.IllegalTransition:
        return None
    return Decision(
        status,
        DossierProcessed(
            dossier_code=state.code,
            unit_code=hand_off.from_unit_code,
            official=hand_off.official,
            processed_at=hand_off.handed_off_at,
        ),
    )
