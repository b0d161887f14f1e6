"""Unit of work: one transaction that applies an event at most once (inbox), changes state,
and records the events it emits (outbox). Nothing leaves the service until it commits.

Each emitted event names its cause (the event being applied, if any) and is numbered among
this service's events of its dossier, so that readers can order a dossier's events."""

from __future__ import annotations

import abc
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import asyncpg
from opentelemetry import propagate
from opentelemetry.trace import NoOpTracer, Span, SpanKind, StatusCode, Tracer

from shared.events import Event
from shared.messaging.parking import Parking, PostgresParking


@dataclass(frozen=True)
class PendingEvent:
    event: Event
    event_id: str
    occurred_at: datetime
    trace_context: dict[str, str] = field(default_factory=dict)
    causation_id: str | None = None


class Emitter(Protocol):
    """What a handler needs of any unit of work: a service's port adds its repositories."""

    def emit(self, event: Event, *, occurred_at: datetime | None = None) -> str: ...


class UnitOfWork(abc.ABC):
    """Subclasses add the service's repositories; the handlers see only this interface."""

    parking: Parking

    def __init__(self) -> None:
        self.pending: list[PendingEvent] = []
        self.cause: str | None = None

    def caused_by(self, event_id: str | None) -> None:
        """The event being applied: what this transaction emits is its consequence."""
        self.cause = event_id

    def emit(self, event: Event, *, occurred_at: datetime | None = None) -> str:
        """Record the event for the outbox; returns its id."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the relay continues this trace when it publishes
        pending = PendingEvent(
            event=event,
            event_id=str(uuid.uuid4()),
            occurred_at=occurred_at or datetime.now(UTC),
            trace_context=carrier,
            causation_id=self.cause,
        )
        self.pending.append(pending)
        return pending.event_id

    def part_of_batch(self, records: int) -> contextlib.AbstractContextManager[object]:
        """One record's share of a transaction that applies a batch of `records`."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    async def claim(self, event_id: str, event_type: str, source: str) -> bool:
        """Record the event as applied; False when it already was (a redelivery)."""

    async def claim_all(self, events: list[tuple[str, str, str]]) -> set[str]:
        """`claim` for many (id, type, source): the ids claimed now (a redelivery's, or the
        second of one id, is not)."""
        return {event[0] for event in events if await self.claim(*event)}

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
        self.cause = None
        # One span per transaction, not per statement: BEGIN and COMMIT are not worth a span.
        self._span = self._tracer.start_span(
            f"{self._schema} transaction",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "postgresql", "db.namespace": self._schema},
        )
        self._connection = await self._pool.acquire()
        try:
            self._transaction = self._connection.transaction()
            await self._transaction.start()
        except BaseException:  # cancelled here, __aexit__ would never give it back
            self._transaction = None
            await self.__aexit__(None, None, None)
            raise
        self.parking = PostgresParking(self._connection)
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

    @contextlib.contextmanager
    def part_of_batch(self, records: int) -> Iterator[object]:
        """A span in the record's own trace for its share of the batch's transaction: the
        transaction's span belongs to the batch, and each dossier's trace shows its database
        work (the span names the batch's size)."""
        with self._tracer.start_as_current_span(
            f"{self._schema} transaction",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": self._schema,
                "onestop.transaction.batch_records": records,
            },
        ) as span:
            yield span

    async def claim(self, event_id: str, event_type: str, source: str) -> bool:
        inserted = await self._connection.fetchval(
            "INSERT INTO inbox (event_id, event_type, source) VALUES ($1, $2, $3)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING true",
            uuid.UUID(event_id),
            event_type,
            source,
        )
        return bool(inserted)

    async def claim_all(self, events: list[tuple[str, str, str]]) -> set[str]:
        if not events:
            return set()
        ids = {uuid.UUID(event_id): event_id for event_id, _, _ in events}
        rows = await self._connection.fetch(
            "INSERT INTO inbox (event_id, event_type, source)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            [uuid.UUID(event_id) for event_id, _, _ in events],
            [event_type for _, event_type, _ in events],
            [source for _, _, source in events],
        )
        return {ids[row["event_id"]] for row in rows}

    async def commit(self) -> None:
        if self.pending:
            # Restricted topics' events are not numbered: downstream systems, who read only
            # the public ones, would see a gap in the source's sequence.
            public = [p for p in self.pending if not p.event.TOPIC.restricted]
            numbered = dict(zip(map(id, public), await self._number(public), strict=True))
            sequences = [numbered.get(id(p)) for p in self.pending]
            await self._connection.executemany(
                "INSERT INTO outbox (event_id, topic, message_key, event_type, source,"
                " occurred_at, payload, trace_context, causation_id, dossier_sequence)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                        uuid.UUID(p.causation_id) if p.causation_id else None,
                        sequence,
                    )
                    for p, sequence in zip(self.pending, sequences, strict=True)
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

    async def _number(self, pending: list[PendingEvent]) -> list[int]:
        """Each event's number among this service's events of its dossier: one counter row
        per dossier, locked until commit (dossiers in a fixed order, so no deadlock)."""
        if not pending:
            return []
        counts = Counter(p.event.dossier_code for p in pending)
        codes = sorted(counts)
        rows = await self._connection.fetch(
            "INSERT INTO event_sequences AS s (dossier_code, last_value)"
            " SELECT * FROM unnest($1::text[], $2::bigint[])"
            " ON CONFLICT (dossier_code)"
            " DO UPDATE SET last_value = s.last_value + excluded.last_value"
            " RETURNING dossier_code, last_value",
            codes,
            [counts[code] for code in codes],
        )
        next_of = {
            row["dossier_code"]: row["last_value"] - counts[row["dossier_code"]] + 1 for row in rows
        }
        numbers = []
        for p in pending:
            numbers.append(next_of[p.event.dossier_code])
            next_of[p.event.dossier_code] += 1
        return numbers
