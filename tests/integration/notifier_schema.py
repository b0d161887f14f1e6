"""A notifier schema of a test's own, in the test database: provisioned like the notifier's
(its role owns it), migrated, and dropped afterwards; the services' schemas are left alone.
With the unit of work on it, and the one emptying that the letter tests do between tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from deploy.local import databases
from deploy.local.stack import database_url
from services.notifier.main import MIGRATIONS
from services.notifier.repository import NotifierUnitOfWork
from shared import db
from tests.conftest import TEST_DATABASE, TEST_NAMESPACE


def schema_named(purpose: str) -> str:
    """A schema name of this purpose and this checkout's test namespace."""
    return f"notifier_{purpose}_" + re.sub(r"[^a-z0-9]", "_", TEST_NAMESPACE.lower()).strip("_")


@asynccontextmanager
async def notifier_schema(schema: str) -> AsyncIterator[asyncpg.Pool]:
    admin = await asyncpg.connect(database_url(TEST_DATABASE), timeout=10)
    try:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await databases.provision(admin, {schema: databases.service_role("notifier")})
    finally:
        await admin.close()
    pool = await db.create_pool(database_url(TEST_DATABASE, "notifier"), schema)
    try:
        await db.migrate(pool, schema, MIGRATIONS)
        yield pool
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await pool.close()


def unit_of_work(pool: asyncpg.Pool, schema: str) -> Callable[[], NotifierUnitOfWork]:
    return lambda: NotifierUnitOfWork(
        pool, source="/onestop/notifier", notify_channel=f"{schema}_outbox", schema=schema
    )


async def emptied(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The schema's letters, addressees, alerts and outbox emptied (between tests)."""
    await pool.execute("TRUNCATE apologies, addressees, alerts, outbox")
    return pool
