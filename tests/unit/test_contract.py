"""The published contract: the AsyncAPI document and the settings that fail fast."""

from __future__ import annotations

import re
from pathlib import Path

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
        assert re.search(r"([a-z]ed|Withdrawn)(?=[A-Z]|$)", cls.__name__), cls.__name__


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
