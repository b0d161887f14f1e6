"""Where routing keeps who holds each dossier and the plan of its steps."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Protocol

import asyncpg

from services.routing.domain import RouteState, stages_of
from shared.events import DossierRouted, DossierSentBack, HandOffRecorded
from shared.messaging.unit_of_work import Emitter, PostgresUnitOfWork


class RouteRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, routed: DossierRouted, receiving_unit_code: str, at: datetime) -> None: ...

    @abc.abstractmethod
    async def lock(self, dossier_code: str) -> RouteState | None:
        """The route, locked until the transaction ends; None if not routed."""

    @abc.abstractmethod
    async def record_hand_off(self, hand_off: HandOffRecorded) -> None:
        """Close the step; if it closed its stage, start the next one (or return the result)."""

    @abc.abstractmethod
    async def record_send_back(self, sent_back: DossierSentBack, stage: int) -> None:
        """Reopen the steps sent back to; `stage` (the target step's) is current again."""


class PostgresRouteRepository(RouteRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, routed: DossierRouted, receiving_unit_code: str, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO routes (dossier_code, procedure_code, competent_unit_code,"
            " current_unit_code, routed_at, receiving_unit_code, step_started_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            routed.dossier_code,
            routed.procedure_code,
            routed.competent_unit_code,
            routed.current_unit_code,
            routed.routed_at,
            receiving_unit_code,
            at,
        )
        await self._db.executemany(
            "INSERT INTO route_steps (dossier_code, sequence, unit_code, task, stage)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (routed.dossier_code, s.sequence, s.unit_code, s.task, stage)
                for s, stage in zip(routed.steps, stages_of(routed.steps), strict=True)
            ],
        )

    async def lock(self, dossier_code: str) -> RouteState | None:
        route = await self._db.fetchrow(
            "SELECT receiving_unit_code, competent_unit_code, current_step, step_started_at"
            " FROM routes WHERE dossier_code = $1 FOR UPDATE",
            dossier_code,
        )
        if route is None:
            return None
        steps = await self._db.fetch(
            "SELECT sequence, unit_code, stage, completed_at FROM route_steps"
            " WHERE dossier_code = $1 ORDER BY sequence",
            dossier_code,
        )
        stage = route["current_step"]
        return RouteState(
            dossier_code=dossier_code,
            receiving_unit_code=route["receiving_unit_code"],
            competent_unit_code=route["competent_unit_code"],
            current_stage=stage,
            step_units=tuple(s["unit_code"] for s in steps),
            step_stages=tuple(s["stage"] for s in steps),
            open_steps=tuple(
                s["sequence"] for s in steps if s["stage"] == stage and s["completed_at"] is None
            ),
            stage_started_at=route["step_started_at"],
        )

    async def record_hand_off(self, hand_off: HandOffRecorded) -> None:
        await self._db.execute(
            "UPDATE route_steps SET completed_at = $3, official = $4"
            " WHERE dossier_code = $1 AND sequence = $2",
            hand_off.dossier_code,
            hand_off.step_sequence,
            hand_off.handed_off_at,
            hand_off.official,
        )
        if hand_off.started_steps or hand_off.final:  # the stage is over
            await self._db.execute(
                "UPDATE routes SET current_step = current_step + 1, current_unit_code = $2,"
                " step_started_at = $3 WHERE dossier_code = $1",
                hand_off.dossier_code,
                hand_off.current_unit_code,
                hand_off.handed_off_at,
            )
        else:  # other parallel steps still open
            await self._db.execute(
                "UPDATE routes SET current_unit_code = $2 WHERE dossier_code = $1",
                hand_off.dossier_code,
                hand_off.current_unit_code,
            )

    async def record_send_back(self, sent_back: DossierSentBack, stage: int) -> None:
        await self._db.execute(
            "UPDATE route_steps SET completed_at = NULL, official = NULL"
            " WHERE dossier_code = $1 AND sequence = ANY($2::integer[])",
            sent_back.dossier_code,
            list(sent_back.reopened_steps),
        )
        await self._db.execute(
            "UPDATE routes SET current_step = $2, current_unit_code = $3, step_started_at = $4"
            " WHERE dossier_code = $1",
            sent_back.dossier_code,
            stage,
            sent_back.to_unit_code,
            sent_back.sent_back_at,
        )


class RoutingUnitOfWorkPort(Emitter, Protocol):
    """What routing's handlers need of a unit of work."""

    routes: RouteRepository


class RoutingUnitOfWork(PostgresUnitOfWork):
    routes: RouteRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.routes = PostgresRouteRepository(connection)
