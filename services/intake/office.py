"""The officials' web pages, behind sign-in (services/intake/web_signin.py): `/van-hanh`, their
home, leads to the dossiers stuck now and to a dossier's journey. What each page shows is
scoped as the API scopes it: operators see every unit, an official their own unit's dossiers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from services.intake.pages import OFFICE_PATH, SECURITY_HEADERS, render
from services.intake.web_signin import WebSignIn
from shared.auth import STAFF, Principal
from shared.catalog import Catalog
from shared.events import DOSSIER_CODE_PATTERN

JOURNEY_PATH = f"{OFFICE_PATH}/ho-so"  # /van-hanh/ho-so/{code}: a dossier's journey
STUCK_PATH = f"{OFFICE_PATH}/ton-dong"  # the dossiers past their step's allotted time, now


class OfficePages:
    """What every officials' page shares: who may open it, who is signed in, its headers."""

    def __init__(self, web: WebSignIn, catalog: Catalog) -> None:
        self.web = web
        self.catalog = catalog
        self.official = web.require(*STAFF)
        # Signing out goes on to the provider's logout, which the form's CSP must allow.
        policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {web.provider_origin}"
        )
        self._headers = {
            **SECURITY_HEADERS,
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",  # an official's page is theirs: no cache keeps it
        }

    def page(self, html: str, status_code: int = status.HTTP_200_OK) -> Response:
        return HTMLResponse(html, status_code=status_code, headers=self._headers)

    def render(self, template: str, principal: Principal | None, **context: Any) -> str:
        """A template with what base.html needs to show who is signed in."""
        unit = self.catalog.unit(principal.unit_code) if principal and principal.unit_code else None
        signed_in_unit = unit.name if unit else (principal.unit_code if principal else None)
        return render(template, principal=principal, signed_in_unit=signed_in_unit, **context)

    def error(self, status_code: int, title: str, message: str) -> Response:
        return self.page(self.render("error.html", None, title=title, message=message), status_code)


def build_office_router(office: OfficePages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    paths = {"journey_path": JOURNEY_PATH, "stuck_path": STUCK_PATH}

    @router.get(OFFICE_PATH, response_class=HTMLResponse)
    async def home(principal: Principal = office.official) -> Response:
        return office.page(office.render("office.html", principal, error=None, **paths))

    @router.get(JOURNEY_PATH, response_class=HTMLResponse)
    async def find_journey(
        ma: str = Query(default="", max_length=64), principal: Principal = office.official
    ) -> Response:
        code = ma.strip()
        if re.match(DOSSIER_CODE_PATTERN, code):
            return RedirectResponse(f"{JOURNEY_PATH}/{quote(code)}", status.HTTP_303_SEE_OTHER)
        error = f"“{code}” không phải là mã hồ sơ (dạng 000.00.00.H29-261201-0001)."
        html = office.render("office.html", principal, error=error, **paths)
        return office.page(html, status.HTTP_422_UNPROCESSABLE_ENTITY)

    return router
