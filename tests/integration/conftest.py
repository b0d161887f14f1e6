from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from opentelemetry import trace

from deploy.local.kafka_access import service_environment
from deploy.local.stack import ROOT, database_url
from services.intake.handlers import Intake, receive_dossier
from services.intake.main import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.repository import IntakeUnitOfWork, PostgresDailySequences
from services.intake.schemas import DossierSubmission
from shared import db
from shared.auth import Principal, Role
from shared.calendar import UnitCalendars
from shared.catalog import load_catalog
from shared.messaging.connection import KafkaConnection
from shared.messaging.outbox import OutboxRelay
from shared.messaging.publisher import KafkaPublisher
from shared.settings import DEFAULT_CATALOG
from tests.conftest import TEST_NAMESPACE, TEST_PORT_BASE
from tests.factories import submission
from tests.waiting import eventually

__all__ = ["commit_dossiers", "eventually", "publish_all", "run_worker"]


@pytest.fixture(scope="package")
async def intake_pool(infrastructure: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url(infrastructure["database"], "intake"), "intake")
    await db.migrate(pool, "intake", INTAKE_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(scope="package")
async def reader_pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The provisioning role's: reads every service's schema (intake's role reads only its own)."""
    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="package")
async def publisher(kafka_admin: KafkaConnection) -> AsyncIterator[KafkaPublisher]:
    kafka = KafkaPublisher(
        kafka_admin,
        client_id="tests",
        tracer=trace.NoOpTracer(),
        namespace=TEST_NAMESPACE,
    )
    await kafka.start()
    yield kafka
    await kafka.stop()


def intake_on(
    pool: asyncpg.Pool, unit_of_work: type[IntakeUnitOfWork] = IntakeUnitOfWork
) -> Intake:
    """Intake's handlers on the pool, as the service wires them (no HTTP, no relay)."""
    catalog = load_catalog(DEFAULT_CATALOG)
    return Intake(
        catalog=catalog,
        calendars=UnitCalendars(catalog),
        unit_of_work=lambda: unit_of_work(
            pool, source="/onestop/intake", notify_channel="intake_outbox"
        ),
        clock=lambda: datetime.now(UTC),
        lookup_pin_key=b"integration-tests-lookup-pin-key",
        sequences=PostgresDailySequences(lambda: pool),
    )


def counter_at(unit: str) -> Principal:
    return Principal(
        subject="counter-in-tests",
        username=f"counter.{unit.lower()}",
        name="Cán bộ tiếp nhận",
        roles=frozenset({Role.COUNTER_OFFICER}),
        unit_code=unit,
    )


async def commit_dossiers(pool: asyncpg.Pool, count: int, unit: str) -> list[str]:
    """Intake's own transaction: dossier rows and their outbox rows; no relay running."""
    intake, counter = intake_on(pool), counter_at(unit)
    body = DossierSubmission.model_validate(submission())
    return [
        (await receive_dossier(intake, body, counter, None))[0].dossier_code for _ in range(count)
    ]


async def publish_all(
    pool: asyncpg.Pool, publisher: KafkaPublisher, schema: str = "intake"
) -> None:
    relay = OutboxRelay(pool, publisher, schema=schema, notify_channel=f"{schema}_outbox")
    while await relay.publish_pending():
        pass


def run_worker(*args: str, database_url: str, principal: str, timeout: float = 90) -> int:
    """The worker reaches Kafka as `principal`, the service whose work it does."""
    env = {
        **os.environ,
        **service_environment(principal),
        "DATABASE_URL": database_url,
        "HTTP_PORT": str(TEST_PORT_BASE + 999),
        "KAFKA_NAMESPACE": TEST_NAMESPACE,
        "PYTHONUNBUFFERED": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.workers", *args],
        cwd=ROOT,
        env=env,
        timeout=timeout,
        capture_output=True,
    )
    if completed.returncode != -9:
        raise AssertionError(
            f"worker {args} ended with {completed.returncode}, not SIGKILL:\n"
            f"{completed.stdout.decode()[-3000:]}\n{completed.stderr.decode()[-3000:]}"
        )
    return completed.returncode
