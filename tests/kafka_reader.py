"""Reading topics as a downstream system would: a plain aiokafka consumer in its own group."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord


@dataclass(frozen=True)
class Seen:
    topic: str
    key: str
    headers: dict[str, str]
    value: bytes
    partition: int
    offset: int


async def _downstream_consumer(bootstrap: str, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer in a group of its own, from the beginning, committing nothing."""
    consumer = AIOKafkaConsumer(
        *(str(topic) for topic in topics),
        bootstrap_servers=bootstrap,
        group_id=f"downstream-{uuid.uuid4()}",
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


async def read_until(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[Seen]], bool],
    *,
    timeout: float = 60.0,
) -> list[Seen]:
    """Read from the beginning until `done(records)` holds; fail after `timeout` seconds."""
    consumer = await _downstream_consumer(bootstrap, topics)
    seen: list[Seen] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(seen):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"read {len(seen)} records from {topics}; condition not met")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                seen.extend(map(_seen, records))
    finally:
        await consumer.stop()
    return seen


async def read_to_end(bootstrap: str, topics: list[str], *, timeout: float = 60.0) -> list[Seen]:
    """Everything on the topics up to their end offsets at the time of the call."""
    consumer = await _downstream_consumer(bootstrap, topics)
    seen: list[Seen] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no partitions of {topics} assigned")
            await consumer.getmany(timeout_ms=200)  # joins the group
        end = await consumer.end_offsets(list(consumer.assignment()))
        await consumer.seek_to_beginning(*end)
        while True:
            behind = [tp for tp, offset in end.items() if await consumer.position(tp) < offset]
            if not behind:
                return seen
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topics} to the end")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                seen.extend(map(_seen, records))
    finally:
        await consumer.stop()
