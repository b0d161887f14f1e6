"""The apology letter (Mẫu 04, Thông tư 03/2025/TT-VPCP): "Văn bản xin lỗi và đề nghị gia hạn
thời gian giải quyết hồ sơ", formerly "phiếu xin lỗi và hẹn lại ngày trả kết quả".

Pure code, no I/O beyond reading the template and the font shipped with the code:
`render_html` for print and e-mail, `render_pdf` for the attachment and the counter,
`letter_text` for SMS and Zalo. The wording lives in `_body` once and both documents use it.

The letter carries the applicant's name and address: it is the letter itself. Do not log it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.calendar import HCMC

TEMPLATES = Path(__file__).parent / "templates"
SMS_MAX_CHARS = 480
"""Upper bound of `letter_text`: seven UCS-2 SMS segments, one Zalo message."""

TITLE = "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết hồ sơ"
TITLE_LINES = ("VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN", "THỜI GIAN GIẢI QUYẾT HỒ SƠ")
MOTTO_NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
HONORIFIC = "Ông/Bà"


def _one_line(value: str) -> str:
    """NFC (the font has precomposed glyphs; some keyboards send combining marks) and one line."""
    return " ".join(unicodedata.normalize("NFC", value).split())


OneLine = Annotated[str, AfterValidator(_one_line), Field(min_length=1, max_length=500)]
Text = Annotated[str, AfterValidator(_one_line), Field(min_length=1, max_length=2000)]


class Lateness(StrEnum):
    """What the letter states: the due time has passed, or it will be missed."""

    OVERDUE = "overdue"  # đã quá hạn
    WILL_BE_LATE = "will_be_late"  # sẽ quá hạn


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IssuingUnit(_Frozen):
    """The unit at fault, which issues and signs the letter."""

    code: OneLine
    name: OneLine
    parent_name: OneLine | None = Field(
        default=None, description="the governing body printed above the unit's name"
    )


class Addressee(_Frozen):
    """Personal data: printed on the letter, never logged."""

    full_name: OneLine
    address: OneLine

    def __repr__(self) -> str:
        return "Addressee(<personal data>)"

    __str__ = __repr__


class ApologyLetter(_Frozen):
    issuing_unit: IssuingUnit
    number: OneLine = Field(max_length=64, description='the reference, e.g. "125/XL-VPĐKĐĐ"')
    place: OneLine = "Thành phố Hồ Chí Minh"
    issued_at: AwareDatetime
    addressee: Addressee
    dossier_code: OneLine = Field(max_length=64)
    procedure_name: OneLine
    received_at: AwareDatetime
    original_due_at: AwareDatetime
    lateness: Lateness = Field(
        default=None,
        validate_default=True,
        description="by default overdue if issued at or after the original due time",
    )
    reason: Text
    apology: Text = Field(
        default=None, validate_default=True, description="by default the unit's standard apology"
    )
    new_due_at: AwareDatetime = Field(description="ngày hẹn trả mới")
    signer_title: OneLine = Field(description="the head of the unit at fault, e.g. Giám đốc")
    signer_name: OneLine | None = None
    copies_to: tuple[OneLine, ...] = ("Như trên", "Bộ phận Một cửa", "Lưu: VT")

    # The fields above a field are already validated in `info.data` (declaration order).
    @field_validator("lateness", mode="before")
    @classmethod
    def _lateness_from_dates(cls, value: Any, info: ValidationInfo) -> Any:
        issued, due = info.data.get("issued_at"), info.data.get("original_due_at")
        if value is None and issued is not None and due is not None:
            return Lateness.OVERDUE if issued >= due else Lateness.WILL_BE_LATE
        return value

    @field_validator("apology", mode="before")
    @classmethod
    def _standard_apology(cls, value: Any, info: ValidationInfo) -> Any:
        unit = info.data.get("issuing_unit")
        if value is None and unit is not None:
            return (
                f"Sự chậm trễ này đã gây phiền hà cho {HONORIFIC}. {unit.name} trân trọng xin lỗi "
                f"{HONORIFIC} và đề nghị {HONORIFIC} đồng ý gia hạn thời gian giải quyết hồ sơ."
            )
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> ApologyLetter:
        if self.received_at > self.original_due_at:
            raise ValueError("received_at is after original_due_at")
        if self.new_due_at <= self.original_due_at:
            raise ValueError("new_due_at must be later than original_due_at")
        return self

    def __repr__(self) -> str:  # the default would print the addressee's name and address
        return f"ApologyLetter(dossier_code={self.dossier_code!r}, number={self.number!r})"

    __str__ = __repr__


# --- Vietnamese dates ------------------------------------------------------------------------


def _in_hcmc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a letter's times must be timezone-aware")
    return value.astimezone(HCMC)


def _local(value: datetime | date) -> date:
    return _in_hcmc(value).date() if isinstance(value, datetime) else value


def vietnamese_date(value: datetime | date) -> str:
    """`ngày 05 tháng 02 năm 2026`: days below 10 and months 1 and 2 take a leading zero
    (Nghị định 30/2020/NĐ-CP, Phụ lục I); datetimes are read in Asia/Ho_Chi_Minh."""
    day = _local(value)
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def vietnamese_datetime(value: datetime) -> str:
    """`16 giờ 30 phút, ngày 24 tháng 11 năm 2026`, in Asia/Ho_Chi_Minh."""
    local = _in_hcmc(value)
    return f"{local.hour:02d} giờ {local.minute:02d} phút, {vietnamese_date(local)}"


def _short_datetime(value: datetime) -> str:
    local = _in_hcmc(value)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"


# --- the wording, shared by HTML and PDF -----------------------------------------------------


@dataclass(frozen=True)
class Run:
    text: str
    bold: bool = False


def _body(letter: ApologyLetter) -> list[list[Run]]:
    unit = letter.issuing_unit.name
    if letter.lateness is Lateness.OVERDUE:
        statement = (
            f"Tuy nhiên, đến nay hồ sơ đã quá hạn giải quyết và {unit} chưa trả kết quả "
            f"cho {HONORIFIC} đúng thời hạn nêu trên."
        )
    else:
        statement = (
            f"Tuy nhiên, {unit} không thể trả kết quả giải quyết hồ sơ cho {HONORIFIC} đúng "
            "thời hạn nêu trên; hồ sơ sẽ bị quá hạn giải quyết."
        )
    return [
        [
            Run(
                f"Lúc {vietnamese_datetime(letter.received_at)}, hồ sơ của {HONORIFIC} đã được "
                "tiếp nhận với mã hồ sơ "
            ),
            Run(letter.dossier_code, bold=True),
            Run(f", thủ tục hành chính: {letter.procedure_name}."),
        ],
        [
            Run("Thời gian hẹn trả kết quả giải quyết hồ sơ: "),
            Run(vietnamese_datetime(letter.original_due_at), bold=True),
            Run("."),
        ],
        [Run(statement)],
        [Run("Lý do: ", bold=True), Run(letter.reason)],
        [Run(letter.apology)],
        [
            Run("Ngày hẹn trả kết quả mới: "),
            Run(vietnamese_datetime(letter.new_due_at), bold=True),
            Run("."),
        ],
        [Run(f"Rất mong nhận được sự thông cảm của {HONORIFIC}. Xin trân trọng cảm ơn!")],
    ]


def _place_and_date(letter: Any) -> str:
    return f"{letter.place}, {vietnamese_date(letter.issued_at)}"


def _copies(letter: Any) -> list[str]:
    last = len(letter.copies_to) - 1
    return [
        f"- {item.rstrip(';.')}{'.' if i == last else ';'}"
        for i, item in enumerate(letter.copies_to)
    ]


# --- HTML ------------------------------------------------------------------------------------


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(letter: ApologyLetter) -> str:
    """A complete, printable A4 HTML document (UTF-8), every inserted value escaped."""
    return render_document_html(
        letter, title=TITLE, title_lines=TITLE_LINES, paragraphs=_body(letter)
    )


def render_document_html(
    letter: Any, *, title: str, title_lines: tuple[str, ...], paragraphs: list[list[Run]]
) -> str:
    """Any letter of the unit to the applicant laid out as the apology is (Nghị định 30/2020):
    `letter` has the apology's header, addressee and signature fields."""
    return (
        _environment()
        .get_template("apology_letter.html")
        .render(
            letter=letter,
            title=title,
            title_lines=title_lines,
            motto_nation=MOTTO_NATION,
            motto=MOTTO,
            honorific=HONORIFIC,
            place_and_date=_place_and_date(letter),
            paragraphs=paragraphs,
            copies=_copies(letter),
        )
    )


