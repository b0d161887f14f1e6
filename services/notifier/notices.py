"""The unit's other letters to the applicant, laid out as the apology is and delivered by the
same machinery: the supplement request (Mẫu 02), the refusal (Mẫu 03), the stop of processing
(Mẫu 05) and the notice that the result is ready for collection (the forms' numbers as in
Thông tư 01/2018/TT-VPCP and this project's events).

Pure code, no I/O. A notice carries the applicant's name and address: do not log it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import AwareDatetime, Field

from services.notifier.letters import (
    HONORIFIC,
    SMS_MAX_CHARS,
    Addressee,
    IssuingUnit,
    OneLine,
    Run,
    Text,
    _Frozen,
    _short_datetime,
    _shorten,
    render_document_html,
    render_document_pdf,
    vietnamese_datetime,
)


class NoticeKind(StrEnum):
    SUPPLEMENT_REQUEST = "supplement_request"  # Mẫu 02
    REFUSAL = "refusal"  # Mẫu 03
    PROCESSING_STOPPED = "processing_stopped"  # Mẫu 05
    RESULT_READY = "result_ready"


# Each kind: its title lines, the symbol in its number, the e-mail subject's start, the file.
TITLES: dict[NoticeKind, tuple[str, ...]] = {
    NoticeKind.SUPPLEMENT_REQUEST: ("PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ",),
    NoticeKind.REFUSAL: ("PHIẾU TỪ CHỐI TIẾP NHẬN, GIẢI QUYẾT HỒ SƠ",),
    NoticeKind.PROCESSING_STOPPED: ("THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ",),
    NoticeKind.RESULT_READY: ("THÔNG BÁO KẾT QUẢ GIẢI QUYẾT HỒ SƠ", "ĐÃ SẴN SÀNG"),
}
SYMBOLS = {
    NoticeKind.SUPPLEMENT_REQUEST: "BS",
    NoticeKind.REFUSAL: "TC",
    NoticeKind.PROCESSING_STOPPED: "DX",
    NoticeKind.RESULT_READY: "TB",
}
FILE_PREFIXES = {
    NoticeKind.SUPPLEMENT_REQUEST: "yeu-cau-bo-sung",
    NoticeKind.REFUSAL: "tu-choi",
    NoticeKind.PROCESSING_STOPPED: "dung-giai-quyet",
    NoticeKind.RESULT_READY: "ket-qua-san-sang",
}


def notice_number(sequence: int, unit_code: str, year: int, kind: NoticeKind) -> str:
    """From the unit's one register of outgoing letters, which the apologies share."""
    return f"{sequence}/{year}/{SYMBOLS[kind]}-{unit_code}"


class CitizenNotice(_Frozen):
    kind: NoticeKind
    issuing_unit: IssuingUnit
    number: OneLine = Field(max_length=64)
    place: OneLine = "Thành phố Hồ Chí Minh"
    issued_at: AwareDatetime
    addressee: Addressee
    dossier_code: OneLine = Field(max_length=64)
    procedure_name: OneLine
    received_at: AwareDatetime
    reason: Text | None = None
    missing_documents: tuple[OneLine, ...] = ()
    due_at: AwareDatetime | None = Field(
        default=None, description="a supplement request: by when the applicant must supply it"
    )
    signer_title: OneLine
    signer_name: OneLine | None = None
    copies_to: tuple[OneLine, ...] = ("Như trên", "Bộ phận Một cửa", "Lưu: VT")

    @property
    def title(self) -> str:
        return " ".join(TITLES[self.kind]).capitalize()

    def __repr__(self) -> str:  # the default would print the addressee's name and address
        return f"CitizenNotice(kind={self.kind!r}, dossier_code={self.dossier_code!r})"

    __str__ = __repr__


def _body(notice: CitizenNotice) -> list[list[Run]]:
    unit = notice.issuing_unit.name
    opening = [
        Run(
            f"Lúc {vietnamese_datetime(notice.received_at)}, hồ sơ của {HONORIFIC} đã được "
            "tiếp nhận với mã hồ sơ "
        ),
        Run(notice.dossier_code, bold=True),
        Run(f", thủ tục hành chính: {notice.procedure_name}."),
    ]
    reason = [[Run("Lý do: ", bold=True), Run(notice.reason)]] if notice.reason else []
    match notice.kind:
        case NoticeKind.SUPPLEMENT_REQUEST:
            missing = [[Run(f"- {document}")] for document in notice.missing_documents]
            due = (
                [
                    [
                        Run(f"Đề nghị {HONORIFIC} bổ sung, hoàn thiện hồ sơ trước "),
                        Run(vietnamese_datetime(notice.due_at), bold=True),
                        Run(
                            "; quá thời hạn này, hồ sơ có thể bị từ chối giải quyết. Thời gian "
                            "bổ sung không tính vào thời hạn giải quyết hồ sơ."
                        ),
                    ]
                ]
                if notice.due_at
                else []
            )
            return [
                opening,
                [Run(f"Hồ sơ của {HONORIFIC} cần được bổ sung, hoàn thiện các giấy tờ sau:")],
                *missing,
                *reason,
                *due,
            ]
        case NoticeKind.REFUSAL:
            return [
                opening,
                [Run(f"{unit} từ chối giải quyết hồ sơ của {HONORIFIC}.")],
                *reason,
                [Run(f"Xin thông báo để {HONORIFIC} được biết.")],
            ]
        case NoticeKind.PROCESSING_STOPPED:
            return [
                opening,
                [Run(f"{unit} dừng giải quyết hồ sơ của {HONORIFIC}.")],
                *reason,
                [Run(f"Xin thông báo để {HONORIFIC} được biết.")],
            ]
        case NoticeKind.RESULT_READY:
            return [
                opening,
                [
                    Run(
                        f"Hồ sơ đã được giải quyết xong. Đề nghị {HONORIFIC} đến Bộ phận Một cửa "
                        "mang theo giấy tiếp nhận hồ sơ và hẹn trả kết quả để nhận kết quả."
                    )
                ],
            ]


def render_notice_html(notice: CitizenNotice) -> str:
    return render_document_html(
        notice, title=notice.title, title_lines=TITLES[notice.kind], paragraphs=_body(notice)
    )


def render_notice_pdf(notice: CitizenNotice) -> bytes:
    return render_document_pdf(
        notice, title=notice.title, title_lines=TITLES[notice.kind], paragraphs=_body(notice)
    )


def notice_subject(notice: CitizenNotice) -> str:
    return f"{notice.title} {notice.dossier_code}"


def notice_attachment_name(notice: CitizenNotice) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", notice.dossier_code)  # safe in a MIME header
    return f"{FILE_PREFIXES[notice.kind]}-{safe}.pdf"


def notice_text(notice: CitizenNotice) -> str:
    """A plain-text summary for SMS or Zalo, at most `SMS_MAX_CHARS` characters."""
    head = f"{notice.issuing_unit.name}: hồ sơ {notice.dossier_code} - {notice.title}."
    parts = [head]
    if notice.missing_documents:
        parts.append("Cần bổ sung: " + "; ".join(notice.missing_documents) + ".")
    if notice.due_at:
        parts.append(f"Hạn bổ sung: {_short_datetime(notice.due_at)}.")
    if notice.reason:
        parts.append(f"Lý do: {notice.reason.rstrip('.')}.")
    parts.append(f"Văn bản số {notice.number}.")
    return _shorten(" ".join(parts), SMS_MAX_CHARS)
