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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation

from shared.events import Event, dead_letter_topic
from shared.messaging.envelope import Envelope, MalformedMessage, WireMessage, decode
from shared.messaging.outbox import Publisher
from shared.messaging.retry import retry_forever
from shared.messaging.unit_of_work import UnitOfWork
from shared.telemetry import DossierAttribute, dossier_attributes

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


class ConsumerMetrics:
    """Messages handled per topic and outcome, and how far behind each partition is."""

    def __init__(self, meter: Meter) -> None:
        self._handled = meter.create_counter(
            "onestop.messages.handled",
            unit="{message}",
            description="Messages handled, by topic and outcome "
            "(applied, duplicate, ignored, dead_lettered)",
        )
        self._lag: dict[tuple[str, str, int], int] = {}
        meter.create_observable_gauge(
            "onestop.consumer.lag",
            callbacks=[self._observe_lag],
            unit="{message}",
            description="Messages on the partition after the one being handled",
        )

    def handled(self, topic: str, outcome: str) -> None:
        self._handled.add(1, {"messaging.destination.name": topic, "outcome": outcome})

    def lag(self, group: str, topic: str, partition: int, behind: int) -> None:
        self._lag[(group, topic, partition)] = max(behind, 0)

    def _observe_lag(self, _: CallbackOptions) -> Iterable[Observation]:
        for (group, topic, partition), behind in list(self._lag.items()):
            yield Observation(
                behind,
                {
                    "messaging.consumer.group.name": group,
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                },
            )


@dataclass(frozen=True)
class EventConsumer:
    group_id: str
    topics: tuple[str, ...]
    handlers: Mapping[type[Event], Handler]
    unit_of_work: Callable[[], UnitOfWork]
    publisher: Publisher
    max_backoff: float = 30.0
    metrics: ConsumerMetrics = field(default_factory=lambda: ConsumerMetrics(NoOpMeter("none")))
    dead_letters: str | None = None  # the logical topic; the publisher adds any namespace

    @property
    def dead_letter_topic(self) -> str:
        return self.dead_letters or dead_letter_topic(self.group_id)

    async def handle(self, record: Record) -> None:
        try:
            envelope, event = decode(record.headers, record.key, record.value)
        except MalformedMessage as error:
            await self._dead_letter(record, stage="decode", reason=str(error))
            return
        trace.get_current_span().set_attributes(
            {DossierAttribute.CODE: envelope.subject, **dossier_attributes(event)}
        )
        handler = self.handlers.get(type(event)) if event is not None else None
        if event is None or handler is None:
            self.metrics.handled(record.topic, "ignored")
            return  # a valid event this service does not react to
        try:
            applied = await retry_forever(
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
            return
        self.metrics.handled(record.topic, "applied" if applied else "duplicate")

    async def _apply(self, envelope: Envelope, event: Event, handler: Handler) -> bool:
        """Apply the event once; False when it had already been applied (a redelivery)."""
        async with self.unit_of_work() as uow:
            if not await uow.claim(envelope.id, envelope.type, envelope.source):
                logger.info(
                    "redelivered event skipped: already applied",
                    extra={"event_id": envelope.id, "event_type": envelope.type},
                )
                return False
            await handler(event, uow)
            await uow.commit()
            return True

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
            try:
                await (await self.publisher.send(self.dead_letter_topic, message))
            except Exception as error:
                await self.publisher.recover(error)
                raise

        await retry_forever(publish, what="dead-letter publish", max_backoff=self.max_backoff)
        self.metrics.handled(record.topic, "dead_lettered")
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
        record = message.raw_message
        assert not isinstance(record, tuple)
        highwater_of = getattr(message.consumer, "highwater", None)  # none in the test broker
        highwater = (
            highwater_of(TopicPartition(record.topic, record.partition)) if highwater_of else None
        )
        if highwater is not None:
            behind = highwater - record.offset - 1
            consumer.metrics.lag(consumer.group_id, record.topic, record.partition, behind)
        try:
            await consumer.handle(record)
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
