"""The Kafka connection settings, and the access rules read against the services' own
wiring: each rule table entry is a consumer group a service really runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from deploy.local.inprocess import SERVICES
from services.intake.settings import IntakeSettings
from shared.events import Topic
from shared.messaging.access import (
    CONSUMER_GROUPS,
    DOWNSTREAM,
    PERSONAL_DATA_TOPIC,
    Operation,
    PatternType,
    ResourceType,
    rules,
)
from shared.messaging.connection import KafkaConnection
from shared.telemetry import configure_telemetry

REQUIRED = {
    "kafka_bootstrap_servers": "127.0.0.1:9092",
    "database_url": "postgresql://u:p@127.0.0.1/db",
    "http_port": 8000,
    "oidc_issuer": "http://keycloak.test/realms/onestop",
    "lookup_pin_key": "k" * 32,
    "link_signing_key": "k" * 32,
    "signing_directory": "/nonexistent/signing",
}


def intake_settings(**kafka: object) -> IntakeSettings:
    return IntakeSettings.model_validate({**REQUIRED, **kafka})


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_a_principal_stops_the_service_naming_the_variables(protocol: str) -> None:
    with pytest.raises(ValidationError) as raised:
        intake_settings(kafka_security_protocol=protocol)
    assert "KAFKA_USERNAME and KAFKA_PASSWORD" in str(raised.value)
    with pytest.raises(ValidationError, match="set KAFKA_PASSWORD"):
        intake_settings(kafka_security_protocol=protocol, kafka_username="intake")


def test_unknown_protocols_and_mechanisms_are_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        intake_settings(kafka_security_protocol="SASL")
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism"):
        intake_settings(kafka_sasl_mechanism="GSSAPI")


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KAFKA_CA_FILE"):
        intake_settings(kafka_security_protocol="SSL", kafka_ca_file=tmp_path / "no.pem")


@pytest.mark.parametrize(
    ("mechanism", "security_class"),
    [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext)],
)
def test_sasl_settings_become_the_brokers_security_and_the_clients_options(
    mechanism: str, security_class: type[BaseSecurity]
) -> None:
    settings = intake_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_username="intake",
        kafka_password="secret",
    )
    connection = settings.kafka_connection()
    assert type(connection.security()) is security_class
    assert connection.client_options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "intake",
        "sasl_plain_password": "secret",
    }
    assert "secret" not in repr(settings)


def test_tls_uses_a_context_and_plaintext_nothing() -> None:
    plain = KafkaConnection(bootstrap_servers="k:9092")
    assert plain.security() is None
    assert plain.client_options() == {"bootstrap_servers": "k:9092"}
    tls = KafkaConnection.model_validate(
        {
            "bootstrap_servers": "k:9093",
            "security_protocol": "SASL_SSL",
            "username": "intake",
            "password": "secret",
        }
    ).client_options()
    assert tls["security_protocol"] == "SASL_SSL"
    assert tls["ssl_context"] is not None


def test_the_rules_name_the_consumer_groups_the_services_run() -> None:
    """The services' own consumers (services/*/main.py), built without connecting: a group or
    topic added there needs its rule here, or the broker refuses it."""
    for name, (settings_class, create_app) in SERVICES.items():
        settings = settings_class.model_validate({**REQUIRED, "kafka_namespace": "ns."})
        app = create_app(settings, telemetry=configure_telemetry(name))
        consumers = app.state.runtime.consumers
        wired = {c.group_id: set(c.topics) for c in consumers}
        allowed = {
            f"ns.{group}": {f"ns.{topic}" for topic in topics}
            for group, topics in CONSUMER_GROUPS[name].items()
        }
        assert set(wired) == set(allowed), name
        for group, topics in wired.items():
            assert topics <= allowed[group], f"{group} reads {topics - allowed[group]} unruled"


def test_downstream_reads_only_the_public_topics() -> None:
    downstream = [r for r in rules("ns.") if r.principal == DOWNSTREAM]
    topics = {r.name for r in downstream if r.resource_type is ResourceType.TOPIC}
    assert topics == {
        f"ns.{t}" for t in (Topic.INTAKE, Topic.ROUTING, Topic.DEADLINE, Topic.NOTIFIER)
    }
    assert f"ns.{PERSONAL_DATA_TOPIC}" not in topics
    assert {r.operation for r in downstream} == {Operation.READ, Operation.DESCRIBE}
    groups = [r for r in downstream if r.resource_type is ResourceType.GROUP]
    assert {(r.name, r.pattern) for r in groups} == {("ns.downstream.", PatternType.PREFIXED)}


def test_a_service_writes_only_under_its_own_names() -> None:
    for rule in rules("ns."):
        if rule.operation in (Operation.WRITE, Operation.CREATE):
            assert rule.name.startswith(
                (f"ns.onestop.{rule.principal}.", "ns.onestop.dead-letter.")
            ), rule
            if "dead-letter" in rule.name:
                group = rule.name.removeprefix("ns.onestop.dead-letter.")
                assert group in CONSUMER_GROUPS[rule.principal], rule
