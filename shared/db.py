"""PostgreSQL: one pool per service, each service in its own schema, migrations run at start."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "sql"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


async def create_pool(database_url: str, schema: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first."""
    _check_schema_name(schema)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"onestop-{schema}"},
        init=_register_json_codecs,
    )
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool, schema: str, service_migrations: Path) -> list[str]:
    """Apply the shared outbox/inbox migrations, then the service's own, each once, in order.

    An advisory lock lets several instances of a service start at the same time."""
    _check_schema_name(schema)
    scripts = [
        *(("shared/" + p.name, p) for p in sorted(SHARED_MIGRATIONS.glob("*.sql"))),
        *((p.name, p) for p in sorted(service_migrations.glob("*.sql"))),
    ]
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                row["version"]
                for row in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
            }
            for version, path in scripts:
                if version in done:
                    continue
                await conn.execute(f"SET LOCAL search_path TO {schema}")
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version) VALUES ($1)", version
                )
                applied.append(version)
    if applied:
        logger.info("migrations applied", extra={"schema": schema, "versions": applied})
    return applied


async def _register_json_codecs(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


def _check_schema_name(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
