"""The apology letter (Mẫu 04, Thông tư 03/2025/TT-VPCP): "Văn bản xin lỗi và đề nghị gia hạn
thời gian giải quyết hồ sơ", formerly "phiếu xin lỗi và hẹn lại ngày trả kết quả".

Pure code, no I/O beyond reading the template and the font shipped with the code:
`render_html` for print and e-mail, `render_pdf` for the attachment and the counter,
`letter_text` for SMS and Zalo. The wording lives in `_body` once and both documents use it.

The letter carries the applicant's name and address: it is the letter itself. Do not log it.
"""

from __future__ import annotations

import copy
import io
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import fontpkg_spectral
import jinja2
from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont
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


# --- PDF -------------------------------------------------------------------------------------

_FONT = "Spectral"
_FONT_FILES = {
    "": "Spectral-Regular.ttf",
    "B": "Spectral-Bold.ttf",
    "I": "Spectral-Italic.ttf",
    "BI": "Spectral-BoldItalic.ttf",
}
_LEFT, _RIGHT, _TOP = 30.0, 15.0, 20.0  # mm, the margins of Nghị định 30/2020/NĐ-CP
_HEADER_LEFT_WIDTH = 64.0
_SIGNATURE_HEIGHT = 55.0


def font_files() -> dict[str, Path]:
    """The Spectral TTFs (SIL OFL, full Vietnamese coverage) shipped by `fontpkg-spectral`."""
    folder = fontpkg_spectral.ROOT / "files"
    return {style: folder / name for style, name in _FONT_FILES.items()}


@cache
def _parsed_fonts() -> dict[str, tuple[TTFFont, bytes]]:
    """Each style parsed and measured once per process, with its file's bytes: fpdf2's
    `add_font` does it again for every document, most of a letter's time."""
    probe = FPDF()
    parsed = {}
    for style, path in font_files().items():
        probe.add_font(_FONT, style, path)
        font = probe.fonts[f"{_FONT.lower()}{style}"]
        assert isinstance(font, TTFFont)
        parsed[style] = (font, _without_layout_tables(path))
    return parsed


def _without_layout_tables(path: Path) -> bytes:
    """The font file without the tables fpdf2 drops from every subset it embeds (OpenType
    layout, metadata; no text shaping here): each letter's subsetting has less to go through,
    and the embedded font is the same."""
    font = ttLib.TTFont(path, recalcTimestamp=False)
    for tag in ("GDEF", "GPOS", "GSUB", "meta"):
        if tag in font:
            del font[tag]
    stripped = io.BytesIO()
    font.save(stripped)
    return stripped.getvalue()


