"""The "stuck now" page's pure parts: a row's durations in the unit's working hours and in wall
time, the grouping by unit (most overdue first), the filters and their scope, the trace link,
and the rendered table (no applicant's data, the script only where it belongs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.intake.pages import render
from services.intake.stuck import (
    Filters,
    StuckStep,
    StuckView,
    choose_filters,
    clock_time,
    group_by_unit,
    stuck_step,
    trace_id_of,
    wall_time,
    working_hours,
)
from shared.auth import Principal, Role
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from tests.factories import APPLICANT
from tests.unit.conftest import hcmc

CONG_THUONG, CONG_AN, DESK = "000.00.10.H29", "000.20.01.H29", "000.00.00.H29"
INTER_AGENCY = "2.000647"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
NOW = hcmc(2026, 12, 3, 9, 0)  # a Thursday, 09:00


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dossier_code": "000.00.00.H29-261201-0001",
        "step_sequence": 2,
        "unit_code": CONG_AN,
        "task": "Xác minh",
        "due_at": hcmc(2026, 12, 2, 16, 0),
        "procedure_code": INTER_AGENCY,
        "submission_traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
        "since": hcmc(2026, 12, 1, 8, 0),
        "official": "canbo.catp@tphcm.gov.vn",
        "consulted_unit_code": None,
        "reply_due_at": None,
    }
    return values | overrides


def step(code: str, unit: str, overdue_minutes: int, wall_minutes: int | None = None) -> StuckStep:
    return StuckStep(
        dossier_code=code,
        step_sequence=1,
        procedure_code=INTER_AGENCY,
        procedure_name="thủ tục",
        unit_code=unit,
        task=None,
        official=None,
        since=None,
        due_at=NOW - timedelta(minutes=wall_minutes or overdue_minutes),
        held_working=None,
        held_wall=None,
        overdue_working=timedelta(minutes=overdue_minutes),
        overdue_wall=timedelta(minutes=wall_minutes or overdue_minutes),
        consulting=None,
        trace_id=None,
    )


def principal(*roles: Role, unit: str | None = None) -> Principal:
    return Principal("s", "canbo", "Nguyễn Văn Hai", frozenset(roles), unit)


def test_a_row_counts_held_and_overdue_time_in_the_units_working_hours_and_in_wall_time(
    catalog: Catalog, calendar: WorkingCalendar
) -> None:
    stuck = stuck_step(row(), NOW, calendar, catalog)
    # Held from Tuesday 08:00 to Thursday 09:00: 7 h Tuesday (08:00–17:00 less the lunch
    # break), 8 h Wednesday, 2 h Thursday (07:00–09:00).
    assert stuck.held_working == timedelta(hours=17)
    assert stuck.held_wall == timedelta(days=2, hours=1)
    # Due Wednesday 16:00: 1 h Wednesday and 2 h Thursday.
    assert stuck.overdue_working == timedelta(hours=3)
    assert stuck.overdue_wall == timedelta(hours=17)
    assert stuck.procedure_name.startswith("Cấp Giấy chứng nhận cửa hàng")
    assert stuck.trace_id == TRACE and stuck.consulting is None


def test_a_row_names_the_consultation_it_awaits_and_whether_its_reply_is_overdue(
    catalog: Catalog, calendar: WorkingCalendar
) -> None:
    awaited = row(consulted_unit_code=CONG_THUONG, reply_due_at=hcmc(2026, 12, 2, 17, 0))
    consulting = stuck_step(awaited, NOW, calendar, catalog).consulting
    assert consulting is not None
    assert (consulting.unit_name, consulting.overdue) == ("Sở Công Thương", True)
    later = row(consulted_unit_code=CONG_THUONG, reply_due_at=hcmc(2026, 12, 4, 17, 0))
    consulting = stuck_step(later, NOW, calendar, catalog).consulting
    assert consulting is not None and not consulting.overdue


def test_a_step_without_a_known_start_shows_no_held_time(
    catalog: Catalog, calendar: WorkingCalendar
) -> None:
    stuck = stuck_step(row(since=None), NOW, calendar, catalog)
    assert stuck.held_working is None and stuck.held_wall is None
    assert working_hours(stuck.held_working) == "—"


def test_units_come_in_the_order_of_their_most_overdue_step_and_so_do_their_steps() -> None:
    steps = [
        step("A-1", CONG_THUONG, 60),
        step("B-1", CONG_AN, 30),
        step("A-2", CONG_THUONG, 600),
        step("B-2", CONG_AN, 900),
        step("C-1", DESK, 120),
    ]
    groups = group_by_unit(steps, {CONG_THUONG: 2, CONG_AN: 5, DESK: 1}, lambda code: code)
    assert [g.unit_code for g in groups] == [CONG_AN, CONG_THUONG, DESK]
    assert [[s.dossier_code for s in g.steps] for g in groups] == [
        ["B-2", "B-1"],
        ["A-2", "A-1"],
        ["C-1"],
    ]
    # The count is of all the unit's stuck steps, shown or not (the page shows the first N).
    assert [g.count for g in groups] == [5, 2, 1]


def test_equal_working_time_past_due_falls_back_to_wall_time() -> None:
    # Both past due by 30 working minutes; one of them over a night as well.
    steps = [step("A-1", CONG_AN, 30, 30), step("A-2", CONG_AN, 30, 30 + 14 * 60)]
    [group] = group_by_unit(steps, {}, lambda code: code)
    assert [s.dossier_code for s in group.steps] == ["A-2", "A-1"]
    assert group.count == 2


def test_durations_read_as_hours_and_minutes() -> None:
    assert working_hours(timedelta(hours=13, minutes=5, seconds=59)) == "13 giờ 05 phút"
    assert working_hours(timedelta(minutes=7)) == "7 phút"
    assert wall_time(timedelta(days=2, hours=3, minutes=40)) == "2 ngày 3 giờ"
    assert wall_time(timedelta(hours=5, minutes=20)) == "5 giờ 20 phút"
    assert wall_time(timedelta(minutes=12)) == "12 phút"
    assert clock_time(hcmc(2026, 12, 1, 8, 30)) == "08:30:00 ngày 01/12/2026"


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", TRACE),
        (None, None),
        ("", None),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),
        ("00-not-hex-01", None),
        ("00-" + "z" * 32 + "-00f067aa0ba902b7-01", None),
    ],
)
def test_the_trace_link_uses_the_submissions_trace_id(
    traceparent: str | None, expected: str | None
) -> None:
    assert trace_id_of(traceparent) == expected


def test_an_operator_filters_by_any_unit_procedure_or_field(catalog: Catalog) -> None:
    operator = principal(Role.OPERATOR)
    filters = choose_filters(operator, catalog, CONG_AN, "", "Lý lịch tư pháp")
    assert (filters.unit_code, filters.forced_unit) == (CONG_AN, False)
    assert filters.procedure_codes(catalog) == ["2.000488", "2.000505", "2.000522"]
    assert choose_filters(operator, catalog, "", "", "").procedure_codes(catalog) is None
    one = choose_filters(operator, catalog, "", INTER_AGENCY, "")
    assert one.procedure_codes(catalog) == [INTER_AGENCY]
    assert filters.query() == "don_vi=000.20.01.H29&linh_vuc=L%C3%BD+l%E1%BB%8Bch+t%C6%B0+ph%C3%A1p"
    assert one.query_for_unit(DESK) == "don_vi=000.00.00.H29&thu_tuc=2.000647"


def test_an_official_of_a_unit_sees_their_own_unit_whatever_the_form_says(
    catalog: Catalog,
) -> None:
    for role in (Role.UNIT_OFFICER, Role.UNIT_HEAD, Role.COUNTER_OFFICER):
        filters = choose_filters(principal(role, unit=CONG_THUONG), catalog, CONG_AN, "", "")
        assert (filters.unit_code, filters.forced_unit) == (CONG_THUONG, True)
        assert "don_vi" not in filters.query()  # forced: the form does not carry it
    with pytest.raises(PermissionError, match="không thuộc đơn vị nào"):
        choose_filters(principal(Role.UNIT_OFFICER), catalog, "", "", "")


@pytest.mark.parametrize(
    ("unit", "procedure", "field", "message"),
    [
        ("nope", "", "", "đơn vị mã “nope”"),
        ("", "9.999999", "", "thủ tục mã “9.999999”"),
        ("", "", "Thiên văn", "lĩnh vực “Thiên văn”"),
    ],
)
def test_an_unknown_filter_value_is_named(
    catalog: Catalog, unit: str, procedure: str, field: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        choose_filters(principal(Role.OPERATOR), catalog, unit, procedure, field)


def _context(view: StuckView, forced: bool = False) -> dict[str, Any]:
    return {
        "filters": Filters(CONG_AN if forced else None, None, None, forced_unit=forced),
        "view": view,
        "units": [],
        "procedures": [],
        "fields": [],
        "forced": forced,
        "scope_unit": "Công an Thành phố Hồ Chí Minh",
        "journey_path": "/van-hanh/ho-so",
        "stuck_path": "/van-hanh/ton-dong",
        "table_path": "/van-hanh/ton-dong/bang",
        "script_path": "/giao-dien/ton-dong.js",
        "trace_ui": "http://127.0.0.1:9411/zipkin",
        "refresh_seconds": 30.0,
        "working_hours": working_hours,
        "wall_time": wall_time,
        "clock_time": clock_time,
        "principal": None,
        "error": None,
    }


def test_the_table_shows_the_unit_holder_overdue_time_and_trace_and_no_applicant(
    catalog: Catalog, calendar: WorkingCalendar
) -> None:
    stuck = stuck_step(row(), NOW, calendar, catalog)
    groups = group_by_unit([stuck], {CONG_AN: 3}, lambda _: "Công an Thành phố Hồ Chí Minh")
    view = StuckView(groups, [(CONG_AN, "Công an TP", 3)], 1, 3, NOW)
    html = render("stuck.html", **_context(view))
    assert 'href="/van-hanh/ho-so/000.00.00.H29-261201-0001"' in html
    assert f'href="http://127.0.0.1:9411/zipkin/traces/{TRACE}"' in html
    assert "canbo.catp@tphcm.gov.vn" in html and "3 giờ 00 phút làm việc" in html
    assert "Đang hiện 1 trong 3" in html
    assert '<script src="/giao-dien/ton-dong.js" defer></script>' in html
    assert "<script>" not in html  # nothing inline: the CSP forbids it
    assert 'id="tu-cap-nhat" class="live" hidden' in html  # shown by the script only
    for value in (APPLICANT["full_name"], APPLICANT["id_number"], APPLICANT["phone"]):
        assert value not in html
    fragment = render("stuck_table.html", **_context(view))
    assert "<html" not in fragment and "Cập nhật lúc" in fragment and "09:00:00" in fragment


def test_an_official_of_a_unit_is_told_the_page_shows_their_unit_only(
    catalog: Catalog,
) -> None:
    view = StuckView([], [], 0, 0, NOW)
    html = render("stuck.html", **_context(view, forced=True))
    assert "Bạn chỉ xem được hồ sơ do đơn vị mình giữ" in html
    assert 'name="don_vi"' not in html
    assert "Không có hồ sơ nào quá thời gian được giao" in html


def test_the_public_pages_still_run_no_script() -> None:
    html = render("lookup.html", result=None, error=None, code="")
    assert "<script" not in html
