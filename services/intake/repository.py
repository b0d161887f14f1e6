"""Where intake keeps dossiers: the port its handlers use, and the PostgreSQL adapter.

A dossier row holds intake's own facts (the receipt, the portal status, supplement requests)
and the projection of the other services' events (columns that each event updates)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

import asyncpg

from services.intake.ledger import Ledger
from services.intake.ratings import RatingStore
from services.intake.schemas import (
    DeadlineOut,
    DossierView,
    NotifierOut,
    PlannedStepOut,
    Receipt,
    RoutingOut,
    StatusOut,
)
from services.intake.web_signin import PostgresWebSessions, WebSessions
from shared.access_log import AccessLog, PostgresAccessLog
from shared.events import DossierStatus
from shared.messaging.unit_of_work import Emitter, PostgresUnitOfWork


@dataclass(frozen=True)
class IdempotencyKey:
    """A counter's retry key: its own (scoped to the caller) and bound to the body it came with."""

    subject: str
    key: str
    body_sha256: str


@dataclass(frozen=True)
class UnitWorkload:
    unit_code: str
    in_progress: int
    overdue: int


class DailySequences(abc.ABC):
    """The numbers of dossier codes, per receiving unit and day (the NNNN of the code).

    A number is taken in a transaction of its own, before the dossier's: a busy unit's
    receipts then wait on its counter row only for one statement, not until each dossier
    commits. Unique, increasing, but gap-tolerant: a dossier whose transaction fails after
    taking its number (a storage error, an Idempotency-Key repeated or raced) leaves that
    number unused, and the unit reaches the 409 daily_sequence_exhausted that much earlier."""

    def __init__(self) -> None:
        self.highest: dict[str, tuple[date, int]] = {}  # unit -> its latest day, highest taken

    async def next(self, unit_code: str, receipt_date: date) -> int:
        value = await self._take(unit_code, receipt_date)
        latest = self.highest.get(unit_code)
        if latest is None or (receipt_date, value) > latest:
            self.highest[unit_code] = (receipt_date, value)
        return value

    @abc.abstractmethod
    async def _take(self, unit_code: str, receipt_date: date) -> int: ...


class PostgresDailySequences(DailySequences):
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        super().__init__()
        self._pool = pool

    async def _take(self, unit_code: str, receipt_date: date) -> int:
        # Autocommit on a connection of its own, released before the dossier's is taken.
        value = await self._pool().fetchval(
            "INSERT INTO dossier_sequences AS s (unit_code, receipt_date, last_value)"
            " VALUES ($1, $2, 1) ON CONFLICT (unit_code, receipt_date)"
            " DO UPDATE SET last_value = s.last_value + 1 RETURNING last_value",
            unit_code,
            receipt_date,
        )
        return int(value)


