"""Dossier codes on the real PostgreSQL: each unit's daily number is taken in a statement of
its own, so a dossier still in its transaction does not hold up the next receipt at its unit;
numbers stay unique, and a failed dossier leaves a gap (DailySequences)."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from services.intake.handlers import receive_dossier
from services.intake.repository import IntakeUnitOfWork
from services.intake.schemas import DossierSubmission
from tests.factories import submission
from tests.integration.conftest import counter_at, intake_on
from tests.waiting import eventually

BODY = DossierSubmission.model_validate(submission())


def number(code: str) -> int:
    match = re.fullmatch(r"(\d{3}\.\d{2}\.\d{2}\.H29)-(\d{6})-(\d{4})", code)
    assert match, f"not in the official shape: {code}"
    return int(match.group(3))


async def test_concurrent_receipts_at_one_unit_get_unique_consecutive_codes(
    intake_pool: asyncpg.Pool,
) -> None:
    intake, counter = intake_on(intake_pool), counter_at("000.42.01.H29")

    receipts = await asyncio.gather(
        *(receive_dossier(intake, BODY, counter, None) for _ in range(40))
    )

    numbers = sorted(number(receipt.dossier_code) for receipt, _ in receipts)
    assert numbers == list(range(numbers[0], numbers[0] + 40))


async def test_a_dossier_waiting_to_commit_does_not_hold_up_the_next_at_its_unit(
    intake_pool: asyncpg.Pool,
) -> None:
    gate = asyncio.Event()
    waiting: list[str] = []

    class SlowToCommit(IntakeUnitOfWork):
        async def commit(self) -> None:
            waiting.append("commit")
            await gate.wait()
            await super().commit()

    counter = counter_at("000.20.11.H29")
    slow = asyncio.create_task(
        receive_dossier(intake_on(intake_pool, SlowToCommit), BODY, counter, None)
    )

    async def first_waits() -> bool:
        return bool(waiting)

    await eventually(first_waits, what="the first dossier waiting to commit")

    # With the number held until commit, this one would wait on the first forever.
    async with asyncio.timeout(30):
        second, _ = await receive_dossier(intake_on(intake_pool), BODY, counter, None)
    gate.set()
    first, _ = await slow

    assert number(second.dossier_code) == number(first.dossier_code) + 1


async def test_a_dossier_that_fails_after_taking_its_number_leaves_a_gap_never_a_repeat(
    intake_pool: asyncpg.Pool,
) -> None:
    class FailsToCommit(IntakeUnitOfWork):
        async def commit(self) -> None:
            raise ConnectionResetError("the database went away")

    counter = counter_at("000.31.01.H29")
    before, _ = await receive_dossier(intake_on(intake_pool), BODY, counter, None)
    try:
        await receive_dossier(intake_on(intake_pool, FailsToCommit), BODY, counter, None)
    except ConnectionResetError:
        pass
    after, _ = await receive_dossier(intake_on(intake_pool), BODY, counter, None)

    assert number(after.dossier_code) == number(before.dossier_code) + 2
    gap = f"{before.dossier_code[:-4]}{number(before.dossier_code) + 1:04d}"
    stored = await intake_pool.fetchval("SELECT count(*) FROM dossiers WHERE code = $1", gap)
    assert stored == 0
