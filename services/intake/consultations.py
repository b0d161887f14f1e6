"""Inter-agency consultation (lấy ý kiến): the unit holding a dossier asks other units for
their opinion on some of its documents, and each replies in writing by a due time in its own
working days. Pure, no I/O: the rules, and the request and reply as rendered documents.

The time to reply is a configurable default (intake's `consultation_reply_working_days`, 5
working days): Nghị định 61/2018/NĐ-CP asks consulted agencies to reply in writing on time,
but we have not confirmed an article fixing the number of days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from services.intake.domain import Conflict, DossierState, SubmissionRejected
from services.intake.schemas import ConsultationReplyBody, ConsultationRequestBody
from shared import lifecycle
from shared.auth import Forbidden, Principal, Role
from shared.catalog import Unit
from shared.events import (
    ConsultationReplied,
    ConsultationRequested,
    ConsultedUnit,
    DossierStatus,
)


@dataclass(frozen=True)
class Consultation:
    """One consulted unit's part of a request, as intake keeps it."""

    dossier_code: str
    consultation_id: int
    requesting_unit_code: str
    unit_code: str
    question: str
    reply_due_at: datetime
    replied_at: datetime | None


def request_consultation(
    state: DossierState,
    body: ConsultationRequestBody,
    actor: Principal,
    now: datetime,
    *,
    first_id: int,
    working_days: float,
    unit: Callable[[str], Unit | None],
    reply_due: Callable[[str], datetime],
    tz: tzinfo,
) -> ConsultationRequested:
    """Asked while the dossier is being processed, by the unit holding it (authorize() has
    checked that), of other known units, each once: one consultation per unit."""
    if state.status is not DossierStatus.PROCESSING:
        raise Conflict(
            f"a consultation is asked while the dossier is processed (status 4); it is"
            f" {state.status.name.lower()} (status {int(state.status)})"
        )
    requester = actor.unit_code
    assert requester is not None  # authorize() let only officials of a unit through
    codes = list(dict.fromkeys(body.consulted_unit_codes))
    if len(codes) != len(body.consulted_unit_codes):
        raise SubmissionRejected("consulted_unit_codes", "a unit is named more than once")
    for code in codes:
        if code == requester:
            raise SubmissionRejected(
                "consulted_unit_codes", f"{code} is your own unit: consult other units"
            )
        if unit(code) is None:
            raise SubmissionRejected("consulted_unit_codes", f"unknown unit code {code!r}")
    consulted = tuple(
        ConsultedUnit(consultation_id=first_id + i, unit_code=code, reply_due_at=reply_due(code))
        for i, code in enumerate(codes)
    )
    event = ConsultationRequested(
        dossier_code=state.code,
        requesting_unit_code=requester,
        official=actor.name,
        question=body.question,
        documents=tuple(body.documents),
        consulted=consulted,
        reply_working_days=working_days,
        requested_at=now,
        document="",
    )
    return event.model_copy(update={"document": request_document(event, unit, tz)})


def reply_consultation(
    state: DossierState,
    consultation: Consultation,
    body: ConsultationReplyBody,
    actor: Principal,
    now: datetime,
    *,
    unit: Callable[[str], Unit | None],
    tz: tzinfo,
) -> ConsultationReplied:
    """Only an official of the consulted unit replies (403 for others), once (409), while the
    dossier is still open."""
    if not actor.has(Role.UNIT_OFFICER, Role.UNIT_HEAD):
        raise Forbidden(f"this needs the role {Role.UNIT_OFFICER} of the consulted unit")
    if actor.unit_code != consultation.unit_code:
        raise Forbidden(
            f"consultation {consultation.consultation_id} asks unit {consultation.unit_code};"
            f" your unit is {actor.unit_code}"
        )
    if consultation.replied_at is not None:
        raise Conflict(
            f"consultation {consultation.consultation_id} was already replied to at"
            f" {consultation.replied_at.isoformat()}"
        )
    if state.status not in lifecycle.OPEN:
        raise Conflict(
            f"the dossier is {state.status.name.lower()} (status {int(state.status)}):"
            " no reply is needed any more"
        )
    event = ConsultationReplied(
        dossier_code=state.code,
        consultation_id=consultation.consultation_id,
        unit_code=consultation.unit_code,
        requesting_unit_code=consultation.requesting_unit_code,
        official=actor.name,
        opinion=body.opinion,
        reply_due_at=consultation.reply_due_at,
        replied_at=now,
        late=now > consultation.reply_due_at,
        document="",
    )
    return event.model_copy(
        update={"document": reply_document(event, consultation.question, unit, tz)}
    )


# --- the documents: short official letters, as text kept with the event --------------------


def _name(unit: Callable[[str], Unit | None], code: str) -> str:
    found = unit(code)
    return found.name if found else code


def _signer(unit: Callable[[str], Unit | None], code: str) -> str:
    found = unit(code)
    return found.head_title if found else "Thủ trưởng đơn vị"


def _at(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%H giờ %M, ngày %d/%m/%Y")


def _lines(items: Sequence[str]) -> str:
    return "\n".join(f"  - {item}" for item in items)


def request_document(
    event: ConsultationRequested, unit: Callable[[str], Unit | None], tz: tzinfo
) -> str:
    """Công văn lấy ý kiến: to each consulted unit, what is asked, on which documents, and by
    when each must reply."""
    requester = event.requesting_unit_code
    to = [
        f"{_name(unit, c.unit_code)} (phiếu số {c.consultation_id}, trả lời trước"
        f" {_at(c.reply_due_at, tz)})"
        for c in event.consulted
    ]
    return (
        f"{_name(unit, requester).upper()}\n"
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc\n\n"
        f"V/v lấy ý kiến về hồ sơ {event.dossier_code}\n"
        f"Ngày {_at(event.requested_at, tz)}\n\n"
        f"Kính gửi:\n{_lines(to)}\n\n"
        f"{_name(unit, requester)} đang giải quyết hồ sơ {event.dossier_code} và đề nghị"
        " quý cơ quan cho ý kiến bằng văn bản về nội dung sau:\n"
        f"  {event.question}\n\n"
        f"Tài liệu kèm theo:\n{_lines(event.documents)}\n\n"
        f"Thời hạn trả lời: {event.reply_working_days:g} ngày làm việc kể từ ngày nhận văn bản."
        " Quá thời hạn này, hệ thống nhắc Thủ trưởng cơ quan được lấy ý kiến và báo cáo"
        " bộ phận theo dõi.\n\n"
        f"{_signer(unit, requester).upper()}\n(người xử lý: {event.official})\n"
    )


def reply_document(
    event: ConsultationReplied,
    question: str,
    unit: Callable[[str], Unit | None],
    tz: tzinfo,
) -> str:
    """Văn bản trả lời: the consulted unit's opinion on what was asked."""
    late = "  (trả lời sau thời hạn)" if event.late else ""
    return (
        f"{_name(unit, event.unit_code).upper()}\n"
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc\n\n"
        f"V/v trả lời lấy ý kiến về hồ sơ {event.dossier_code}"
        f" (phiếu số {event.consultation_id})\n"
        f"Ngày {_at(event.replied_at, tz)}{late}\n\n"
        f"Kính gửi: {_name(unit, event.requesting_unit_code)}\n\n"
        f"Về nội dung được hỏi: {question}\n"
        f"{_name(unit, event.unit_code)} có ý kiến như sau:\n"
        f"  {event.opinion}\n\n"
        f"{_signer(unit, event.unit_code).upper()}\n(người xử lý: {event.official})\n"
    )
