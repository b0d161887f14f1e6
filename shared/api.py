"""What every service's HTTP API shares, so that each keeps its own OpenAPI contract: errors as
`Problem` documents, the statuses the framework itself answers documented on each operation,
and input types as strict as their schema says (no blank text, no number taken for a date)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.messaging.retry import is_transient

logger = logging.getLogger(__name__)

Responses = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    """An error: what went wrong and, for bad input, which fields."""

    error: str
    message: str
    fields: list[dict[str, str]] = []


def problem(
    status_code: int,
    error: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    extra = dict(headers or {})
    if status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        extra.setdefault("Retry-After", "1")
    return JSONResponse(
        {"error": error, "message": message, "fields": fields or []},
        status_code=status_code,
        headers=extra or None,
    )


def problem_responses(descriptions: Mapping[int, str]) -> Responses:
    """`responses=` for FastAPI: each status answered with a Problem, as described."""
    return {code: {"model": Problem, "description": text} for code, text in descriptions.items()}


STORAGE_UNAVAILABLE = problem_responses({503: "Storage is unavailable; retry"})


# --- error handlers -----------------------------------------------------------------------


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body",)]
    return ".".join(parts) or "body"


def validation_problem(error: RequestValidationError, *, invalid: str) -> JSONResponse:
    """400 for a body that is not JSON, else 422 naming each field and what is wrong."""
    problems = list(error.errors())
    if any(item.get("type") == "json_invalid" for item in problems):
        detail = problems[0].get("ctx", {}).get("error", "invalid JSON")
        return problem(400, "malformed_json", f"the request body is not valid JSON: {detail}")
    fields = [
        {"field": _field_name(tuple(item["loc"])), "message": item["msg"]} for item in problems
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return problem(422, invalid, summary, fields)


async def _on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return validation_problem(error, invalid="invalid_request")


async def on_http_error(_: Request, error: Exception) -> JSONResponse:
    """The framework's own errors as Problems, keeping their headers (`Allow` on a 405)."""
    assert isinstance(error, StarletteHTTPException)
    return problem(error.status_code, "http_error", str(error.detail), headers=error.headers)


async def _on_unexpected(_: Request, error: Exception) -> JSONResponse:
    if is_transient(error):
        logger.warning("storage unavailable", extra={"error": type(error).__name__})
        return problem(503, "unavailable", "storage is unavailable; retry")
    logger.error("unexpected error", extra={"error": type(error).__name__})
    return problem(500, "internal_error", "unexpected error")


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a Problem; a service may replace a handler with its own wording."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


# --- the OpenAPI document -----------------------------------------------------------------

OpenApi = dict[str, Any]


def amend_openapi(app: FastAPI, amend: Callable[[OpenApi], None]) -> None:
    """Run `amend` on the app's OpenAPI document once, when it is first generated."""
    generate = app.openapi

    def openapi() -> OpenApi:
        if app.openapi_schema is None:
            amend(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _PROBLEM_REF}}}


def _operations(document: OpenApi) -> list[dict[str, Any]]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return [
        operation
        for path in document.get("paths", {}).values()
        for method, operation in path.items()
        if method in _METHODS
    ]


def document_framework_statuses(app: FastAPI) -> None:
    """Document on every operation what the framework answers before the endpoint runs: 400
    for a body that is not JSON, 422 for a parameter or field missing or malformed, each a
    Problem (FastAPI documents its own 422 shape, which these services never send)."""

    def amend(document: OpenApi) -> None:
        for operation in _operations(document):
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            if has_body:
                responses.setdefault("400", _problem_response("The body is not valid JSON"))
            if has_body or operation.get("parameters"):
                documented = responses.get("422")
                if documented is None or "HTTPValidationError" in str(documented):
                    responses["422"] = _problem_response(
                        "A parameter or field is missing, malformed or unknown"
                    )
        if "HTTPValidationError" not in str(document.get("paths")):
            document["components"]["schemas"].pop("HTTPValidationError", None)
            document["components"]["schemas"].pop("ValidationError", None)

    amend_openapi(app, amend)


def document_body_limit(app: FastAPI, max_bytes: int) -> None:
    """413 on every operation that takes a body, for a middleware that limits its size."""

    def amend(document: OpenApi) -> None:
        for operation in _operations(document):
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "413", _problem_response(f"The body is larger than {max_bytes} bytes")
                )

    amend_openapi(app, amend)


# --- strict input types -------------------------------------------------------------------


# Whitespace as JSON Schema's regular expressions (ECMA-262 `\s`) know it, spelt out: Python's
# `\s` and str.strip() also take U+001C-U+001F and U+0085, and validators differ, so the
# schema's pattern and the service's trimming name the same characters.
WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WHITESPACE_CLASS = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Control characters (category Cc) but tab and line breaks: garbage in a name or a reason,
# and PostgreSQL cannot store U+0000 at all.
_CONTROL_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
# No control character, and at least one character that is neither whitespace nor control.
STRICT_TEXT_PATTERN = (
    f"^[^{_CONTROL_CLASS}]*[^{_WHITESPACE_CLASS}{_CONTROL_CLASS}][^{_CONTROL_CLASS}]*$"
)


@dataclass(frozen=True)
class StrictText:
    """Text a person wrote: `Annotated[str, Field(max_length=...), STRICT_TEXT]`. Refused when
    blank (whitespace only) or holding a control character other than tab and line breaks.

    Its length is checked as sent, then surrounding whitespace is trimmed. The schema says the
    same (STRICT_TEXT_PATTERN), so a client validating against it refuses what the service
    refuses; were the text trimmed before its length was checked, a padded text over the
    limit would be taken though the schema refuses it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if schema["type"] == "str":  # over the model's str_strip_whitespace
            schema = cast(core_schema.StringSchema, {**schema, "strip_whitespace": False})
        return core_schema.no_info_after_validator_function(_strict_text, schema)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = STRICT_TEXT_PATTERN
        return json_schema


def _strict_text(value: str) -> str:
    control = _CONTROL.search(value)
    if control is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters (found {character})",
            {"character": f"U+{ord(control.group()):04X}"},
        )
    stripped = value.strip(WHITESPACE)
    if not stripped:
        raise PydanticCustomError("blank", "must not be blank (whitespace only)")
    return stripped


STRICT_TEXT = StrictText()


# RFC 3339 (section 5.6): a date, a time with seconds, and an offset; never a bare number.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
INSTANT_FORMAT = "an RFC 3339 date-time with its offset, e.g. 2026-01-31T00:00:00+07:00"


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError("date_time_format", "expected " + INSTANT_FORMAT)
    return value


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; one beyond year 1 or 9999 in UTC is that edge (nothing was
    recorded before or after it, and PostgreSQL's driver cannot convert it)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]
"""A point in time given as RFC 3339 text with its offset, held in UTC."""


# --- health endpoints ---------------------------------------------------------------------


class PrometheusText(Response):
    """Prometheus' text exposition format 0.0.4, which every scraper reads."""

    media_type = CONTENT_TYPE_PLAIN_0_0_4


PROMETHEUS_RESPONSE: Responses = {
    200: {
        "description": "The service's metrics in Prometheus' text format",
        "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
    }
}
