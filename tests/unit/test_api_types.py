"""The HTTP contract's shared pieces: strict text, strict instants, Problems with their
headers, and the framework's statuses in the OpenAPI document."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.api import (
    STRICT_TEXT,
    STRICT_TEXT_PATTERN,
    WHITESPACE,
    Instant,
    document_framework_statuses,
    install_problem_handlers,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: Annotated[str, Field(min_length=1, max_length=5), STRICT_TEXT]


def test_whitespace_is_what_json_schema_patterns_call_whitespace() -> None:
    ecma = {"\t", "\n", "\v", "\f", "\r", "\u2028", "\u2029", "\ufeff"} | {
        chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"
    }
    assert set(WHITESPACE) == ecma


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("\t", "blank"),
        (" \u3000\u00a0", "blank"),
        ("a\x00", "control_character"),
        ("\x1f", "control_character"),
        (" abcde", "string_too_long"),  # the length as sent, as the schema counts it
    ],
)
def test_strict_text_refuses_what_its_pattern_refuses(text: str, error: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Body(reason=text)
    assert raised.value.errors()[0]["type"] == error
    assert raised.value.errors()[0]["loc"] == ("reason",)
    assert not re.search(STRICT_TEXT_PATTERN, text) or error == "string_too_long"


@pytest.mark.parametrize("text", ["a", " ab ", "\ufeffx", "a\nb", "\u1e9e"])
def test_strict_text_takes_what_its_pattern_takes_and_trims_it(text: str) -> None:
    assert re.search(STRICT_TEXT_PATTERN, text)
    assert Body(reason=text).reason == text.strip(WHITESPACE)


def test_strict_text_documents_its_pattern() -> None:
    assert Body.model_json_schema()["properties"]["reason"]["pattern"] == STRICT_TEXT_PATTERN


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", 0.5, "2026-01-31", "2026-01-31T00:00:00", "2026-01-31T00:00Z"]
)
def test_an_instant_is_rfc3339_text_with_an_offset(value: object) -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        TypeAdapter(Instant).validate_python(value)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-01-31T00:00:00+07:00", datetime(2026, 1, 30, 17, tzinfo=UTC)),
        ("2026-01-30t17:00:00.5z", datetime(2026, 1, 30, 17, 0, 0, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00+05:00", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59-05:00", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_an_instant_is_held_in_utc_within_what_a_datetime_holds(
    text: str, instant: datetime
) -> None:
    assert TypeAdapter(Instant).validate_python(text) == instant


def app_with_one_operation() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    document_framework_statuses(app)

    @app.post("/things/{name}")
    async def post_thing(name: str, body: Body) -> dict[str, str]:
        return {"name": name}

    return app


def test_a_method_not_allowed_is_a_problem_naming_the_allowed_ones() -> None:
    response = TestClient(app_with_one_operation()).request("TRACE", "/things/a")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "http_error"


def test_the_framework_statuses_are_documented_as_problems() -> None:
    client = TestClient(app_with_one_operation())
    document = client.get("/openapi.json").json()
    responses = document["paths"]["/things/{name}"]["post"]["responses"]

    problem = {"$ref": "#/components/schemas/Problem"}
    assert responses["400"]["content"]["application/json"]["schema"] == problem
    assert responses["422"]["content"]["application/json"]["schema"] == problem
    assert "HTTPValidationError" not in document["components"]["schemas"]
    refused = client.post("/things/a", json={"reason": "\t"})
    assert refused.status_code == 422
    assert refused.json()["fields"] == [
        {"field": "reason", "message": "must not be blank (whitespace only)"}
    ]
