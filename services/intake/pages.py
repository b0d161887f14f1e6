"""Two public web pages, in Vietnamese, rendered on the server (no script, no external asset):

- `/bang-tien-do`: the lateness board of a month, per unit (the columns the provincial boards
  publish), the officials with late steps, and the QĐ 766/QĐ-TTg progress indicators as they
  stood at the period's end, with a bar chart drawn as inline SVG. No personal data.
- `/tra-cuu`: the citizen types the dossier code and the PIN printed on the receipt and reads
  the status, the appointment, what is awaited from them and whether an apology was issued.
  The PIN travels in a POST body only, never in the URL, so it lands in no log or trace.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from services.intake import indicators, ratings
from services.intake.api import DossierReader
from services.intake.reports import Reports
from services.intake.schemas import DossierView
from services.intake.web_signin import SIGN_OUT_PATH
from shared.calendar import HCMC
from shared.events import DOSSIER_CODE_PATTERN, DossierStatus, SupplementRequested

TEMPLATES = Path(__file__).parent / "templates"
BOARD_PATH, LOOKUP_PATH, STYLE_PATH = "/bang-tien-do", "/tra-cuu", "/giao-dien/site.css"
OFFICE_PATH = "/van-hanh"  # the officials' pages, behind sign-in (services/intake/office.py)
LOOKUP_PURPOSE = f"POST {LOOKUP_PATH}"  # as the access log names the API's reads
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
NOT_FOUND_MESSAGE = "Không tìm thấy hồ sơ với mã hồ sơ và mã PIN này."

# The pages load nothing from elsewhere and run no script; nobody may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The national portal's status codes (dichvucong.gov.vn), as the citizen reads them.
STATUS_LABELS = {
    DossierStatus.NEW: "Mới tiếp nhận",
    DossierStatus.ACCEPTED: "Đã tiếp nhận",
    DossierStatus.REFUSED: "Từ chối tiếp nhận",
    DossierStatus.PROCESSING: "Đang giải quyết",
    DossierStatus.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    DossierStatus.FINANCIAL_OBLIGATION_REQUESTED: "Chờ thực hiện nghĩa vụ tài chính",
    DossierStatus.WITHDRAWN: "Đã rút hồ sơ",
    DossierStatus.PROCESSING_STOPPED: "Dừng xử lý",
    DossierStatus.PROCESSED: "Đã có kết quả, chờ trả",
    DossierStatus.RESULT_RETURNED: "Đã trả kết quả",
}
UNROUTED_LABEL = "Chưa xác định đơn vị giải quyết"

# The chart's series: what happened to the unit's dossiers in the month. Colour is never the
# only carrier: each bar has a text title and the tables hold the same figures.
CHART_SERIES = (
    ("done_early", "Xong trước hạn", "#1b7f3b"),
    ("done_on_time", "Xong đúng hạn", "#1f5fa8"),
    ("done_late", "Xong quá hạn", "#b3261e"),
    ("in_progress_past_due", "Đang giải quyết quá hạn", "#e07b00"),
    ("in_progress_within_due", "Đang giải quyết trong hạn", "#6b6b6b"),
    ("paused", "Tạm dừng, chờ công dân", "#6a3d9a"),
)


# --- the period ------------------------------------------------------------------------------


def parse_month(text: str | None, now: datetime) -> date:
    """`2026-11` -> 1 November 2026; none: the current month in Ho Chi Minh City."""
    if not text:
        local = now.astimezone(HCMC)
        return date(local.year, local.month, 1)
    match = MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"tháng phải có dạng NĂM-THÁNG, ví dụ 2026-11 (nhận được: {text!r})")
    return date(int(match.group(1)), int(match.group(2)), 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def month_period(month: date, now: datetime) -> tuple[datetime, datetime]:
    """The month in Ho Chi Minh City's time, up to now while it runs: the figures are those of
    its end, and the current month's end has not come (a dossier due tomorrow is not late)."""
    start = datetime(month.year, month.month, 1, tzinfo=HCMC)
    following = next_month(month)
    end = min(datetime(following.year, following.month, 1, tzinfo=HCMC), now)
    return start, max(start, end)


# --- the board's figures (pure) --------------------------------------------------------------


def due_soon_by_unit(
    records: Iterable[indicators.DossierRecord], start: datetime, end: datetime
) -> Counter[str]:
    """Per responsible unit, the dossiers in progress within their due time at the period's end
    whose due-soon moment (the deadline service's, one working day before by default) had come:
    the provincial boards' "sắp đến hạn". The unit is the one the indicators count them under."""
    counts: Counter[str] = Counter()
    for record in records:
        unit, figures = indicators.dossier_figures(record, start, end)
        if not figures["in_progress_within_due"]:
            continue
        due_soon_at: datetime | None = None
        for fact in sorted((f for f in record.facts if f.at < end), key=lambda f: f.at):
            if fact.kind in (indicators.STARTED, indicators.RESUMED):
                value = fact.details.get("due_soon_at")
                due_soon_at = _instant(value) if value is not None else due_soon_at
        if due_soon_at is not None and due_soon_at <= end:
            counts[unit] += 1
    return counts


