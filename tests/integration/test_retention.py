"""Retention, on the real Kafka broker and PostgreSQL server with the four services in this
process and a simulated clock: published outbox rows and processed inbox rows are purged after
their periods, and a dossier's personal data is erased a period after its end, in intake's
receipt, the citizen's rating comment and the notifier's copy (its letter's PDF and HTML too),
while the dossier stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.stack import database_url
from shared.clock import SimulatedClock
from shared.retention import RetentionPurge, RetentionSettings
from tests.conftest import TEST_DATABASE, clean_database, throwaway_namespace
from tests.factories import APPLICANT, submission
from tests.metrics import samples
from tests.system import System, eventually, running_system
from tests.users import OPERATOR_USER, counter_of

DESK = "000.00.00.H29"

_DEFAULT = {name: field.default for name, field in RetentionSettings.model_fields.items()}
OUTBOX = timedelta(seconds=_DEFAULT["outbox_retention_seconds"])
INBOX = timedelta(seconds=_DEFAULT["inbox_retention_seconds"])
PERSONAL_DATA = timedelta(days=_DEFAULT["personal_data_retention_days"])


DATABASE = f"{TEST_DATABASE}_retention"


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    # The outbox and inbox record the database's time: the simulated clock starts at it.
    clock = SimulatedClock(datetime.now(UTC))
    await clean_database(DATABASE)
    async with running_system(
        infrastructure, clock, database=DATABASE, namespace=await throwaway_namespace("retention")
    ) as running:
        yield running


def clock_of(system: System) -> SimulatedClock:
    assert isinstance(system.clock, SimulatedClock)
    return system.clock


def purge_of(system: System, service: str) -> RetentionPurge:
    purge = system.apps[service].state.runtime.retention
    assert isinstance(purge, RetentionPurge)
    return purge


async def query(system: System, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url(DATABASE))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def personal_values_in(system: System, code: str) -> dict[str, list[str]]:
    """Which applicant values each table of intake and the notifier still holds for the
    dossier (its rows as text; the outboxes whole)."""
    tables = {
        "intake.dossiers": "SELECT t::text FROM intake.dossiers t WHERE code = $1",
        "intake.outbox": "SELECT t::text FROM intake.outbox t WHERE message_key = $1",
        "intake.ratings": "SELECT t::text FROM intake.ratings t WHERE dossier_code = $1",
        "notifier.addressees": "SELECT t::text FROM notifier.addressees t WHERE dossier_code = $1",
        # the letter's record and HTML; its PDF (compressed) is checked for NULL below
        "notifier.apologies": "SELECT t::text FROM notifier.apologies t WHERE dossier_code = $1",
    }
    found = {}
    for table, sql in tables.items():
        text = "\n".join(row[0] for row in await query(system, sql, code))
        found[table] = [key for key, value in APPLICANT.items() if value and value in text]
    return {table: keys for table, keys in found.items() if keys}


async def purge_all(system: System) -> None:
    for service in system.apps:
        await purge_of(system, service).purge_once()


# First: the clock is at the database's time, which the outbox and inbox record.
async def test_published_outbox_and_processed_inbox_rows_are_purged_after_their_periods(
    system: System,
) -> None:
    clock = clock_of(system)
    async with system.client("intake", counter_of(DESK)) as client:
        posted = await client.post("/v1/dossiers", json=submission())
        assert posted.status_code == 201, posted.text
    code = posted.json()["dossier_code"]
    await eventually(lambda: _applied_everywhere(system, code), what="the dossier's events applied")

    async def counts() -> dict[str, int]:
        [row] = await query(
            system,
            "SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NOT NULL) AS outbox,"
            " (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) AS unpublished,"
            " (SELECT count(*) FROM routing.inbox) + (SELECT count(*) FROM deadline.inbox)"
            " + (SELECT count(*) FROM notifier.inbox) AS inbox",
        )
        return dict(row)

    async def settled() -> dict[str, int] | None:
        found = await counts()
        return found if found["unpublished"] == 0 else None

    # The relay marks a row published after the broker's ack, so a consumer may apply an
    # event before its row counts as published: wait until none is left to mark.
    before = await eventually(settled, what="intake's outbox all published")
    assert before["outbox"] and before["inbox"]

    clock.advance(OUTBOX - timedelta(minutes=10))
    await purge_all(system)
    assert (await counts())["outbox"] == before["outbox"]  # kept within the period

    clock.advance(timedelta(hours=1))
    await purge_all(system)
    after_outbox = await counts()
    assert after_outbox["outbox"] == 0 and after_outbox["inbox"] >= before["inbox"]

    clock.advance(INBOX)
    await purge_all(system)
    assert (await counts())["inbox"] == 0
    outbox_purged = sum(
        v for a, v in samples(system.readers, "onestop.retention.purged") if a["kind"] == "outbox"
    )
    assert outbox_purged >= before["outbox"]


async def test_personal_data_is_erased_a_period_after_the_dossiers_end(system: System) -> None:
    clock = clock_of(system)
    async with system.client("intake", counter_of(DESK)) as client:
        posted = await client.post("/v1/dossiers", json=submission(procedure_code="1.000894"))
        assert posted.status_code == 201, posted.text
        code = posted.json()["dossier_code"]

        async def clock_started() -> dict[str, Any] | None:
            view: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
            return view if view["deadline"] and view["notifier"] else None

        view = await eventually(clock_started, what="clock and apology obligation")
        clock.set(datetime.fromisoformat(view["deadline"]["due_at"]) + timedelta(minutes=1))
        await eventually(lambda: _mailed(system, code), what="the apology letter by e-mail")

        async def apology_projected() -> bool:
            view = (await client.get(f"/v1/dossiers/{code}")).json()
            return bool(view["notifier"] and view["notifier"]["apology_issued_at"])

        # Intake's view learns of the apology from the notifier's event, a moment later.
        await eventually(apology_projected, what="the apology in intake's view")
        withdrawn = await client.post(
            f"/v1/dossiers/{code}/withdrawal", json={"reason": "Công dân xin rút hồ sơ"}
        )
        assert withdrawn.status_code == 200, withdrawn.text
    # The citizen rates it, and writes their phone number in the comment.
    async with system.client("intake") as citizen:
        rated = await citizen.post(
            "/tra-cuu/danh-gia",
            data={
                "ma_ho_so": code,
                "ma_pin": posted.json()["lookup_pin"],
                "diem": "2",
                "y_kien": f"Chậm quá, gọi tôi {APPLICANT['phone']}",
            },
        )
        assert rated.status_code == 200, rated.text
    await eventually(
        lambda: query(
            system,
            "SELECT 1 FROM notifier.addressees WHERE dossier_code = $1 AND ended_at IS NOT NULL",
            code,
        ),
        what="the notifier knows the dossier ended",
    )

    # Within the period: every copy is kept, letters still served.
    clock.advance(PERSONAL_DATA - timedelta(hours=1))
    await purge_all(system)
    assert set(await personal_values_in(system, code)) >= {
        "intake.dossiers",
        "intake.ratings",  # the comment
        "notifier.addressees",
        "notifier.apologies",
    }

    # After it: erased everywhere, the dossier and its non-personal facts kept.
    clock.advance(timedelta(hours=2))
    await purge_all(system)
    assert await personal_values_in(system, code) == {}
    async with system.client("intake", OPERATOR_USER) as client:
        after = await client.get(f"/v1/dossiers/{code}")
    assert after.status_code == 200, after.text
    assert after.json()["receipt"]["applicant"] is None
    assert after.json()["status"]["code"] == 7 and after.json()["notifier"]["apology_issued_at"]
    [rating] = await query(system, "SELECT score FROM intake.ratings WHERE dossier_code = $1", code)
    assert rating["score"] == 2  # the rating stays, its comment is gone
    [letter] = await query(
        system,
        "SELECT letter_number, html, pdf, letter ? 'addressee' AS named, delivered_at"
        " FROM notifier.apologies WHERE dossier_code = $1",
        code,
    )
    assert letter["letter_number"] and letter["delivered_at"]
    assert (letter["html"], letter["pdf"], letter["named"]) == (None, None, False)
    async with system.client("notifier", OPERATOR_USER) as client:
        gone = await client.get(f"/v1/apologies/{code}.pdf")
    assert gone.status_code == 410 and "erased" in gone.text

    erased = {
        service: sum(
            v for a, v in samples([r], "onestop.retention.purged") if a == {"kind": "personal_data"}
        )
        for service, r in zip(system.apps, system.readers, strict=True)
    }
    assert erased["intake"] >= 1 and erased["notifier"] >= 1, erased


async def _mailed(system: System, code: str) -> bool:
    return bool(system.mailbox.to(APPLICANT["email"], code))


async def _applied_everywhere(system: System, code: str) -> bool:
    rows = await query(
        system,
        "SELECT (SELECT count(*) FROM routing.routes WHERE dossier_code = $1)"
        " + (SELECT count(*) FROM notifier.addressees WHERE dossier_code = $1"
        "    AND applicant_recorded AND procedure_name IS NOT NULL) AS applied",
        code,
    )
    return bool(rows[0]["applied"] == 2)
