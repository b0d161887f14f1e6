"""What operators and the public read: a dossier's timeline, the lateness board (per unit and
per official: the city promised to publish who processes late) and the QĐ 766 indicators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.intake import indicators
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
    satisfied_from: int = indicators.SATISFIED_FROM  # the lowest rating counted as satisfied

    def period(self, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
        """The given period; by default the 30 days up to `end` (or now), from the first day
        a datetime holds if `end` is nearer to it than that. A period whose `end` comes
        before its `start` is empty: every count is zero."""
        end = end or self.clock()
        if start is None:
            earliest = datetime.min.replace(tzinfo=UTC)
            start = end - DEFAULT_PERIOD if end - earliest > DEFAULT_PERIOD else earliest
        return start, end

    def _unit_name(self, code: str | None) -> str | None:
        unit = self.catalog.unit(code) if code else None
        return unit.name if unit else None

    async def timeline(self, code: str) -> dict[str, Any] | None:
        async with self.unit_of_work() as uow:
            view = await uow.dossiers.view(code)
            if view is None:
                return None
            events = await uow.ledger.timeline(code)
            consulted = await uow.ledger.consultations(code)
        now = self.clock()
        routing = view.routing
        holdings = [
            self._holding(
                step.sequence,
                step.unit_code,
                step.official,
                step.started_at,
                step.finished_at,
                step.due_at,
                step.timeliness,
            )
            for step in (routing.steps if routing else [])
            if step.finished_at is not None and step.started_at is not None
        ]
        still_held = view.status.code in (4, 5, 6)
        if routing and still_held and routing.current_step is not None:
            current = next((s for s in routing.steps if s.sequence == routing.current_step), None)
            since = routing.holder_since or self.calendar.counting_start(view.receipt.received_at)
            holdings.append(
                self._holding(
                    routing.current_step,
                    routing.current_unit_code,
                    None,
                    since,
                    None,
                    current.due_at if current else None,
                    None,
                    now=now,
                )
            )
        received = {
            "occurred_at": view.receipt.received_at,
            "event_type": "vn.hcmc.onestop.dossier.received.v1",
            "unit_code": view.receipt.receiving_unit.code,
            "details": {"procedure_code": view.receipt.procedure.code},
        }
        return {
            "dossier_code": code,
            "status": view.status.model_dump(),
            "held_by": routing.current_unit_code if routing else None,
            "events": [received, *(dict(e) for e in events)],
            "holdings": holdings,
            "consultations": [self._consultation(dict(row), now) for row in consulted],
        }

    def _consultation(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        """How long the consulted unit took (or has taken so far) to reply, in working hours
        of the default calendar, as holdings are counted."""
        until = row["replied_at"] or now
        return {
            **row,
            "unit_name": self._unit_name(row["unit_code"]),
            "working_hours": self._hours(row["requested_at"], until),
            "awaited_past_due": row["replied_at"] is None and row["reply_due_at"] < now,
        }

    def _holding(
        self,
        step: int,
        unit_code: str | None,
        official: str | None,
        start: datetime,
        end: datetime | None,
        due_at: datetime | None,
        timeliness: str | None,
        *,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "step": step,
            "unit_code": unit_code,
            "unit_name": self._unit_name(unit_code),
            "official": official,
            "from": start,
            "to": end,
            "working_hours": self._hours(start, end or now or start),
            "step_due_at": due_at,
            "timeliness": timeliness,
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
        """QĐ 766 indicators as they stood at the period's end (services/intake/indicators.py):
        events recorded later never change a closed period's figures."""
        async with self.unit_of_work() as uow:
            records = await uow.ledger.indicator_records(start, end)
            ratings = await uow.ratings.in_period(start, end)
        computed = indicators.compute(
            records, start, end, ratings, satisfied_from=self.satisfied_from
        )
        units = [
            {"unit_code": code, "unit_name": self._unit_name(code), **figures}
            for code, figures in computed.units.items()
        ]
        return {
            "from": start,
            "to": end,
            "units": units,
            "total": computed.total,
            "notes": list(indicators.NOTES),
        }

    def _hours(self, start: datetime, end: datetime) -> float:
        return round(self.calendar.working_time_between(start, end).total_seconds() / 3600, 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
