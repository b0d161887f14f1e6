"""Creating the topics a service writes to, so that readers never wait on auto-creation."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

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
