"""The desk's ledger in PostgreSQL: each dossier's lifecycle state, its timeline, the
processing control slip, and the reports operators read from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.intake.consultations import Consultation
from services.intake.domain import DossierState
from services.intake.indicators import FINISHING_TYPES, DossierRecord, Fact, kind_of
from shared.events import (
    ConsultationReplied,
    ConsultationRequested,
    DossierStatus,
    Event,
    PlannedStep,
)

# A step is stuck when it is open (not finished) past its due time, its unit holds the dossier
# (parallel steps: each holding unit's first open step from the current one), and the dossier
# is neither paused for the citizen, finished nor closed. $2 (unit) and $3 (procedures) filter
# when given. The partial index dossier_steps_open_due keeps the scan to open steps.
_STUCK_JOIN = "FROM dossier_steps s JOIN dossiers d ON d.code = s.dossier_code"
_STUCK_WHERE = (
    "WHERE s.finished_at IS NULL AND s.due_at < $1"
    " AND d.closed_at IS NULL AND d.completed_at IS NULL AND d.paused_since IS NULL"
    " AND s.step_sequence >= d.current_step AND s.unit_code = ANY(d.holding_unit_codes)"
    " AND NOT EXISTS (SELECT 1 FROM dossier_steps e WHERE e.dossier_code = s.dossier_code"
    "  AND e.unit_code = s.unit_code AND e.finished_at IS NULL"
    "  AND e.step_sequence >= d.current_step AND e.step_sequence < s.step_sequence)"
    " AND ($2::text IS NULL OR s.unit_code = $2)"
    " AND ($3::text[] IS NULL OR d.procedure_code = ANY($3::text[]))"
)


class Ledger:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def lock(self, code: str) -> DossierState | None:
        """The dossier's state, locked until the transaction ends (commands are serialised)."""
        row = await self._db.fetchrow(
            "SELECT code, status, receiving_unit_code, current_unit_code, supplement_requests,"
            " submission_traceparent, holding_unit_codes FROM dossiers WHERE code = $1"
            " FOR UPDATE",
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
            holding_unit_codes=tuple(row["holding_unit_codes"] or ()),
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

    async def reopen_steps(self, code: str, sequences: tuple[int, ...]) -> None:
        """A send-back: the steps are to be done again (the timeline keeps the first pass)."""
        await self._db.execute(
            "UPDATE dossier_steps SET started_at = NULL, finished_at = NULL, official = NULL,"
            " timeliness = NULL WHERE dossier_code = $1 AND step_sequence = ANY($2::integer[])",
            code,
            list(sequences),
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

    # --- consultations (lấy ý kiến) -----------------------------------------------------------

    async def next_consultation_id(self, code: str) -> int:
        """Under the dossier's lock: consultation ids count up within the dossier."""
        last = await self._db.fetchval(
            "SELECT max(consultation_id) FROM consultations WHERE dossier_code = $1", code
        )
        return int(last or 0) + 1

    async def add_consultations(self, event: ConsultationRequested) -> None:
        await self._db.executemany(
            "INSERT INTO consultations (dossier_code, consultation_id, requesting_unit_code,"
            " unit_code, question, requested_at, reply_due_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (
                    event.dossier_code,
                    c.consultation_id,
                    event.requesting_unit_code,
                    c.unit_code,
                    event.question,
                    event.requested_at,
                    c.reply_due_at,
                )
                for c in event.consulted
            ],
        )

    async def consultation(self, code: str, consultation_id: int) -> Consultation | None:
        row = await self._db.fetchrow(
            "SELECT dossier_code, consultation_id, requesting_unit_code, unit_code, question,"
            " reply_due_at, replied_at FROM consultations"
            " WHERE dossier_code = $1 AND consultation_id = $2",
            code,
            consultation_id,
        )
        return None if row is None else Consultation(**dict(row))

    async def record_reply(self, event: ConsultationReplied) -> None:
        await self._db.execute(
            "UPDATE consultations SET replied_at = $3, late = $4"
            " WHERE dossier_code = $1 AND consultation_id = $2",
            event.dossier_code,
            event.consultation_id,
            event.replied_at,
            event.late,
        )

    async def consultation_overdue(self, code: str, consultation_id: int, at: datetime) -> None:
        await self._db.execute(
            "UPDATE consultations SET overdue_at = $3"
            " WHERE dossier_code = $1 AND consultation_id = $2 AND overdue_at IS NULL",
            code,
            consultation_id,
            at,
        )

    async def consultations(self, code: str) -> list[asyncpg.Record]:
        return list(
            await self._db.fetch(
                "SELECT consultation_id, requesting_unit_code, unit_code, question, requested_at,"
                " reply_due_at, replied_at, late, overdue_at FROM consultations"
                " WHERE dossier_code = $1 ORDER BY consultation_id",
                code,
            )
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

    # --- stuck now: steps held past their due time ---------------------------------------------

    async def stuck_steps(
        self,
        now: datetime,
        *,
        unit_code: str | None,
        procedure_codes: list[str] | None,
        limit: int,
    ) -> tuple[list[asyncpg.Record], dict[str, int]]:
        """The most overdue open steps now (at most `limit`), and how many there are per unit.
        With the official of the unit who last acted on it since it holds it, and the oldest
        consultation it awaits a reply to."""
        rows = await self._db.fetch(
            "SELECT s.dossier_code, s.step_sequence, s.unit_code, s.task, s.due_at,"
            " d.procedure_code, d.submission_traceparent,"
            " coalesce(d.holder_since, d.routed_at) AS since,"
            " o.official, c.unit_code AS consulted_unit_code, c.reply_due_at"
            f" {_STUCK_JOIN}"
            " LEFT JOIN LATERAL (SELECT t.details->>'official' AS official FROM timeline t"
            "  WHERE t.dossier_code = s.dossier_code AND t.unit_code = s.unit_code"
            "   AND t.occurred_at >= coalesce(d.holder_since, d.routed_at)"
            "   AND t.details ? 'official'"
            "  ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) o ON true"
            " LEFT JOIN LATERAL (SELECT k.unit_code, k.reply_due_at FROM consultations k"
            "  WHERE k.dossier_code = s.dossier_code AND k.requesting_unit_code = s.unit_code"
            "   AND k.replied_at IS NULL"
            "  ORDER BY k.reply_due_at, k.consultation_id LIMIT 1) c ON true"
            f" {_STUCK_WHERE}"
            " ORDER BY s.due_at, s.dossier_code, s.step_sequence LIMIT $4",
            now,
            unit_code,
            procedure_codes,
            limit,
        )
        counts = await self._db.fetch(
            f"SELECT s.unit_code, count(*) AS stuck {_STUCK_JOIN} {_STUCK_WHERE}"
            " GROUP BY s.unit_code",
            now,
            unit_code,
            procedure_codes,
        )
        return list(rows), {r["unit_code"]: int(r["stuck"]) for r in counts}

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
                "   AND current_unit_code IS NOT NULL GROUP BY current_unit_code),"
                # Consulted units: replies given late in the period, and replies awaited past
                # their due time at its end (of dossiers still open).
                " consulted AS ("
                "  SELECT c.unit_code,"
                "   count(*) FILTER (WHERE c.late AND c.replied_at >= $1 AND c.replied_at < $2)"
                "    AS replies_late,"
                "   count(*) FILTER (WHERE c.replied_at IS NULL AND c.reply_due_at < $2"
                "    AND d.closed_at IS NULL AND d.completed_at IS NULL)"
                "    AS replies_awaited_past_due"
                "  FROM consultations c JOIN dossiers d ON d.code = c.dossier_code"
                "  WHERE c.requested_at < $2 GROUP BY c.unit_code)"
                " SELECT coalesce(s.unit_code, h.unit_code, c.unit_code) AS unit_code,"
                "  coalesce(early, 0) AS early, coalesce(on_time, 0) AS on_time,"
                "  coalesce(late, 0) AS late, coalesce(held, 0) AS held,"
                "  coalesce(held_past_due, 0) AS held_past_due,"
                "  coalesce(replies_late, 0) AS replies_late,"
                "  coalesce(replies_awaited_past_due, 0) AS replies_awaited_past_due"
                " FROM steps s FULL JOIN held h ON s.unit_code = h.unit_code"
                " FULL JOIN consulted c ON c.unit_code = coalesce(s.unit_code, h.unit_code)"
                " ORDER BY late DESC, held_past_due DESC, replies_late DESC, unit_code",
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
