"""Parallel steps and send-backs end to end, on the real Kafka broker and PostgreSQL server,
in simulated time: procedure 1.012941 forks after the birth registration (residence at the
police, health insurance at social insurance, side by side) and joins at the ward, which
sends it back to the police with a reason; the police redo their step on a fresh clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.clock import SimulatedClock
from tests.factories import submission
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, officer_of

WARD, POLICE, INSURANCE = "000.41.04.H29", "000.20.14.H29", "000.31.01.H29"
BIRTH = "1.012941"  # birth registration, then residence and health insurance side by side


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 1, 8, 0)  # a Tuesday morning
    async with simulated_system(infrastructure, start, "sim") as running:
        yield running


async def test_a_fork_joins_and_a_send_back_returns_the_dossier(system: System) -> None:
    assert isinstance(system.clock, SimulatedClock)
    clock = system.clock
    async with system.client("intake", counter_of(WARD)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=BIRTH))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    planned = await eventually(lambda: _planned(system, code), what="plan and step clocks")
    steps = planned["routing"]["steps"]
    assert [s["unit_code"] for s in steps] == [WARD, POLICE, INSURANCE, WARD]
    residence_due, insurance_due = _parse(steps[1]["due_at"]), _parse(steps[2]["due_at"])
    # Both branches start together; each has its own share: insurance (0.3) before residence.
    assert _parse(steps[0]["due_at"]) < insurance_due < residence_due
    assert _parse(steps[3]["due_at"]) == _parse(planned["deadline"]["due_at"])

    # The fork: the ward hands off to the police, and both branch units hold the dossier.
    handed = await _act(system, code, "hand-offs", officer_of(WARD), {"to_unit_code": POLICE})
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _holders(system, code, [POLICE, INSURANCE]), what="the fork")
    assert await _clock_steps_started(system, code) == {2, 3}

    # Insurance finishes after its own due time (late), the police before theirs (early).
    clock.set(insurance_due + timedelta(minutes=30))
    handed = await _act(system, code, "hand-offs", officer_of(INSURANCE), {"to_unit_code": WARD})
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _holders(system, code, [POLICE]), what="one branch finished")
    not_yet = await _act(system, code, "result", officer_of(WARD))
    assert not_yet.status_code == 403, not_yet.text  # the join has not happened
    handed = await _act(system, code, "hand-offs", officer_of(POLICE), {"to_unit_code": WARD})
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _holders(system, code, [WARD]), what="the join")
    judged = await eventually(lambda: _judged(system, code, {2, 3}), what="both branches judged")
    assert judged[2]["timeliness"] == "early" and judged[3]["timeliness"] == "late"
    assert _parse(judged[2]["due_at"]) == residence_due
    assert _parse(judged[3]["due_at"]) == insurance_due

    # A send-back to a step that is not earlier is rejected, naming why.
    wrong = {"to_step_sequence": 4, "reason": "Sai bước"}
    sent = await _act(system, code, "send-backs", officer_of(WARD), wrong)
    assert sent.status_code == 202, sent.text
    rejected = await eventually(lambda: _last_send_back(system, code), what="rejection")
    assert rejected["rejected"] and "not earlier" in rejected["reason"]

    # The ward sends it back to the police: they hold it again, on a fresh clock.
    clock.advance(timedelta(hours=1))
    reason = "Địa chỉ thường trú trên thẻ không khớp giấy khai sinh"
    sent = await _act(
        system,
        code,
        "send-backs",
        officer_of(WARD),
        {"to_step_sequence": 2, "reason": reason},
    )
    assert sent.status_code == 202, sent.text
    await eventually(lambda: _holders(system, code, [POLICE]), what="the send-back")
    found = await _view(system, code)
    assert found["routing"]["last_send_back"]["reason"] == reason
    assert found["routing"]["current_step"] == 2
    timeline = await _timeline(system, code)
    [row] = [e for e in timeline if e["event_type"].endswith(".sent-back.v1")]
    assert row["details"]["reason"] == reason and row["details"]["to_step_sequence"] == 2
    assert row["unit_code"] == WARD
    fresh = await eventually(lambda: _fresh_due(system, code, residence_due), what="fresh due")
    assert fresh > clock()

    # The police hand it on again: the insurance branch stays done, so the join is at once.
    handed = await _act(system, code, "hand-offs", officer_of(POLICE), {"to_unit_code": WARD})
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _holders(system, code, [WARD]), what="the second join")
    done = await _act(system, code, "result", officer_of(WARD))
    assert done.status_code == 202, done.text
    await eventually(lambda: _status(system, code, 9), what="processed")


async def _view(system: System, code: str) -> dict[str, Any]:
    async with system.client("intake", OPERATOR_USER) as client:
        found: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
        return found


async def _timeline(system: System, code: str) -> list[dict[str, Any]]:
    async with system.client("intake", OPERATOR_USER) as client:
        events: list[dict[str, Any]] = (await client.get(f"/v1/dossiers/{code}/timeline")).json()[
            "events"
        ]
        return events


async def _act(system: System, code: str, action: str, user: str, body: Any = None) -> Any:
    async with system.client("intake", user) as client:
        return await client.post(f"/v1/dossiers/{code}/{action}", json=body or {})


async def _planned(system: System, code: str) -> dict[str, Any] | None:
    found = await _view(system, code)
    routing, deadline = found["routing"], found["deadline"]
    if routing and deadline and all(step["due_at"] for step in routing["steps"]):
        return found
    return None


async def _holders(system: System, code: str, units: list[str]) -> bool:
    return bool((await _view(system, code))["routing"]["holding_unit_codes"] == units)


async def _clock_steps_started(system: System, code: str) -> set[int]:
    async with system.client("deadline", OPERATOR_USER) as client:
        clock = (await client.get(f"/v1/clocks/{code}")).json()
    return {s["sequence"] for s in clock["steps"] if s.get("started_at") and not s["completed_at"]}


async def _judged(system: System, code: str, wanted: set[int]) -> dict[int, Any] | None:
    steps = {s["sequence"]: s for s in (await _view(system, code))["routing"]["steps"]}
    return steps if all(steps[n]["timeliness"] for n in wanted) else None


async def _last_send_back(system: System, code: str) -> dict[str, Any] | None:
    last: dict[str, Any] | None = (await _view(system, code))["routing"]["last_send_back"]
    return last


async def _fresh_due(system: System, code: str, old: datetime) -> datetime | None:
    step = (await _view(system, code))["routing"]["steps"][1]
    due = _parse(step["due_at"])
    return due if due != old and step["finished_at"] is None else None


async def _status(system: System, code: str, wanted: int) -> bool:
    return bool((await _view(system, code))["status"]["code"] == wanted)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)
