"""The deadline service's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.deadline.handlers import Deadlines
from services.deadline.repository import DeadlineUnitOfWork
from shared.calendar import WorkingCalendar
from shared.events import DossierRouted, Topic
from shared.runtime import ServiceRuntime
from shared.settings import DeadlineSettings
from shared.telemetry import Telemetry

NAME = "deadline"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: DeadlineSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    settings = settings or DeadlineSettings()  # type: ignore[call-arg]
    runtime = ServiceRuntime(
        NAME,
        settings,
        topic=Topic.DEADLINE,
        migrations=MIGRATIONS,
        broker=broker,
        telemetry=telemetry,
    )
    deadlines = Deadlines(
        calendar=WorkingCalendar(),
        due_soon_lead=timedelta(hours=settings.due_soon_lead_working_hours),
        clock=clock,
    )
    runtime.consume(
        group_id=NAME,
        topics=(Topic.ROUTING,),
        handlers={DossierRouted: deadlines.on_dossier_routed},
        unit_of_work=runtime.unit_of_work(DeadlineUnitOfWork),
    )
    return runtime.http_app(title="Deadline service", version="1.0.0")
