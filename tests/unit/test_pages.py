"""The public pages' pure parts: the month, the due-soon count, the figures' rows, the look-up's
answer and the rendered HTML (Vietnamese, accessible, without the applicant's data)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.intake import indicators
from services.intake.indicators import DossierRecord, Fact
from services.intake.pages import (
    CHART_SERIES,
    NOT_FOUND_MESSAGE,
    board_rows,
    chart,
    due_soon_by_unit,
    is_cross_site,
    lookup_form,
    lookup_result,
    month_period,
    next_month,
    parse_month,
    previous_month,
    render,
    satisfaction_rows,
)
from services.intake.schemas import DeadlineOut, DossierView, NotifierOut, Receipt, StatusOut
from shared.events import DossierStatus, SupplementRequested
from tests.factories import APPLICANT, submission
from tests.unit.conftest import hcmc

UNIT, OTHER = "000.00.10.H29", "000.20.01.H29"
NOW = hcmc(2026, 12, 15, 10, 0)


def test_the_month_is_read_from_the_query_or_is_the_current_one_in_ho_chi_minh_city() -> None:
    assert parse_month("2026-11", NOW) == date(2026, 11, 1)
    # 31 December 2026 at 18:00 UTC is already 1 January 2027 in Ho Chi Minh City.
    assert parse_month(None, datetime(2026, 12, 31, 18, 0, tzinfo=UTC)) == date(2027, 1, 1)
    for wrong in ("2026-13", "11/2026", "2026-1", "x"):
        with pytest.raises(ValueError, match="NĂM-THÁNG"):
            parse_month(wrong, NOW)
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert previous_month(date(2027, 1, 1)) == date(2026, 12, 1)


def test_a_closed_month_ends_at_its_last_instant_and_the_current_one_now() -> None:
    assert month_period(date(2026, 11, 1), NOW) == (hcmc(2026, 11, 1), hcmc(2026, 12, 1))
    assert month_period(date(2026, 12, 1), NOW) == (hcmc(2026, 12, 1), NOW)
    future = month_period(date(2027, 2, 1), NOW)
    assert future[0] == future[1]  # empty: every figure is zero


def _started(at: datetime, due_at: datetime, due_soon_at: datetime) -> Fact:
    details = {"responsible_unit_code": UNIT, "due_at": due_at, "due_soon_at": due_soon_at}
    return Fact(at, indicators.STARTED, details)


def _record(code: str, received: datetime, *facts: Fact) -> DossierRecord:
    due = facts[0].details["due_at"]  # the receipt's appointment: the clock's first due time
    return DossierRecord(code, received, "counter", due, facts)


def test_due_soon_counts_dossiers_within_due_whose_warning_time_has_come() -> None:
    start, end = hcmc(2026, 12, 1), hcmc(2026, 12, 10, 12, 0)
    received = hcmc(2026, 12, 7, 8, 0)
    soon = _record("A", received, _started(received, end + timedelta(hours=3), end))
    later = _record(
        "B", received, _started(received, end + timedelta(days=5), end + timedelta(days=4))
    )
    late = _record("C", received, _started(received, end - timedelta(hours=1), end - timedelta(1)))
    # Resumed after a pause: the due-soon moment moved on, past the period's end.
    moved = _record(
        "D",
        received,
        _started(received, end, end - timedelta(hours=8)),
        Fact(hcmc(2026, 12, 8), indicators.PAUSED, {"paused_at": hcmc(2026, 12, 8)}),
        Fact(
            hcmc(2026, 12, 9),
            indicators.RESUMED,
            {"due_at": end + timedelta(days=2), "due_soon_at": end + timedelta(days=1)},
        ),
    )
    assert due_soon_by_unit([soon, later, late, moved], start, end) == Counter({UNIT: 1})


def _figures(**values: int) -> dict[str, int]:
    return {name: values.get(name, 0) for name in indicators.FIGURES}


def _board(**extra: Any) -> str:
    computed = indicators.Indicators(
        units={
            UNIT: _figures(received=7, carried_over=2, done_early=3, done_late=1, done_on_time=0),
            OTHER: _figures(received=1, in_progress_past_due=1, apologies_missing=1),
        },
        total=_figures(
            received=8,
            carried_over=2,
            done_early=3,
            done_late=1,
            in_progress_past_due=1,
            apologies_missing=1,
        ),
    )
    names = {UNIT: "Sở Công Thương", OTHER: "Công an Thành phố"}
    rows, total = board_rows(computed, Counter(), names.__getitem__)
    context: dict[str, Any] = {
        "month": date(2026, 11, 1),
        "previous": date(2026, 10, 1),
        "following": date(2026, 12, 1),
        "start": hcmc(2026, 11, 1),
        "end": hcmc(2026, 12, 1),
        "rows": rows,
        "total": total,
        "officials": [
            {"unit_code": UNIT, "unit_name": "Sở Công Thương", "official": "Lê Văn Tám"}
            | {"steps": 4, "late": 1}
        ],
        "chart": chart(rows),
        "legend": CHART_SERIES,
        "satisfaction": satisfaction_rows(rows, total),
        "satisfied_from": 4,
    }
    context.update(extra)
    return render("board.html", **context)


def test_the_board_renders_each_unit_its_figures_the_chart_and_the_late_officials() -> None:
    html = _board()
    assert '<html lang="vi">' in html
    assert "Bảng tiến độ giải quyết hồ sơ tháng 11/2026" in html
    assert "Sở Công Thương" in html and "Công an Thành phố" in html
    assert '<td data-figure="received">7</td>' in html
    assert '<td data-figure="carried_over">2</td>' in html
    assert '<td data-figure="late_rate">25,0%</td>' in html  # 1 late of 4 done
    assert '<td data-figure="late_rate">—</td>' in html  # nothing done: no rate
    assert "<title>Xong trước hạn: 3</title>" in html
    # The largest unit's bar fills the width; the other is drawn to the same scale.
    assert 'x="0.00" y="0" width="75.00"' in html  # 3 early of 4
    assert 'x="0.00" y="0" width="25.00"' in html  # OTHER's one dossier past due
    assert 'aria-label="Công an Thành phố: Đang giải quyết quá hạn: 1"' in html
    assert "Lê Văn Tám" in html
    assert 'for="thang"' in html  # the month picker is labelled
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org", "")


def test_an_empty_month_says_so() -> None:
    computed = indicators.Indicators(units={}, total=_figures())
    rows, total = board_rows(computed, Counter(), str)
    html = _board(
        rows=rows,
        total=total,
        officials=[],
        chart=chart(rows),
        following=None,
        satisfaction=satisfaction_rows(rows, total),
    )
    assert "Chưa có hồ sơ nào trong kỳ này." in html
    assert "Không có bước xử lý nào trễ hạn trong kỳ." in html


def _view(status: DossierStatus, **parts: Any) -> DossierView:
    body = submission()
    receipt = Receipt.model_validate(
        {
            "dossier_code": "000.00.00.H29-261207-0001",
            "receiving_unit": {
                "code": "000.00.00.H29",
                "name": "Trung tâm Phục vụ hành chính công",
            },
            "procedure": {"code": body["procedure_code"], "name": "Đăng ký biến động đất đai"},
            "field": "Đất đai",
            "channel": "counter",
            "applicant": APPLICANT,
            "documents": body["documents"],
            "sets": 1,
            "received_at": hcmc(2026, 12, 7, 8, 0),
            "appointment_at": hcmc(2026, 12, 21, 17, 0),
            "processing_time": {"value": 10, "unit": "working_days"},
            "result_collection_place": "Trung tâm Phục vụ hành chính công",
            "receiving_officer": "Trần Văn Bình",
            "lookup_pin": "123456",
        }
    )
    return DossierView(
        dossier_code=receipt.dossier_code,
        status=StatusOut.of(status),
        receipt=receipt,
        updated_at=receipt.received_at,
        **parts,
    )


def test_the_look_up_shows_what_the_citizen_must_bring_and_the_apology_but_no_personal_data() -> (
    None
):
    deadline = DeadlineOut(
        started_at=hcmc(2026, 12, 7, 8, 0),
        due_at=hcmc(2026, 12, 23, 17, 0),
        due_soon_at=None,
        paused_since=hcmc(2026, 12, 9, 9, 0),
        overdue_at=None,
        completed_at=None,
        timeliness=None,
        supplement_due_at=hcmc(2026, 12, 16, 17, 0),
    )
    notifier = NotifierOut(
        signer_title=None, apology_due_by=None, apology_issued_at=hcmc(2026, 12, 8, 9, 0)
    )
    view = _view(DossierStatus.SUPPLEMENT_REQUESTED, deadline=deadline, notifier=notifier)
    timeline = [
        {
            "event_type": SupplementRequested.TYPE,
            "details": {
                "reason": "Thiếu bản sao giấy tờ",
                "missing_documents": ["Bản sao CCCD", "Sơ đồ thửa đất"],
            },
        }
    ]
    result = lookup_result(view, timeline)
    assert result.appointment_at == deadline.due_at  # moved on from the receipt's
    html = render("lookup.html", result=result, code=view.dossier_code, error=None)
    assert "Yêu cầu bổ sung hồ sơ" in html
    assert "Bản sao CCCD" in html and "Sơ đồ thửa đất" in html
    assert "16/12/2026 17:00" in html  # the supplement's due time, in Ho Chi Minh City's time
    assert "23/12/2026 17:00" in html
    assert "08/12/2026 09:00" in html  # the apology
    assert 'for="ma_pin"' in html and 'type="password"' in html and 'method="post"' in html
    for value in APPLICANT.values():
        assert value not in html
    assert "123456" not in html  # nor the PIN


def test_the_look_up_without_supplement_or_apology() -> None:
    result = lookup_result(_view(DossierStatus.PROCESSING), [])
    assert result.awaited is None and result.apology_issued_at is None
    assert result.appointment_at == hcmc(2026, 12, 21, 17, 0)
    html = render("lookup.html", result=result, code=result.dossier_code, error=None)
    assert "Đang giải quyết" in html and "Cần bổ sung" not in html


def test_not_found_is_an_alert() -> None:
    html = render("lookup.html", result=None, code="X", error=NOT_FOUND_MESSAGE)
    assert 'role="alert"' in html and NOT_FOUND_MESSAGE in html


def test_the_form_is_read_from_the_body_and_cross_site_posts_are_recognised() -> None:
    body = b"ma_ho_so=+000.00.00.h29-261207-0001+&ma_pin=%20ab12%20"
    assert lookup_form(body) == ("000.00.00.H29-261207-0001", "ab12")
    assert lookup_form(b"") == ("", "")
    assert is_cross_site({"sec-fetch-site": "cross-site"})
    assert not is_cross_site({"sec-fetch-site": "same-origin"})
    assert not is_cross_site({})
