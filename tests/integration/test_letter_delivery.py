"""The notifier's deliverer against the real PostgreSQL server and a real local SMTP server
(aiosmtpd): one send per letter, per-letter backoff, dead letters with operator alerts, and a
crash after the server accepted a letter. No Kafka: the outbox is read as rows.

The notifier's tables live in a schema of their own, so that no other test's letters (nor a
running notifier) are in the way."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from services.notifier.channels import SmtpChannel
from services.notifier.delivery import Deliverer, RetryPolicy
from services.notifier.letters import render_html, render_pdf
from shared.clock import SimulatedClock
from shared.events import AlertKind
from tests.integration.notifier_schema import (
    emptied,
    notifier_schema,
    schema_named,
    unit_of_work,
)
from tests.metrics import samples
from tests.system import OPERATOR, Mailbox
from tests.unit.test_letters import sample_letter

SCHEMA = schema_named("delivery")
UNIT = "000.00.05.H29"
SENDER = "mot-cua@tphcm.gov.vn"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PDF = render_pdf(sample_letter())
HTML = render_html(sample_letter())


@pytest.fixture(scope="module")
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The database created if missing (postgres_url); a notifier schema of this module's own."""
    async with notifier_schema(SCHEMA) as created:
        yield created


@pytest.fixture
async def clean(pool: asyncpg.Pool) -> asyncpg.Pool:
    return await emptied(pool)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


def deliverer(
    pool: asyncpg.Pool,
    clock: SimulatedClock,
    mailbox: Mailbox,
    policy: RetryPolicy,
    *,
    email: SmtpChannel | None = None,
    reader: InMemoryMetricReader | None = None,
) -> Deliverer:
    meter = MeterProvider(metric_readers=[reader] if reader else []).get_meter("test")
    return Deliverer(
        unit_of_work(pool, SCHEMA),
        clock,
        email=email or SmtpChannel("127.0.0.1", mailbox.port, SENDER, timeout=10),
        operators=[OPERATOR],
        policy=policy,
        dead_lettered=meter.create_counter("onestop.letters.dead_lettered"),
        jitter=lambda: 1.0,  # the whole delay: deterministic
    )


async def issue(pool: asyncpg.Pool, code: str, email: str, issued_at: datetime) -> None:
    """A letter as the handlers store it: its addressee, then the apology row."""
    letter = sample_letter(dossier_code=code)
    await pool.execute(
        "INSERT INTO addressees (dossier_code, procedure_name, receiving_unit_code, received_at,"
        " full_name, address, email, phone) VALUES ($1, 'p', $2, $3, $4, $5, $6, NULL)",
        code,
        UNIT,
        issued_at,
        letter.addressee.full_name,
        letter.addressee.address,
        email,
    )
    await pool.execute(
        "INSERT INTO apologies (dossier_code, letter_number, unit_code, signer_title, reason,"
        " original_due_at, new_due_at, issued_at, channel, letter, html, pdf)"
        " VALUES ($1, $2, $3, 'Giám đốc', 'r', $4, $4, $5, 'email', $6, $7, $8)",
        code,
        f"{uuid.uuid4().hex[:8]}/XL",
        UNIT,
        letter.new_due_at,
        issued_at,
        letter.model_dump(mode="json"),
        HTML,
        PDF,
    )


def code_of(number: int) -> str:
    return f"{UNIT}-261201-{number:04d}"


async def drain(deliverer: Deliverer) -> int:
    """Rounds until nothing is due now (what the loop does, without its pauses)."""
    total = 0
    while handled := await deliverer.deliver_due():
        total += handled
    return total


async def letter_row(pool: asyncpg.Pool, code: str) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM apologies WHERE dossier_code = $1", code)


def dead_lettered_count(reader: InMemoryMetricReader) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attributes, value in samples([reader], "onestop.letters.dead_lettered"):
        channel = str(attributes.get("onestop.channel"))
        counts[channel] = counts.get(channel, 0) + int(value)
    return counts


