"""No partition waits forever: a message whose prerequisite never comes (its dossier's receipt
was dead-lettered upstream) is parked, the messages behind it on the partition are processed,
and after the bounded wait it is dead-lettered and alerted (error log, metric)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from deploy.local.stack import Stack
from shared.events import Event, HandOffRequested, Topic, dead_letter_topic
from shared.messaging.connection import KafkaConnection
from shared.messaging.envelope import Envelope, encode
from shared.messaging.topics import ensure_topics
from tests.conftest import TEST_DATABASE, TEST_PORT_BASE, throwaway_namespace
from tests.factories import received_event
from tests.kafka_reader import read_until
from tests.waiting import eventually

MAX_WAIT_SECONDS = 3


async def test_a_parked_message_does_not_block_its_partition_and_is_alerted_when_it_expires(
    kafka_admin: KafkaConnection, postgres_url: str
) -> None:
    kafka = kafka_admin
    namespace = await throwaway_namespace("parking")  # topics and group of its own
    intake_topic = namespace + Topic.INTAKE
    dead_letters = namespace + dead_letter_topic("routing")
    await ensure_topics(kafka, [intake_topic, dead_letters], partitions=1, replication_factor=1)
    orphan, later = _code(), _code()

    routing = Stack(
        database=TEST_DATABASE,
        base_port=TEST_PORT_BASE + 200,
        namespace=namespace,
        extra_env={
            "PARKING_MAX_WAIT_SECONDS": str(MAX_WAIT_SECONDS),
            "PARKING_RETRY_INTERVAL_SECONDS": "0.5",
        },
    )
    routing.start(["routing"])
    try:
        routing.wait_ready(["routing"])
        producer = AIOKafkaProducer(**kafka.client_options(), enable_idempotence=True)
        await producer.start()
        try:
            # On one partition: the orphan's receipt, unreadable (dead-lettered at once), a
            # hand-off for it (its prerequisite will never come), then another dossier.
            received = _wire(received_event(orphan, received_at=_now(), appointment_at=_now()))
            await producer.send_and_wait(
                intake_topic, b"{broken", key=orphan.encode(), headers=received[1]
            )
            hand_off = HandOffRequested(
                dossier_code=orphan,
                from_unit_code="000.00.10.H29",
                to_unit_code="000.20.01.H29",
                official="Lê Văn Tư",
                requested_at=_now(),
            )
            for event in (
                hand_off,
                received_event(later, received_at=_now(), appointment_at=_now()),
            ):
                value, headers = _wire(event)
                await producer.send_and_wait(
                    intake_topic, value, key=event.dossier_code.encode(), headers=headers
                )
        finally:
            await producer.stop()

        # The dossier behind the parked hand-off is routed: the partition moved on.
        pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
        try:
            await eventually(lambda: _routed(pool, later), timeout=60, what="later dossier routed")
        finally:
            await pool.close()

        # After the bounded wait, the hand-off is dead-lettered with why, and alerted.
        dead = await read_until(
            kafka,
            [dead_letters],
            lambda seen: any(r.headers.get("dlt_error_stage") == "prerequisite" for r in seen),
            timeout=60,
        )
        stages = {r.headers["dlt_error_stage"] for r in dead if r.key == orphan}
        assert stages == {"decode", "prerequisite"}
        [expired] = [r for r in dead if r.headers["dlt_error_stage"] == "prerequisite"]
        assert expired.headers["ce_type"] == HandOffRequested.TYPE
        assert "NotRoutedYet" in expired.headers["dlt_error"]

        async def alerted() -> bool:
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"{routing.url('routing')}/metrics")).text
            expired = _value(metrics, "onestop_messages_parking_expired_total")
            return expired == 1 and _value(metrics, "onestop_messages_parked") == 0

        await eventually(alerted, timeout=30, what="expiry counted, nothing parked")
        log = routing.log_tail("routing", lines=300)
        assert f'"why": "NotRoutedYet: dossier {orphan} is not routed"' in log  # parked first
        assert "prerequisite never arrived" in log
    finally:
        routing.stop()


def _wire(event: Event) -> tuple[bytes, list[tuple[str, bytes]]]:
    message = encode(
        Envelope(str(uuid.uuid4()), event.TYPE, "/onestop/intake", event.dossier_code, _now()),
        event.model_dump_json().encode(),
    )
    return message.value, list(message.headers.items())


async def _routed(pool: asyncpg.Pool, code: str) -> bool:
    return bool(
        await pool.fetchval("SELECT count(*) FROM routing.routes WHERE dossier_code = $1", code)
    )


def _value(metrics: str, name: str) -> float:
    """The sum of a metric's samples in Prometheus text."""
    samples = [line for line in metrics.splitlines() if line.startswith(name + "{")]
    assert samples, f"{name} not exposed"
    return sum(float(line.rsplit(" ", 1)[1]) for line in samples)


def _code() -> str:
    return f"000.00.00.H29-991230-{uuid.uuid4().int % 10000:04d}"


def _now() -> datetime:
    return datetime.now(UTC)
