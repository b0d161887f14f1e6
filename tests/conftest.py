"""Fixtures for the real Kafka broker and PostgreSQL server that `make test` starts.

If either is unreachable the tests that need it fail, saying so: they are never skipped."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.stack import KAFKA_BOOTSTRAP, database_url
from shared.events import Topic, dead_letter_topic
from shared.messaging.topics import ensure_topics
from tests.waiting import eventually

# The suite never touches the system that `make run` serves: its topics and consumer groups
# carry a namespace of their own, and its databases are its own. The variables let two runs
# share one broker and server (say, two checkouts).
TEST_NAMESPACE = os.environ.get("ONESTOP_TEST_NAMESPACE", "test.")
TEST_DATABASE = os.environ.get("ONESTOP_TEST_DATABASE", "onestop_test")
SIMULATION_DATABASE = os.environ.get("ONESTOP_SIM_DATABASE", "onestop_sim")  # simulated time
TEST_PORT_BASE = int(os.environ.get("ONESTOP_TEST_PORT_BASE", "18000"))
SCHEMAS = ("intake", "routing", "deadline", "notifier")
PARTITIONS = 3


def in_test_namespace(topic: str) -> str:
    """A project topic as the suite's services see it."""
    return TEST_NAMESPACE + topic


def throwaway_namespace(purpose: str) -> str:
    """A namespace for one system of the suite (simulated time, say), beside the suite's own;
    its topics are deleted at the start of the next run."""
    return f"{TEST_NAMESPACE.rstrip('.')}-{purpose}{uuid.uuid4().hex[:8]}."


def _the_suites(topic: str) -> bool:
    return topic.startswith((TEST_NAMESPACE, TEST_NAMESPACE.rstrip(".") + "-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", KAFKA_BOOTSTRAP)


async def clean_database(name: str) -> str:
    """The database's URL, with the services' schemas dropped."""
    url = database_url(name)
    try:
        await _create_database_if_missing(name)
        connection = await asyncpg.connect(url, timeout=10)
    except Exception as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({type(error).__name__}: {error}); "
            "start it with `deploy/local/postgres.sh start` (make test does)",
            pytrace=False,
        )
    try:
        for schema in SCHEMAS:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await connection.close()
    return url


async def _create_database_if_missing(name: str) -> None:
    connection = await asyncpg.connect(database_url("onestop"), timeout=10)
    try:
        if not await connection.fetchval("SELECT true FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A clean test database: the services' schemas are dropped once per run."""
    yield await clean_database(TEST_DATABASE)


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> AsyncIterator[str]:
    """The broker, with the suite's topics (its namespace only) recreated empty once per run."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), 20)
    except Exception as error:
        pytest.fail(
            f"Kafka is not reachable at {KAFKA_BOOTSTRAP} ({type(error).__name__}); "
            "start it with `deploy/local/kafka.sh start` (make test does)",
            pytrace=False,
        )
    try:
        existing = [t for t in await admin.list_topics() if _the_suites(t)]
        if existing:
            await admin.delete_topics(existing)
            await eventually(lambda: _absent(admin, existing), timeout=30, what="topics deleted")
    finally:
        await admin.close()
    consumer_groups = ("routing", "deadline", "notifier", "intake-projection")
    await ensure_topics(
        KAFKA_BOOTSTRAP,
        [in_test_namespace(t) for t in (*Topic, *map(dead_letter_topic, consumer_groups))],
        partitions=PARTITIONS,
        replication_factor=1,
    )
    yield KAFKA_BOOTSTRAP


async def _absent(admin: AIOKafkaAdminClient, topics: list[str]) -> bool:
    return not set(topics) & set(await admin.list_topics())


@pytest.fixture(scope="session")
async def infrastructure(postgres_url: str, kafka_bootstrap: str) -> dict[str, str]:
    return {
        "database_url": postgres_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_namespace": TEST_NAMESPACE,
    }
