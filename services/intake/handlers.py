"""Intake's handlers: the counters' HTTP API, and the projection of what the other services
did with each dossier (so that GET /v1/dossiers/{code} shows it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Path, Request, Response, status
from opentelemetry import trace

from services.intake.domain import (
    dossier_code,
    issue_receipt,
    received_event,
    resolve,
)
from services.intake.repository import InMemoryIntakeUnitOfWork, IntakeUnitOfWork
from services.intake.schemas import DossierSubmission, DossierView, Problem, Receipt, StatusOut
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from shared.events import (
    ApologyObligationRecorded,
    DossierClockStarted,
    DossierRouted,
    DossierStatus,
    Event,
)
from shared.messaging.consumer import Handler
from shared.telemetry import DossierAttribute, annotate_current_span, current_trace_id

UnitOfWorkFactory = Callable[[], IntakeUnitOfWork | InMemoryIntakeUnitOfWork]


@dataclass(frozen=True)
class Intake:
    catalog: Catalog
    calendar: WorkingCalendar
    unit_of_work: UnitOfWorkFactory
    clock: Callable[[], datetime]


async def receive_dossier(
    intake: Intake, submission: DossierSubmission, idempotency_key: str | None
) -> tuple[Receipt, bool]:
    """Store the dossier and its DossierReceived event in one transaction.

    Returns the receipt and whether it is new: a repeated Idempotency-Key gets the receipt
    issued the first time, so a counter can retry a post without creating a second dossier."""
    procedure, unit = resolve(submission, intake.catalog)
    for _ in range(2):  # a concurrent post with the same key wins the race at most once
        async with intake.unit_of_work() as uow:
            if idempotency_key:
                existing = await uow.dossiers.code_for_idempotency_key(idempotency_key)
                if existing is not None:
                    stored = await uow.dossiers.get(existing)
                    assert stored is not None
                    annotate_current_span(stored.receipt)
                    return stored.receipt, False
            received_at = intake.clock()
            receipt_date = received_at.astimezone(intake.calendar.tz).date()
            sequence = await uow.dossiers.next_sequence(unit.code, receipt_date)
            receipt = issue_receipt(
                submission,
                code=dossier_code(unit.code, receipt_date, sequence),
                procedure=procedure,
                unit=unit,
                received_at=received_at,
                calendar=intake.calendar,
                trace_id=current_trace_id(),
            )
            try:
                await uow.dossiers.add(receipt, idempotency_key)
            except asyncpg.UniqueViolationError:
                continue
            event = received_event(receipt)
            annotate_current_span(event)
            uow.emit(event, occurred_at=received_at)
            await uow.commit()
            return receipt, True
    raise RuntimeError("idempotency key raced twice")  # pragma: no cover


async def on_dossier_routed(event: DossierRouted, uow: IntakeUnitOfWork) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(
        event.dossier_code, "routing", outcome, DossierStatus.PROCESSING
    )


async def on_clock_started(event: DossierClockStarted, uow: IntakeUnitOfWork) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(event.dossier_code, "deadline", outcome, None)


async def on_apology_obligation_recorded(
    event: ApologyObligationRecorded, uow: IntakeUnitOfWork
) -> None:
    outcome = event.model_dump(mode="json", exclude={"dossier_code"})
    await uow.dossiers.record_outcome(event.dossier_code, "notifier", outcome, None)


PROJECTIONS: dict[type[Event], Handler] = {
    DossierRouted: on_dossier_routed,
    DossierClockStarted: on_clock_started,
    ApologyObligationRecorded: on_apology_obligation_recorded,
}

DOSSIER_CODE = r"^[0-9A-Z.]{3,32}-\d{6}-\d{4}$"


def build_router(intake: Intake) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["dossiers"])
    error_responses: dict[int | str, dict[str, object]] = {
        400: {"model": Problem, "description": "The body is not valid JSON"},
        413: {"model": Problem, "description": "The body is larger than allowed"},
        422: {"model": Problem, "description": "A field is missing, malformed or unknown"},
        503: {"model": Problem, "description": "Storage is unavailable; retry with the same key"},
    }

    @router.post(
        "/dossiers",
        status_code=status.HTTP_201_CREATED,
        response_model=Receipt,
        responses=error_responses,
        summary="Receive a dossier at a one-stop counter and issue its receipt (Mẫu 01)",
    )
    async def post_dossier(
        submission: DossierSubmission,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(max_length=200, description="Repeat it on a retry to get the same receipt"),
        ] = None,
    ) -> Receipt:
        receipt, created = await receive_dossier(intake, submission, idempotency_key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = str(
            request.url_for("get_dossier", code=receipt.dossier_code)
        )
        return receipt

    @router.get(
        "/dossiers/{code}",
        response_model=DossierView,
        responses={404: {"model": Problem}},
        summary="The dossier's current state and what routing, deadline and notifier did",
    )
    async def get_dossier(code: Annotated[str, Path(pattern=DOSSIER_CODE)]) -> DossierView:
        trace.get_current_span().set_attribute(DossierAttribute.CODE, code)
        async with intake.unit_of_work() as uow:
            stored = await uow.dossiers.get(code)
        if stored is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dossier with code {code}")
        return DossierView(
            dossier_code=code,
            status=StatusOut.of(stored.status),
            receipt=stored.receipt,
            routing=stored.routing,
            deadline=stored.deadline,
            notifier=stored.notifier,
            updated_at=stored.updated_at,
        )

    return router
