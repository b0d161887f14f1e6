"""The multi-node mode (`make run SCALE=3 BROKERS=3`) keeps the guarantees while a broker and
one instance of every service are killed and brought back: nothing accepted is lost, nothing
is applied or issued twice, and each dossier's events stay in order on every topic.

The three-broker cluster (deploy/local/kafka-cluster.sh) is started here if it is not running,
and stopped again at the end if it was started here."""

from __future__ import annotations

import asyncio
import functools
import itertools
import subprocess
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from deploy.local import kafka_access
from deploy.local.clean_slate import recreate_topics
from deploy.local.stack import ROOT, Stack, database_url
from shared.events import (
    ApologyObligationRecorded,
    ApplicantDetailsRecorded,
    DossierClockStarted,
    DossierReceived,
    DossierRouted,
    StepClocksStarted,
    Topic,
    dead_letter_topic,
)
from shared.messaging.connection import KafkaConnection
from tests.conftest import TEST_DATABASE, TEST_NAMESPACE, TEST_PORT_BASE, clean_database
from tests.factories import submission
from tests.kafka_reader import Seen, read_to_end
from tests.through_failure import all_through, posted
from tests.users import bearer, counter_of
from tests.waiting import eventually

CLUSTER_SCRIPT = str(ROOT / "deploy" / "local" / "kafka-cluster.sh")
DATABASE = f"{TEST_DATABASE}_cluster"
DOSSIERS = 2000
SCALE = 2  # instances of each service: enough for a group to rebalance, light on 2 cores
COUNTERS = 8  # counters posting at once, of several units
UNITS = ("000.00.00.H29", "000.41.01.H29", "000.41.02.H29")
KILLED_BROKER = 2
KILL_AT, RESTART_AT = DOSSIERS // 10, DOSSIERS // 4  # accepted dossiers before each step
# Each service's own event for a dossier: exactly one per dossier in its outbox.
OWN_EVENT = {
    "intake": DossierReceived.TYPE,
    "routing": DossierRouted.TYPE,
    "deadline": DossierClockStarted.TYPE,
    "notifier": ApologyObligationRecorded.TYPE,
}
# The events each service applies (its inbox), one per dossier of each type.
APPLIED = {
    "intake": [
        DossierRouted.TYPE,
        DossierClockStarted.TYPE,
        StepClocksStarted.TYPE,
        ApologyObligationRecorded.TYPE,
    ],
    "routing": [DossierReceived.TYPE],
    "deadline": [DossierReceived.TYPE, DossierRouted.TYPE],
    "notifier": [DossierReceived.TYPE, ApplicantDetailsRecorded.TYPE, DossierClockStarted.TYPE],
}
TOPICS = [TEST_NAMESPACE + t for t in Topic]  # the restricted one too: read as the admin
CONSUMER_GROUPS = ("routing", "deadline", "notifier", "intake-projection")
DEAD_LETTERS = [TEST_NAMESPACE + dead_letter_topic(group) for group in CONSUMER_GROUPS]


def cluster(command: str, *args: str) -> None:
    done = subprocess.run([CLUSTER_SCRIPT, command, *args], capture_output=True, text=True)
    assert done.returncode == 0, f"kafka-cluster.sh {command} failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[KafkaConnection]:
    """The cluster, started if it is not running (and then stopped at the end)."""
    was_running = subprocess.run([CLUSTER_SCRIPT, "status"], capture_output=True).returncode == 0
    cluster("start")
    try:
        yield kafka_access.connection(bootstrap=kafka_access.CLUSTER_BOOTSTRAP)
    finally:
        if not was_running:
            cluster("stop")


@pytest.fixture(scope="module")
async def cluster_stack(kafka_cluster: KafkaConnection) -> AsyncIterator[Stack]:
    """SCALE instances of each service on the cluster, with a database and topics of their own
    (12 partitions, 3 replicas)."""
    await clean_database(DATABASE)
    topics = [TEST_NAMESPACE + t for t in (*Topic, *map(dead_letter_topic, CONSUMER_GROUPS))]
    await kafka_access.grant(TEST_NAMESPACE, bootstrap=kafka_access.CLUSTER_BOOTSTRAP)
    await recreate_topics(
        kafka_cluster,
        (TEST_NAMESPACE,),
        topics,
        partitions=kafka_access.CLUSTER_PARTITIONS,
        replication_factor=kafka_access.CLUSTER_REPLICATION_FACTOR,
        timeout=60,
    )
    running = Stack(
        database=DATABASE,
        base_port=TEST_PORT_BASE + 400,
        namespace=TEST_NAMESPACE,
        scale=SCALE,
        kafka_bootstrap=kafka_access.CLUSTER_BOOTSTRAP,
        # No spans: this test reads none, and two cores are better spent on the services.
        extra_env={**kafka_access.cluster_environment(), "OTEL_TRACES_EXPORTER": "none"},
    )
    running.start()
    try:
        running.wait_ready(timeout=180)
        yield running
    finally:
        running.stop()


