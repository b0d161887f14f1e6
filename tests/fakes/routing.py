"""Routing's repository port, kept in dictionaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.routing.domain import RouteState, stages_of
from services.routing.repository import RouteRepository
from shared.events import DossierRouted, DossierSentBack, HandOffRecorded
from tests.fakes.unit_of_work import InMemoryUnitOfWork


class InMemoryRouteRepository(RouteRepository):
    def __init__(self) -> None:
        self.routes: dict[str, DossierRouted] = {}
        self.states: dict[str, RouteState] = {}

    async def add(self, routed: DossierRouted, receiving_unit_code: str, at: datetime) -> None:
        self.routes[routed.dossier_code] = routed
        stages = stages_of(routed.steps)
        self.states[routed.dossier_code] = RouteState(
            dossier_code=routed.dossier_code,
            receiving_unit_code=receiving_unit_code,
            competent_unit_code=routed.competent_unit_code,
            current_stage=1,
            step_units=tuple(s.unit_code for s in routed.steps),
            step_stages=stages,
            open_steps=tuple(s for s, st in enumerate(stages, start=1) if st == 1),
            stage_started_at=at,
        )

    async def lock(self, dossier_code: str) -> RouteState | None:
        return self.states.get(dossier_code)

    async def record_hand_off(self, hand_off: HandOffRecorded) -> None:
        state = self.states[hand_off.dossier_code]
        remaining = tuple(s for s in state.open_steps if s != hand_off.step_sequence)
        if remaining:
            state = replace(state, open_steps=remaining)
        else:
            state = replace(
                state,
                current_stage=state.current_stage + 1,
                open_steps=hand_off.started_steps,
                stage_started_at=hand_off.handed_off_at,
            )
        self.states[hand_off.dossier_code] = state

    async def record_send_back(self, sent_back: DossierSentBack, stage: int) -> None:
        state = self.states[sent_back.dossier_code]
        self.states[sent_back.dossier_code] = replace(
            state,
            current_stage=stage,
            open_steps=(sent_back.to_step_sequence,),
            stage_started_at=sent_back.sent_back_at,
        )


class InMemoryRoutingUnitOfWork(InMemoryUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.routes: RouteRepository = InMemoryRouteRepository()
