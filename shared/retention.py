"""Retention, enforced: published outbox rows and processed inbox rows are purged after a
configurable period, and a service's copy of personal data is erased a configurable period
after the dossier's end (result returned, withdrawn, refused, stopped).

One background loop per service, in batches (one short transaction each, so it never holds
locks for long), cutoffs taken from the service's clock. It counts what it purged in a
metric and logs counts only, never what was erased."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
from opentelemetry.metrics import Meter
from pydantic import Field
from pydantic_settings import BaseSettings

from shared.messaging.loops import stop_if_cancelled, wake_or_poll
from shared.messaging.retry import is_transient

logger = logging.getLogger(__name__)

DAY = 86_400.0

# (connection, cutoff, batch size) -> rows erased: the dossiers that ended before `cutoff`,
# at most `batch size` of them, erased in the caller's transaction.
PersonalDataEraser = Callable[[asyncpg.Connection, datetime, int], Awaitable[int]]


class RetentionSettings(BaseSettings):
    """How long each kind of row is kept (environment variables, checked at start)."""

    outbox_retention_seconds: float = Field(
        default=DAY,
        gt=0,
        description="a published outbox row is deleted this long after it was published. A"
        " published row is never read again (the relay only sends rows not yet marked; a crash"
        " before the mark resends rows still unmarked), so any period is safe; a day leaves"
        " operators what was sent recently. Restricted payloads (the applicant) live this long",
    )
    inbox_retention_seconds: float = Field(
        default=14 * DAY,
        ge=DAY,
        description="a processed inbox row (the event id that makes a redelivery a no-op) is"
        " deleted this long after it was applied. A message can be redelivered as long as it"
        " is on its topic (Kafka keeps it 7 days by default, and a consumer group whose"
        " offsets were lost reads from the start): keep this longer than the topics' retention."
        " At least a day, since a consumer stopped mid-message redelivers when it restarts",
    )
    personal_data_retention_days: float = Field(
        default=365,
        gt=0,
        description="a dossier's personal data (applicant, letters) is erased this many days"
        " after the dossier's end: result returned, withdrawn, refused or stopped. The dossier"
        " and its non-personal facts stay",
    )
    retention_purge_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often the purge runs"
    )
    retention_purge_batch_size: int = Field(
        default=500, gt=0, description="rows per purge transaction"
    )


class RetentionPurge:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        settings: RetentionSettings,
        clock: Callable[[], datetime],
        meter: Meter,
        *,
        erase_personal_data: PersonalDataEraser | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self._erase = erase_personal_data
        self._max_backoff = max_backoff
        self.wakeup = asyncio.Event()  # tests and operators may ask for a round now
        self._purged = meter.create_counter(
            "onestop.retention.purged",
            unit="{row}",
            description="Rows purged by retention: published outbox rows, processed inbox"
            " rows, dossiers whose personal data was erased (kind)",
        )

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.purge_once()
                failures = 0
                interval = self._settings.retention_purge_interval_seconds
            except Exception as error:
                stop_if_cancelled()
                if not is_transient(error):
                    raise
                failures += 1
                interval = min(self._max_backoff, 2.0**failures)
                logger.warning(
                    "retention purge failed; retrying", extra={"error": type(error).__name__}
                )
            await wake_or_poll(self.wakeup, interval)

    async def purge_once(self) -> dict[str, int]:
        """One round: every kind, batch after batch until nothing more is due."""
        now = self._clock()
        settings = self._settings
        outbox_cutoff = now - timedelta(seconds=settings.outbox_retention_seconds)
        inbox_cutoff = now - timedelta(seconds=settings.inbox_retention_seconds)
        purged = {
            "outbox": await self._in_batches(
                lambda db, limit: _count(
                    db.execute(
                        "DELETE FROM outbox WHERE position IN (SELECT position FROM outbox"
                        " WHERE published_at < $1 ORDER BY position LIMIT $2)",
                        outbox_cutoff,
                        limit,
                    )
                )
            ),
            "inbox": await self._in_batches(
                lambda db, limit: _count(
                    db.execute(
                        "DELETE FROM inbox WHERE event_id IN (SELECT event_id FROM inbox"
                        " WHERE applied_at < $1 LIMIT $2)",
                        inbox_cutoff,
                        limit,
                    )
                )
            ),
        }
        if self._erase is not None:
            erase = self._erase
            cutoff = now - timedelta(days=settings.personal_data_retention_days)
            purged["personal_data"] = await self._in_batches(
                lambda db, limit: erase(db, cutoff, limit)
            )
        for kind, count in purged.items():
            if count:
                self._purged.add(count, {"kind": kind})
        if any(purged.values()):
            logger.info(
                "retention purge", extra={f"{kind}_purged": n for kind, n in purged.items()}
            )
        return purged

    async def _in_batches(self, batch: Callable[[asyncpg.Connection, int], Awaitable[int]]) -> int:
        limit = self._settings.retention_purge_batch_size
        total = 0
        while True:
            async with self._pool().acquire() as connection, connection.transaction():
                done = await batch(connection, limit)
            total += done
            if done < limit:
                return total


async def _count(status: Awaitable[str]) -> int:
    """Rows affected, from a command status such as 'DELETE 12'."""
    return int((await status).rsplit(" ", 1)[-1])