@dataclass(frozen=True)
class BoardRow:
    unit_code: str
    unit_name: str
    figures: Mapping[str, int]
    due_soon: int

    @property
    def done(self) -> int:
        return sum(self.figures[f"done_{t}"] for t in ("early", "on_time", "late"))

    @property
    def not_yet_due(self) -> int:
        return self.figures["in_progress_within_due"] - self.due_soon

    @property
    def in_progress(self) -> int:
        return self.figures["in_progress_within_due"] + self.figures["in_progress_past_due"]

    @property
    def late_rate(self) -> float | None:
        """Of the dossiers done in the month, the share done late (as the lateness board's)."""
        return round(self.figures["done_late"] / self.done, 3) if self.done else None


def board_rows(
    computed: indicators.Indicators, due_soon: Counter[str], unit_name: Any
) -> tuple[list[BoardRow], BoardRow]:
    rows = [
        BoardRow(code, unit_name(code), figures, due_soon[code])
        for code, figures in computed.units.items()
    ]
    total = BoardRow("", "Tổng cộng", computed.total, sum(due_soon.values()))
    return rows, total


def satisfaction_rows(
    rows: list[BoardRow], total: BoardRow
) -> list[tuple[BoardRow, ratings.Satisfaction]]:
    """The units rated in the period, and the total (each rating once), for the board."""
    rated = [(row, ratings.satisfaction_of(row.figures)) for row in rows]
    return [(row, s) for row, s in rated if s.ratings] + [
        (total, ratings.satisfaction_of(total.figures))
    ]


@dataclass(frozen=True)
class Bar:
    label: str
    color: str
    x: float  # in percent of the largest unit's bar
    width: float
    value: int


@dataclass(frozen=True)
class ChartRow:
    unit_name: str
    bars: list[Bar]
    total: int

    @property
    def description(self) -> str:
        return ", ".join(f"{bar.label}: {bar.value}" for bar in self.bars) or "không có hồ sơ"


def chart(rows: list[BoardRow]) -> list[ChartRow]:
    """Stacked bars, one per unit, in percent of the largest unit's: each is drawn as its own
    small SVG under the unit's name (HTML text), so that long names wrap on a phone."""
    largest = max((_charted(r) for r in rows), default=0) or 1
    drawn: list[ChartRow] = []
    for row in rows:
        x, bars = 0.0, []
        for name, label, color in CHART_SERIES:
            value = row.figures[name]
            if value:
                width = 100 * value / largest
                bars.append(Bar(label, color, x, width, value))
                x += width
        drawn.append(ChartRow(row.unit_name, bars, _charted(row)))
    return drawn


def _charted(row: BoardRow) -> int:
    return sum(row.figures[name] for name, _, _ in CHART_SERIES)


# --- the citizen's look-up (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Awaited:
    """What the unit asked the citizen to bring (Mẫu 02), and by when."""

    reason: str
    documents: tuple[str, ...]
    due_at: datetime | None


@dataclass(frozen=True)
class LookupResult:
    """What the citizen reads: no name, ID number, phone, e-mail or address (they know them,
    and whoever found the receipt must not learn them)."""

    dossier_code: str
    status_code: int
    status_label: str
    procedure_name: str
    receiving_unit_name: str
    received_at: datetime
    appointment_at: datetime
    awaited: Awaited | None
    apology_issued_at: datetime | None


def lookup_result(view: DossierView, timeline: Iterable[Mapping[str, Any]]) -> LookupResult:
    status_code = view.status.code
    deadline = view.deadline
    awaited = None
    if status_code == DossierStatus.SUPPLEMENT_REQUESTED:
        requests = [e for e in timeline if e["event_type"] == SupplementRequested.TYPE]
        if requests:
            details = _details(requests[-1]["details"])
            due = (deadline.supplement_due_at if deadline else None) or _maybe_instant(
                details.get("supplement_due_at")
            )
            awaited = Awaited(
                str(details.get("reason", "")), tuple(details.get("missing_documents", ())), due
            )
    return LookupResult(
        dossier_code=view.dossier_code,
        status_code=status_code,
        status_label=STATUS_LABELS.get(DossierStatus(status_code), view.status.name),
        procedure_name=view.receipt.procedure.name,
        receiving_unit_name=view.receipt.receiving_unit.name,
        received_at=view.receipt.received_at,
        # The clock moves the due time on after a pause: the current one is the appointment.
        appointment_at=deadline.due_at if deadline else view.receipt.appointment_at,
        awaited=awaited,
        apology_issued_at=view.notifier.apology_issued_at if view.notifier else None,
    )


