"""Where the notifier keeps what it owes and what it sent: the port its handlers use, and the
PostgreSQL adapter (which also serves the letters and their delivery)."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, astuple, dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from shared.access_log import AccessLog, PostgresAccessLog
from shared.events import ApologyObligationRecorded, Applicant, DossierReceived
from shared.messaging.parking import PrerequisiteMissing
from shared.messaging.unit_of_work import Emitter, PostgresUnitOfWork


class AddresseeUnknown(PrerequisiteMissing):
    """The dossier's receipt (on intake's topic) or its applicant (on the restricted topic)
    has not been applied yet."""


class AddresseeErased(Exception):
    """The applicant's details were erased (retention after the dossier's end): no letter."""


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
class Draft:
    """The apology (Mẫu 04) the unit at fault prepares once the dossier is due soon: the
    reason it enters and the new return date it chooses; its head approves and signs."""

    dossier_code: str
    unit_code: str
    original_due_at: datetime
    latest_new_due_at: datetime
    opened_at: datetime
    reason: str | None = None
    new_due_at: datetime | None = None
    filled_by: str | None = None
    filled_at: datetime | None = None

    @property
    def complete(self) -> bool:
        return self.reason is not None and self.new_due_at is not None


@dataclass(frozen=True)
class IssuedApology:
    """An apology letter (Mẫu 04) as issued, to be delivered; fields in the table's order."""

    dossier_code: str
    letter_number: str
    unit_code: str
    signer_title: str
    reason: str
    original_due_at: datetime
    new_due_at: datetime
    issued_at: datetime
    channel: str
    letter: dict[str, Any]
    html: str
    pdf: bytes | None  # None: pending, rendered and signed by the rendering worker
    timeliness: str = "on_time"
    on_behalf_of_city: bool = False
    signed_by: str | None = None  # the signer's certificate: the unit's code, or "city"


@dataclass(frozen=True)
class IssuedNotice:
    """Another of the unit's letters to the applicant (notices.py), to be delivered."""

    dossier_code: str
    kind: str
    notice_key: str
    letter_number: str
    unit_code: str
    signer_title: str
    reason: str
    issued_at: datetime
    channel: str
    letter: dict[str, Any]
    html: str
    pdf: bytes


@dataclass(frozen=True)
class LetterToRender:
    """An issued apology whose signed PDF is still to be made (rendering.py)."""

    dossier_code: str
    letter_number: str
    letter: dict[str, Any]
    signed_by: str
    render_attempts: int


@dataclass(frozen=True)
class PendingLetter:
    """A letter claimed for one send attempt. `resumed`: an earlier attempt was recorded but
    its outcome is unknown (the process stopped mid-send)."""

    dossier_code: str
    unit_code: str
    channel: str
    letter: dict[str, Any]
    html: str
    pdf: bytes
    email: str | None
    phone: str | None
    attempt_id: uuid.UUID
    attempts: int
    message_id: str
    resumed: bool
    kind: str = "apology"


@dataclass(frozen=True)
class NewAlert:
    dossier_code: str
    kind: str
    step_sequence: int
    unit_code: str
    recipients: list[str]
    raised_at: datetime


@dataclass(frozen=True)
class PendingAlert(NewAlert):
    """An alert with its delivery attempt, as the delivery loop claims it."""

    attempt_id: uuid.UUID
    attempts: int
    message_id: str
    resumed: bool


