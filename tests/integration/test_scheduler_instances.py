"""Several deadline schedulers on one database (the multi-node mode runs two or three) detect
each lateness once: a claim marks the clock in the transaction that writes the event to the
outbox, and skips the clocks another scheduler holds (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from opentelemetry.trace import NoOpTracer

from deploy.local.stack import database_url
from services.deadline.main import MIGRATIONS
from services.deadline.repository import DeadlineUnitOfWork
from services.deadline.scheduler import BATCH, LatenessScheduler
from shared import db
from shared.events import DueSoonDetected, OverdueDetected
from tests.conftest import TEST_DATABASE, clean_database

DATABASE = f"{TEST_DATABASE}_schedulers"
SCHEDULERS = 3
CLOCKS = 6 * BATCH  # six batches of the scheduler's: the instances' claims interleave
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_schedulers_running_at_once_detect_each_lateness_once() -> None:
    await clean_database(DATABASE)
    # One pool per scheduler, as in separate processes: their transactions really overlap.
    pools = [
        await db.create_pool(database_url(DATABASE, "deadline"), "deadline", max_size=2)
        for _ in range(SCHEDULERS)
    ]
    try:
        await db.migrate(pools[0], "deadline", MIGRATIONS)
        await pools[0].executemany(
            "INSERT INTO clocks (dossier_code, responsible_unit_code, started_at, appointed_at,"
            " due_at, due_soon_at) VALUES ($1, '000.00.00.H29', $2, $3, $3, $4)",
            [
                (f"000.00.00.H29-261101-{n:04d}", NOW - timedelta(days=10), due, due - timedelta(1))
                for n in range(CLOCKS)
                for due in [NOW - timedelta(minutes=n + 1)]
            ],
        )
        schedulers = [
            LatenessScheduler(_unit_of_work(pool), lambda: NOW, NoOpTracer()) for pool in pools
        ]

        found = await asyncio.gather(*(s.tick() for s in schedulers for _ in range(2)))

        rows = await pools[0].fetch(
            "SELECT message_key, event_type, count(*) AS n FROM outbox GROUP BY 1, 2"
        )
        counts = {(r["message_key"], r["event_type"]): r["n"] for r in rows}
        codes = [f"000.00.00.H29-261101-{n:04d}" for n in range(CLOCKS)]
        expected = {
            (code, kind.TYPE): 1 for code in codes for kind in (DueSoonDetected, OverdueDetected)
        }
        assert counts == expected  # each clock's due soon and overdue, once
        assert sum(found) == 2 * CLOCKS  # and each counted by the one scheduler that made it
    finally:
        for pool in pools:
            await pool.close()


def _unit_of_work(pool: asyncpg.Pool) -> Callable[[], DeadlineUnitOfWork]:
    return lambda: DeadlineUnitOfWork(
        pool, source="/onestop/deadline", notify_channel="deadline_outbox", schema="deadline"
    )
