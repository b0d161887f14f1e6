"""Waiting for a wake-up signal or a poll interval, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib


async def wake_or_poll(wakeup: asyncio.Event, interval: float) -> None:
    """Return when `wakeup` is set or `interval` seconds have passed, then clear it.

    asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow a cancellation that
    lands as the event is set, and a loop built on it then never stops."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(interval):
            await wakeup.wait()
    wakeup.clear()
