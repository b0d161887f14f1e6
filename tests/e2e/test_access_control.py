"""Every operation of every service's HTTP API, as each kind of caller, with tokens that the
running Keycloak issues: anonymous, a counter officer of the receiving desk (A), an officer and
the head of the unit holding the dossier (B), an officer of another unit (C), an operator, and
the citizen with the receipt's lookup PIN. Each outcome is the documented one, and a denial
writes nothing: no dossier row changes, no event, no access-log entry.

The table of outcomes is written to artifacts/role-by-operation.md."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest

from deploy.local.identity import password_token
from deploy.local.stack import ROOT
from shared.clock import system_clock
from tests.factories import APPLICANT, submission
from tests.system import System, eventually, running_system
from tests.users import OPERATOR_USER, counter_of, head_of, officer_of

DESK, HOLDER, OTHER = "000.00.00.H29", "000.41.01.H29", "000.00.05.H29"
ONE_STEP, TWO_STEPS = "1.000894", "1.004859"  # both processed by HOLDER alone
ACTORS = {
    "anonymous": None,
    "counter A": counter_of(DESK),
    "officer B": officer_of(HOLDER),
    "head B": head_of(HOLDER),
    "officer C": officer_of(OTHER),
    "operator": OPERATOR_USER,
    "citizen (PIN)": "pin",
}
TABLE = ROOT / "artifacts" / "role-by-operation.md"


@dataclass
class Outcomes:
    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def record(self, operation: str, actor: str, status: int) -> None:
        self.rows.setdefault(operation, {})[actor] = status

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "| operation | " + " | ".join(ACTORS) + " |",
            "|---|" + "---|" * len(ACTORS),
            *(
                f"| `{operation}` | "
                + " | ".join(str(row.get(actor, "")) for actor in ACTORS)
                + " |"
                for operation, row in self.rows.items()
            ),
        ]
        note = (
            "\nAn empty cell: not asked, because another official of the same unit did it"
            " (a unit acts once on a dossier).\n"
        )
        path.write_text("\n".join(lines) + "\n" + note, encoding="utf-8")


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    async with running_system(infrastructure, system_clock) as running:
        yield running


@pytest.fixture(scope="module")
def outcomes() -> Iterator[Outcomes]:
    found = Outcomes()
    yield found
    found.write(TABLE)


@dataclass
class Caller:
    system: System
    database_url: str
    outcomes: Outcomes

    async def call(
        self,
        actor: str,
        service: str,
        method: str,
        path: str,
        *,
        operation: str,
        pin: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = ACTORS[actor]
        headers = dict(kwargs.pop("headers", {}))
        if user == "pin":
            user = None
            if pin is not None:
                headers["X-Lookup-PIN"] = pin
        async with self.system.client(service, user) as client:
            response = await client.request(method, path, headers=headers, **kwargs)
        self.outcomes.record(operation, actor, response.status_code)
        return response

    def sender(
        self, service: str, method: str, path: str, operation: str, **kwargs: Any
    ) -> Callable[[str], Awaitable[Any]]:
        """The same request, to be sent as each actor."""

        async def send(actor: str) -> Any:
            return await self.call(actor, service, method, path, operation=operation, **kwargs)

        return send

    async def written(self, code: str | None) -> tuple[Any, ...]:
        """What a request could have written: dossiers, the dossier's status and the events
        intake emitted for it (a command writes both in one transaction), and the access
        logs. The projections of the other services' events, which keep arriving, are not
        counted: no request of this test writes them."""
        connection = await asyncpg.connect(self.database_url)
        try:
            row = await connection.fetchrow(
                "SELECT (SELECT count(*) FROM intake.dossiers) AS dossiers,"
                " (SELECT count(*) FROM intake.outbox WHERE message_key = $1) AS events,"
                " (SELECT status FROM intake.dossiers WHERE code = $1) AS status,"
                " (SELECT count(*) FROM intake.personal_data_access) AS intake_reads,"
                " (SELECT count(*) FROM notifier.personal_data_access) AS letter_reads",
                code or "",
            )
            return tuple(row.values())
        finally:
            await connection.close()

    async def expect(
        self,
        operation: str,
        expected: dict[str, int],
        send: Callable[[str], Awaitable[Any]],
        code: str | None = None,
    ) -> None:
        """Each denied actor first (each denial writes nothing), then the allowed ones."""
        denied = [a for a, status in expected.items() if status >= 400]
        allowed = [a for a, status in expected.items() if status < 400]
        for actor in denied:
            before = await self.written(code)
            response = await send(actor)
            assert response.status_code == expected[actor], (operation, actor, response.text)
            problem = response.json()
            assert problem["message"], (operation, actor)
            if response.status_code == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
            assert await self.written(code) == before, f"{operation} as {actor} wrote something"
        for actor in allowed:
            response = await send(actor)
            assert response.status_code == expected[actor], (operation, actor, response.text)


def statuses(default: int, **by_actor: int) -> dict[str, int]:
    names = {"counter_a": "counter A", "officer_b": "officer B", "head_b": "head B"}
    names |= {"officer_c": "officer C", "operator": "operator", "citizen": "citizen (PIN)"}
    names |= {"anonymous": "anonymous"}
    found = dict.fromkeys(ACTORS, default)
    found.update({names[key]: status for key, status in by_actor.items()})
    return found


# Who may not act on what the holding unit does, or on what the receiving desk does. The
# allowed one (officer B or head B; counter A) is added per command: the unit acts once.
HOLDER_ONLY = {
    "anonymous": 401,
    "counter A": 403,
    "officer C": 403,
    "operator": 403,
    "citizen (PIN)": 401,
}
DESK_ONLY = {**HOLDER_ONLY, "counter A": 403, "officer B": 403, "head B": 403}
DESK_ONLY.pop("counter A")


@pytest.fixture(scope="module")
def caller(system: System, infrastructure: dict[str, str], outcomes: Outcomes) -> Caller:
    return Caller(system, infrastructure["database_url"], outcomes)


async def received(caller: Caller, procedure: str) -> tuple[str, str]:
    """A dossier received at desk A and routed to unit B: its code and lookup PIN."""
    async with caller.system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=procedure))
        assert response.status_code == 201, response.text
        code, pin = response.json()["dossier_code"], response.json()["lookup_pin"]

        async def held() -> bool:
            view = (await client.get(f"/v1/dossiers/{code}")).json()
            routing = view["routing"]
            return bool(
                routing
                and routing["current_unit_code"] == HOLDER
                and all(step["due_at"] for step in routing["steps"])
                and view["notifier"]
            )

        await eventually(held, what=f"{code} routed to {HOLDER}, clocked")
    return code, pin


async def test_receiving_a_dossier(caller: Caller) -> None:
    operation = "intake POST /v1/dossiers"
    expected = statuses(403, anonymous=401, citizen=401, counter_a=201)
    await caller.expect(
        operation,
        expected,
        caller.sender("intake", "POST", "/v1/dossiers", operation=operation, json=submission()),
    )


async def test_reading_a_dossier_and_its_timeline(caller: Caller) -> None:
    code, pin = await received(caller, ONE_STEP)
    readers = statuses(200, anonymous=401, officer_c=403)
    for path in (f"/v1/dossiers/{code}", f"/v1/dossiers/{code}/timeline"):
        operation = "intake GET " + path.replace(code, "{code}")
        await caller.expect(
            operation,
            readers,
            caller.sender("intake", "GET", path, operation, pin=pin),
            code,
        )
    # The citizen's PIN opens only their dossier; a wrong PIN is an unknown dossier.
    async with caller.system.client("intake") as client:
        wrong = await client.get(f"/v1/dossiers/{code}", headers={"X-Lookup-PIN": "2" * 10})
    assert wrong.status_code == 404
    await _walking_codes_yields_nothing(caller, code, pin)


async def test_the_holding_units_commands(caller: Caller) -> None:
    code, _ = await received(caller, TWO_STEPS)
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("supplement-requests", {"reason": "Thiếu tờ khai", "missing_documents": ["Tờ khai"]}, "B"),
        ("supplements", {}, "A"),
        ("financial-obligations", {"amount_vnd": 100_000}, "B"),
        ("financial-obligations/fulfilment", {}, "A"),
        ("extension-requests", {"reason": "Cần xác minh thêm"}, "head B"),
        ("hand-offs", {"to_unit_code": HOLDER}, "B"),
        ("send-backs", {"to_step_sequence": 1, "reason": "Cần kiểm tra lại bước trước"}, "B"),
    ]
    for action, body, who in steps:
        operation = f"intake POST /v1/dossiers/{{code}}/{action}"
        allowed = {"A": "counter A", "B": "officer B", "head B": "head B"}[who]
        base = DESK_ONLY if who == "A" else HOLDER_ONLY
        accepted = 202 if action in ("hand-offs", "send-backs") else 200  # routing decides
        expected = {**base, allowed: accepted}
        await caller.expect(
            operation,
            expected,
            caller.sender(
                "intake",
                "POST",
                f"/v1/dossiers/{code}/{action}",
                operation,
                json=body,
            ),
            code,
        )
        await _settled(caller, code)
    await _actor_recorded(caller, code, officer_of(HOLDER))


async def test_consultation_request_and_reply(caller: Caller) -> None:
    """The holding unit asks unit C for its opinion; only C replies (lấy ý kiến)."""
    code, _ = await received(caller, ONE_STEP)
    operation = "intake POST /v1/dossiers/{code}/consultations"
    ask: dict[str, Any] = {
        "question": "Có ý kiến gì không?",
        "documents": ["Tờ khai"],
        "consulted_unit_codes": [OTHER],
    }
    await caller.expect(
        operation,
        {**HOLDER_ONLY, "officer B": 201},
        caller.sender("intake", "POST", f"/v1/dossiers/{code}/consultations", operation, json=ask),
        code,
    )
    operation = "intake POST /v1/dossiers/{code}/consultations/{consultation_id}/reply"
    consulted_only = statuses(403, anonymous=401, citizen=401, officer_c=200)
    await caller.expect(
        operation,
        consulted_only,
        caller.sender(
            "intake",
            "POST",
            f"/v1/dossiers/{code}/consultations/1/reply",
            operation,
            json={"opinion": "Thống nhất."},
        ),
        code,
    )


async def test_result_and_return(caller: Caller) -> None:
    code, _ = await received(caller, ONE_STEP)
    operation = "intake POST /v1/dossiers/{code}/result"
    await caller.expect(
        operation,
        {**HOLDER_ONLY, "officer B": 202},
        caller.sender("intake", "POST", f"/v1/dossiers/{code}/result", operation),
        code,
    )
    async with caller.system.client("intake", OPERATOR_USER) as client:

        async def processed() -> bool:
            view = (await client.get(f"/v1/dossiers/{code}")).json()
            return bool(view["status"]["code"] == 9)

        await eventually(processed, what=f"{code} processed")
    operation = "intake POST /v1/dossiers/{code}/return"
    await caller.expect(
        operation,
        {**DESK_ONLY, "counter A": 200},
        caller.sender("intake", "POST", f"/v1/dossiers/{code}/return", operation),
        code,
    )


@pytest.mark.parametrize(
    ("action", "who"), [("withdrawal", "counter A"), ("refusal", "officer B"), ("stop", "head B")]
)
async def test_closing_commands(caller: Caller, action: str, who: str) -> None:
    code, _ = await received(caller, ONE_STEP)
    operation = f"intake POST /v1/dossiers/{{code}}/{action}"
    base = DESK_ONLY if who == "counter A" else HOLDER_ONLY
    expected = {**base, who: 200}
    await caller.expect(
        operation,
        expected,
        caller.sender(
            "intake",
            "POST",
            f"/v1/dossiers/{code}/{action}",
            operation,
            json={"reason": "Lý do ghi rõ"},
        ),
        code,
    )


async def test_public_reports_and_health(caller: Caller) -> None:
    for service, path in (
        ("intake", "/v1/reports/lateness"),
        ("intake", "/v1/reports/indicators"),
        *(
            (s, p)
            for s in ("intake", "routing", "deadline", "notifier")
            for p in ("/healthz", "/readyz", "/metrics")
        ),
    ):
        operation = f"{service} GET {path}"
        for actor in ACTORS:
            response = await caller.call(actor, service, "GET", path, operation=operation)
            assert response.status_code == 200, (operation, actor, response.text)


async def test_the_access_logs_are_for_operators(caller: Caller) -> None:
    code, pin = await received(caller, ONE_STEP)
    async with caller.system.client("intake") as citizen:
        await citizen.get(f"/v1/dossiers/{code}", headers={"X-Lookup-PIN": pin})
    for service in ("intake", "notifier"):
        operation = f"{service} GET /v1/personal-data-access"
        await caller.expect(
            operation,
            statuses(403, anonymous=401, citizen=401, operator=200),
            caller.sender(
                service,
                "GET",
                "/v1/personal-data-access",
                operation,
                params={"dossier_code": code},
            ),
        )
    async with caller.system.client("intake", OPERATOR_USER) as operator:
        entries = (
            await operator.get("/v1/personal-data-access", params={"dossier_code": code})
        ).json()
    readers = [(e["subject"], e["unit_code"]) for e in entries]
    assert ("citizen", None) in readers
    assert any(unit == DESK for _, unit in readers)  # the desk read it to see it routed
    assert all(e["purpose"] == "GET /v1/dossiers/{code}" and e["trace_id"] for e in entries)


async def test_clocks_and_letters(caller: Caller) -> None:
    code, _ = await received(caller, ONE_STEP)
    operation = "deadline GET /v1/clocks/{code}"
    await caller.expect(
        operation,
        statuses(200, anonymous=401, citizen=401),
        caller.sender("deadline", "GET", f"/v1/clocks/{code}", operation),
    )
    async with caller.system.client("intake", officer_of(HOLDER)) as unit:
        declared = await unit.post(
            f"/v1/dossiers/{code}/extension-requests", json={"reason": "Cần xác minh thêm"}
        )
        assert declared.status_code == 200, declared.text
    await _the_draft_apology(caller, code)

    async def letter_issued() -> bool:
        async with caller.system.client("notifier", OPERATOR_USER) as client:
            return (await client.get(f"/v1/apologies/{code}.pdf")).status_code == 200

    await eventually(letter_issued, what=f"the apology for {code}")
    letter_readers = statuses(200, anonymous=401, citizen=401, counter_a=403, officer_c=403)
    for path, method, ok in (
        (f"/v1/apologies/{code}.pdf", "GET", 200),
        (f"/v1/apologies/{code}.html", "GET", 200),
        (f"/v1/apologies/{code}/links", "POST", 201),
    ):
        operation = f"notifier {method} " + path.replace(code, "{code}")
        expected = {a: (ok if s == 200 else s) for a, s in letter_readers.items()}
        await caller.expect(
            operation,
            expected,
            caller.sender("notifier", method, path, operation),
        )
    # The citizen's link: signed and expiring; not derivable from the code, not alterable.
    async with caller.system.client("notifier", head_of(HOLDER)) as head:
        link = (await head.post(f"/v1/apologies/{code}/links")).json()
    token = link["url"].rsplit("/", 1)[1]
    assert code not in link["url"]
    operation = "notifier GET /v1/letters/{token}"
    for actor in ACTORS:
        response = await caller.call(
            actor, "notifier", "GET", f"/v1/letters/{token}", operation=operation
        )
        assert response.status_code == 200 and response.content.startswith(b"%PDF")
    forged = jwt.encode(
        {"sub": code, "aud": "onestop-apology-letter", "exp": 9_999_999_999}, "x" * 32
    )
    async with caller.system.client("notifier") as anyone:
        assert (await anyone.get(f"/v1/letters/{forged}")).status_code == 404


async def _settled(caller: Caller, code: str) -> None:
    """Routing has recorded the last hand-off (or none was asked)."""
    async with caller.system.client("intake", OPERATOR_USER) as client:

        async def quiet() -> bool:
            view = (await client.get(f"/v1/dossiers/{code}")).json()
            return bool(view["routing"] and view["routing"]["current_unit_code"] == HOLDER)

        await eventually(quiet, what=f"{code} held by {HOLDER}")


async def _actor_recorded(caller: Caller, code: str, user: str) -> None:
    """The events the officials caused carry their token's subject and unit."""
    connection = await asyncpg.connect(caller.database_url)
    try:
        payloads = await connection.fetch(
            "SELECT event_type, payload FROM intake.outbox WHERE message_key = $1", code
        )
    finally:
        await connection.close()
    actors = {r["event_type"].split(".")[-2]: json.loads(r["payload"]) for r in payloads}
    assert actors, f"no events of {code} in intake's outbox"
    subject = jwt.decode(await password_token(user), options={"verify_signature": False})["sub"]
    hand_off = actors["hand-off-requested"]["actor"]
    assert hand_off == {"subject": subject, "unit_code": HOLDER}


