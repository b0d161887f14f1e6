"""Inter-agency consultation (lấy ý kiến) end to end, on the real Kafka broker and PostgreSQL
server, in simulated time: the unit holding a dossier consults two units; one replies in time
(its consultation closes), the other does not: the deadline service detects it the moment its
due time passes, the notifier reminds that unit's head and alerts the operators, its late
reply is marked late and shows on the lateness board, the timeline and the indicators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.clock import SimulatedClock
from tests.factories import submission
from tests.system import OPERATOR, System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, head_of, officer_of

DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
NONG_NGHIEP = "000.14.01.H29"
INTER_AGENCY = "2.000647"  # Sở Công Thương holds step 1 (half of 15 working days)
HEAD_CONG_AN, HEAD_NONG_NGHIEP = "giamdoc.catp@tphcm.gov.vn", "giamdoc.vpdkdd@tphcm.gov.vn"


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 1, 8, 0)  # a Tuesday morning
    async with simulated_system(infrastructure, start, "sim") as running:
        yield running


async def post(system: System, user: str, path: str, body: dict[str, Any]) -> Any:
    async with system.client("intake", user) as client:
        return await client.post(path, json=body)


async def timeline(system: System, code: str) -> dict[str, Any]:
    async with system.client("intake", OPERATOR_USER) as client:
        return (await client.get(f"/v1/dossiers/{code}/timeline")).json()


async def _routed(system: System, code: str) -> bool:
    async with system.client("intake", OPERATOR_USER) as client:
        found = (await client.get(f"/v1/dossiers/{code}")).json()
    return bool(found["routing"] and found["deadline"] and found["status"]["code"] == 4)


async def _kept_by_deadline(system: System, code: str) -> bool:
    kinds = [e["event_type"].split(".")[-2] for e in (await timeline(system, code))["events"]]
    return "consultation-requested" in kinds


async def _has(system: System, code: str, kind: str) -> bool:
    events = (await timeline(system, code))["events"]
    return any(e["event_type"].split(".")[-2] == kind for e in events)


async def _reminded(system: System, address: str, code: str) -> bool:
    return bool(system.mailbox.to(address, f"lấy ý kiến về hồ sơ {code}"))


async def test_a_late_reply_is_escalated_and_shows_on_the_board(system: System) -> None:
    clock = system.clock
    assert isinstance(clock, SimulatedClock)
    received = await post(
        system, counter_of(DESK), "/v1/dossiers", submission(procedure_code=INTER_AGENCY)
    )
    assert received.status_code == 201, received.text
    code = received.json()["dossier_code"]
    await eventually(lambda: _routed(system, code), what="routed and clocked")

    ask = {
        "question": "Cửa hàng có đủ điều kiện phòng cháy chữa cháy không?",
        "documents": ["Bản vẽ mặt bằng cửa hàng"],
        "consulted_unit_codes": [CONG_AN, NONG_NGHIEP],
    }
    path = f"/v1/dossiers/{code}/consultations"
    # Only the unit holding the dossier asks.
    refused = await post(system, officer_of(CONG_AN), path, ask)
    assert refused.status_code == 403, refused.text
    asked = await post(system, officer_of(CONG_THUONG), path, ask)
    assert asked.status_code == 201, asked.text
    consultations = {c["unit_code"]: c for c in asked.json()["consultations"]}
    police, land = consultations[CONG_AN], consultations[NONG_NGHIEP]
    police_due = datetime.fromisoformat(police["reply_due_at"])
    # Five working days of the consulted unit's calendar (a week, at least).
    assert police_due >= clock() + timedelta(days=7), police_due
    await eventually(lambda: _kept_by_deadline(system, code), what="request on the timeline")

    def reply_path(consultation: dict[str, Any]) -> str:
        return f"{path}/{consultation['consultation_id']}/reply"

    # Nông nghiệp replies in time: its consultation closes, nobody is reminded.
    clock.advance(timedelta(days=1))
    in_time = await post(
        system, head_of(NONG_NGHIEP), reply_path(land), {"opinion": "Không có ý kiến khác."}
    )
    assert in_time.status_code == 200, in_time.text
    # Someone else than the consulted unit: 403; a second reply: 409.
    other = await post(system, officer_of(CONG_THUONG), reply_path(police), {"opinion": "x"})
    assert other.status_code == 403, other.text
    again = await post(system, officer_of(NONG_NGHIEP), reply_path(land), {"opinion": "y"})
    assert again.status_code == 409, again.text

    # Công an, consulted, reads the dossier it answers on.
    async with system.client("intake", officer_of(CONG_AN)) as client:
        assert (await client.get(f"/v1/dossiers/{code}")).status_code == 200

    # Both due times pass; Công an has not replied: detected, its head reminded, the
    # operators alerted. Nông nghiệp, which replied, is not reminded.
    land_due = datetime.fromisoformat(land["reply_due_at"])
    clock.set(max(police_due, land_due) + timedelta(minutes=1))
    await eventually(lambda: _reminded(system, HEAD_CONG_AN, code), what="reminder to the head")
    await eventually(lambda: _reminded(system, OPERATOR, code), what="operators alerted")
    assert len(system.mailbox.to(HEAD_CONG_AN, f"lấy ý kiến về hồ sơ {code}")) == 1
    assert not system.mailbox.to(HEAD_NONG_NGHIEP, f"lấy ý kiến về hồ sơ {code}")
    await eventually(
        lambda: _has(system, code, "consultation-reply-overdue"), what="overdue on the timeline"
    )

    clock.advance(timedelta(hours=2))
    late = await post(
        system, officer_of(CONG_AN), reply_path(police), {"opinion": "Đủ điều kiện PCCC."}
    )
    assert late.status_code == 200, late.text

    shown = await timeline(system, code)
    rows = {c["unit_code"]: c for c in shown["consultations"]}
    assert rows[CONG_AN]["late"] is True and rows[CONG_AN]["overdue_at"] is not None
    assert rows[NONG_NGHIEP]["late"] is False and rows[NONG_NGHIEP]["overdue_at"] is None
    assert rows[CONG_AN]["working_hours"] > rows[NONG_NGHIEP]["working_hours"] > 0
    [reply_event] = [
        e
        for e in shown["events"]
        if e["event_type"].split(".")[-2] == "consultation-replied" and e["unit_code"] == CONG_AN
    ]
    assert "Đủ điều kiện PCCC." in reply_event["details"]["document"]

    period = {
        "from": (clock() - timedelta(days=30)).isoformat(),
        "to": (clock() + timedelta(minutes=1)).isoformat(),
    }
    async with system.client("intake") as client:
        board = (await client.get("/v1/reports/lateness", params=period)).json()
        figures = (await client.get("/v1/reports/indicators", params=period)).json()
    units = {u["unit_code"]: u for u in board["units"]}
    assert units[CONG_AN]["replies_late"] == 1
    assert units.get(NONG_NGHIEP, {"replies_late": 0})["replies_late"] == 0
    assert figures["total"]["consultations_replied_late"] == 1
