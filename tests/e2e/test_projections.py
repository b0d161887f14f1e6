"""Intake's view of a dossier is a projection of the owners' events: after a supplement, the
due time it shows is the deadline service's, the holder routing's, and the workload gauges
count the dossier at the unit that holds it, against its moved due time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.clock import SimulatedClock
from tests.factories import submission
from tests.metrics import samples
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, officer_of

DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
# Sở Công Thương, Công an, Sở Công Thương: a three-step inter-agency route.
INTER_AGENCY = "2.000647"


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 2, 8, 0)  # a Wednesday morning
    async with simulated_system(infrastructure, start, "projection") as running:
        yield running


async def test_after_a_supplement_the_view_and_the_gauges_show_the_moved_due_time_and_holder(
    system: System,
) -> None:
    clock = system.clock
    assert isinstance(clock, SimulatedClock)
    async with (
        system.client("intake", OPERATOR_USER) as intake,
        system.client("deadline", OPERATOR_USER) as deadline,
        system.client("intake", counter_of(DESK)) as desk,
        system.client("intake", officer_of(CONG_THUONG)) as cong_thuong,
        system.client("intake", officer_of(CONG_AN)) as cong_an,
    ):
        response = await desk.post("/v1/dossiers", json=submission(procedure_code=INTER_AGENCY))
        code = response.json()["dossier_code"]
        planned = await eventually(lambda: _view_when(intake, code, _planned), what="planned")
        original_due = _at(planned["deadline"]["due_at"])

        # Step 1 is handed to Công an, which asks the citizen for a supplement.
        clock.advance(timedelta(hours=1))
        handed = await cong_thuong.post(
            f"/v1/dossiers/{code}/hand-offs", json={"to_unit_code": CONG_AN}
        )
        assert handed.status_code == 202, handed.text
        await eventually(
            lambda: _view_when(intake, code, lambda v: _holder(v) == CONG_AN), what="handed off"
        )
        asked = await cong_an.post(
            f"/v1/dossiers/{code}/supplement-requests",
            json={
                "reason": "Thiếu bản sao căn cước",
                "missing_documents": ["Bản sao căn cước"],
            },
        )
        assert asked.status_code == 200, asked.text
        await eventually(
            lambda: _view_when(intake, code, lambda v: v["deadline"]["paused_since"]),
            what="paused",
        )

        # Two working days later the supplement arrives: every due time moves.
        clock.advance(timedelta(days=2))
        received = await desk.post(f"/v1/dossiers/{code}/supplements")
        assert received.status_code == 200, received.text
        owned = await eventually(lambda: _resumed_clock(deadline, code), what="clock resumed")
        moved_due = _at(owned["due_at"])
        assert moved_due > original_due

        view = await eventually(
            lambda: _view_when(intake, code, lambda v: _at(v["deadline"]["due_at"]) == moved_due),
            what="the view shows the moved due time",
        )

    # The view says what the owners say: due times from the deadline service, holder from
    # routing, and no pause any more.
    assert view["deadline"]["paused_since"] is None
    assert view["routing"]["current_unit_code"] == CONG_AN
    assert view["routing"]["current_step"] == 2
    owned_steps = {s["sequence"]: _at(s["due_at"]) for s in owned["steps"]}
    assert {s["sequence"]: _at(s["due_at"]) for s in view["routing"]["steps"]} == owned_steps
    assert owned_steps[3] == moved_due

    # Between the original and the moved due time the dossier is in progress at Công an and
    # not overdue; past the moved due time it is.
    clock.set(original_due + (moved_due - original_due) / 2)
    assert await eventually(lambda: _gauges(system, CONG_AN, expect_overdue=0), what="gauges")
    clock.set(moved_due + timedelta(minutes=1))
    assert await eventually(lambda: _gauges(system, CONG_AN, expect_overdue=1), what="overdue")


# --- helpers -------------------------------------------------------------------------------


async def _view_when(client: Any, code: str, predicate: Any) -> dict[str, Any] | None:
    view: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
    return view if predicate(view) else None


def _planned(view: dict[str, Any]) -> bool:
    routing = view["routing"]
    return bool(view["deadline"] and routing and all(s["due_at"] for s in routing["steps"]))


def _holder(view: dict[str, Any]) -> str | None:
    return view["routing"]["current_unit_code"] if view["routing"] else None


async def _resumed_clock(client: Any, code: str) -> dict[str, Any] | None:
    clock: dict[str, Any] = (await client.get(f"/v1/clocks/{code}")).json()
    return clock if clock["status"] == "running" and clock["paused_at"] is None else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _gauges(system: System, unit: str, *, expect_overdue: int) -> bool:
    """The intake's workload gauges for `unit`: one dossier in progress, `expect_overdue`
    of them overdue (this module's system holds only this test's dossier)."""
    values = _gauge_values(system, "onestop.dossiers.in_progress", "onestop.dossiers.overdue")
    return (
        values.get(("onestop.dossiers.in_progress", unit)) == 1
        and values.get(("onestop.dossiers.overdue", unit)) == expect_overdue
    )


def _gauge_values(system: System, *names: str) -> dict[tuple[str, str], int]:
    return {
        (name, str(attributes.get("onestop.unit"))): int(value)
        for name in names
        for attributes, value in samples(system.readers, name)
    }
