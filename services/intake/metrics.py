"""Indicators operators watch: dossiers in progress and overdue at each unit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo

from opentelemetry.metrics import Meter, Observation

from services.intake.domain import MAX_DAILY_SEQUENCE
from services.intake.repository import DailySequences, IntakeUnitOfWork, UnitWorkload
from shared.messaging.loops import stop_if_cancelled
from shared.messaging.retry import is_transient

logger = logging.getLogger(__name__)


class WorkloadGauges:
    """Refreshed from the database every `interval` seconds, read by the metric readers."""

    def __init__(
        self,
        meter: Meter,
        unit_of_work: Callable[[], IntakeUnitOfWork],
        clock: Callable[[], datetime],
        interval: float = 15.0,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._interval = interval
        self._workload: list[UnitWorkload] = []
        meter.create_observable_gauge(
            "onestop.dossiers.in_progress",
            callbacks=[lambda _: self._observe("in_progress")],
            unit="{dossier}",
            description="Dossiers being processed, by the unit that holds them",
        )
        meter.create_observable_gauge(
            "onestop.dossiers.overdue",
            callbacks=[lambda _: self._observe("overdue")],
            unit="{dossier}",
            description="Dossiers past their due time, by the unit that holds them",
        )

    def _observe(self, field: str) -> Iterable[Observation]:
        for workload in self._workload:
            yield Observation(getattr(workload, field), {"onestop.unit": workload.unit_code})

    async def refresh(self) -> None:
        async with self._unit_of_work() as uow:
            self._workload = await uow.dossiers.workload_by_unit(self._clock())

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:
                stop_if_cancelled()
                if not is_transient(error):
                    raise
                logger.warning(
                    "workload gauges not refreshed", extra={"error": type(error).__name__}
                )
            await asyncio.sleep(self._interval)


def observe_daily_sequences(
    meter: Meter, sequences: DailySequences, clock: Callable[[], datetime], tz: tzinfo
) -> None:
    """How much of today's code sequence each unit has used (0 to 1): at 1 its counters get
    the 409 daily_sequence_exhausted until midnight (alert DailySequenceNearlyExhausted)."""

    def observe(_: object) -> Iterable[Observation]:
        today = clock().astimezone(tz).date()
        for unit, (day, highest) in list(sequences.highest.items()):
            used = highest / MAX_DAILY_SEQUENCE if day == today else 0.0  # a new day: none used
            yield Observation(used, {"onestop.unit": unit})

    meter.create_observable_gauge(
        "onestop.intake.daily_sequence.used",
        callbacks=[observe],
        unit="1",
        description="Share of today's dossier codes (NNNN of 9999) a unit has used, as taken"
        " by this intake process",
    )
