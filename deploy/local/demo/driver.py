"""The demo's hands on the running system: calls to intake and the deadline service, each
bounded in time, and the waits until the system has caught up with what was done."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import httpx
from fastapi import FastAPI

from deploy.local.clean_slate import SCHEMAS
from deploy.local.demo.options import Options
from deploy.local.demo.traffic import Dossier, traits
from deploy.local.identity import head_of, officer_of, password_token
from services.intake.handlers import PROJECTIONS

POLL = 0.05  # seconds between two looks at the system while waiting for it to catch up
OPERATOR = "operator"  # reads every dossier and clock
T = TypeVar("T")


async def signed_in(user: str = OPERATOR) -> dict[str, str]:
    return {"Authorization": f"Bearer {await password_token(user)}"}


class DemoError(Exception):
    """The system did not do what the demo expected; the message says what and where."""


def client(app: FastAPI, name: str) -> httpx.AsyncClient:
    # A service's unhandled error is a 500 for the demo to retry, as over the network.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=f"http://{name}", timeout=30)


class Driver:
    def __init__(
        self,
        options: Options,
        clock: Callable[[], datetime],
        apps: dict[str, FastAPI],
        database_url: str,
    ) -> None:
        self.o = options
        self.clock = clock
        self.database_url = database_url
        self.intake = client(apps["intake"], "intake")
        self.deadline = client(apps["deadline"], "deadline")
        self.notifier = client(apps["notifier"], "notifier")
        self.started = time.monotonic()

    async def close(self) -> None:
        await self.intake.aclose()
        await self.deadline.aclose()
        await self.notifier.aclose()

    async def bounded(self, call: Awaitable[T], what: str, timeout: float | None = None) -> T:
        """A call into the system that must answer within the timeout (in-process calls have
        no network timeout: a service stuck on its database would hang the demo)."""
        limit = timeout or self.o.timeout
        try:
            return await asyncio.wait_for(call, limit)
        except TimeoutError as error:
            raise DemoError(
                f"{what}: no answer within {limit:.0f}s at simulated {self.clock():%d/%m %H:%M}"
            ) from error

    async def until_all(
        self, dossiers: list[Dossier], caught_up: Callable[[Dossier], Awaitable[bool]], what: str
    ) -> None:
        """Poll until `caught_up` holds for every dossier; fail after the timeout."""
        pending = list(dossiers)
        deadline = time.monotonic() + self.o.timeout
        while pending:
            remaining = max(deadline - time.monotonic(), 1.0)
            round_ = asyncio.gather(*(caught_up(d) for d in pending))
            results = await self.bounded(round_, what, remaining)
            pending = [d for d, ok in zip(pending, results, strict=True) if not ok]
            if not pending:
                return
            if time.monotonic() > deadline:
                sample = ", ".join(d.code for d in pending[:5])
                raise DemoError(
                    f"{what}: {len(pending)} dossiers not caught up after {self.o.timeout:.0f}s"
                    f" at simulated {self.clock():%d/%m %H:%M} (e.g. {sample}); last clock:"
                    f" {json.dumps(pending[0].clock, default=str)[:600]}"
                )
            await asyncio.sleep(POLL)
        self._check_budget()

    def _check_budget(self) -> None:
        if time.monotonic() - self.started > self.o.max_seconds:
            raise DemoError(f"the demo ran longer than --max-seconds={self.o.max_seconds:.0f}")

    async def send(
        self, method: str, path: str, what: str, user: str = OPERATOR, **kwargs: Any
    ) -> httpx.Response:
        """A call to intake as `user` (a demo user of the local Keycloak), retried while it
        answers 5xx (storage unavailable: the services retry PostgreSQL and Kafka themselves),
        bounded by the timeout."""
        deadline = time.monotonic() + self.o.timeout
        headers = {**kwargs.pop("headers", {}), **await signed_in(user)}
        while True:
            remaining = max(deadline - time.monotonic(), 1.0)
            response = await self.bounded(
                self.intake.request(method, path, headers=headers, **kwargs), what, remaining
            )
            if response.status_code < 500:
                return response
            if time.monotonic() > deadline:
                raise DemoError(f"{what}: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(POLL * 4)

    async def read_report(self, path: str, what: str, period: dict[str, str]) -> dict[str, Any]:
        response = await self.send("GET", path, what, params=period)
        response.raise_for_status()
        return dict(response.json())

    async def indicators(self, period: dict[str, str]) -> dict[str, Any]:
        return await self.read_report("/v1/reports/indicators", "indicators", period)

    async def lateness_board(self, period: dict[str, str]) -> dict[str, Any]:
        return await self.read_report("/v1/reports/lateness", "the board", period)

    # -- what each wait asks of a dossier ---------------------------------------------------

    async def read_clock(self, d: Dossier) -> bool:
        response = await self.deadline.get(f"/v1/clocks/{d.code}", headers=await signed_in())
        if response.status_code != 200:
            return False  # not started yet (404), or the service cannot answer now (5xx)
        d.clock = response.json()
        return True

    async def routed(self, d: Dossier) -> bool:
        """Routing's plan reached intake (hand-offs need it) and the deadline runs a clock."""
        response = await self.intake.get(f"/v1/dossiers/{d.code}", headers=await signed_in())
        view = response.json() if response.status_code == 200 else {}
        if not (view.get("routing") and view.get("deadline")):
            return False
        return await self.read_clock(d) and bool(d.clock["steps"])  # the steps' due times

    async def processed(self, d: Dossier) -> bool:
        response = await self.intake.get(f"/v1/dossiers/{d.code}", headers=await signed_in())
        return response.status_code == 200 and response.json()["status"]["code"] == 9

    async def move_applied(self, d: Dossier) -> bool:
        """The deadline's clock shows our last move; the apology of an extension is out."""
        if d.expected is not None:
            if not await self.read_clock(d):
                return False
            status, step = d.expected
            if d.clock["status"] != status or step not in (None, d.clock["current_step"]):
                return False
            if status == "completed" and not await self.processed(d):
                return False  # the result can be returned once intake shows it processed
            handed_on = d.completed and d.clock["steps"][d.completed - 1]["completed_at"]
            if d.completed is not None and handed_on is None:
                return False  # a parallel step handed on, the others still open
            d.expected = d.completed = None
        if d.apology_expected:
            if not await self.sign_apology(d) or not await self.apology_issued(d):
                return False
            d.apology_expected = False
        return True

    async def answer_due_soon(self, d: Dossier) -> None:
        """The unit at fault answers the draft apology a due-soon opened for it: a unit that
        knows it will be late (the dossier's fate) signs in time, unless it ignores due-soon
        (its trait) and leaves it to the escalation; a unit that will finish in time leaves
        it too. Nothing while no draft is open yet (the notifier has not seen the due-soon)."""
        path = f"/v1/apologies/{d.code}/draft"
        draft = await self.notifier.get(path, headers=await signed_in())
        if draft.status_code != 200:
            return
        found = draft.json()
        d.due_soon_answered = True
        ignores = traits(found["unit_code"]).ignores_due_soon
        if found["state"] == "issued" or ignores or not d.fate.past_due:
            return
        if not await self.sign_apology(d):
            raise DemoError(f"{d.code}: the unit could not sign its due-soon apology")

    async def sign_apology(self, d: Dossier) -> bool:
        """The unit that asked for an extension completes its draft apology (Mẫu 04) with the
        latest new date allowed, and its head signs; False until the draft is open."""
        path = f"/v1/apologies/{d.code}/draft"
        draft = await self.notifier.get(path, headers=await signed_in())
        if draft.status_code != 200:
            return False  # not opened yet (404), or the service cannot answer now (5xx)
        found = draft.json()
        if found["state"] == "issued":
            return True
        unit = found["unit_code"]
        if found["state"] == "open":
            filled = await self.notifier.put(
                f"{path}/content",
                json={"reason": "Cần xác minh thêm", "new_due_at": found["latest_new_due_at"]},
                headers=await signed_in(officer_of(unit)),
            )
            if filled.status_code != 200:
                return False
        approved = await self.notifier.post(
            f"{path}/approval", headers=await signed_in(head_of(unit))
        )
        return approved.status_code in (201, 409)  # 409: issued meanwhile

    async def lateness_detected(self, d: Dossier) -> bool:
        now = self.clock()
        return await self.read_clock(d) and not d.lateness_pending(now)

    async def apology_issued(self, d: Dossier) -> bool:
        return "apology-issued" in await self.event_kinds(d)

    async def event_kinds(self, d: Dossier) -> list[str]:
        path = f"/v1/dossiers/{d.code}/timeline"
        response = await self.send("GET", path, f"the timeline of {d.code}")
        response.raise_for_status()
        return [e["event_type"].split(".")[-2] for e in response.json()["events"]]

    async def until_projected(self) -> None:
        """Every outbox is published and intake has applied every event of the other three
        services that its projection handles (the reports read the projection)."""
        connection = await asyncpg.connect(self.database_url, timeout=10)
        projected = [kind.TYPE for kind in PROJECTIONS]

        async def count(query: str, *args: Any) -> int:
            return int(await connection.fetchval(query, *args, timeout=self.o.timeout))

        try:
            deadline = time.monotonic() + self.o.timeout
            while True:
                unpublished = emitted = 0
                for schema in SCHEMAS:
                    unpublished += await count(
                        f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                    )
                    if schema != "intake":
                        emitted += await count(
                            f"SELECT count(*) FROM {schema}.outbox WHERE event_type = ANY($1)",
                            projected,
                        )
                applied = await count(
                    "SELECT count(*) FROM intake.inbox WHERE source <> '/onestop/intake'"
                )
                if unpublished == 0 and applied == emitted:
                    return
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"not settled after {self.o.timeout:.0f}s: {unpublished} events"
                        f" unpublished, intake applied {applied} of {emitted}"
                    )
                await asyncio.sleep(POLL)
        finally:
            await connection.close()
