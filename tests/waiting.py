"""Waiting in tests: poll a condition with a deadline, never sleep a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    what: str | Callable[[], str] = "condition",
) -> Any:
    """Poll an async check every `interval` seconds until it returns something truthy; fail
    after `timeout` seconds. A callable `what` is asked only then, so that it can describe the
    state the checks saw last."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            description = what() if callable(what) else what
            raise TimeoutError(f"{description} not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
