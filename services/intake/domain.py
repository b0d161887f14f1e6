"""Intake's rules: receiving a dossier at the counter, and the lifecycle commands it
accepts. Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from services.intake.schemas import (
    ApplicantIn,
    DossierSubmission,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    NamedCode,
    ReasonBody,
    Receipt,
    SendBackBody,
    SupplementRequestBody,
)
from shared import lifecycle
from shared.auth import STAFF, Forbidden, Principal, Role
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
    SendBackRequested,
    SupplementReceived,
    SupplementRequested,
)
from shared.lifecycle import Action

MAX_DAILY_SEQUENCE = 9999
# The citizen reads the PIN off the receipt and types it: no 0/O or 1/I to confuse.
PIN_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PIN_LENGTH = 10  # 50 bits: not to be guessed, even with the dossier code known


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


def lookup_pin(key: bytes, code: str) -> str:
    """The receipt's lookup PIN: derived from the dossier code with the service's secret key,
    so it is never stored, a retried post prints the same one, and without the key no code
    yields it."""
    digest = hmac.new(key, code.encode(), hashlib.sha256).digest()
    return "".join(PIN_ALPHABET[byte % len(PIN_ALPHABET)] for byte in digest[:PIN_LENGTH])


def pin_matches(key: bytes, code: str, pin: str) -> bool:
    return hmac.compare_digest(lookup_pin(key, code), pin.strip().upper())


def body_digest(submission: DossierSubmission) -> str:
    """What an idempotency key is bound to: the submission as validated."""
    return hashlib.sha256(submission.model_dump_json().encode()).hexdigest()


class IdempotencyKeyReused(Exception):
    """The caller's key was first used with another body (a 422 for the caller)."""


def resolve(
    submission: DossierSubmission, catalog: Catalog, counter: Principal
) -> tuple[Procedure, Unit]:
    """The procedure, and the receiving unit: the counter officer's own, from their token."""
    procedure = catalog.procedure(submission.procedure_code)
    if procedure is None:
        raise SubmissionRejected(
            "procedure_code", f"unknown procedure code {submission.procedure_code!r}"
        )
    unit = catalog.unit(counter.unit_code) if counter.unit_code else None
    if unit is None:
        raise Forbidden(
            f"your token names no unit of the catalog (unit_code {counter.unit_code!r});"
            " a counter officer receives dossiers for their own unit"
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
    receiving_officer: str,
    lookup_pin: str,
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
        receiving_officer=receiving_officer,
        lookup_pin=lookup_pin,
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
    holding_unit_codes: tuple[str, ...] = ()  # several while parallel steps are open

    @property
    def holders(self) -> tuple[str, ...]:
        if self.holding_unit_codes:
            return self.holding_unit_codes
        return (self.current_unit_code,) if self.current_unit_code else ()


@dataclass(frozen=True)
class Decision:
    status: DossierStatus
    event: Event
    changes: dict[str, object] = field(default_factory=dict)


class Duty(StrEnum):
    """Who may give a command: the desk that received the dossier, or the unit holding it."""

    DESK = "desk"
    HOLDER = "holder"


def authorize(state: DossierState, actor: Principal, duty: Duty) -> None:
    """The unit is the token's, never the body's: a desk acts on its own dossiers, a unit on
    those it holds now (as routing last said). Raises Forbidden naming the unit needed."""
    if duty is Duty.DESK:
        if not actor.has(Role.COUNTER_OFFICER):
            raise Forbidden(f"this needs the role {Role.COUNTER_OFFICER} of the receiving desk")
        if actor.unit_code != state.receiving_unit_code:
            raise Forbidden(
                f"the dossier was received by unit {state.receiving_unit_code};"
                f" your unit is {actor.unit_code}"
            )
        return
    if not actor.has(Role.UNIT_OFFICER, Role.UNIT_HEAD):
        raise Forbidden(f"this needs the role {Role.UNIT_OFFICER} of the unit holding the dossier")
    if not state.holders:
        raise Conflict("no unit holds the dossier yet: routing has not assigned it")
    if actor.unit_code not in state.holders:
        raise Forbidden(
            f"the dossier is held by unit {' and '.join(state.holders)};"
            f" your unit is {actor.unit_code}"
        )


def may_read(actor: Principal, involved_units: set[str]) -> bool:
    """Operators read every dossier; officials those their unit received or takes part in."""
    if actor.has(Role.OPERATOR):
        return True
    return actor.has(*STAFF) and actor.unit_code in involved_units


def _unit(actor: Principal) -> str:
    assert actor.unit_code is not None  # authorize() let only officials of a unit through
    return actor.unit_code


def request_hand_off(
    state: DossierState, body: HandOffBody, actor: Principal, now: datetime
) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.HAND_OFF),
        HandOffRequested(
            dossier_code=state.code,
            from_unit_code=_unit(actor),
            to_unit_code=body.to_unit_code,
            official=actor.name,
            requested_at=now,
        ),
    )


