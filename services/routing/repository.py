"""Where routing keeps who holds each dossier and the plan of its steps."""

from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from shared.events import DossierRouted
from shared.messaging.unit_of_work import InMemoryUnitOfWork, PostgresUnitOfWork


@dataclass(frozen=True)
class RouteState:
    dossier_code: str
    receiving_unit_code: str
    competent_unit_code: str
    current_step: int
    step_units: tuple[str, ...]
    step_due_at: tuple[datetime, ...]
    step_started_at: datetime


class RouteNotFound(Exception):
    """An event arrived for a dossier routing has not routed (yet)."""


class RouteRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, routed: DossierRouted, receiving_unit_code: str) -> None: ...

    @abc.abstractmethod
    async def lock(self, dossier_code: str) -> RouteState: ...

    @abc.abstractmethod
    async def complete_step(
        self, state: RouteState, *, official: str, at: datetime, timeliness: str
    ) -> None:
        """Close the current step and start the next one at `at`."""

    @abc.abstractmethod
    async def shift_open_steps(self, dossier_code: str, due_at: list[datetime]) -> None:
        """New due times for the steps not completed yet (after a pause)."""


class PostgresRouteRepository(RouteRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, routed: DossierRouted, receiving_unit_code: str) -> None:
        await self._db.execute(
            "INSERT INTO routes (dossier_code, procedure_code, competent_unit_code,"
            " current_unit_code, due_at, routed_at, receiving_unit_code, step_started_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            routed.dossier_code,
            routed.procedure_code,
            routed.competent_unit_code,
            routed.current_unit_code,
            routed.due_at,
            routed.routed_at,
            receiving_unit_code,
            routed.received_at,
        )
        await self._db.executemany(
            "INSERT INTO route_steps (dossier_code, sequence, unit_code, task, due_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (routed.dossier_code, s.sequence, s.unit_code, s.task, s.due_at)
                for s in routed.steps
            ],
        )

    async def lock(self, dossier_code: str) -> RouteState:
        route = await self._db.fetchrow(
            "SELECT receiving_unit_code, competent_unit_code, current_step, step_started_at"
            " FROM routes"
            " WHERE dossier_code = $1 FOR UPDATE",
            dossier_code,
        )
        if route is None:
            raise RouteNotFound(dossier_code)
        steps = await self._db.fetch(
            "SELECT unit_code, due_at FROM route_steps WHERE dossier_code = $1 ORDER BY sequence",
            dossier_code,
        )
        return RouteState(
            dossier_code=dossier_code,
            receiving_unit_code=route["receiving_unit_code"],
            competent_unit_code=route["competent_unit_code"],
            current_step=route["current_step"],
            step_units=tuple(s["unit_code"] for s in steps),
            step_due_at=tuple(s["due_at"] for s in steps),
            step_started_at=route["step_started_at"],
        )

    async def complete_step(
        self, state: RouteState, *, official: str, at: datetime, timeliness: str
    ) -> None:
        await self._db.execute(
            "UPDATE route_steps SET completed_at = $3, official = $4, timeliness = $5"
            " WHERE dossier_code = $1 AND sequence = $2",
            state.dossier_code,
            state.current_step,
            at,
            official,
            timeliness,
        )
        following = state.current_step + 1
        holder = (
            state.step_units[following - 1]
            if following <= len(state.step_units)
            else state.receiving_unit_code
        )
        await self._db.execute(
            "UPDATE routes SET current_step = $2, current_unit_code = $3, step_started_at = $4"
            " WHERE dossier_code = $1",
            state.dossier_code,
            following,
            holder,
            at,
        )

    async def shift_open_steps(self, dossier_code: str, due_at: list[datetime]) -> None:
        await self._db.executemany(
            "UPDATE route_steps SET due_at = $3"
            " WHERE dossier_code = $1 AND sequence = $2 AND completed_at IS NULL",
            [(dossier_code, sequence, due) for sequence, due in enumerate(due_at, start=1)],
        )


class InMemoryRouteRepository(RouteRepository):
    def __init__(self) -> None:
        self.routes: dict[str, DossierRouted] = {}
        self.states: dict[str, RouteState] = {}

    async def add(self, routed: DossierRouted, receiving_unit_code: str) -> None:
        self.routes[routed.dossier_code] = routed
        self.states[routed.dossier_code] = RouteState(
            dossier_code=routed.dossier_code,
            receiving_unit_code=receiving_unit_code,
            competent_unit_code=routed.competent_unit_code,
            current_step=1,
            step_units=tuple(s.unit_code for s in routed.steps),
            step_due_at=tuple(s.due_at for s in routed.steps),
            step_started_at=routed.received_at,
        )

    async def lock(self, dossier_code: str) -> RouteState:
        if dossier_code not in self.states:
            raise RouteNotFound(dossier_code)
        return self.states[dossier_code]

    async def complete_step(
        self, state: RouteState, *, official: str, at: datetime, timeliness: str
    ) -> None:
        self.states[state.dossier_code] = replace(
            state, current_step=state.current_step + 1, step_started_at=at
        )

    async def shift_open_steps(self, dossier_code: str, due_at: list[datetime]) -> None:
        state = self.states[dossier_code]
        kept = [
            old if index < state.current_step - 1 else new
            for index, (old, new) in enumerate(zip(state.step_due_at, due_at, strict=True))
        ]
        self.states[dossier_code] = replace(state, step_due_at=tuple(kept))


class RoutingUnitOfWork(PostgresUnitOfWork):
    routes: RouteRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.routes = PostgresRouteRepository(connection)


class InMemoryRoutingUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.routes: RouteRepository = InMemoryRouteRepository()