# --- PDF ------------------------------------------------------------------------------------
# The layout (fpdf2, fontTools, numpy: some 40 MB) is in letter_layout.py, imported on the first
# PDF: the notifier's own process never lays one out (its rendering process does).


def render_pdf(letter: ApologyLetter) -> bytes:
    """The letter as an A4 PDF with the Spectral font embedded, so Vietnamese diacritics print
    the same everywhere. Deterministic: the same letter gives the same bytes."""
    return render_document_pdf(
        letter, title=TITLE, title_lines=TITLE_LINES, paragraphs=_body(letter)
    )


def render_document_pdf(
    letter: Any, *, title: str, title_lines: tuple[str, ...], paragraphs: list[list[Run]]
) -> bytes:
    """Any letter of the unit to the applicant, as `render_pdf` lays out the apology."""
    from services.notifier.letter_layout import layout

    return layout(letter, title=title, title_lines=title_lines, paragraphs=paragraphs)


# --- SMS / Zalo ------------------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def letter_text(letter: ApologyLetter) -> str:
    """A plain-text summary for SMS or Zalo, at most `SMS_MAX_CHARS` characters: the reason is
    shortened first, then the unit's name, if the whole does not fit."""
    state = "đã quá hạn" if letter.lateness is Lateness.OVERDUE else "sẽ quá hạn"

    def compose(unit: str, reason: str) -> str:
        return (
            f"{unit} xin lỗi {HONORIFIC}: hồ sơ {letter.dossier_code} {state} giải quyết "
            f"(hẹn trả {_short_datetime(letter.original_due_at)}). Lý do: {reason}. "
            f"Ngày hẹn trả mới: {_short_datetime(letter.new_due_at)}. "
            f"Văn bản xin lỗi số {letter.number}."
        )

    unit, reason = letter.issuing_unit.name, letter.reason.rstrip(".")
    text = compose(unit, reason)
    if len(text) > SMS_MAX_CHARS:
        room = len(reason) - (len(text) - SMS_MAX_CHARS)
        reason = _shorten(reason, max(room, 20))
        text = compose(unit, reason)
    if len(text) > SMS_MAX_CHARS:
        unit = _shorten(unit, max(len(unit) - (len(text) - SMS_MAX_CHARS), 20))
        text = compose(unit, reason)
    return _shorten(text, SMS_MAX_CHARS)