class NoticeRepository(abc.ABC):
    """What the handlers need: whom to write to, the apology owed, the letters and alerts.

    The plural methods serve a batch of dossiers at once; here they take them one by one, and
    the PostgreSQL adapter does each in one or two statements (a backlog falling due at once
    is thousands of dossiers)."""

    @abc.abstractmethod
    async def add_obligation(self, obligation: ApologyObligationRecorded) -> None: ...

    @abc.abstractmethod
    async def add_addressee(self, received: DossierReceived) -> None:
        """What the letter says of the dossier; a second receipt of the same dossier changes
        nothing."""

    @abc.abstractmethod
    async def add_applicant(self, dossier_code: str, applicant: Applicant) -> None:
        """Whom an apology would go to (from the restricted topic); once per dossier."""

    @abc.abstractmethod
    async def dossier_ended(self, dossier_code: str, ended_at: datetime) -> None:
        """The dossier's end: its personal data is erased a retention period later."""

    @abc.abstractmethod
    async def addressee(self, dossier_code: str) -> StoredAddressee:
        """AddresseeUnknown until both the receipt and the applicant are applied;
        AddresseeErased once the applicant's details were erased."""

    @abc.abstractmethod
    async def move_obligation(
        self, dossier_code: str, due_at: datetime, apology_due_by: datetime
    ) -> None: ...

    @abc.abstractmethod
    async def obligation_due_at(self, dossier_code: str) -> datetime:
        """ObligationUnknown until the dossier's clock is applied."""

    @abc.abstractmethod
    async def has_apology(self, dossier_code: str) -> bool: ...

    @abc.abstractmethod
    async def add_draft(self, draft: Draft) -> bool:
        """False when the dossier has a draft already (one per dossier)."""

    @abc.abstractmethod
    async def draft(self, dossier_code: str) -> Draft | None:
        """The draft, locked until the transaction ends."""

    @abc.abstractmethod
    async def fill_draft(
        self, dossier_code: str, *, reason: str, new_due_at: datetime, by: str, at: datetime
    ) -> None: ...

    @abc.abstractmethod
    async def next_letter_number(self, unit_code: str, year: int) -> int:
        """The next number of the unit's letters this year: 1, 2, ..."""

    @abc.abstractmethod
    async def add_apology(self, apology: IssuedApology) -> None:
        """The letter, to be delivered; the obligation is marked issued."""

    @abc.abstractmethod
    async def add_notice(self, notice: IssuedNotice) -> bool:
        """The letter, to be delivered; False when it was already issued."""

    @abc.abstractmethod
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

    async def add_alerts(self, alerts: list[NewAlert]) -> set[tuple[str, str, int]]:
        """The (dossier, kind, step) of the alerts raised now: not those raised before."""
        raised = set()
        for alert in alerts:
            if await self.add_alert(**asdict(alert)):
                raised.add((alert.dossier_code, alert.kind, alert.step_sequence))
        return raised

    async def locked_drafts(self, codes: list[str]) -> dict[str, Draft]:
        """The dossiers' drafts, locked until the transaction ends (those that have one)."""
        found = {code: await self.draft(code) for code in sorted(set(codes))}
        return {code: draft for code, draft in found.items() if draft is not None}

    async def with_apology(self, codes: list[str]) -> set[str]:
        """Those of the dossiers whose apology was issued."""
        return {code for code in codes if await self.has_apology(code)}

    async def addressees(self, codes: list[str]) -> dict[str, StoredAddressee]:
        """`addressee` of each, in order (its errors: the first dossier without one)."""
        return {code: await self.addressee(code) for code in codes}

    async def next_letter_numbers(self, unit_code: str, year: int, count: int) -> int:
        """`count` numbers of the unit's letters this year; returns the first."""
        first = await self.next_letter_number(unit_code, year)
        for _ in range(count - 1):
            await self.next_letter_number(unit_code, year)
        return first

    async def add_apologies(self, apologies: list[IssuedApology]) -> None:
        for apology in apologies:
            await self.add_apology(apology)

    async def add_drafts(self, drafts: list[Draft]) -> None:
        """One per dossier: a dossier's second draft is not added."""
        for draft in drafts:
            await self.add_draft(draft)


