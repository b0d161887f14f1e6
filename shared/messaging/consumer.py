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
  so that one dossier does not stop every dossier behind it on the partition;
- a message whose prerequisite from another topic has not been applied yet is parked (see
  parking.py) and retried when it arrives; one that waits too long is dead-lettered.

Records arrive in batches (up to CONSUMER_BATCH_MAX_RECORDS): a batch is applied in one
transaction, record by record in order, and its offsets are committed after that commit. Any
record that fails rolls the whole batch back, and the batch is then handled record by record
as above, so the policy for each record is exactly the per-record one (see `handle_batch`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.events import EVENT_TYPES, Event, dead_letter_topic
from shared.messaging.envelope import Envelope, MalformedMessage, WireMessage, decode
from shared.messaging.loops import stop_if_cancelled, wake_or_poll
from shared.messaging.outbox import Publisher
from shared.messaging.parking import ParkedMessage, PrerequisiteMissing, ToPark
from shared.messaging.retry import is_transient, retry_forever
from shared.messaging.unit_of_work import UnitOfWork
from shared.telemetry import DossierAttribute, dossier_attributes

logger = logging.getLogger(__name__)

# Only the trace context is read from a record's headers (the global propagator may add
# baggage, which a processing span does not need).
_PROPAGATOR = TraceContextTextMapPropagator()

Handler = Callable[[Any, Any], Awaitable[None]]  # (event, unit of work)


class Record(Protocol):
    """The parts of a Kafka record the consumer reads (aiokafka's ConsumerRecord has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


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
        self._end: dict[tuple[str, str, int], int] = {}
        self._parked: dict[str, int] = {}
        meter.create_observable_gauge(
            "onestop.consumer.lag",
            callbacks=[self._observe_lag],
            unit="{message}",
            description="Messages on the partition after the one being handled",
        )
        meter.create_observable_gauge(
            "onestop.messages.parked",
            callbacks=[self._observe_parked],
            unit="{message}",
            description="Messages waiting for a prerequisite from another topic",
        )
        self._expired = meter.create_counter(
            "onestop.messages.parking_expired",
            unit="{message}",
            description="Parked messages whose prerequisite never came: dead-lettered",
        )

    def handled(self, topic: str, outcome: str) -> None:
        self._handled.add(1, {"messaging.destination.name": topic, "outcome": outcome})

    def handling(self, group: str, topic: str, partition: int, offset: int, highwater: int) -> None:
        """The message at `offset` is being handled; `highwater` is the consumer's last known
        end of the partition (from its last fetch), the refreshed end if that is newer."""
        key = (group, topic, partition)
        end = max(highwater, self._end.get(key, 0))
        self._lag[key] = max(end - offset - 1, 0)

    def refreshed(self, group: str, positions: Mapping[tuple[str, int], tuple[int, int]]) -> None:
        """The group's assigned partitions, each (end offset, position): the lag of every one
        of them, 0 once caught up; partitions no longer assigned are no longer reported."""
        for key in [key for key in self._lag if key[0] == group]:
            del self._lag[key]
            self._end.pop(key, None)
        for (topic, partition), (end, position) in positions.items():
            self._end[(group, topic, partition)] = end
            self._lag[(group, topic, partition)] = max(end - position, 0)

    def parked(self, group: str, count: int) -> None:
        self._parked[group] = count

    def parking_expired(self, group: str, topic: str) -> None:
        self._expired.add(
            1, {"messaging.consumer.group.name": group, "messaging.destination.name": topic}
        )

    def _observe_parked(self, _: CallbackOptions) -> Iterable[Observation]:
        for group, count in list(self._parked.items()):
            yield Observation(count, {"messaging.consumer.group.name": group})

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


class ParkingLotState:
    """Whether this consumer knows of parked messages: an applied event wakes the parking lot
    only then (each round costs transactions). Other instances' parked messages are found by
    the lot's periodic round."""

    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.waiting = 0

    def parked(self) -> None:
        self.waiting += 1
        self.wakeup.set()

    def something_applied(self) -> None:
        if self.waiting:
            self.wakeup.set()


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
    max_parking: timedelta = timedelta(minutes=10)
    parking_interval: float = 1.0
    tracer: Tracer = field(default_factory=NoOpTracer)
    batch_max_records: int = 100
    batch_timeout_ms: int = 25
    # What the consumer prefetches per partition: aiokafka's 1 MiB default holds some 700
    # events per partition in memory during a backlog (tens of MB across a group's partitions),
    # where one batch needs about 150 KiB.
    fetch_partition_bytes: int = 256 * 1024
    _parking_lot: ParkingLotState = field(default_factory=lambda: ParkingLotState())

    @property
    def dead_letter_topic(self) -> str:
        return self.dead_letters or dead_letter_topic(self.group_id)

    async def handle(self, record: Record) -> None:
        """One record on its own (the span is the caller's: FastStream's, or the batch's)."""
        if self._ignored(record):
            return
        item = await self._decode(record, trace.get_current_span())
        if item is not None:
            await self._handle_decoded(item)

    async def handle_batch(self, records: Sequence[Record]) -> None:
        """A batch in one transaction: the same steps per record, in order, one commit.

        Fast path and fallback rather than savepoints: a failure other than a transient one
        (a missing prerequisite, a defect, a broken rule) is rare, and the per-record path
        already implements its policy; a savepoint per record would cost a round trip per
        record on the common path. A transient failure rolls the batch back and retries it
        whole, in place: nothing was committed, so nothing is applied twice or skipped."""
        items: list[_Item] = []
        spans: list[Span] = []  # one per record, from its decoding to the batch's end
        try:
            for record in records:
                if self._ignored(record):
                    continue
                span = self._start_record_span(record)
                spans.append(span)
                with trace.use_span(span):
                    item = await self._decode(record, span, keep_span=True)
                if item is not None:
                    items.append(item)
            if not items:
                return
            try:
                outcomes = await retry_forever(
                    lambda: self._apply_batch(items),
                    what=f"{self.group_id} applying a batch",
                    max_backoff=self.max_backoff,
                )
            except Exception as error:
                stop_if_cancelled()
                logger.info(
                    "batch rolled back; applying its records one by one",
                    extra={"records": len(items), "error": type(error).__name__},
                )
                for item in items:
                    with trace.use_span(item.span or trace.INVALID_SPAN):
                        await self._handle_decoded(item)
                return
            for item, outcome in zip(items, outcomes, strict=True):
                self._count(item.record, outcome)
        finally:
            for span in spans:
                span.end()

    def _ignored(self, record: Record) -> bool:
        """A known event type this service does not react to, told by its ce_type header
        alone: neither decoded nor traced (a topic carries many types; a group reads them all).
        A record of an unknown or missing type is decoded, and dead-lettered if malformed."""
        event_type = next((value for name, value in record.headers if name == "ce_type"), None)
        event_class = EVENT_TYPES.get(event_type.decode("utf-8", "replace")) if event_type else None
        if event_class is None or event_class in self.handlers:
            return False
        self.metrics.handled(record.topic, "ignored")
        return True

    async def _decode(self, record: Record, span: Span, keep_span: bool = False) -> _Item | None:
        """The record's event and handler; None when it was dead-lettered or is ignored.
        With `keep_span`, `span` is the record's own, which goes on until its batch ends."""
        try:
            envelope, event = decode(record.headers, record.key, record.value)
        except MalformedMessage as error:
            await self._dead_letter(record, stage="decode", reason=str(error))
            return None
        span.set_attributes({DossierAttribute.CODE: envelope.subject, **dossier_attributes(event)})
        handler = self.handlers.get(type(event)) if event is not None else None
        if event is None or handler is None:
            self.metrics.handled(record.topic, "ignored")
            return None  # a valid event this service does not react to
        return _Item(record, envelope, event, handler, span if keep_span else None)

    async def _apply_batch(self, items: Sequence[_Item]) -> list[str]:
        """The per-record steps of `_apply_in`, with the parking check and the inbox claim
        done for the whole batch in one statement each (two round trips, not two per record).
        Only parking "behind a parked event" happens here (a missing prerequisite ends the
        fast path), so which records park is known before any handler runs."""
        chains = [(item.record.topic, item.envelope.subject) for item in items]
        outcomes = []
        async with self.unit_of_work() as uow:
            waiting = await uow.parking.waiting_among(self.group_id, chains)
            claimed = await uow.claim_all(
                [
                    (item.envelope.id, item.envelope.type, item.envelope.source)
                    for item, chain in zip(items, chains, strict=True)
                    if chain not in waiting
                ]
            )
            for item, chain in zip(items, chains, strict=True):
                with (
                    trace.use_span(item.span or trace.INVALID_SPAN),
                    uow.part_of_batch(len(items)),
                ):
                    envelope = item.envelope
                    if chain in waiting:
                        reason = "behind a parked event"
                        await uow.parking.park(self._to_park(item.record, envelope, reason))
                        outcomes.append("parked")
                    elif envelope.id not in claimed:
                        logger.info(
                            "redelivered event skipped: already applied",
                            extra={"event_id": envelope.id, "event_type": envelope.type},
                        )
                        outcomes.append("duplicate")
                    else:
                        claimed.discard(envelope.id)  # a second copy in the batch: a duplicate
                        uow.caused_by(envelope.id)  # what the handler emits names its cause
                        await item.handler(item.event, uow)
                        outcomes.append("applied")
            await uow.commit()
        return outcomes

    def _start_record_span(self, record: Record) -> Span:
        """The record's own processing span, parented by its producer's (from its headers)
        as FastStream's middleware does for a single message: each dossier's trace goes on
        through a batch. One span per record covers its decoding and its share of the batch."""
        carrier = {
            name: value.decode("utf-8", "replace")
            for name, value in record.headers
            if name in ("traceparent", "tracestate")
        }
        return self.tracer.start_span(
            f"{record.topic} process",
            context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation": "process",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": self.group_id,
            },
        )

    @contextmanager
    def _record_span(self, record: Record, item: _Item) -> Iterator[Span]:
        """A parked record's processing span when it is retried (see `_start_record_span`)."""
        span = self._start_record_span(record)
        span.set_attributes(
            {DossierAttribute.CODE: item.envelope.subject, **dossier_attributes(item.event)}
        )
        with trace.use_span(span, end_on_exit=True):
            yield span

    async def _handle_decoded(self, item: _Item) -> None:
        record, envelope, event, handler = item.record, item.envelope, item.event, item.handler
        try:
            outcome = await retry_forever(
                lambda: self._apply(record, envelope, event, handler),
                what=f"{self.group_id} applying {envelope.type}",
                max_backoff=self.max_backoff,
            )
        except PrerequisiteMissing as missing:
            why = f"{type(missing).__name__}: {missing}"
            await retry_forever(
                lambda: self._park(record, envelope, why),
                what=f"{self.group_id} parking {envelope.type}",
                max_backoff=self.max_backoff,
            )
            outcome = "parked"
        except Exception as error:
            stop_if_cancelled()
            logger.error(
                "event could not be applied; dead-lettered",
                extra={"event_type": envelope.type, "error": type(error).__name__},
                exc_info=True,
            )
            await self._dead_letter(
                record, stage="apply", reason=f"{type(error).__name__}: {error}"
            )
            return
        self._count(record, outcome)

    def _count(self, record: Record, outcome: str) -> None:
        self.metrics.handled(record.topic, outcome)
        if outcome == "applied":
            self._parking_lot.something_applied()  # it may be what a parked message waits for
        elif outcome == "parked":
            self._parking_lot.parked()

    async def _apply(
        self, record: Record, envelope: Envelope, event: Event, handler: Handler
    ) -> str:
        """Apply the event once, in a transaction of its own."""
        async with self.unit_of_work() as uow:
            outcome = await self._apply_in(uow, _Item(record, envelope, event, handler))
            if outcome != "duplicate":
                await uow.commit()
            return outcome

    async def _apply_in(self, uow: UnitOfWork, item: _Item) -> str:
        """Apply the event in `uow` (not committed): "applied", "duplicate" (a redelivery), or
        "parked" behind an earlier message of its dossier from the same topic that waits for
        a prerequisite."""
        record, envelope = item.record, item.envelope
        if await uow.parking.waiting(self.group_id, record.topic, envelope.subject):
            await uow.parking.park(self._to_park(record, envelope, "behind a parked event"))
            return "parked"
        if not await uow.claim(envelope.id, envelope.type, envelope.source):
            logger.info(
                "redelivered event skipped: already applied",
                extra={"event_id": envelope.id, "event_type": envelope.type},
            )
            return "duplicate"
        uow.caused_by(envelope.id)  # what the handler emits names this event as its cause
        await item.handler(item.event, uow)
        return "applied"

    async def _park(self, record: Record, envelope: Envelope, reason: str) -> None:
        async with self.unit_of_work() as uow:
            await uow.parking.park(self._to_park(record, envelope, reason))
            await uow.commit()
        logger.info(
            "event parked until its prerequisite arrives",
            extra={"event_type": envelope.type, "dossier_code": envelope.subject, "why": reason},
        )

    def _to_park(self, record: Record, envelope: Envelope, reason: str) -> ToPark:
        return ToPark(
            consumer_group=self.group_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dossier_code=envelope.subject,
            event_id=envelope.id,
            event_type=envelope.type,
            key=record.key,
            value=record.value,
            headers=list(record.headers),
            reason=reason,
        )

    # --- the parking lot ---------------------------------------------------------------------

    async def run_parking_lot(self) -> None:
        """Retry parked messages when something was applied (or every `parking_interval`),
        and dead-letter those that waited longer than `max_parking`."""
        while True:
            try:
                await self.drain_parking_lot()
            except Exception as error:
                stop_if_cancelled()
                logger.warning("parking lot round failed", extra={"error": type(error).__name__})
            await wake_or_poll(self._parking_lot.wakeup, self.parking_interval)

    async def drain_parking_lot(self) -> int:
        """One round; returns how many parked messages were applied."""
        async with self.unit_of_work() as uow:
            chains = await uow.parking.chains(self.group_id)
        applied = 0
        if chains:
            for topic, dossier_code in chains:
                applied += await self._retry_chain(topic, dossier_code)
            await self._expire()
            async with self.unit_of_work() as uow:
                waiting = await uow.parking.count(self.group_id)
        else:
            waiting = 0
        self._parking_lot.waiting = waiting
        self.metrics.parked(self.group_id, waiting)
        return applied

    async def _retry_chain(self, topic: str, dossier_code: str) -> int:
        """Apply the dossier's parked messages from `topic` in order, until one still waits."""
        applied = 0
        while True:
            async with self.unit_of_work() as uow:
                parked = await uow.parking.head(self.group_id, topic, dossier_code)
                if parked is None:
                    return applied
                envelope, event = decode(parked.headers, parked.key, parked.value)
                handler = self.handlers.get(type(event)) if event is not None else None
                if event is None or handler is None:
                    await uow.parking.remove(parked.id)
                    await uow.commit()
                    continue
                try:
                    # Its own trace goes on, as it would have when it arrived.
                    origin = _ParkedRecord.of(parked)
                    with self._record_span(origin, _Item(origin, envelope, event, handler)):
                        if await uow.claim(envelope.id, envelope.type, envelope.source):
                            uow.caused_by(envelope.id)
                            await handler(event, uow)
                except PrerequisiteMissing:
                    return applied  # still waiting; the transaction rolls back
                except Exception as error:
                    stop_if_cancelled()
                    if is_transient(error):
                        raise
                    await uow.rollback()
                    await self._dead_letter(
                        _ParkedRecord.of(parked),
                        stage="apply",
                        reason=f"{type(error).__name__}: {error}",
                    )
                    async with self.unit_of_work() as cleanup:
                        await cleanup.parking.remove(parked.id)
                        await cleanup.commit()
                    continue
                await uow.parking.remove(parked.id)
                await uow.commit()
            applied += 1
            self.metrics.handled(topic, "applied")

    async def _expire(self) -> None:
        async with self.unit_of_work() as uow:
            expired = await uow.parking.expired_heads(self.group_id, self.max_parking)
            for parked in expired:
                waited = round((datetime.now(UTC) - parked.parked_at).total_seconds())
                logger.error(
                    "prerequisite never arrived; parked event dead-lettered",
                    extra={
                        "event_type": parked.event_type,
                        "dossier_code": parked.dossier_code,
                        "waited_s": waited,
                        "why": parked.reason,
                    },
                )
                await self._dead_letter(
                    _ParkedRecord.of(parked),
                    stage="prerequisite",
                    reason=f"waited {waited} s: {parked.reason}",
                )
                self.metrics.parking_expired(self.group_id, parked.topic)
                await uow.parking.remove(parked.id)
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
            try:
                await (await self.publisher.send(self.dead_letter_topic, message))
            except Exception as error:
                stop_if_cancelled()
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


