"""The broker's access rules, against the real broker: each principal signs in with its own
password, downstream systems read only the public topics, and a service writes only its own
topics and reads only what it consumes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from deploy.local import kafka_access
from shared.events import PUBLIC_TOPICS, Topic, dead_letter_topic
from shared.messaging.access import (
    CONSUMER_GROUPS,
    DOWNSTREAM_GROUP_PREFIX,
    PERSONAL_DATA_TOPIC,
)
from shared.messaging.connection import KafkaConnection
from shared.messaging.topics import ensure_topics
from tests.conftest import TEST_NAMESPACE, in_test_namespace
from tests.kafka_reader import read_until

DEAD_LETTER_TOPICS = [
    in_test_namespace(dead_letter_topic(group))
    for groups in CONSUMER_GROUPS.values()
    for group in groups
]
RESTRICTED = in_test_namespace(PERSONAL_DATA_TOPIC)


@pytest.fixture(scope="module")
async def topics(kafka_admin: KafkaConnection) -> AsyncIterator[None]:
    """The refused topics exist: a refusal is then the ACLs', not an unknown topic's."""
    await ensure_topics(
        kafka_admin, [RESTRICTED, *DEAD_LETTER_TOPICS], partitions=1, replication_factor=1
    )
    yield


def _as(principal: str, kafka_bootstrap: str) -> KafkaConnection:
    return kafka_access.connection(principal, kafka_bootstrap)


async def _refused_to_read(
    kafka: KafkaConnection, topic: str, group: str, error: type[Exception]
) -> None:
    consumer = AIOKafkaConsumer(topic, **kafka.client_options(), group_id=group)
    try:
        with pytest.raises(error):
            await consumer.start()  # it asks for the topic's metadata and joins the group
    finally:
        await consumer.stop()


async def test_downstream_reads_every_public_topic(
    topics: None, kafka_admin: KafkaConnection, kafka_bootstrap: str
) -> None:
    key = f"access-{uuid.uuid4()}"
    producer = AIOKafkaProducer(**kafka_admin.client_options())
    await producer.start()
    try:
        for topic in PUBLIC_TOPICS:
            await producer.send_and_wait(in_test_namespace(topic), b"{}", key=key.encode())
    finally:
        await producer.stop()

    public = [in_test_namespace(t) for t in PUBLIC_TOPICS]
    seen = await read_until(
        _as("downstream", kafka_bootstrap),
        public,
        lambda records: {r.topic for r in records if r.key == key} == set(public),
        namespace=TEST_NAMESPACE,
    )

    assert {r.topic for r in seen if r.key == key} == set(public)
    assert len(public) == 4


@pytest.mark.parametrize("topic", [RESTRICTED, *DEAD_LETTER_TOPICS])
async def test_downstream_is_refused_the_personal_data_and_the_dead_letters(
    topics: None, kafka_bootstrap: str, topic: str
) -> None:
    group = f"{TEST_NAMESPACE}{DOWNSTREAM_GROUP_PREFIX}{uuid.uuid4()}"
    await _refused_to_read(
        _as("downstream", kafka_bootstrap), topic, group, TopicAuthorizationFailedError
    )


async def test_downstream_reads_only_in_consumer_groups_of_its_own(
    topics: None, kafka_bootstrap: str
) -> None:
    """Not in a service's group: it would take that service's partitions and offsets."""
    await _refused_to_read(
        _as("downstream", kafka_bootstrap),
        in_test_namespace(Topic.INTAKE),
        in_test_namespace("routing"),
        GroupAuthorizationFailedError,
    )


async def test_a_service_cannot_write_another_services_topic(kafka_bootstrap: str) -> None:
    producer = AIOKafkaProducer(
        **_as("routing", kafka_bootstrap).client_options(), enable_idempotence=True
    )
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(in_test_namespace(Topic.INTAKE), b"{}", key=b"forged")
        # ...while its own topic takes the same record.
        await producer.send_and_wait(in_test_namespace(Topic.ROUTING), b"{}", key=b"own")
    finally:
        await producer.stop()


async def test_a_service_cannot_read_a_topic_it_does_not_consume(
    topics: None, kafka_bootstrap: str
) -> None:
    routing = _as("routing", kafka_bootstrap)
    for topic in (Topic.DEADLINE, PERSONAL_DATA_TOPIC):
        await _refused_to_read(
            routing,
            in_test_namespace(topic),
            in_test_namespace("routing"),
            TopicAuthorizationFailedError,
        )


async def test_a_wrong_password_is_refused_at_once(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    intake = _as("intake", kafka_bootstrap)
    for password, signs_in in (("not-the-password", False), (None, True)):
        kafka = intake if password is None else intake.as_principal("intake", password)
        producer = AIOKafkaProducer(**kafka.client_options())
        try:
            async with asyncio.timeout(10):  # refused, not left to hang until a timeout
                if signs_in:
                    await producer.start()
                else:
                    with pytest.raises(KafkaConnectionError):
                        await producer.start()
        finally:
            await producer.stop()
    # The refusal is the broker's answer to the password, not an unreachable broker.
    assert "SaslAuthenticationFailed" in caplog.text
