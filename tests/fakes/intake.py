"""Intake's dossier repository port, kept in dictionaries (receipts only, no projections)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from services.intake.repository import (
    DailySequences,
    DossierRepository,
    IdempotencyKey,
    UnitWorkload,
)
from services.intake.schemas import DossierView, Receipt, StatusOut
from services.intake.web_signin import PendingSignIn, WebSession, WebSessions
from shared.access_log import AccessLog, PersonalDataAccess
from shared.events import DossierStatus
from tests.fakes.unit_of_work import InMemoryUnitOfWork


class InMemoryDailySequences(DailySequences):
    def __init__(self) -> None:
        super().__init__()
        self._sequences: dict[tuple[str, date], int] = {}

    def used(self, unit_code: str, receipt_date: date, value: int) -> None:
        """As if the unit had taken `value` numbers that day."""
        self._sequences[(unit_code, receipt_date)] = value

    async def _take(self, unit_code: str, receipt_date: date) -> int:
        value = self._sequences.get((unit_code, receipt_date), 0) + 1
        self._sequences[(unit_code, receipt_date)] = value
        return value


class InMemoryDossierRepository(DossierRepository):
    """For the HTTP API's unit tests: receipts only, no projections."""

    def __init__(self) -> None:
        self.receipts: dict[str, Receipt] = {}
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}

    async def add(
        self,
        receipt: Receipt,
        idempotency: IdempotencyKey | None,
        traceparent: str | None = None,
    ) -> None:
        self.receipts[receipt.dossier_code] = receipt.model_copy(update={"lookup_pin": None})
        if idempotency:
            self.keys[(idempotency.subject, idempotency.key)] = (
                receipt.dossier_code,
                idempotency.body_sha256,
            )

    async def receipt(self, code: str) -> Receipt | None:
        return self.receipts.get(code)

    async def consulted_units(self, code: str) -> set[str]:
        return set()  # consultations are kept by the PostgreSQL ledger only

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

    async def find_idempotent(self, subject: str, key: str) -> tuple[str, str] | None:
        return self.keys.get((subject, key))

    async def workload_by_unit(self, now: datetime) -> list[UnitWorkload]:
        return []


class InMemoryIntakeUnitOfWork(InMemoryUnitOfWork):
    def __init__(
        self,
        dossiers: InMemoryDossierRepository | None = None,
        access_log: InMemoryAccessLog | None = None,
    ) -> None:
        super().__init__()
        self.dossiers: DossierRepository = dossiers or InMemoryDossierRepository()
        self.access_log: AccessLog = access_log or InMemoryAccessLog()
        self.web_sessions: WebSessions = InMemoryWebSessions()


class InMemoryAccessLog(AccessLog):
    def __init__(self) -> None:
        self.accesses: list[PersonalDataAccess] = []

    async def record(self, access: PersonalDataAccess) -> None:
        self.accesses.append(access)

    async def entries(
        self,
        *,
        dossier_code: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[PersonalDataAccess]:
        found = [
            a
            for a in reversed(self.accesses)
            if dossier_code in (None, a.dossier_code)
            and subject in (None, a.subject)
            and (since is None or a.accessed_at >= since)
            and (until is None or a.accessed_at < until)
        ]
        return found[:limit]


class InMemoryWebSessions(WebSessions):
    def __init__(self) -> None:
        self.pending: dict[str, PendingSignIn] = {}
        self.sessions: dict[str, WebSession] = {}

    async def begin(self, pending: PendingSignIn) -> None:
        self.pending[pending.state] = pending

    async def take_pending(self, state: str, now: datetime) -> PendingSignIn | None:
        pending = self.pending.pop(state, None)
        return pending if pending and pending.expires_at > now else None

    async def open(self, key: str, session: WebSession) -> None:
        self.sessions[key] = session

    async def find(self, key: str) -> WebSession | None:
        return self.sessions.get(key)

    async def touch(self, key: str, now: datetime) -> None:
        self.sessions[key] = replace(self.sessions[key], last_seen_at=now)

    async def close(self, key: str) -> WebSession | None:
        return self.sessions.pop(key, None)

    async def purge(self, now: datetime, idle: timedelta) -> None:
        for key, session in list(self.sessions.items()):
            if not session.alive(now, idle):
                del self.sessions[key]
        for state, pending in list(self.pending.items()):
            if pending.expires_at <= now:
                del self.pending[state]
