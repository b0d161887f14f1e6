"""Consuming events: decode, apply once in one transaction, then let the offset be committed.

Delivery policy, chosen explicitly (the library defaults are unsafe):
- the subscriber uses AckPolicy.NACK_ON_ERROR: the offset is committed only after `handle`
  returns, which is after the database commit; if the process dies first, Kafka redelivers
  and the inbox turns the redelivery into a no-op;
- a message that cannot be decoded or validated goes to the group's dead-letter topic with
  the error and its origin in headers, and the partition moves on;
- a transient failure (PostgreSQL or Kafka unreachable) is retried with backoff, in place, so
  nothing is skipped and the partition's order is kept;
- any other failure while applying is a defect or a broken rule: the message is dead-lettered
  so that one dossier does not stop every dossier behind it on the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from shared.events import Event, dead_letter_topic
from shared.messaging.envelope import Envelope, MalformedMessage, WireMessage, decode
from shared.messaging.outbox import Publisher
from shared.messaging.retry import retry_forever
from shared.messaging.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Awaitable[None]]  # (event, unit of work)


class Record(Protocol):
    """The parts of a Kafka record the consumer reads (aiokafka's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class EventConsumer:
    group_id: str
    topics: tuple[str, ...]
    handlers: Mapping[type[Event], Handler]
    unit_of_work: Callable[[], UnitOfWork]
    publisher: Publisher
    max_backoff: float = 30.0

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.group_id)

    async def handle(self, record: Record) -> None:
        try:
            envelope, event = decode(record.headers, record.key, record.value)
        except MalformedMessage as error:
            await self._dead_letter(record, stage="decode", reason=str(error))
            return
        handler = self.handlers.get(type(event)) if event is not None else None
        if event is None or handler is None:
            return  # a valid event this service does not react to
        try:
            await retry_forever(
                lambda: self._apply(envelope, event, handler),
                what=f"{self.group_id} applying {envelope.type}",
                max_backoff=self.max_backoff,
            )
        except Exception as error:
            logger.error(
                "event could not be applied; dead-lettered",
                extra={"event_type": envelope.type, "error": type(error).__name__},
                exc_info=True,
            )
            await self._dead_letter(
                record, stage="apply", reason=f"{type(error).__name__}: {error}"
            )

    async def _apply(self, envelope: Envelope, event: Event, handler: Handler) -> None:
        async with self.unit_of_work() as uow:
            if not await uow.claim(envelope.id, envelope.type, envelope.source):
                logger.info(
                    "redelivered event skipped: already applied",
                    extra={"event_id": envelope.id, "event_type": envelope.type},
                )
                return
            await handler(event, uow)
            await uow.commit()

    async def _dead_letter(self, record: Record, *, stage: str, reason: str) -> None:
        headers = {name: value for name, value in record.headers}
        headers.update(
            {
                "dlt_error_stage": stage.encode(),
                "dlt_error": reason.encode("utf-8")[:2000],
                "dlt_origin_topic": record.topic.encode(),
                "dlt_origin_partition": str(record.partition).encode(),
                "dlt_origin_offset": str(record.offset).encode(),
                "dlt_consumer_group": self.group_id.encode(),
                "dlt_failed_at": datetime.now(UTC).isoformat().encode(),
            }
        )
        message = WireMessage(
            key=(record.key or b"").decode("utf-8", "replace"),
            value=record.value or b"",
            headers=headers,
        )

        async def publish() -> None:
            await (await self.publisher.send(self.dead_letter_topic, message))

        await retry_forever(publish, what="dead-letter publish", max_backoff=self.max_backoff)
        logger.warning(
            "message dead-lettered",
            extra={
                "stage": stage,
                "origin_topic": record.topic,
                "origin_partition": record.partition,
                "origin_offset": record.offset,
            },
        )


def subscribe(broker: KafkaBroker, consumer: EventConsumer) -> None:
    """Attach the consumer to the broker with the delivery policy described above."""

    async def consume(message: KafkaMessage) -> None:
        try:
            await consumer.handle(message.raw_message)  # type: ignore[arg-type]
        except Exception:
            # Not even dead-lettering worked: leave the offset, and pause before the redelivery
            # so that a persistent fault does not spin.
            logger.exception("message left unacknowledged; it will be redelivered")
            await asyncio.sleep(consumer.max_backoff)
            raise

    async def keep_raw_bytes(message: StreamMessage[Any]) -> bytes:
        return message.body  # decoding is ours: a bad body must reach the dead-letter topic

    broker.subscriber(
        *consumer.topics,
        decoder=keep_raw_bytes,
        group_id=consumer.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=10_000,
        max_poll_interval_ms=10 * 60 * 1000,  # a long retry keeps the partition, not loses it
        title=f"{consumer.group_id}:consume",
    )(consume)