def _font_for(document: FPDF, style: str) -> TTFFont:
    """A copy of the parsed font for one document: the measurements are shared (read only);
    the glyphs used and the fontTools font, which fpdf2 subsets in place at output, are the
    document's own (loaded lazily from bytes in memory)."""
    template, data = _parsed_fonts()[style]
    font = copy.copy(template)
    font.i = len(document.fonts) + 1
    font.ttfont = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True)
    font.subset = SubsetMap(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    return font


class _Letter(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_margins(_LEFT, _TOP, _RIGHT)
        self.set_auto_page_break(auto=True, margin=20)
        for style in _FONT_FILES:
            font = _font_for(self, style)
            self.fonts[font.fontkey] = font

    def header(self) -> None:
        """From the second page on, the page number centred at the top (Nghị định 30)."""
        if self.page_no() > 1:
            self.set_y(10)
            self.set_font(_FONT, "", 13)
            self.cell(0, 6, str(self.page_no()), align=Align.C)
            self.set_y(self.t_margin)

    @property
    def content_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def lines(
        self,
        x: float,
        w: float,
        text: str,
        *,
        style: str = "",
        size: float = 13,
        align: Align = Align.C,
        height: float | None = None,
    ) -> float:
        """Writes `text` in the column [x, x + w] from the current y and returns the y below it.
        Centred text is wrapped into lines of even length, as a heading is set by hand, rather
        than leaving one word alone on the last line."""
        self.set_font(_FONT, style, size)
        if align is Align.C:
            narrow = self._balanced_width(w, text)
            x, w = x + (w - narrow) / 2, narrow
        self.set_x(x)
        self.multi_cell(
            w, height or size * 0.5, text, align=align, new_x=XPos.LEFT, new_y=YPos.NEXT
        )
        return self.get_y()

    def _line_count(self, w: float, text: str) -> int:
        lines = self.multi_cell(w, text=text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(lines, list)
        return len(lines)

    def _balanced_width(self, w: float, text: str) -> float:
        """The narrowest width, down to 0.1 mm, that wraps `text` in as few lines as `w` does."""
        count = self._line_count(w, text)
        if count <= 1:
            return w
        low, high = w / count, w
        while high - low > 0.1:
            middle = (low + high) / 2
            if self._line_count(middle, text) <= count:
                high = middle
            else:
                low = middle
        return high

    def rule_under(self, x: float, w: float, y: float, length: float) -> None:
        self.set_line_width(0.3)
        self.line(x + (w - length) / 2, y, x + (w + length) / 2, y)

    def fitting_size(self, text: str, style: str, width: float, size: float) -> float:
        while size > 10:
            self.set_font(_FONT, style, size)
            if self.get_string_width(text) <= width:
                break
            size -= 0.5
        return size


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
    pdf = _Letter()
    pdf.set_title(title)
    pdf.set_subject(f"Hồ sơ {letter.dossier_code}")
    pdf.set_author(letter.issuing_unit.name)
    pdf.set_creator("onestop notifier")
    pdf.set_lang("vi")
    pdf.set_creation_date(letter.issued_at)
    pdf.add_page()

    left_x, left_w = pdf.l_margin, _HEADER_LEFT_WIDTH
    right_x, right_w = pdf.l_margin + left_w, pdf.content_width - left_w

    # Header, left: governing body, unit (bold), a short rule, the number.
    y = _TOP
    pdf.set_y(y)
    if letter.issuing_unit.parent_name:
        y = pdf.lines(left_x, left_w, letter.issuing_unit.parent_name.upper(), size=11.5)
    y = pdf.lines(left_x, left_w, letter.issuing_unit.name.upper(), style="B", size=11.5)
    pdf.rule_under(left_x, left_w, y + 0.8, 22)
    number_y = y + 3
    pdf.set_y(number_y)
    left_bottom = pdf.lines(left_x, left_w, f"Số: {letter.number}", size=13)

    # Header, right: the national motto and its rule, then place and date in italics.
    pdf.set_y(_TOP)
    size = pdf.fitting_size(MOTTO_NATION, "B", right_w - 2 * pdf.c_margin, 12)
    y = pdf.lines(right_x, right_w, MOTTO_NATION, style="B", size=size)
    size = pdf.fitting_size(MOTTO, "B", right_w - 2 * pdf.c_margin, 13)
    y = pdf.lines(right_x, right_w, MOTTO, style="B", size=size)
    pdf.set_font(_FONT, "B", size)
    pdf.rule_under(right_x, right_w, y + 0.8, pdf.get_string_width(MOTTO))
    pdf.set_y(max(y + 3, number_y))  # on the number's line, as Nghị định 30 lays it out
    place_and_date = _place_and_date(letter)
    size = pdf.fitting_size(place_and_date, "I", right_w - 2 * pdf.c_margin, 13)
    right_bottom = pdf.lines(right_x, right_w, place_and_date, style="I", size=size)

    # Title.
    pdf.set_y(max(left_bottom, right_bottom) + 8)
    pdf.lines(pdf.l_margin, pdf.content_width, "\n".join(title_lines), style="B", size=14, height=7)

    # Addressee.
    pdf.set_y(pdf.get_y() + 5)
    with pdf.text_columns(text_align=Align.L, line_height=1.4) as columns:
        with columns.paragraph(indent=0, bottom_margin=1) as paragraph:
            pdf.set_font(_FONT, "", 13)
            paragraph.write("Kính gửi: ")
            pdf.set_font(_FONT, "B", 13)
            paragraph.write(f"{HONORIFIC} {letter.addressee.full_name}")
        with columns.paragraph(bottom_margin=3) as paragraph:
            pdf.set_font(_FONT, "", 13)
            paragraph.write(f"Địa chỉ: {letter.addressee.address}")

    # Body, justified, first lines indented.
    with pdf.text_columns(text_align=Align.J, line_height=1.4) as columns:
        for runs in paragraphs:
            with columns.paragraph(first_line_indent=10, bottom_margin=2) as paragraph:
                for run in runs:
                    pdf.set_font(_FONT, "B" if run.bold else "", 13)
                    paragraph.write(run.text)

    # Signature block: "Nơi nhận" on the left, the head of the unit on the right.
    if pdf.get_y() + _SIGNATURE_HEIGHT > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y() + 6
    signature_x, signature_w = pdf.l_margin + 75, pdf.content_width - 75
    pdf.set_y(top)
    pdf.lines(pdf.l_margin, 75, "Nơi nhận:", style="BI", size=12, align=Align.L, height=5.5)
    for item in _copies(letter):
        pdf.lines(pdf.l_margin, 75, item, size=11, align=Align.L, height=5)
    pdf.set_y(top)
    y = pdf.lines(
        signature_x, signature_w, letter.signer_title.upper(), style="B", size=13, height=6.5
    )
    if letter.signer_name:
        pdf.set_y(y + 25)
        pdf.lines(signature_x, signature_w, letter.signer_name, style="B", size=13, height=6.5)

    return bytes(pdf.output())


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
