"""A dossier's journey, for officials (`/van-hanh/ho-so/{code}`): a time bar per unit (time held
against time allotted, in working hours, with the clock's pauses and the consultations marked),
the processing control slip (Mẫu 06, Thông tư 01/2018/TT-VPCP) as a table, the letters intake
knows of from the events it projects, and a link to the submission's trace.

Who may open it is the API's rule for reading the dossier (services/intake/api.py). The page
shows no applicant data (name, ID, phone, address), so reading it is not a personal-data
access and is not logged as one. Everything below the router is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.responses import HTMLResponse

from services.intake.api import DossierReader
from services.intake.office import JOURNEY_PATH, OfficePages
from services.intake.pages import STATUS_LABELS
from services.intake.reports import Reports
from services.intake.schemas import DossierView
from shared.auth import Forbidden, Principal
from shared.events import (
    DOSSIER_CODE_PATTERN,
    ApologyIssued,
    ApologyTimeliness,
    ConsultationReplied,
    ConsultationRequested,
    DossierClockPaused,
    DossierClockResumed,
    DossierRefused,
    DossierRouted,
    DossierSentBack,
    DossierStatus,
    HandOffRecorded,
    ProcessingStopped,
    ResultReturned,
    SupplementRequested,
)

Hours = Callable[[datetime, datetime], float]  # working hours between two moments

PAUSE_LABELS = {
    "supplement": "Tạm dừng: chờ công dân bổ sung hồ sơ",
    "financial_obligation": "Tạm dừng: chờ thực hiện nghĩa vụ tài chính",
    "consultation": "Tạm dừng: chờ ý kiến của đơn vị được hỏi",
}
TIMELINESS_LABELS = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}
NO_VERDICT = "—"


# --- the pieces, from the timeline (pure) ------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime | None  # None: still running
    label: str

    def until(self, now: datetime) -> datetime:
        return self.end or now


def pauses(events: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """The deadline clock's pauses, each from its DossierClockPaused to the next resume."""
    found: list[Interval] = []
    open_at: datetime | None = None
    cause = ""
    for event in events:
        details = _details(event)
        if event["event_type"] == DossierClockPaused.TYPE and open_at is None:
            open_at = _instant(details.get("paused_at", event["occurred_at"]))
            cause = str(details.get("cause", ""))
        elif event["event_type"] == DossierClockResumed.TYPE and open_at is not None:
            resumed = _instant(details.get("resumed_at", event["occurred_at"]))
            found.append(Interval(open_at, resumed, PAUSE_LABELS.get(cause, "Tạm dừng")))
            open_at = None
    if open_at is not None:
        found.append(Interval(open_at, None, PAUSE_LABELS.get(cause, "Tạm dừng")))
    return found


