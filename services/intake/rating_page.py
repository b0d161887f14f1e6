"""POST /tra-cuu/danh-gia: the citizen's rating, from the look-up's result page (a plain form,
no script). The form carries the dossier code and the PIN again, in the POST body only (never
a URL, so no log or trace holds it); the PIN is checked again, and a wrong one gets the same
answer as an unknown code. The rating row and its event ServiceRated are written in one
transaction (intake's outbox); a second rating of the dossier is refused."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse

from services.intake.api import DossierReader
from services.intake.pages import (
    NOT_FOUND_MESSAGE,
    _page,
    is_cross_site,
    lookup_result,
    render,
)
from services.intake.ratings import (
    ALREADY_RATED_MESSAGE,
    RATING_PATH,
    RATING_PURPOSE,
    THANKS_MESSAGE,
    Rating,
    rated_units,
    rating_form,
)
from services.intake.reports import Reports
from shared.events import DOSSIER_CODE_PATTERN, ServiceRated


def build_rating_router(reports: Reports, reader: DossierReader) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post(RATING_PATH, response_class=HTMLResponse)
    async def rate(request: Request) -> Response:
        if is_cross_site(request.headers):
            message = "Hãy đánh giá ngay trên trang tra cứu."
            html = render("error.html", title="Không được phép", message=message)
            return _page(html, status.HTTP_403_FORBIDDEN, private=True)
        form = rating_form(await request.body())
        code, pin = form.code, form.pin
        not_found = render("lookup.html", result=None, code=code, error=NOT_FOUND_MESSAGE)
        if not code or not pin or not re.match(DOSSIER_CODE_PATTERN, code):
            return _page(not_found, status.HTTP_404_NOT_FOUND, private=True)
        try:
            # The PIN again: the API's check, logged under this page's purpose.
            view = await reader.read(code, None, pin, logged_as=RATING_PURPOSE)
        except HTTPException as error:
            if error.status_code != status.HTTP_404_NOT_FOUND:
                raise
            return _page(not_found, status.HTTP_404_NOT_FOUND, private=True)

        now = reports.clock()
        recorded = False
        async with reports.unit_of_work() as uow:
            timeline = [dict(e) for e in await uow.ledger.timeline(code)]
            existing = await uow.ratings.of(code)
            if existing is None and form.score is not None and not form.errors:
                rating = Rating(
                    code,
                    form.score,
                    rated_units(view.receipt.receiving_unit.code, timeline),
                    now,
                )
                recorded = await uow.ratings.add(rating, form.comment)
                if recorded:
                    event = ServiceRated(
                        dossier_code=code,
                        score=rating.score,
                        unit_codes=rating.unit_codes,
                        commented=form.comment is not None,
                        rated_at=now,
                    )
                    await uow.ledger.append(event, now, view.receipt.receiving_unit.code)
                    uow.emit(event, occurred_at=now)
                    await uow.commit()
                existing = rating if recorded else await uow.ratings.of(code)
        result = lookup_result(view, timeline)

        def answer(code_: int, **context: object) -> Response:
            context = {"rating": existing, "pin": pin, **context}
            html = render("lookup.html", result=result, code=code, error=None, **context)
            return _page(html, code_, private=True)

        if recorded:
            return answer(status.HTTP_200_OK, rating_message=THANKS_MESSAGE)
        if existing is not None:
            return answer(status.HTTP_409_CONFLICT, rating_error=ALREADY_RATED_MESSAGE)
        # Only invalid fields are left: the form again, each error naming its field.
        return answer(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            rating_errors=form.errors,
            comment=form.comment or "",
        )

    return router
