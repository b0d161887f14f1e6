"""The notifier's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.notifier.handlers import Notifier
from services.notifier.repository import NotifierUnitOfWork
from shared.catalog import load_catalog
from shared.events import DossierClockStarted, Topic
from shared.runtime import ServiceRuntime
from shared.settings import NotifierSettings
from shared.telemetry import Telemetry

NAME = "notifier"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NotifierSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    settings = settings or NotifierSettings()  # type: ignore[call-arg]
    runtime = ServiceRuntime(
        NAME,
        settings,
        topic=Topic.NOTIFIER,
        migrations=MIGRATIONS,
        broker=broker,
        telemetry=telemetry,
    )
    notifier = Notifier(catalog=load_catalog(settings.catalog_path), clock=clock)
    runtime.consume(
        group_id=NAME,
        topics=(Topic.DEADLINE,),
        handlers={DossierClockStarted: notifier.on_clock_started},
        unit_of_work=runtime.unit_of_work(NotifierUnitOfWork),
    )
    return runtime.http_app(title="Notifier service", version="1.0.0")
