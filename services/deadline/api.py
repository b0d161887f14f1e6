"""The deadline service's HTTP API: a dossier's clock, for officials and operators (it holds
no personal data, but the public sees only the aggregate board)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from services.deadline.repository import DeadlineUnitOfWork
from shared.api import STORAGE_UNAVAILABLE, problem_responses
from shared.auth import AUTH_RESPONSES, STAFF, Authenticator, Principal
from shared.events import DOSSIER_CODE_PATTERN


def build_clocks_router(
    unit_of_work: Callable[[], DeadlineUnitOfWork], authenticator: Authenticator
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["clocks"])
    official = authenticator.require(*STAFF)

    @router.get(
        "/clocks/{code}",
        responses={
            **problem_responses({404: "No clock for this dossier"}),
            **STORAGE_UNAVAILABLE,
            **AUTH_RESPONSES,
        },
        summary="A dossier's clock, overall and per step (officials and operators)",
    )
    async def clock_of(
        code: Annotated[str, Path(pattern=DOSSIER_CODE_PATTERN)], _: Principal = official
    ) -> dict[str, Any]:
        async with unit_of_work() as uow:
            found = await uow.clocks.describe(code)
        if found is None:
            raise HTTPException(404, f"no clock for dossier {code}")
        return found

    return router
