"""QĐ 766 indicators end to end, on the real Kafka broker and PostgreSQL server, in simulated
time: a day of dossiers with every fate (withdrawn, refused, stopped, returned, paused within
and past due, late with and without an apology by the period's end), the indicators of that
closed period, then later events (hand-offs, completions, an apology, a withdrawal, a
resumption) that must not change them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.test_lateness import _has, _parse, _planned, _when, act, clock_of, view
from tests.factories import submission
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import counter_of, officer_of

DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
INTER_AGENCY, HALF_DAY, WITH_SUPPLEMENT = "2.000647", "1.000894", "1.004227"
REASON = {"reason": "Công dân đề nghị"}
SUPPLEMENT = {"reason": "Thiếu bản sao giấy tờ", "missing_documents": ["Bản sao CCCD"]}


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 7, 8, 0)  # a Monday morning
    async with simulated_system(infrastructure, start, "ind") as running:
        yield running


async def submit(system: System, procedure: str) -> tuple[str, dict[str, Any]]:
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=procedure))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    return code, await eventually(lambda: _planned(system, code), what=f"{code} routed")


async def accepted(system: System, code: str, action: str, user: str, body: Any = None) -> None:
    response = await act(system, code, action, user, body)
    assert response.status_code in (200, 202), response.text


async def status_is(system: System, code: str, status: int) -> None:
    await eventually(
        lambda: _when(view(system, code), lambda v: v["status"]["code"] == status),
        what=f"{code} in status {status}",
    )


async def indicators(system: System, start: datetime, end: datetime) -> dict[str, Any]:
    async with system.client("intake") as client:  # public: no token
        response = await client.get(
            "/v1/reports/indicators", params={"from": start.isoformat(), "to": end.isoformat()}
        )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def has(system: System, code: str, kind: str) -> Callable[[], Awaitable[bool]]:
    return lambda: _has(system, code, kind)


def holder(routed: dict[str, Any]) -> str:
    return str(routed["routing"]["steps"][0]["unit_code"])


async def test_a_closed_period_keeps_its_figures_whatever_happens_later(system: System) -> None:
    clock = clock_of(system)
    start = clock() - timedelta(hours=1)
    inter, inter_plan = await submit(system, INTER_AGENCY)
    late, late_plan = await submit(system, HALF_DAY)
    paused_late, paused_late_plan = await submit(system, HALF_DAY)
    done, done_plan = await submit(system, HALF_DAY)
    withdrawn, _ = await submit(system, WITH_SUPPLEMENT)
    refused, refused_plan = await submit(system, WITH_SUPPLEMENT)
    stopped, stopped_plan = await submit(system, WITH_SUPPLEMENT)
    paused, paused_plan = await submit(system, WITH_SUPPLEMENT)

    clock.advance(timedelta(minutes=30))
    await accepted(system, inter, "hand-offs", officer_of(CONG_THUONG), {"to_unit_code": CONG_AN})
    await accepted(system, withdrawn, "withdrawal", counter_of(DESK), REASON)
    await accepted(system, refused, "refusal", officer_of(holder(refused_plan)), REASON)
    await accepted(system, stopped, "stop", officer_of(holder(stopped_plan)), REASON)
    await accepted(
        system, paused, "supplement-requests", officer_of(holder(paused_plan)), SUPPLEMENT
    )
    await accepted(system, done, "result", officer_of(holder(done_plan)))
    await status_is(system, done, 9)
    await accepted(system, done, "return", counter_of(DESK))

    # Two half-day dossiers run past their due time: each gets its apology, after it (late).
    due = max(_parse(p["deadline"]["due_at"]) for p in (late_plan, paused_late_plan))
    clock.set(due + timedelta(minutes=10))
    for code in (late, paused_late):
        await eventually(has(system, code, "apology-issued"), what="apology")
    # One of them then waits on the citizen: paused, already past due.
    await accepted(
        system,
        paused_late,
        "supplement-requests",
        officer_of(holder(paused_late_plan)),
        SUPPLEMENT,
    )
    await eventually(lambda: _has(system, paused_late, "clock-paused"), what="clock paused")

    # The last runs past its due time; the period ends before its apology is issued.
    unapologised, unapologised_plan = await submit(system, HALF_DAY)
    unapologised_due = _parse(unapologised_plan["deadline"]["due_at"])
    clock.set(unapologised_due + timedelta(minutes=10))
    await eventually(lambda: _has(system, unapologised, "apology-issued"), what="apology")
    end = unapologised_due + timedelta(minutes=5)

    closed = await indicators(system, start, end)
    total = closed["total"]
    assert total["received"] == total["received_counter"] == 9, total
    assert total["carried_over"] == 0
    assert total["done_early"] + total["done_on_time"] == 1 and total["done_late"] == 0
    assert (total["returned"], total["withdrawn"], total["refused"], total["stopped"]) == (
        1,
        1,
        1,
        1,
    )
    assert total["in_progress_within_due"] == 1  # the inter-agency dossier
    assert total["in_progress_past_due"] == 2  # the late one and the unapologised one
    assert (total["paused_within_due"], total["paused_past_due"], total["paused"]) == (1, 1, 2)
    assert (total["apologies_issued"], total["apologies_on_time"], total["apologies_late"]) == (
        2,
        0,
        2,
    )
    assert total["apologies_missing"] == total["late_without_apology"] == 1
    assert total["consultations_replied_late"] == 0
    assert sum(u["received"] for u in closed["units"]) == 9
    assert all(u["unit_code"] and "unit_name" in u for u in closed["units"])

    # Later: the inter-agency dossier goes on and finishes late, the late one finishes, the
    # paused ones are withdrawn or resumed.
    clock.advance(timedelta(hours=1))
    await accepted(system, inter, "hand-offs", officer_of(CONG_AN), {"to_unit_code": CONG_THUONG})
    await eventually(lambda: _has(system, inter, "hand-off-recorded"), what="hand-off")
    clock.set(_parse(inter_plan["deadline"]["due_at"]) + timedelta(minutes=10))
    await eventually(lambda: _has(system, inter, "apology-issued"), what="apology")
    await accepted(system, inter, "result", officer_of(CONG_THUONG))
    await accepted(system, late, "result", officer_of(holder(late_plan)))
    await accepted(system, paused, "withdrawal", counter_of(DESK), REASON)
    await accepted(system, paused_late, "supplements", counter_of(DESK))
    for code in (inter, late):
        await eventually(has(system, code, "completed"), what="completed")
    await eventually(lambda: _has(system, paused_late, "clock-resumed"), what="resumed")
    await eventually(lambda: _has(system, paused, "withdrawn"), what="withdrawn")

    assert await indicators(system, start, end) == closed

    # The next period carries over what was open, and counts what happened since.
    after = await indicators(system, end, clock() + timedelta(minutes=1))
    later = after["total"]
    assert later["carried_over"] == 5 and later["received"] == 0, later
    assert later["done_late"] == 2 and later["withdrawn"] == 1
    assert later["apologies_late"] == 2  # the unapologised one's, and the inter-agency one's
    assert later["apologies_missing"] == 0
    assert later["in_progress_past_due"] + later["paused_past_due"] == 2
