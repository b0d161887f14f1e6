"""Intake's HTTP API: the counters post dossiers, counters and processing units act on them,
operators and the public read timelines, the lateness board and the QĐ 766 indicators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from opentelemetry import trace

from services.intake.commands import Commands
from services.intake.handlers import Intake, receive_dossier
from services.intake.reports import Reports
from services.intake.schemas import (
    CommandResult,
    DossierSubmission,
    DossierView,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    Problem,
    ReasonBody,
    Receipt,
    ResultReadyBody,
    SupplementRequestBody,
    UnitReasonBody,
)
from shared.api import INSTANT_FORMAT, STORAGE_UNAVAILABLE, Instant
from shared.telemetry import DossierAttribute

DOSSIER_CODE = r"^[0-9A-Z.]{3,32}-\d{6}-\d{4}$"
NO_SUCH_DOSSIER: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such dossier"},
    **STORAGE_UNAVAILABLE,
}


def build_router(intake: Intake) -> APIRouter:
    """Receiving dossiers and reading one."""
    router = APIRouter(prefix="/v1", tags=["dossiers"])
    error_responses: dict[int | str, dict[str, object]] = {
        200: {
            "model": Receipt,
            "description": "A retry with the same Idempotency-Key: the"
            " receipt issued the first time",
        },
        400: {"model": Problem, "description": "The body is not valid JSON"},
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
            Header(
                min_length=1,
                max_length=200,
                description="Repeat it on a retry to get the same receipt",
            ),
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
        responses=NO_SUCH_DOSSIER,
        summary="The dossier's current state and what routing, deadline and notifier did",
    )
    async def get_dossier(code: Annotated[str, Path(pattern=DOSSIER_CODE)]) -> DossierView:
        trace.get_current_span().set_attribute(DossierAttribute.CODE, code)
        async with intake.unit_of_work() as uow:
            view = await uow.dossiers.view(code)
        if view is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dossier with code {code}")
        return view

    return router


CodePath = Annotated[str, Path(pattern=DOSSIER_CODE)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    **NO_SUCH_DOSSIER,
    409: {"model": Problem, "description": "Not allowed in the dossier's current state"},
}


def build_lifecycle_router(commands: Commands) -> APIRouter:
    """Each call is one lifecycle event; an illegal transition is a 409 naming the state."""
    router = APIRouter(prefix="/v1/dossiers/{code}", tags=["lifecycle"], responses=CONFLICT)

    @router.post(
        "/hand-offs",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Ask to hand the dossier to the next unit of its process",
        description="Routing, which owns the plan and knows who holds the dossier, records the"
        " hand-off or rejects it: GET the dossier (`routing.current_unit_code`,"
        " `routing.last_rejected_hand_off`) or read `HandOffRecorded` / `HandOffRejected`,"
        " whose `causationid` is this request's `event_id`.",
    )
    async def hand_off(code: CodePath, body: HandOffBody) -> CommandResult:
        return await commands.hand_off(code, body)

    @router.post(
        "/supplement-requests",
        summary="Request a supplement (Mẫu 02): the clock pauses; once per dossier",
    )
    async def request_supplement(code: CodePath, body: SupplementRequestBody) -> CommandResult:
        return await commands.request_supplement(code, body)

    @router.post("/supplements", summary="The supplement was received: the clock resumes")
    async def receive_supplement(code: CodePath) -> CommandResult:
        return await commands.receive_supplement(code)

    @router.post(
        "/financial-obligations", summary="Request fees or taxes: the clock pauses until paid"
    )
    async def request_financial_obligation(
        code: CodePath, body: FinancialObligationBody
    ) -> CommandResult:
        return await commands.request_financial_obligation(code, body)

    @router.post("/financial-obligations/fulfilment", summary="Paid: the clock resumes")
    async def fulfil_financial_obligation(code: CodePath) -> CommandResult:
        return await commands.fulfil_financial_obligation(code)

    @router.post(
        "/extension-requests",
        summary="The holding unit will miss the due date: an apology (Mẫu 04) is issued",
    )
    async def request_extension(code: CodePath, body: ExtensionRequestBody) -> CommandResult:
        return await commands.request_extension(code, body)

    @router.post(
        "/result",
        status_code=status.HTTP_202_ACCEPTED,
        summary="The last unit hands the result to the desk",
        description="Routing records it (the status becomes 9, processed) if the unit holds"
        " the last step of the process, or rejects it, naming why (as for hand-offs).",
    )
    async def mark_result_ready(code: CodePath, body: ResultReadyBody) -> CommandResult:
        return await commands.mark_result_ready(code, body)

    @router.post("/return", summary="The result was returned to the citizen")
    async def return_result(code: CodePath) -> CommandResult:
        return await commands.return_result(code)

    @router.post("/withdrawal", summary="The citizen withdrew the dossier")
    async def withdraw(code: CodePath, body: ReasonBody) -> CommandResult:
        return await commands.withdraw(code, body)

    @router.post("/refusal", summary="Refuse the dossier with reasons (Mẫu 03)")
    async def refuse(code: CodePath, body: UnitReasonBody) -> CommandResult:
        return await commands.refuse(code, body)

    @router.post("/stop", summary="Stop processing (Mẫu 05)")
    async def stop_processing(code: CodePath, body: UnitReasonBody) -> CommandResult:
        return await commands.stop_processing(code, body)

    return router


PERIOD_START = Query(alias="from", description=f"The period's start: {INSTANT_FORMAT}")
PERIOD_END = Query(alias="to", description=f"The period's end (default: now): {INSTANT_FORMAT}")


def build_reports_router(reports: Reports) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["reports"], responses=STORAGE_UNAVAILABLE)

    @router.get(
        "/dossiers/{code}/timeline",
        responses=NO_SUCH_DOSSIER,
        summary="Every event of the dossier, who held it and for how long (Mẫu 06)",
    )
    async def timeline(code: CodePath) -> dict[str, Any]:
        found = await reports.timeline(code)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dossier with code {code}")
        return found

    @router.get(
        "/reports/lateness",
        summary="The lateness board: per unit and per official, for a period (default: 30 days)",
    )
    async def lateness(
        start: Annotated[Instant | None, PERIOD_START] = None,
        end: Annotated[Instant | None, PERIOD_END] = None,
    ) -> dict[str, Any]:
        period = reports.period(start, end)
        return await reports.lateness(*period)

    @router.get(
        "/reports/indicators",
        summary="QĐ 766 progress indicators per unit, for a period (default: 30 days)",
    )
    async def indicators(
        start: Annotated[Instant | None, PERIOD_START] = None,
        end: Annotated[Instant | None, PERIOD_END] = None,
    ) -> dict[str, Any]:
        period = reports.period(start, end)
        return await reports.indicators(*period)

    return router
