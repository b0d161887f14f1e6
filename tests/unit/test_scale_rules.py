"""The multi-node mode's instances: their names, ports and what each is told."""

from __future__ import annotations

from deploy.local.kafka_access import cluster_environment
from deploy.local.stack import Stack, service_of


def test_one_instance_of_each_service_keeps_the_names_and_ports_of_make_run() -> None:
    stack = Stack(base_port=8000)
    assert stack.instances() == ["intake", "routing", "deadline", "notifier"]
    assert [stack.port(i) for i in stack.instances()] == [8000, 8001, 8002, 8003]
    assert stack.environment("intake")["HTTP_REUSE_PORT"] == "false"


def test_the_intakes_share_a_port_and_the_consumers_each_have_their_own() -> None:
    stack = Stack(base_port=8000, scale=3)
    assert stack.instances(["intake", "routing"]) == [
        "intake",
        "intake-2",
        "intake-3",
        "routing",
        "routing-2",
        "routing-3",
    ]
    assert {stack.port(i) for i in ("intake", "intake-2", "intake-3")} == {8000}
    assert [stack.port(i) for i in ("notifier", "notifier-2", "notifier-3")] == [8003, 8013, 8023]
    ports = [stack.port(i) for i in stack.instances() if service_of(i) != "intake"]
    assert len(set(ports)) == len(ports)
    assert stack.environment("intake-2")["HTTP_REUSE_PORT"] == "true"
    assert stack.environment("routing-2")["HTTP_REUSE_PORT"] == "false"
    # An instance is its service: its principal, its database role, its consumer group.
    routing = stack.environment("routing-3")
    assert routing["KAFKA_USERNAME"] == "routing"
    assert routing["OTEL_SERVICE_NAME"] == "routing"
    assert stack.log_path("intake-2") != stack.log_path("intake")


def test_on_the_cluster_the_services_make_replicated_topics_of_twelve_partitions() -> None:
    environment = cluster_environment()
    assert environment["KAFKA_BOOTSTRAP_SERVERS"].count(",") == 2
    assert environment["KAFKA_PARTITIONS"] == "12"
    assert environment["KAFKA_REPLICATION_FACTOR"] == "3"