def request_send_back(
    state: DossierState, body: SendBackBody, actor: Principal, now: datetime
) -> Decision:
    """Routing, which owns the plan, judges whether the step is an earlier one."""
    return Decision(
        lifecycle.apply(state.status, Action.HAND_OFF),
        SendBackRequested(
            dossier_code=state.code,
            from_unit_code=_unit(actor),
            to_step_sequence=body.to_step_sequence,
            official=actor.name,
            reason=body.reason,
            requested_at=now,
        ),
    )


def report_result(state: DossierState, actor: Principal, now: datetime) -> Decision:
    """The last unit hands the result to the desk; the status moves to processed (9) when
    routing has recorded it."""
    return Decision(
        lifecycle.apply(state.status, Action.HAND_OFF),
        HandOffRequested(
            dossier_code=state.code,
            from_unit_code=_unit(actor),
            to_unit_code=None,
            official=actor.name,
            requested_at=now,
        ),
    )


def request_supplement(
    state: DossierState,
    body: SupplementRequestBody,
    actor: Principal,
    now: datetime,
    supplement_due_at: datetime,
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
            unit_code=_unit(actor),
            official=actor.name,
            reason=body.reason,
            missing_documents=tuple(body.missing_documents),
            requested_at=now,
            supplement_due_at=supplement_due_at,
            request_number=state.supplement_requests + 1,
            override_reason=body.override_reason,
        ),
        {"supplement_requests": state.supplement_requests + 1},
    )


def receive_supplement(state: DossierState, actor: Principal, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.RECEIVE_SUPPLEMENT),
        SupplementReceived(dossier_code=state.code, received_at=now),
    )


def request_financial_obligation(
    state: DossierState, body: FinancialObligationBody, actor: Principal, now: datetime
) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.REQUEST_FINANCIAL_OBLIGATION),
        FinancialObligationRequested(
            dossier_code=state.code,
            unit_code=_unit(actor),
            amount_vnd=body.amount_vnd,
            requested_at=now,
        ),
    )


def fulfil_financial_obligation(state: DossierState, actor: Principal, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.FULFIL_FINANCIAL_OBLIGATION),
        FinancialObligationFulfilled(dossier_code=state.code, fulfilled_at=now),
    )


def request_extension(
    state: DossierState, body: ExtensionRequestBody, actor: Principal, now: datetime
) -> Decision:
    """Only the unit that holds the dossier can declare it late (authorize() checked it)."""
    return Decision(
        lifecycle.apply(state.status, Action.REQUEST_EXTENSION),
        ExtensionRequested(
            dossier_code=state.code,
            unit_code=_unit(actor),
            official=actor.name,
            reason=body.reason,
            requested_at=now,
        ),
    )


def return_result(state: DossierState, actor: Principal, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.RETURN_RESULT),
        ResultReturned(dossier_code=state.code, returned_at=now),
        {"closed_at": now},
    )


def withdraw(state: DossierState, body: ReasonBody, actor: Principal, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.WITHDRAW),
        DossierWithdrawn(dossier_code=state.code, reason=body.reason, withdrawn_at=now),
        {"closed_at": now},
    )


def refuse(state: DossierState, body: ReasonBody, actor: Principal, now: datetime) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.REFUSE),
        DossierRefused(
            dossier_code=state.code, unit_code=_unit(actor), reason=body.reason, refused_at=now
        ),
        {"closed_at": now},
    )


def stop_processing(
    state: DossierState, body: ReasonBody, actor: Principal, now: datetime
) -> Decision:
    return Decision(
        lifecycle.apply(state.status, Action.STOP_PROCESSING),
        ProcessingStopped(
            dossier_code=state.code, unit_code=_unit(actor), reason=body.reason, stopped_at=now
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
