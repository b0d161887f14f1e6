"""The "stuck now" query on PostgreSQL, on rows written as intake's projection writes them:
an open step past due whose unit holds the dossier is stuck; parallel steps count separately,
and a unit's later step does not count while its current one is open; finished steps, paused,
closed and not-yet-due dossiers are not stuck. Most overdue first, with counts per unit beyond
the limit, the unit's last official and the consultation awaited."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.intake.ledger import Ledger

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
U1, U2, UA, UB = "T.U1", "T.U2", "T.UA", "T.UB"


async def add_dossier(
    db: asyncpg.Connection,
    code: str,
    procedure: str,
    *,
    current_step: int,
    holders: list[str],
    steps: list[tuple[str, timedelta, bool]],  # unit, due relative to NOW, finished
    **columns: Any,
) -> None:
    await db.execute(
        "INSERT INTO dossiers (code, procedure_code, receiving_unit_code, channel, status,"
        " received_at, appointment_at, receipt, current_step, holding_unit_codes,"
        " current_unit_code, routed_at, holder_since, paused_since, closed_at)"
        " VALUES ($1, $2, 'T.DESK', 'counter', 4, $3, $4, '{}', $5, $6, $7, $3, $8, $9, $10)",
        code,
        procedure,
        NOW - timedelta(days=3),
        NOW + timedelta(days=3),
        current_step,
        holders,
        holders[0],
        columns.get("holder_since"),
        columns.get("paused_since"),
        columns.get("closed_at"),
    )
    for sequence, (unit, due, finished) in enumerate(steps, start=1):
        await db.execute(
            "INSERT INTO dossier_steps (dossier_code, step_sequence, unit_code, due_at,"
            " finished_at) VALUES ($1, $2, $3, $4, $5)",
            code,
            sequence,
            unit,
            NOW + due,
            NOW - timedelta(days=1) if finished else None,
        )


async def test_the_stuck_steps_are_the_open_held_ones_past_due_most_overdue_first(
    intake_pool: asyncpg.Pool,
) -> None:
    procedure = f"9.{secrets.randbelow(10**6):06d}"  # this run's rows only

    def code(name: str) -> str:
        return f"T-{procedure}-{name}"

    async with intake_pool.acquire() as db, rolled_back(db):
        # Sequential: step 2 (U2) is open past due; U1's later step 3 is not held yet.
        await add_dossier(
            db,
            code("1"),
            procedure,
            current_step=2,
            holders=[U2],
            steps=[(U1, hours(-30), True), (U2, hours(-2), False), (U1, hours(-1), False)],
            holder_since=NOW - hours(20),
        )
        # Parallel stage: UA's step 1 and UB's step 2 both count; UA's step 3 is later.
        await add_dossier(
            db,
            code("2"),
            procedure,
            current_step=1,
            holders=[UA, UB],
            steps=[(UA, hours(-1), False), (UB, hours(-3), False), (UA, hours(-0.5), False)],
        )
        # Parallel stage, UA done: UB's step still counts, UA's next step does not.
        await add_dossier(
            db,
            code("3"),
            procedure,
            current_step=1,
            holders=[UB],
            steps=[(UA, hours(-9), True), (UB, hours(-1), False), (UA, hours(-4), False)],
        )
        for name, extra in (
            ("4", {"paused_since": NOW - hours(8)}),
            ("5", {"closed_at": NOW - hours(1)}),
        ):
            await add_dossier(
                db,
                code(name),
                procedure,
                current_step=1,
                holders=[U1],
                steps=[(U1, hours(-5), False)],
                **extra,
            )
        await add_dossier(
            db, code("6"), procedure, current_step=1, holders=[U1], steps=[(U1, hours(1), False)]
        )
        # U2's official acted after the step reached it; the earlier entry is another's.
        for at, official in ((NOW - hours(30), "Trần Cũ"), (NOW - hours(5), "Lê Văn Giữ")):
            await db.execute(
                "INSERT INTO timeline (dossier_code, occurred_at, event_type, unit_code, details)"
                " VALUES ($1, $2, 'x', $3, $4)",
                code("1"),
                at,
                U2,
                {"official": official},
            )
        for number, replied in ((1, NOW - hours(1)), (2, None)):
            await db.execute(
                "INSERT INTO consultations (dossier_code, consultation_id, requesting_unit_code,"
                " unit_code, question, requested_at, reply_due_at, replied_at)"
                " VALUES ($1, $2, $3, $4, 'q', $5, $6, $7)",
                code("1"),
                number,
                U2,
                f"T.C{number}",
                NOW - hours(10),
                NOW + hours(number),
                replied,
            )

        ledger = Ledger(db)
        rows, counts = await ledger.stuck_steps(
            NOW, unit_code=None, procedure_codes=[procedure], limit=10
        )
        found = [(r["dossier_code"], r["step_sequence"]) for r in rows]
        assert found == [(code("2"), 2), (code("1"), 2), (code("2"), 1), (code("3"), 2)]
        assert counts == {UB: 2, U2: 1, UA: 1}
        first = {(r["dossier_code"], r["step_sequence"]): r for r in rows}[(code("1"), 2)]
        assert first["official"] == "Lê Văn Giữ"
        assert first["since"] == NOW - hours(20)
        assert (first["consulted_unit_code"], first["reply_due_at"]) == ("T.C2", NOW + hours(2))
        routed = {(r["dossier_code"], r["step_sequence"]): r for r in rows}[(code("2"), 1)]
        assert routed["since"] == NOW - timedelta(days=3)  # never handed on: since routing
        assert routed["official"] is None and routed["consulted_unit_code"] is None

        # The limit keeps the most overdue; the counts are of them all.
        rows, counts = await ledger.stuck_steps(
            NOW, unit_code=None, procedure_codes=[procedure], limit=2
        )
        assert [(r["dossier_code"], r["step_sequence"]) for r in rows] == found[:2]
        assert sum(counts.values()) == 4
        # By unit.
        rows, counts = await ledger.stuck_steps(
            NOW, unit_code=UB, procedure_codes=[procedure], limit=10
        )
        assert [(r["dossier_code"], r["step_sequence"]) for r in rows] == [
            (code("2"), 2),
            (code("3"), 2),
        ]
        assert counts == {UB: 2}
        # The partial index can serve the open steps' due times (the planner picks it once
        # the table is large; here a sequential scan is forbidden to show that it matches).
        await db.execute("SET LOCAL enable_seqscan = off")
        plan = await db.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT dossier_code FROM dossier_steps"
            " WHERE finished_at IS NULL AND due_at < $1",
            NOW,
        )
        assert "dossier_steps_open_due" in str(plan), plan


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


@asynccontextmanager
async def rolled_back(db: asyncpg.Connection) -> AsyncIterator[None]:
    """The test's rows live in a transaction that is rolled back: nothing is left behind."""
    transaction = db.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()
