"""The notifier's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Response
from fastapi import Path as PathParam
from faststream.kafka import KafkaBroker

from services.notifier.channels import Channel, SmtpChannel, WebhookChannel
from services.notifier.delivery import Deliverer, RetryPolicy
from services.notifier.handlers import Notifier
from services.notifier.repository import NotifierUnitOfWork
from services.notifier.settings import NotifierSettings
from shared.api import STORAGE_UNAVAILABLE, Responses, problem_responses
from shared.catalog import load_catalog
from shared.clock import system_clock
from shared.events import (
    DossierClockResumed,
    DossierClockStarted,
    DossierReceived,
    DueSoonDetected,
    ExtensionRequested,
    OverdueDetected,
    StepOverdueDetected,
    Topic,
)
from shared.runtime import ServiceRuntime
from shared.settings import unit_calendars
from shared.telemetry import Telemetry

NAME = "notifier"
MIGRATIONS = Path(__file__).parent / "migrations"
DOSSIER_CODE = r"^[0-9A-Z.]{3,32}-\d{6}-\d{4}$"


def create_app(
    settings: NotifierSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = system_clock,
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
    unit_of_work = runtime.unit_of_work(NotifierUnitOfWork)
    email = (
        SmtpChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            timeout=settings.smtp_timeout_seconds,
        )
        if settings.smtp_host
        else None
    )
    sms: Channel | None = (
        WebhookChannel(settings.sms_webhook_url) if settings.sms_webhook_url else None
    )
    catalog = load_catalog(settings.catalog_path)
    notifier = Notifier(
        catalog=catalog,
        calendars=unit_calendars(settings, catalog),
        clock=clock,
        operators=tuple(settings.operator_emails),
        extension=timedelta(hours=8 * settings.apology_extension_working_days),
        email_enabled=email is not None,
        sms_enabled=sms is not None,
        apologies_issued=runtime.meter.create_counter(
            "onestop.apologies.issued",
            unit="{letter}",
            description="Apology letters (Mẫu 04) issued, by the unit at fault",
        ),
    )
    runtime.consume(  # the clock and its detections, and the receipt (whom to write to)
        group_id=NAME,
        topics=(Topic.DEADLINE, Topic.INTAKE),
        handlers={
            DossierClockStarted: notifier.on_clock_started,
            DossierClockResumed: notifier.on_clock_resumed,
            DueSoonDetected: notifier.on_due_soon,
            OverdueDetected: notifier.on_overdue,
            StepOverdueDetected: notifier.on_step_overdue,
            DossierReceived: notifier.on_dossier_received,
            ExtensionRequested: notifier.on_extension_requested,
        },
        unit_of_work=unit_of_work,
    )

    deliverer = Deliverer(
        unit_of_work,
        clock,
        email=email,
        sms=sms,
        operators=settings.operator_emails,
        policy=RetryPolicy(
            initial=timedelta(seconds=settings.delivery_backoff_initial_seconds),
            maximum=timedelta(seconds=settings.delivery_backoff_max_seconds),
            max_attempts=settings.delivery_max_attempts,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        ),
        poll_interval=settings.delivery_poll_interval_seconds,
        max_backoff=settings.retry_max_backoff_seconds,
        dead_lettered=runtime.meter.create_counter(
            "onestop.letters.dead_lettered",
            unit="{letter}",
            description="Apology letters refused for good or past the attempt cap, by channel",
        ),
    )
    runtime.run_in_background(deliverer.run)
    app = runtime.http_app(title="Notifier service", version="1.0.0")

    @app.get(
        "/v1/apologies/{code}.pdf",
        tags=["apologies"],
        response_class=Response,
        responses=_letter_responses("application/pdf"),
        summary="The apology letter, as PDF",
    )
    async def apology_pdf(code: Annotated[str, PathParam(pattern=DOSSIER_CODE)]) -> Response:
        return await _letter(code, "pdf", "application/pdf")

    @app.get(
        "/v1/apologies/{code}.html",
        tags=["apologies"],
        response_class=Response,
        responses=_letter_responses("text/html"),
        summary="The apology letter, HTML",
    )
    async def apology_html(code: Annotated[str, PathParam(pattern=DOSSIER_CODE)]) -> Response:
        return await _letter(code, "html", "text/html; charset=utf-8")

    async def _letter(code: str, column: str, media_type: str) -> Response:
        async with unit_of_work() as uow:
            row = await uow.notices.letter(code)
        if row is None:
            raise HTTPException(404, f"no apology letter for dossier {code}")
        return Response(row[column], media_type=media_type)

    return app


def _letter_responses(media_type: str) -> Responses:
    letter = {media_type: {"schema": {"type": "string"}}}
    return {
        200: {"description": "The letter (Mẫu 04)", "content": letter},
        **problem_responses({404: "No apology letter for this dossier"}),
        **STORAGE_UNAVAILABLE,
    }