class DossierRepository(abc.ABC):
    @abc.abstractmethod
    async def add(
        self,
        receipt: Receipt,
        idempotency: IdempotencyKey | None,
        traceparent: str | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def receipt(self, code: str) -> Receipt | None: ...

    @abc.abstractmethod
    async def view(self, code: str) -> DossierView | None:
        """The dossier as it stands: receipt, status and the other services' facts."""

    @abc.abstractmethod
    async def consulted_units(self, code: str) -> set[str]:
        """The units asked for their opinion on the dossier: they may read it."""

    @abc.abstractmethod
    async def find_idempotent(self, subject: str, key: str) -> tuple[str, str] | None:
        """The dossier code and body digest first stored under this caller's key."""

    @abc.abstractmethod
    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        """Dossiers in progress at each unit that holds them now, and how many are past their
        current due time (paused ones are not counted as past due)."""


class PostgresDossierRepository(DossierRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(
        self,
        receipt: Receipt,
        idempotency: IdempotencyKey | None,
        traceparent: str | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO dossiers (code, procedure_code, receiving_unit_code, channel, status,"
            " received_at, appointment_at, receipt, idempotency_key, submission_traceparent,"
            " idempotency_subject, idempotency_body_sha256)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            receipt.dossier_code,
            receipt.procedure.code,
            receipt.receiving_unit.code,
            receipt.channel.value,
            int(DossierStatus.ACCEPTED),
            receipt.received_at,
            receipt.appointment_at,
            receipt.model_dump(mode="json", exclude={"lookup_pin"}),
            idempotency.key if idempotency else None,
            traceparent,
            idempotency.subject if idempotency else None,
            idempotency.body_sha256 if idempotency else None,
        )

    async def receipt(self, code: str) -> Receipt | None:
        stored = await self._db.fetchval("SELECT receipt FROM dossiers WHERE code = $1", code)
        return Receipt.model_validate(stored) if stored is not None else None

    async def consulted_units(self, code: str) -> set[str]:
        rows = await self._db.fetch(
            "SELECT DISTINCT unit_code FROM consultations WHERE dossier_code = $1", code
        )
        return {row["unit_code"] for row in rows}

    async def view(self, code: str) -> DossierView | None:
        row = await self._db.fetchrow("SELECT * FROM dossiers WHERE code = $1", code)
        if row is None:
            return None
        steps = await Ledger(self._db).steps(code)
        receipt = Receipt.model_validate(row["receipt"])
        return DossierView(
            dossier_code=code,
            status=StatusOut.of(DossierStatus(row["status"])),
            trace_id=receipt.trace_id,
            receipt=receipt,
            routing=_routing(row, steps),
            deadline=_deadline(row),
            notifier=_notifier(row),
            updated_at=row["updated_at"],
        )

    async def find_idempotent(self, subject: str, key: str) -> tuple[str, str] | None:
        row = await self._db.fetchrow(
            "SELECT code, idempotency_body_sha256 FROM dossiers"
            " WHERE idempotency_subject = $1 AND idempotency_key = $2",
            subject,
            key,
        )
        return (row["code"], row["idempotency_body_sha256"]) if row is not None else None

    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        rows = await self._db.fetch(
            "SELECT current_unit_code AS unit_code, count(*) AS in_progress,"
            " count(*) FILTER (WHERE due_at < $1 AND paused_since IS NULL) AS overdue"
            " FROM dossiers WHERE closed_at IS NULL AND completed_at IS NULL"
            " AND current_unit_code IS NOT NULL AND status = ANY($2::smallint[]) GROUP BY 1",
            now,
            [int(s) for s in IN_PROGRESS],
        )
        return [UnitWorkload(r["unit_code"], r["in_progress"], r["overdue"]) for r in rows]


IN_PROGRESS = (
    DossierStatus.PROCESSING,
    DossierStatus.SUPPLEMENT_REQUESTED,
    DossierStatus.FINANCIAL_OBLIGATION_REQUESTED,
)


def _routing(row: asyncpg.Record, steps: list[asyncpg.Record]) -> RoutingOut | None:
    if row["routed_at"] is None:
        return None
    return RoutingOut(
        competent_unit_code=row["competent_unit_code"],
        current_unit_code=row["current_unit_code"],
        current_step=row["current_step"],
        holder_since=row["holder_since"],
        routed_at=row["routed_at"],
        steps=[
            PlannedStepOut(
                sequence=step["step_sequence"],
                unit_code=step["unit_code"],
                unit_name=step["unit_name"],
                task=step["task"],
                due_at=step["due_at"],
                started_at=step["started_at"],
                finished_at=step["finished_at"],
                official=step["official"],
                timeliness=step["timeliness"],
            )
            for step in steps
        ],
        last_rejected_hand_off=row["last_rejection"],
        holding_unit_codes=row["holding_unit_codes"] or [],
        last_send_back=row["last_send_back"],
    )


def _deadline(row: asyncpg.Record) -> DeadlineOut | None:
    if row["clock_started_at"] is None:
        return None
    return DeadlineOut(
        started_at=row["clock_started_at"],
        due_at=row["due_at"],
        due_soon_at=row["due_soon_at"],
        paused_since=row["paused_since"],
        overdue_at=row["overdue_at"],
        supplement_due_at=row["supplement_due_at"],
        supplement_missed_at=row["supplement_missed_at"],
        completed_at=row["completed_at"],
        timeliness=row["timeliness"],
    )


def _notifier(row: asyncpg.Record) -> NotifierOut | None:
    if row["apology_signer"] is None and row["apology_issued_at"] is None:
        return None
    return NotifierOut(
        signer_title=row["apology_signer"],
        apology_due_by=row["apology_due_by"],
        apology_issued_at=row["apology_issued_at"],
    )


class ReceivingUnitOfWork(Emitter, Protocol):
    """What receiving a dossier and reading one need of a unit of work."""

    dossiers: DossierRepository
    access_log: AccessLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class IntakeUnitOfWorkPort(ReceivingUnitOfWork, Protocol):
    """What the lifecycle commands and the projections need of a unit of work."""

    ledger: Ledger


class IntakeUnitOfWork(PostgresUnitOfWork):
    dossiers: DossierRepository
    ledger: Ledger
    access_log: AccessLog
    ratings: RatingStore
    web_sessions: WebSessions

    def bind(self, connection: asyncpg.Connection) -> None:
        self.dossiers = PostgresDossierRepository(connection)
        self.ledger = Ledger(connection)
        self.access_log = PostgresAccessLog(connection)
        self.ratings = RatingStore(connection)
        self.web_sessions = PostgresWebSessions(connection)


async def erase_applicants(
    connection: asyncpg.Connection, ended_before: datetime, limit: int
) -> int:
    """Personal data retention: the applicant in the receipts of dossiers closed before
    `ended_before` becomes null (at most `limit` dossiers); the dossier and the rest stay."""
    erased: str = await connection.execute(
        "UPDATE dossiers SET receipt = jsonb_set(receipt, '{applicant}', 'null'::jsonb),"
        " personal_data_erased_at = now() WHERE code IN (SELECT code FROM dossiers"
        " WHERE closed_at < $1 AND personal_data_erased_at IS NULL ORDER BY closed_at"
        " LIMIT $2 FOR UPDATE SKIP LOCKED)",
        ended_before,
        limit,
    )
    # The citizens' comments may hold personal data too: they go with the applicant (also
    # those written after the applicant was erased).
    await connection.execute(
        "UPDATE ratings SET comment = NULL FROM dossiers WHERE dossiers.code = ratings.dossier_code"
        " AND dossiers.personal_data_erased_at IS NOT NULL AND ratings.comment IS NOT NULL"
    )
    return int(erased.rsplit(" ", 1)[-1])
