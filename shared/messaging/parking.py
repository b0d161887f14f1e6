"""Parking: a message whose prerequisite has not been applied yet waits off its partition.

Events of one dossier are in order on each topic, not across topics: the deadline service may
see a dossier's plan (routing's topic) before its clock started (intake's topic), the notifier
an overdue dossier before its addressee. Retrying such a message in place would stop every
dossier behind it on the partition, for good if the prerequisite was dead-lettered. So the
consumer parks it in its database and moves on; later messages of the same dossier on the same
topic park behind it (the dossier's order holds); a parking lot retries each dossier's parked
messages in order when the prerequisite arrives, and dead-letters one that waited too long,
with an error log and a metric for the operators' alert.
"""

from __future__ import annotations

import abc
import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


class PrerequisiteMissing(Exception):
    """The event needs an earlier event from another topic that has not been applied yet."""


@dataclass(frozen=True)
class ParkedMessage:
    id: int
    topic: str
    dossier_code: str
    event_id: str
    event_type: str
    origin: str  # "partition/offset": where it came from, for the dead letter
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reason: str
    parked_at: datetime

    @property
    def partition(self) -> int:
        return int(self.origin.split("/")[0])

    @property
    def offset(self) -> int:
        return int(self.origin.split("/")[1])


@dataclass(frozen=True)
class ToPark:
    consumer_group: str
    topic: str
    partition: int
    offset: int
    dossier_code: str
    event_id: str
    event_type: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    reason: str


class Parking(abc.ABC):
    """The parked messages of one service, seen from one transaction."""

    @abc.abstractmethod
    async def waiting(self, group: str, topic: str, dossier_code: str) -> bool:
        """Whether a message of this dossier from this topic is parked (later ones wait)."""

    async def waiting_among(
        self, group: str, chains: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (topic, dossier code) have a parked message: `waiting` for many."""
        return {chain for chain in set(chains) if await self.waiting(group, *chain)}

    @abc.abstractmethod
    async def park(self, message: ToPark) -> None:
        """Park it (a redelivery of a parked message is parked once)."""

    @abc.abstractmethod
    async def chains(self, group: str) -> list[tuple[str, str]]:
        """(topic, dossier code) of every dossier with parked messages, oldest first."""

    @abc.abstractmethod
    async def head(self, group: str, topic: str, dossier_code: str) -> ParkedMessage | None:
        """The first parked message of the chain, locked; None if another instance has it."""

    @abc.abstractmethod
    async def expired_heads(self, group: str, max_wait: timedelta) -> list[ParkedMessage]:
        """The first message of each chain that has waited longer than `max_wait`, locked."""

    @abc.abstractmethod
    async def remove(self, parked_id: int) -> None: ...

    @abc.abstractmethod
    async def count(self, group: str) -> int: ...


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def _decode_headers(stored: list[list[str]]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, base64.b64decode(value)) for name, value in stored)


_COLUMNS = (
    "id, topic, dossier_code, event_id::text, event_type, origin, message_key AS key,"
    " message_value AS value, headers, reason, parked_at"
)


def _parked(row: asyncpg.Record) -> ParkedMessage:
    values = dict(row)
    values["headers"] = _decode_headers(values["headers"])
    return ParkedMessage(**values)


class PostgresParking(Parking):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def waiting(self, group: str, topic: str, dossier_code: str) -> bool:
        return bool(
            await self._db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM parked WHERE consumer_group = $1 AND topic = $2"
                " AND dossier_code = $3)",
                group,
                topic,
                dossier_code,
            )
        )

    async def waiting_among(
        self, group: str, chains: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        rows = await self._db.fetch(
            "SELECT DISTINCT p.topic, p.dossier_code FROM parked p"
            " JOIN unnest($2::text[], $3::text[]) AS c (topic, dossier_code)"
            " USING (topic, dossier_code) WHERE p.consumer_group = $1",
            group,
            [topic for topic, _ in chains],
            [code for _, code in chains],
        )
        return {(row["topic"], row["dossier_code"]) for row in rows}

    async def park(self, message: ToPark) -> None:
        await self._db.execute(
            "INSERT INTO parked (consumer_group, topic, dossier_code, event_id, event_type,"
            " origin, message_key, message_value, headers, reason, parked_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())"
            " ON CONFLICT (consumer_group, event_id) DO NOTHING",
            message.consumer_group,
            message.topic,
            message.dossier_code,
            uuid.UUID(message.event_id),
            message.event_type,
            f"{message.partition}/{message.offset}",
            message.key,
            message.value,
            _encode_headers(message.headers),
            message.reason[:2000],
        )

    async def chains(self, group: str) -> list[tuple[str, str]]:
        rows = await self._db.fetch(
            "SELECT topic, dossier_code FROM parked WHERE consumer_group = $1"
            " GROUP BY topic, dossier_code ORDER BY min(id)",
            group,
        )
        return [(row["topic"], row["dossier_code"]) for row in rows]

    async def head(self, group: str, topic: str, dossier_code: str) -> ParkedMessage | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM parked WHERE id = (SELECT min(id) FROM parked"
            " WHERE consumer_group = $1 AND topic = $2 AND dossier_code = $3)"
            " FOR UPDATE SKIP LOCKED",
            group,
            topic,
            dossier_code,
        )
        return _parked(row) if row else None

    async def expired_heads(self, group: str, max_wait: timedelta) -> list[ParkedMessage]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM parked WHERE id IN (SELECT min(id) FROM parked"
            " WHERE consumer_group = $1 GROUP BY topic, dossier_code)"
            " AND parked_at < now() - $2::interval ORDER BY id FOR UPDATE SKIP LOCKED",
            group,
            max_wait,
        )
        return [_parked(row) for row in rows]

    async def remove(self, parked_id: int) -> None:
        await self._db.execute("DELETE FROM parked WHERE id = $1", parked_id)

    async def count(self, group: str) -> int:
        return int(
            await self._db.fetchval("SELECT count(*) FROM parked WHERE consumer_group = $1", group)
        )
