"""The notifier's rendering worker against the real PostgreSQL server: an issued apology's PDF
is laid out and signed once, after the handler's transaction; delivery waits for it; two
workers never render the same letter; a worker that dies mid-render leaves the letter to the
next; a failed render is retried later; retention erases a letter still pending. The signer
is a stand-in (the PAdES signature is proven in tests/e2e/test_lateness.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from services.notifier.api import LetterLinks, build_letters_router
from services.notifier.channels import SmtpChannel
from services.notifier.delivery import Deliverer
from services.notifier.letters import render_html
from services.notifier.rendering import LetterRenderer
from services.notifier.repository import erase_addressees
from services.notifier.settings import NotifierSettings
from shared.auth import Authenticator, Role
from shared.clock import SimulatedClock
from tests.fakes.identity import ISSUER, LocalIssuer
from tests.integration.notifier_schema import (
    emptied,
    notifier_schema,
    schema_named,
    unit_of_work,
)
from tests.metrics import samples
from tests.system import Mailbox
from tests.unit.test_letters import sample_letter
from tests.waiting import eventually

SCHEMA = schema_named("rendering")
UNIT = "000.00.05.H29"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The database created if missing (postgres_url); a notifier schema of this module's own."""
    async with notifier_schema(SCHEMA) as created:
        yield created


@pytest.fixture
async def clean(pool: asyncpg.Pool) -> asyncpg.Pool:
    return await emptied(pool)


class RecordingSigner:
    """Appends who signed and records each signature; `hold` keeps a signature unfinished."""

    def __init__(self, hold: asyncio.Event | None = None, failures: int = 0) -> None:
        self.signed: list[str] = []
        self.entered = asyncio.Event()
        self._hold = hold
        self._failures = failures

    async def sign(self, pdf: bytes, signer: str, *, reason: str) -> bytes:
        self.entered.set()
        if self._hold is not None:
            await self._hold.wait()
        await asyncio.sleep(0)  # let another worker run between claim and store
        if self._failures > 0:
            self._failures -= 1
            raise RuntimeError("signing service unavailable")
        self.signed.append(reason)
        return pdf + f"\n%signed-by {signer}\n".encode()


def renderer(
    pool: asyncpg.Pool,
    clock: SimulatedClock,
    signer: RecordingSigner,
    *,
    batch_size: int = 3,
    reader: InMemoryMetricReader | None = None,
) -> LetterRenderer:
    meter = MeterProvider(metric_readers=[reader] if reader else []).get_meter("test")
    return LetterRenderer(
        unit_of_work(pool, SCHEMA), clock, signer, batch_size=batch_size, meter=meter
    )


async def issue_pending(pool: asyncpg.Pool, code: str, email: str) -> None:
    """A letter as the handlers now store it: issued, its PDF pending."""
    letter = sample_letter(dossier_code=code)
    await pool.execute(
        "INSERT INTO addressees (dossier_code, procedure_name, receiving_unit_code, received_at,"
        " full_name, address, email, phone) VALUES ($1, 'p', $2, $3, $4, $5, $6, NULL)",
        code,
        UNIT,
        START,
        letter.addressee.full_name,
        letter.addressee.address,
        email,
    )
    await pool.execute(
        "INSERT INTO apologies (dossier_code, letter_number, unit_code, signer_title, reason,"
        " original_due_at, new_due_at, issued_at, channel, letter, html, pdf, signed_by,"
        " pdf_pending) VALUES ($1, $2, $3, 'Giám đốc', 'r', $4, $4, $5, 'email', $6, $7,"
        " NULL, 'city', true)",
        code,
        f"{code[-4:]}/XL",
        UNIT,
        letter.new_due_at,
        START,
        letter.model_dump(mode="json"),
        render_html(letter),
    )


def code_of(number: int) -> str:
    return f"{UNIT}-261201-{number:04d}"


async def drain(worker: LetterRenderer) -> int:
    """Rounds until nothing is due now (what the loop does, without its pauses)."""
    total = 0
    while claimed := await worker.render_due():
        total += claimed
    return total


