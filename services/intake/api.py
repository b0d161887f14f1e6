"""Intake's HTTP API: the counters post dossiers, counters and processing units act on them,
operators and the public read timelines, the lateness board and the QĐ 766 indicators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
    status,
)
from fastapi.security import APIKeyHeader
from opentelemetry import trace

from services.intake.commands import Commands
from services.intake.domain import may_read, pin_matches
from services.intake.handlers import Intake, receive_dossier
from services.intake.reports import Reports
from services.intake.schemas import (
    EXAMPLE_SUBMISSION,
    CommandResult,
    ConsultationReplyBody,
    ConsultationRequestBody,
    ConsultationRequestResult,
    DossierSubmission,
    DossierView,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    Problem,
    ReasonBody,
    Receipt,
    SendBackBody,
    SupplementRequestBody,
)
from shared.access_log import PersonalDataAccess
from shared.api import INSTANT_FORMAT, STORAGE_UNAVAILABLE, Instant
from shared.auth import AUTH_RESPONSES, Authenticator, Forbidden, Principal, Role, Unauthenticated
from shared.events import DOSSIER_CODE_PATTERN
from shared.telemetry import DossierAttribute, current_trace_id

# The citizen's way in: the PIN printed on the receipt, with the dossier code.
LOOKUP_PIN = APIKeyHeader(
    name="X-Lookup-PIN",
    scheme_name="lookup-pin",
    description="The lookup PIN printed on the citizen's receipt: opens that dossier only.",
    auto_error=False,
)
CodePath = Annotated[str, Path(pattern=DOSSIER_CODE_PATTERN)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such dossier"},
    **STORAGE_UNAVAILABLE,
}


class DossierReader:
    """Who may read a dossier: operators; officials of a unit that received it, takes part
    in its process or is consulted on it; the citizen with the receipt's PIN. Reads of
    personal data are logged."""

    def __init__(self, intake: Intake, authenticator: Authenticator) -> None:
        self.intake = intake
        # Dependencies as defaults: FastAPI resolves (string) annotations in the module's
        # globals, where closure names do not exist.
        caller, pin_header = Depends(authenticator.optional), Security(LOOKUP_PIN)

        def dependency(*, personal: bool) -> Any:
            async def reader(
                code: CodePath,
                request: Request,
                principal: Principal | None = caller,
                pin: str | None = pin_header,
            ) -> DossierView:
                purpose = _operation(request) if personal else None
                return await self.read(code, principal, pin, logged_as=purpose)

            return reader

        self.personal_data = dependency(personal=True)  # the view: receipt with the applicant
        self.allowed = dependency(personal=False)  # only the right to read, e.g. the timeline

    async def read(
        self, code: str, principal: Principal | None, pin: str | None, *, logged_as: str | None
    ) -> DossierView:
        trace.get_current_span().set_attribute(DossierAttribute.CODE, code)
        if principal is None and not pin:
            raise Unauthenticated(
                "sign in, or give the lookup PIN printed on the receipt (header X-Lookup-PIN)"
            )
        async with self.intake.unit_of_work() as uow:
            view = await uow.dossiers.view(code)
            if principal is None:
                # One answer for an unknown code and a wrong PIN: walking codes reveals nothing.
                if view is None or not pin_matches(self.intake.lookup_pin_key, code, pin or ""):
                    raise HTTPException(
                        status.HTTP_404_NOT_FOUND, f"no dossier with code {code} and this PIN"
                    )
            elif view is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dossier with code {code}")
            elif not may_read(
                principal, _involved_units(view) | await uow.dossiers.consulted_units(code)
            ):
                raise Forbidden(
                    f"dossier {code} was neither received nor is processed by your unit"
                    f" ({principal.unit_code or 'none'}); operators read every dossier"
                )
            if logged_as is not None:
                await uow.access_log.record(
                    PersonalDataAccess.by(
                        principal,
                        dossier_code=code,
                        purpose=logged_as,
                        at=self.intake.clock(),
                        trace_id=current_trace_id(),
                    )
                )
                await uow.commit()
        return view


def _involved_units(view: DossierView) -> set[str]:
    units = {view.receipt.receiving_unit.code}
    if view.routing is not None:
        units.add(view.routing.competent_unit_code)
        units.update(step.unit_code for step in view.routing.steps if step.unit_code)
    return units


def _operation(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def build_router(intake: Intake, authenticator: Authenticator, reader: DossierReader) -> APIRouter:
    """Receiving dossiers and reading one."""
    router = APIRouter(prefix="/v1", tags=["dossiers"])
    error_responses: dict[int | str, dict[str, object]] = {
        200: {
            "model": Receipt,
            "description": "A retry with the same Idempotency-Key: the"
            " receipt issued the first time",
        },
        400: {"model": Problem, "description": "The body is not valid JSON"},
        413: {"model": Problem, "description": "The body is larger than allowed"},
        422: {
            "model": Problem,
            "description": "A field is missing, malformed or unknown, or the Idempotency-Key"
            " was first sent with another body",
        },
        409: {
            "model": Problem,
            "description": "daily_sequence_exhausted: the unit has issued all 9,999 dossier codes"
            " of the day (the code's NNNN); it receives again from midnight, Asia/Ho_Chi_Minh",
        },
        503: {"model": Problem, "description": "Storage is unavailable; retry with the same key"},
        **AUTH_RESPONSES,
    }
    counter_officer = authenticator.require(Role.COUNTER_OFFICER)
    readable_with_personal_data = Depends(reader.personal_data)

    @router.post(
        "/dossiers",
        status_code=status.HTTP_201_CREATED,
        response_model=Receipt,
        responses=error_responses,
        summary="Receive a dossier at a one-stop counter and issue its receipt (Mẫu 01)",
        description="For a counter officer: the receiving unit and officer are the token's.",
    )
    async def post_dossier(
        submission: Annotated[
            DossierSubmission,
            Body(
                openapi_examples={
                    "land_transfer": {
                        "summary": "Đăng ký biến động: chuyển nhượng quyền sử dụng đất",
                        "value": EXAMPLE_SUBMISSION,
                    }
                }
            ),
        ],
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=200,
                description="Repeat it, with the same body, on a retry to get the same receipt;"
                " keys are the caller's own",
            ),
        ] = None,
        counter: Principal = counter_officer,
    ) -> Receipt:
        receipt, created = await receive_dossier(intake, submission, counter, idempotency_key)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["Location"] = str(
            request.url_for("get_dossier", code=receipt.dossier_code)
        )
        return receipt

    @router.get(
        "/dossiers/{code}",
        response_model=DossierView,
        responses={**NOT_FOUND, **AUTH_RESPONSES},
        summary="The dossier's current state and what routing, deadline and notifier did",
        description="Operators; officials of a unit that received the dossier or takes part in"
        " its process; the citizen with the receipt's lookup PIN. Each read is recorded in the"
        " personal-data access log.",
        openapi_extra={"security": [{"keycloak": []}, {"lookup-pin": []}]},
    )
    async def get_dossier(view: DossierView = readable_with_personal_data) -> DossierView:
        return view

    return router


CONFLICT: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": Problem, "description": "Not allowed in the dossier's current state"},
    **AUTH_RESPONSES,
}


def build_lifecycle_router(commands: Commands, authenticator: Authenticator) -> APIRouter:
    """Each call is one lifecycle event; an illegal transition is a 409 naming the state. The
    unit is the caller's: the desk that received the dossier, or the unit holding it now."""
    router = APIRouter(prefix="/v1/dossiers/{code}", tags=["lifecycle"], responses=CONFLICT)
    # Defaults, not Annotated aliases: FastAPI resolves annotations in the module's globals.
    holder = authenticator.require(Role.UNIT_OFFICER, Role.UNIT_HEAD)
    desk = authenticator.require(Role.COUNTER_OFFICER)
    consulted = authenticator.require(Role.UNIT_OFFICER, Role.UNIT_HEAD)

    @router.post(
        "/hand-offs",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Ask to hand the dossier to the next unit of its process (the holding unit)",
        description="Routing, which owns the plan and knows who holds the dossier, records the"
        " hand-off or rejects it: GET the dossier (`routing.current_unit_code`,"
        " `routing.last_rejected_hand_off`) or read `HandOffRecorded` / `HandOffRejected`,"
        " whose `causationid` is this request's `event_id`.",
    )
    async def hand_off(
        code: CodePath, body: HandOffBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.hand_off(code, body, actor)

    @router.post(
        "/consultations",
        status_code=status.HTTP_201_CREATED,
        responses={
            422: {
                "model": Problem,
                "description": "A consulted unit is unknown, named twice, or the caller's own",
            }
        },
        summary="Ask other units for their opinion (lấy ý kiến; the holding unit)",
        description="One consultation per consulted unit, each with its reply due time in"
        " that unit's working days (default: the setting consultation_reply_working_days)."
        " The request letter is rendered and kept with the event `ConsultationRequested`;"
        " the deadline service reminds a unit that has not replied in time and alerts"
        " the operators.",
    )
    async def request_consultation(
        code: CodePath, body: ConsultationRequestBody, actor: Principal = holder
    ) -> ConsultationRequestResult:
        return await commands.request_consultation(code, body, actor)

    @router.post(
        "/consultations/{consultation_id}/reply",
        summary="A consulted unit replies with its opinion, once (an official of that unit)",
        description="403 for anyone but an officer or head of the consulted unit; 409 once"
        " replied or when the dossier has ended. A reply after its due time is marked late.",
    )
    async def reply_consultation(
        code: CodePath,
        consultation_id: Annotated[int, Path(ge=1, le=100_000)],
        body: ConsultationReplyBody,
        actor: Principal = consulted,
    ) -> CommandResult:
        return await commands.reply_consultation(code, consultation_id, body, actor)

    @router.post(
        "/send-backs",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Ask to send the dossier back to an earlier step of its process, with a reason"
        " (the holding unit)",
        description="Routing records the send-back (`DossierSentBack`: the earlier step's unit"
        " holds the dossier again, with a fresh allotted time) or rejects it"
        " (`SendBackRejected`, naming why): GET the dossier (`routing.last_send_back`).",
    )
    async def send_back(
        code: CodePath, body: SendBackBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.send_back(code, body, actor)

    @router.post(
        "/supplement-requests",
        summary="Request a supplement (Mẫu 02): the clock pauses; once per dossier (the holding"
        " unit)",
    )
    async def request_supplement(
        code: CodePath, body: SupplementRequestBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.request_supplement(code, body, actor)

    @router.post(
        "/supplements", summary="The supplement was received: the clock resumes (the desk)"
    )
    async def receive_supplement(code: CodePath, actor: Principal = desk) -> CommandResult:
        return await commands.receive_supplement(code, actor)

    @router.post(
        "/financial-obligations",
        summary="Request fees or taxes: the clock pauses until paid (the holding unit)",
    )
    async def request_financial_obligation(
        code: CodePath, body: FinancialObligationBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.request_financial_obligation(code, body, actor)

    @router.post("/financial-obligations/fulfilment", summary="Paid: the clock resumes (the desk)")
    async def fulfil_financial_obligation(code: CodePath, actor: Principal = desk) -> CommandResult:
        return await commands.fulfil_financial_obligation(code, actor)

    @router.post(
        "/extension-requests",
        summary="The holding unit will miss the due date: an apology (Mẫu 04) is issued",
    )
    async def request_extension(
        code: CodePath, body: ExtensionRequestBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.request_extension(code, body, actor)

    @router.post(
        "/result",
        status_code=status.HTTP_202_ACCEPTED,
        summary="The last unit hands the result to the desk (the holding unit)",
        description="Routing records it (the status becomes 9, processed) if the unit holds"
        " the last step of the process, or rejects it, naming why (as for hand-offs).",
    )
    async def mark_result_ready(code: CodePath, actor: Principal = holder) -> CommandResult:
        return await commands.mark_result_ready(code, actor)

    @router.post("/return", summary="The result was returned to the citizen (the desk)")
    async def return_result(code: CodePath, actor: Principal = desk) -> CommandResult:
        return await commands.return_result(code, actor)

    @router.post("/withdrawal", summary="The citizen withdrew the dossier (the desk)")
    async def withdraw(code: CodePath, body: ReasonBody, actor: Principal = desk) -> CommandResult:
        return await commands.withdraw(code, body, actor)

    @router.post("/refusal", summary="Refuse the dossier with reasons (Mẫu 03; the holding unit)")
    async def refuse(code: CodePath, body: ReasonBody, actor: Principal = holder) -> CommandResult:
        return await commands.refuse(code, body, actor)

    @router.post("/stop", summary="Stop processing (Mẫu 05; the holding unit)")
    async def stop_processing(
        code: CodePath, body: ReasonBody, actor: Principal = holder
    ) -> CommandResult:
        return await commands.stop_processing(code, body, actor)

    return router


PERIOD_START = Query(alias="from", description=f"The period's start: {INSTANT_FORMAT}")
PERIOD_END = Query(alias="to", description=f"The period's end (default: now): {INSTANT_FORMAT}")


def build_reports_router(reports: Reports, reader: DossierReader) -> APIRouter:
    """The timeline (for those who may read the dossier), and the public board and indicators,
    which hold no personal data."""
    router = APIRouter(prefix="/v1", tags=["reports"], responses=STORAGE_UNAVAILABLE)
    readable = Depends(reader.allowed)

    @router.get(
        "/dossiers/{code}/timeline",
        responses={**NOT_FOUND, **AUTH_RESPONSES},
        summary="Every event of the dossier, who held it and for how long (Mẫu 06)",
        description="For whoever may read the dossier (see GET /v1/dossiers/{code}).",
        openapi_extra={"security": [{"keycloak": []}, {"lookup-pin": []}]},
    )
    async def timeline(code: CodePath, _: DossierView = readable) -> dict[str, Any]:
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
        description="As things stood at the period's end: events recorded later never change"
        " a closed period's figures. Each figure is defined in the README.",
    )
    async def indicators(
        start: Annotated[Instant | None, PERIOD_START] = None,
        end: Annotated[Instant | None, PERIOD_END] = None,
    ) -> dict[str, Any]:
        period = reports.period(start, end)
        return await reports.indicators(*period)

    return router