async def test_letters_refused_for_good_are_dead_lettered_and_never_block_a_good_one(
    clean: asyncpg.Pool, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    pool, clock, reader = clean, SimulatedClock(START), InMemoryMetricReader()
    refused = {code_of(n): f"khong.ton.tai.{n}@example.vn" for n in range(1, 26)}
    mailbox.refuse = set(refused.values())
    for number, (code, email) in enumerate(refused.items()):
        await issue(pool, code, email, START - timedelta(hours=1) + timedelta(seconds=number))
    good = code_of(99)
    await issue(pool, good, "nguoi.dan@example.vn", START)  # the newest of all
    caplog.set_level(logging.INFO)

    await drain(deliverer(pool, clock, mailbox, RetryPolicy(max_attempts=5), reader=reader))

    [letter] = mailbox.to("nguoi.dan@example.vn", good)
    assert [part.get_content() for part in letter.iter_attachments()] == [PDF]
    assert (await letter_row(pool, good))["delivered_at"] == START
    for code in refused:
        row = await letter_row(pool, code)
        assert row["dead_lettered_at"] == START and row["delivered_at"] is None, code
        assert row["delivery_attempts"] == 1 and "550" in row["last_error"]
        assert len(mailbox.to(OPERATOR, code)) == 1, code  # the operators' alert e-mail
    alerts = await pool.fetch(
        "SELECT dossier_code, recipients, delivered_at FROM alerts WHERE kind = $1",
        AlertKind.LETTER_UNDELIVERABLE.value,
    )
    assert {a["dossier_code"] for a in alerts} == set(refused)
    assert all(a["recipients"] == [OPERATOR] and a["delivered_at"] for a in alerts)
    raised = await pool.fetch(
        "SELECT message_key, payload FROM outbox WHERE event_type LIKE '%alert-raised%'"
    )
    assert {r["message_key"] for r in raised} == set(refused)
    assert {json.loads(r["payload"])["kind"] for r in raised} == {"letter_undeliverable"}
    assert dead_lettered_count(reader) == {"email": 25}
    logged = " ".join(  # the test server's own log (mail.log) quotes addresses: not ours
        f"{r.getMessage()} {r.__dict__}"
        for r in caplog.records
        if r.name.startswith(("services.", "shared.", "aiosmtplib"))
    )
    for email in [*refused.values(), "nguoi.dan@example.vn"]:
        assert email not in logged


async def test_a_failing_letter_backs_off_on_its_own_and_is_delivered_once_accepted(
    clean: asyncpg.Pool, mailbox: Mailbox
) -> None:
    pool, clock = clean, SimulatedClock(START)
    policy = RetryPolicy(initial=timedelta(seconds=30), maximum=timedelta(minutes=1))
    late, other = code_of(1), code_of(2)
    mailbox.defer = {"tam.hoan@example.vn"}
    await issue(pool, late, "tam.hoan@example.vn", START - timedelta(hours=1))
    sender = deliverer(pool, clock, mailbox, policy)

    delays = []
    for attempt in range(3):
        assert await drain(sender) == 1
        due = (await letter_row(pool, late))["next_attempt_at"]
        delays.append(due - clock())
        assert await drain(sender) == 0  # not before its time
        if attempt == 0:  # a letter issued meanwhile goes out at once: no head-of-line block
            await issue(pool, other, "nguoi.dan@example.vn", clock())
            assert await drain(sender) == 1
            assert mailbox.to("nguoi.dan@example.vn", other)
        clock.set(due)
    assert delays == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=60)]

    mailbox.defer = set()
    assert await drain(sender) == 1
    row = await letter_row(pool, late)
    assert row["delivered_at"] == clock() and row["delivery_attempts"] == 4
    [letter] = mailbox.to("tam.hoan@example.vn", late)
    assert letter["Message-ID"] == row["message_id"]


async def test_the_attempt_cap_dead_letters_a_letter_that_keeps_failing(
    clean: asyncpg.Pool, mailbox: Mailbox
) -> None:
    pool, clock = clean, SimulatedClock(START)
    code = code_of(7)
    mailbox.defer = {"tam.hoan@example.vn"}
    await issue(pool, code, "tam.hoan@example.vn", START)
    sender = deliverer(pool, clock, mailbox, RetryPolicy(max_attempts=3))

    for attempt in (1, 2, 3):
        assert await drain(sender) == (1 if attempt < 3 else 2)  # the last: and its alert
        row = await letter_row(pool, code)
        assert row["delivery_attempts"] == attempt
        clock.set(max(row["next_attempt_at"], clock()))

    assert row["dead_lettered_at"] is not None and "451" in row["last_error"]
    assert len(mailbox.to(OPERATOR, code)) == 1
    clock.advance(timedelta(days=1))
    assert await drain(sender) == 0  # never tried again


class Crash(BaseException):
    """The process stops: nothing after the send runs (BaseException, as a kill would)."""


class CrashAfterAcceptance(SmtpChannel):
    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await super().send(*args, **kwargs)
        raise Crash


async def test_a_crash_after_the_server_accepted_a_letter_resends_it_with_the_same_message_id(
    clean: asyncpg.Pool, mailbox: Mailbox
) -> None:
    pool, clock = clean, SimulatedClock(START)
    policy = RetryPolicy(lease=timedelta(minutes=5))
    code = code_of(3)
    await issue(pool, code, "nguoi.dan@example.vn", START)
    crashing = CrashAfterAcceptance("127.0.0.1", mailbox.port, SENDER, timeout=10)

    with pytest.raises(Crash):
        await deliverer(pool, clock, mailbox, policy, email=crashing).deliver_due()
    [first] = mailbox.to("nguoi.dan@example.vn", code)
    row = await letter_row(pool, code)
    assert row["delivered_at"] is None and row["attempt_started_at"] == START
    assert row["message_id"] == first["Message-ID"]  # recorded before the send

    restarted = deliverer(pool, clock, mailbox, policy)
    assert await drain(restarted) == 0  # leased: no second send while it may be in flight
    clock.advance(timedelta(minutes=5))
    assert await drain(restarted) == 1

    copies = mailbox.to("nguoi.dan@example.vn", code)
    assert len(copies) == 2
    assert {m["Message-ID"] for m in copies} == {first["Message-ID"]}  # one message, for dedup
    row = await letter_row(pool, code)
    assert row["delivered_at"] == clock() and row["attempt_started_at"] is None
    assert await drain(restarted) == 0


async def test_two_deliverers_never_send_the_same_letter(
    clean: asyncpg.Pool, mailbox: Mailbox
) -> None:
    pool, clock = clean, SimulatedClock(START)
    codes = [code_of(n) for n in range(1, 13)]
    for n, code in enumerate(codes):
        await issue(pool, code, f"nguoi.dan.{n}@example.vn", START)
    first, second = (deliverer(pool, clock, mailbox, RetryPolicy()) for _ in range(2))

    handled = await asyncio.gather(drain(first), drain(second))

    assert sum(handled) == len(codes)
    for n, code in enumerate(codes):
        assert len(mailbox.to(f"nguoi.dan.{n}@example.vn", code)) == 1
