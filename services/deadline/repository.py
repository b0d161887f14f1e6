"""Where the deadline service keeps each dossier's clock: the port its handlers use, and the
PostgreSQL adapter (the scheduler's claims are PostgreSQL only: their guarantees rest on row
locks, so they are tested against the real server)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from shared.events import ConsultationRequested, DossierClockStarted, StepDue
from shared.messaging.parking import PrerequisiteMissing
from shared.messaging.unit_of_work import Emitter, PostgresUnitOfWork


@dataclass(frozen=True)
class Clock:
    dossier_code: str
    status: str
    responsible_unit_code: str
    started_at: datetime
    appointed_at: datetime
    due_at: datetime
    due_soon_at: datetime
    paused_at: datetime | None
    paused_working_seconds: int
    overdue_detected_at: datetime | None
    current_step: int
    competent_unit_code: str | None
    submission_traceparent: str | None
    pause_cause: str | None = None
    fault_unit_code: str | None = None


@dataclass(frozen=True)
class PlannedClock:
    """A step's place in the plan, for a send-back's fresh due times."""

    sequence: int
    unit_code: str
    share: float | None  # none: planned before shares were kept
    stage: int


@dataclass(frozen=True)
class Detection:
    """A clock the scheduler found due soon, overdue, or with its current step overdue."""

    dossier_code: str
    unit_code: str
    due_at: datetime
    submission_traceparent: str | None
    step_sequence: int | None = None


class ClockNotStarted(PrerequisiteMissing):
    """The clock starts with the dossier's receipt, on intake's topic: routing's plan may
    come first, on its own topic."""


class ClockRepository(abc.ABC):
    """What the handlers need: each dossier's clock and the clocks of its steps."""

    @abc.abstractmethod
    async def add(
        self, clock: DossierClockStarted, competent_unit_code: str, traceparent: str | None
    ) -> None: ...

    @abc.abstractmethod
    async def add_steps(
        self,
        dossier_code: str,
        steps: tuple[StepDue, ...],
        holder: str,
        at: datetime,
        plan: tuple[PlannedClock, ...],
    ) -> None:
        """The plan's step clocks; the first stage starts (`holder` holds the dossier)."""

    @abc.abstractmethod
    async def planned(self, dossier_code: str) -> list[PlannedClock]:
        """Every step's place in the plan, in order."""

    @abc.abstractmethod
    async def reopen(
        self,
        dossier_code: str,
        dues: list[tuple[int, datetime]],
        started: int,
        holder: str,
        at: datetime,
    ) -> None:
        """A send-back: the steps are open again with fresh due times; `started` has started."""

    @abc.abstractmethod
    async def lock(self, dossier_code: str) -> Clock:
        """The clock, locked until the transaction ends; ClockNotStarted if there is none."""

    @abc.abstractmethod
    async def open_steps(self, dossier_code: str) -> list[StepDue]:
        """The steps not completed yet, in order."""

    @abc.abstractmethod
    async def pause(
        self,
        dossier_code: str,
        at: datetime,
        cause: str,
        supplement_due_at: datetime | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def resume(
        self,
        dossier_code: str,
        *,
        due_at: datetime,
        due_soon_at: datetime,
        paused: timedelta,
        step_due_at: list[tuple[int, datetime]],
    ) -> None:
        """Running again, with the moved due times; `paused` adds to the working time paused."""

    @abc.abstractmethod
    async def step(self, dossier_code: str, sequence: int) -> tuple[str, datetime] | None:
        """The step's unit and due time."""

    @abc.abstractmethod
    async def complete_step(
        self,
        dossier_code: str,
        sequence: int,
        at: datetime,
        timeliness: str,
        started: tuple[int, ...] = (),
        *,
        responsible_unit_code: str,
        fault_unit_code: str | None,
    ) -> None:
        """Close the step; the `started` ones start; `responsible_unit_code` answers for the
        dossier's lateness (the unit at fault, else the next holder)."""

    @abc.abstractmethod
    async def mark_overdue(self, dossier_code: str, at: datetime) -> None: ...

    @abc.abstractmethod
    async def promise(
        self, dossier_code: str, *, unit_code: str, promised_at: datetime, due_soon_at: datetime
    ) -> bool:
        """The apology's new return date; False if one was recorded already (set once)."""

    @abc.abstractmethod
    async def finish(
        self, dossier_code: str, status: str, at: datetime, timeliness: str | None
    ) -> None: ...

    @abc.abstractmethod
    async def add_consultations(self, event: ConsultationRequested) -> None:
        """Each consulted unit's reply due time."""

    @abc.abstractmethod
    async def consultation_replied(
        self, dossier_code: str, consultation_id: int, at: datetime
    ) -> int:
        """Record the reply; how many consultations of the dossier still await theirs."""


class PostgresClockRepository(ClockRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(
        self, clock: DossierClockStarted, competent_unit_code: str, traceparent: str | None
    ) -> None:
        await self._db.execute(
            "INSERT INTO clocks (dossier_code, responsible_unit_code, started_at, appointed_at,"
            " due_at, due_soon_at, competent_unit_code, submission_traceparent)"
            " VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
            clock.dossier_code,
            clock.responsible_unit_code,
            clock.started_at,
            clock.due_at,
            clock.due_soon_at,
            competent_unit_code,
            traceparent,
        )

    async def add_steps(
        self,
        dossier_code: str,
        steps: tuple[StepDue, ...],
        holder: str,
        at: datetime,
        plan: tuple[PlannedClock, ...],
    ) -> None:
        await self._db.executemany(
            "INSERT INTO step_clocks (dossier_code, sequence, unit_code, due_at, share, stage,"
            " started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (dossier_code, s.sequence, s.unit_code, s.due_at, p.share, p.stage, _first(p, at))
                for s, p in zip(steps, plan, strict=True)
            ],
        )
        await self._db.execute(
            "UPDATE clocks SET current_step = 1, responsible_unit_code = $2"
            " WHERE dossier_code = $1",
            dossier_code,
            holder,
        )

    async def lock(self, dossier_code: str) -> Clock:
        row = await self._db.fetchrow(
            "SELECT dossier_code, status, responsible_unit_code, started_at, appointed_at,"
            " due_at, due_soon_at, paused_at, paused_working_seconds, overdue_detected_at,"
            " current_step, competent_unit_code, submission_traceparent, pause_cause,"
            " fault_unit_code FROM clocks WHERE dossier_code = $1 FOR UPDATE",
            dossier_code,
        )
        if row is None:
            raise ClockNotStarted(f"no clock for dossier {dossier_code}")
        return Clock(**dict(row))

    async def describe(self, dossier_code: str) -> dict[str, object] | None:
        clock = await self._db.fetchrow(
            "SELECT dossier_code, status, responsible_unit_code, current_step, started_at,"
            " due_at, due_soon_at, paused_at, pause_cause, due_soon_detected_at,"
            " overdue_detected_at, completed_at, timeliness, supplement_due_at,"
            " supplement_missed_at, fault_unit_code, promised_at, promise_unit_code,"
            " promise_due_soon_at, promise_broken_at FROM clocks WHERE dossier_code = $1",
            dossier_code,
        )
        if clock is None:
            return None
        steps = await self._db.fetch(
            "SELECT sequence, unit_code, due_at, completed_at, timeliness, overdue_detected_at,"
            " started_at"
            " FROM step_clocks WHERE dossier_code = $1 ORDER BY sequence",
            dossier_code,
        )
        return {**dict(clock), "steps": [dict(step) for step in steps]}

    async def open_steps(self, dossier_code: str) -> list[StepDue]:
        rows = await self._db.fetch(
            "SELECT sequence, unit_code, due_at FROM step_clocks"
            " WHERE dossier_code = $1 AND completed_at IS NULL ORDER BY sequence",
            dossier_code,
        )
        return [StepDue(**dict(row)) for row in rows]

    async def pause(
        self,
        dossier_code: str,
        at: datetime,
        cause: str,
        supplement_due_at: datetime | None = None,
    ) -> None:
        await self._db.execute(
            "UPDATE clocks SET status = 'paused', paused_at = $2, pause_cause = $3,"
            " supplement_due_at = $4, supplement_missed_at = NULL WHERE dossier_code = $1",
            dossier_code,
            at,
            cause,
            supplement_due_at,
        )

    async def resume(
        self,
        dossier_code: str,
        *,
        due_at: datetime,
        due_soon_at: datetime,
        paused: timedelta,
        step_due_at: list[tuple[int, datetime]],
    ) -> None:
        await self._db.execute(
            "UPDATE clocks SET status = 'running', paused_at = NULL, pause_cause = NULL,"
            " supplement_due_at = NULL, due_at = $2, due_soon_at = $3,"
            " paused_working_seconds = paused_working_seconds + $4 WHERE dossier_code = $1",
            dossier_code,
            due_at,
            due_soon_at,
            int(paused.total_seconds()),
        )
        await self._db.executemany(
            "UPDATE step_clocks SET due_at = $3 WHERE dossier_code = $1 AND sequence = $2",
            [(dossier_code, sequence, due) for sequence, due in step_due_at],
        )

    async def step(self, dossier_code: str, sequence: int) -> tuple[str, datetime] | None:
        """The step's unit and due time."""
        row = await self._db.fetchrow(
            "SELECT unit_code, due_at FROM step_clocks WHERE dossier_code = $1 AND sequence = $2",
            dossier_code,
            sequence,
        )
        return (row["unit_code"], row["due_at"]) if row else None

    async def complete_step(
        self,
        dossier_code: str,
        sequence: int,
        at: datetime,
        timeliness: str,
        started: tuple[int, ...] = (),
        *,
        responsible_unit_code: str,
        fault_unit_code: str | None,
    ) -> None:
        await self._db.execute(
            "UPDATE step_clocks SET completed_at = $3, timeliness = $4"
            " WHERE dossier_code = $1 AND sequence = $2",
            dossier_code,
            sequence,
            at,
            timeliness,
        )
        await self._db.execute(
            "UPDATE step_clocks SET started_at = $3"
            " WHERE dossier_code = $1 AND sequence = ANY($2::integer[])",
            dossier_code,
            list(started),
            at,
        )
        await self._db.execute(
            "UPDATE clocks SET current_step = COALESCE($2, current_step),"
            " responsible_unit_code = $3, fault_unit_code = $4 WHERE dossier_code = $1",
            dossier_code,
            started[0] if started else None,
            responsible_unit_code,
            fault_unit_code,
        )

    async def planned(self, dossier_code: str) -> list[PlannedClock]:
        rows = await self._db.fetch(
            "SELECT sequence, unit_code, share, stage FROM step_clocks"
            " WHERE dossier_code = $1 ORDER BY sequence",
            dossier_code,
        )
        return [PlannedClock(**dict(row)) for row in rows]

    async def reopen(
        self,
        dossier_code: str,
        dues: list[tuple[int, datetime]],
        started: int,
        holder: str,
        at: datetime,
    ) -> None:
        await self._db.executemany(
            "UPDATE step_clocks SET due_at = $3, completed_at = NULL, timeliness = NULL,"
            " overdue_detected_at = NULL, started_at = CASE WHEN sequence = $4 THEN $5::timestamptz"
            " END WHERE dossier_code = $1 AND sequence = $2",
            [(dossier_code, sequence, due, started, at) for sequence, due in dues],
        )
        await self._db.execute(
            "UPDATE clocks SET current_step = $2, responsible_unit_code = $3"
            " WHERE dossier_code = $1",
            dossier_code,
            started,
            holder,
        )

    async def promise(
        self, dossier_code: str, *, unit_code: str, promised_at: datetime, due_soon_at: datetime
    ) -> bool:
        status: str = await self._db.execute(
            "UPDATE clocks SET promised_at = $2, promise_unit_code = $3, promise_due_soon_at = $4"
            " WHERE dossier_code = $1 AND promised_at IS NULL",
            dossier_code,
            promised_at,
            unit_code,
            due_soon_at,
        )
        return status == "UPDATE 1"

    async def claim_promise_due_soon(self, now: datetime, limit: int) -> list[Detection]:
        return await self._claim_clocks(
            now,
            limit,
            mark="promise_due_soon_detected_at",
            when="promised_at IS NOT NULL AND promise_due_soon_at <= $1 AND promised_at >= $1",
            order="promise_due_soon_at",
            unit="promise_unit_code",
            due="promised_at",
        )

    async def claim_promise_broken(self, now: datetime, limit: int) -> list[Detection]:
        return await self._claim_clocks(
            now,
            limit,
            mark="promise_broken_at",
            when="promised_at < $1",
            order="promised_at",
            unit="promise_unit_code",
            due="promised_at",
        )

    async def mark_overdue(self, dossier_code: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE clocks SET overdue_detected_at = $2 WHERE dossier_code = $1", dossier_code, at
        )

    async def finish(
        self, dossier_code: str, status: str, at: datetime, timeliness: str | None
    ) -> None:
        await self._db.execute(
            "UPDATE clocks SET status = $2, completed_at = $3, timeliness = $4"
            " WHERE dossier_code = $1",
            dossier_code,
            status,
            at,
            timeliness,
        )

    async def claim_due_soon(self, now: datetime, limit: int) -> list[Detection]:
        return await self._claim_clocks(
            now, limit, mark="due_soon_detected_at", when="due_soon_at <= $1", order="due_soon_at"
        )

    async def claim_overdue(self, now: datetime, limit: int) -> list[Detection]:
        return await self._claim_clocks(
            now, limit, mark="overdue_detected_at", when="due_at < $1", order="due_at"
        )

    async def claim_step_overdue(self, now: datetime, limit: int) -> list[Detection]:
        """An open step (started, not completed; several while parallel steps run) of a running
        clock, held beyond its own due time: its unit is at fault, unless an earlier one is."""
        return await self._claim(
            "WITH claimed AS (UPDATE step_clocks s SET overdue_detected_at = $1 FROM clocks c"
            " WHERE c.dossier_code = s.dossier_code AND (s.dossier_code, s.sequence) IN ("
            "  SELECT s2.dossier_code, s2.sequence FROM step_clocks s2"
            "  JOIN clocks c2 ON c2.dossier_code = s2.dossier_code"
            "  WHERE c2.status = 'running' AND s2.started_at IS NOT NULL"
            "  AND s2.completed_at IS NULL AND s2.overdue_detected_at IS NULL AND s2.due_at < $1"
            "  AND s2.due_at < c2.due_at"  # the last step's lateness is the dossier's overdue
            "  ORDER BY s2.due_at LIMIT $2 FOR UPDATE OF s2 SKIP LOCKED)"
            " RETURNING s.dossier_code, s.unit_code, s.due_at, c.submission_traceparent,"
            " s.sequence AS step_sequence),"
            " fault AS (UPDATE clocks c SET fault_unit_code = claimed.unit_code FROM claimed"
            "  WHERE c.dossier_code = claimed.dossier_code AND c.fault_unit_code IS NULL)"
            " SELECT * FROM claimed",
            now,
            limit,
        )

    async def claim_supplement_missed(self, now: datetime, limit: int) -> list[Detection]:
        """A clock paused for a supplement whose due time has passed, not yet seen missed;
        `due_at` of the detection is the supplement's due time."""
        return await self._claim_clocks(
            now,
            limit,
            mark="supplement_missed_at",
            when="supplement_due_at < $1",
            order="supplement_due_at",
            due="supplement_due_at",
            status="paused",
        )

    async def add_consultations(self, event: ConsultationRequested) -> None:
        await self._db.executemany(
            "INSERT INTO consultation_clocks (dossier_code, consultation_id, unit_code,"
            " reply_due_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [
                (event.dossier_code, c.consultation_id, c.unit_code, c.reply_due_at)
                for c in event.consulted
            ],
        )

    async def consultation_replied(
        self, dossier_code: str, consultation_id: int, at: datetime
    ) -> int:
        await self._db.execute(
            "UPDATE consultation_clocks SET replied_at = $3"
            " WHERE dossier_code = $1 AND consultation_id = $2",
            dossier_code,
            consultation_id,
            at,
        )
        awaited: int = await self._db.fetchval(
            "SELECT count(*) FROM consultation_clocks"
            " WHERE dossier_code = $1 AND replied_at IS NULL",
            dossier_code,
        )
        return awaited

    async def claim_consultation_overdue(self, now: datetime, limit: int) -> list[Detection]:
        """A consulted unit's reply awaited past its due time, of a dossier still on the
        clock (running or paused); `step_sequence` of the detection is the consultation id."""
        return await self._claim(
            "UPDATE consultation_clocks k SET overdue_detected_at = $1 FROM clocks c"
            " WHERE c.dossier_code = k.dossier_code AND (k.dossier_code, k.consultation_id) IN ("
            "  SELECT k2.dossier_code, k2.consultation_id FROM consultation_clocks k2"
            "  JOIN clocks c2 ON c2.dossier_code = k2.dossier_code"
            "  WHERE c2.status IN ('running', 'paused') AND k2.replied_at IS NULL"
            "  AND k2.overdue_detected_at IS NULL AND k2.reply_due_at < $1"
            "  ORDER BY k2.reply_due_at LIMIT $2 FOR UPDATE OF k2 SKIP LOCKED)"
            " RETURNING k.dossier_code, k.unit_code, k.reply_due_at AS due_at,"
            " c.submission_traceparent, k.consultation_id AS step_sequence",
            now,
            limit,
        )

    async def _claim_clocks(
        self,
        now: datetime,
        limit: int,
        *,
        mark: str,
        when: str,
        order: str,
        unit: str = "responsible_unit_code",
        due: str = "due_at",
        status: str = "running",
    ) -> list[Detection]:
        """Claim clocks in `status` matching `when` (at `now` = $1) whose `mark` is not set yet,
        oldest `order` first, by setting it: each detection is made once, whichever instance
        of the scheduler gets there first. The fragments are this class's constants."""
        return await self._claim(
            f"UPDATE clocks SET {mark} = $1 WHERE dossier_code IN ("
            f" SELECT dossier_code FROM clocks WHERE status = '{status}'"
            f" AND {mark} IS NULL AND {when}"
            f" ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED)"
            f" RETURNING dossier_code, {unit} AS unit_code, {due} AS due_at,"
            " submission_traceparent, NULL::integer AS step_sequence",
            now,
            limit,
        )

    async def _claim(self, query: str, now: datetime, limit: int) -> list[Detection]:
        return [Detection(**dict(row)) for row in await self._db.fetch(query, now, limit)]


class DeadlineUnitOfWork(PostgresUnitOfWork):
    clocks: PostgresClockRepository  # the scheduler's claims and the clock's description too

    def bind(self, connection: asyncpg.Connection) -> None:
        self.clocks = PostgresClockRepository(connection)


class DeadlineUnitOfWorkPort(Emitter, Protocol):
    """What the deadline service's handlers need of a unit of work."""

    @property
    def clocks(self) -> ClockRepository: ...


def _first(step: PlannedClock, at: datetime) -> datetime | None:
    """The first stage starts with the plan."""
    return at if step.stage == 1 else None
