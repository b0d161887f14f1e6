"""Background loops stop when cancelled, even where a library answers the cancellation with an
error of its own (the cause of services that would not stop in a test's teardown)."""

from __future__ import annotations

import asyncio

from shared.messaging.loops import stop_if_cancelled
from shared.messaging.retry import retry_forever


async def library_call(started: asyncio.Event) -> None:
    """Like an SMTP or database client: a cancellation comes out as a connection error."""
    started.set()
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        raise ConnectionResetError("connection closed") from None


async def stops_when_cancelled(task: asyncio.Task[None]) -> bool:
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    return task in done and task.cancelled()


async def test_a_loop_that_logs_errors_and_sleeps_still_stops_when_cancelled() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        while True:
            try:
                await library_call(started)
            except Exception:
                stop_if_cancelled()
                await asyncio.sleep(30)  # "round failed, retry later"

    task = asyncio.create_task(loop())
    await started.wait()
    assert await stops_when_cancelled(task)


async def test_a_retry_does_not_retry_a_cancellation_turned_into_an_error() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(
        retry_forever(lambda: library_call(started), what="test", max_backoff=30)
    )
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done  # ended (with the library's error), not retried for ever
