"""Routing's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.routing.handlers import Routing
from services.routing.repository import RoutingUnitOfWork
from services.routing.settings import RoutingSettings
from shared.catalog import load_catalog
from shared.clock import system_clock
from shared.events import (
    DossierReceived,
    DossierReceivedV1,
    HandOffRequested,
    SendBackRequested,
    Topic,
)
from shared.runtime import ServiceRuntime
from shared.telemetry import Telemetry

NAME = "routing"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RoutingSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = system_clock,
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
    routing = Routing(catalog=load_catalog(settings.catalog_path), clock=clock)
    runtime.consume(  # one topic: a hand-off always follows its dossier's receipt, in order
        group_id=NAME,
        topics=(Topic.INTAKE,),
        handlers={
            DossierReceived: routing.on_dossier_received,
            DossierReceivedV1: routing.on_dossier_received,  # received before the upgrade to v2
            HandOffRequested: routing.on_hand_off_requested,
            SendBackRequested: routing.on_send_back_requested,
        },
        unit_of_work=runtime.unit_of_work(unit_of_work),
    )
    runtime.enforce_retention(clock)  # no personal data here: outbox and inbox only
    return runtime.http_app(title="Routing service", version="1.0.0")
