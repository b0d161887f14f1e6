"""The outbox relay: publishes committed outbox rows to Kafka, in order, then marks them sent.

Woken by LISTEN/NOTIFY, with polling as a backup. Several relays may run against one table:
a transaction-scoped advisory lock lets one publish at a time, so per-dossier order holds
(SKIP LOCKED would let a second relay overtake a locked earlier event of the same dossier).
A crash after the publish and before the mark re-publishes the rows: consumers drop the
duplicates by event id (at-least-once on the wire, exactly-once in effect)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation

from shared.messaging.envelope import Envelope, WireMessage, encode
from shared.messaging.loops import wake_or_poll
from shared.messaging.retry import is_transient, retry_forever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    position: int
    event_id: uuid.UUID
    topic: str
    message_key: str
    event_type: str
    source: str
    occurred_at: datetime
    payload: str
    trace_context: dict[str, str]
    causation_id: uuid.UUID | None = None
    dossier_sequence: int | None = None

    def to_wire(self) -> WireMessage:
        envelope = Envelope(
            id=str(self.event_id),
            type=self.event_type,
            source=self.source,
            subject=self.message_key,
            time=self.occurred_at,
            causation_id=str(self.causation_id) if self.causation_id else None,
            sequence=self.dossier_sequence,
        )
        return encode(envelope, self.payload.encode("utf-8"))


class Publisher(Protocol):
    async def send(self, topic: str, message: WireMessage) -> Awaitable[Any]:
        """Hand the message to the producer; the returned awaitable resolves on broker ack."""
        ...

    async def recover(self, error: BaseException) -> None:
        """Called after a failed send, before the retry."""
        ...


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        schema: str,
        notify_channel: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        meter: Meter | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._lock_key = f"outbox-relay:{schema}"
        self._notify_channel = notify_channel
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._backlog: int | None = None
        (meter or NoOpMeter("none")).create_observable_gauge(
            "onestop.outbox.backlog",
            callbacks=[self._observe_backlog],
            unit="{event}",
            description="Outbox rows committed but not yet published to Kafka",
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_listener()

    def wake(self) -> None:
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows it published (0 if another relay holds it)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", self._lock_key
            ):
                return 0
            records = await conn.fetch(
                "SELECT position, event_id, topic, message_key, event_type, source, occurred_at,"
                " payload, trace_context, causation_id, dossier_sequence"
                " FROM outbox WHERE published_at IS NULL"
                " ORDER BY position LIMIT $1",
                self._batch_size,
            )
            if not records:
                self._backlog = 0
                return 0
            rows = [OutboxRow(**dict(record)) for record in records]
            await self._publish(rows)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])",
                [row.position for row in rows],
            )
            # A short batch took every row there was: no count needed (one round trip less
            # per batch); a full one may have left rows behind.
            self._backlog = (
                await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                if len(rows) == self._batch_size
                else 0
            )
            return len(rows)

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        """Hand every row to the producer, then wait for all the acks: the producer batches
        them per partition. Order per key holds: aiokafka has at most one request in flight
        per broker and mutes a partition while its batch is unacknowledged, so a retried
        batch is never overtaken, and the idempotent producer never writes it twice."""
        acks = []
        for row in rows:
            token = otel_context.attach(propagate.extract(row.trace_context))
            try:
                acks.append(await self._publisher.send(row.topic, row.to_wire()))
            finally:
                otel_context.detach(token)
        await asyncio.gather(*acks)  # any failure rolls back: nothing is marked sent

    async def _run(self) -> None:
        while True:
            published = await retry_forever(
                self._publish_cycle,
                what="outbox relay",
                max_backoff=self._max_backoff,
                retry_on=lambda error: isinstance(error, Exception),  # never give up on a row
            )
            if published < self._batch_size:
                await self._wait_for_work()

    async def _publish_cycle(self) -> int:
        try:
            await self._ensure_listener()
            return await self.publish_pending()
        except Exception as error:
            if not is_transient(error):
                logger.exception("outbox relay failed on an unexpected error")
            await self._close_listener()
            await self._publisher.recover(error)
            raise

    def _observe_backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._backlog is not None:
            yield Observation(self._backlog)

    async def _wait_for_work(self) -> None:
        await wake_or_poll(self._wakeup, self._poll_interval)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        connection: asyncpg.Connection = await self._pool.acquire()
        try:
            await connection.add_listener(self._notify_channel, self._on_notify)
        except BaseException:  # cancelled at stop, say: give the connection back
            await self._pool.release(connection)
            raise
        self._listener = connection

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(Exception):
            await listener.remove_listener(self._notify_channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(listener)