async def test_a_pending_letter_is_rendered_once_and_delivered_only_then(
    clean: asyncpg.Pool,
) -> None:
    pool, clock, signer = clean, SimulatedClock(START), RecordingSigner()
    code = code_of(1)
    await issue_pending(pool, code, "nguoi.dan@example.vn")
    reader = InMemoryMetricReader()
    worker = renderer(pool, clock, signer, reader=reader)
    box = Mailbox()
    box.controller.start()
    try:
        deliverer = Deliverer(
            unit_of_work(pool, SCHEMA),
            clock,
            email=SmtpChannel("127.0.0.1", box.port, "mot-cua@tphcm.gov.vn", timeout=10),
        )
        assert await deliverer.deliver_due() == 0  # no PDF yet: nothing to send
        assert box.to("nguoi.dan@example.vn", code) == []

        assert await drain(worker) == 1
        assert await drain(worker) == 0  # rendered once
        row = await pool.fetchrow(
            "SELECT pdf, pdf_pending FROM apologies WHERE dossier_code = $1", code
        )
        assert row["pdf_pending"] is False
        assert row["pdf"].startswith(b"%PDF-") and row["pdf"].endswith(b"%signed-by city\n")
        assert signer.signed == [f"Mẫu 04 {code[-4:]}/XL"]
        assert [value for _, value in samples([reader], "onestop.letters.render_pending")] == [0]

        assert await deliverer.deliver_due() == 1
        [message] = box.to("nguoi.dan@example.vn", code)
        [attachment] = [part for part in message.iter_attachments()]
        assert attachment.get_content() == row["pdf"]
    finally:
        box.controller.stop()


async def test_two_workers_never_render_the_same_letter(clean: asyncpg.Pool) -> None:
    pool, clock = clean, SimulatedClock(START)
    codes = [code_of(n) for n in range(1, 13)]
    for n, code in enumerate(codes):
        await issue_pending(pool, code, f"nguoi.dan.{n}@example.vn")
    first, second = RecordingSigner(), RecordingSigner()

    claimed = await asyncio.gather(
        drain(renderer(pool, clock, first)), drain(renderer(pool, clock, second))
    )

    assert sum(claimed) == len(codes) and all(claimed)  # both took part
    assert sorted(first.signed + second.signed) == sorted(f"Mẫu 04 {c[-4:]}/XL" for c in codes)
    assert await pool.fetchval("SELECT count(*) FROM apologies WHERE pdf_pending") == 0


async def test_a_worker_that_dies_mid_render_leaves_the_letter_to_the_next(
    clean: asyncpg.Pool,
) -> None:
    pool, clock = clean, SimulatedClock(START)
    code = code_of(1)
    await issue_pending(pool, code, "nguoi.dan@example.vn")
    stuck = RecordingSigner(hold=asyncio.Event())
    dying = asyncio.create_task(renderer(pool, clock, stuck).render_due())
    async with asyncio.timeout(30):
        await stuck.entered.wait()
    dying.cancel()  # the process stops: its transaction rolls back, the claim with it
    with pytest.raises(asyncio.CancelledError):
        await dying
    assert await pool.fetchval("SELECT pdf_pending FROM apologies") is True

    after_restart = RecordingSigner()
    assert await drain(renderer(pool, clock, after_restart)) == 1
    assert stuck.signed == [] and after_restart.signed == [f"Mẫu 04 {code[-4:]}/XL"]
    assert await pool.fetchval("SELECT pdf_pending FROM apologies") is False


async def test_a_failed_render_is_retried_later_without_holding_up_the_others(
    clean: asyncpg.Pool,
) -> None:
    pool, clock = clean, SimulatedClock(START)
    await issue_pending(pool, code_of(1), "a@example.vn")
    await issue_pending(pool, code_of(2), "b@example.vn")
    signer = RecordingSigner(failures=1)  # the first letter's signature fails once
    worker = renderer(pool, clock, signer)

    assert await drain(worker) == 2
    failed = await pool.fetchrow(
        "SELECT dossier_code, render_attempts, render_error, render_next_at FROM apologies"
        " WHERE pdf_pending"
    )
    assert (failed["render_attempts"], failed["render_error"]) == (1, "RuntimeError")
    assert failed["render_next_at"] > START
    assert len(signer.signed) == 1  # the other one is rendered

    assert await drain(worker) == 0  # not before its time
    clock.advance(timedelta(minutes=1))
    assert await drain(worker) == 1
    assert await pool.fetchval("SELECT count(*) FROM apologies WHERE pdf_pending") == 0


