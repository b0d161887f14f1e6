"""Routing's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.routing.handlers import Routing
from services.routing.repository import RoutingUnitOfWork
from shared.calendar import WorkingCalendar
from shared.catalog import load_catalog
from shared.events import DossierReceived, Topic
from shared.runtime import ServiceRuntime
from shared.settings import RoutingSettings
from shared.telemetry import Telemetry

NAME = "routing"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RoutingSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    unit_of_work: type[RoutingUnitOfWork] = RoutingUnitOfWork,
) -> FastAPI:
    settings = settings or RoutingSettings()  # type: ignore[call-arg]
    runtime = ServiceRuntime(
        NAME,
        settings,
        topic=Topic.ROUTING,
        migrations=MIGRATIONS,
        broker=broker,
        telemetry=telemetry,
    )
    routing = Routing(
        catalog=load_catalog(settings.catalog_path), calendar=WorkingCalendar(), clock=clock
    )
    runtime.consume(
        group_id=NAME,
        topics=(Topic.INTAKE,),
        handlers={DossierReceived: routing.on_dossier_received},
        unit_of_work=runtime.unit_of_work(unit_of_work),
    )
    return runtime.http_app(title="Routing service", version="1.0.0")
