"""What operators and the public read: a dossier's timeline, the lateness board (per unit and
per official: the city promised to publish who processes late) and the QĐ 766 indicators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.intake.repository import IntakeUnitOfWork
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog

DEFAULT_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class Reports:
    catalog: Catalog
    calendar: WorkingCalendar
    unit_of_work: Callable[[], IntakeUnitOfWork]
    clock: Callable[[], datetime]

    def period(self, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
        end = end or self.clock()
        return start or end - DEFAULT_PERIOD, end

    def _unit_name(self, code: str | None) -> str | None:
        unit = self.catalog.unit(code) if code else None
        return unit.name if unit else None

    async def timeline(self, code: str) -> dict[str, Any] | None:
        async with self.unit_of_work() as uow:
            stored = await uow.dossiers.get(code)
            if stored is None:
                return None
            events = await uow.ledger.timeline(code)
            steps = await uow.ledger.steps(code)
            state = await uow.ledger.lock(code)
        assert state is not None
        now = self.clock()
        holdings = [
            {
                "step": step["step_sequence"],
                "unit_code": step["unit_code"],
                "unit_name": self._unit_name(step["unit_code"]),
                "official": step["official"],
                "from": step["started_at"],
                "to": step["finished_at"],
                "working_hours": self._hours(step["started_at"], step["finished_at"]),
                "step_due_at": step["step_due_at"],
                "timeliness": step["timeliness"],
            }
            for step in steps
        ]
        open_since = steps[-1]["finished_at"] if steps else None
        routed = next((e for e in events if e["event_type"].endswith(".routed.v1")), None)
        if routed and not stored.status.name.startswith(("PROCESSED", "RESULT", "WITHDRAWN")):
            since = open_since or self.calendar.counting_start(stored.receipt.received_at)
            holdings.append(
                {
                    "step": state.current_step,
                    "unit_code": state.current_unit_code,
                    "unit_name": self._unit_name(state.current_unit_code),
                    "official": None,
                    "from": since,
                    "to": None,
                    "working_hours": self._hours(since, now),
                    "step_due_at": None,
                    "timeliness": None,
                }
            )
        received = {
            "occurred_at": stored.receipt.received_at,
            "event_type": "vn.hcmc.onestop.dossier.received.v1",
            "unit_code": stored.receipt.receiving_unit.code,
            "details": {"procedure_code": stored.receipt.procedure.code},
        }
        return {
            "dossier_code": code,
            "status": {"code": int(stored.status), "name": stored.status.name.lower()},
            "held_by": state.current_unit_code,
            "events": [received, *(dict(e) for e in events)],
            "holdings": holdings,
        }

    async def lateness(self, start: datetime, end: datetime) -> dict[str, Any]:
        async with self.unit_of_work() as uow:
            units = await uow.ledger.lateness_by_unit(start, end)
            officials = await uow.ledger.lateness_by_official(start, end)
        return {
            "from": start,
            "to": end,
            "units": [
                {
                    **dict(row),
                    "unit_name": self._unit_name(row["unit_code"]),
                    "late_rate": _rate(row["late"], row["early"] + row["on_time"] + row["late"]),
                }
                for row in units
            ],
            "officials": [
                {**dict(row), "unit_name": self._unit_name(row["unit_code"])} for row in officials
            ],
        }

    async def indicators(self, start: datetime, end: datetime) -> dict[str, Any]:
        async with self.unit_of_work() as uow:
            rows = await uow.ledger.indicators(start, end)
        units = [{**dict(row), "unit_name": self._unit_name(row["unit_code"])} for row in rows]
        numeric = [
            key for key in (units[0] if units else {}) if key not in ("unit_code", "unit_name")
        ]
        totals = {key: sum(unit[key] for unit in units) for key in numeric}
        return {"from": start, "to": end, "units": units, "total": totals}

    def _hours(self, start: datetime, end: datetime) -> float:
        return round(self.calendar.working_time_between(start, end).total_seconds() / 3600, 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