async def test_retention_erases_a_letter_still_pending_and_it_is_never_rendered(
    clean: asyncpg.Pool,
) -> None:
    pool, clock = clean, SimulatedClock(START)
    code = code_of(1)
    await issue_pending(pool, code, "nguoi.dan@example.vn")
    await pool.execute("UPDATE addressees SET ended_at = $1", START - timedelta(days=400))
    async with pool.acquire() as connection:
        assert await erase_addressees(connection, START, 10) == 1

    signer = RecordingSigner()
    assert await drain(renderer(pool, clock, signer)) == 0
    row = await pool.fetchrow("SELECT pdf, pdf_pending, html FROM apologies")
    assert (row["pdf"], row["pdf_pending"], row["html"]) == (None, False, None)
    assert signer.signed == []


async def test_while_the_pdf_is_pending_reads_answer_503_with_retry_after(
    clean: asyncpg.Pool,
) -> None:
    """The officials' PDF read and the citizen's link say the letter is being rendered (the
    HTML, made with the letter, is served); once rendered, both serve the signed PDF."""
    pool, clock = clean, SimulatedClock(START)
    code = code_of(1)
    await issue_pending(pool, code, "nguoi.dan@example.vn")
    issuer = LocalIssuer()
    settings = NotifierSettings.model_construct(
        oidc_issuer=ISSUER, oidc_audience="onestop-notifier"
    )
    links = LetterLinks(b"k" * 32, lifetime=timedelta(days=1), base_url="http://notifier")
    app = FastAPI()
    app.include_router(
        build_letters_router(
            unit_of_work(pool, SCHEMA), Authenticator(issuer.verifier(), settings), links, clock
        )
    )
    token = links.create(code, clock()).url.rsplit("/", 1)[1]
    headers = issuer.headers(Role.OPERATOR)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifier"
    ) as client:
        official = await client.get(f"/v1/apologies/{code}.pdf", headers=headers)
        citizen = await client.get(f"/v1/letters/{token}")
        html = await client.get(f"/v1/apologies/{code}.html", headers=headers)
        for pending in (official, citizen):
            assert pending.status_code == 503, pending.text
            assert pending.headers["retry-after"] == "5"
            assert "being rendered" in pending.json()["detail"]
        assert html.status_code == 200 and code in html.text

        await drain(renderer(pool, clock, RecordingSigner()))
        official = await client.get(f"/v1/apologies/{code}.pdf", headers=headers)
        citizen = await client.get(f"/v1/letters/{token}")
    assert official.status_code == citizen.status_code == 200
    assert official.content == citizen.content and official.content.endswith(b"%signed-by city\n")


async def test_the_layout_process_starts_with_a_letter_and_stops_when_idle(
    clean: asyncpg.Pool,
) -> None:
    """The layout process (some 100 MB) starts with the first letter, stays while letters come
    within the idle time, and stops after it or with the service."""
    pool, clock, signer = clean, SimulatedClock(START), RecordingSigner()
    meter = MeterProvider().get_meter("test")
    worker = LetterRenderer(
        unit_of_work(pool, SCHEMA), clock, signer, processes=1, process_idle_seconds=0, meter=meter
    )
    try:
        assert await drain(worker) == 0
        assert not worker.layout_running  # no letter yet: no process

        for number in (1, 2):
            await issue_pending(pool, code_of(number), f"nguoi.dan{number}@example.vn")
            assert await worker.render_due() == 1
            assert worker.layout_running
            worker.stop_layout_if_idle()
            assert not worker.layout_running  # started again for the second letter

        pdfs = await pool.fetch("SELECT pdf FROM apologies WHERE NOT pdf_pending")
        assert len(pdfs) == 2 and all(row["pdf"].startswith(b"%PDF-") for row in pdfs)
    finally:
        worker.stop_layout_if_idle()

    patient = LetterRenderer(
        unit_of_work(pool, SCHEMA), clock, signer, processes=1, process_idle_seconds=3600
    )
    await issue_pending(pool, code_of(3), "nguoi.dan3@example.vn")
    runs = asyncio.create_task(patient.run())
    try:

        async def all_rendered() -> bool:
            return await pool.fetchval("SELECT count(*) FROM apologies WHERE pdf_pending") == 0

        await eventually(all_rendered, what="the third letter rendered by run()")
        patient.stop_layout_if_idle()
        assert patient.layout_running  # kept for the next letter within the hour
    finally:
        runs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runs
    assert not patient.layout_running  # stopped with the service
