"""The published contract: the AsyncAPI document and the settings that fail fast."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from deploy.tools.asyncapi import render
from services.intake.settings import IntakeSettings
from shared.events import EVENT_TYPES

COMMITTED = Path(__file__).parents[2] / "docs" / "asyncapi.json"


def test_the_committed_asyncapi_document_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.json is stale: run `make asyncapi` and commit the result"
    )


def test_every_event_type_is_versioned_and_named_in_the_past_tense() -> None:
    for event_type, cls in EVENT_TYPES.items():
        assert event_type.rsplit(".", 1)[-1].startswith("v"), event_type
        assert re.search(r"([a-z]ed|Withdrawn|Sent)(?=[A-Z]|$)", cls.__name__), cls.__name__


def test_settings_fail_fast_naming_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as raised:
        IntakeSettings()  # type: ignore[call-arg]
    message = str(raised.value)
    for field in ("kafka_bootstrap_servers", "database_url", "http_port"):
        assert field in message


def test_settings_refuse_a_malformed_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("HTTP_PORT", "8000")
    with pytest.raises(ValidationError, match="database_url"):
        IntakeSettings()  # type: ignore[call-arg]


def _personal_schemas(schemas: dict[str, Any]) -> set[str]:
    """Schemas with a field marked x-personal-data, directly or through a reference."""
    marked = {
        name
        for name, schema in schemas.items()
        if any(p.get("x-personal-data") for p in schema.get("properties", {}).values())
    }
    while True:
        more = {
            name
            for name, schema in schemas.items()
            if any(f"#/components/schemas/{m}" in json.dumps(schema) for m in marked)
        }
        if more <= marked:
            return marked
        marked |= more


def test_personal_data_is_marked_and_travels_only_on_restricted_channels() -> None:
    document = json.loads(render())
    schemas = document["components"]["schemas"]
    personal = _personal_schemas(schemas)
    assert {"Applicant", "ApplicantDetailsRecorded"} <= personal
    assert set(schemas["Applicant"]["properties"]) == {
        name
        for name, field in schemas["Applicant"]["properties"].items()
        if field.get("x-personal-data")
    }
    for name, channel in document["channels"].items():
        carried = {ref["$ref"].rsplit("/", 1)[-1] for ref in channel.get("messages", {}).values()}
        if "x-restricted" in channel:
            assert carried & personal, name
            assert "Restricted" in channel["description"]
        else:
            assert not carried & personal, f"personal data on the public channel {name}"


def test_retention_settings_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://onestop@127.0.0.1/onestop")
    monkeypatch.setenv("HTTP_PORT", "8000")
    monkeypatch.setenv("INBOX_RETENTION_SECONDS", "60")  # shorter than a redelivery may take
    with pytest.raises(ValidationError, match="inbox_retention_seconds"):
        IntakeSettings()  # type: ignore[call-arg]
    monkeypatch.delenv("INBOX_RETENTION_SECONDS")
    monkeypatch.setenv("PERSONAL_DATA_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError, match="personal_data_retention_days"):
        IntakeSettings()  # type: ignore[call-arg]
