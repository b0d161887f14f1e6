"""The operators' "stuck now" page (`/van-hanh/ton-dong`): the steps held past their allotted
time right now, grouped by the unit holding them, the most overdue first. Parallel steps count
separately. Each row: the dossier code and procedure (never the applicant), who holds it and
since when, how long in the unit's working hours and in wall time, how far past its due time,
the consultation it awaits, and its submission trace in the trace UI.

Operators see every unit; any other official only their own unit. The page refreshes itself
with a small script of the project's own (`/giao-dien/ton-dong.js`: it polls the table's
fragment, shows when it last did, and can be paused); without script it is a plain page."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse

from services.intake.office import JOURNEY_PATH, STUCK_PATH, OfficePages
from services.intake.pages import TEMPLATES
from shared.auth import Principal, Role
from shared.calendar import HCMC, WorkingCalendar
from shared.catalog import Catalog

STUCK_TABLE_PATH = f"{STUCK_PATH}/bang"  # the fragment the script polls
STUCK_SCRIPT_PATH = "/giao-dien/ton-dong.js"
MAX_ROWS = 200  # a page a person reads; the rest is counted ("showing N of M")

# --- what a row says (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Consulting:
    unit_code: str
    unit_name: str
    reply_due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class StuckStep:
    dossier_code: str
    step_sequence: int
    procedure_code: str
    procedure_name: str
    unit_code: str
    task: str | None
    official: str | None
    since: datetime | None
    due_at: datetime
    held_working: timedelta | None  # in the unit's working hours
    held_wall: timedelta | None
    overdue_working: timedelta
    overdue_wall: timedelta
    consulting: Consulting | None
    trace_id: str | None


@dataclass(frozen=True)
class UnitGroup:
    unit_code: str
    unit_name: str
    steps: tuple[StuckStep, ...]
    count: int  # all of the unit's stuck steps, shown or not


def trace_id_of(traceparent: str | None) -> str | None:
    """W3C traceparent `00-{trace id}-{span id}-{flags}`: the trace id, if well formed."""
    parts = (traceparent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1].lower()
    return None


def stuck_step(
    row: Mapping[str, Any],
    now: datetime,
    calendar: WorkingCalendar,
    catalog: Catalog,
) -> StuckStep:
    """A row of the query, with its durations in the holding unit's calendar."""
    since: datetime | None = row["since"]
    due: datetime = row["due_at"]
    procedure = catalog.procedure(row["procedure_code"])
    consulting = None
    if row["consulted_unit_code"] is not None:
        consulted = catalog.unit(row["consulted_unit_code"])
        consulting = Consulting(
            row["consulted_unit_code"],
            consulted.name if consulted else row["consulted_unit_code"],
            row["reply_due_at"],
            row["reply_due_at"] < now,
        )
    return StuckStep(
        dossier_code=row["dossier_code"],
        step_sequence=row["step_sequence"],
        procedure_code=row["procedure_code"],
        procedure_name=procedure.name if procedure else row["procedure_code"],
        unit_code=row["unit_code"],
        task=row["task"],
        official=row["official"],
        since=since,
        due_at=due,
        held_working=calendar.working_time_between(since, now) if since else None,
        held_wall=now - since if since else None,
        overdue_working=calendar.working_time_between(due, now),
        overdue_wall=now - due,
        consulting=consulting,
        trace_id=trace_id_of(row["submission_traceparent"]),
    )


def group_by_unit(
    steps: Iterable[StuckStep], counts: Mapping[str, int], unit_name: Callable[[str], str]
) -> list[UnitGroup]:
    """Units in the order of their most overdue step (the longest past due in the unit's
    working time, then in wall time); within a unit, the most overdue first."""
    by_unit: dict[str, list[StuckStep]] = {}
    for step in steps:
        by_unit.setdefault(step.unit_code, []).append(step)
    for unit_steps in by_unit.values():
        unit_steps.sort(key=_most_overdue_first)
    ordered = sorted(by_unit.items(), key=lambda item: _most_overdue_first(item[1][0]))
    return [
        UnitGroup(
            code, unit_name(code), tuple(unit_steps), max(counts.get(code, 0), len(unit_steps))
        )
        for code, unit_steps in ordered
    ]


