"""Routing's handlers: a received dossier goes to its competent unit with the plan of its
process; a requested hand-off moves it to the next unit (a row of the processing control
slip, Mẫu 06) or is rejected, naming why; so is a requested send-back to an earlier step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.routing.domain import decide_hand_off, decide_send_back, route
from services.routing.repository import RoutingUnitOfWorkPort
from shared.catalog import Catalog
from shared.events import (
    DossierReceived,
    DossierSentBack,
    HandOffRecorded,
    HandOffRequested,
    SendBackRequested,
)
from shared.messaging.parking import PrerequisiteMissing


class NotRoutedYet(PrerequisiteMissing):
    """A hand-off for a dossier routing has not routed: its DossierReceived is missing (both
    come from intake's topic, in order, so it was dead-lettered or never published)."""


@dataclass(frozen=True)
class Routing:
    catalog: Catalog
    clock: Callable[[], datetime]

    async def on_dossier_received(self, event: DossierReceived, uow: RoutingUnitOfWorkPort) -> None:
        routed = route(event, self.catalog, routed_at=self.clock())
        await uow.routes.add(routed, event.receiving_unit_code, at=event.received_at)
        uow.emit(routed, occurred_at=routed.routed_at)

    async def on_hand_off_requested(
        self, event: HandOffRequested, uow: RoutingUnitOfWorkPort
    ) -> None:
        state = await uow.routes.lock(event.dossier_code)
        if state is None:
            raise NotRoutedYet(f"dossier {event.dossier_code} is not routed")
        decision = decide_hand_off(state, event, now=self.clock())
        if isinstance(decision, HandOffRecorded):
            await uow.routes.record_hand_off(decision)
            uow.emit(decision, occurred_at=decision.handed_off_at)
        else:
            uow.emit(decision, occurred_at=decision.rejected_at)

    async def on_send_back_requested(
        self, event: SendBackRequested, uow: RoutingUnitOfWorkPort
    ) -> None:
        state = await uow.routes.lock(event.dossier_code)
        if state is None:
            raise NotRoutedYet(f"dossier {event.dossier_code} is not routed")
        decision = decide_send_back(state, event, now=self.clock())
        if isinstance(decision, DossierSentBack):
            stage = state.step_stages[decision.to_step_sequence - 1]
            await uow.routes.record_send_back(decision, stage)
            uow.emit(decision, occurred_at=decision.sent_back_at)
        else:
            uow.emit(decision, occurred_at=decision.rejected_at)
