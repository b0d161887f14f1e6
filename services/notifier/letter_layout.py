"""The PDF layout of the unit's letters to the applicant (fpdf2, fontTools subsetting), apart
from letters.py because its libraries weigh some 40 MB of memory: only the process that lays
out PDFs (the notifier's rendering process, or a letter served as PDF) imports it.

letters.render_pdf and letters.render_document_pdf are its entry points."""

from __future__ import annotations

import copy
import io
from functools import cache
from pathlib import Path
from typing import Any

import fontpkg_spectral
from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

from services.notifier.letters import (
    HONORIFIC,
    MOTTO,
    MOTTO_NATION,
    Run,
    _copies,
    _place_and_date,
)

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


def layout(
    letter: Any, *, title: str, title_lines: tuple[str, ...], paragraphs: list[list[Run]]
) -> bytes:
    """Any letter of the unit to the applicant (`letters.render_document_pdf`): A4, the
    Spectral font embedded, deterministic."""
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