async def _walking_codes_yields_nothing(caller: Caller, code: str, pin: str) -> None:
    """Anonymous, the codes before and after one's own (sequential), without a PIN and with
    one's own PIN: no answer holds any of the applicants' personal data."""
    prefix, number = code.rsplit("-", 1)
    neighbours = [f"{prefix}-{n:04d}" for n in range(max(1, int(number) - 5), int(number) + 6)]
    async with caller.system.client("intake") as anonymous:
        for other in neighbours:
            for headers in ({}, {"X-Lookup-PIN": pin}):
                if other == code and headers:
                    continue  # one's own dossier, with one's own PIN
                for path in (f"/v1/dossiers/{other}", f"/v1/dossiers/{other}/timeline"):
                    response = await anonymous.get(path, headers=headers)
                    assert response.status_code in (401, 404), (path, response.status_code)
                    leaked = [v for v in APPLICANT.values() if v in response.text]
                    assert not leaked, (path, "personal data in the answer")


async def _the_draft_apology(caller: Caller, code: str) -> None:
    """The draft apology (Mẫu 04) the extension opened: the unit at fault reads and fills it,
    its head alone approves and signs; operators read it."""
    path = f"/v1/apologies/{code}/draft"

    async def opened() -> dict[str, Any] | None:
        async with caller.system.client("notifier", OPERATOR_USER) as client:
            draft = await client.get(path)
        return draft.json() if draft.status_code == 200 else None

    draft = await eventually(opened, what=f"the draft apology of {code}")
    readers = statuses(200, anonymous=401, citizen=401, counter_a=403, officer_c=403)
    await caller.expect(
        f"notifier GET {path.replace(code, '{code}')}",
        readers,
        caller.sender("notifier", "GET", path, f"notifier GET {path.replace(code, '{code}')}"),
    )
    content = {
        "reason": "Cần xác minh thêm với cơ quan liên quan",
        "new_due_at": draft["latest_new_due_at"],
    }
    operation = "notifier PUT /v1/apologies/{code}/draft/content"
    await caller.expect(
        operation,
        {**HOLDER_ONLY, "officer B": 200},
        caller.sender("notifier", "PUT", f"{path}/content", operation, json=content),
    )
    operation = "notifier POST /v1/apologies/{code}/draft/approval"
    await caller.expect(
        operation,
        {**HOLDER_ONLY, "officer B": 403, "head B": 201},
        caller.sender("notifier", "POST", f"{path}/approval", operation),
    )


async def test_every_operation_of_every_api_was_asked(caller: Caller) -> None:
    """Runs last: the table holds each operation each service's OpenAPI document declares."""
    declared = {
        f"{service} {method.upper()} {path}"
        for service, app in caller.system.apps.items()
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert declared - set(caller.outcomes.rows) == set()
