"""Processes that the reliability tests kill at a precise moment, with SIGKILL (no cleanup).

python -m tests.integration.workers routing-dies-after-commit N
python -m tests.integration.workers relay-dies-before-publish|relay-dies-after-publish SCHEMA
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from opentelemetry.trace import NoOpTracer

from services.routing.main import create_app as create_routing
from services.routing.repository import RoutingUnitOfWork
from services.routing.settings import RoutingSettings
from shared import db
from shared.messaging.outbox import OutboxRelay, OutboxRow
from shared.messaging.publisher import KafkaPublisher


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def routing_dies_after_commit(commits_before_death: int) -> None:
    class DyingUnitOfWork(RoutingUnitOfWork):
        commits = 0

        async def commit(self) -> None:
            await super().commit()  # the database has it ...
            DyingUnitOfWork.commits += 1
            if DyingUnitOfWork.commits >= commits_before_death:
                die()  # ... and the offset is never committed

    app = create_routing(RoutingSettings(), unit_of_work=DyingUnitOfWork)  # type: ignore[call-arg]
    async with app.router.lifespan_context(app):
        await asyncio.sleep(120)


async def relay_dies(schema: str, moment: str) -> None:
    settings = RoutingSettings()  # type: ignore[call-arg]
    pool = await db.create_pool(str(settings.database_url), schema)
    publisher = KafkaPublisher(
        settings.kafka_connection(),
        client_id=f"dying-relay-{schema}",
        tracer=NoOpTracer(),
        namespace=settings.kafka_namespace,
    )
    await publisher.start()

    class DyingRelay(OutboxRelay):
        async def _publish(self, rows: Sequence[OutboxRow]) -> None:
            if moment == "before":
                die()  # rows are committed in the database, nothing is on Kafka
            await super()._publish(rows)
            die()  # every row is acknowledged by Kafka, none is marked sent

    relay = DyingRelay(pool, publisher, schema=schema, notify_channel=f"{schema}_outbox")
    await relay.publish_pending()
    raise SystemExit("the relay found nothing to publish")


if __name__ == "__main__":
    mode, argument = sys.argv[1], sys.argv[2]
    if mode == "routing-dies-after-commit":
        asyncio.run(routing_dies_after_commit(int(argument)))
    elif mode in ("relay-dies-before-publish", "relay-dies-after-publish"):
        asyncio.run(relay_dies(argument, mode.split("-")[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
