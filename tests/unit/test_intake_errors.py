"""What intake logs when storage is briefly unavailable: one WARNING line, no traceback."""

from __future__ import annotations

import logging

import pytest
from asyncpg.exceptions import ConnectionDoesNotExistError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.intake.errors import install_error_handlers


def app_failing_with(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/dossiers")
    async def submit() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


def uvicorn_logs_what_starlette_reraised(error: Exception) -> None:
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=error)


def test_a_transient_database_error_is_one_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = ConnectionDoesNotExistError("connection was closed in the middle of operation")
    with caplog.at_level(logging.WARNING):
        response = app_failing_with(error).post("/v1/dossiers", json={})
        uvicorn_logs_what_starlette_reraised(error)

    assert response.status_code == 503
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "storage unavailable", None)
    ]
    assert getattr(caplog.records[0], "error", None) == "ConnectionDoesNotExistError"


def test_an_unexpected_error_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    error = ValueError("a bug")
    with caplog.at_level(logging.WARNING):
        response = app_failing_with(error).post("/v1/dossiers", json={})
        uvicorn_logs_what_starlette_reraised(error)

    assert response.status_code == 500
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR"]
    assert caplog.records[1].exc_info is not None
