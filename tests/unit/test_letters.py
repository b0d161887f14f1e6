"""The apology letter (Mẫu 04): its HTML, its PDF and its SMS text."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from pydantic import ValidationError
from pypdf import PdfReader

from services.notifier.letters import (
    SMS_MAX_CHARS,
    ApologyLetter,
    Lateness,
    letter_text,
    render_html,
    render_pdf,
    vietnamese_date,
    vietnamese_datetime,
)
from shared.calendar import HCMC

CODE = "000.00.05.H29-261105-0042"
RECEIVED = "08 giờ 15 phút, ngày 05 tháng 11 năm 2026"
ORIGINAL_DUE = "16 giờ 30 phút, ngày 19 tháng 11 năm 2026"
NEW_DUE = "16 giờ 30 phút, ngày 24 tháng 11 năm 2026"
REASON = (
    "Hồ sơ cần xác minh nguồn gốc sử dụng đất với Ủy ban nhân dân phường Bến Thành; "
    "kết quả xác minh chưa có."
)
MOTTO = "Độc lập - Tự do - Hạnh phúc"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TAG = re.compile(r"<[^>]+>")


def sample_letter(**changes: Any) -> ApologyLetter:
    fields: dict[str, Any] = {
        "issuing_unit": {
            "code": "000.00.05.H29",
            "name": "Văn phòng Đăng ký đất đai Thành phố",
            "parent_name": "Sở Nông nghiệp và Môi trường Thành phố Hồ Chí Minh",
        },
        "number": "125/XL-VPĐKĐĐ",
        "issued_at": datetime(2026, 11, 18, 9, 0, tzinfo=HCMC),
        "addressee": {
            "full_name": "Nguyễn Thị Ngọc Ánh",
            "address": "123 đường Lê Lợi, phường Bến Thành, Thành phố Hồ Chí Minh",
        },
        "dossier_code": CODE,
        "procedure_name": (
            "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"
        ),
        # 01:15 UTC is 08:15 in Ho Chi Minh City: the letter must show local time.
        "received_at": datetime(2026, 11, 5, 1, 15, tzinfo=UTC),
        "original_due_at": datetime(2026, 11, 19, 16, 30, tzinfo=HCMC),
        "reason": REASON,
        "new_due_at": datetime(2026, 11, 24, 16, 30, tzinfo=HCMC),
        "signer_title": "Giám đốc",
        "signer_name": "Trần Văn Bình",
    }
    fields.update(changes)
    return ApologyLetter.model_validate(fields)


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def visible_text(html: str) -> str:
    """The text a reader sees, entities decoded, whitespace collapsed."""

    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skip = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.skip = tag in ("style", "title")
            if tag == "br":
                self.parts.append(" ")

        def handle_endtag(self, tag: str) -> None:
            self.skip = False

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    collector = Collector()
    collector.feed(html)
    return " ".join("".join(collector.parts).split())


# --- dates -----------------------------------------------------------------------------------


def test_vietnamese_dates_pad_days_below_ten_and_months_one_and_two() -> None:
    assert vietnamese_date(date(2026, 2, 5)) == "ngày 05 tháng 02 năm 2026"
    assert vietnamese_date(date(2026, 3, 1)) == "ngày 01 tháng 3 năm 2026"
    assert vietnamese_date(date(2026, 11, 24)) == "ngày 24 tháng 11 năm 2026"


def test_vietnamese_datetime_is_read_in_ho_chi_minh_city() -> None:
    assert vietnamese_datetime(datetime(2026, 11, 24, 9, 30, tzinfo=UTC)) == NEW_DUE
    # 18:00 UTC on 31 December is already New Year's Day in Ho Chi Minh City.
    assert vietnamese_datetime(datetime(2026, 12, 31, 18, 5, tzinfo=UTC)) == (
        "01 giờ 05 phút, ngày 01 tháng 01 năm 2027"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        vietnamese_datetime(datetime(2026, 11, 24, 16, 30))


# --- the model -------------------------------------------------------------------------------


def test_lateness_defaults_from_the_issue_date() -> None:
    assert sample_letter().lateness is Lateness.WILL_BE_LATE
    late = sample_letter(issued_at=datetime(2026, 11, 20, 8, 0, tzinfo=HCMC))
    assert late.lateness is Lateness.OVERDUE
    assert "đã quá hạn" in letter_text(late)
    assert "hồ sơ đã quá hạn giải quyết" in visible_text(render_html(late))


def test_the_standard_apology_names_the_unit() -> None:
    apology = sample_letter().apology
    assert "Văn phòng Đăng ký đất đai Thành phố trân trọng xin lỗi Ông/Bà" in apology
    assert sample_letter(apology="Chúng tôi thành thật xin lỗi.").apology == (
        "Chúng tôi thành thật xin lỗi."
    )


def test_the_new_date_must_come_after_the_original_one() -> None:
    with pytest.raises(ValidationError, match="new_due_at"):
        sample_letter(new_due_at=datetime(2026, 11, 19, 16, 30, tzinfo=HCMC))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        sample_letter(new_due_at=datetime(2026, 11, 24, 16, 30))


def test_repr_shows_no_personal_data() -> None:
    letter = sample_letter()
    for shown in (repr(letter), str(letter), repr(letter.addressee)):
        assert "Nguyễn" not in shown and "Lê Lợi" not in shown
    assert CODE in repr(letter)


def test_text_is_normalised_to_nfc_and_one_line() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị  Ngọc\nÁnh")
    letter = sample_letter(addressee={"full_name": decomposed, "address": "1 Lê Lợi"})
    assert letter.addressee.full_name == "Nguyễn Thị Ngọc Ánh"


# --- HTML ------------------------------------------------------------------------------------


def test_html_is_a_complete_utf8_document_in_vietnamese() -> None:
    html = render_html(sample_letter())
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="vi">' in html
    assert '<meta charset="utf-8">' in html
    assert html.rstrip().endswith("</html>")
    html.encode("utf-8")


def test_html_has_every_part_of_the_form() -> None:
    text = visible_text(render_html(sample_letter()))
    for part in (
        "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG THÀNH PHỐ HỒ CHÍ MINH",
        "VĂN PHÒNG ĐĂNG KÝ ĐẤT ĐAI THÀNH PHỐ",
        "Số: 125/XL-VPĐKĐĐ",
        NATION,
        MOTTO,
        "Thành phố Hồ Chí Minh, ngày 18 tháng 11 năm 2026",
        "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT HỒ SƠ",
        "Kính gửi: Ông/Bà Nguyễn Thị Ngọc Ánh",
        "Địa chỉ: 123 đường Lê Lợi, phường Bến Thành, Thành phố Hồ Chí Minh",
        f"mã hồ sơ {CODE}",
        "Đăng ký biến động quyền sử dụng đất",
        f"Lúc {RECEIVED}",
        f"Thời gian hẹn trả kết quả giải quyết hồ sơ: {ORIGINAL_DUE}.",
        "hồ sơ sẽ bị quá hạn giải quyết",
        f"Lý do: {REASON}",
        "trân trọng xin lỗi Ông/Bà",
        f"Ngày hẹn trả kết quả mới: {NEW_DUE}.",
        "Nơi nhận: - Như trên; - Bộ phận Một cửa; - Lưu: VT.",
        "GIÁM ĐỐC",
        "Trần Văn Bình",
    ):
        assert part in text, part


def test_html_escapes_every_inserted_value() -> None:
    script = "<script>alert('x')</script>"
    letter = sample_letter(
        issuing_unit={"code": "X.1", "name": f"Phòng <b>A</b> & {script}"},
        number='1/XL-"A"',
        addressee={"full_name": f"Nguyễn {script}", "address": "<img src=x onerror=alert(1)>"},
        dossier_code="<i>CODE</i>",
        procedure_name="Thủ tục <a href='javascript:x'>A</a>",
        reason=f"Lý do {script} & <br>",
        signer_title="<u>Giám đốc</u>",
        signer_name="<em>B</em>",
        copies_to=("<s>Lưu</s>",),
    )
    html = render_html(letter)
    for raw in ("<script", "<img", "<i>", "<a ", "& <br>", "<u>", "<em>", "<s>", "<b>"):
        assert raw not in html, raw
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "1/XL-&#34;A&#34;" in html
    assert "&amp; &lt;br&gt;" in html
    assert "PHÒNG &lt;B&gt;A&lt;/B&gt; &amp; " in html
    text = visible_text(html)
    assert f"Lý do: Lý do {script} & <br>" in text
    assert f"Kính gửi: Ông/Bà Nguyễn {script}" in text


# --- PDF -------------------------------------------------------------------------------------


def test_pdf_is_a_pdf_with_the_vietnamese_text_intact() -> None:
    pdf = render_pdf(sample_letter())
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    for part in (
        NATION,
        MOTTO,
        "xin lỗi",
        "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT HỒ SƠ",
        "SỞ NÔNG NGHIỆP",
        "Số: 125/XL-VPĐKĐĐ",
        "Thành phố Hồ Chí Minh, ngày 18 tháng 11 năm 2026",
        "Kính gửi: Ông/Bà Nguyễn Thị Ngọc Ánh",
        CODE,
        RECEIVED,
        ORIGINAL_DUE,
        NEW_DUE,
        "Ủy ban nhân dân phường Bến Thành",
        "GIÁM ĐỐC",
        "Trần Văn Bình",
    ):
        assert part in text, part


def test_pdf_embeds_its_font_and_says_it_is_in_vietnamese() -> None:
    reader = PdfReader(io.BytesIO(render_pdf(sample_letter())))
    resources: Any = reader.pages[0]["/Resources"]  # pypdf's objects are loosely typed
    fonts = resources["/Font"]
    names = {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    assert len(names) == 4 and all("+Spectral" in name for name in names), names
    for font in fonts.values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"].get_object()
    catalog: Any = reader.trailer["/Root"]
    assert catalog["/Lang"] == "vi"
    assert reader.metadata is not None
    assert reader.metadata.title == "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết hồ sơ"


def test_pdf_is_deterministic() -> None:
    assert render_pdf(sample_letter()) == render_pdf(sample_letter())


def test_a_long_letter_flows_onto_a_second_page() -> None:
    reason = " ".join(["Hồ sơ phải lấy ý kiến của các cơ quan liên quan về quy hoạch."] * 30)
    pdf = render_pdf(sample_letter(reason=reason))
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 2
    assert pages[1].extract_text().split()[0] == "2"  # the page number, from page 2 on
    text = pdf_text(pdf)
    assert NEW_DUE in text and "Trần Văn Bình" in text


# --- SMS / Zalo ------------------------------------------------------------------------------


def test_sms_text_is_short_plain_and_says_what_matters() -> None:
    text = letter_text(sample_letter())
    assert len(text) <= SMS_MAX_CHARS
    assert not TAG.search(text) and "&lt;" not in text and "&amp;" not in text
    assert "\n" not in text
    for part in (
        "Văn phòng Đăng ký đất đai Thành phố xin lỗi Ông/Bà",
        f"hồ sơ {CODE} sẽ quá hạn giải quyết",
        "hẹn trả 16:30 ngày 19/11/2026",
        "Lý do: Hồ sơ cần xác minh nguồn gốc",
        "Ngày hẹn trả mới: 16:30 ngày 24/11/2026",
        "125/XL-VPĐKĐĐ",
    ):
        assert part in text, part
    assert "Nguyễn" not in text and "Lê Lợi" not in text


def test_sms_text_stays_short_when_the_fields_are_long() -> None:
    letter = sample_letter(
        reason="Chờ ý kiến của các sở, ngành liên quan. " * 40,
        issuing_unit={"code": "X.1", "name": "Ủy ban nhân dân " + "phường Bến Thành " * 20},
    )
    text = letter_text(letter)
    assert len(text) <= SMS_MAX_CHARS
    assert CODE in text
    assert "Ngày hẹn trả mới: 16:30 ngày 24/11/2026" in text
    assert "…" in text


def test_a_letter_round_trips_through_json() -> None:
    letter = sample_letter()
    again = ApologyLetter.model_validate_json(
        letter.model_dump_json(exclude={"lateness", "apology"})
    )
    assert again == letter
