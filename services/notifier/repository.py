"""Where the notifier keeps what it owes and what it sent (PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.events import ApologyObligationRecorded, DossierReceived
from shared.messaging.parking import PrerequisiteMissing
from shared.messaging.unit_of_work import PostgresUnitOfWork


class AddresseeUnknown(PrerequisiteMissing):
    """The dossier's receipt (on intake's topic) has not been applied yet."""


class ObligationUnknown(PrerequisiteMissing):
    """The dossier's clock (on the deadline service's topic) has not been applied yet."""


@dataclass(frozen=True)
class StoredAddressee:
    dossier_code: str
    procedure_name: str
    receiving_unit_code: str
    received_at: datetime
    full_name: str
    address: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class PendingLetter:
    dossier_code: str
    channel: str
    letter: dict[str, Any]
    html: str
    pdf: bytes
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class PendingAlert:
    dossier_code: str
    kind: str
    step_sequence: int
    unit_code: str
    recipients: list[str]
    raised_at: datetime


class NotifierRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add_obligation(self, obligation: ApologyObligationRecorded) -> None:
        await self._db.execute(
            "INSERT INTO apology_obligations (dossier_code, responsible_unit_code, signer_title,"
            " apology_due_by, due_at) VALUES ($1, $2, $3, $4, $5)",
            obligation.dossier_code,
            obligation.responsible_unit_code,
            obligation.signer_title,
            obligation.apology_due_by,
            obligation.due_at,
        )

    async def add_addressee(self, received: DossierReceived) -> None:
        await self._db.execute(
            "INSERT INTO addressees (dossier_code, procedure_name, receiving_unit_code,"
            " received_at, full_name, address, email, phone)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            received.dossier_code,
            received.procedure_name,
            received.receiving_unit_code,
            received.received_at,
            received.applicant.full_name,
            received.applicant.address,
            received.applicant.email,
            received.applicant.phone,
        )

    async def addressee(self, dossier_code: str) -> StoredAddressee:
        row = await self._db.fetchrow(
            "SELECT * FROM addressees WHERE dossier_code = $1", dossier_code
        )
        if row is None:
            raise AddresseeUnknown(f"no addressee for {dossier_code} yet")
        return StoredAddressee(**dict(row))

    async def move_obligation(
        self, dossier_code: str, due_at: datetime, apology_due_by: datetime
    ) -> None:
        await self._db.execute(
            "UPDATE apology_obligations SET due_at = $2, apology_due_by = $3"
            " WHERE dossier_code = $1",
            dossier_code,
            due_at,
            apology_due_by,
        )

    async def obligation_due_at(self, dossier_code: str) -> datetime:
        due = await self._db.fetchval(
            "SELECT due_at FROM apology_obligations WHERE dossier_code = $1", dossier_code
        )
        if due is None:
            raise ObligationUnknown(f"no apology obligation for {dossier_code} yet")
        return due

    async def has_apology(self, dossier_code: str) -> bool:
        return bool(
            await self._db.fetchval("SELECT 1 FROM apologies WHERE dossier_code = $1", dossier_code)
        )

    async def next_letter_number(self, unit_code: str, year: int) -> int:
        return int(
            await self._db.fetchval(
                "INSERT INTO letter_numbers AS n (unit_code, year, last_value) VALUES ($1, $2, 1)"
                " ON CONFLICT (unit_code, year) DO UPDATE SET last_value = n.last_value + 1"
                " RETURNING last_value",
                unit_code,
                year,
            )
        )

    async def add_apology(
        self,
        *,
        dossier_code: str,
        letter_number: str,
        unit_code: str,
        signer_title: str,
        reason: str,
        original_due_at: datetime,
        new_due_at: datetime,
        issued_at: datetime,
        channel: str,
        letter: dict[str, Any],
        html: str,
        pdf: bytes,
    ) -> None:
        await self._db.execute(
            "INSERT INTO apologies (dossier_code, letter_number, unit_code, signer_title, reason,"
            " original_due_at, new_due_at, issued_at, channel, letter, html, pdf)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            dossier_code,
            letter_number,
            unit_code,
            signer_title,
            reason,
            original_due_at,
            new_due_at,
            issued_at,
            channel,
            letter,
            html,
            pdf,
        )
        await self._db.execute(
            "UPDATE apology_obligations SET issued_at = $2 WHERE dossier_code = $1",
            dossier_code,
            issued_at,
        )

    async def letter(self, dossier_code: str) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "SELECT dossier_code, letter_number, unit_code, issued_at, new_due_at, channel,"
            " delivered_at, html, pdf FROM apologies WHERE dossier_code = $1",
            dossier_code,
        )

    async def add_alert(
        self,
        *,
        dossier_code: str,
        kind: str,
        step_sequence: int,
        unit_code: str,
        recipients: list[str],
        raised_at: datetime,
    ) -> bool:
        """False when this alert was already raised (one per dossier, kind and step)."""
        return bool(
            await self._db.fetchval(
                "INSERT INTO alerts (dossier_code, kind, step_sequence, unit_code, recipients,"
                " raised_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
                dossier_code,
                kind,
                step_sequence,
                unit_code,
                recipients,
                raised_at,
            )
        )

    async def claim_undelivered_letters(self, limit: int) -> list[PendingLetter]:
        rows = await self._db.fetch(
            "SELECT a.dossier_code, a.channel, a.letter, a.html, a.pdf, d.email, d.phone"
            " FROM apologies a JOIN addressees d USING (dossier_code)"
            " WHERE a.delivered_at IS NULL ORDER BY a.issued_at LIMIT $1"
            " FOR UPDATE OF a SKIP LOCKED",
            limit,
        )
        return [PendingLetter(**dict(row)) for row in rows]

    async def mark_letter(self, dossier_code: str, at: datetime | None, error: str | None) -> None:
        await self._db.execute(
            "UPDATE apologies SET delivered_at = $2, last_error = $3,"
            " delivery_attempts = delivery_attempts + 1 WHERE dossier_code = $1",
            dossier_code,
            at,
            error,
        )

    async def claim_undelivered_alerts(self, limit: int) -> list[PendingAlert]:
        rows = await self._db.fetch(
            "SELECT dossier_code, kind, step_sequence, unit_code, recipients, raised_at"
            " FROM alerts WHERE delivered_at IS NULL ORDER BY raised_at LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [PendingAlert(**dict(row)) for row in rows]

    async def mark_alert(self, alert: PendingAlert, at: datetime | None) -> None:
        await self._db.execute(
            "UPDATE alerts SET delivered_at = $4, delivery_attempts = delivery_attempts + 1"
            " WHERE dossier_code = $1 AND kind = $2 AND step_sequence = $3",
            alert.dossier_code,
            alert.kind,
            alert.step_sequence,
            at,
        )


class NotifierUnitOfWork(PostgresUnitOfWork):
    notices: NotifierRepository

    def bind(self, connection: asyncpg.Connection) -> None:
        self.notices = NotifierRepository(connection)
