"""PostgreSQL: one pool per service, each service in its own schema, migrations run at start.

Each service connects as a role of its own that owns its schema and nothing else: the schema
is created by whoever provisions the database (deploy/local/databases.py, the compose init
script), never by the service, which cannot create schemas."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "sql"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
PROVISIONING_HELP = (
    "provision it as the provisioning role: locally `deploy/local/postgres.sh start` (every"
    " database it creates) or deploy.local.databases.provision; in compose the init script"
    " deploy/compose/postgres-init.sh (a new volume); elsewhere"
    " CREATE SCHEMA {schema} AUTHORIZATION {role}"
)


class SchemaNotProvisioned(RuntimeError):
    """The service's schema is missing, or belongs to another role than the service's."""


async def create_pool(database_url: str, schema: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first, and go back to it without
    a reset query (see `_no_session_to_reset`)."""
    _check_schema_name(schema)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"onestop-{schema}"},
        init=_register_json_codecs,
        reset=_no_session_to_reset,
    )
    assert pool is not None
    return pool


async def _no_session_to_reset(connection: asyncpg.Connection) -> None:
    """asyncpg's default reset is one more round trip per transaction (advisory unlock, CLOSE
    ALL, UNLISTEN *, RESET ALL), a few percent of every service's CPU. The services keep no
    session state: settings are SET LOCAL, advisory locks are transaction-scoped, and the
    outbox relay removes its LISTEN before it gives its connection back. asyncpg still rolls
    back a transaction left open before it calls this (tests/integration/test_database_roles.py)."""


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
        await check_schema_owned(conn, schema)
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


async def check_schema_owned(conn: asyncpg.Connection, schema: str) -> None:
    """Fail fast unless the connecting role owns the schema and everything in it: migrations
    would fail half-way on the first object it does not own."""
    role, database, owner = await conn.fetchrow(
        "SELECT current_user, current_database(),"
        " (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1)",
        schema,
    )
    where = f"schema {schema!r} in database {database!r}"
    how = PROVISIONING_HELP.format(schema=schema, role=role)
    if owner is None:
        raise SchemaNotProvisioned(
            f"{where} does not exist, and role {role!r}, which this service connects as,"
            f" may not create it; {how}"
        )
    if owner != role:
        raise SchemaNotProvisioned(
            f"{where} is owned by role {owner!r}, not by {role!r}, which this service connects"
            f" as (DATABASE_URL); {how}, or ALTER SCHEMA {schema} OWNER TO {role}"
        )
    foreign = await conn.fetch(
        "SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relowner <> n.nspowner AND c.relkind IN ('r', 'p', 'S')"
        " ORDER BY c.relname",
        schema,
    )
    if foreign:
        tables = ", ".join(f"{row['relname']} (owned by {row['owner']})" for row in foreign)
        raise SchemaNotProvisioned(
            f"{where} holds tables that role {role!r} does not own: {tables}; provisioning"
            " again hands them over (deploy/local/postgres.sh start, or"
            " deploy.local.databases.provision)"
        )


async def _register_json_codecs(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


def _check_schema_name(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
