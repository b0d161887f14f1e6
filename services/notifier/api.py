"""The notifier's HTTP API: apology letters (Mẫu 04) hold the citizen's name and address, so
officials read them with a token (operators, and the unit that apologised), and the citizen
through a link that is signed and expires: it cannot be derived from the dossier code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel

from services.notifier.repository import NotifierUnitOfWork
from shared.access_log import PersonalDataAccess
from shared.api import STORAGE_UNAVAILABLE, Responses, problem_responses
from shared.auth import AUTH_RESPONSES, Authenticator, Forbidden, Principal, Role
from shared.events import DOSSIER_CODE_PATTERN
from shared.telemetry import current_trace_id

LINK_AUDIENCE = "onestop-apology-letter"
FORMATS = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}
CodePath = Annotated[str, Path(pattern=DOSSIER_CODE_PATTERN)]
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
        responses={**_letter(FORMATS["pdf"]), **NOT_FOUND, **AUTH_RESPONSES},
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
