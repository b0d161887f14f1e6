"""The HTTP contract with the counters: what they post and the receipt they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.api import STRICT_TEXT
from shared.api import Problem as Problem  # the error model of the API's documents
from shared.catalog import ProcessingTime
from shared.events import Channel, DocumentForm, DossierStatus


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Text fields: refused when blank or holding control characters, trimmed once their length
# is checked.
Name = Annotated[str, Field(min_length=1, max_length=200), STRICT_TEXT]
Text = Annotated[str, Field(min_length=1, max_length=2000), STRICT_TEXT]
Code = Annotated[str, Field(min_length=1, max_length=32), STRICT_TEXT]
DocumentKind = Annotated[str, Field(min_length=1, max_length=300), STRICT_TEXT]


class ApplicantIn(_Strict):
    full_name: Name
    id_number: str = Field(
        pattern=r"^([0-9]{9}|[0-9]{10}|[0-9]{12}|[0-9]{13})$",
        description="citizen ID (12 digits), old ID card (9) or tax number (10 or 13)",
    )
    phone: str = Field(pattern=r"^(\+84|0)[0-9]{9,10}$")
    email: EmailStr | None = None
    address: Annotated[str, Field(min_length=1, max_length=500), STRICT_TEXT]


class DocumentIn(_Strict):
    kind: DocumentKind = Field(description="e.g. Tờ khai, Bản sao CCCD")
    form: DocumentForm
    count: int = Field(ge=1, le=100)


class DossierSubmission(_Strict):
    """The receiving unit and officer are the signed-in counter officer's, from the token."""

    procedure_code: str = Field(min_length=1, max_length=32, examples=["1.004227"])
    channel: Channel
    applicant: ApplicantIn
    documents: list[DocumentIn] = Field(min_length=1, max_length=100)
    sets: int = Field(default=1, ge=1, le=20, description="number of sets (bộ hồ sơ)")


# What "Try it out" on /docs posts: a land-use right transfer registration received at the
# city's centre, with the documents its catalogue entry lists. The applicant is fictitious.
EXAMPLE_SUBMISSION: dict[str, Any] = {
    "procedure_code": "1.004227",
    "channel": "counter",
    "applicant": {
        "full_name": "Lê Văn Tám",
        "id_number": "079090001234",
        "phone": "0912345678",
        "email": "levantam@example.vn",
        "address": "12 Nguyễn Huệ, phường Sài Gòn, Thành phố Hồ Chí Minh",
    },
    "documents": [
        {"kind": "Đơn đăng ký biến động đất đai (Mẫu 11/ĐK)", "form": "original", "count": 1},
        {"kind": "Hợp đồng chuyển nhượng đã công chứng", "form": "original", "count": 1},
        {"kind": "Giấy chứng nhận quyền sử dụng đất", "form": "original", "count": 1},
    ],
    "sets": 1,
}


class NamedCode(BaseModel):
    code: str
    name: str


class StatusOut(BaseModel):
    code: int
    name: str

    @classmethod
    def of(cls, status: DossierStatus) -> StatusOut:
        return cls(code=int(status), name=status.name.lower())


class Receipt(BaseModel):
    """Giấy tiếp nhận hồ sơ và hẹn trả kết quả (Mẫu 01, Thông tư 03/2025/TT-VPCP)."""

    dossier_code: str
    receiving_unit: NamedCode
    procedure: NamedCode
    field: str
    channel: Channel
    applicant: ApplicantIn | None = Field(
        description="null once erased, a retention period after the dossier's end"
    )
    documents: list[DocumentIn]
    sets: int
    received_at: datetime
    appointment_at: datetime = Field(description="ngày hẹn trả kết quả")
    processing_time: ProcessingTime
    result_collection_place: str
    receiving_officer: str
    lookup_pin: str | None = Field(
        default=None,
        description="printed on the receipt for the citizen: with the dossier code it opens"
        " GET /v1/dossiers/{code} (header X-Lookup-PIN); given only to the counter that"
        " received the dossier",
    )
    trace_id: str | None = Field(
        default=None, description="the submission's trace: search it in the trace UI"
    )


