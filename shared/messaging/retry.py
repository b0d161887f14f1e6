"""What counts as a transient failure, and retrying it with backoff until it succeeds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka import errors as kafka_errors
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from shared.messaging.loops import cancelling

logger = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused or reset connections
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InternalClientError,  # a connection that broke under the client
    asyncpg.exceptions.OperatorInterventionError,  # server shutting down or starting
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.UnknownTopicOrPartitionError,
    kafka_errors.NotEnoughReplicasError,
    # An idempotent producer out of step with a restarted broker: the publisher replaces it.
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.ProducerFenced,
)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, _TRANSIENT) or bool(getattr(error, "retriable", False))


async def retry_forever(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_backoff: float,
    retry_on: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Run `operation` until it succeeds, backing off exponentially (with jitter) between tries.

    Errors outside `retry_on` propagate at once."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s failed, retrying",
            what,
            extra={
                "operation": what,  # one kind per operation for the log's repeat filter
                "error": type(error).__name__,
                "attempt": state.attempt_number,
                "retry_in_s": round(state.upcoming_sleep, 2),
            },
        )

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(lambda error: retry_on(error) and not cancelling()),
        wait=wait_exponential_jitter(multiplier=0.1, max=max_backoff, jitter=max_backoff / 10),
        before_sleep=log_retry,
        reraise=True,
    ):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: retries never stop")
