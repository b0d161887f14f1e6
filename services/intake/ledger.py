"""The desk's ledger in PostgreSQL: each dossier's lifecycle state, its timeline, the
processing control slip, and the reports operators read from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.intake.domain import DossierState
from services.intake.indicators import FINISHING_TYPES, DossierRecord, Fact, kind_of
from shared.events import DossierStatus, Event, PlannedStep


class Ledger:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def lock(self, code: str) -> DossierState | None:
        """The dossier's state, locked until the transaction ends (commands are serialised)."""
        row = await self._db.fetchrow(
            "SELECT code, status, receiving_unit_code, current_unit_code, supplement_requests,"
            " submission_traceparent FROM dossiers WHERE code = $1 FOR UPDATE",
            code,
        )
        if row is None:
            return None
        return DossierState(
            code=row["code"],
            status=DossierStatus(row["status"]),
            receiving_unit_code=row["receiving_unit_code"],
            current_unit_code=row["current_unit_code"],
            supplement_requests=row["supplement_requests"],
            submission_traceparent=row["submission_traceparent"],
        )

    async def update(self, code: str, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
        await self._db.execute(
            f"UPDATE dossiers SET {assignments}, updated_at = now() WHERE code = $1",
            code,
            *(int(v) if isinstance(v, DossierStatus) else v for v in columns.values()),
        )

    async def update_status(
        self, code: str, status: DossierStatus, *, only_from: DossierStatus
    ) -> None:
        """Move the status only from `only_from`: a projection never overrides a command."""
        await self._db.execute(
            "UPDATE dossiers SET status = $2, updated_at = now() WHERE code = $1 AND status = $3",
            code,
            int(status),
            int(only_from),
        )

    async def append(self, event: Event, occurred_at: datetime, unit_code: str | None) -> None:
        await self._db.execute(
            "INSERT INTO timeline (dossier_code, occurred_at, event_type, unit_code, details)"
            " SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM dossiers WHERE code = $1)",
            event.dossier_code,
            occurred_at,
            event.TYPE,
            unit_code,
            event.model_dump(mode="json", exclude={"dossier_code", "applicant"}),
        )

    async def plan_steps(self, code: str, steps: tuple[PlannedStep, ...]) -> None:
        """Routing's plan: who does what, in which order."""
        await self._db.executemany(
            "INSERT INTO dossier_steps (dossier_code, step_sequence, unit_code, unit_name, task)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dossier_code, step_sequence)"
            " DO UPDATE SET unit_code = excluded.unit_code, unit_name = excluded.unit_name,"
            " task = excluded.task",
            [(code, s.sequence, s.unit_code, s.unit_name, s.task) for s in steps],
        )

    async def set_step_dues(self, code: str, dues: list[tuple[int, datetime]]) -> None:
        """The deadline service's due time of each step (new ones after a pause)."""
        await self._db.executemany(
            "INSERT INTO dossier_steps (dossier_code, step_sequence, due_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (dossier_code, step_sequence)"
            " DO UPDATE SET due_at = excluded.due_at",
            [(code, sequence, due) for sequence, due in dues],
        )

    async def hand_step_off(
        self, code: str, sequence: int, *, official: str, started_at: datetime, at: datetime
    ) -> None:
        """Routing recorded the step's hand-off (a row of the control slip)."""
        await self._db.execute(
            "INSERT INTO dossier_steps (dossier_code, step_sequence, official, started_at,"
            " finished_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dossier_code, step_sequence)"
            " DO UPDATE SET official = excluded.official, started_at = excluded.started_at,"
            " finished_at = excluded.finished_at",
            code,
            sequence,
            official,
            started_at,
            at,
        )

    async def judge_step(self, code: str, sequence: int, *, due_at: datetime, verdict: str) -> None:
        """The deadline service's verdict on a finished step: early, on time or late."""
        await self._db.execute(
            "INSERT INTO dossier_steps (dossier_code, step_sequence, due_at, timeliness)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (dossier_code, step_sequence)"
            " DO UPDATE SET due_at = excluded.due_at, timeliness = excluded.timeliness",
            code,
            sequence,
            due_at,
            verdict,
        )

    async def timeline(self, code: str) -> list[asyncpg.Record]:
        return list(
            await self._db.fetch(
                "SELECT occurred_at, event_type, unit_code, details FROM timeline"
                " WHERE dossier_code = $1 ORDER BY occurred_at, id",
                code,
            )
        )

    async def steps(self, code: str) -> list[asyncpg.Record]:
        return list(
            await self._db.fetch(
                "SELECT step_sequence, unit_code, unit_name, task, due_at, started_at, finished_at,"
                " official, timeliness FROM dossier_steps WHERE dossier_code = $1"
                " ORDER BY step_sequence",
                code,
            )
        )

    async def lateness_by_unit(self, start: datetime, end: datetime) -> list[asyncpg.Record]:
        """Steps finished in the period by each unit, and dossiers it holds past due now."""
        return list(
            await self._db.fetch(
                "WITH steps AS ("
                "  SELECT unit_code,"
                "   count(*) FILTER (WHERE timeliness = 'early') AS early,"
                "   count(*) FILTER (WHERE timeliness = 'on_time') AS on_time,"
                "   count(*) FILTER (WHERE timeliness = 'late') AS late"
                "  FROM dossier_steps WHERE finished_at >= $1 AND finished_at < $2"
                "  GROUP BY unit_code),"
                " held AS ("
                "  SELECT current_unit_code AS unit_code,"
                "   count(*) FILTER (WHERE due_at < $2 AND paused_since IS NULL) AS held_past_due,"
                "   count(*) AS held"
                "  FROM dossiers WHERE completed_at IS NULL AND closed_at IS NULL"
                "   AND current_unit_code IS NOT NULL GROUP BY current_unit_code)"
                " SELECT coalesce(s.unit_code, h.unit_code) AS unit_code,"
                "  coalesce(early, 0) AS early, coalesce(on_time, 0) AS on_time,"
                "  coalesce(late, 0) AS late, coalesce(held, 0) AS held,"
                "  coalesce(held_past_due, 0) AS held_past_due"
                " FROM steps s FULL JOIN held h ON s.unit_code = h.unit_code"
                " ORDER BY late DESC, held_past_due DESC, unit_code",
                start,
                end,
            )
        )

    async def lateness_by_official(self, start: datetime, end: datetime) -> list[asyncpg.Record]:
        return list(
            await self._db.fetch(
                "SELECT unit_code, official, count(*) AS steps,"
                "  count(*) FILTER (WHERE timeliness = 'late') AS late"
                " FROM dossier_steps WHERE finished_at >= $1 AND finished_at < $2"
                " GROUP BY unit_code, official"
                " HAVING count(*) FILTER (WHERE timeliness = 'late') > 0"
                " ORDER BY late DESC, unit_code, official",
                start,
                end,
            )
        )

    async def indicator_records(self, start: datetime, end: datetime) -> list[DossierRecord]:
        """Each dossier the period [start, end) may count, with its events before `end`: all
        but those finished before the period with nothing recorded in it."""
        finishing = [t.TYPE for t in FINISHING_TYPES]
        dossiers = await self._db.fetch(
            "SELECT code, received_at, channel, appointment_at FROM dossiers d"
            " WHERE received_at < $2 AND (received_at >= $1"
            "  OR NOT EXISTS (SELECT 1 FROM timeline t WHERE t.dossier_code = d.code"
            "   AND t.occurred_at < $1 AND t.event_type = ANY($3::text[]))"
            "  OR EXISTS (SELECT 1 FROM timeline t WHERE t.dossier_code = d.code"
            "   AND t.occurred_at >= $1 AND t.occurred_at < $2))",
            start,
            end,
            finishing,
        )
        codes = [row["code"] for row in dossiers]
        facts: dict[str, list[Fact]] = {code: [] for code in codes}
        for row in await self._db.fetch(
            "SELECT dossier_code, occurred_at, event_type, details FROM timeline"
            " WHERE dossier_code = ANY($1::text[]) AND occurred_at < $2"
            " ORDER BY dossier_code, occurred_at, id",
            codes,
            end,
        ):
            facts[row["dossier_code"]].append(
                Fact(row["occurred_at"], kind_of(row["event_type"]), row["details"])
            )
        return [
            DossierRecord(
                code=row["code"],
                received_at=row["received_at"],
                channel=row["channel"],
                appointment_at=row["appointment_at"],
                facts=tuple(facts[row["code"]]),
            )
            for row in dossiers
        ]
