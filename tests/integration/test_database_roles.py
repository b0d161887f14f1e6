"""One PostgreSQL role per service, against the real server: each owns its schema and nothing
else, none is a superuser, the services really connect as theirs, provisioning is idempotent
and brings a database of the old single-role layout to this one, and a service whose schema
is not provisioned stops at start saying how to provision it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from deploy.local import databases
from deploy.local.stack import SERVICES, Stack, database_url
from services.intake.main import MIGRATIONS as INTAKE_MIGRATIONS
from services.routing.main import MIGRATIONS as ROUTING_MIGRATIONS
from shared import db
from shared.clock import SimulatedClock
from tests.conftest import TEST_DATABASE, TEST_PORT_BASE, clean_database, throwaway_namespace
from tests.system import running_system

LEGACY_DATABASE = f"{TEST_DATABASE}_legacy"  # laid out as the old single-role script left it
BARE_DATABASE = f"{TEST_DATABASE}_bare"  # a schema missing


@pytest.fixture
async def as_routing(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Routing's role on the test database, where intake's schema holds its tables."""
    intake = await db.create_pool(database_url(TEST_DATABASE, "intake"), "intake")
    try:
        await db.migrate(intake, "intake", INTAKE_MIGRATIONS)
    finally:
        await intake.close()
    connection = await asyncpg.connect(database_url(TEST_DATABASE, "routing"), timeout=10)
    yield connection
    await connection.close()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM intake.dossiers",
        "SELECT count(*) FROM intake.outbox",
        "INSERT INTO intake.inbox (event_id, event_type, source)"
        " VALUES (gen_random_uuid(), 'x', 'routing')",
        "DELETE FROM intake.outbox",
        "DROP TABLE intake.outbox",
        "CREATE TABLE intake.planted (id int)",
    ],
)
async def test_a_service_role_cannot_read_or_write_another_services_schema(
    as_routing: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="intake"):
        await as_routing.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE SCHEMA planted",
        "CREATE TABLE public.planted (id int)",
        "CREATE TABLE planted (id int)",  # search_path falls through to public
        "CREATE TEMPORARY TABLE planted (id int)",
        "CREATE DATABASE planted",
        "CREATE ROLE planted",
    ],
)
async def test_a_service_role_creates_nothing_outside_its_schema(
    as_routing: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_routing.execute(statement)


async def test_no_service_role_is_privileged(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
            " rolbypassrls, (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
            " AS memberships FROM pg_roles r WHERE rolname = ANY($1)",
            [databases.service_role(s) for s in SERVICES],
        )
        provisioner = await connection.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1",
            databases.PROVISIONER,
        )
    finally:
        await connection.close()
    assert {row["rolname"] for row in rows} == {databases.service_role(s) for s in SERVICES}
    for row in rows:
        assert not any(row[k] for k in row.keys() if k != "rolname"), dict(row)
    assert dict(provisioner) == {"rolsuper": False, "rolcreatedb": True, "rolcreaterole": True}


async def test_each_services_pool_connects_as_its_own_role(
    infrastructure: dict[str, str],
) -> None:
    clock = SimulatedClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    namespace = await throwaway_namespace("roles")
    async with running_system(infrastructure, clock, namespace=namespace) as system:
        roles = {
            name: await app.state.runtime.pool.fetchval("SELECT current_user")
            for name, app in system.apps.items()
        }
    assert roles == {s: databases.service_role(s) for s in SERVICES}


async def test_provisioning_hands_an_old_single_role_database_to_the_services() -> None:
    """The old layout: the provisioning role owned the schemas and created every table (the
    services migrated as it). Provisioning, run twice and then twice at once, hands them all
    over; the service then migrates and writes as its own role."""
    url = await clean_database(LEGACY_DATABASE)
    admin = await asyncpg.connect(url, timeout=10)
    try:
        await admin.execute(f"ALTER SCHEMA routing OWNER TO {databases.PROVISIONER}")
        old = await db.create_pool(url, "routing")
        try:
            await db.migrate(old, "routing", ROUTING_MIGRATIONS)
            await old.execute(
                "CREATE SEQUENCE routing.loose_numbers;"
                " CREATE TYPE routing.mood AS ENUM ('calm');"
                " CREATE DOMAIN routing.positive AS int CHECK (VALUE > 0);"
                " CREATE VIEW routing.route_codes AS SELECT dossier_code FROM routing.routes;"
                " CREATE FUNCTION routing.one() RETURNS int LANGUAGE sql AS 'SELECT 1'"
            )
        finally:
            await old.close()
        assert await _owners(admin, "routing") == {databases.PROVISIONER}

        await databases.provision(admin)
        await databases.provision(admin)
        second = await asyncpg.connect(url, timeout=10)
        try:
            await asyncio.gather(databases.provision(admin), databases.provision(second))
        finally:
            await second.close()

        assert await _owners(admin, "routing") == {databases.service_role("routing")}
        schema_owners = await admin.fetch(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace"
            " WHERE nspname = ANY($1)",
            list(SERVICES),
        )
        assert {r["nspname"]: r["owner"] for r in schema_owners} == {
            s: databases.service_role(s) for s in SERVICES
        }
    finally:
        await admin.close()

    routing = await db.create_pool(database_url(LEGACY_DATABASE, "routing"), "routing")
    try:
        assert await db.migrate(routing, "routing", ROUTING_MIGRATIONS) == []
        await routing.execute("INSERT INTO event_sequences VALUES ('HS-1', 1)")
        assert await routing.fetchval("SELECT routing.one() + nextval('loose_numbers')") == 2
    finally:
        await routing.close()


