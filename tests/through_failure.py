"""Checks for the tests that post dossiers through a failure (test_resilience, test_cluster),
polled with tests.waiting.eventually."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


async def posted(posting: asyncio.Future[Any], codes: list[str], count: int) -> bool:
    """At least `count` dossiers accepted so far; a counter's failure is raised here."""
    if posting.done():
        posting.result()
    return len(codes) >= count


async def all_through(pool: asyncpg.Pool, codes: list[str]) -> bool:
    """Every dossier has reached intake's view with its apology's signer."""
    done = await pool.fetchval(
        "SELECT count(*) FROM intake.dossiers WHERE code = ANY($1) AND apology_signer IS NOT NULL",
        codes,
    )
    return bool(done == len(codes))