@dataclass(frozen=True)
class _Item:
    """A decoded record this consumer handles."""

    record: Record
    envelope: Envelope
    event: Event
    handler: Handler
    span: Span | None = None  # its processing span, when it came in a batch


@dataclass(frozen=True)
class _ParkedRecord:
    """A parked message as the record it came from, for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]

    @classmethod
    def of(cls, parked: ParkedMessage) -> _ParkedRecord:
        return cls(
            parked.topic, parked.partition, parked.offset, parked.key, parked.value, parked.headers
        )


def subscribe(broker: KafkaBroker, consumer: EventConsumer) -> BatchSubscriber:
    """Attach the consumer to the broker with the delivery policy described above: batches of
    up to `batch_max_records`, waiting at most `batch_timeout_ms` for the first record."""

    async def consume(message: KafkaMessage) -> None:
        records = message.raw_message
        batch = list(records) if isinstance(records, tuple | list) else [records]
        highwater_of = getattr(message.consumer, "highwater", None)  # none in the test broker
        first: dict[tuple[str, int], Record] = {}
        for record in batch:
            first.setdefault((record.topic, record.partition), record)
        for record in first.values():
            highwater = (
                highwater_of(TopicPartition(record.topic, record.partition))
                if highwater_of
                else None
            )
            if highwater is not None:
                consumer.metrics.handling(
                    consumer.group_id, record.topic, record.partition, record.offset, highwater
                )
        try:
            await consumer.handle_batch(in_time_order(batch))
        except Exception:
            stop_if_cancelled()
            # Not even dead-lettering worked: leave the offsets (the batch is rewound), and
            # pause before the redelivery so that a persistent fault does not spin.
            logger.exception("batch left unacknowledged; it will be redelivered")
            await asyncio.sleep(consumer.max_backoff)
            raise

    async def keep_raw_bytes(message: StreamMessage[Any]) -> Any:
        return message.body  # decoding is ours: a bad body must reach the dead-letter topic

    subscriber = broker.subscriber(
        *consumer.topics,
        batch=True,
        max_records=consumer.batch_max_records,
        batch_timeout_ms=consumer.batch_timeout_ms,
        max_partition_fetch_bytes=consumer.fetch_partition_bytes,
        decoder=keep_raw_bytes,
        group_id=consumer.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,  # after the batch's commit; a failure rewinds it
        session_timeout_ms=10_000,
        max_poll_interval_ms=10 * 60 * 1000,  # a long retry keeps the partition, not loses it
        title=f"{consumer.group_id}:consume",
    )
    subscriber(consume)
    return subscriber


def in_time_order(records: Sequence[Record]) -> list[Record]:
    """The batch's partitions merged by record time, each partition's order kept: aiokafka
    hands them partition by partition, and a dossier's event from one topic must not be
    handled before the earlier one from another topic that it needs (it would be parked,
    and the batch redone record by record)."""
    partitions: dict[tuple[str, int], list[Record]] = {}
    for record in records:
        partitions.setdefault((record.topic, record.partition), []).append(record)
    return list(
        heapq.merge(*partitions.values(), key=lambda record: getattr(record, "timestamp", 0))
    )


async def refresh_lag_forever(
    subscriber: BatchSubscriber, consumer: EventConsumer, interval: float = 1.0
) -> None:
    """Keep the lag gauge true between messages: the per-message value alone stays at its
    last figure when a group goes idle, stops growing while a message is retried in place,
    and keeps partitions that a rebalance moved to another member."""
    while True:
        await asyncio.sleep(interval)
        kafka = getattr(subscriber, "consumer", None)
        if not isinstance(kafka, AIOKafkaConsumer):
            continue  # not started yet, or the test broker
        try:
            await refresh_lag(kafka, consumer)
        except Exception as error:  # a metric must never stop the service
            stop_if_cancelled()
            logger.debug("consumer lag not refreshed", extra={"error": type(error).__name__})


async def refresh_lag(kafka: AIOKafkaConsumer, consumer: EventConsumer) -> None:
    """Lag per assigned partition from the broker's end offsets and the consumer's position,
    which is one past the batch being handled (the lag counts none of it)."""
    assigned = list(kafka.assignment())
    ends = await kafka.end_offsets(assigned) if assigned else {}
    positions: dict[tuple[str, int], tuple[int, int]] = {}
    for partition in assigned:
        async with asyncio.timeout(5):
            position = await kafka.position(partition)
        positions[(partition.topic, partition.partition)] = (ends[partition], position)
    consumer.metrics.refreshed(consumer.group_id, positions)
