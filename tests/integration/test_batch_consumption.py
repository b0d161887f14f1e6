"""A batch of records applied in one transaction keeps every per-record guarantee: against the
real broker (the records are read back from a topic) and routing's real PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from opentelemetry import trace

from deploy.local.stack import database_url
from services.routing.handlers import Routing
from services.routing.main import MIGRATIONS
from services.routing.repository import RoutingUnitOfWork
from shared import db
from shared.catalog import load_catalog
from shared.events import (
    DossierReceived,
    DossierRouted,
    Event,
    HandOffRequested,
    Topic,
    dead_letter_topic,
)
from shared.messaging.connection import KafkaConnection
from shared.messaging.consumer import EventConsumer
from shared.messaging.envelope import Envelope, encode
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.topics import ensure_topics
from shared.settings import DEFAULT_CATALOG
from tests.conftest import TEST_DATABASE, throwaway_namespace
from tests.factories import received_event
from tests.kafka_reader import read_until


@pytest.fixture
async def routing_pool(infrastructure: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url(TEST_DATABASE, "routing"), "routing")
    await db.migrate(pool, "routing", MIGRATIONS)
    yield pool
    await pool.close()


class Batch:
    """A throwaway intake topic and dead-letter topic, and routing's consumer on them."""

    def __init__(self, kafka: KafkaConnection, namespace: str, pool: asyncpg.Pool) -> None:
        self.kafka = kafka
        self.namespace = namespace
        self.topic = namespace + Topic.INTAKE
        self.dead_letters = namespace + dead_letter_topic("routing")
        self.pool = pool
        self.produced = 0
        self.publisher = KafkaPublisher(
            kafka, client_id="batch-tests", tracer=trace.NoOpTracer(), namespace=namespace
        )
        routing = Routing(catalog=load_catalog(DEFAULT_CATALOG), clock=lambda: datetime.now(UTC))
        self.handlers: dict[type[Event], Any] = {
            DossierReceived: routing.on_dossier_received,
            HandOffRequested: routing.on_hand_off_requested,
        }
        self.consumer = EventConsumer(
            group_id=namespace + "routing",
            topics=(self.topic,),
            handlers=self.handlers,
            unit_of_work=lambda: RoutingUnitOfWork(
                pool, source="/onestop/routing", notify_channel="routing_outbox", schema="routing"
            ),
            publisher=self.publisher,
            max_backoff=0.2,
            dead_letters=dead_letter_topic("routing"),
        )

    async def records(self, messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> Any:
        """Produce (key, value, headers) to the topic's one partition and read them back."""
        self.produced += len(messages)
        producer = AIOKafkaProducer(**self.kafka.client_options(), enable_idempotence=True)
        await producer.start()
        try:
            for key, value, headers in messages:
                await producer.send_and_wait(self.topic, value, key=key, headers=headers)
        finally:
            await producer.stop()
        reader = AIOKafkaConsumer(
            self.topic,
            **self.kafka.client_options(),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await reader.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            while len(records) < self.produced:
                for batch in (await reader.getmany(timeout_ms=1000)).values():
                    records.extend(batch)
        finally:
            await reader.stop()
        return records[-len(messages) :]

    async def outbox(self, code: str) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT event_type, causation_id, dossier_sequence, xmin::text AS xmin FROM outbox"
                " WHERE message_key = $1 ORDER BY position",
                code,
            )
        )

    async def parked(self) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT dossier_code, event_type FROM parked WHERE consumer_group = $1 ORDER BY id",
            self.consumer.group_id,
        )
        return [(row["dossier_code"], row["event_type"]) for row in rows]


@pytest.fixture
async def batch(kafka_admin: KafkaConnection, routing_pool: asyncpg.Pool) -> AsyncIterator[Batch]:
    namespace = await throwaway_namespace("batch")
    batch = Batch(kafka_admin, namespace, routing_pool)
    await ensure_topics(
        kafka_admin, [batch.topic, batch.dead_letters], partitions=1, replication_factor=1
    )
    await batch.publisher.start()
    yield batch
    await batch.publisher.stop()


