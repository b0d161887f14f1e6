"""Where intake keeps dossiers: PostgreSQL, and an in-memory twin for unit tests."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from services.intake.ledger import Ledger
from services.intake.schemas import Receipt
from shared.events import DossierStatus
from shared.messaging.unit_of_work import InMemoryUnitOfWork, PostgresUnitOfWork


@dataclass(frozen=True)
class UnitWorkload:
    unit_code: str
    in_progress: int
    overdue: int


@dataclass
class StoredDossier:
    receipt: Receipt
    status: DossierStatus
    updated_at: datetime
    routing: dict[str, Any] | None = None
    deadline: dict[str, Any] | None = None
    notifier: dict[str, Any] | None = None


class DossierRepository(abc.ABC):
    @abc.abstractmethod
    async def next_sequence(self, unit_code: str, receipt_date: date) -> int:
        """The next number of the unit's daily sequence; serialised per unit and day."""

    @abc.abstractmethod
    async def add(
        self, receipt: Receipt, idempotency_key: str | None, traceparent: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def get(self, code: str) -> StoredDossier | None: ...

    @abc.abstractmethod
    async def code_for_idempotency_key(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        """Dossiers in progress at each unit that holds some, and how many are past due."""

    @abc.abstractmethod
    async def record_outcome(
        self, code: str, aspect: str, outcome: dict[str, Any], status: DossierStatus | None
    ) -> None:
        """Record what routing, deadline or notifier did (aspect is one of those names);
        `status` applies only to a dossier still in its first state, accepted."""


ASPECTS = ("routing", "deadline", "notifier")


class PostgresDossierRepository(DossierRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def next_sequence(self, unit_code: str, receipt_date: date) -> int:
        value = await self._db.fetchval(
            "INSERT INTO dossier_sequences AS s (unit_code, receipt_date, last_value)"
            " VALUES ($1, $2, 1) ON CONFLICT (unit_code, receipt_date)"
            " DO UPDATE SET last_value = s.last_value + 1 RETURNING last_value",
            unit_code,
            receipt_date,
        )
        return int(value)

    async def add(
        self, receipt: Receipt, idempotency_key: str | None, traceparent: str | None = None
    ) -> None:
        await self._db.execute(
            "INSERT INTO dossiers (code, procedure_code, receiving_unit_code, channel, status,"
            " received_at, appointment_at, receipt, idempotency_key, submission_traceparent,"
            " due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7)",
            receipt.dossier_code,
            receipt.procedure.code,
            receipt.receiving_unit.code,
            receipt.channel.value,
            int(DossierStatus.ACCEPTED),
            receipt.received_at,
            receipt.appointment_at,
            receipt.model_dump(mode="json"),
            idempotency_key,
            traceparent,
        )

    async def get(self, code: str) -> StoredDossier | None:
        row = await self._db.fetchrow(
            "SELECT receipt, status, updated_at, routing, deadline, notifier"
            " FROM dossiers WHERE code = $1",
            code,
        )
        if row is None:
            return None
        return StoredDossier(
            receipt=Receipt.model_validate(row["receipt"]),
            status=DossierStatus(row["status"]),
            updated_at=row["updated_at"],
            routing=row["routing"],
            deadline=row["deadline"],
            notifier=row["notifier"],
        )

    async def code_for_idempotency_key(self, key: str) -> str | None:
        code = await self._db.fetchval("SELECT code FROM dossiers WHERE idempotency_key = $1", key)
        return str(code) if code is not None else None

    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        rows = await self._db.fetch(
            "SELECT routing->>'current_unit_code' AS unit_code, count(*) AS in_progress,"
            " count(*) FILTER (WHERE (deadline->>'due_at')::timestamptz < $1) AS overdue"
            " FROM dossiers WHERE status = $2 AND routing IS NOT NULL GROUP BY 1",
            now,
            int(DossierStatus.PROCESSING),
        )
        return [UnitWorkload(r["unit_code"], r["in_progress"], r["overdue"]) for r in rows]

    async def record_outcome(
        self, code: str, aspect: str, outcome: dict[str, Any], status: DossierStatus | None
    ) -> None:
        if aspect not in ASPECTS:
            raise ValueError(f"unknown aspect {aspect!r}")
        await self._db.execute(
            f"UPDATE dossiers SET {aspect} = $2,"
            " status = CASE WHEN status = 2 THEN COALESCE($3, status) ELSE status END,"
            " updated_at = now() WHERE code = $1",
            code,
            outcome,
            int(status) if status is not None else None,
        )


class InMemoryDossierRepository(DossierRepository):
    def __init__(self) -> None:
        self.dossiers: dict[str, StoredDossier] = {}
        self.keys: dict[str, str] = {}
        self._sequences: dict[tuple[str, date], int] = {}

    async def next_sequence(self, unit_code: str, receipt_date: date) -> int:
        value = self._sequences.get((unit_code, receipt_date), 0) + 1
        self._sequences[(unit_code, receipt_date)] = value
        return value

    async def add(
        self, receipt: Receipt, idempotency_key: str | None, traceparent: str | None = None
    ) -> None:
        self.dossiers[receipt.dossier_code] = StoredDossier(
            receipt=receipt, status=DossierStatus.ACCEPTED, updated_at=receipt.received_at
        )
        if idempotency_key:
            self.keys[idempotency_key] = receipt.dossier_code

    async def get(self, code: str) -> StoredDossier | None:
        return self.dossiers.get(code)

    async def code_for_idempotency_key(self, key: str) -> str | None:
        return self.keys.get(key)

    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        workload: dict[str, list[int]] = {}
        for dossier in self.dossiers.values():
            if dossier.status is DossierStatus.PROCESSING and dossier.routing:
                counts = workload.setdefault(dossier.routing["current_unit_code"], [0, 0])
                counts[0] += 1
                due = dossier.deadline and datetime.fromisoformat(dossier.deadline["due_at"])
                counts[1] += bool(due and due < now)
        return [UnitWorkload(unit, *counts) for unit, counts in workload.items()]

    async def record_outcome(
        self, code: str, aspect: str, outcome: dict[str, Any], status: DossierStatus | None
    ) -> None:
        dossier = self.dossiers.get(code)
        if dossier is None:
            return
        setattr(dossier, aspect, outcome)
        if status is not None and dossier.status is DossierStatus.ACCEPTED:
            dossier.status = status


class IntakeUnitOfWork(PostgresUnitOfWork):
    dossiers: DossierRepository
    ledger: Ledger

    def bind(self, connection: asyncpg.Connection) -> None:
        self.dossiers = PostgresDossierRepository(connection)
        self.ledger = Ledger(connection)


class InMemoryIntakeUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, dossiers: InMemoryDossierRepository | None = None) -> None:
        super().__init__()
        self.dossiers: DossierRepository = dossiers or InMemoryDossierRepository()
