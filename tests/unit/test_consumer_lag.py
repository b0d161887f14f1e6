"""The consumer lag gauge: messages after the one being handled, per partition, kept true
between messages by the refresh from the broker's end offsets and the consumer's position."""

from __future__ import annotations

from typing import Any, cast

from aiokafka import TopicPartition
from opentelemetry.metrics import CallbackOptions, NoOpMeter

from shared.messaging.consumer import ConsumerMetrics, EventConsumer, refresh_lag

GROUP = "intake-projection"
TOPIC = "onestop.routing.dossier-events"


def lags(metrics: ConsumerMetrics) -> dict[tuple[str, str], int]:
    return {
        (
            str(o.attributes["messaging.destination.name"]),
            str(o.attributes["messaging.destination.partition.id"]),
        ): int(o.value)
        for o in metrics._observe_lag(CallbackOptions())
        if o.attributes
    }


def test_a_message_counts_those_after_it_on_its_partition() -> None:
    metrics = ConsumerMetrics(NoOpMeter("test"))
    metrics.handling(GROUP, TOPIC, 0, offset=5, highwater=10)
    assert lags(metrics) == {(TOPIC, "0"): 4}


def test_a_refreshed_end_newer_than_the_fetch_counts() -> None:
    """aiokafka's highwater is the one of its last fetch; the broker's end may be further."""
    metrics = ConsumerMetrics(NoOpMeter("test"))
    metrics.refreshed(GROUP, {(TOPIC, 0): (40, 20)})
    metrics.handling(GROUP, TOPIC, 0, offset=20, highwater=25)
    assert lags(metrics) == {(TOPIC, "0"): 19}


def test_refresh_reads_0_when_caught_up_and_forgets_partitions_moved_away() -> None:
    metrics = ConsumerMetrics(NoOpMeter("test"))
    metrics.handling(GROUP, TOPIC, 0, offset=5, highwater=10)
    metrics.handling(GROUP, TOPIC, 1, offset=5, highwater=10)
    metrics.refreshed(GROUP, {(TOPIC, 0): (10, 10)})
    assert lags(metrics) == {(TOPIC, "0"): 0}


class FakeKafkaConsumer:
    def __init__(self, ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]):
        self.ends = ends
        self.positions = positions

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {partition: self.ends[partition] for partition in partitions}

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]


async def test_refresh_lag_is_end_minus_position_per_assigned_partition() -> None:
    metrics = ConsumerMetrics(NoOpMeter("test"))
    consumer = cast(Any, EventConsumer)(
        group_id=GROUP,
        topics=(TOPIC,),
        handlers={},
        unit_of_work=lambda: None,
        publisher=None,
        metrics=metrics,
    )
    first, second = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    kafka = FakeKafkaConsumer({first: 120, second: 7}, {first: 100, second: 7})
    await refresh_lag(cast(Any, kafka), consumer)
    assert lags(metrics) == {(TOPIC, "0"): 20, (TOPIC, "1"): 0}
