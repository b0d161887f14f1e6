"""The bare baseline: a FastAPI + asyncpg app that validates the same dossier body as intake
and inserts it as one row, nothing else (no auth, no outbox, no telemetry). What this machine's
PostgreSQL and Python web stack can do at most for one POST.

Run: `python -m deploy.bench.baseline_app` with DATABASE_URL and HTTP_PORT."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI, Request

from services.intake.schemas import DossierSubmission

SCHEMA = "bench_baseline"


def create_app(database_url: str) -> FastAPI:
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(database_url, min_size=4, max_size=10)
        assert pool is not None
        await pool.execute(
            f"CREATE SCHEMA IF NOT EXISTS {SCHEMA};"
            f" CREATE TABLE IF NOT EXISTS {SCHEMA}.dossiers"
            " (id bigserial PRIMARY KEY, body jsonb NOT NULL,"
            " received_at timestamptz DEFAULT now())"
        )
        state["pool"] = pool
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/dossiers", status_code=201)
    async def receive(request: Request) -> dict[str, int]:
        body = await request.body()
        submission = DossierSubmission.model_validate_json(body)
        row_id = await state["pool"].fetchval(
            f"INSERT INTO {SCHEMA}.dossiers (body) VALUES ($1::jsonb) RETURNING id",
            submission.model_dump_json(),
        )
        return {"id": row_id}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(os.environ["DATABASE_URL"]),
        host="127.0.0.1",
        port=int(os.environ["HTTP_PORT"]),
        log_level="warning",
        access_log=False,
    )
