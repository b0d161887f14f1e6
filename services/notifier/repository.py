"""Where the notifier keeps what it owes."""

from __future__ import annotations

import abc

import asyncpg

from shared.events import ApologyObligationRecorded
from shared.messaging.unit_of_work import InMemoryUnitOfWork, PostgresUnitOfWork


class ObligationRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, obligation: ApologyObligationRecorded) -> None: ...


class PostgresObligationRepository(ObligationRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, obligation: ApologyObligationRecorded) -> None:
        await self._db.execute(
            "INSERT INTO apology_obligations (dossier_code, responsible_unit_code, signer_title,"
            " apology_due_by, due_at) VALUES ($1, $2, $3, $4, $5)",
            obligation.dossier_code,
            obligation.responsible_unit_code,
            obligation.signer_title,
            obligation.apology_due_by,
            obligation.due_at,
        )


class InMemoryObligationRepository(ObligationRepository):
    def __init__(self) -> None:
        self.obligations: dict[str, ApologyObligationRecorded] = {}

    async def add(self, obligation: ApologyObligationRecorded) -> None:
        self.obligations[obligation.dossier_code] = obligation


class NotifierUnitOfWork(PostgresUnitOfWork):
    obligations: ObligationRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.obligations = PostgresObligationRepository(connection)


class InMemoryNotifierUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.obligations: ObligationRepository = InMemoryObligationRepository()