def _most_overdue_first(step: StuckStep) -> tuple[timedelta, timedelta, str, int]:
    return (-step.overdue_working, -step.overdue_wall, step.dossier_code, step.step_sequence)


def working_hours(duration: timedelta | None) -> str:
    """`13 giờ 05 phút` of working time (a working day is 8 of them): minutes, floored."""
    if duration is None:
        return "—"
    minutes = int(duration.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} giờ {minutes:02d} phút" if hours else f"{minutes} phút"


def wall_time(duration: timedelta | None) -> str:
    """`2 ngày 3 giờ`, `5 giờ 20 phút`, `12 phút`: the two largest units, floored."""
    if duration is None:
        return "—"
    minutes = max(0, int(duration.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} ngày {hours} giờ"
    return f"{hours} giờ {minutes:02d} phút" if hours else f"{minutes} phút"


def clock_time(moment: datetime) -> str:
    """`08:30:05 ngày 01/12/2026`, in Ho Chi Minh City."""
    return moment.astimezone(HCMC).strftime("%H:%M:%S ngày %d/%m/%Y")


# --- filters and scope (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    unit_code: str | None
    procedure_code: str | None
    field: str | None
    forced_unit: bool  # the official sees their own unit only

    def procedure_codes(self, catalog: Catalog) -> list[str] | None:
        """The procedures to show: one, those of a field, or all (None)."""
        if self.procedure_code:
            return [self.procedure_code]
        if self.field:
            return sorted(p.code for p in catalog.procedures if p.field == self.field)
        return None

    def query(self) -> str:
        fields = {
            "don_vi": "" if self.forced_unit else self.unit_code or "",
            "thu_tuc": self.procedure_code or "",
            "linh_vuc": self.field or "",
        }
        return urlencode({k: v for k, v in fields.items() if v})

    def query_for_unit(self, unit_code: str) -> str:
        """These filters, for one unit (the counts at the top link to them)."""
        return replace(self, unit_code=unit_code).query()


def choose_filters(
    principal: Principal, catalog: Catalog, unit: str, procedure: str, field: str
) -> Filters:
    """The form's filters, checked against the catalog; an official who is not an operator
    sees their own unit whatever the form says. ValueError names a value that is not known."""
    unit, procedure, field = unit.strip(), procedure.strip(), field.strip()
    if procedure and catalog.procedure(procedure) is None:
        raise ValueError(f"Không có thủ tục mã “{procedure}” trong danh mục.")
    if field and field not in fields_of(catalog):
        raise ValueError(f"Không có lĩnh vực “{field}” trong danh mục.")
    if not principal.has(Role.OPERATOR):
        if not principal.unit_code:
            raise PermissionError(
                f"Tài khoản {principal.username} không thuộc đơn vị nào: trang này chỉ hiện hồ sơ"
                " của đơn vị mình."
            )
        return Filters(principal.unit_code, procedure or None, field or None, forced_unit=True)
    if unit and catalog.unit(unit) is None:
        raise ValueError(f"Không có đơn vị mã “{unit}” trong danh mục.")
    return Filters(unit or None, procedure or None, field or None, forced_unit=False)


def fields_of(catalog: Catalog) -> list[str]:
    return sorted({p.field for p in catalog.procedures})


# --- the router ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StuckView:
    groups: list[UnitGroup]
    counts: list[tuple[str, str, int]]  # unit code, name, stuck steps
    shown: int
    total: int
    updated_at: datetime


def build_stuck_router(
    office: OfficePages,
    unit_of_work: Callable[[], Any],
    calendar_of: Callable[[str], WorkingCalendar],
    clock: Callable[[], datetime],
    *,
    trace_ui_url: str,
    refresh_seconds: float,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    catalog = office.catalog
    trace_ui = trace_ui_url.rstrip("/")

    def unit_name(code: str) -> str:
        unit = catalog.unit(code)
        return unit.name if unit else code

    async def load(filters: Filters) -> StuckView:
        now = clock()
        async with unit_of_work() as uow:
            rows, counts = await uow.ledger.stuck_steps(
                now,
                unit_code=filters.unit_code,
                procedure_codes=filters.procedure_codes(catalog),
                limit=MAX_ROWS,
            )
        steps = [stuck_step(r, now, calendar_of(r["unit_code"]), catalog) for r in rows]
        groups = group_by_unit(steps, counts, unit_name)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return StuckView(
            groups=groups,
            counts=[(code, unit_name(code), n) for code, n in ranked],
            shown=len(steps),
            total=sum(counts.values()),
            updated_at=now,
        )

    def context(
        principal: Principal, filters: Filters | None, view: StuckView | None
    ) -> dict[str, Any]:
        return {
            "filters": filters,
            "view": view,
            "units": sorted(catalog.units, key=lambda u: u.name),
            "procedures": sorted(catalog.procedures, key=lambda p: p.name),
            "fields": fields_of(catalog),
            "forced": not principal.has(Role.OPERATOR),
            "scope_unit": unit_name(principal.unit_code) if principal.unit_code else None,
            "journey_path": JOURNEY_PATH,
            "stuck_path": STUCK_PATH,
            "table_path": STUCK_TABLE_PATH,
            "script_path": STUCK_SCRIPT_PATH,
            "trace_ui": trace_ui,
            "refresh_seconds": refresh_seconds,
            "working_hours": working_hours,
            "wall_time": wall_time,
            "clock_time": clock_time,
        }

    def page(html: str, status_code: int = status.HTTP_200_OK) -> Response:
        response = office.page(html, status_code)
        # This page alone runs a script: the project's own file, fetching from here only.
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = (
            f"{policy}; script-src 'self'; connect-src 'self'"
        )
        return response

    async def answer(
        principal: Principal, template: str, unit: str, procedure: str, field: str
    ) -> Response:
        try:
            filters = choose_filters(principal, catalog, unit, procedure, field)
        except PermissionError as refused:
            return office.error(status.HTTP_403_FORBIDDEN, "Không được phép", str(refused))
        except ValueError as error:
            html = office.render(
                "stuck.html", principal, error=str(error), **context(principal, None, None)
            )
            return page(html, status.HTTP_422_UNPROCESSABLE_ENTITY)
        view = await load(filters)
        html = office.render(template, principal, error=None, **context(principal, filters, view))
        return page(html)

    @router.get(STUCK_PATH, response_class=HTMLResponse)
    async def stuck(
        don_vi: str = Query(default="", max_length=64),
        thu_tuc: str = Query(default="", max_length=64),
        linh_vuc: str = Query(default="", max_length=200),
        principal: Principal = office.official,
    ) -> Response:
        return await answer(principal, "stuck.html", don_vi, thu_tuc, linh_vuc)

    @router.get(STUCK_TABLE_PATH, response_class=HTMLResponse)
    async def stuck_table(
        don_vi: str = Query(default="", max_length=64),
        thu_tuc: str = Query(default="", max_length=64),
        linh_vuc: str = Query(default="", max_length=200),
        principal: Principal = office.official,
    ) -> Response:
        return await answer(principal, "stuck_table.html", don_vi, thu_tuc, linh_vuc)

    @router.get(STUCK_SCRIPT_PATH)
    async def script() -> Response:
        source = (TEMPLATES / "stuck.js").read_text(encoding="utf-8")
        return Response(
            source,
            media_type="text/javascript",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return router
