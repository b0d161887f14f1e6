"""Errors as every HTTP API answers them: a status, a short code, a message naming the
problem and, for bad input, the fields."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel


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
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status_code == 503 and headers is None:
        headers = {"Retry-After": "1"}
    return JSONResponse(
        {"error": error, "message": message, "fields": fields or []},
        status_code=status_code,
        headers=headers,
    )
