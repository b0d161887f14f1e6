"""The personal-data access log: each read of a citizen's personal data is recorded, in the
same transaction as the read, and operators query it (GET /v1/personal-data-access)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Annotated, Protocol, Self

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from shared.api import INSTANT_FORMAT, Instant
from shared.auth import AUTH_RESPONSES, Authenticator, Principal, Role

CITIZEN = "citizen"  # the subject recorded for a lookup with the receipt's PIN


class PersonalDataAccess(BaseModel):
    accessed_at: datetime
    subject: str = Field(description="the token's subject, or 'citizen' for a PIN lookup")
    username: str | None
    unit_code: str | None
    dossier_code: str
    purpose: str
    trace_id: str | None

    @classmethod
    def by(
        cls,
        reader: Principal | None,
        *,
        dossier_code: str,
        purpose: str,
        at: datetime,
        trace_id: str | None,
    ) -> PersonalDataAccess:
        return cls(
            accessed_at=at,
            subject=reader.subject if reader else CITIZEN,
            username=reader.username if reader else None,
            unit_code=reader.unit_code if reader else None,
            dossier_code=dossier_code,
            purpose=purpose,
            trace_id=trace_id,
        )


class AccessLog(abc.ABC):
    @abc.abstractmethod
    async def record(self, access: PersonalDataAccess) -> None: ...

    @abc.abstractmethod
    async def entries(
        self,
        *,
        dossier_code: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[PersonalDataAccess]:
        """Newest first."""


class PostgresAccessLog(AccessLog):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def record(self, access: PersonalDataAccess) -> None:
        await self._db.execute(
            "INSERT INTO personal_data_access (accessed_at, subject, username, unit_code,"
            " dossier_code, purpose, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            access.accessed_at,
            access.subject,
            access.username,
            access.unit_code,
            access.dossier_code,
            access.purpose,
            access.trace_id,
        )

    async def entries(
        self,
        *,
        dossier_code: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[PersonalDataAccess]:
        rows = await self._db.fetch(
            "SELECT accessed_at, subject, username, unit_code, dossier_code, purpose, trace_id"
            " FROM personal_data_access WHERE ($1::text IS NULL OR dossier_code = $1)"
            " AND ($2::text IS NULL OR subject = $2)"
            " AND ($3::timestamptz IS NULL OR accessed_at >= $3)"
            " AND ($4::timestamptz IS NULL OR accessed_at < $4)"
            " ORDER BY accessed_at DESC, id DESC LIMIT $5",
            dossier_code,
            subject,
            since,
            until,
            limit,
        )
        return [PersonalDataAccess(**dict(row)) for row in rows]


class LoggingUnitOfWork(Protocol):
    """A service's unit of work that holds an access log."""

    access_log: AccessLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def build_access_log_router(
    authenticator: Authenticator,
    unit_of_work: Callable[[], LoggingUnitOfWork],
    *,
    service: str,
) -> APIRouter:
    """GET /v1/personal-data-access for operators."""
    router = APIRouter(prefix="/v1", tags=["personal data"])
    operator = authenticator.require(Role.OPERATOR)

    @router.get(
        "/personal-data-access",
        response_model=list[PersonalDataAccess],
        responses=AUTH_RESPONSES,
        summary=f"Who read which citizen's personal data in the {service} service, newest first",
    )
    async def personal_data_access(
        dossier_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        subject: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        since: Annotated[Instant | None, Query(alias="from", description=INSTANT_FORMAT)] = None,
        until: Annotated[Instant | None, Query(alias="to", description=INSTANT_FORMAT)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        _: Principal = operator,
    ) -> list[PersonalDataAccess]:
        async with unit_of_work() as uow:
            return await uow.access_log.entries(
                dossier_code=dossier_code, subject=subject, since=since, until=until, limit=limit
            )

    return router
