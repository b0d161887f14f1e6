"""Every metric the dashboards and alert rules read exists: after a short flow through the
four real services in simulated time (a dossier due soon, then overdue, the city's late
apology, its letter refused by the applicant's mail server), each name is on some service's
Prometheus text, as /metrics serves it. A dashboard panel on a misspelt or renamed metric
would otherwise stay empty, and an alert on it would never fire."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.clock import SimulatedClock
from tests.dashboards import ROOT, used_metrics
from tests.factories import APPLICANT, submission
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of

DESK = "000.00.00.H29"
HALF_A_DAY = "1.000894"  # a procedure due half a working day after receipt
# Counted only when a parked message waits past its limit (tests/integration/test_parking.py
# makes it happen): here it is enough that the service declares the instrument.
NOT_IN_THIS_FLOW = {"onestop_messages_parking_expired_total": "onestop.messages.parking_expired"}


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    async with simulated_system(infrastructure, hcmc(2026, 12, 2, 8, 0), "dash") as running:
        yield running


async def _planned(system: System, code: str) -> dict[str, Any] | None:
    async with system.client("intake", OPERATOR_USER) as client:
        found: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
    return found if found["routing"] and found["deadline"] else None


def _series_names(text: str) -> set[str]:
    return set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))


async def test_every_metric_the_dashboards_and_alerts_read_is_exposed(system: System) -> None:
    clock = system.clock
    assert isinstance(clock, SimulatedClock)
    system.mailbox.refuse.add(APPLICANT["email"])  # the apology letter: dead-lettered
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=HALF_A_DAY))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    planned = await eventually(lambda: _planned(system, code), what="routing and the clock")
    clock.set(datetime.fromisoformat(planned["deadline"]["due_at"]) + timedelta(minutes=5))

    used = used_metrics()
    missing: dict[str, set[str]] = {}

    async def all_exposed() -> bool:
        exposed = set().union(*(_series_names(system.exposition(s)) for s in system.apps))
        missing.clear()
        missing.update({n: w for n, w in used.items() if n not in exposed})
        return set(missing) <= set(NOT_IN_THIS_FLOW)

    await eventually(
        all_exposed, timeout=30, what=lambda: f"every metric exposed; missing: {missing}"
    )
    sources = "\n".join(p.read_text("utf-8") for p in (ROOT / "shared").rglob("*.py"))
    for name, instrument in NOT_IN_THIS_FLOW.items():
        assert f'"{instrument}"' in sources, f"{name}: no service declares {instrument}"
