"""The four services in this process, on the real Kafka broker and PostgreSQL server, sharing
one clock (simulated where a test drives time) and one in-memory span exporter."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from fastapi import FastAPI
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from deploy.local.identity import password_token
from deploy.local.inprocess import SERVICES, running_services
from deploy.local.stack import service_database_urls
from shared.clock import SimulatedClock
from tests.waiting import eventually

__all__ = ["OPERATOR", "Mailbox", "System", "eventually", "running_system"]

OPERATOR = "dieuhanh@tphcm.gov.vn"


class Mailbox:
    """A real local SMTP server (aiosmtpd) that keeps what it receives. Addresses in `refuse`
    are refused for good at RCPT (550), those in `defer` for now (451)."""

    class Server(Controller):
        """Stopping aborts the sessions still open. `Controller.stop` blocks the caller (here
        the event loop, where the SMTP clients run) until its thread ends, and from Python
        3.12 that thread waits for every session to close: an open client session would wait
        for a loop that cannot run, for ever."""

        def __init__(self, handler: Any, **options: Any) -> None:
            super().__init__(handler, **options)
            self.sessions: list[SMTP] = []

        def factory(self) -> SMTP:
            session = super().factory()
            self.sessions.append(session)
            return session

        def cancel_tasks(self, stop_loop: bool = True) -> None:
            for session in self.sessions:  # in the server's thread, as cancel_tasks is
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()
            super().cancel_tasks(stop_loop)

    def __init__(self) -> None:
        # The test's mail server logs each recipient at INFO; it is not part of the system
        # whose logs the personal-data scans read.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.port = _free_port()
        self.controller = Mailbox.Server(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.defer:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str, about: str = "") -> list[EmailMessage]:
        """Messages to `address` whose subject names `about` (a dossier code)."""
        return [m for m in self.messages if address in str(m["To"]) and about in str(m["Subject"])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class System:
    apps: dict[str, FastAPI]
    clock: Callable[[], datetime]
    mailbox: Mailbox
    spans: InMemorySpanExporter
    readers: list[InMemoryMetricReader] = field(default_factory=list)
    registries: dict[str, CollectorRegistry] = field(default_factory=dict)

    def exposition(self, service: str) -> str:
        """What the service's /metrics would answer (in one process the four services
        cannot share Prometheus' global registry: each has one of its own here)."""
        return generate_latest(self.registries[service]).decode()

    @asynccontextmanager
    async def client(
        self, service: str, user: str | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client of one service's app; signed in as `user` (a demo user of the local
        Keycloak: see deploy/local/identity.py) or anonymous."""
        headers = {"Authorization": f"Bearer {await password_token(user)}"} if user else {}
        transport = httpx.ASGITransport(app=self.apps[service])
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://{service}", headers=headers
        ) as client:
            yield client


@asynccontextmanager
async def running_system(
    infrastructure: dict[str, str],
    clock: Callable[[], datetime],
    *,
    database: str | None = None,
    namespace: str | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[System]:
    """`database` (a name: each service connects as its own role) and `namespace` give a
    system of its own: simulated time must not reach the dossiers of the other tests.
    `settings`: more settings of a service, by its name."""
    more = settings or {}
    mailbox = Mailbox()
    mailbox.controller.start()
    defaults: dict[str, dict[str, Any]] = {
        "intake": {"workload_refresh_seconds": 0.2},
        "routing": {},
        "deadline": {"lateness_scan_interval_seconds": 0.2},
        "notifier": {
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.port,
            "operator_emails": [OPERATOR],
        },
    }
    exporter = InMemorySpanExporter()
    readers = [InMemoryMetricReader() for _ in SERVICES]
    registries = {name: CollectorRegistry() for name in SERVICES}
    try:
        async with running_services(
            clock,
            kafka_bootstrap_servers=infrastructure["kafka_bootstrap_servers"],
            database_urls=service_database_urls(database or infrastructure["database"]),
            kafka_namespace=infrastructure["kafka_namespace"] if namespace is None else namespace,
            common={"parking_retry_interval_seconds": 0.2},
            own={name: {**own, **more.get(name, {})} for name, own in defaults.items()},
            span_exporters=[exporter],
            metric_readers={
                name: [reader, PrometheusMetricReader(registry=registries[name])]
                for name, reader in zip(SERVICES, readers, strict=True)
            },
        ) as apps:
            yield System(apps, clock, mailbox, exporter, readers, registries)
    finally:
        mailbox.controller.stop()


@asynccontextmanager
async def simulated_system(
    infrastructure: dict[str, str],
    start: datetime,
    purpose: str,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[System]:
    """The four services in simulated time, from `start`, on the simulation database (its
    schemas emptied) and topics of their own: simulated time must not reach other tests'
    dossiers."""
    from tests.conftest import SIMULATION_DATABASE, clean_database, throwaway_namespace

    await clean_database(SIMULATION_DATABASE)
    namespace = await throwaway_namespace(purpose)
    async with running_system(
        infrastructure,
        SimulatedClock(start),
        database=SIMULATION_DATABASE,
        namespace=namespace,
        settings=settings,
    ) as running:
        yield running
