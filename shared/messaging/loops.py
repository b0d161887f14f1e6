"""What every background loop of a service needs: waiting for a wake-up or a poll interval,
and stopping when it is cancelled even where a library turned the cancellation into another
error."""

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


def cancelling() -> bool:
    """Whether the current task is being cancelled. Some libraries (SMTP, database drivers)
    answer a cancellation with an error of their own: a loop that logged it and slept, or a
    retry that tried again, would keep the service from stopping."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled() -> None:
    """Call first in a loop's `except Exception` (see `cancelling`)."""
    if cancelling():
        raise asyncio.CancelledError
