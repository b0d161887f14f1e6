"""Where routing keeps who holds each dossier."""

from __future__ import annotations

import abc

import asyncpg

from shared.events import DossierRouted
from shared.messaging.unit_of_work import InMemoryUnitOfWork, PostgresUnitOfWork


class RouteRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, routed: DossierRouted) -> None: ...


class PostgresRouteRepository(RouteRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, routed: DossierRouted) -> None:
        await self._db.execute(
            "INSERT INTO routes (dossier_code, procedure_code, competent_unit_code,"
            " current_unit_code, due_at, routed_at) VALUES ($1, $2, $3, $4, $5, $6)",
            routed.dossier_code,
            routed.procedure_code,
            routed.competent_unit_code,
            routed.current_unit_code,
            routed.due_at,
            routed.routed_at,
        )
        await self._db.executemany(
            "INSERT INTO route_steps (dossier_code, sequence, unit_code, task, due_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (routed.dossier_code, s.sequence, s.unit_code, s.task, s.due_at)
                for s in routed.steps
            ],
        )


class InMemoryRouteRepository(RouteRepository):
    def __init__(self) -> None:
        self.routes: dict[str, DossierRouted] = {}

    async def add(self, routed: DossierRouted) -> None:
        self.routes[routed.dossier_code] = routed


class RoutingUnitOfWork(PostgresUnitOfWork):
    routes: RouteRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.routes = PostgresRouteRepository(connection)


class InMemoryRoutingUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.routes: RouteRepository = InMemoryRouteRepository()
