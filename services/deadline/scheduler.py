"""Detects lateness the moment it happens, even when no event arrives: a loop over the
indexed due columns. Several instances may run: each claims rows with FOR UPDATE SKIP LOCKED,
so a dossier is detected once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.trace import Tracer

from services.deadline.domain import (
    SupplementMissedPolicy,
    consultation_reply_overdue,
    supplement_missed,
)
from services.deadline.repository import DeadlineUnitOfWork, Detection
from shared.events import (
    ConsultationReplyOverdueDetected,
    DueSoonDetected,
    Event,
    OverdueDetected,
    PromiseBrokenDetected,
    PromisedDateDueSoonDetected,
    StepOverdueDetected,
    SupplementDeadlineMissed,
)
from shared.messaging.loops import stop_if_cancelled
from shared.messaging.retry import is_transient
from shared.telemetry import DossierAttribute, links_to

logger = logging.getLogger(__name__)
BATCH = 500  # detections per claim and transaction: a backlog falls due at once


class LatenessScheduler:
    def __init__(
        self,
        unit_of_work: Callable[[], DeadlineUnitOfWork],
        clock: Callable[[], datetime],
        tracer: Tracer,
        interval: float = 1.0,
        supplement_policy: SupplementMissedPolicy = SupplementMissedPolicy.ALERT,
        meter: Meter | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._tracer = tracer
        self._interval = interval
        self._supplement_policy = supplement_policy
        self._detected = (meter or NoOpMeter("none")).create_counter(
            "onestop.lateness.detected",
            unit="{detection}",
            description="Lateness detections committed, by kind (due_soon, overdue, ...) and"
            " the unit that holds the dossier",
        )

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as error:
                stop_if_cancelled()
                if not is_transient(error):
                    logger.exception("lateness scan failed")
                else:
                    logger.warning("lateness scan postponed", extra={"error": type(error).__name__})
            await asyncio.sleep(self._interval)

    async def tick(self) -> int:
        """One scan at the clock's `now`; returns how many detections it made."""
        now = self._clock()
        found = 0
        for claim, build in (
            (lambda uow: uow.clocks.claim_due_soon(now, BATCH), _due_soon),
            (lambda uow: uow.clocks.claim_overdue(now, BATCH), _overdue),
            (lambda uow: uow.clocks.claim_step_overdue(now, BATCH), _step_overdue),
            (lambda uow: uow.clocks.claim_promise_due_soon(now, BATCH), _promise_due_soon),
            (lambda uow: uow.clocks.claim_promise_broken(now, BATCH), _promise_broken),
            (lambda uow: uow.clocks.claim_supplement_missed(now, BATCH), self._supplement_missed),
            (lambda uow: uow.clocks.claim_consultation_overdue(now, BATCH), _reply_overdue),
        ):
            while batch := await self._detect(claim, build, now):
                found += batch
                if batch < BATCH:
                    break
        return found

    async def _detect(
        self,
        claim: Callable[[DeadlineUnitOfWork], Awaitable[list[Detection]]],
        build: Callable[[Detection, datetime], Event],
        now: datetime,
    ) -> int:
        counted: list[dict[str, str]] = []
        async with self._unit_of_work() as uow:
            detections = await claim(uow)
            for detection in detections:
                event = build(detection, now)
                kind = _KINDS.get(type(event), type(event).__name__)
                counted.append({"kind": kind, "onestop.unit": detection.unit_code})
                with self._tracer.start_as_current_span(
                    f"deadline detect {event.TYPE.rsplit('.', 2)[-2]}",
                    context=otel_context.Context(),  # a trace of its own ...
                    links=links_to(detection.submission_traceparent),  # ... linked back
                    attributes={
                        DossierAttribute.CODE: detection.dossier_code,
                        DossierAttribute.CURRENT_UNIT: detection.unit_code,
                    },
                ):
                    uow.emit(event, occurred_at=now)
            await uow.commit()
        for attributes in counted:  # once committed: a rolled-back claim is claimed again
            self._detected.add(1, attributes)
        return len(detections)

    def _supplement_missed(self, detection: Detection, now: datetime) -> Event:
        missed = supplement_missed(
            dossier_code=detection.dossier_code,
            unit_code=detection.unit_code,
            supplement_due_at=detection.due_at,
            now=now,
            policy=self._supplement_policy,
        )
        assert missed is not None  # the claim took only due times before `now`
        return missed


_KINDS: dict[type[Event], str] = {
    DueSoonDetected: "due_soon",
    OverdueDetected: "overdue",
    StepOverdueDetected: "step_overdue",
    PromisedDateDueSoonDetected: "promised_date_due_soon",
    PromiseBrokenDetected: "promise_broken",
    SupplementDeadlineMissed: "supplement_missed",
    ConsultationReplyOverdueDetected: "consultation_reply_overdue",
}


def _due_soon(detection: Detection, now: datetime) -> Event:
    return DueSoonDetected(
        dossier_code=detection.dossier_code,
        responsible_unit_code=detection.unit_code,
        due_at=detection.due_at,
        detected_at=now,
    )


def _overdue(detection: Detection, now: datetime) -> Event:
    return OverdueDetected(
        dossier_code=detection.dossier_code,
        responsible_unit_code=detection.unit_code,
        due_at=detection.due_at,
        detected_at=now,
    )


def _step_overdue(detection: Detection, now: datetime) -> Event:
    assert detection.step_sequence is not None
    return StepOverdueDetected(
        dossier_code=detection.dossier_code,
        step_sequence=detection.step_sequence,
        unit_code=detection.unit_code,
        step_due_at=detection.due_at,
        detected_at=now,
    )


def _reply_overdue(detection: Detection, now: datetime) -> Event:
    assert detection.step_sequence is not None  # the consultation's id
    overdue = consultation_reply_overdue(
        dossier_code=detection.dossier_code,
        consultation_id=detection.step_sequence,
        unit_code=detection.unit_code,
        reply_due_at=detection.due_at,
        now=now,
    )
    assert overdue is not None  # the claim took only due times before `now`
    return overdue


def _promise_due_soon(detection: Detection, now: datetime) -> Event:
    return PromisedDateDueSoonDetected(
        dossier_code=detection.dossier_code,
        unit_code=detection.unit_code,
        promised_at=detection.due_at,
        detected_at=now,
    )


def _promise_broken(detection: Detection, now: datetime) -> Event:
    return PromiseBrokenDetected(
        dossier_code=detection.dossier_code,
        unit_code=detection.unit_code,
        promised_at=detection.due_at,
        detected_at=now,
    )
