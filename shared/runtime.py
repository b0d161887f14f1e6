"""The adapters every service wires the same way: the database pool and its migrations, the
Kafka broker, the outbox relay, the consumers, and an HTTP app with health endpoints.

Nothing connects until `start()`; the composition root of each service (its main.py) builds
one ServiceRuntime and may hand it a fake broker for tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import generate_latest
from pydantic import BaseModel

from shared import db
from shared.api import (
    PROMETHEUS_RESPONSE,
    PrometheusText,
    document_framework_statuses,
    install_problem_handlers,
)
from shared.docs import serve_docs
from shared.events import Event, Topic, dead_letter_topic
from shared.logs import configure_logging, flush_repeats
from shared.messaging.consumer import (
    ConsumerMetrics,
    EventConsumer,
    Handler,
    refresh_lag_forever,
    subscribe,
)
from shared.messaging.outbox import OutboxRelay
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.retry import retry_forever
from shared.messaging.topics import ensure_topics, require_topics
from shared.messaging.unit_of_work import PostgresUnitOfWork, UnitOfWork
from shared.retention import PersonalDataEraser, RetentionPurge
from shared.settings import ServiceSettings
from shared.telemetry import Telemetry, configure_telemetry

logger = logging.getLogger(__name__)
U = TypeVar("U", bound=PostgresUnitOfWork)
STOP_TIMEOUT_SECONDS = 10.0


def create_broker(
    settings: ServiceSettings, *, client_id: str, telemetry: Telemetry | None = None
) -> KafkaBroker:
    """Idempotent producer with acks=all: a retried send is never written twice. The
    telemetry middleware carries W3C trace context in the Kafka headers."""
    middlewares = []
    if telemetry is not None:
        middlewares.append(
            # Its metrics only: on a batch subscriber its spans (a "create" and a "process"
            # span per batch) start a trace of their own, in no dossier's trace; each record's
            # span is the consumer's, parented by the record's producer (consumer.py).
            KafkaTelemetryMiddleware(
                tracer_provider=NoOpTracerProvider(),
                meter_provider=telemetry.meter_provider,
            )
        )
    connection = settings.kafka_connection()
    return KafkaBroker(
        # A list: FastStream takes a comma-separated string for one host name.
        [server.strip() for server in connection.bootstrap_servers.split(",")],
        security=connection.security(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=15_000,
        # Each topic is created by its writer (the runtime waits for those it reads): a
        # principal may not create another service's topic.
        allow_auto_create_topics=False,
        middlewares=middlewares,
        logger=logging.getLogger(f"faststream.{client_id}"),
        log_level=logging.DEBUG,  # one line per message is too many at INFO
    )


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        topic: Topic,
        migrations: Path,
        broker: KafkaBroker | None = None,
        telemetry: Telemetry | None = None,
        restricted_topics: tuple[Topic, ...] = (),
    ) -> None:
        self.name = name
        self.topic = topic
        self.restricted_topics = restricted_topics  # it writes these too (personal data)
        self.settings = settings
        self.schema = name
        self.notify_channel = f"{name}_outbox"
        self.source = f"/onestop/{name}"
        self.telemetry = telemetry or configure_telemetry(name)
        self.broker = broker or create_broker(settings, client_id=name, telemetry=self.telemetry)
        self.namespace = settings.kafka_namespace
        self.publisher = KafkaPublisher(
            settings.kafka_connection(),
            client_id=f"{name}-relay",
            tracer=self.telemetry.tracer("onestop.publisher"),
            namespace=self.namespace,
        )
        self.meter = self.telemetry.meter(f"onestop.{name}")
        self._migrations = migrations
        self._pool: asyncpg.Pool | None = None
        self._relay: OutboxRelay | None = None
        self._broker_task: asyncio.Task[None] | None = None
        self._broker_started = asyncio.Event()
        self.consumers: list[EventConsumer] = []
        self._background: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        self._background_tasks: list[asyncio.Task[None]] = []
        self.retention: RetentionPurge | None = None
        # A loop that ended (an error it does not retry) leaves the process up and healthy
        # while its work stops: operators see it here (alert BackgroundLoopStopped).
        self.meter.create_observable_gauge(
            "onestop.background_loop.running",
            callbacks=[self._observe_loops],
            unit="{loop}",
            description="1 while the background loop runs, 0 once it has ended, by loop",
        )

    def run_in_background(
        self, loop: Callable[[], Coroutine[Any, Any, None]], name: str | None = None
    ) -> None:
        """A loop the service runs once the database is ready, cancelled at stop; `name`
        (its qualified name by default) labels it in onestop_background_loop_running."""
        self._background.append((name or str(getattr(loop, "__qualname__", loop)), loop))

    def _observe_loops(self, _: CallbackOptions) -> Iterable[Observation]:
        for task in list(self._background_tasks):
            yield Observation(0 if task.done() else 1, {"onestop.loop": task.get_name()})

    def enforce_retention(
        self,
        clock: Callable[[], datetime],
        *,
        erase_personal_data: PersonalDataEraser | None = None,
    ) -> RetentionPurge:
        """Purge published outbox and processed inbox rows, and erase the service's personal
        data (if it keeps any) after the dossier's end, in the background."""
        purge = RetentionPurge(
            lambda: self.pool,
            self.settings,
            clock,
            self.meter,
            erase_personal_data=erase_personal_data,
            max_backoff=self.settings.retry_max_backoff_seconds,
        )
        self.run_in_background(purge.run, "retention")
        self.retention = purge
        return purge

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name} is not started: no database pool yet")
        return self._pool

    def unit_of_work(self, kind: type[U]) -> Callable[[], U]:
        """A factory of the service's unit of work on this runtime's pool and outbox."""
        tracer = self.telemetry.tracer("onestop.database")
        return lambda: kind(
            self.pool,
            source=self.source,
            notify_channel=self.notify_channel,
            schema=self.schema,
            tracer=tracer,
        )

    def consume(
        self,
        *,
        group_id: str,
        topics: tuple[str, ...],
        handlers: Mapping[type[Event], Handler],
        unit_of_work: Callable[[], UnitOfWork],
    ) -> EventConsumer:
        consumer = EventConsumer(
            group_id=self.namespace + group_id,
            topics=tuple(self.namespace + topic for topic in topics),
            handlers=handlers,
            unit_of_work=unit_of_work,
            publisher=self.publisher,
            max_backoff=self.settings.retry_max_backoff_seconds,
            metrics=ConsumerMetrics(self.meter),
            dead_letters=dead_letter_topic(group_id),
            max_parking=timedelta(seconds=self.settings.parking_max_wait_seconds),
            parking_interval=self.settings.parking_retry_interval_seconds,
            tracer=self.telemetry.tracer("onestop.consumer"),
            batch_max_records=self.settings.consumer_batch_max_records,
            batch_timeout_ms=self.settings.consumer_batch_timeout_ms,
        )
        subscriber = subscribe(self.broker, consumer)
        self.consumers.append(consumer)
        self.run_in_background(consumer.run_parking_lot, f"parking-lot {group_id}")
        self.run_in_background(
            lambda: refresh_lag_forever(subscriber, consumer), f"consumer-lag {group_id}"
        )
        return consumer

    async def start(self) -> None:
        """Wait for PostgreSQL (the service cannot work without it), migrate, then connect to
        Kafka in the background: an unreachable broker delays publishing, it never blocks
        the service from accepting work into its outbox."""
        pool = await retry_forever(
            lambda: db.create_pool(
                str(self.settings.database_url),
                self.schema,
                max_size=self.settings.database_pool_size,
            ),
            what=f"{self.name} connecting to PostgreSQL",
            max_backoff=self.settings.retry_max_backoff_seconds,
        )
        self._pool = pool
        try:
            await db.migrate(pool, self.schema, self._migrations)
        except BaseException:
            # The service stops here (a schema not provisioned, say): nothing is left open.
            self._pool = None
            await pool.close()
            raise
        self._relay = OutboxRelay(
            self._pool,
            self.publisher,
            schema=self.schema,
            notify_channel=self.notify_channel,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_seconds,
            max_backoff=self.settings.retry_max_backoff_seconds,
            meter=self.meter,
        )
        self._broker_task = asyncio.create_task(self._start_broker(), name=f"{self.name}-broker")
        self._background_tasks = [
            asyncio.create_task(loop(), name=name) for name, loop in self._background
        ]

    async def _start_broker(self) -> None:
        written = [
            self.namespace + topic
            for topic in (
                str(self.topic),
                *map(str, self.restricted_topics),
                *(c.dead_letter_topic for c in self.consumers),
            )
        ]
        await retry_forever(
            lambda: ensure_topics(
                self.settings.kafka_connection(),
                written,
                partitions=self.settings.kafka_partitions,
                replication_factor=self.settings.kafka_replication_factor,
            ),
            what=f"{self.name} creating its topics",
            max_backoff=self.settings.retry_max_backoff_seconds,
        )
        read = sorted({topic for consumer in self.consumers for topic in consumer.topics})
        await retry_forever(
            lambda: require_topics(self.settings.kafka_connection(), read),
            what=f"{self.name} waiting for the topics it reads",
            max_backoff=self.settings.retry_max_backoff_seconds,
        )
        for connect in (self.publisher.start, self.broker.start):
            await retry_forever(
                connect,
                what=f"{self.name} connecting to Kafka",
                max_backoff=self.settings.retry_max_backoff_seconds,
            )
        assert self._relay is not None
        await self._relay.start()
        self._broker_started.set()
        logger.info("service started", extra={"service": self.name})

    async def stop(self) -> None:
        """Each step is bounded: a broker or database that does not answer must not keep the
        service from stopping (what is not committed is redelivered after a restart)."""
        tasks = [t for t in (*self._background_tasks, self._broker_task) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
            for task in pending:
                logger.warning(
                    "a background task did not stop",
                    extra={
                        "task": getattr(task.get_coro(), "__qualname__", task.get_name()),
                        "at": [f"{f.f_code.co_name}:{f.f_lineno}" for f in task.get_stack()],
                    },
                )
        if self._relay is not None:
            await _bounded("outbox relay", self._relay.stop())
        await _bounded("Kafka consumers", self.broker.stop())
        await _bounded("Kafka producer", self.publisher.stop())
        if self._pool is not None:
            if not await _bounded("database pool", self._pool.close()):
                self._pool.terminate()
            self._pool = None
        self.telemetry.tracer_provider.force_flush(timeout_millis=int(STOP_TIMEOUT_SECONDS * 1000))

    async def is_ready(self) -> dict[str, bool]:
        database = False
        if self._pool is not None:
            with contextlib.suppress(Exception):
                database = await asyncio.wait_for(self._pool.fetchval("SELECT true"), 2.0)
        kafka = False
        if self._broker_started.is_set():
            with contextlib.suppress(Exception):
                kafka = await self.broker.ping(timeout=2.0)
        return {"database": bool(database), "kafka": bool(kafka)}

    def http_app(self, **fastapi_options: Any) -> FastAPI:
        """A FastAPI app whose lifespan starts and stops this runtime, with health endpoints."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            configure_logging(self.name)
            await self.start()
            try:
                yield
            finally:
                await self.stop()
                flush_repeats()

        app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, **fastapi_options)
        serve_docs(app)
        app.state.runtime = self
        install_problem_handlers(app)
        document_framework_statuses(app)
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.telemetry.tracer_provider,
            meter_provider=self.telemetry.meter_provider,
            excluded_urls="healthz,readyz,metrics",
            exclude_spans=["receive", "send"],
        )

        @app.get(
            "/metrics",
            tags=["health"],
            summary="Metrics for Prometheus to scrape",
            response_class=PrometheusText,
            responses=PROMETHEUS_RESPONSE,
        )
        async def metrics() -> PrometheusText:
            return PrometheusText(generate_latest())

        @app.get("/healthz", tags=["health"], summary="The process is alive")
        async def healthz() -> Liveness:
            return Liveness(status="ok", service=self.name)

        @app.get(
            "/readyz",
            tags=["health"],
            summary="PostgreSQL and Kafka are reachable",
            responses={503: {"model": Readiness, "description": "Not ready: which check failed"}},
        )
        async def readyz(response: Response) -> Readiness:
            checks = await self.is_ready()
            ready = all(checks.values())
            response.status_code = 200 if ready else 503
            return Readiness(status="ready" if ready else "not ready", checks=checks)

        return app


class Liveness(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]


async def _bounded(what: str, step: Awaitable[object]) -> bool:
    """Run one step of stopping for at most STOP_TIMEOUT_SECONDS; False if it did not end."""
    try:
        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
            await step
        return True
    except TimeoutError:
        logger.warning("stopping took too long; moving on", extra={"step": what})
    except Exception as error:
        logger.warning("stopping failed", extra={"step": what, "error": type(error).__name__})
    return False
