"""A dossier's journey, its pure parts: the pauses and consultations read from the timeline,
each bar's geometry and durations (on one scale, pauses subtracted from both what was held
and what was allotted), the control slip's rows, the letters, the trace link, and the page as
rendered (no applicant data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.intake.journey import (
    Interval,
    all_holdings,
    bars,
    consultations,
    control_slip,
    journey,
    letters,
    pauses,
    trace_link,
)
from services.intake.pages import render
from services.intake.schemas import (
    DossierView,
    NotifierOut,
    PlannedStepOut,
    Receipt,
    RoutingOut,
    StatusOut,
)
from shared.calendar import WorkingCalendar
from shared.events import (
    ApologyIssued,
    ConsultationReplied,
    ConsultationRequested,
    DossierClockPaused,
    DossierClockResumed,
    DossierRouted,
    DossierSentBack,
    DossierStatus,
    HandOffRecorded,
    SupplementRequested,
)
from tests.factories import APPLICANT, submission
from tests.unit.conftest import hcmc

T0 = hcmc(2026, 12, 1, 8, 0)
DESK, A, B = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
NAMES = {DESK: "Trung tâm", A: "Sở Công Thương", B: "Công an Thành phố"}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def wall_hours(start: datetime, end: datetime) -> float:
    """Every hour counts: the geometry is checked apart from the working calendar."""
    return (end - start).total_seconds() / 3600


def name(code: str | None) -> str:
    return NAMES.get(code or "", code or "—")


def event(kind: str, moment: datetime, **details: Any) -> dict[str, Any]:
    return {"event_type": kind, "occurred_at": moment, "details": details}


def holding(step: int, unit: str, start: float, end: float | None, due: float | None, **kw: Any):
    return {
        "step": step,
        "unit_code": unit,
        "unit_name": NAMES[unit],
        "official": kw.get("official"),
        "from": at(start),
        "to": None if end is None else at(end),
        "step_due_at": None if due is None else at(due),
        "timeliness": kw.get("timeliness"),
    }


def test_pauses_pair_each_pause_with_the_next_resume_and_an_open_one_runs_on() -> None:
    events = [
        event(DossierClockPaused.TYPE, at(2), paused_at=at(2).isoformat(), cause="supplement"),
        event(DossierClockResumed.TYPE, at(4), resumed_at=at(4).isoformat()),
        event(DossierClockResumed.TYPE, at(5), resumed_at=at(5).isoformat()),  # stray: ignored
        event(DossierClockPaused.TYPE, at(6), paused_at=at(6).isoformat(), cause="other"),
    ]
    found = pauses(events)
    assert [(p.start, p.end) for p in found] == [(at(2), at(4)), (at(6), None)]
    assert found[0].label == "Tạm dừng: chờ công dân bổ sung hồ sơ"
    assert found[1].label == "Tạm dừng" and found[1].until(at(9)) == at(9)


def test_a_bar_places_pauses_and_consultations_and_subtracts_pauses_from_both_sides() -> None:
    paused = [Interval(at(2), at(4), "pause"), Interval(at(30), at(31), "later pause")]
    consulted = [Interval(at(5), at(7), "Lấy ý kiến Công an")]
    units = bars(
        [holding(1, A, 0, 10, 8, timeliness="late"), holding(2, B, 10, None, 30)],
        paused,
        consulted,
        [],
        wall_hours,
        now=at(15),
    )
    assert [u.unit_name for u in units] == ["Sở Công Thương", "Công an Thành phố"]
    first, second = units[0].bars[0], units[1].bars[0]
    # Scale: the largest of held and due positions, here B's due 20 hours after its start.
    assert (first.held_hours, first.paused_hours, first.net_hours) == (10, 2, 8)
    assert first.allotted_hours == 6 and first.over  # due 8 hours in, 2 of them paused
    assert (first.held_width, first.due_x) == (50, 40)
    pause, consultation = first.marks
    assert (pause.kind, pause.x, pause.width) == ("pause", 10, 10)
    assert (consultation.kind, consultation.x, consultation.width) == ("consultation", 25, 10)
    assert first.verdict == "Quá hạn"
    assert "Lấy ý kiến Công an" in first.title and "tạm dừng 2,0 giờ" in first.title
    # Held now: 5 hours so far of its 20, the later pause not yet come: nothing marked.
    assert second.end is None and second.held_hours == 5 and second.held_width == 25
    assert second.allotted_hours == 20 and second.due_x == 100 and second.marks == ()
    assert second.verdict == "Đang giữ, trong hạn"
    assert not first.parallel and not second.parallel


def test_an_open_pause_runs_to_now_and_overlapping_holdings_are_parallel() -> None:
    units = bars(
        [holding(2, A, 0, None, 4), holding(3, B, 1, 3, 4)],
        [Interval(at(2), None, "pause")],
        [],
        [at(0)],
        wall_hours,
        now=at(6),
    )
    held, other = units[0].bars[0], units[1].bars[0]
    assert held.paused_hours == 4 and held.net_hours == 2 and held.allotted_hours == 0
    assert held.over and held.verdict == "Đang giữ, quá thời gian được giao"
    assert held.held_width == 100 and held.marks[0].width == round(100 * 4 / 6, 2)
    assert held.parallel and other.parallel
    assert held.after_send_back and not other.after_send_back
    assert other.paused_hours == 1  # the part of the pause within its holding


def test_bars_count_working_hours_of_the_calendar(calendar: WorkingCalendar) -> None:
    tuesday_8, wednesday_8 = hcmc(2026, 12, 1, 8, 0), hcmc(2026, 12, 2, 8, 0)
    row = {**holding(1, A, 0, 0, None), "from": tuesday_8, "to": wednesday_8}
    hours = calendar.working_time_between(tuesday_8, wednesday_8).total_seconds() / 3600

    def working(start: datetime, end: datetime) -> float:
        return calendar.working_time_between(start, end).total_seconds() / 3600

    (unit,) = bars([row], [], [], [], working, now=wednesday_8)
    assert 0 < unit.bars[0].held_hours == round(hours, 2) < 24


def test_a_send_back_keeps_the_earlier_pass_and_the_holding_it_ended() -> None:
    events = [
        event(DossierRouted.TYPE, at(0), routed_at=at(0).isoformat(), current_unit_code=A),
        event(
            HandOffRecorded.TYPE,
            at(5),
            step_sequence=1,
            from_unit_code=A,
            official="An",
            step_started_at=at(0).isoformat(),
            handed_off_at=at(5).isoformat(),
        ),
        event(
            DossierSentBack.TYPE,
            at(7),
            from_step_sequence=2,
            from_unit_code=B,
            official="Cúc",
            sent_back_at=at(7).isoformat(),
        ),
        event(
            HandOffRecorded.TYPE,
            at(9),
            step_sequence=1,
            from_unit_code=A,
            official="An",
            step_started_at=at(7).isoformat(),
            handed_off_at=at(9).isoformat(),
        ),
    ]
    timeline = [holding(1, A, 7, 9, 12, timeliness="early"), holding(2, B, 9, None, 20)]
    found = all_holdings(timeline, events, None, name)
    assert [(h["step"], h["unit_code"], h["from"], h["to"], h["pass"]) for h in found] == [
        (1, A, at(0), at(5), "redone"),
        (2, B, at(5), at(7), "sent_back"),
        (1, A, at(7), at(9), "last"),
        (2, B, at(9), None, "last"),
    ]
    units = bars(found, [], [], [at(7)], wall_hours, now=at(10))
    first_pass, last_pass = units[0].bars
    assert first_pass.verdict == "lượt trước, phải làm lại sau khi bị trả lại"
    assert first_pass.allotted_hours is None and first_pass.due_x is None
    assert last_pass.after_send_back and last_pass.verdict == "Trước hạn"
    assert units[1].bars[0].pass_note == "kết thúc bằng trả lại bước trước"


def test_every_unit_holding_a_parallel_step_gets_a_bar() -> None:
    routing = {
        "holding_unit_codes": [B, DESK],
        "current_step": 2,
        "steps": [
            {"sequence": 1, "unit_code": A, "finished_at": at(5), "due_at": at(6)},
            {"sequence": 2, "unit_code": B, "finished_at": None, "due_at": at(20)},
            {"sequence": 3, "unit_code": DESK, "finished_at": None, "due_at": at(15)},
            {"sequence": 4, "unit_code": A, "finished_at": None, "due_at": at(30)},
        ],
    }
    timeline = [holding(1, A, 0, 5, 6), holding(2, B, 5, None, 20)]
    found = all_holdings(timeline, [], routing, name)
    assert [(h["step"], h["unit_code"], h["from"], h["to"]) for h in found] == [
        (1, A, at(0), at(5)),
        (2, B, at(5), None),
        (3, DESK, at(5), None),
    ]
    assert found[2]["step_due_at"] == at(15)
    branches = [u.bars[0] for u in bars(found, [], [], [], wall_hours, now=at(8))[1:]]
    assert all(bar.parallel for bar in branches)
    # Not while one unit holds it: nothing is added.
    alone = {**routing, "holding_unit_codes": [B]}
    assert len(all_holdings(timeline, [], alone, name)) == 2


def test_the_control_slip_has_each_hand_over_with_its_verdict() -> None:
    events = [
        event(DossierRouted.TYPE, at(0), routed_at=at(0).isoformat(), current_unit_code=A),
        event(
            HandOffRecorded.TYPE,
            at(5),
            step_sequence=1,
            from_unit_code=A,
            to_unit_code=B,
            official="Nguyễn Văn An",
            handed_off_at=at(5).isoformat(),
        ),
        event(
            DossierSentBack.TYPE,
            at(7),
            from_unit_code=B,
            to_unit_code=A,
            official="Lê Thị Cúc",
            to_step_sequence=1,
            sent_back_at=at(7).isoformat(),
        ),
        event(
            HandOffRecorded.TYPE,
            at(9),
            step_sequence=3,
            from_unit_code=A,
            to_unit_code=A,
            official="Nguyễn Văn An",
            handed_off_at=at(9).isoformat(),
            final=True,
        ),
    ]
    steps = [
        {"sequence": 1, "finished_at": at(5), "timeliness": "early"},
        {"sequence": 3, "finished_at": at(9), "timeliness": "late"},
    ]
    rows = control_slip(events, steps, name, desk_officer="Trần Văn Bình", desk_unit=DESK)
    assert [(r.giving_unit, r.giving_official, r.receiving_unit, r.verdict) for r in rows] == [
        ("Trung tâm", "Trần Văn Bình", "Sở Công Thương", "—"),
        ("Sở Công Thương", "Nguyễn Văn An", "Công an Thành phố", "Trước hạn"),
        ("Công an Thành phố", "Lê Thị Cúc", "Sở Công Thương", "—"),
        ("Sở Công Thương", "Nguyễn Văn An", "Trung tâm", "Quá hạn"),
    ]
    assert rows[2].note == "Trả lại bước 1 để làm lại"
    assert "trả kết quả" in rows[3].note


def test_letters_with_their_kind_signer_and_timeliness_and_an_apology_still_owed() -> None:
    events = [
        event(SupplementRequested.TYPE, at(1), unit_code=A, official="An", request_number=1),
        event(ConsultationRequested.TYPE, at(2), requesting_unit_code=A, official="An"),
        event(ConsultationReplied.TYPE, at(3), unit_code=B, official="Cúc", late=True),
        event(
            ApologyIssued.TYPE,
            at(4),
            unit_code=B,
            signer_title="Giám đốc Công an Thành phố",
            letter_number="7/2026/XL-000.20.01.H29",
            timeliness="late",
            issued_at=at(4).isoformat(),
        ),
    ]
    found = letters(events, name, apology_due_by=None, apology_signer=None)
    assert [letter.kind.split(" (")[0] for letter in found] == [
        "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
        "Văn bản lấy ý kiến",
        "Văn bản trả lời ý kiến",
        "Phiếu xin lỗi và hẹn lại ngày trả kết quả",
    ]
    assert found[2].timeliness == "Quá hạn trả lời"
    assert found[3].signer == "Giám đốc Công an Thành phố"
    assert found[3].timeliness.startswith("Muộn") and found[3].number
    owed = letters([], name, apology_due_by=at(9), apology_signer="Giám đốc")
    assert "chưa ban hành" in owed[0].kind and owed[0].at == at(9)
    assert letters(events, name, apology_due_by=at(9), apology_signer="x")[-1].at == at(4)


def test_the_trace_link_is_zipkins_page_of_the_trace() -> None:
    assert trace_link("http://z:9411/zipkin/", "abc") == "http://z:9411/zipkin/traces/abc"
    assert trace_link("http://z:9411/zipkin", None) is None


def test_consultations_are_labelled_by_unit_and_state() -> None:
    rows: list[dict[str, Any]] = [
        {"unit_code": B, "unit_name": "Công an", "requested_at": at(1), "replied_at": at(2)},
        {"unit_code": A, "unit_name": None, "requested_at": at(1), "replied_at": None},
    ]
    first, second = consultations(rows)
    assert first.label == "Lấy ý kiến Công an" and first.end == at(2)
    assert second.label == f"Lấy ý kiến {A} (chưa trả lời)" and second.end is None


def test_the_page_shows_bars_slip_letters_and_trace_but_no_applicant_data() -> None:
    body = submission()
    receipt = Receipt.model_validate(
        {
            "dossier_code": "000.00.00.H29-261201-0001",
            "receiving_unit": {"code": DESK, "name": "Trung tâm"},
            "procedure": {"code": body["procedure_code"], "name": "Cấp Giấy chứng nhận"},
            "field": "Đất đai",
            "channel": "counter",
            "applicant": APPLICANT,
            "documents": body["documents"],
            "sets": 1,
            "received_at": at(0),
            "appointment_at": at(100),
            "processing_time": {"value": 10, "unit": "working_days"},
            "result_collection_place": "Trung tâm",
            "receiving_officer": "Trần Văn Bình",
            "lookup_pin": "123456",
        }
    )
    step = PlannedStepOut(
        sequence=1,
        unit_code=A,
        unit_name=NAMES[A],
        task="Thẩm định",
        due_at=at(8),
        started_at=at(0),
        finished_at=at(5),
        official="Nguyễn Văn An",
        timeliness="early",
    )
    view = DossierView(
        dossier_code=receipt.dossier_code,
        status=StatusOut.of(DossierStatus.PROCESSING),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        receipt=receipt,
        routing=RoutingOut(
            competent_unit_code=A,
            current_unit_code=B,
            current_step=2,
            holder_since=at(5),
            routed_at=at(0),
            steps=[step],
        ),
        # Owed if late; not overdue yet, so not listed as a letter.
        notifier=NotifierOut(
            signer_title="Giám đốc", apology_due_by=at(90), apology_issued_at=None
        ),
        updated_at=at(5),
    )
    timeline = {
        "events": [
            event(DossierRouted.TYPE, at(0), routed_at=at(0).isoformat(), current_unit_code=A),
            event(DossierClockPaused.TYPE, at(1), paused_at=at(1).isoformat(), cause="supplement"),
            event(DossierClockResumed.TYPE, at(2), resumed_at=at(2).isoformat()),
            event(
                HandOffRecorded.TYPE,
                at(5),
                step_sequence=1,
                from_unit_code=A,
                to_unit_code=B,
                official="Nguyễn Văn An",
                handed_off_at=at(5).isoformat(),
            ),
        ],
        "holdings": [holding(1, A, 0, 5, 8, official="Nguyễn Văn An", timeliness="early")],
        "consultations": [
            {"unit_code": B, "unit_name": NAMES[B], "requested_at": at(3), "replied_at": at(4)}
        ],
    }
    page = journey(view, timeline, name, wall_hours, at(6), "http://127.0.0.1:9411/zipkin")
    html = render("journey.html", principal=None, journey=page)
    assert 'href="http://127.0.0.1:9411/zipkin/traces/4bf92f3577b34da6a3ce929d0e0e4736"' in html
    assert 'role="img"' in html and "<title>Bước 1, Sở Công Thương" in html
    assert 'class="mark pause"' in html and 'class="mark consultation"' in html
    assert "Phiếu kiểm soát quá trình giải quyết hồ sơ (Mẫu 06)" in html
    assert "Trước hạn" in html and "Trần Văn Bình" in html
    assert "Mẫu 04" not in html
    for value in APPLICANT.values():
        assert str(value) not in html
    assert "123456" not in html
