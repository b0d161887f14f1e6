"""Unit of work: one transaction that applies an event at most once (inbox), changes state,
and records the events it emits (outbox). Nothing leaves the service until it commits."""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import asyncpg
from opentelemetry import propagate
from opentelemetry.trace import NoOpTracer, Span, SpanKind, StatusCode, Tracer

from shared.events import Event


@dataclass(frozen=True)
class PendingEvent:
    event: Event
    event_id: str
    occurred_at: datetime
    trace_context: dict[str, str] = field(default_factory=dict)


class UnitOfWork(abc.ABC):
    """Subclasses add the service's repositories; the handlers see only this interface."""

    def __init__(self) -> None:
        self.pending: list[PendingEvent] = []

    def emit(self, event: Event, *, occurred_at: datetime | None = None) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the relay continues this trace when it publishes
        self.pending.append(
            PendingEvent(
                event=event,
                event_id=str(uuid.uuid4()),
                occurred_at=occurred_at or datetime.now(UTC),
                trace_context=carrier,
            )
        )

    @abc.abstractmethod
    async def claim(self, event_id: str, event_type: str, source: str) -> bool:
        """Record the event as applied; False when it already was (a redelivery)."""

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()


class PostgresUnitOfWork(UnitOfWork):
    """A transaction on one pooled connection; subclasses bind repositories in `bind`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        source: str,
        notify_channel: str,
        schema: str = "",
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._source = source
        self._notify_channel = notify_channel
        self._schema = schema
        self._tracer = tracer or NoOpTracer()
        self._connection: Any = None
        self._transaction: Any = None
        self._span: Span | None = None

    def bind(self, connection: asyncpg.Connection) -> None:
        """Create the service's repositories on this transaction's connection."""

    async def __aenter__(self) -> Self:
        self.pending = []
        # One span per transaction, not per statement: BEGIN and COMMIT are not worth a span.
        self._span = self._tracer.start_span(
            f"{self._schema} transaction",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "postgresql", "db.namespace": self._schema},
        )
        self._connection = await self._pool.acquire()
        self._transaction = self._connection.transaction()
        await self._transaction.start()
        self.bind(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            if self._connection is not None:
                await self._pool.release(self._connection)
                self._connection = None
            if self._span is not None:
                if exc is not None:  # the type only: a message may quote data
                    self._span.set_status(StatusCode.ERROR, type(exc).__name__)
                self._span.end()
                self._span = None

    async def claim(self, event_id: str, event_type: str, source: str) -> bool:
        inserted = await self._connection.fetchval(
            "INSERT INTO inbox (event_id, event_type, source) VALUES ($1, $2, $3)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING true",
            uuid.UUID(event_id),
            event_type,
            source,
        )
        return bool(inserted)

    async def commit(self) -> None:
        if self.pending:
            await self._connection.executemany(
                "INSERT INTO outbox (event_id, topic, message_key, event_type, source,"
                " occurred_at, payload, trace_context) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    (
                        uuid.UUID(p.event_id),
                        str(p.event.TOPIC),
                        p.event.dossier_code,
                        p.event.TYPE,
                        self._source,
                        p.occurred_at,
                        p.event.model_dump_json(),
                        p.trace_context,
                    )
                    for p in self.pending
                ],
            )
            await self._connection.execute(f"NOTIFY {self._notify_channel}")
        if self._span is not None:
            self._span.set_attribute("onestop.outbox.events", len(self.pending))
        await self._transaction.commit()
        self._transaction = None
        self.pending = []

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()
            self._transaction = None
        self.pending = []


class InMemoryUnitOfWork(UnitOfWork):
    """For unit tests: the same contract, kept in lists."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: set[str] = set()
        self.published: list[PendingEvent] = []
        self.committed = False
        self._claimed: set[str] = set()

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
