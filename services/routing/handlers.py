"""Routing's handlers: a received dossier is assigned to its competent unit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.routing.domain import route
from services.routing.repository import InMemoryRoutingUnitOfWork, RoutingUnitOfWork
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from shared.events import DossierReceived


@dataclass(frozen=True)
class Routing:
    catalog: Catalog
    calendar: WorkingCalendar
    clock: Callable[[], datetime]

    async def on_dossier_received(
        self, event: DossierReceived, uow: RoutingUnitOfWork | InMemoryRoutingUnitOfWork
    ) -> None:
        routed = route(event, self.catalog, self.calendar, routed_at=self.clock())
        await uow.routes.add(routed)
        uow.emit(routed, occurred_at=routed.routed_at)
