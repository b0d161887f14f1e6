"""Fixtures for the real Kafka broker, PostgreSQL server and Keycloak that `make test` starts.

If one is unreachable the tests that need it fail, saying so: they are never skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from deploy.local import clean_slate, identity, kafka_access
from deploy.local.clean_slate import recreate_topics
from deploy.local.stack import KAFKA_BOOTSTRAP, POSTGRES_PORT
from shared.events import Topic, dead_letter_topic
from shared.messaging.access import revoke
from shared.messaging.connection import KafkaConnection

# The suite never touches the system that `make run` serves: its topics and consumer groups
# carry a namespace of their own, and its databases are its own. The variables let two runs
# share one broker and server (say, two checkouts).
TEST_NAMESPACE = os.environ.get("ONESTOP_TEST_NAMESPACE", "test.")
TEST_DATABASE = os.environ.get("ONESTOP_TEST_DATABASE", "onestop_test")
SIMULATION_DATABASE = os.environ.get("ONESTOP_SIM_DATABASE", "onestop_sim")  # simulated time
TEST_PORT_BASE = int(os.environ.get("ONESTOP_TEST_PORT_BASE", "18000"))
PARTITIONS = 3


def in_test_namespace(topic: str) -> str:
    """A project topic as the suite's services see it."""
    return TEST_NAMESPACE + topic


THROWAWAY_PREFIX = TEST_NAMESPACE.rstrip(".") + "-"
SUITE_PREFIXES = (TEST_NAMESPACE, THROWAWAY_PREFIX)  # its own, its throwaways


async def throwaway_namespace(purpose: str) -> str:
    """A namespace for one system of the suite (simulated time, say), beside the suite's own,
    with its services' ACLs; its topics and ACLs are deleted at the start of the next run."""
    namespace = f"{THROWAWAY_PREFIX}{purpose}{uuid.uuid4().hex[:8]}."
    await kafka_access.grant(namespace)
    return namespace


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", KAFKA_BOOTSTRAP)


async def clean_database(name: str) -> str:
    """The provisioning role's URL to the database, created if missing, with the services'
    schemas dropped and provisioned again, empty (deploy/local/databases.py)."""
    try:
        return await clean_slate.clean_database(name)
    except Exception as error:
        pytest.fail(
            f"PostgreSQL is not ready at 127.0.0.1:{POSTGRES_PORT}/{name}"
            f" ({type(error).__name__}: {error});"
            " start it with `deploy/local/postgres.sh start` (make test does)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A clean test database, as the provisioning role (reads every service's schema): the
    services' schemas are dropped and provisioned again once per run."""
    yield await clean_database(TEST_DATABASE)


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> AsyncIterator[str]:
    """The broker, with the suite's topics (its namespace only) recreated empty once per run,
    the ACLs of its namespace in place and those of earlier runs' throwaways deleted."""
    consumer_groups = ("routing", "deadline", "notifier", "intake-projection")
    topics = [in_test_namespace(t) for t in (*Topic, *map(dead_letter_topic, consumer_groups))]
    admin = kafka_access.connection()
    try:
        await revoke(admin, THROWAWAY_PREFIX)
        await kafka_access.grant(TEST_NAMESPACE)
        await recreate_topics(admin, SUITE_PREFIXES, topics, partitions=PARTITIONS, timeout=30)
    except Exception as error:
        pytest.fail(
            f"Kafka at {KAFKA_BOOTSTRAP} did not give the suite empty topics"
            f" ({type(error).__name__}: {error}); start it with `deploy/local/kafka.sh start`"
            " (make test does)",
            pytrace=False,
        )
    yield KAFKA_BOOTSTRAP


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> KafkaConnection:
    """The broker as the admin principal: the tests' own producers and readers."""
    return kafka_access.connection(bootstrap=kafka_bootstrap)


@pytest.fixture(scope="session")
async def infrastructure(postgres_url: str, kafka_bootstrap: str) -> dict[str, str]:
    """`database_url` is the provisioning role's; a service connects with its own role's:
    deploy.local.stack.database_url(infrastructure["database"], service)."""
    return {
        "database": TEST_DATABASE,
        "database_url": postgres_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_namespace": TEST_NAMESPACE,
    }


@pytest.fixture(scope="session")
async def keycloak_issuer() -> str:
    """The local Keycloak's realm `onestop`, checked once: its issuer URL."""
    try:
        await identity.check_ready()
    except identity.KeycloakUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    return identity.ISSUER