def wire(event: Event, event_id: str | None = None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    now = datetime.now(UTC)
    message = encode(
        Envelope(
            event_id or str(uuid.uuid4()), event.TYPE, "/onestop/intake", event.dossier_code, now
        ),
        event.model_dump_json().encode(),
    )
    return event.dossier_code.encode(), message.value, list(message.headers.items())


def code() -> str:
    return f"000.00.00.H29-991231-{uuid.uuid4().int % 10000:04d}"


def received(dossier: str, **changes: Any) -> DossierReceived:
    now = datetime.now(UTC)
    return received_event(dossier, received_at=now, appointment_at=now).model_copy(update=changes)


def hand_off(dossier: str) -> HandOffRequested:
    return HandOffRequested(
        dossier_code=dossier,
        from_unit_code="000.00.10.H29",
        to_unit_code="000.20.01.H29",
        official="Lê Văn Tư",
        requested_at=datetime.now(UTC),
    )


async def test_a_mixed_batch_keeps_every_records_policy(batch: Batch) -> None:
    first, orphan, broken, last = code(), code(), code(), code()
    first_id, last_id = str(uuid.uuid4()), str(uuid.uuid4())
    duplicate = wire(received(first), first_id)
    unreadable = (broken.encode(), b"{broken", duplicate[2])  # its headers name another id
    unknown_procedure = wire(received(broken, procedure_code="9.999999"))
    records = await batch.records(
        [
            duplicate,
            duplicate,  # a redelivery inside the batch
            unreadable,
            wire(hand_off(orphan)),  # its receipt never came: parked
            wire(received(orphan)),  # behind it, in order, though it could be applied
            unknown_procedure,  # the handler raises: only it is dead-lettered
            wire(received(last), last_id),
        ]
    )

    await batch.consumer.handle_batch(records)
    await batch.consumer.handle_batch(records)  # the whole batch redelivered: nothing twice

    first_routed, last_routed = await batch.outbox(first), await batch.outbox(last)
    assert [(r["event_type"], str(r["causation_id"])) for r in first_routed] == [
        (DossierRouted.TYPE, first_id)
    ]
    assert [(r["event_type"], str(r["causation_id"])) for r in last_routed] == [
        (DossierRouted.TYPE, last_id)
    ]
    assert await batch.outbox(broken) == []
    assert await batch.outbox(orphan) == []
    assert await batch.parked() == [
        (orphan, HandOffRequested.TYPE),
        (orphan, DossierReceived.TYPE),
    ]

    # A later batch: the orphan's next record parks behind the others without its handler
    # running, in the same transaction as the next dossier's routing.
    after = code()
    await batch.consumer.handle_batch(
        await batch.records([wire(hand_off(orphan)), wire(received(after))])
    )
    assert [kind for _, kind in await batch.parked()] == [
        HandOffRequested.TYPE,
        DossierReceived.TYPE,
        HandOffRequested.TYPE,
    ]
    parked_in = await batch.pool.fetchval(
        "SELECT xmin::text FROM parked WHERE consumer_group = $1 ORDER BY id DESC LIMIT 1",
        batch.consumer.group_id,
    )
    assert [r["xmin"] for r in await batch.outbox(after)] == [parked_in]

    dead = await read_until(
        batch.kafka, [batch.dead_letters], lambda seen: len(seen) >= 4, timeout=30
    )
    # Each failing record once per delivery (the batch came twice), and nothing else.
    assert sorted((r.key, r.headers["dlt_error_stage"]) for r in dead) == sorted(
        [(broken, "decode"), (broken, "apply")] * 2
    )
    assert all(
        "UnknownProcedure" in r.headers["dlt_error"]
        for r in dead
        if r.headers["dlt_error_stage"] == "apply"
    )


async def test_a_transient_database_failure_mid_batch_loses_nothing_and_applies_nothing_twice(
    batch: Batch, routing_pool: asyncpg.Pool
) -> None:
    dossiers = [code() for _ in range(4)]
    records = await batch.records([wire(received(dossier)) for dossier in dossiers])
    apply = batch.handlers[DossierReceived]
    calls: list[str] = []

    async def dies_on_the_third(event: DossierReceived, uow: RoutingUnitOfWork) -> None:
        calls.append(event.dossier_code)
        if len(calls) == 3:  # the batch's connection is cut under it, once
            pid = uow._connection.get_server_pid()
            await routing_pool.execute("SELECT pg_terminate_backend($1, 10000)", pid)
        await apply(event, uow)

    batch.handlers[DossierReceived] = dies_on_the_third

    await batch.consumer.handle_batch(records)

    assert calls[:3] == dossiers[:3] and calls[3:] == dossiers  # retried whole, in order
    rows = [await batch.outbox(dossier) for dossier in dossiers]
    assert [[(r["event_type"], r["dossier_sequence"]) for r in row] for row in rows] == [
        [(DossierRouted.TYPE, 1)]
    ] * len(dossiers)
    assert len({row[0]["xmin"] for row in rows}) == 1  # one transaction for the batch


async def test_a_batch_with_a_redelivery_is_one_transaction_each_event_with_its_cause(
    batch: Batch,
) -> None:
    first, second = code(), code()
    first_id, second_id = str(uuid.uuid4()), str(uuid.uuid4())
    records = await batch.records(
        [wire(received(first), first_id)] * 2 + [wire(received(second), second_id)]
    )

    await batch.consumer.handle_batch(records)

    rows = [await batch.outbox(first), await batch.outbox(second)]
    assert [[str(r["causation_id"]) for r in row] for row in rows] == [[first_id], [second_id]]
    assert rows[0][0]["xmin"] == rows[1][0]["xmin"]
