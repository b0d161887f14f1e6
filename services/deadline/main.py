"""The deadline service's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.deadline.api import build_clocks_router
from services.deadline.handlers import Deadlines
from services.deadline.repository import DeadlineUnitOfWork
from services.deadline.scheduler import LatenessScheduler
from services.deadline.settings import DeadlineSettings
from shared.auth import Authenticator, TokenVerifier
from shared.catalog import load_catalog
from shared.clock import system_clock
from shared.events import (
    ApologyIssued,
    ConsultationReplied,
    ConsultationRequested,
    DossierReceived,
    DossierReceivedV1,
    DossierRefused,
    DossierRouted,
    DossierSentBack,
    DossierWithdrawn,
    FinancialObligationFulfilled,
    FinancialObligationRequested,
    HandOffRecorded,
    ProcessingStopped,
    SupplementReceived,
    SupplementRequested,
    Topic,
)
from shared.runtime import ServiceRuntime
from shared.settings import unit_calendars
from shared.telemetry import Telemetry

NAME = "deadline"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: DeadlineSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = system_clock,
    token_verifier: TokenVerifier | None = None,
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
    catalog = load_catalog(settings.catalog_path)
    deadlines = Deadlines(
        catalog=catalog,
        calendars=unit_calendars(settings, catalog),
        due_soon_lead=timedelta(hours=settings.due_soon_lead_working_hours),
        clock=clock,
        consultation_pauses_clock=settings.consultation_pauses_clock,
        send_back_allotment=settings.send_back_allotment,
    )
    unit_of_work = runtime.unit_of_work(DeadlineUnitOfWork)
    runtime.consume(  # the clock from intake's topic, its steps from routing's plan, the
        group_id=NAME,  # new return date from the notifier's apology
        topics=(Topic.INTAKE, Topic.ROUTING, Topic.NOTIFIER),
        handlers={
            DossierReceived: deadlines.on_dossier_received,
            DossierReceivedV1: deadlines.on_dossier_received,  # received before the upgrade to v2
            SupplementRequested: deadlines.on_supplement_requested,
            SupplementReceived: deadlines.on_supplement_received,
            FinancialObligationRequested: deadlines.on_financial_obligation_requested,
            FinancialObligationFulfilled: deadlines.on_financial_obligation_fulfilled,
            DossierWithdrawn: deadlines.on_closed,
            DossierRefused: deadlines.on_closed,
            ProcessingStopped: deadlines.on_closed,
            ConsultationRequested: deadlines.on_consultation_requested,
            ConsultationReplied: deadlines.on_consultation_replied,
            DossierRouted: deadlines.on_dossier_routed,
            HandOffRecorded: deadlines.on_hand_off_recorded,
            DossierSentBack: deadlines.on_dossier_sent_back,
            ApologyIssued: deadlines.on_apology_issued,
        },
        unit_of_work=unit_of_work,
    )
    scheduler = LatenessScheduler(
        unit_of_work,
        clock,
        runtime.telemetry.tracer("onestop.deadline"),
        interval=settings.lateness_scan_interval_seconds,
        supplement_policy=settings.supplement_missed_policy,
        meter=runtime.meter,
    )
    runtime.run_in_background(scheduler.run, "lateness-scan")
    runtime.enforce_retention(clock)  # no personal data here: outbox and inbox only
    app = runtime.http_app(title="Deadline service", version="1.0.0")
    authenticator = Authenticator(token_verifier or TokenVerifier.from_settings(settings), settings)
    authenticator.install(app)
    app.include_router(build_clocks_router(unit_of_work, authenticator))
    return app
