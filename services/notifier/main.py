"""The notifier's composition root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.notifier.api import LetterLinks, build_apology_drafts_router, build_letters_router
from services.notifier.channels import Channel, SmtpChannel, WebhookChannel
from services.notifier.delivery import Deliverer, RetryPolicy
from services.notifier.handlers import Handler, Notifier
from services.notifier.rendering import LetterRenderer
from services.notifier.repository import NotifierUnitOfWork, erase_addressees
from services.notifier.settings import NotifierSettings
from services.notifier.signing import LetterSigner
from shared.access_log import build_access_log_router
from shared.auth import Authenticator, TokenVerifier
from shared.catalog import load_catalog
from shared.clock import system_clock
from shared.events import (
    ApplicantDetailsRecorded,
    ConsultationReplyOverdueDetected,
    DossierClockResumed,
    DossierClockStarted,
    DossierProcessed,
    DossierReceived,
    DossierReceivedV1,
    DossierRefused,
    DossierWithdrawn,
    DueSoonDetected,
    Event,
    ExtensionRequested,
    OverdueDetected,
    ProcessingStopped,
    PromiseBrokenDetected,
    PromisedDateDueSoonDetected,
    ResultReturned,
    StepOverdueDetected,
    SupplementDeadlineMissed,
    SupplementRequested,
    Topic,
)
from shared.runtime import ServiceRuntime
from shared.settings import unit_calendars
from shared.telemetry import Telemetry

NAME = "notifier"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NotifierSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = system_clock,
    token_verifier: TokenVerifier | None = None,
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
        new_date_limit=timedelta(hours=8 * settings.apology_new_date_limit_working_days),
        email_enabled=email is not None,
        sms_enabled=sms is not None,
        apologies_issued=runtime.meter.create_counter(
            "onestop.apologies.issued",
            unit="{letter}",
            description="Apology letters (Mẫu 04) issued, by the unit at fault",
        ),
    )
    handlers: dict[type[Event], Handler] = {
        DossierClockStarted: notifier.on_clock_started,
        DossierClockResumed: notifier.on_clock_resumed,
        DueSoonDetected: notifier.on_due_soon,
        OverdueDetected: notifier.on_overdue,
        StepOverdueDetected: notifier.on_step_overdue,
        PromisedDateDueSoonDetected: notifier.on_promised_date_due_soon,
        PromiseBrokenDetected: notifier.on_promise_broken,
        SupplementDeadlineMissed: notifier.on_supplement_missed,
        ConsultationReplyOverdueDetected: notifier.on_consultation_reply_overdue,
        DossierReceived: notifier.on_dossier_received,
        DossierReceivedV1: notifier.on_dossier_received,  # received before v2
        ApplicantDetailsRecorded: notifier.on_applicant_recorded,
        ExtensionRequested: notifier.on_extension_requested,
        ResultReturned: notifier.on_dossier_ended,
        DossierWithdrawn: notifier.on_dossier_ended,
        # The applicant's letters: Mẫu 02, 03, 05 and the result ready for collection.
        SupplementRequested: notifier.on_supplement_requested,
        DossierProcessed: notifier.on_dossier_processed,
        DossierRefused: notifier.on_dossier_refused,
        ProcessingStopped: notifier.on_processing_stopped,
    }
    deferred = (DueSoonDetected, OverdueDetected)  # applied in sets (Notifier._lateness)
    runtime.consume(  # the clock and its detections, the receipt and whom to write to
        group_id=NAME,
        topics=(Topic.DEADLINE, Topic.INTAKE, Topic.INTAKE_PERSONAL_DATA),
        handlers={  # any other event applies the deferred detections before it
            event_type: handler if event_type in deferred else notifier.in_order(handler)
            for event_type, handler in handlers.items()
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
    runtime.run_in_background(deliverer.run, "letter-delivery")
    renderer = LetterRenderer(
        unit_of_work,
        clock,
        LetterSigner(settings.signing_directory),
        batch_size=settings.render_batch_size,
        processes=settings.render_processes,
        process_idle_seconds=settings.render_process_idle_seconds,
        poll_interval=settings.render_poll_interval_seconds,
        backoff_initial=timedelta(seconds=settings.render_backoff_initial_seconds),
        backoff_max=timedelta(seconds=settings.render_backoff_max_seconds),
        max_backoff=settings.retry_max_backoff_seconds,
        meter=runtime.meter,
    )
    runtime.run_in_background(renderer.run, "letter-rendering")
    runtime.enforce_retention(clock, erase_personal_data=erase_addressees)
    app = runtime.http_app(title="Notifier service", version="1.0.0")
    authenticator = Authenticator(token_verifier or TokenVerifier.from_settings(settings), settings)
    authenticator.install(app)
    links = LetterLinks(
        settings.link_signing_key.get_secret_value().encode(),
        lifetime=timedelta(days=settings.letter_link_lifetime_days),
        base_url=settings.public_base_url,
    )
    app.include_router(build_letters_router(unit_of_work, authenticator, links, clock))
    app.include_router(build_apology_drafts_router(unit_of_work, authenticator, notifier))
    app.include_router(build_access_log_router(authenticator, unit_of_work, service=NAME))
    return app
