"""The HTTP contract with the counters: what they post and the receipt they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.catalog import ProcessingTime
from shared.events import Channel, DocumentForm, DossierStatus


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicantIn(_Strict):
    full_name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(
        pattern=r"^(\d{9}|\d{10}|\d{12}|\d{13})$",
        description="citizen ID (12 digits), old ID card (9) or tax number (10 or 13)",
    )
    phone: str = Field(pattern=r"^(\+84|0)\d{9,10}$")
    email: EmailStr | None = None
    address: str = Field(min_length=1, max_length=500)


class DocumentIn(_Strict):
    kind: str = Field(min_length=1, max_length=300, description="e.g. Tờ khai, Bản sao CCCD")
    form: DocumentForm
    count: int = Field(ge=1, le=100)


class DossierSubmission(_Strict):
    procedure_code: str = Field(min_length=1, max_length=32, examples=["1.004227"])
    receiving_unit_code: str = Field(min_length=1, max_length=32, examples=["000.00.00.H29"])
    channel: Channel
    applicant: ApplicantIn
    documents: list[DocumentIn] = Field(min_length=1, max_length=100)
    sets: int = Field(default=1, ge=1, le=20, description="number of sets (bộ hồ sơ)")
    receiving_officer: str = Field(min_length=1, max_length=200)


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
    applicant: ApplicantIn
    documents: list[DocumentIn]
    sets: int
    received_at: datetime
    appointment_at: datetime = Field(description="ngày hẹn trả kết quả")
    processing_time: ProcessingTime
    result_collection_place: str
    receiving_officer: str
    trace_id: str | None = Field(
        default=None, description="the submission's trace: search it in the trace UI"
    )


class DossierView(BaseModel):
    """The dossier as it stands: its receipt and what each service has done with it."""

    dossier_code: str
    status: StatusOut
    trace_id: str | None = Field(default=None, description="the submission's trace")
    receipt: Receipt
    routing: dict[str, Any] | None = None
    deadline: dict[str, Any] | None = None
    notifier: dict[str, Any] | None = None
    updated_at: datetime


class Problem(BaseModel):
    """An error: what went wrong and, for bad input, which fields."""

    error: str
    message: str
    fields: list[dict[str, str]] = []