# About 2.5 min on an idle 2-core machine; the limit leaves room for a shared, loaded one.
@pytest.mark.timeout(900)
async def test_killing_a_broker_and_an_instance_of_each_service_loses_and_repeats_nothing(
    cluster_stack: Stack, kafka_cluster: KafkaConnection
) -> None:
    stack = cluster_stack
    victims = [f"{service}-2" for service in OWN_EVENT]  # one instance of each service
    codes: list[str] = []
    keys = iter(range(DOSSIERS))
    desks = {unit: await bearer(counter_of(unit)) for unit in UNITS}

    async def counter(unit: str) -> None:
        """Posts dossiers one after another, each retried with its Idempotency-Key until it
        is accepted, as a counter would while an instance is gone."""
        async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=60) as client:

            async def accepted(key: str) -> str | None:
                try:
                    response = await client.post(
                        "/v1/dossiers",
                        json=submission(),
                        headers={**desks[unit], "Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    return None  # its instance died under it: again, maybe to another
                if response.status_code in (200, 201):
                    return str(response.json()["dossier_code"])
                assert response.status_code == 503, response.text
                return None

            for _ in keys:  # shared by the counters: DOSSIERS in all
                key = str(uuid.uuid4())
                codes.append(
                    await eventually(
                        functools.partial(accepted, key), timeout=120, what=f"{key} accepted"
                    )
                )

    posting = asyncio.gather(
        *(counter(u) for u in itertools.islice(itertools.cycle(UNITS), COUNTERS))
    )
    await eventually(lambda: posted(posting, codes, KILL_AT), timeout=120)
    cluster("kill-node", str(KILLED_BROKER))
    for victim in victims:
        stack.kill(victim)  # SIGKILL
    await eventually(lambda: posted(posting, codes, RESTART_AT), timeout=120)
    cluster("start-node", str(KILLED_BROKER))
    stack.start(victims)
    await posting
    stack.wait_ready(victims, timeout=120)

    assert len(codes) == DOSSIERS
    assert len(set(codes)) == DOSSIERS, "a dossier was accepted twice"
    pool = await asyncpg.create_pool(database_url(DATABASE), min_size=1, max_size=2)
    try:
        # Every accepted dossier went all the way: routed, clocked, its apology obligation
        # recorded by the notifier and seen back by intake.
        await eventually(lambda: all_through(pool, codes), timeout=300, interval=1)
        for schema, event_type in OWN_EVENT.items():
            rows = await pool.fetch(
                f"SELECT message_key, count(*) AS n FROM {schema}.outbox"
                " WHERE event_type = $1 GROUP BY message_key",
                event_type,
            )
            counts = {r["message_key"]: r["n"] for r in rows}
            assert counts == dict.fromkeys(codes, 1), f"{schema}: {event_type} not once each"
        records = await read_to_end(kafka_cluster, TOPICS, timeout=120)
        dead = await read_to_end(kafka_cluster, DEAD_LETTERS, timeout=60)
    finally:
        await pool.close()

    # Applied once: each service's inbox holds exactly the events of each type the topics
    # carry, one per dossier (a redelivered copy, same ce_id, was not applied again), and
    # nothing else: no type it was not expected to apply.
    ids_by_type: dict[str, set[str]] = defaultdict(set)
    for record in records:
        ids_by_type[record.headers["ce_type"]].add(record.headers["ce_id"])
    pool = await asyncpg.create_pool(database_url(DATABASE), min_size=1, max_size=2)
    try:
        for schema, types in APPLIED.items():
            applied: dict[str, set[str]] = defaultdict(set)
            for row in await pool.fetch(f"SELECT event_id::text, event_type FROM {schema}.inbox"):
                applied[row["event_type"]].add(row["event_id"])
            assert set(applied) == set(types), schema
            for event_type in types:
                assert applied[event_type] == ids_by_type[event_type], (schema, event_type)
                assert len(applied[event_type]) == DOSSIERS, (schema, event_type)
    finally:
        await pool.close()

    assert dead == [], "events were dead-lettered"
    _assert_in_order_per_dossier(records, set(codes))


def _assert_in_order_per_dossier(records: list[Seen], codes: set[str]) -> None:
    """On each topic, each dossier's events are on one partition, and read in offset order
    (its first copy of each: a relay killed between the broker's ack and marking the row sent
    sends it again) they come in their source's sequence 1, 2, 3 … without a gap. (The
    restricted topic's events are not numbered: it carries one per dossier.)"""
    restricted = {TEST_NAMESPACE + t for t in Topic if t.restricted}
    by_topic_key: dict[tuple[str, str], list[Seen]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        by_topic_key[(record.topic, record.key)].append(record)
    assert {key for _, key in by_topic_key} == codes
    for (topic, key), events in by_topic_key.items():
        assert len({e.partition for e in events}) == 1, f"{key} on several partitions of {topic}"
        if topic in restricted:
            assert len({e.headers["ce_id"] for e in events}) == 1, f"{topic} {key}"
            continue
        first: dict[str, int] = {}
        for event in events:
            first.setdefault(event.headers["ce_id"], int(event.headers["ce_sequence"]))
        sequence = list(first.values())
        assert sequence == list(range(1, len(sequence) + 1)), f"{topic} {key}: {sequence}"
