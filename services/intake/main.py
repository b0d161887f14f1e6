"""Intake's composition root: wires the catalog, calendar, database, broker and HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.intake.api import (
    DossierReader,
    build_lifecycle_router,
    build_reports_router,
    build_router,
)
from services.intake.commands import Commands
from services.intake.errors import BodySizeLimit, install_error_handlers
from services.intake.handlers import PROJECTIONS, Intake
from services.intake.journey import build_journey_router
from services.intake.metrics import WorkloadGauges, observe_daily_sequences
from services.intake.office import OfficePages, build_office_router
from services.intake.pages import BOARD_PATH, build_pages_router
from services.intake.rating_page import build_rating_router
from services.intake.reports import Reports
from services.intake.repository import (
    IntakeUnitOfWork,
    PostgresDailySequences,
    erase_applicants,
)
from services.intake.settings import IntakeSettings
from services.intake.stuck import build_stuck_router
from services.intake.web_signin import WebSignIn
from shared.access_log import build_access_log_router
from shared.api import OpenApi, amend_openapi, document_body_limit
from shared.auth import Authenticator, TokenVerifier
from shared.catalog import Catalog, load_catalog
from shared.clock import system_clock
from shared.events import Topic
from shared.runtime import ServiceRuntime
from shared.settings import unit_calendars
from shared.telemetry import Telemetry

NAME = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: IntakeSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = system_clock,
    token_verifier: TokenVerifier | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()  # type: ignore[call-arg]
    verifier = token_verifier or TokenVerifier.from_settings(settings)
    authenticator = Authenticator(verifier, settings)
    runtime = ServiceRuntime(
        NAME,
        settings,
        topic=Topic.INTAKE,
        restricted_topics=(Topic.INTAKE_PERSONAL_DATA,),
        migrations=MIGRATIONS,
        broker=broker,
        telemetry=telemetry,
    )

    unit_of_work = runtime.unit_of_work(IntakeUnitOfWork)
    catalog = load_catalog(settings.catalog_path)
    calendars = unit_calendars(settings, catalog)
    intake = Intake(
        catalog=catalog,
        calendars=calendars,
        unit_of_work=unit_of_work,
        clock=clock,
        lookup_pin_key=settings.lookup_pin_key.get_secret_value().encode(),
        sequences=PostgresDailySequences(lambda: runtime.pool),
    )
    commands = Commands(
        calendars=calendars,
        unit_of_work=unit_of_work,
        clock=clock,
        supplement_working_days=settings.supplement_deadline_working_days,
        catalog=catalog,
        consultation_working_days=settings.consultation_reply_working_days,
    )
    reports = Reports(
        catalog=catalog,
        calendar=calendars.default,
        unit_of_work=unit_of_work,
        clock=clock,
        satisfied_from=settings.rating_satisfied_from,
    )
    runtime.consume(
        group_id="intake-projection",
        topics=(Topic.ROUTING, Topic.DEADLINE, Topic.NOTIFIER),
        handlers=PROJECTIONS,
        unit_of_work=unit_of_work,
    )
    app = runtime.http_app(
        title="One-stop intake API (Tiếp nhận hồ sơ một cửa)",
        version="1.0.0",
        description="One-stop counters post dossiers here and get the receipt and appointment.",
    )
    reader = install_api(app, intake, authenticator, max_request_bytes=settings.max_request_bytes)
    app.include_router(build_lifecycle_router(commands, authenticator))
    app.include_router(build_reports_router(reports, reader))
    app.include_router(build_pages_router(reports, reader))  # the public web pages
    app.include_router(build_rating_router(reports, reader))  # the citizen's rating
    web = WebSignIn(
        settings,
        verifier,
        unit_of_work,
        clock,
        session_lifetime=timedelta(hours=settings.web_session_hours),
        idle_timeout=timedelta(minutes=settings.web_session_idle_minutes),
        signed_out_path=BOARD_PATH,
    )
    office = OfficePages(web, catalog)
    web.install(app, office.error)
    app.include_router(build_office_router(office))  # the officials' pages
    app.include_router(build_journey_router(office, reports, reader, settings.trace_ui_url))
    app.include_router(
        build_stuck_router(
            office,
            unit_of_work,
            calendars.of,
            clock,
            trace_ui_url=settings.trace_ui_url,
            refresh_seconds=settings.stuck_refresh_seconds,
        )
    )
    app.include_router(build_access_log_router(authenticator, unit_of_work, service=NAME))
    gauges = WorkloadGauges(
        runtime.meter, unit_of_work, clock, interval=settings.workload_refresh_seconds
    )
    observe_daily_sequences(runtime.meter, intake.sequences, clock, calendars.default.tz)
    runtime.run_in_background(gauges.run, "workload-gauges")
    runtime.enforce_retention(clock, erase_personal_data=erase_applicants)
    return app


def install_api(
    app: FastAPI, intake: Intake, authenticator: Authenticator, *, max_request_bytes: int
) -> DossierReader:
    """The counters' API on an app: routes, sign-in, error responses and the body size limit."""
    reader = DossierReader(intake, authenticator)
    app.include_router(build_router(intake, authenticator, reader))
    authenticator.install(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    document_body_limit(app, max_request_bytes)
    amend_openapi(app, lambda document: _document_catalog(document, intake.catalog))
    return reader


def _document_catalog(document: OpenApi, catalog: Catalog) -> None:
    """A submission names a procedure of the catalog: the schema lists their codes, so that a
    client (and a contract test) knows which ones intake takes."""
    submission = document["components"]["schemas"]["DossierSubmission"]["properties"]
    submission["procedure_code"]["enum"] = sorted(p.code for p in catalog.procedures)
