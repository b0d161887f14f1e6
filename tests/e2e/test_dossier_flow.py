"""A dossier posted over HTTP flows through the four services over the real Kafka broker."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from deploy.local import kafka_access
from deploy.local.stack import Stack
from shared.events import PUBLIC_TOPICS, Topic
from tests.apologies import sign_apology
from tests.conftest import TEST_NAMESPACE
from tests.factories import APPLICANT, submission
from tests.kafka_reader import read_until
from tests.users import bearer, counter_of, officer_of
from tests.waiting import eventually

DESK = "000.00.00.H29"

EXPECTED_TYPES = {
    Topic.INTAKE: {"vn.hcmc.onestop.dossier.received.v2"},
    Topic.ROUTING: {"vn.hcmc.onestop.dossier.routed.v2"},
    Topic.DEADLINE: {
        "vn.hcmc.onestop.dossier.clock-started.v2",
        "vn.hcmc.onestop.dossier.step-clocks-started.v1",
    },
    Topic.NOTIFIER: {"vn.hcmc.onestop.dossier.apology-obligation-recorded.v1"},
}


async def wait_for_outcomes(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    """The dossier's view once routing, deadline (with every step's due time) and notifier
    have done their part."""

    async def complete() -> dict[str, Any] | None:
        view: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
        routed = view["routing"] and all(s["due_at"] for s in view["routing"]["steps"])
        return view if routed and view["deadline"] and view["notifier"] else None

    view: dict[str, Any] = await eventually(complete, what=f"outcomes of {code}")
    return view


async def test_a_posted_dossier_reaches_downstream_systems_as_cloudevents(
    stack: Stack, kafka_bootstrap: str
) -> None:
    """Read as the downstream principal, in a consumer group of its own namespace."""
    desk = await bearer(counter_of(DESK))
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=desk) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code="2.000647"))
        assert response.status_code == 201, response.text
        code = response.json()["dossier_code"]

        records = await read_until(
            kafka_access.connection("downstream", kafka_bootstrap),
            [TEST_NAMESPACE + t for t in PUBLIC_TOPICS],
            lambda seen: (
                {r.headers["ce_type"] for r in seen if r.key == code}
                >= set().union(*EXPECTED_TYPES.values())
            ),
            namespace=TEST_NAMESPACE,
        )
        view = await wait_for_outcomes(client, code)

    ours = [r for r in records if r.key == code]
    for record in ours:
        headers = record.headers
        assert headers["ce_specversion"] == "1.0"
        assert (
            headers["ce_type"] in EXPECTED_TYPES[Topic(record.topic.removeprefix(TEST_NAMESPACE))]
        )
        assert headers["ce_subject"] == code
        assert (
            headers["ce_source"]
            == f"/onestop/{record.topic.removeprefix(TEST_NAMESPACE).split('.')[1]}"
        )
        assert headers["content-type"] == "application/json"
        assert headers["ce_id"] and headers["ce_time"]
        assert json.loads(record.value)["dossier_code"] == code

    # Each event after the receipt names its cause and its number among its source's events.
    by_type = {r.headers["ce_type"].split(".")[-2]: r.headers for r in ours}
    assert "ce_causationid" not in by_type["received"]
    assert by_type["routed"]["ce_causationid"] == by_type["received"]["ce_id"]
    assert by_type["clock-started"]["ce_causationid"] == by_type["received"]["ce_id"]
    assert by_type["step-clocks-started"]["ce_causationid"] == by_type["routed"]["ce_id"]
    assert by_type["received"]["ce_sequence"] == by_type["routed"]["ce_sequence"] == "1"

    assert view["status"] == {"code": 4, "name": "processing"}
    assert [s["unit_code"] for s in view["routing"]["steps"]] == [
        "000.00.10.H29",
        "000.20.01.H29",
        "000.00.10.H29",
    ]
    assert view["routing"]["current_unit_code"] == "000.00.10.H29"
    due = datetime.fromisoformat(view["deadline"]["due_at"])
    assert due == datetime.fromisoformat(view["receipt"]["appointment_at"])
    assert datetime.fromisoformat(view["routing"]["steps"][-1]["due_at"]) == due
    assert view["notifier"]["signer_title"] == "Giám đốc Sở Công Thương"


async def test_concurrent_posts_get_distinct_consecutive_codes(stack: Stack) -> None:
    desk = await bearer(counter_of("000.41.02.H29"))
    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=30, headers=desk) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/dossiers", json=submission()) for _ in range(40))
        )
    assert all(r.status_code == 201 for r in responses), [
        r.text for r in responses if r.status_code != 201
    ]
    sequences = sorted(int(r.json()["dossier_code"].rsplit("-", 1)[1]) for r in responses)
    assert sequences == list(range(sequences[0], sequences[0] + 40))


async def test_bad_input_is_refused_and_nothing_is_written(stack: Stack, postgres_url: str) -> None:
    stored_before = await _stored(postgres_url)
    desk = await bearer(counter_of(DESK))
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=desk) as client:
        cases = [
            (b'{"procedure_code": ', 400, "malformed_json"),
            (json.dumps(submission(procedure_code="9.999999")).encode(), 422, "procedure_code"),
            (json.dumps({"channel": "counter"}).encode(), 422, "applicant"),
            (b"{" + b" " * (300 * 1024) + b"}", 413, "exceeds"),
        ]
        for body, status, mention in cases:
            response = await client.post(
                "/v1/dossiers", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == status, response.text
            assert mention in response.text
    assert await _stored(postgres_url) == stored_before


async def _stored(postgres_url: str) -> tuple[int, int]:
    """Dossiers and outbox rows in intake's schema."""
    connection = await asyncpg.connect(postgres_url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM intake.dossiers) AS dossiers,"
            " (SELECT count(*) FROM intake.outbox) AS events"
        )
        return int(row["dossiers"]), int(row["events"])
    finally:
        await connection.close()


