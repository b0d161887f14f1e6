"""CloudEvents 1.0 over Kafka, binary content mode: attributes in ce_* headers, payload as value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from shared.events import EVENT_TYPES, Event

CONTENT_TYPE = "application/json"
_FORMAT = JSONFormat()


class MalformedMessage(Exception):
    """The message cannot be read as one of our events; it goes to the dead-letter topic."""


@dataclass(frozen=True)
class Envelope:
    """The CloudEvents attributes. Two extensions let a reader order one dossier's events
    across topics: `causationid`, the id of the event this one reacts to (none for a person's
    command), and `sequence`, the event's number among its source's events of that dossier
    (1, 2, ...). `time` is when the fact happened, which is not an order across sources."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    causation_id: str | None = None
    sequence: int | None = None


@dataclass(frozen=True)
class WireMessage:
    key: str
    value: bytes
    headers: dict[str, bytes]


def encode(envelope: Envelope, payload: bytes) -> WireMessage:
    attributes: dict[str, object] = {
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "specversion": "1.0",
        "time": envelope.time,
        "subject": envelope.subject,
        "datacontenttype": CONTENT_TYPE,
    }
    if envelope.causation_id is not None:
        attributes["causationid"] = envelope.causation_id
    if envelope.sequence is not None:
        attributes["sequence"] = str(envelope.sequence)
    event = CloudEvent(attributes=attributes, data=payload)
    message = ce_kafka.to_binary(event, _FORMAT, key_mapper=lambda e: e.get_subject())
    return WireMessage(key=envelope.subject, value=message.value, headers=message.headers)


def decode(
    headers: Iterable[tuple[str, bytes]], key: bytes | None, value: bytes | None
) -> tuple[Envelope, Event | None]:
    """Read a record. Returns no event for a well-formed event of a type we do not know."""
    ce_headers = {
        name: raw for name, raw in headers if name.startswith("ce_") or name == "content-type"
    }
    for required in ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_subject"):
        if required not in ce_headers:
            raise MalformedMessage(f"missing CloudEvents header {required}")
    if ce_headers["ce_specversion"] != b"1.0":
        raise MalformedMessage("unsupported ce_specversion, expected 1.0")
    if ce_headers.get("content-type", CONTENT_TYPE.encode()) != CONTENT_TYPE.encode():
        raise MalformedMessage(f"unsupported content-type, expected {CONTENT_TYPE}")
    try:
        cloud_event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=ce_headers, key=key, value=value or b""), _FORMAT
        )
    except Exception as error:  # the library raises several types for bad attributes
        raise MalformedMessage(f"invalid CloudEvents attributes: {error}") from error
    envelope = Envelope(
        id=cloud_event.get_id(),
        type=cloud_event.get_type(),
        source=cloud_event.get_source(),
        subject=cloud_event.get_subject() or "",
        time=cloud_event.get_time() or datetime.min,
        causation_id=_text(cloud_event.get_extension("causationid")),
        sequence=_sequence(cloud_event.get_extension("sequence")),
    )
    event_class = EVENT_TYPES.get(envelope.type)
    if event_class is None:
        return envelope, None
    data = cloud_event.get_data()
    if not isinstance(data, dict):
        raise MalformedMessage("payload is not a JSON object")
    try:
        event = event_class.model_validate(data)
    except ValidationError as error:
        raise MalformedMessage(describe_validation_error(error)) from error
    if event.dossier_code != envelope.subject:
        raise MalformedMessage("ce_subject does not match the payload's dossier_code")
    return envelope, event


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _sequence(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise MalformedMessage("ce_sequence is not an integer") from None


def describe_validation_error(error: ValidationError) -> str:
    """Field names and reasons, never the input values (they may be personal data)."""
    problems = (
        f"{'.'.join(str(part) for part in item['loc']) or '(body)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )
    return "; ".join(problems)
