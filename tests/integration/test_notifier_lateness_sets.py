"""The notifier's set-based path on PostgreSQL: a batch's due-soon and overdue detections,
applied together at commit, store the same alerts (recipients too), drafts, letters and
obligations, and emit each dossier's events in the same order, as one transaction per event;
a dossier without its addressee fails the whole batch (the consumer then goes one by one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.notifier.handlers import Notifier
from services.notifier.repository import AddresseeUnknown, NotifierUnitOfWork
from shared.catalog import load_catalog
from shared.events import DossierClockStarted, DueSoonDetected, Event, OverdueDetected
from shared.settings import DEFAULT_CATALOG
from tests.factories import applicant_recorded, received_event
from tests.fakes.notifier import OPERATOR, notifier_at
from tests.integration.notifier_schema import (
    notifier_schema,
    schema_named,
    unit_of_work,
)

SCHEMA = schema_named("lateness_sets")
JUSTICE = "000.00.05.H29"
POLICE = "000.20.01.H29"
RECEIVED_AT = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
DUE = datetime(2026, 12, 8, 2, 30, tzinfo=UTC)
NOW = DUE + timedelta(minutes=1)
DOSSIERS = 6


@pytest.fixture(scope="module")
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with notifier_schema(SCHEMA) as created:
        yield created


@pytest.fixture
def notifier() -> Notifier:
    return notifier_at(lambda: NOW, load_catalog(DEFAULT_CATALOG))


def codes(batch: str) -> list[str]:
    return [f"000.00.00.H29-2611{batch}-{n:04d}" for n in range(1, DOSSIERS + 1)]


def unit_of(index: int) -> str:
    return (JUSTICE, POLICE)[index % 2]


async def seed(pool: asyncpg.Pool, notifier: Notifier, batch: str, *, applicants: bool) -> None:
    async with unit_of_work(pool, SCHEMA)() as uow:
        for index, code in enumerate(codes(batch)):
            received = received_event(code, received_at=RECEIVED_AT, appointment_at=DUE)
            await notifier.on_dossier_received(received, uow)
            if applicants:
                await notifier.on_applicant_recorded(applicant_recorded(code), uow)
            started = DossierClockStarted(
                dossier_code=code,
                responsible_unit_code=unit_of(index),
                started_at=RECEIVED_AT,
                due_at=DUE,
                due_soon_at=DUE - timedelta(days=1),
            )
            await notifier.on_clock_started(started, uow)
        await uow.commit()


def lateness(batch: str) -> list[Event]:
    """Every dossier's due soon, then every one's overdue, as one scan emits them."""
    soon: list[Event] = []
    late: list[Event] = []
    for index, code in enumerate(codes(batch)):
        unit = unit_of(index)
        soon.append(
            DueSoonDetected(
                dossier_code=code, responsible_unit_code=unit, due_at=DUE, detected_at=NOW
            )
        )
        late.append(
            OverdueDetected(
                dossier_code=code, responsible_unit_code=unit, due_at=DUE, detected_at=NOW
            )
        )
    return soon + late


async def apply(notifier: Notifier, uow: NotifierUnitOfWork, event: Event) -> None:
    if isinstance(event, DueSoonDetected):
        await notifier.on_due_soon(event, uow)
    else:
        assert isinstance(event, OverdueDetected)
        await notifier.on_overdue(event, uow)


async def stored(pool: asyncpg.Pool, batch: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the batch's dossiers left, by their number (the code's last four digits)."""
    pattern = f"%-2611{batch}-%"
    alerts = await pool.fetch(
        "SELECT right(dossier_code, 4) AS n, kind, unit_code, recipients FROM alerts"
        " WHERE dossier_code LIKE $1 ORDER BY 1, 2",
        pattern,
    )
    drafts = await pool.fetch(
        "SELECT right(dossier_code, 4) AS n, unit_code, original_due_at, latest_new_due_at"
        " FROM apology_drafts WHERE dossier_code LIKE $1 ORDER BY 1",
        pattern,
    )
    letters = await pool.fetch(
        "SELECT right(a.dossier_code, 4) AS n, a.unit_code, a.timeliness, a.signed_by,"
        " a.new_due_at, a.pdf_pending, o.issued_at FROM apologies a"
        " JOIN apology_obligations o USING (dossier_code)"
        " WHERE a.dossier_code LIKE $1 ORDER BY 1",
        pattern,
    )
    events = await pool.fetch(
        "SELECT right(message_key, 4) AS n, event_type, dossier_sequence, payload::jsonb->>'kind'"
        " AS kind FROM outbox WHERE message_key LIKE $1 AND event_type NOT LIKE '%obligation%'"
        " ORDER BY 1, 3",
        pattern,
    )
    return {
        "alerts": [tuple(row) for row in alerts],
        "drafts": [tuple(row) for row in drafts],
        "letters": [tuple(row) for row in letters],
        "events": [tuple(row) for row in events],
    }


async def test_a_batch_of_lateness_leaves_what_one_transaction_per_event_leaves(
    pool: asyncpg.Pool, notifier: Notifier
) -> None:
    await seed(pool, notifier, "01", applicants=True)
    for event in lateness("01"):
        async with unit_of_work(pool, SCHEMA)() as uow:
            await apply(notifier, uow, event)
            await uow.commit()

    await seed(pool, notifier, "02", applicants=True)
    async with unit_of_work(pool, SCHEMA)() as uow:
        for event in lateness("02"):
            await apply(notifier, uow, event)
        assert len(uow.deferred) == 2 * DOSSIERS  # put off until the commit
        await uow.commit()

    one_by_one, at_once = await stored(pool, "01"), await stored(pool, "02")
    assert at_once == one_by_one
    assert len(at_once["letters"]) == DOSSIERS
    assert len(at_once["alerts"]) == 3 * DOSSIERS  # due soon, overdue, escalated
    heads = {row[2]: row[3] for row in at_once["alerts"]}
    assert heads == {
        JUSTICE: ["giamdoc.stp@tphcm.gov.vn", OPERATOR],
        POLICE: [heads[POLICE][0], OPERATOR],
    }
    numbers = await pool.fetch(
        "SELECT unit_code, letter_number FROM apologies WHERE dossier_code LIKE '%-261102-%'"
    )
    assert len({row["letter_number"] for row in numbers}) == DOSSIERS  # each its own number


async def test_a_dossier_without_its_addressee_fails_the_batch(
    pool: asyncpg.Pool, notifier: Notifier
) -> None:
    await seed(pool, notifier, "03", applicants=False)
    async with unit_of_work(pool, SCHEMA)() as uow:
        for event in lateness("03"):
            await apply(notifier, uow, event)
        with pytest.raises(AddresseeUnknown):
            await uow.commit()

    assert (await stored(pool, "03"))["alerts"] == []  # rolled back, nothing half done
