"""The notifier's HTTP API: apology letters (Mẫu 04) hold the citizen's name and address, so
officials read them with a token (operators, and the unit that apologised), and the citizen
through a link that is signed and expires: it cannot be derived from the dossier code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from services.notifier.domain import DraftRefused, NewDateOutOfRange
from services.notifier.handlers import DraftNotFound, Notifier
from services.notifier.repository import (
    AddresseeErased,
    AddresseeUnknown,
    Draft,
    NotifierUnitOfWork,
)
from shared.access_log import PersonalDataAccess
from shared.api import STORAGE_UNAVAILABLE, Responses, problem_responses
from shared.auth import AUTH_RESPONSES, Authenticator, Forbidden, Principal, Role
from shared.events import DOSSIER_CODE_PATTERN, ApologyTimeliness
from shared.telemetry import current_trace_id

LINK_AUDIENCE = "onestop-apology-letter"
FORMATS = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}
CodePath = Annotated[str, Path(pattern=DOSSIER_CODE_PATTERN)]
RENDER_RETRY_AFTER_SECONDS = 5
PDF_PENDING: Responses = problem_responses(
    {
        503: "Storage unavailable, or the letter is issued and its signed PDF not yet rendered:"
        " retry after Retry-After"
    }
)
NOT_FOUND: Responses = {
    **problem_responses(
        {
            404: "No apology letter for this dossier",
            410: "The letter was erased (personal-data retention)",
        }
    ),
    **STORAGE_UNAVAILABLE,
}


def _letter(media_type: str) -> Responses:
    content = {media_type.split(";")[0]: {"schema": {"type": "string"}}}
    return {200: {"description": "The letter (Mẫu 04)", "content": content}}


class LetterLink(BaseModel):
    url: str
    expires_at: datetime


class LetterLinks:
    """Signed, expiring links to one dossier's letter (HMAC-SHA256 JSON Web Tokens)."""

    def __init__(self, key: bytes, *, lifetime: timedelta, base_url: str) -> None:
        self._key = key
        self._lifetime = lifetime
        self._base_url = base_url.rstrip("/")

    def create(self, code: str, now: datetime) -> LetterLink:
        expires = now + self._lifetime
        token = jwt.encode(
            {"sub": code, "aud": LINK_AUDIENCE, "iat": now, "exp": expires}, self._key, "HS256"
        )
        return LetterLink(url=f"{self._base_url}/v1/letters/{token}", expires_at=expires)

    def dossier_of(self, token: str) -> str | None:
        """The dossier the link opens; None if it was not signed here, or has expired."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=LINK_AUDIENCE,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        return str(claims["sub"])


def build_letters_router(
    unit_of_work: Callable[[], NotifierUnitOfWork],
    authenticator: Authenticator,
    links: LetterLinks,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["apologies"])
    official = authenticator.require(Role.OPERATOR, Role.UNIT_OFFICER, Role.UNIT_HEAD)

    async def letter(
        code: str, reader: Principal | None, request: Request, file_format: str
    ) -> Response:
        async with unit_of_work() as uow:
            row = await uow.notices.letter(code)
            if row is None:
                raise HTTPException(404, f"no apology letter for dossier {code}")
            if reader is not None:
                _may_read(reader, row["unit_code"], code)
            if file_format == "pdf" and row["pdf_pending"]:
                raise HTTPException(
                    503,
                    f"the apology letter of {code} is issued; its signed PDF is being rendered",
                    headers={"Retry-After": str(RENDER_RETRY_AFTER_SECONDS)},
                )
            if row[file_format] is None:
                raise HTTPException(410, f"the apology letter of {code} was erased (retention)")
            await uow.access_log.record(
                PersonalDataAccess.by(
                    reader,
                    dossier_code=code,
                    purpose=f"{request.method} {request.scope['route'].path}",
                    at=clock(),
                    trace_id=current_trace_id(),
                )
            )
            await uow.commit()
        return Response(row[file_format], media_type=FORMATS[file_format])

    @router.get(
        "/apologies/{code}.pdf",
        responses={**_letter(FORMATS["pdf"]), **NOT_FOUND, **PDF_PENDING, **AUTH_RESPONSES},
        response_class=Response,
        summary="The apology letter, as PDF (operators; the unit that apologised)",
    )
    async def apology_pdf(code: CodePath, request: Request, reader: Principal = official) -> Any:
        return await letter(code, reader, request, "pdf")

    @router.get(
        "/apologies/{code}.html",
        responses={**_letter(FORMATS["html"]), **NOT_FOUND, **AUTH_RESPONSES},
        response_class=Response,
        summary="The apology letter, as HTML (operators; the unit that apologised)",
    )
    async def apology_html(code: CodePath, request: Request, reader: Principal = official) -> Any:
        return await letter(code, reader, request, "html")

    @router.post(
        "/apologies/{code}/links",
        response_model=LetterLink,
        status_code=201,
        responses={**NOT_FOUND, **AUTH_RESPONSES},
        summary="A signed, expiring link to the letter, for the citizen",
    )
    async def link(code: CodePath, reader: Principal = official) -> LetterLink:
        async with unit_of_work() as uow:
            row = await uow.notices.letter(code)
        if row is None:
            raise HTTPException(404, f"no apology letter for dossier {code}")
        _may_read(reader, row["unit_code"], code)
        return links.create(code, clock())

    @router.get(
        "/letters/{token}",
        responses={
            **_letter(FORMATS["pdf"]),
            **problem_responses({404: "Unknown or expired link", 410: "The letter was erased"}),
            **STORAGE_UNAVAILABLE,
            **PDF_PENDING,
        },
        response_class=Response,
        summary="The apology letter (PDF) behind a signed link: no sign-in, until it expires",
    )
    async def letter_by_link(
        token: Annotated[str, Path(min_length=20, max_length=2000)], request: Request
    ) -> Any:
        code = links.dossier_of(token)
        if code is None:
            raise HTTPException(404, "this link is unknown or has expired; ask the unit again")
        return await letter(code, None, request, "pdf")

    return router


def _may_read(reader: Principal, letter_unit: str, code: str) -> None:
    if reader.has(Role.OPERATOR) or reader.unit_code == letter_unit:
        return
    raise Forbidden(
        f"the apology for dossier {code} is unit {letter_unit}'s;"
        f" your unit is {reader.unit_code or 'none'}"
    )


# --- The unit's draft apology: its officers fill it in, its head approves and signs --------


class DraftView(BaseModel):
    dossier_code: str
    unit_code: str = Field(description="the unit at fault, whose head signs")
    state: str = Field(description="open, filled (ready to sign) or issued")
    original_due_at: datetime
    latest_new_due_at: datetime = Field(description="the latest new return date allowed")
    opened_at: datetime
    reason: str | None
    new_due_at: datetime | None
    filled_by: str | None
    filled_at: datetime | None


class DraftContent(BaseModel):
    reason: str = Field(min_length=10, max_length=2000, description="why it will be late")
    new_due_at: AwareDatetime = Field(description="the new return date the unit commits to")


class IssuedView(BaseModel):
    dossier_code: str
    letter_number: str
    unit_code: str
    timeliness: ApologyTimeliness
    new_due_at: datetime
    issued_at: datetime


DRAFT_RESPONSES: Responses = {
    **problem_responses(
        {
            404: "No draft apology: the dossier is not due soon",
            409: "Not in a state that allows this (issued already, or incomplete)",
            422: "The new return date is not after the due date or beyond the limit",
        }
    ),
    **STORAGE_UNAVAILABLE,
    **AUTH_RESPONSES,
}


def build_apology_drafts_router(
    unit_of_work: Callable[[], NotifierUnitOfWork],
    authenticator: Authenticator,
    notifier: Notifier,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["apologies"])
    staff = authenticator.require(Role.OPERATOR, Role.UNIT_OFFICER, Role.UNIT_HEAD)
    unit_staff = authenticator.require(Role.UNIT_OFFICER, Role.UNIT_HEAD)
    head = authenticator.require(Role.UNIT_HEAD)

    async def view(uow: NotifierUnitOfWork, code: str) -> DraftView:
        draft = await notifier.draft(uow, code)
        issued = await uow.notices.has_apology(code)
        state = "issued" if issued else "filled" if draft.complete else "open"
        return DraftView(state=state, **asdict(draft))

    @router.get(
        "/apologies/{code}/draft",
        response_model=DraftView,
        responses=DRAFT_RESPONSES,
        summary="The draft apology (Mẫu 04) of a dossier due soon (operators; its unit)",
    )
    async def get_draft(code: CodePath, reader: Principal = staff) -> DraftView:
        async with unit_of_work() as uow:
            found = await _draft_or_404(notifier, uow, code)
            if not reader.has(Role.OPERATOR):
                _of_unit(reader, found.unit_code, code)
            return await view(uow, code)

    @router.put(  # a path of its own: one method per path keeps a 405's Allow header exact
        "/apologies/{code}/draft/content",
        response_model=DraftView,
        responses=DRAFT_RESPONSES,
        summary="Enter the reason and the new return date (an officer or the head of the unit)",
    )
    async def fill_draft(
        code: CodePath, content: DraftContent, official: Principal = unit_staff
    ) -> DraftView:
        async with unit_of_work() as uow:
            found = await _draft_or_404(notifier, uow, code)
            _of_unit(official, found.unit_code, code)
            try:
                await notifier.fill_draft(
                    uow,
                    code,
                    reason=content.reason,
                    new_due_at=content.new_due_at,
                    official=official.name,
                )
            except NewDateOutOfRange as error:
                raise HTTPException(422, str(error)) from error
            except DraftRefused as error:
                raise HTTPException(409, str(error)) from error
            result = await view(uow, code)
            await uow.commit()
        return result

    @router.post(
        "/apologies/{code}/draft/approval",
        response_model=IssuedView,
        status_code=201,
        responses=DRAFT_RESPONSES,
        summary="Approve and sign the apology: the head of the unit at fault only",
    )
    async def approve(code: CodePath, signer: Principal = head) -> IssuedView:
        async with unit_of_work() as uow:
            found = await _draft_or_404(notifier, uow, code)
            _of_unit(signer, found.unit_code, code, head=True)
            try:
                issued = await notifier.approve(uow, code)
            except DraftRefused as error:
                raise HTTPException(409, str(error)) from error
            except (AddresseeUnknown, AddresseeErased) as error:
                raise HTTPException(409, str(error)) from error
            await uow.commit()
        return IssuedView(
            dossier_code=code,
            letter_number=issued.letter_number,
            unit_code=issued.unit_code,
            timeliness=issued.timeliness,
            new_due_at=issued.new_due_at,
            issued_at=issued.issued_at,
        )

    return router


async def _draft_or_404(notifier: Notifier, uow: NotifierUnitOfWork, code: str) -> Draft:
    try:
        return await notifier.draft(uow, code)
    except DraftNotFound as error:
        raise HTTPException(404, str(error)) from error


def _of_unit(official: Principal, unit_code: str, code: str, *, head: bool = False) -> None:
    if official.unit_code == unit_code:
        return
    who = f"the head of unit {unit_code}" if head else f"an officer or the head of unit {unit_code}"
    raise Forbidden(
        f"the apology for dossier {code} is unit {unit_code}'s: only {who} may do this;"
        f" your unit is {official.unit_code or 'none'}"
    )