async def test_a_service_stops_at_start_when_its_schema_belongs_to_another_role() -> None:
    url = await clean_database(BARE_DATABASE)
    admin = await asyncpg.connect(url, timeout=10)
    try:
        await admin.execute(f"ALTER SCHEMA routing OWNER TO {databases.PROVISIONER}")
    finally:
        await admin.close()
    pool = await db.create_pool(database_url(BARE_DATABASE, "routing"), "routing")
    try:
        with pytest.raises(db.SchemaNotProvisioned) as refused:
            await db.migrate(pool, "routing", ROUTING_MIGRATIONS)
    finally:
        await pool.close()
    message = str(refused.value)
    assert "schema 'routing'" in message and f"database '{BARE_DATABASE}'" in message
    assert "owned by role 'onestop'" in message and "'onestop_routing'" in message
    assert "ALTER SCHEMA routing OWNER TO onestop_routing" in message


async def test_a_service_process_without_its_schema_exits_naming_schema_role_and_remedy() -> None:
    url = await clean_database(BARE_DATABASE)
    admin = await asyncpg.connect(url, timeout=10)
    try:
        await admin.execute("DROP SCHEMA routing CASCADE")
    finally:
        await admin.close()
    routing = Stack(
        database=BARE_DATABASE,
        base_port=TEST_PORT_BASE + 300,
        namespace=await throwaway_namespace("bare"),
    )
    routing.start(["routing"])
    try:
        with pytest.raises(RuntimeError, match="routing exited") as exited:
            routing.wait_ready(["routing"], timeout=60)
    finally:
        routing.stop()
    log = str(exited.value)
    assert f"schema 'routing' in database '{BARE_DATABASE}' does not exist" in log
    assert "role 'onestop_routing'" in log
    assert "deploy/local/postgres.sh start" in log
    assert "CREATE SCHEMA routing AUTHORIZATION onestop_routing" in log


async def _owners(connection: asyncpg.Connection, schema: str) -> set[str]:
    """Who owns the tables, sequences, views, functions and types in the schema."""
    rows = await connection.fetch(
        "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
        " UNION SELECT pg_get_userbyid(proowner) FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1"
        " UNION SELECT pg_get_userbyid(typowner) FROM pg_type t"
        " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1",
        schema,
    )
    return {row["owner"] for row in rows}


async def test_a_connection_goes_back_to_the_pool_without_its_open_transaction(
    intake_pool: asyncpg.Pool, infrastructure: dict[str, str]
) -> None:
    """The pools skip asyncpg's reset query (shared/db.py): a connection given back inside a
    transaction must still come back out of it, its writes undone, its schema still first."""
    await intake_pool.execute("CREATE TABLE IF NOT EXISTS pool_reset_probe (n int)")
    await intake_pool.execute("TRUNCATE pool_reset_probe")
    url = database_url(infrastructure["database"], "intake")
    pool = await db.create_pool(url, "intake", max_size=1)  # one connection: the same again
    try:
        connection = await pool.acquire()
        pid = connection.get_server_pid()
        await connection.execute("BEGIN")
        await connection.execute("INSERT INTO pool_reset_probe VALUES (1)")
        await pool.release(connection)

        async with pool.acquire() as again:
            assert again.get_server_pid() == pid
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM pool_reset_probe") == 0
            assert await again.fetchval("SHOW search_path") == "intake"
    finally:
        await pool.close()
        await intake_pool.execute("DROP TABLE pool_reset_probe")