def consultations(rows: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """Each consultation, from its request to the reply (or still awaited)."""
    return [
        Interval(
            _instant(row["requested_at"]),
            _maybe_instant(row.get("replied_at")),
            f"Lấy ý kiến {row.get('unit_name') or row['unit_code']}"
            + (" (trả lời muộn)" if row.get("late") else "")
            + ("" if row.get("replied_at") else " (chưa trả lời)"),
        )
        for row in rows
    ]


def all_holdings(
    holdings: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    routing: Mapping[str, Any] | None,
    unit_name: Callable[[str | None], str],
) -> list[dict[str, Any]]:
    """The timeline's holdings (each step's last pass, and the one held now), with what a
    send-back or parallel steps leave out of them:

    - the earlier passes of steps a send-back reopened (their hand-offs are on the timeline);
    - the holding that ended in a send-back: from the hand-over before it to the send-back;
    - while parallel steps are open, each unit holding one besides the holding shown now
      (they started together, when the dossier was last handed over)."""
    found = [{**h, "pass": "last"} for h in holdings]
    last_passes = {(int(h["step"]), _maybe_instant(h.get("to"))) for h in holdings}
    handed_over: datetime | None = None
    for event in events:
        kind, details = event["event_type"], _details(event)
        if kind == HandOffRecorded.TYPE:
            step, end = int(details["step_sequence"]), _instant(details["handed_off_at"])
            if (step, end) not in last_passes:
                found.append(
                    _extra(step, details.get("from_unit_code"), unit_name, "redone")
                    | {
                        "official": details.get("official"),
                        "from": _instant(details["step_started_at"]),
                        "to": end,
                    }
                )
            handed_over = end
        elif kind == DossierSentBack.TYPE:
            end = _instant(details["sent_back_at"])
            if handed_over is not None:
                found.append(
                    _extra(
                        int(details["from_step_sequence"]),
                        details.get("from_unit_code"),
                        unit_name,
                        "sent_back",
                    )
                    | {"official": details.get("official"), "from": handed_over, "to": end}
                )
            handed_over = end
        elif kind == DossierRouted.TYPE:
            handed_over = _instant(details.get("routed_at", event["occurred_at"]))
    held_now = [h for h in found if h.get("to") is None]
    if routing and held_now and len(routing.get("holding_unit_codes") or ()) > 1:
        shown = {h.get("unit_code") for h in held_now}
        for unit in routing["holding_unit_codes"]:
            open_step: Mapping[str, Any] | None = next(
                (
                    s
                    for s in routing["steps"]
                    if s["unit_code"] == unit
                    and s.get("finished_at") is None
                    and s["sequence"] >= (routing.get("current_step") or 1)
                ),
                None,
            )
            if unit in shown or open_step is None:
                continue
            found.append(
                _extra(int(open_step["sequence"]), unit, unit_name, "last")
                | {"from": held_now[0]["from"], "to": None, "step_due_at": open_step.get("due_at")}
            )
    return sorted(found, key=lambda h: (_instant(h["from"]), int(h["step"])))


def _extra(
    step: int, unit: str | None, unit_name: Callable[[str | None], str], kind: str
) -> dict[str, Any]:
    return {
        "step": step,
        "unit_code": unit,
        "unit_name": unit_name(unit),
        "official": None,
        "step_due_at": None,
        "timeliness": None,
        "pass": kind,
    }


# --- the bars (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """A pause or consultation on a bar, in percent of the page's common scale."""

    kind: str  # "pause" or "consultation"
    label: str
    x: float
    width: float
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class HoldingBar:
    step: int
    unit_name: str
    official: str | None
    start: datetime
    end: datetime | None  # None: held now
    held_hours: float  # working hours from start to end (or now), pauses included
    paused_hours: float  # of which the clock was paused
    allotted_hours: float | None  # the step's time, pauses not counted; None: no due time yet
    timeliness: str | None
    held_width: float  # percent of the common scale
    due_x: float | None
    marks: tuple[Mark, ...]
    parallel: bool = False
    after_send_back: bool = False
    pass_kind: str = "last"  # "redone": a send-back reopened it; "sent_back": it ended so

    @property
    def pass_note(self) -> str | None:
        if self.pass_kind == "redone":
            return "lượt trước, phải làm lại sau khi bị trả lại"
        if self.pass_kind == "sent_back":
            return "kết thúc bằng trả lại bước trước"
        return None

    @property
    def net_hours(self) -> float:
        return round(self.held_hours - self.paused_hours, 2)

    @property
    def net_text(self) -> str:
        return hours_text(self.net_hours)

    @property
    def paused_text(self) -> str:
        return hours_text(self.paused_hours)

    @property
    def allotted_text(self) -> str:
        return NO_VERDICT if self.allotted_hours is None else hours_text(self.allotted_hours)

    @property
    def over(self) -> bool:
        return self.allotted_hours is not None and self.net_hours > self.allotted_hours

    @property
    def verdict(self) -> str:
        if self.timeliness:
            return TIMELINESS_LABELS.get(self.timeliness, self.timeliness)
        if self.end is None:
            return "Đang giữ, quá thời gian được giao" if self.over else "Đang giữ, trong hạn"
        return self.pass_note or NO_VERDICT

    @property
    def title(self) -> str:
        """The bar's text, for whoever cannot see it: the same figures as the table."""
        allotted = (
            f"được giao {hours_text(self.allotted_hours)}"
            if self.allotted_hours is not None
            else "chưa có thời gian được giao"
        )
        parts = [
            f"Bước {self.step}, {self.unit_name}: giữ {hours_text(self.net_hours)} làm việc,"
            f" {allotted}"
        ]
        if self.paused_hours:
            parts.append(f"tạm dừng {hours_text(self.paused_hours)}")
        parts.extend(mark.label for mark in self.marks if mark.kind == "consultation")
        parts.append(self.verdict)
        return "; ".join(parts)


@dataclass(frozen=True)
class UnitBars:
    unit_name: str
    bars: tuple[HoldingBar, ...]


def hours_text(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") + " giờ"


def overlap(hours: Hours, start: datetime, end: datetime, a: datetime, b: datetime) -> float:
    """Working hours of [a, b] that fall within [start, end]."""
    lo, hi = max(start, a), min(end, b)
    return hours(lo, hi) if hi > lo else 0.0


def bars(
    holdings: Iterable[Mapping[str, Any]],
    paused: list[Interval],
    consulted: list[Interval],
    sent_back_at: Iterable[datetime],
    hours: Hours,
    now: datetime,
) -> list[UnitBars]:
    """One bar per holding (from the timeline's `holdings`), grouped by unit in the order the
    units first held the dossier, on one scale for the whole page so that lengths compare.
    Allotted time is the step's, pauses not counted: a pause moves the due time on by its
    own working time, so it is subtracted from both what was held and what was allotted."""
    sent_back = set(sent_back_at)
    drafts: list[dict[str, Any]] = []
    for holding in holdings:
        start = _instant(holding["from"])
        end = _maybe_instant(holding.get("to"))
        until = end or now
        due = _maybe_instant(holding.get("step_due_at"))
        held = hours(start, until) if until > start else 0.0
        paused_hours = sum(overlap(hours, start, until, p.start, p.until(now)) for p in paused)
        due_at_hours = hours(start, due) if due is not None and due > start else None
        if due is not None and due_at_hours is None:
            due_at_hours = 0.0
        drafts.append(
            {
                "holding": holding,
                "start": start,
                "end": end,
                "until": until,
                "held": held,
                "paused": round(paused_hours, 2),
                "due_hours": due_at_hours,
            }
        )
    scale = (
        max([d["held"] for d in drafts] + [d["due_hours"] or 0.0 for d in drafts] + [0.0]) or 1.0
    )

    def percent(value: float) -> float:
        return round(100 * min(max(value, 0.0), scale) / scale, 2)

    grouped: dict[str, list[HoldingBar]] = {}
    for draft in drafts:
        holding, start, until = draft["holding"], draft["start"], draft["until"]
        marks: list[Mark] = []
        for kind, intervals in (("pause", paused), ("consultation", consulted)):
            for interval in intervals:
                lo, hi = max(start, interval.start), min(until, interval.until(now))
                if hi < lo or (hi == lo and kind == "pause"):
                    continue
                x = percent(hours(start, lo) if lo > start else 0.0)
                marks.append(
                    Mark(
                        kind,
                        interval.label,
                        x,
                        percent(hours(start, hi) if hi > start else 0.0) - x,
                        interval.start,
                        interval.end,
                    )
                )
        due_hours = draft["due_hours"]
        others = [d for d in drafts if d is not draft]
        name = holding.get("unit_name") or holding.get("unit_code") or "—"
        grouped.setdefault(name, []).append(
            HoldingBar(
                step=int(holding["step"]),
                unit_name=name,
                official=holding.get("official"),
                start=start,
                end=draft["end"],
                held_hours=round(draft["held"], 2),
                paused_hours=draft["paused"],
                allotted_hours=(
                    None if due_hours is None else round(max(due_hours - draft["paused"], 0), 2)
                ),
                timeliness=holding.get("timeliness"),
                held_width=percent(draft["held"]),
                due_x=None if due_hours is None else percent(due_hours),
                marks=tuple(marks),
                parallel=any(o["start"] < until and start < o["until"] for o in others),
                after_send_back=start in sent_back,
                pass_kind=str(holding.get("pass", "last")),
            )
        )
    return [UnitBars(name, tuple(held)) for name, held in grouped.items()]


# --- the control slip, Mẫu 06 (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class SlipRow:
    """One hand-over of the dossier: who gave it, who received it, when, and the verdict on
    the step it ends (the deadline service's StepCompleted)."""

    at: datetime
    giving_unit: str
    giving_official: str | None
    receiving_unit: str
    receiving_official: str | None
    verdict: str
    note: str = ""


def control_slip(
    events: Iterable[Mapping[str, Any]],
    steps: Iterable[Mapping[str, Any]],
    unit_name: Callable[[str | None], str],
    *,
    desk_officer: str | None,
    desk_unit: str,
) -> list[SlipRow]:
    """From the events intake projected: routing's first hand-over from the desk, each hand-off
    and send-back, the result's return. A step's verdict is known for its last pass (a
    send-back reopens the steps: their earlier passes keep no verdict)."""
    verdicts = {
        (int(s["sequence"]), _maybe_instant(s.get("finished_at"))): s.get("timeliness")
        for s in steps
    }
    rows: list[SlipRow] = []
    for event in events:
        kind, details = event["event_type"], _details(event)
        if kind == DossierRouted.TYPE:
            rows.append(
                SlipRow(
                    _instant(details.get("routed_at", event["occurred_at"])),
                    unit_name(desk_unit),
                    desk_officer,
                    unit_name(details.get("current_unit_code")),
                    None,
                    NO_VERDICT,
                    "Chuyển hồ sơ đến đơn vị giải quyết",
                )
            )
        elif kind == HandOffRecorded.TYPE:
            at = _instant(details["handed_off_at"])
            verdict = verdicts.get((int(details["step_sequence"]), at))
            final = bool(details.get("final"))
            rows.append(
                SlipRow(
                    at,
                    unit_name(details.get("from_unit_code")),
                    details.get("official"),
                    unit_name(desk_unit if final else details.get("to_unit_code")),
                    None,
                    TIMELINESS_LABELS.get(verdict or "", NO_VERDICT),
                    f"Xong bước {details['step_sequence']}"
                    + (": trả kết quả về Bộ phận Một cửa" if final else ""),
                )
            )
        elif kind == DossierSentBack.TYPE:
            rows.append(
                SlipRow(
                    _instant(details["sent_back_at"]),
                    unit_name(details.get("from_unit_code")),
                    details.get("official"),
                    unit_name(details.get("to_unit_code")),
                    None,
                    NO_VERDICT,
                    f"Trả lại bước {details['to_step_sequence']} để làm lại",
                )
            )
        elif kind == ResultReturned.TYPE:
            rows.append(
                SlipRow(
                    _instant(details["returned_at"]),
                    unit_name(desk_unit),
                    None,
                    "Tổ chức, cá nhân nộp hồ sơ",
                    None,
                    NO_VERDICT,
                    "Trả kết quả",
                )
            )
    return rows


# --- the letters (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    kind: str
    at: datetime
    issuer: str
    signer: str | None
    timeliness: str
    number: str | None = None


def letters(
    events: Iterable[Mapping[str, Any]],
    unit_name: Callable[[str | None], str],
    *,
    apology_due_by: datetime | None,
    apology_signer: str | None,
) -> list[Letter]:
    """The letters of the dossier as far as intake's events tell: the forms of Thông tư
    01/2018/TT-VPCP the units issued, and the consultations' letters. An apology owed but not
    issued is listed too, with its due date, once the dossier is overdue (before that, the
    notifier's obligation is only what it would owe)."""
    found: list[Letter] = []
    apologised = False
    for event in events:
        kind, details = event["event_type"], _details(event)
        at = _instant(event["occurred_at"])
        if kind == SupplementRequested.TYPE:
            number = int(details.get("request_number", 1))
            found.append(
                Letter(
                    "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ (Mẫu 02)",
                    _instant(details.get("requested_at", at)),
                    unit_name(details.get("unit_code")),
                    details.get("official"),
                    "Lần đầu" if number == 1 else f"Lần {number} (hướng dẫn chưa đủ một lần)",
                )
            )
        elif kind == DossierRefused.TYPE:
            found.append(
                Letter(
                    "Phiếu từ chối tiếp nhận, giải quyết hồ sơ (Mẫu 03)",
                    _instant(details.get("refused_at", at)),
                    unit_name(details.get("unit_code")),
                    None,
                    NO_VERDICT,
                )
            )
        elif kind == ApologyIssued.TYPE:
            apologised = True
            late = details.get("timeliness") == ApologyTimeliness.LATE
            found.append(
                Letter(
                    "Phiếu xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)",
                    _instant(details.get("issued_at", at)),
                    unit_name(details.get("unit_code")),
                    details.get("signer_title"),
                    "Muộn: Thành phố ký thay đơn vị" if late else "Đúng hạn",
                    details.get("letter_number"),
                )
            )
        elif kind == ProcessingStopped.TYPE:
            found.append(
                Letter(
                    "Thông báo dừng giải quyết hồ sơ (Mẫu 05)",
                    _instant(details.get("stopped_at", at)),
                    unit_name(details.get("unit_code")),
                    None,
                    NO_VERDICT,
                )
            )
        elif kind == ConsultationRequested.TYPE:
            found.append(
                Letter(
                    "Văn bản lấy ý kiến",
                    _instant(details.get("requested_at", at)),
                    unit_name(details.get("requesting_unit_code")),
                    details.get("official"),
                    NO_VERDICT,
                )
            )
        elif kind == ConsultationReplied.TYPE:
            found.append(
                Letter(
                    "Văn bản trả lời ý kiến",
                    _instant(details.get("replied_at", at)),
                    unit_name(details.get("unit_code")),
                    details.get("official"),
                    "Quá hạn trả lời" if details.get("late") else "Trong hạn",
                )
            )
    if apology_due_by is not None and not apologised:
        found.append(
            Letter(
                "Phiếu xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04): chưa ban hành,"
                " hồ sơ đã quá hạn",
                apology_due_by,
                "—",
                apology_signer,
                "Phải ký trước hạn này",
            )
        )
    return sorted(found, key=lambda letter: letter.at)


# --- the page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Journey:
    """What the page shows: no applicant data."""

    dossier_code: str
    procedure_name: str
    status_label: str
    received_at: datetime
    due_at: datetime | None
    units: list[UnitBars]
    slip: list[SlipRow]
    letters: list[Letter]
    trace_url: str | None
    legend: tuple[tuple[str, str], ...] = field(default=())


def trace_link(trace_ui_url: str, trace_id: str | None) -> str | None:
    """Zipkin's page of one trace: {ui}/traces/{trace_id}."""
    return f"{trace_ui_url.rstrip('/')}/traces/{trace_id}" if trace_id else None


def journey(
    view: DossierView,
    timeline: Mapping[str, Any],
    unit_name: Callable[[str | None], str],
    hours: Hours,
    now: datetime,
    trace_ui_url: str,
) -> Journey:
    events = list(timeline["events"])
    paused = pauses(events)
    sent_back = [
        _instant(_details(e)["sent_back_at"])
        for e in events
        if e["event_type"] == DossierSentBack.TYPE
    ]
    routing = view.routing.model_dump() if view.routing else None
    steps = routing["steps"] if routing else []
    notifier = view.notifier
    overdue = view.deadline is not None and view.deadline.overdue_at is not None
    return Journey(
        dossier_code=view.dossier_code,
        procedure_name=view.receipt.procedure.name,
        status_label=STATUS_LABELS.get(DossierStatus(view.status.code), view.status.name),
        received_at=view.receipt.received_at,
        due_at=view.deadline.due_at if view.deadline else view.receipt.appointment_at,
        units=bars(
            all_holdings(timeline["holdings"], events, routing, unit_name),
            paused,
            consultations(timeline["consultations"]),
            sent_back,
            hours,
            now,
        ),
        slip=control_slip(
            events,
            steps,
            unit_name,
            desk_officer=view.receipt.receiving_officer,
            desk_unit=view.receipt.receiving_unit.code,
        ),
        letters=letters(
            events,
            unit_name,
            apology_due_by=notifier.apology_due_by if notifier and overdue else None,
            apology_signer=notifier.signer_title if notifier else None,
        ),
        trace_url=trace_link(trace_ui_url, view.trace_id),
    )


def build_journey_router(
    office: OfficePages, reports: Reports, reader: DossierReader, trace_ui_url: str
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def unit_name(code: str | None) -> str:
        if not code:
            return "—"
        unit = reports.catalog.unit(code)
        return unit.name if unit else code

    def hours(start: datetime, end: datetime) -> float:
        return reports.calendar.working_time_between(start, end).total_seconds() / 3600

    @router.get(f"{JOURNEY_PATH}/{{code}}", response_class=HTMLResponse)
    async def show(
        code: str = Path(max_length=64), principal: Principal = office.official
    ) -> Response:
        if not re.match(DOSSIER_CODE_PATTERN, code):
            return office.error(
                status.HTTP_404_NOT_FOUND,
                "Không tìm thấy hồ sơ",
                f"“{code}” không phải là mã hồ sơ (dạng 000.00.00.H29-261201-0001).",
            )
        try:
            # The API's rule for who may read a dossier; not logged: no personal data here.
            view = await reader.read(code, principal, None, logged_as=None)
        except HTTPException as error:
            if error.status_code != status.HTTP_404_NOT_FOUND:
                raise
            return office.error(
                status.HTTP_404_NOT_FOUND, "Không tìm thấy hồ sơ", f"Không có hồ sơ mã {code}."
            )
        except Forbidden:
            unit = unit_name(principal.unit_code) if principal.unit_code else "không có đơn vị"
            return office.error(
                status.HTTP_403_FORBIDDEN,
                "Không được xem hồ sơ này",
                f"Hồ sơ {code} không do đơn vị của bạn ({unit}) tiếp nhận, giải quyết hay"
                " được lấy ý kiến. Cán bộ vận hành xem được mọi hồ sơ.",
            )
        timeline = await reports.timeline(code)
        if timeline is None:  # erased between the two reads
            return office.error(
                status.HTTP_404_NOT_FOUND, "Không tìm thấy hồ sơ", f"Không có hồ sơ mã {code}."
            )
        page = journey(view, timeline, unit_name, hours, reports.clock(), trace_ui_url)
        return office.page(office.render("journey.html", principal, journey=page))

    return router


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    value = event.get("details")
    return value if isinstance(value, Mapping) else {}


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _maybe_instant(value: Any) -> datetime | None:
    return None if value is None else _instant(value)
