"""The notifier's handlers: a started clock tells it which apology it may come to owe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.notifier.domain import apology_obligation
from services.notifier.repository import InMemoryNotifierUnitOfWork, NotifierUnitOfWork
from shared.catalog import Catalog
from shared.events import DossierClockStarted


@dataclass(frozen=True)
class Notifier:
    catalog: Catalog
    clock: Callable[[], datetime]

    async def on_clock_started(
        self, event: DossierClockStarted, uow: NotifierUnitOfWork | InMemoryNotifierUnitOfWork
    ) -> None:
        obligation = apology_obligation(event, self.catalog)
        await uow.obligations.add(obligation)
        uow.emit(obligation, occurred_at=self.clock())
