"""Errors as the counters see them: a status, a short code, a message naming the problem."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake.commands import UnknownDossier
from services.intake.domain import (
    Conflict,
    DailySequenceExhausted,
    IdempotencyKeyReused,
    SubmissionRejected,
)
from shared.api import on_http_error, problem, validation_problem
from shared.auth import install_auth_error_handlers
from shared.lifecycle import IllegalTransition
from shared.messaging.retry import is_transient

logger = logging.getLogger(__name__)


async def _on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return validation_problem(error, invalid="invalid_dossier")


async def _on_rejected(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SubmissionRejected)
    return problem(
        422,
        "invalid_dossier",
        f"{error.field}: {error.message}",
        [{"field": error.field, "message": error.message}],
    )


async def _on_key_reused(_: Request, error: Exception) -> JSONResponse:
    message = str(error)
    return problem(
        422, "idempotency_key_reused", message, [{"field": "Idempotency-Key", "message": message}]
    )


async def _on_conflict(_: Request, error: Exception) -> JSONResponse:
    return problem(409, "conflict", str(error))


async def _on_unknown_dossier(_: Request, error: Exception) -> JSONResponse:
    return problem(404, "not_found", str(error))


async def _on_sequence_exhausted(_: Request, error: Exception) -> JSONResponse:
    return problem(409, "daily_sequence_exhausted", str(error))


async def _on_unexpected(_: Request, error: Exception) -> JSONResponse:
    if is_transient(error):
        logger.warning("storage unavailable", extra={"error": type(error).__name__})
        return problem(503, "unavailable", "storage is unavailable; retry with the same key")
    logger.error("unexpected error", extra={"error": type(error).__name__})
    return problem(500, "internal_error", "unexpected error; nothing was stored")


class _AnsweredTransientError(logging.Filter):
    """Starlette re-raises what its catch-all handler answered, and uvicorn logs it again with
    a traceback at ERROR; a transient error was answered 503 and logged as one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not is_transient(error)


_answered_transient_error = _AnsweredTransientError()


def install_error_handlers(app: FastAPI) -> None:
    logging.getLogger("uvicorn.error").addFilter(_answered_transient_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(SubmissionRejected, _on_rejected)
    app.add_exception_handler(IdempotencyKeyReused, _on_key_reused)
    install_auth_error_handlers(app)
    app.add_exception_handler(DailySequenceExhausted, _on_sequence_exhausted)
    app.add_exception_handler(IllegalTransition, _on_conflict)
    app.add_exception_handler(Conflict, _on_conflict)
    app.add_exception_handler(UnknownDossier, _on_unknown_dossier)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


class BodySizeLimit:
    """Refuses bodies over the limit with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "body_too_large", f"the request body exceeds {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
