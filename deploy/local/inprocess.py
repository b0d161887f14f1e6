"""The four services in one process, on the real Kafka broker and PostgreSQL server, sharing
one clock (simulated where the caller drives time): how the system tests and `make demo` run
them. Nothing listens on a port: callers reach the apps through ASGI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from deploy.local.kafka_access import service_settings
from deploy.local.stack import access_settings
from services.deadline.main import create_app as deadline_app
from services.deadline.settings import DeadlineSettings
from services.intake.main import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.notifier.main import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.routing.main import create_app as routing_app
from services.routing.settings import RoutingSettings
from shared.settings import ServiceSettings
from shared.telemetry import configure_telemetry

# In start order: intake last out, so that no dossier comes in while the others stop.
SERVICES: dict[str, tuple[type[ServiceSettings], Callable[..., FastAPI]]] = {
    "intake": (IntakeSettings, intake_app),
    "routing": (RoutingSettings, routing_app),
    "deadline": (DeadlineSettings, deadline_app),
    "notifier": (NotifierSettings, notifier_app),
}
# Quick to publish and to retry: a test or the demo waits on every effect.
QUICK: dict[str, Any] = {
    "http_port": 18900,  # required by the settings; nothing listens
    "retry_max_backoff_seconds": 1.0,
    "outbox_poll_interval_seconds": 0.2,
}

log = logging.getLogger(__name__)


@asynccontextmanager
async def running_services(
    clock: Callable[[], datetime],
    *,
    kafka_bootstrap_servers: str,
    database_urls: Mapping[str, str],
    kafka_namespace: str,
    common: Mapping[str, Any] | None = None,
    own: Mapping[str, Mapping[str, Any]] | None = None,
    span_exporters: Iterable[SpanExporter] = (),
    metric_readers: Mapping[str, Sequence[MetricReader]] | None = None,
    stop_timeout: float | None = None,
    kafka_principal: Callable[[str], Mapping[str, Any]] = service_settings,
) -> AsyncIterator[dict[str, FastAPI]]:
    """The apps by name, their lifespans entered in SERVICES' order and left in reverse.

    Each service connects with its own URL of `database_urls` (its own role: stack's
    service_database_urls) and reaches Kafka as its own principal (`kafka_principal(name)`:
    its settings); `common` settings apply to every service, `own` to the one named; metrics
    go only to the given readers (four services in one process would clash in Prometheus'
    one registry)."""
    missing = set(SERVICES) - set(database_urls)
    if missing:
        raise ValueError(f"database_urls names no URL for {', '.join(sorted(missing))}")
    shared_settings = {
        **QUICK,
        **{name.lower(): value for name, value in access_settings().items()},
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "kafka_namespace": kafka_namespace,
        **(common or {}),
    }
    exporters = list(span_exporters)
    apps: dict[str, FastAPI] = {}
    for name, (settings_class, create_app) in SERVICES.items():
        settings = settings_class(
            **{
                **shared_settings,
                "database_url": database_urls[name],
                **kafka_principal(name),
                **(own or {}).get(name, {}),
            }
        )
        readers = (metric_readers or {}).get(name, ())
        telemetry = configure_telemetry(name, span_exporters=exporters, metric_readers=readers)
        apps[name] = create_app(settings, telemetry=telemetry, clock=clock)
    stack = AsyncExitStack()
    try:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield apps
    finally:
        try:
            async with asyncio.timeout(stop_timeout):
                await stack.aclose()
        except TimeoutError:
            if stop_timeout is None:
                raise
            log.warning("the services did not stop within %.0fs", stop_timeout)
