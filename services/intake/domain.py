"""Receiving a dossier at the counter: pure rules, no I/O."""

from __future__ import annotations

from datetime import date, datetime

from services.intake.schemas import DossierSubmission, NamedCode, Receipt
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog, Procedure, Unit
from shared.events import Applicant, Document, DossierReceived

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
        applicant=Applicant.model_validate(receipt.applicant.model_dump()),
        documents=tuple(Document.model_validate(d.model_dump()) for d in receipt.documents),
        sets=receipt.sets,
        received_at=receipt.received_at,
        appointment_at=receipt.appointment_at,
        receiving_officer=receipt.receiving_officer,
    )