async def test_service_logs_hold_no_personal_data(stack: Stack) -> None:
    """The processes' own log files, after dossiers with known personal values went through."""
    desk = await bearer(counter_of(DESK))
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=desk) as client:
        code = (await client.post("/v1/dossiers", json=submission())).json()["dossier_code"]
        await wait_for_outcomes(client, code)
    logs = {service: stack.log_path(service).read_text() for service in stack.processes}
    assert all(logs.values())
    for service, text in logs.items():
        for value in APPLICANT.values():
            assert value not in text, f"personal data in {service}'s log: {value[:3]}…"


METRICS = {
    "intake": [
        "http_server_duration_milliseconds_count",
        "onestop_messages_handled_total",
        "onestop_consumer_lag",
        "onestop_outbox_backlog",
        "onestop_dossiers_in_progress",
        "onestop_dossiers_overdue",
    ],
    "routing": ["onestop_messages_handled_total", "onestop_consumer_lag", "onestop_outbox_backlog"],
    "deadline": ["onestop_messages_handled_total", "onestop_consumer_lag"],
    "notifier": ["onestop_messages_handled_total", "onestop_apologies_issued_total"],
}


async def test_each_service_exposes_its_metrics(stack: Stack) -> None:
    desk = await bearer(counter_of(DESK))
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=desk) as client:
        code = (await client.post("/v1/dossiers", json=submission())).json()["dossier_code"]
        view = await wait_for_outcomes(client, code)
        holder = view["routing"]["steps"][0]["unit_code"]
        extension = await client.post(
            f"/v1/dossiers/{code}/extension-requests",
            json={"reason": "Cần xác minh thêm"},
            headers=await bearer(officer_of(holder)),
        )
        assert extension.status_code == 200, extension.text
    async with httpx.AsyncClient(base_url=stack.url("notifier")) as notifier:
        await sign_apology(notifier, code, holder, "Cần xác minh thêm")

    async def exposed() -> dict[str, list[str]]:
        missing = {}
        async with httpx.AsyncClient() as client:
            for service, names in METRICS.items():
                text = (await client.get(f"{stack.url(service)}/metrics")).text
                missing[service] = [name for name in names if f"\n{name}{{" not in text]
        return {service: names for service, names in missing.items() if names}

    missing: dict[str, list[str]] = {}

    async def none_missing() -> bool:
        missing.clear()
        missing.update(await exposed())
        return not missing

    await eventually(
        none_missing, timeout=30, interval=0.5, what=lambda: f"metrics exposed (missing: {missing})"
    )