class PlannedStepOut(BaseModel):
    sequence: int
    unit_code: str | None
    unit_name: str | None
    task: str | None
    due_at: datetime | None = Field(description="from the deadline service")
    started_at: datetime | None
    finished_at: datetime | None
    official: str | None
    timeliness: str | None = Field(description="early, on_time or late, once finished")


class RoutingOut(BaseModel):
    """Routing's facts: the competent unit, the plan, who holds the dossier now."""

    competent_unit_code: str
    current_unit_code: str | None
    current_step: int | None
    holder_since: datetime | None
    routed_at: datetime
    steps: list[PlannedStepOut]
    last_rejected_hand_off: dict[str, Any] | None = None
    holding_unit_codes: list[str] = Field(
        default_factory=list, description="every unit holding it now (several in parallel)"
    )
    last_send_back: dict[str, Any] | None = Field(
        default=None, description="the last send-back to an earlier step, or its rejection"
    )


class DeadlineOut(BaseModel):
    """The deadline service's facts: the clock, its pauses, lateness."""

    started_at: datetime
    due_at: datetime
    due_soon_at: datetime | None
    paused_since: datetime | None
    overdue_at: datetime | None
    completed_at: datetime | None
    timeliness: str | None
    supplement_due_at: datetime | None = Field(
        default=None, description="while the clock waits for a supplement: by when it is due"
    )
    supplement_missed_at: datetime | None = Field(
        default=None, description="when the supplement's due time was seen to pass unmet"
    )


class NotifierOut(BaseModel):
    """The notifier's facts: the apology it would owe, and when it was issued."""

    signer_title: str | None
    apology_due_by: datetime | None
    apology_issued_at: datetime | None


class DossierView(BaseModel):
    """The dossier as it stands: its receipt, and what each service's events say of it."""

    dossier_code: str
    status: StatusOut
    trace_id: str | None = Field(default=None, description="the submission's trace")
    receipt: Receipt
    routing: RoutingOut | None = None
    deadline: DeadlineOut | None = None
    notifier: NotifierOut | None = None
    updated_at: datetime


# --- lifecycle commands: what counters and processing units post --------------------------
# The unit and the official are the signed-in caller's, from the token, never from the body.


class HandOffBody(_Strict):
    to_unit_code: Code


class SendBackBody(_Strict):
    to_step_sequence: int = Field(ge=1, description="the earlier step that must work again")
    reason: Text


class SupplementRequestBody(_Strict):
    reason: Text
    missing_documents: list[DocumentKind] = Field(min_length=1, max_length=50)
    override_reason: Text | None = Field(
        default=None,
        description="required for a second request: guidance must be given once, completely",
    )


class FinancialObligationBody(_Strict):
    amount_vnd: int = Field(ge=0)


class ExtensionRequestBody(_Strict):
    reason: Text


class ReasonBody(_Strict):
    reason: Text


class ConsultationRequestBody(_Strict):
    """Lấy ý kiến: what the holding unit asks, on which documents, of which units."""

    question: Text
    documents: list[DocumentKind] = Field(
        min_length=1, max_length=50, description="the documents of the dossier concerned"
    )
    consulted_unit_codes: list[Code] = Field(min_length=1, max_length=20)
    reply_working_days: float | None = Field(
        default=None,
        gt=0,
        le=60,
        description="the time each unit has to reply, in its working days (default: intake's"
        " setting consultation_reply_working_days)",
    )


class ConsultationReplyBody(_Strict):
    opinion: Text


class CommandResult(BaseModel):
    dossier_code: str
    status: DossierStatus
    event_type: str
    event_id: str = Field(description="the event's id: the causationid of what follows from it")
    occurred_at: datetime


class ConsultationOut(BaseModel):
    consultation_id: int
    unit_code: str
    reply_due_at: datetime


class ConsultationRequestResult(CommandResult):
    """One consultation per consulted unit: each replies on its own id."""

    consultations: list[ConsultationOut]
