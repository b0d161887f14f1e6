"""Failures of the infrastructure delay work; they never lose or duplicate it."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.local.stack import ROOT, Stack
from shared.events import (
    ApologyObligationRecorded,
    DossierClockStarted,
    DossierReceived,
    DossierRouted,
    Topic,
    dead_letter_topic,
)
from shared.messaging.connection import KafkaConnection
from shared.messaging.envelope import Envelope, encode
from tests.conftest import in_test_namespace
from tests.factories import received_event, submission
from tests.kafka_reader import read_until
from tests.through_failure import all_through, posted
from tests.users import bearer, counter_of
from tests.waiting import eventually

SCHEMAS_AND_TYPES = {
    "intake": DossierReceived.TYPE,
    "routing": DossierRouted.TYPE,
    "deadline": DossierClockStarted.TYPE,
    "notifier": ApologyObligationRecorded.TYPE,
}


@pytest.mark.parametrize("server", ["kafka", "postgres"])
async def test_a_server_restart_while_dossiers_are_posted_loses_and_duplicates_nothing(
    stack: Stack, postgres_url: str, server: str
) -> None:
    codes: list[str] = []
    stop_posting = asyncio.Event()

    async def counter() -> None:
        """Posts dossiers one after another, retrying each with its Idempotency-Key until
        it is accepted, as a counter would when storage is briefly unavailable."""
        desk = await bearer(counter_of("000.00.00.H29"))
        async with httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=30, headers=desk
        ) as client:

            async def accepted(key: str) -> str | None:
                try:
                    response = await client.post(
                        "/v1/dossiers", json=submission(), headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    return None
                if response.status_code in (200, 201):
                    return str(response.json()["dossier_code"])
                assert response.status_code == 503, response.text
                return None

            while not stop_posting.is_set():
                key = str(uuid.uuid4())
                code = await eventually(
                    functools.partial(accepted, key), timeout=120, what=f"dossier {key} accepted"
                )
                codes.append(code)
                await asyncio.sleep(0.02)  # a counter's pace, not a wait

    posting = asyncio.create_task(counter())
    await eventually(lambda: posted(posting, codes, 20), timeout=120)
    script = ROOT / "deploy" / "local" / f"{server}.sh"
    restart = await asyncio.create_subprocess_exec(str(script), "restart")
    assert await restart.wait() == 0
    posted_before_restart_ended = len(codes)
    await eventually(lambda: posted(posting, codes, posted_before_restart_ended + 20), timeout=120)
    stop_posting.set()
    await posting

    assert len(set(codes)) == len(codes)
    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
    try:
        await eventually(lambda: all_through(pool, codes), timeout=180)
        for schema, event_type in SCHEMAS_AND_TYPES.items():
            # Routing is not on the way to the notifier's obligation (the clock starts at
            # receipt): it may still be catching up after the restart when the rest is through.
            counts = await eventually(
                functools.partial(_each_emitted, pool, schema, event_type, codes),
                timeout=180,
                what=f"{schema} has emitted its {event_type} for every dossier",
            )
            assert counts == dict.fromkeys(codes, 1), schema
    finally:
        await pool.close()


async def test_a_malformed_message_is_dead_lettered_and_the_next_one_processed(
    stack: Stack, kafka_admin: KafkaConnection, postgres_url: str
) -> None:
    valid = received_event(
        f"000.00.00.H29-991231-{uuid.uuid4().int % 10000:04d}",
        received_at=_now(),
        appointment_at=_now(),
        channel="online",
    )
    wire = encode(
        Envelope(str(uuid.uuid4()), valid.TYPE, "/onestop/intake", valid.dossier_code, _now()),
        valid.model_dump_json().encode(),
    )
    producer = AIOKafkaProducer(**kafka_admin.client_options(), enable_idempotence=True)
    await producer.start()
    try:
        partition = 0  # both on one partition: the bad one must not block the good one
        await producer.send_and_wait(
            in_test_namespace(Topic.INTAKE),
            b'{"dossier_code": "broken',
            key=wire.key.encode(),
            headers=list(wire.headers.items()),
            partition=partition,
        )
        await producer.send_and_wait(
            in_test_namespace(Topic.INTAKE),
            wire.value,
            key=wire.key.encode(),
            headers=[(n, v) for n, v in wire.headers.items() if n != "ce_id"]
            + [("ce_id", str(uuid.uuid4()).encode())],
            partition=partition,
        )
    finally:
        await producer.stop()

    dead = await read_until(
        kafka_admin,
        [in_test_namespace(dead_letter_topic("routing"))],
        lambda seen: any(r.key == valid.dossier_code for r in seen),
    )
    [letter] = [r for r in dead if r.key == valid.dossier_code]
    assert letter.value == b'{"dossier_code": "broken'
    assert letter.headers["dlt_error_stage"] == "decode"
    assert "not a JSON object" in letter.headers["dlt_error"]
    assert letter.headers["dlt_origin_topic"] == in_test_namespace(Topic.INTAKE)
    assert letter.headers["dlt_origin_partition"] == "0"
    assert letter.headers["ce_type"] == DossierReceived.TYPE

    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
    try:
        await eventually(
            lambda: _exists(pool, "routing.routes", "dossier_code", valid.dossier_code),
            timeout=120,
        )
    finally:
        await pool.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def _each_emitted(
    pool: asyncpg.Pool, schema: str, event_type: str, codes: list[str]
) -> dict[str, int] | None:
    """Each dossier's count of `event_type` in the schema's outbox, once every one has one."""
    rows = await pool.fetch(
        f"SELECT message_key, count(*) AS n FROM {schema}.outbox"
        " WHERE message_key = ANY($1) AND event_type = $2 GROUP BY message_key",
        codes,
        event_type,
    )
    counts = {r["message_key"]: int(r["n"]) for r in rows}
    return counts if len(counts) == len(set(codes)) else None


async def _exists(pool: asyncpg.Pool, table: str, column: str, value: str) -> bool:
    return bool(await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", value))
