"""The citizens' ratings: the form's rules, the units a rating counts for, the satisfaction
figures (per unit, once in the total, the period's ratings only), and how the pages show
them."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from urllib.parse import urlencode

from services.intake import indicators
from services.intake.pages import board_rows, lookup_result, render, satisfaction_rows
from services.intake.ratings import (
    ALREADY_RATED_MESSAGE,
    COMMENT_MAX,
    Rating,
    rated_units,
    rating_form,
    satisfaction_of,
)
from shared.events import (
    DossierRouted,
    DossierSentBack,
    DossierStatus,
    HandOffRecorded,
    SupplementRequested,
)
from tests.unit.conftest import hcmc
from tests.unit.test_pages import _board, _view

DESK, LAND, TAX, WARD = "000.00.00.H29", "000.41.01.H29", "000.20.01.H29", "000.00.10.H29"
CODE = "000.00.00.H29-261207-0001"
START, END = hcmc(2026, 12, 1), hcmc(2027, 1, 1)


def _body(**fields: str) -> bytes:
    return urlencode({"ma_ho_so": CODE.lower(), "ma_pin": " 123456 ", **fields}).encode()


def test_a_valid_form_gives_the_code_the_pin_the_score_and_the_comment() -> None:
    form = rating_form(_body(diem="4", y_kien="  Cán bộ nhiệt tình\r\nnhanh chóng "))
    assert (form.code, form.pin, form.score) == (CODE, "123456", 4)
    assert form.comment == "Cán bộ nhiệt tình\nnhanh chóng" and not form.errors
    assert rating_form(_body(diem="5", y_kien="   ")).comment is None  # optional


def test_each_invalid_field_is_named_in_its_error() -> None:
    missing = rating_form(_body())
    assert missing.score is None and missing.errors["diem"].startswith("Mức độ hài lòng")
    for wrong in ("0", "6", "4.5", "bốn", "-1"):
        form = rating_form(_body(diem=wrong))
        assert form.score is None and "từ 1 đến 5" in form.errors["diem"], wrong
    long = rating_form(_body(diem="3", y_kien="x" * (COMMENT_MAX + 1)))
    assert long.score == 3 and long.errors["y_kien"].startswith("Ý kiến")
    assert str(COMMENT_MAX + 1) in long.errors["y_kien"]
    assert not rating_form(_body(diem="3", y_kien="x" * COMMENT_MAX)).errors


def test_a_rating_counts_for_the_receiving_unit_and_every_unit_that_held_the_dossier() -> None:
    timeline = [
        {"event_type": DossierRouted.TYPE, "details": {"current_unit_code": LAND}},
        {"event_type": SupplementRequested.TYPE, "details": {"reason": "x"}},
        {
            "event_type": HandOffRecorded.TYPE,
            "details": {
                "from_unit_code": LAND,
                "current_unit_code": TAX,
                "current_unit_codes": [TAX, WARD],  # parallel steps
            },
        },
        {
            "event_type": DossierSentBack.TYPE,
            "details": {"from_unit_code": TAX, "to_unit_code": LAND},
        },
        {
            "event_type": HandOffRecorded.TYPE,
            "details": {"from_unit_code": LAND, "current_unit_code": DESK, "final": True},
        },
    ]
    assert rated_units(DESK, timeline) == (DESK, LAND, TAX, WARD)
    assert rated_units(DESK, []) == (DESK,)  # not yet routed: the counter alone


def _rating(score: int, *units: str, at: datetime | None = None) -> Rating:
    return Rating(CODE, score, units, at or hcmc(2026, 12, 10))


def test_satisfaction_per_unit_counts_each_rating_once_in_the_total() -> None:
    ratings = [
        _rating(5, DESK, LAND),
        _rating(4, DESK, LAND, LAND),  # a unit listed twice counts once
        _rating(2, DESK, TAX),
        _rating(1, DESK, at=hcmc(2026, 11, 30, 23, 59)),  # before the period
        _rating(1, DESK, at=END),  # after it
    ]
    computed = indicators.compute([], START, END, ratings)
    desk, land, tax = (satisfaction_of(computed.units[u]) for u in (DESK, LAND, TAX))
    assert (desk.ratings, desk.points, desk.satisfied) == (3, 11, 2)
    assert (land.ratings, land.average, land.satisfied_rate) == (2, 4.5, 1.0)
    assert (tax.ratings, tax.average, tax.satisfied_rate) == (1, 2.0, 0.0)
    total = satisfaction_of(computed.total)
    assert (total.ratings, total.average, total.satisfied_rate) == (3, 3.67, 0.667)
    # The threshold is configurable: from 5, only the 5 is satisfied.
    strict = indicators.compute([], START, END, ratings, satisfied_from=5)
    assert satisfaction_of(strict.total).satisfied == 1
    none = satisfaction_of(indicators.compute([], START, END).total)
    assert (none.ratings, none.average, none.satisfied_rate) == (0, None, None)


def test_the_board_shows_satisfaction_for_the_rated_units_and_the_total() -> None:
    computed = indicators.compute([], START, END, [_rating(5, DESK, LAND), _rating(3, DESK)])
    names = {DESK: "Trung tâm Phục vụ hành chính công", LAND: "Sở Tài nguyên và Môi trường"}
    rows, total = board_rows(computed, Counter(), names.__getitem__)
    html = _board(rows=rows, total=total, chart=[], satisfaction=satisfaction_rows(rows, total))
    assert 'id="hai-long-theo-don-vi"' in html
    assert '<td data-figure="ratings">2</td>' in html  # the desk, and the total
    assert '<td data-figure="average">4,00</td>' in html  # the desk: (5 + 3) / 2
    assert '<td data-figure="average">5,00</td>' in html  # the land office
    assert '<td data-figure="satisfied_rate">50,0%</td>' in html
    assert "Tỷ lệ hài lòng (4–5 điểm)" in html
    nothing = indicators.compute([], START, END)
    rows, total = board_rows(nothing, Counter(), str)
    assert "Chưa có lượt đánh giá nào trong kỳ này." in _board(
        rows=rows, total=total, chart=[], satisfaction=satisfaction_rows(rows, total)
    )


def test_the_result_page_offers_the_rating_form_until_the_dossier_is_rated() -> None:
    result = lookup_result(_view(DossierStatus.PROCESSING), [])
    form = render("lookup.html", result=result, code=CODE, error=None, rating=None, pin="123456")
    assert 'action="/tra-cuu/danh-gia"' in form and 'method="post"' in form
    assert '<input type="hidden" name="ma_pin" value="123456">' in form  # in the body only
    assert form.count('type="radio"') == 5 and 'for="diem-5"' in form and 'for="y_kien"' in form
    assert "<legend>" in form

    errors = {"diem": "Mức độ hài lòng: hãy chọn một mức từ 1 đến 5."}
    invalid = render(
        "lookup.html", result=result, code=CODE, error=None, pin="1", rating_errors=errors
    )
    assert errors["diem"] in invalid and 'aria-describedby="diem_loi"' in invalid

    rated = render(
        "lookup.html",
        result=result,
        code=CODE,
        error=None,
        pin="123456",
        rating=_rating(4, DESK),
        rating_error=ALREADY_RATED_MESSAGE,
    )
    assert 'data-score="4"' in rated and "4/5 — Hài lòng" in rated
    assert ALREADY_RATED_MESSAGE in rated
    assert "ma_pin" not in rated.split('id="danh-gia-dich-vu"')[1]  # no form once rated
