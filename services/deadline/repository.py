"""Where the deadline service keeps each dossier's clock."""

from __future__ import annotations

import abc

import asyncpg

from shared.events import DossierClockStarted
from shared.messaging.unit_of_work import InMemoryUnitOfWork, PostgresUnitOfWork


class ClockRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, clock: DossierClockStarted) -> None: ...


class PostgresClockRepository(ClockRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, clock: DossierClockStarted) -> None:
        await self._db.execute(
            "INSERT INTO clocks (dossier_code, responsible_unit_code, started_at, due_at,"
            " due_soon_at) VALUES ($1, $2, $3, $4, $5)",
            clock.dossier_code,
            clock.responsible_unit_code,
            clock.started_at,
            clock.due_at,
            clock.due_soon_at,
        )


class InMemoryClockRepository(ClockRepository):
    def __init__(self) -> None:
        self.clocks: dict[str, DossierClockStarted] = {}

    async def add(self, clock: DossierClockStarted) -> None:
        self.clocks[clock.dossier_code] = clock


class DeadlineUnitOfWork(PostgresUnitOfWork):
    clocks: ClockRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.clocks = PostgresClockRepository(connection)


class InMemoryDeadlineUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.clocks: ClockRepository = InMemoryClockRepository()
