"""The AsyncAPI 3 document of every topic and message, generated from the code: the event
classes give the payloads, and each service's assembled app says what it consumes.

`python -m deploy.tools.asyncapi` (`make asyncapi`) prints it; docs/asyncapi.json is the
committed copy, and a test (tests/unit/test_contract.py) fails when the two drift apart."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events import EVENT_TYPES, RESTRICTED_READERS, Event, Topic, dead_letter_topic

SERVICES = ("intake", "routing", "deadline", "notifier")
_PRODUCER = {
    Topic.INTAKE: "intake",
    Topic.ROUTING: "routing",
    Topic.DEADLINE: "deadline",
    Topic.NOTIFIER: "notifier",
    Topic.INTAKE_PERSONAL_DATA: "intake",
}
_CLOUD_EVENTS_HEADERS = {
    "type": "object",
    "required": ["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject"],
    "properties": {
        "ce_id": {"type": "string", "format": "uuid", "description": "unique per event"},
        "ce_source": {"type": "string", "examples": ["/onestop/intake"]},
        "ce_type": {"type": "string", "description": "the message's type, versioned"},
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "when the fact happened; not an order across sources",
        },
        "ce_subject": {"type": "string", "description": "the dossier code (also the key)"},
        "ce_causationid": {
            "type": "string",
            "format": "uuid",
            "description": "the ce_id of the event this one reacts to; absent for a person's"
            " command (CloudEvents extension). With ce_sequence it orders one dossier's"
            " events across topics: an event comes after its cause and after its source's"
            " lower sequence numbers",
        },
        "ce_sequence": {
            "type": "string",
            "pattern": "^[1-9][0-9]*$",
            "description": "the event's number among its source's events of this dossier,"
            " 1, 2, ... (CloudEvents sequence extension, an integer as a string)",
        },
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
    },
}


def _consumers() -> dict[str, list[tuple[str, tuple[str, ...], list[type[Event]]]]]:
    """What each service consumes, read from its assembled app (nothing connects)."""
    from services.deadline.main import create_app as deadline_app
    from services.intake.main import create_app as intake_app
    from services.notifier.main import create_app as notifier_app
    from services.routing.main import create_app as routing_app

    placeholders = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "DATABASE_URL": "postgresql://onestop@postgres/onestop",
        "HTTP_PORT": "8000",
        "OIDC_ISSUER": "http://keycloak/realms/onestop",
        "LOOKUP_PIN_KEY": "placeholder-" * 4,
        "LINK_SIGNING_KEY": "placeholder-" * 4,
        "SIGNING_DIRECTORY": "/nonexistent/signing",
    }
    saved = {key: os.environ.get(key) for key in placeholders}
    os.environ.update(placeholders)
    try:
        apps = {
            "intake": intake_app(),
            "routing": routing_app(),
            "deadline": deadline_app(),
            "notifier": notifier_app(),
        }
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        name: [(c.group_id, c.topics, list(c.handlers)) for c in app.state.runtime.consumers]
        for name, app in apps.items()
    }


def _access(topic: Topic) -> str:
    if topic.restricted:
        readers = ", ".join(RESTRICTED_READERS[topic])
        return (
            f"Restricted: carries personal data (fields marked x-personal-data); only {readers}"
            " may read it (Kafka ACLs). Downstream systems cannot."
        )
    return "Public: carries no personal data; downstream systems may read it."


def _channel_id(address: str) -> str:
    return address.replace("onestop.", "").replace(".", "-")


def document() -> dict[str, Any]:
    # Old versions that services still read but nobody publishes are not part of the contract.
    events = sorted(
        (cls for cls in EVENT_TYPES.values() if cls.PUBLISHED), key=lambda cls: cls.TYPE
    )
    _, schema = models_json_schema(
        [(cls, "serialization") for cls in events], ref_template="#/components/schemas/{model}"
    )
    schemas = schema.get("$defs", {})
    messages = {
        cls.__name__: {
            "name": cls.TYPE,
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": _CLOUD_EVENTS_HEADERS,
            "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "dossier code"}}},
        }
        for cls in events
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in Topic:
        channel = _channel_id(topic.value)
        topic_events = [cls for cls in events if cls.TOPIC is topic]
        channels[channel] = {
            "address": topic.value,
            "description": f"Written only by {_PRODUCER[topic]}; keyed by dossier code. "
            + _access(topic),
            "messages": {
                c.__name__: {"$ref": f"#/components/messages/{c.__name__}"} for c in topic_events
            },
        }
        if topic.restricted:
            channels[channel]["x-restricted"] = {"readers": list(RESTRICTED_READERS[topic])}
        operations[f"{_PRODUCER[topic]}.publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{c.__name__}"} for c in topic_events
            ],
        }
    for service, consumers in _consumers().items():
        for group_id, topics, handled in consumers:
            for address in topics:
                channel = _channel_id(address)
                operations[f"{group_id}.receive.{channel}"] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{channel}"},
                    "summary": f"{service} (consumer group {group_id})",
                    "messages": [
                        {"$ref": f"#/channels/{channel}/messages/{cls.__name__}"}
                        for cls in handled
                        if cls.TOPIC.value == address and cls.PUBLISHED
                    ],
                }
            dead_letters = dead_letter_topic(group_id)
            channels[_channel_id(dead_letters)] = {
                "address": dead_letters,
                "description": (
                    f"Messages {group_id} could not read or apply: the original key, value and"
                    " headers, plus dlt_error, dlt_error_stage, dlt_origin_topic,"
                    " dlt_origin_partition, dlt_origin_offset, dlt_consumer_group, dlt_failed_at."
                ),
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "One-stop dossier events (Hồ sơ một cửa)",
            "version": "1.0.0",
            "description": (
                "CloudEvents 1.0 in Kafka binary content mode: attributes in ce_* headers, the"
                " JSON payload as the record value, the dossier code as the record key."
            ),
        },
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
