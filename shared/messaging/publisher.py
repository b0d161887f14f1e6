"""Publishing to Kafka: an idempotent producer (acks=all, so a retried send is never written
twice) that carries W3C trace context in the headers, and that replaces itself when the broker
answers with an error an idempotent producer cannot recover from (after a broker restart, say)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from shared.messaging.connection import KafkaConnection
from shared.messaging.envelope import WireMessage

logger = logging.getLogger(__name__)

# The producer's idempotence state no longer matches the broker's: only a new producer helps.
_FATAL_TO_PRODUCER = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.ProducerFenced,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.ProducerClosed,
)


class KafkaPublisher:
    def __init__(
        self,
        connection: KafkaConnection,
        *,
        client_id: str,
        tracer: Tracer,
        namespace: str = "",
    ) -> None:
        self._connection = connection
        self._client_id = client_id
        self._tracer = tracer
        self._namespace = namespace
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **self._connection.client_options(),
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=15_000,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def send(self, topic: str, message: WireMessage) -> Awaitable[Any]:
        """Hand the message to the producer; the returned awaitable resolves on broker ack."""
        if self._producer is None:
            raise kafka_errors.KafkaConnectionError("the producer is not started")
        destination = self._namespace + topic
        with self._tracer.start_as_current_span(
            f"{destination} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation": "publish",
                "messaging.destination.name": destination,
            },
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            headers = {**message.headers, **{k: v.encode() for k, v in carrier.items()}}
            delivered: Awaitable[Any] = await self._producer.send(
                destination,
                value=message.value,
                key=message.key.encode("utf-8"),
                headers=list(headers.items()),
            )
            return delivered

    async def recover(self, error: BaseException) -> None:
        """After a failed send: replace the producer if its idempotence state is lost."""
        if isinstance(error, _FATAL_TO_PRODUCER):
            logger.warning("replacing the Kafka producer", extra={"error": type(error).__name__})
            await self.stop()
            await self.start()
