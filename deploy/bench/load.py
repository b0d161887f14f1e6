"""Load generators: a closed loop (a fixed number of requests in flight) and an open model (a
fixed arrival rate, whatever the answers' pace), both on one httpx client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from deploy.bench.results import Phase, Sample


async def _post(
    client: httpx.AsyncClient,
    body: bytes,
    phase: Phase,
    began: float,
    sent_at: dict[str, float],
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/dossiers", content=body)
        status = str(response.status_code)
        ok = response.status_code == 201
    except httpx.HTTPError as error:
        status, ok = type(error).__name__, False
    latency = time.perf_counter() - started
    phase.samples.append(Sample(started - began, latency * 1000, ok))
    if ok:
        phase.completed += 1
        code = response.json().get("dossier_code")
        if code:
            sent_at[code] = time.time() - latency  # wall clock: Kafka's record times are too
    else:
        phase.failures[status] = phase.failures.get(status, 0) + 1


def encode(bodies: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(body).encode() for body in bodies]


def client(base_url: str, token: str | None) -> httpx.AsyncClient:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers, limits=limits)


async def closed_loop(
    http: httpx.AsyncClient,
    bodies: list[bytes],
    phase: Phase,
    concurrency: int,
    advance: Callable[[], None],
    sent_at: dict[str, float] | None = None,
) -> None:
    """Post every body once, `concurrency` at a time."""
    pending = iter(bodies)
    began = time.perf_counter()
    codes = sent_at if sent_at is not None else {}

    async def worker() -> None:
        for body in pending:
            await _post(http, body, phase, began, codes)
            advance()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - began


async def open_model(
    http: httpx.AsyncClient,
    bodies: list[bytes],
    phase: Phase,
    rate: float,
    advance: Callable[[], None],
    sent_at: dict[str, float],
) -> None:
    """Send one body every 1/rate seconds, on schedule, however slow the answers are."""
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i, body in enumerate(bodies):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the arrivals, not waiting for an outcome
        task = asyncio.create_task(_post(http, body, phase, began, sent_at))
        task.add_done_callback(lambda _: advance())
        tasks.append(task)
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - began
    phase.rate = rate
