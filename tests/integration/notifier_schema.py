"""A notifier schema of a test's own, in the test database: provisioned like the notifier's
(its role owns it), migrated, and dropped afterwards; the services' schemas are left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from deploy.local import databases
from deploy.local.stack import database_url
from services.notifier.main import MIGRATIONS
from shared import db
from tests.conftest import TEST_DATABASE


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
