"""Routing's repository port, kept in dictionaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.routing.domain import RouteState
from services.routing.repository import RouteRepository
from shared.events import DossierRouted, HandOffRecorded
from tests.fakes.unit_of_work import InMemoryUnitOfWork


class InMemoryRouteRepository(RouteRepository):
    def __init__(self) -> None:
        self.routes: dict[str, DossierRouted] = {}
        self.states: dict[str, RouteState] = {}

    async def add(self, routed: DossierRouted, receiving_unit_code: str, at: datetime) -> None:
        self.routes[routed.dossier_code] = routed
        self.states[routed.dossier_code] = RouteState(
            dossier_code=routed.dossier_code,
            receiving_unit_code=receiving_unit_code,
            competent_unit_code=routed.competent_unit_code,
            current_step=1,
            step_units=tuple(s.unit_code for s in routed.steps),
            step_started_at=at,
        )

    async def lock(self, dossier_code: str) -> RouteState | None:
        return self.states.get(dossier_code)

    async def record_hand_off(self, hand_off: HandOffRecorded) -> None:
        state = self.states[hand_off.dossier_code]
        self.states[hand_off.dossier_code] = replace(
            state, current_step=hand_off.step_sequence + 1, step_started_at=hand_off.handed_off_at
        )


class InMemoryRoutingUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.routes: RouteRepository = InMemoryRouteRepository()
