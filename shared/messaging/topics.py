"""Creating the topics a service writes to, and waiting for those it reads: each is created by
its one writer (a reader may not create another service's topic)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from shared.messaging.connection import KafkaConnection


async def ensure_topics(
    connection: KafkaConnection,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int,
) -> list[str]:
    """Create the missing topics; returns those it created. The principal sees only the
    topics it may describe: one it may not is "missing", and creating it is refused."""
    admin = AIOKafkaAdminClient(**connection.client_options(), request_timeout_ms=15_000)
    await admin.start()
    try:
        missing = sorted(set(topics) - set(await admin.list_topics()))
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another instance created it first
        return missing
    finally:
        await admin.close()


async def require_topics(connection: KafkaConnection, topics: Iterable[str]) -> None:
    """Return once every topic exists (and the principal may describe it); raise
    UnknownTopicOrPartitionError, a transient error, naming those missing."""
    admin = AIOKafkaAdminClient(**connection.client_options(), request_timeout_ms=15_000)
    await admin.start()
    try:
        missing = sorted(set(topics) - set(await admin.list_topics()))
    finally:
        await admin.close()
    if missing:
        raise UnknownTopicOrPartitionError(f"not created yet by their writers: {missing}")