def lookup_form(body: bytes) -> tuple[str, str]:
    """The form's dossier code (upper-cased, trimmed) and PIN (trimmed)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    code = (fields.get("ma_ho_so") or [""])[0].strip().upper()
    pin = (fields.get("ma_pin") or [""])[0].strip()
    return code, pin


def is_cross_site(headers: Mapping[str, str]) -> bool:
    """A browser says where a request comes from (Fetch Metadata): a form posted from another
    site is refused. The look-up changes nothing but the access log, and the other site could
    not read the answer anyway; this only keeps other sites from making a citizen's browser
    try codes and PINs (and filling the access log) in their name."""
    return headers.get("sec-fetch-site", "").lower() == "cross-site"


# --- rendering -------------------------------------------------------------------------------


def _local(moment: datetime | None) -> str:
    return moment.astimezone(HCMC).strftime("%d/%m/%Y %H:%M") if moment else ""


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}".replace(".", ",") + "%"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["percent"] = _percent
    env.globals.update(
        board_path=BOARD_PATH,
        lookup_path=LOOKUP_PATH,
        style_path=STYLE_PATH,
        office_path=OFFICE_PATH,
        sign_out_path=SIGN_OUT_PATH,
    )
    env.globals.update(rating_path=ratings.RATING_PATH, score_labels=ratings.SCORE_LABELS)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def _page(html: str, status_code: int = status.HTTP_200_OK, *, private: bool = False) -> Response:
    headers = dict(SECURITY_HEADERS)
    # The look-up's answer is the citizen's: no cache keeps it. The board may be cached briefly.
    headers["Cache-Control"] = "no-store" if private else "public, max-age=60"
    return HTMLResponse(html, status_code=status_code, headers=headers)


# --- the router ------------------------------------------------------------------------------


def build_pages_router(reports: Reports, reader: DossierReader) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def unit_name(code: str) -> str:
        if code == indicators.NOT_ROUTED:
            return UNROUTED_LABEL
        unit = reports.catalog.unit(code)
        return unit.name if unit else code

    @router.get(STYLE_PATH)
    async def style() -> Response:
        css = (TEMPLATES / "site.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @router.get(BOARD_PATH, response_class=HTMLResponse)
    async def board(thang: str | None = Query(default=None, max_length=20)) -> Response:
        now = reports.clock()
        try:
            month = parse_month(thang, now)
        except ValueError as error:
            html = render("error.html", title="Tháng không hợp lệ", message=str(error))
            return _page(html, status.HTTP_422_UNPROCESSABLE_ENTITY)
        start, end = month_period(month, now)
        async with reports.unit_of_work() as uow:
            records = await uow.ledger.indicator_records(start, end)
            rated = await uow.ratings.in_period(start, end)
        computed = indicators.compute(
            records, start, end, rated, satisfied_from=reports.satisfied_from
        )
        rows, total = board_rows(computed, due_soon_by_unit(records, start, end), unit_name)
        lateness = await reports.lateness(start, end)
        officials = [
            {**row, "unit_name": unit_name(row["unit_code"])} for row in lateness["officials"]
        ]
        html = render(
            "board.html",
            month=month,
            previous=previous_month(month),
            following=next_month(month) if next_month(month) <= parse_month(None, now) else None,
            start=start,
            end=end,
            rows=rows,
            total=total,
            officials=officials,
            chart=chart(rows),
            legend=CHART_SERIES,
            satisfaction=satisfaction_rows(rows, total),
            satisfied_from=reports.satisfied_from,
        )
        return _page(html)

    @router.get(LOOKUP_PATH, response_class=HTMLResponse)
    async def lookup_page() -> Response:
        return _page(render("lookup.html", result=None, error=None, code=""), private=True)

    @router.post(LOOKUP_PATH, response_class=HTMLResponse)
    async def lookup(request: Request) -> Response:
        if is_cross_site(request.headers):
            message = "Hãy tra cứu ngay trên trang này."
            html = render("error.html", title="Không được phép", message=message)
            return _page(html, status.HTTP_403_FORBIDDEN, private=True)
        code, pin = lookup_form(await request.body())
        if not code or not pin:
            html = render(
                "lookup.html", result=None, code=code, error="Hãy nhập mã hồ sơ và mã PIN."
            )
            return _page(html, status.HTTP_422_UNPROCESSABLE_ENTITY, private=True)
        not_found = render("lookup.html", result=None, code=code, error=NOT_FOUND_MESSAGE)
        if not re.match(DOSSIER_CODE_PATTERN, code):  # no such code can exist: the same answer
            return _page(not_found, status.HTTP_404_NOT_FOUND, private=True)
        try:
            # The API's check and access-log entry (subject "citizen"), for this page's purpose.
            view = await reader.read(code, None, pin, logged_as=LOOKUP_PURPOSE)
        except HTTPException as error:
            if error.status_code != status.HTTP_404_NOT_FOUND:
                raise
            return _page(not_found, status.HTTP_404_NOT_FOUND, private=True)
        async with reports.unit_of_work() as uow:
            timeline = [dict(e) for e in await uow.ledger.timeline(code)]
            rating = await uow.ratings.of(code)
        result = lookup_result(view, timeline)
        html = render("lookup.html", result=result, code=code, error=None, rating=rating, pin=pin)
        return _page(html, private=True)

    return router


def _details(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _maybe_instant(value: Any) -> datetime | None:
    return None if value is None else _instant(value)
