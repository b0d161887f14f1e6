"""CloudEvents binary mode on Kafka: what downstream systems read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.events import DossierClockStarted
from shared.messaging.envelope import Envelope, MalformedMessage, decode, encode

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
CLOCK = DossierClockStarted(
    dossier_code="000.00.00.H29-261123-0001",
    responsible_unit_code="000.14.01.H29",
    started_at=NOW,
    due_at=NOW,
    due_soon_at=NOW,
)


def wire() -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    envelope = Envelope(
        id="6c1d3f7e-1b0a-4c55-9d55-0f0b8a2d9c11",
        type=CLOCK.TYPE,
        source="/onestop/deadline",
        subject=CLOCK.dossier_code,
        time=NOW,
    )
    message = encode(envelope, CLOCK.model_dump_json().encode())
    return list(message.headers.items()), message.key.encode(), message.value


def test_binary_mode_headers_and_key() -> None:
    headers, key, _ = wire()
    names = dict(headers)
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"vn.hcmc.onestop.dossier.clock-started.v2"
    assert names["ce_subject"] == key == b"000.00.00.H29-261123-0001"
    assert names["content-type"] == b"application/json"
    assert names["ce_time"].startswith(b"2026-11-23T02:30:00")


def test_round_trip() -> None:
    envelope, event = decode(*wire())
    assert event == CLOCK
    assert envelope.source == "/onestop/deadline"


def test_an_unknown_type_is_not_an_error() -> None:
    headers, key, value = wire()
    headers = [
        (n, b"vn.hcmc.onestop.something-new.v1" if n == "ce_type" else v) for n, v in headers
    ]
    envelope, event = decode(headers, key, value)
    assert event is None
    assert envelope.type == "vn.hcmc.onestop.something-new.v1"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda h, k, v: ([x for x in h if x[0] != "ce_id"], k, v),
            "missing CloudEvents header ce_id",
        ),
        (lambda h, k, v: (h, k, b"{not json"), "not a JSON object"),
        (lambda h, k, v: (h, k, b'{"dossier_code": "000.00.00.H29-261123-0001"}'), "due_at"),
        (
            lambda h, k, v: ([(n, b"0.3" if n == "ce_specversion" else x) for n, x in h], k, v),
            "specversion",
        ),
        (lambda h, k, v: (h, k, v.replace(b"261123-0001", b"261123-0002")), "does not match"),
    ],
)
def test_malformed_messages_say_why(mutate, reason) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(*mutate(*wire()))
