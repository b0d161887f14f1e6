"""A corner of the shared PostgreSQL server and Kafka broker, emptied: a database and a topic
namespace of one's own, so that the test suite or the demo runs beside `make run`'s system."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local import databases
from deploy.local.stack import SERVICES, database_url
from shared.messaging.connection import KafkaConnection
from shared.messaging.topics import ensure_topics

SCHEMAS = SERVICES  # each service's schema is named after it


async def clean_database(name: str, services: Iterable[str] = SERVICES) -> str:
    """The provisioning role's URL to the database, created if missing, with the services'
    schemas (all, or those named) dropped and provisioned again, empty: each owned by its
    service's role, which migrates it at start."""
    server = await asyncpg.connect(database_url("onestop"), timeout=10)
    try:
        if not await server.fetchval("SELECT true FROM pg_database WHERE datname = $1", name):
            await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    url = database_url(name)
    connection = await asyncpg.connect(url, timeout=10)
    try:
        for schema in services:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await databases.provision(connection)
    finally:
        await connection.close()
    return url


async def recreate_topics(
    admin_connection: KafkaConnection,
    prefixes: tuple[str, ...],
    topics: Iterable[str],
    *,
    partitions: int,
    timeout: float,
    replication_factor: int = 1,
) -> None:
    """Delete every topic whose name starts with one of `prefixes` (a namespace: and so its
    consumer groups' offsets in them), then create `topics` empty, so that no event of an
    earlier run reaches this one. `admin_connection`: a principal that may delete them."""
    admin = AIOKafkaAdminClient(**admin_connection.client_options(), request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if ours:
            await admin.delete_topics(ours)
            deadline = time.monotonic() + timeout
            while set(ours) & set(await admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Kafka did not delete the topics {prefixes} in {timeout}s")
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await ensure_topics(
        admin_connection, list(topics), partitions=partitions, replication_factor=replication_factor
    )
