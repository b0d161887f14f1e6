"""Reading topics as a downstream system would: a plain aiokafka consumer in its own group,
as the principal the connection names (the admin, or `downstream` where that is the point)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.messaging.access import DOWNSTREAM_GROUP_PREFIX
from shared.messaging.connection import KafkaConnection
from tests.waiting import eventually


@dataclass(frozen=True)
class Seen:
    topic: str
    key: str
    headers: dict[str, str]
    value: bytes
    partition: int
    offset: int


async def _downstream_consumer(
    kafka: KafkaConnection, topics: list[str], namespace: str
) -> AIOKafkaConsumer:
    """A consumer in a group of its own (named as the downstream principal's groups must be),
    from the beginning, committing nothing."""
    consumer = AIOKafkaConsumer(
        *(str(topic) for topic in topics),
        **kafka.client_options(),
        group_id=f"{namespace}{DOWNSTREAM_GROUP_PREFIX}{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


def _seen(record: ConsumerRecord) -> Seen:
    return Seen(
        topic=record.topic,
        key=(record.key or b"").decode(),
        headers={name: value.decode() for name, value in record.headers},
        value=record.value or b"",
        partition=record.partition,
        offset=record.offset,
    )


async def _read_batch(consumer: AIOKafkaConsumer, seen: list[Seen]) -> None:
    batches = await consumer.getmany(timeout_ms=500)
    for records in batches.values():
        seen.extend(map(_seen, records))


async def read_until(
    kafka: KafkaConnection,
    topics: list[str],
    done: Callable[[list[Seen]], bool],
    *,
    timeout: float = 60.0,
    namespace: str = "",
) -> list[Seen]:
    """Read from the beginning until `done(records)` holds; fail after `timeout` seconds.
    `namespace`: of the consumer group, for a principal allowed only its namespace's groups."""
    consumer = await _downstream_consumer(kafka, topics, namespace)
    seen: list[Seen] = []

    async def read_more_until_done() -> bool:
        if done(seen):
            return True
        await _read_batch(consumer, seen)
        return done(seen)

    try:
        # getmany already waits up to 500 ms for records: no pause between polls.
        await eventually(
            read_more_until_done,
            timeout=timeout,
            interval=0,
            what=lambda: f"condition on the {len(seen)} records read from {topics}",
        )
    finally:
        await consumer.stop()
    return seen


async def read_to_end(
    kafka: KafkaConnection, topics: list[str], *, timeout: float = 60.0
) -> list[Seen]:
    """Everything on the topics up to their end offsets at the time of the call. No group:
    the consumer gets every partition without a rebalance, and nothing is read before the
    seek to the beginning (a group's join needed a poll, whose records were then skipped)."""
    consumer = AIOKafkaConsumer(
        *(str(topic) for topic in topics),
        **kafka.client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[Seen] = []

    async def assigned() -> set[TopicPartition] | None:
        partitions = consumer.assignment()
        return partitions if {tp.topic for tp in partitions} >= set(map(str, topics)) else None

    async def read_more_until_at_end() -> bool:
        behind = [tp for tp, offset in end.items() if await consumer.position(tp) < offset]
        if not behind:
            return True
        await _read_batch(consumer, seen)
        return False

    try:
        partitions = list(await eventually(assigned, timeout=timeout, what=f"{topics} assigned"))
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        # getmany already waits for records, so no pause between polls.
        await eventually(
            read_more_until_at_end, timeout=timeout, interval=0, what=f"{topics} read to the end"
        )
        return seen
    finally:
        await consumer.stop()
