"""The inbox, outbox and parking contracts, kept in lists: a unit of work for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.messaging.parking import ParkedMessage, Parking, ToPark
from shared.messaging.unit_of_work import PendingEvent, UnitOfWork


class InMemoryParking(Parking):
    """For unit tests: the parking contract, kept in a list."""

    def __init__(self) -> None:
        self.messages: list[ParkedMessage] = []
        self._ids = 0

    async def waiting(self, group: str, topic: str, dossier_code: str) -> bool:
        return any(m.topic == topic and m.dossier_code == dossier_code for m in self.messages)

    async def park(self, message: ToPark) -> None:
        if any(m.event_id == message.event_id for m in self.messages):
            return
        self._ids += 1
        self.messages.append(
            ParkedMessage(
                id=self._ids,
                topic=message.topic,
                dossier_code=message.dossier_code,
                event_id=message.event_id,
                event_type=message.event_type,
                origin=f"{message.partition}/{message.offset}",
                key=message.key,
                value=message.value,
                headers=tuple(message.headers),
                reason=message.reason,
                parked_at=datetime.now(UTC),
            )
        )

    async def chains(self, group: str) -> list[tuple[str, str]]:
        return list(dict.fromkeys((m.topic, m.dossier_code) for m in self.messages))

    async def head(self, group: str, topic: str, dossier_code: str) -> ParkedMessage | None:
        chain = [m for m in self.messages if (m.topic, m.dossier_code) == (topic, dossier_code)]
        return chain[0] if chain else None

    async def expired_heads(self, group: str, max_wait: timedelta) -> list[ParkedMessage]:
        oldest = datetime.now(UTC) - max_wait
        heads = [await self.head(group, *chain) for chain in await self.chains(group)]
        return [m for m in heads if m is not None and m.parked_at < oldest]

    async def remove(self, parked_id: int) -> None:
        self.messages = [m for m in self.messages if m.id != parked_id]

    async def count(self, group: str) -> int:
        return len(self.messages)


class InMemoryUnitOfWork(UnitOfWork):
    """For unit tests: the same contract, kept in lists."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: set[str] = set()
        self.published: list[PendingEvent] = []
        self.committed = False
        self._claimed: set[str] = set()
        self.parking: InMemoryParking = InMemoryParking()

    async def claim(self, event_id: str, event_type: str, source: str) -> bool:
        if event_id in self.applied or event_id in self._claimed:
            return False
        self._claimed.add(event_id)
        return True

    async def commit(self) -> None:
        self.applied |= self._claimed
        self.published.extend(self.pending)
        self._claimed, self.pending = set(), []
        self.committed = True

    async def rollback(self) -> None:
        self._claimed, self.pending = set(), []