class PostgresNoticeRepository(NoticeRepository):
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
            " received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (dossier_code) DO UPDATE"
            " SET procedure_name = excluded.procedure_name,"
            " receiving_unit_code = excluded.receiving_unit_code,"
            " received_at = excluded.received_at WHERE addressees.procedure_name IS NULL",
            received.dossier_code,
            received.procedure_name,
            received.receiving_unit_code,
            received.received_at,
        )

    async def add_applicant(self, dossier_code: str, applicant: Applicant) -> None:
        await self._db.execute(
            "INSERT INTO addressees (dossier_code, full_name, address, email, phone,"
            " applicant_recorded) VALUES ($1, $2, $3, $4, $5, true)"
            " ON CONFLICT (dossier_code) DO UPDATE SET full_name = excluded.full_name,"
            " address = excluded.address, email = excluded.email, phone = excluded.phone,"
            " applicant_recorded = true WHERE NOT addressees.applicant_recorded",
            dossier_code,
            applicant.full_name,
            applicant.address,
            applicant.email,
            applicant.phone,
        )

    async def dossier_ended(self, dossier_code: str, ended_at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO addressees (dossier_code, ended_at) VALUES ($1, $2)"
            " ON CONFLICT (dossier_code) DO UPDATE SET ended_at = excluded.ended_at",
            dossier_code,
            ended_at,
        )

    async def addressee(self, dossier_code: str) -> StoredAddressee:
        row = await self._db.fetchrow(
            "SELECT dossier_code, procedure_name, receiving_unit_code, received_at, full_name,"
            " address, email, phone, applicant_recorded, personal_data_erased_at"
            " FROM addressees WHERE dossier_code = $1",
            dossier_code,
        )
        return _addressee(dossier_code, row)

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
        due: datetime | None = await self._db.fetchval(
            "SELECT due_at FROM apology_obligations WHERE dossier_code = $1", dossier_code
        )
        if due is None:
            raise ObligationUnknown(f"no apology obligation for {dossier_code} yet")
        return due

    async def has_apology(self, dossier_code: str) -> bool:
        return bool(
            await self._db.fetchval(
                "SELECT 1 FROM apologies WHERE dossier_code = $1 AND kind = 'apology'",
                dossier_code,
            )
        )

    async def add_draft(self, draft: Draft) -> bool:
        return bool(
            await self._db.fetchval(
                "INSERT INTO apology_drafts (dossier_code, unit_code, original_due_at,"
                " latest_new_due_at, opened_at, reason, new_due_at, filled_by, filled_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
                " RETURNING true",
                *astuple(draft),
            )
        )

    async def draft(self, dossier_code: str) -> Draft | None:
        row = await self._db.fetchrow(
            "SELECT dossier_code, unit_code, original_due_at, latest_new_due_at, opened_at,"
            " reason, new_due_at, filled_by, filled_at FROM apology_drafts"
            " WHERE dossier_code = $1 FOR UPDATE",
            dossier_code,
        )
        return None if row is None else Draft(**dict(row))

    async def fill_draft(
        self, dossier_code: str, *, reason: str, new_due_at: datetime, by: str, at: datetime
    ) -> None:
        await self._db.execute(
            "UPDATE apology_drafts SET reason = $2, new_due_at = $3, filled_by = $4,"
            " filled_at = $5 WHERE dossier_code = $1",
            dossier_code,
            reason,
            new_due_at,
            by,
            at,
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

    async def add_apology(self, apology: IssuedApology) -> None:
        await self._db.execute(
            "INSERT INTO apologies (dossier_code, letter_number, unit_code, signer_title, reason,"
            " original_due_at, new_due_at, issued_at, channel, letter, html, pdf, timeliness,"
            " on_behalf_of_city, signed_by, pdf_pending)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            *astuple(apology),
            apology.pdf is None,
        )
        await self._db.execute(
            "UPDATE apology_obligations SET issued_at = $2 WHERE dossier_code = $1",
            apology.dossier_code,
            apology.issued_at,
        )

    async def add_notice(self, notice: IssuedNotice) -> bool:
        return bool(
            await self._db.fetchval(
                "INSERT INTO apologies (dossier_code, kind, notice_key, letter_number, unit_code,"
                " signer_title, reason, issued_at, channel, letter, html, pdf)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                " ON CONFLICT DO NOTHING RETURNING true",
                *astuple(notice),
            )
        )

    async def letter(self, dossier_code: str) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "SELECT dossier_code, letter_number, unit_code, issued_at, new_due_at, channel,"
            " delivered_at, html, pdf, pdf_pending FROM apologies WHERE dossier_code = $1"
            " AND kind = 'apology'",
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

    async def add_alerts(self, alerts: list[NewAlert]) -> set[tuple[str, str, int]]:
        if not alerts:
            return set()
        rows = await self._db.fetch(
            "INSERT INTO alerts (dossier_code, kind, step_sequence, unit_code, recipients,"
            " raised_at) SELECT c, k, s, u, string_to_array(r, E'\\x1f'), t"
            " FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[],"
            " $6::timestamptz[]) AS x(c, k, s, u, r, t)"
            " ON CONFLICT DO NOTHING RETURNING dossier_code, kind, step_sequence",
            [a.dossier_code for a in alerts],
            [a.kind for a in alerts],
            [a.step_sequence for a in alerts],
            [a.unit_code for a in alerts],
            [_RECIPIENTS_SEPARATOR.join(a.recipients) for a in alerts],
            [a.raised_at for a in alerts],
        )
        return {(row["dossier_code"], row["kind"], row["step_sequence"]) for row in rows}

    async def locked_drafts(self, codes: list[str]) -> dict[str, Draft]:
        rows = await self._db.fetch(
            "SELECT dossier_code, unit_code, original_due_at, latest_new_due_at, opened_at,"
            " reason, new_due_at, filled_by, filled_at FROM apology_drafts"
            " WHERE dossier_code = ANY($1::text[]) ORDER BY dossier_code FOR UPDATE",
            codes,
        )
        return {row["dossier_code"]: Draft(**dict(row)) for row in rows}

    async def with_apology(self, codes: list[str]) -> set[str]:
        rows = await self._db.fetch(
            "SELECT dossier_code FROM apologies WHERE dossier_code = ANY($1::text[])"
            " AND kind = 'apology'",
            codes,
        )
        return {row["dossier_code"] for row in rows}

    async def addressees(self, codes: list[str]) -> dict[str, StoredAddressee]:
        rows = await self._db.fetch(
            "SELECT dossier_code, procedure_name, receiving_unit_code, received_at, full_name,"
            " address, email, phone, applicant_recorded, personal_data_erased_at"
            " FROM addressees WHERE dossier_code = ANY($1::text[])",
            codes,
        )
        found = {row["dossier_code"]: row for row in rows}
        return {code: _addressee(code, found.get(code)) for code in codes}

    async def next_letter_numbers(self, unit_code: str, year: int, count: int) -> int:
        last = await self._db.fetchval(
            "INSERT INTO letter_numbers AS n (unit_code, year, last_value) VALUES ($1, $2, $3)"
            " ON CONFLICT (unit_code, year) DO UPDATE SET last_value = n.last_value + $3"
            " RETURNING last_value",
            unit_code,
            year,
            count,
        )
        return int(last) - count + 1

    async def add_apologies(self, apologies: list[IssuedApology]) -> None:
        if not apologies:
            return
        await self._db.executemany(
            "INSERT INTO apologies (dossier_code, letter_number, unit_code, signer_title, reason,"
            " original_due_at, new_due_at, issued_at, channel, letter, html, pdf, timeliness,"
            " on_behalf_of_city, signed_by, pdf_pending)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            [(*_fields_of(apology), apology.pdf is None) for apology in apologies],
        )
        await self._db.execute(
            "UPDATE apology_obligations o SET issued_at = x.t"
            " FROM unnest($1::text[], $2::timestamptz[]) AS x(c, t) WHERE o.dossier_code = x.c",
            [apology.dossier_code for apology in apologies],
            [apology.issued_at for apology in apologies],
        )

    async def add_drafts(self, drafts: list[Draft]) -> None:
        if not drafts:
            return
        await self._db.executemany(
            "INSERT INTO apology_drafts (dossier_code, unit_code, original_due_at,"
            " latest_new_due_at, opened_at, reason, new_due_at, filled_by, filled_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            [_fields_of(draft) for draft in drafts],
        )

    # --- delivery: each claim, send and outcome is its own short transaction -------------

    async def claim_due_letter(
        self, now: datetime, lease: timedelta, message_id: str
    ) -> PendingLetter | None:
        """The letter due first, leased until `now + lease`, its attempt recorded and its
        Message-ID set once. SKIP LOCKED: another instance takes the next one."""
        row = await self._db.fetchrow(
            "WITH picked AS (SELECT dossier_code, kind, notice_key,"
            "  attempt_started_at IS NOT NULL AS resumed"
            "  FROM apologies WHERE delivered_at IS NULL AND dead_lettered_at IS NULL"
            "  AND NOT pdf_pending"
            "  AND next_attempt_at <= $1 ORDER BY next_attempt_at, issued_at LIMIT 1"
            "  FOR UPDATE SKIP LOCKED)"
            " UPDATE apologies a SET next_attempt_at = $1 + $2::interval,"
            "  attempt_id = gen_random_uuid(), attempt_started_at = $1,"
            "  delivery_attempts = a.delivery_attempts + 1,"
            "  message_id = COALESCE(a.message_id, $3)"
            " FROM picked WHERE (a.dossier_code, a.kind, a.notice_key)"
            "  = (picked.dossier_code, picked.kind, picked.notice_key)"
            " RETURNING a.dossier_code, a.kind, a.unit_code, a.channel, a.letter, a.html, a.pdf,"
            "  (SELECT email FROM addressees d WHERE d.dossier_code = a.dossier_code),"
            "  (SELECT phone FROM addressees d WHERE d.dossier_code = a.dossier_code),"
            "  a.attempt_id, a.delivery_attempts AS attempts, a.message_id, picked.resumed",
            now,
            lease,
            message_id,
        )
        return None if row is None else PendingLetter(**dict(row))

    async def letter_delivered(self, letter: PendingLetter, at: datetime) -> bool:
        """False when the attempt is no longer this one's (its lease ran out and another
        instance took the letter)."""
        return await self._outcome(
            "UPDATE apologies SET delivered_at = $3, attempt_id = NULL, attempt_started_at = NULL,"
            " last_error = NULL WHERE dossier_code = $1 AND attempt_id = $2",
            letter.dossier_code,
            letter.attempt_id,
            at,
        )

    async def letter_failed(
        self, letter: PendingLetter, error: str, retry_at: datetime | None, at: datetime
    ) -> bool:
        """`retry_at` None: dead-lettered at `at`, never tried again."""
        return await self._outcome(
            "UPDATE apologies SET last_error = $3, attempt_id = NULL, attempt_started_at = NULL,"
            " next_attempt_at = COALESCE($4, next_attempt_at),"
            " dead_lettered_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END"
            " WHERE dossier_code = $1 AND attempt_id = $2",
            letter.dossier_code,
            letter.attempt_id,
            error,
            retry_at,
            at,
        )

    async def claim_due_alert(
        self, now: datetime, lease: timedelta, message_id: str
    ) -> PendingAlert | None:
        row = await self._db.fetchrow(
            "WITH picked AS (SELECT dossier_code, kind, step_sequence,"
            "  attempt_started_at IS NOT NULL AS resumed"
            "  FROM alerts WHERE delivered_at IS NULL AND dead_lettered_at IS NULL"
            "  AND next_attempt_at <= $1 ORDER BY next_attempt_at, raised_at LIMIT 1"
            "  FOR UPDATE SKIP LOCKED)"
            " UPDATE alerts a SET next_attempt_at = $1 + $2::interval,"
            "  attempt_id = gen_random_uuid(), attempt_started_at = $1,"
            "  delivery_attempts = a.delivery_attempts + 1,"
            "  message_id = COALESCE(a.message_id, $3)"
            " FROM picked WHERE (a.dossier_code, a.kind, a.step_sequence)"
            "  = (picked.dossier_code, picked.kind, picked.step_sequence)"
            " RETURNING a.dossier_code, a.kind, a.step_sequence, a.unit_code, a.recipients,"
            "  a.raised_at, a.attempt_id, a.delivery_attempts AS attempts, a.message_id,"
            "  picked.resumed",
            now,
            lease,
            message_id,
        )
        return None if row is None else PendingAlert(**dict(row))

    async def alert_delivered(self, alert: PendingAlert, at: datetime) -> bool:
        return await self._outcome(
            "UPDATE alerts SET delivered_at = $3, attempt_id = NULL, attempt_started_at = NULL,"
            " last_error = NULL WHERE dossier_code = $1 AND attempt_id = $2",
            alert.dossier_code,
            alert.attempt_id,
            at,
        )

    async def alert_failed(
        self, alert: PendingAlert, error: str, retry_at: datetime | None, at: datetime
    ) -> bool:
        return await self._outcome(
            "UPDATE alerts SET last_error = $3, attempt_id = NULL, attempt_started_at = NULL,"
            " next_attempt_at = COALESCE($4, next_attempt_at),"
            " dead_lettered_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END"
            " WHERE dossier_code = $1 AND attempt_id = $2",
            alert.dossier_code,
            alert.attempt_id,
            error,
            retry_at,
            at,
        )

    async def next_delivery_at(self, now: datetime) -> datetime | None:
        """When the earliest letter or alert is due (a lease's end included); `now` if one
        already is (new rows are due at -infinity)."""
        value: datetime | None = await self._db.fetchval(
            "SELECT CASE WHEN min(t) IS NOT NULL THEN greatest(min(t), $1) END FROM ("
            " (SELECT next_attempt_at AS t FROM apologies"
            "  WHERE delivered_at IS NULL AND dead_lettered_at IS NULL AND NOT pdf_pending"
            "  ORDER BY next_attempt_at LIMIT 1)"
            " UNION ALL (SELECT next_attempt_at FROM alerts"
            "  WHERE delivered_at IS NULL AND dead_lettered_at IS NULL"
            "  ORDER BY next_attempt_at LIMIT 1)) due",
            now,
        )
        return value

    # --- rendering: the signed PDFs of issued apologies (rendering.py) --------------------

    async def claim_letters_to_render(self, now: datetime, limit: int) -> list[LetterToRender]:
        """Up to `limit` letters whose PDF is pending and due, locked until the transaction
        ends (SKIP LOCKED: another instance renders the next ones; a crash releases them)."""
        rows = await self._db.fetch(
            "SELECT dossier_code, letter_number, letter, coalesce(signed_by, unit_code)"
            " AS signed_by, render_attempts FROM apologies"
            " WHERE pdf_pending AND render_next_at <= $1 ORDER BY render_next_at, issued_at"
            " LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [LetterToRender(**dict(row)) for row in rows]

    async def letter_rendered(self, dossier_code: str, pdf: bytes) -> None:
        await self._db.execute(
            "UPDATE apologies SET pdf = $2, pdf_pending = false, render_error = NULL"
            " WHERE dossier_code = $1 AND kind = 'apology' AND pdf_pending",
            dossier_code,
            pdf,
        )

    async def render_failed(self, dossier_code: str, error: str, retry_at: datetime) -> None:
        await self._db.execute(
            "UPDATE apologies SET render_attempts = render_attempts + 1, render_error = $2,"
            " render_next_at = $3 WHERE dossier_code = $1 AND kind = 'apology'",
            dossier_code,
            error,
            retry_at,
        )

    async def letters_to_render(self) -> int:
        """How many issued letters wait for their signed PDF."""
        return int(await self._db.fetchval("SELECT count(*) FROM apologies WHERE pdf_pending"))

    async def _outcome(self, sql: str, *args: Any) -> bool:
        status: str = await self._db.execute(sql, *args)
        return status == "UPDATE 1"


def _fields_of(row: Draft | IssuedApology) -> tuple[Any, ...]:
    """The fields in order, as `astuple` without its deep copy (of each letter's content)."""
    return tuple(getattr(row, field.name) for field in fields(row))


_RECIPIENTS_SEPARATOR = "\x1f"  # the unit separator: in no e-mail address


def _addressee(dossier_code: str, row: asyncpg.Record | None) -> StoredAddressee:
    if row is None or row["procedure_name"] is None or not row["applicant_recorded"]:
        raise AddresseeUnknown(f"no addressee for {dossier_code} yet")
    if row["personal_data_erased_at"] is not None:
        raise AddresseeErased(f"the applicant of {dossier_code} was erased (retention)")
    values = dict(row)
    del values["applicant_recorded"], values["personal_data_erased_at"]
    return StoredAddressee(**values)


class NotifierUnitOfWork(PostgresUnitOfWork):
    notices: PostgresNoticeRepository  # the letters and their delivery too
    access_log: AccessLog  # who read a letter (it holds the citizen's name and address)

    def bind(self, connection: asyncpg.Connection) -> None:
        self.notices = PostgresNoticeRepository(connection)
        self.access_log = PostgresAccessLog(connection)
        # Lateness detections put off until the next other event or the commit, applied
        # then together (handlers.Notifier.apply_deferred): the set-based path of a backlog.
        self.deferred: list[Any] = []
        self.apply_deferred: Callable[[NotifierUnitOfWork], Awaitable[None]] | None = None

    async def commit(self) -> None:
        if self.deferred and self.apply_deferred is not None:
            await self.apply_deferred(self)
        await super().commit()


class NotifierUnitOfWorkPort(Emitter, Protocol):
    """What the notifier's handlers need of a unit of work."""

    @property
    def notices(self) -> NoticeRepository: ...


async def erase_addressees(
    connection: asyncpg.Connection, ended_before: datetime, limit: int
) -> int:
    """Personal data retention: the applicant's details of dossiers that ended before
    `ended_before` (at most `limit` of them) become NULL, and so do their letters' HTML and
    PDF and the addressee in the letter's record; a letter not delivered by then never will
    be. The obligation, the letter's number, dates and reason stay."""
    codes = await connection.fetch(
        "UPDATE addressees SET full_name = NULL, address = NULL, email = NULL, phone = NULL,"
        " personal_data_erased_at = now() WHERE dossier_code IN (SELECT dossier_code"
        " FROM addressees WHERE ended_at < $1 AND personal_data_erased_at IS NULL"
        " ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING dossier_code",
        ended_before,
        limit,
    )
    erased = [row["dossier_code"] for row in codes]
    if erased:
        await connection.execute(
            "UPDATE apologies SET html = NULL, pdf = NULL, letter = letter - 'addressee',"
            " pdf_pending = false,"
            " last_error = CASE WHEN delivered_at IS NULL AND dead_lettered_at IS NULL"
            "  THEN 'personal data erased before delivery' ELSE last_error END,"
            " dead_lettered_at = CASE WHEN delivered_at IS NULL"
            "  THEN coalesce(dead_lettered_at, now()) ELSE dead_lettered_at END"
            " WHERE dossier_code = ANY($1::text[])",
            erased,
        )
    return len(erased)
