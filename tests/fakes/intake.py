"""Intake's dossier repository port, kept in dictionaries (receipts only, no projections)."""

from __future__ import annotations

from datetime import date, datetime

from services.intake.repository import DossierRepository, UnitWorkload
from services.intake.schemas import DossierView, Receipt, StatusOut
from shared.events import DossierStatus
from tests.fakes.unit_of_work import InMemoryUnitOfWork


class InMemoryDossierRepository(DossierRepository):
    """For the HTTP API's unit tests: receipts only, no projections."""

    def __init__(self) -> None:
        self.receipts: dict[str, Receipt] = {}
        self.keys: dict[str, str] = {}
        self._sequences: dict[tuple[str, date], int] = {}

    async def next_sequence(self, unit_code: str, receipt_date: date) -> int:
        value = self._sequences.get((unit_code, receipt_date), 0) + 1
        self._sequences[(unit_code, receipt_date)] = value
        return value

    async def add(
        self, receipt: Receipt, idempotency_key: str | None, traceparent: str | None = None
    ) -> None:
        self.receipts[receipt.dossier_code] = receipt
        if idempotency_key:
            self.keys[idempotency_key] = receipt.dossier_code

    async def receipt(self, code: str) -> Receipt | None:
        return self.receipts.get(code)

    async def view(self, code: str) -> DossierView | None:
        receipt = self.receipts.get(code)
        if receipt is None:
            return None
        return DossierView(
            dossier_code=code,
            status=StatusOut.of(DossierStatus.ACCEPTED),
            trace_id=receipt.trace_id,
            receipt=receipt,
            updated_at=receipt.received_at,
        )

    async def code_for_idempotency_key(self, key: str) -> str | None:
        return self.keys.get(key)

    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        return []


class InMemoryIntakeUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, dossiers: InMemoryDossierRepository | None = None) -> None:
        super().__init__()
        self.dossiers: DossierRepository = dossiers or InMemoryDossierRepository()
