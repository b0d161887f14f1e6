"""Nothing lost, nothing applied twice: processes killed with SIGKILL at the worst moments,
against the real Kafka broker and PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from deploy.local import kafka_access
from deploy.local.stack import Stack, database_url
from shared.events import Topic
from shared.messaging.outbox import OutboxRelay
from shared.messaging.publisher import KafkaPublisher
from tests.conftest import TEST_DATABASE, TEST_NAMESPACE, TEST_PORT_BASE, in_test_namespace
from tests.integration.conftest import commit_dossiers, eventually, publish_all, run_worker
from tests.kafka_reader import read_to_end


async def unpublished(pool: asyncpg.Pool, codes: list[str]) -> int:
    """The receipts not yet published (each dossier's applicant waits beside its receipt)."""
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM intake.outbox"
            " WHERE message_key = ANY($1) AND published_at IS NULL AND topic = $2",
            codes,
            str(Topic.INTAKE),
        )
    )


async def routed_events(pool: asyncpg.Pool, codes: list[str]) -> Counter[str]:
    rows = await pool.fetch(
        "SELECT message_key FROM routing.outbox WHERE message_key = ANY($1)", codes
    )
    return Counter(row["message_key"] for row in rows)


async def all_routed(pool: asyncpg.Pool, codes: list[str]) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM routing.routes WHERE dossier_code = ANY($1)", codes
    )
    return bool(count == len(codes))


def routing_process() -> Stack:
    routing = Stack(
        database=TEST_DATABASE, base_port=TEST_PORT_BASE + 100, namespace=TEST_NAMESPACE
    )
    routing.start(["routing"])
    routing.wait_ready(["routing"])
    return routing


async def test_relay_killed_between_commit_and_publish_loses_nothing(
    intake_pool: asyncpg.Pool, publisher: KafkaPublisher, infrastructure: dict[str, str]
) -> None:
    codes = await commit_dossiers(intake_pool, 5, unit="000.41.01.H29")

    run_worker(
        "relay-dies-before-publish",
        "intake",
        database_url=database_url(TEST_DATABASE, "intake"),
        principal="intake",
    )
    assert await unpublished(intake_pool, codes) == 5

    await publish_all(intake_pool, publisher)
    assert await unpublished(intake_pool, codes) == 0
    on_kafka = Counter(
        r.key
        for r in await read_to_end(kafka_access.connection(), [in_test_namespace(Topic.INTAKE)])
    )
    assert {code: on_kafka[code] for code in codes} == dict.fromkeys(codes, 1)


async def test_relay_killed_after_publish_republishes_and_consumers_apply_once(
    intake_pool: asyncpg.Pool,
    reader_pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    infrastructure: dict[str, str],
) -> None:
    codes = await commit_dossiers(intake_pool, 5, unit="000.41.02.H29")

    run_worker(
        "relay-dies-after-publish",
        "intake",
        database_url=database_url(TEST_DATABASE, "intake"),
        principal="intake",
    )
    assert await unpublished(intake_pool, codes) == 5  # published, but not marked: sent again

    await publish_all(intake_pool, publisher)
    records = await read_to_end(kafka_access.connection(), [in_test_namespace(Topic.INTAKE)])
    ours = [r for r in records if r.key in codes]
    assert Counter(r.key for r in ours) == dict.fromkeys(codes, 2)
    assert len({r.headers["ce_id"] for r in ours}) == 5  # the same five events, twice

    routing = routing_process()
    try:
        await eventually(lambda: all_routed(reader_pool, codes))
        assert await routed_events(reader_pool, codes) == dict.fromkeys(codes, 1)
        await eventually(lambda: _logged(routing, "redelivered event skipped", 5))
    finally:
        routing.stop()


async def test_consumer_killed_between_its_commit_and_the_offset_commit(
    intake_pool: asyncpg.Pool, reader_pool: asyncpg.Pool, publisher: KafkaPublisher
) -> None:
    codes = await commit_dossiers(intake_pool, 6, unit="000.00.05.H29")
    await publish_all(intake_pool, publisher)

    run_worker(
        "routing-dies-after-commit",
        "1",  # a batch is one commit: the six may all be in the first
        database_url=database_url(TEST_DATABASE, "routing"),
        principal="routing",
    )
    assert sum((await routed_events(reader_pool, codes)).values()) >= 1  # it did commit work

    routing = routing_process()
    try:
        await eventually(lambda: all_routed(reader_pool, codes))
        assert await routed_events(reader_pool, codes) == dict.fromkeys(codes, 1)
        await eventually(lambda: _logged(routing, "redelivered event skipped", 1))
    finally:
        routing.stop()


async def _logged(stack: Stack, text: str, at_least: int) -> bool:
    return stack.log_tail("routing", lines=10_000).count(text) >= at_least


async def test_several_relays_publish_each_row_once_and_in_order(
    intake_pool: asyncpg.Pool, publisher: KafkaPublisher, infrastructure: dict[str, str]
) -> None:
    codes = await commit_dossiers(intake_pool, 30, unit="000.00.12.H29")
    relays = [
        OutboxRelay(
            intake_pool,
            publisher,
            schema="intake",
            notify_channel="intake_outbox",
            batch_size=4,
        )
        for _ in range(3)
    ]

    async def drain(relay: OutboxRelay) -> None:
        while await unpublished(intake_pool, codes):
            await relay.publish_pending()

    await asyncio.gather(*(drain(relay) for relay in relays))

    records = [
        r
        for r in await read_to_end(kafka_access.connection(), [in_test_namespace(Topic.INTAKE)])
        if r.key in codes
    ]
    assert Counter(r.key for r in records) == dict.fromkeys(codes, 1)
    # Codes are issued in sequence; within a partition they must arrive in that order.
    for partition in {r.partition for r in records}:
        keys = [r.key for r in records if r.partition == partition]
        assert keys == sorted(keys)
