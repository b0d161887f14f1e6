"""`make run` supervises the services: one that dies is restarted, the others, Kafka and
PostgreSQL keep running, and the restarted one catches up."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from deploy.local.stack import ROOT, RUN_DIR, SERVICES
from tests.conftest import TEST_DATABASE, TEST_NAMESPACE, TEST_PORT_BASE
from tests.factories import submission
from tests.users import bearer, counter_of
from tests.waiting import eventually

BASE_PORT = TEST_PORT_BASE + 300
METRICS_PORT = TEST_PORT_BASE + 309


def url(service: str) -> str:
    return f"http://127.0.0.1:{BASE_PORT + SERVICES.index(service)}"


def pid_of(service: str) -> int | None:
    path = RUN_DIR / f"{service}-{BASE_PORT + SERVICES.index(service)}.pid"
    return int(path.read_text()) if path.exists() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Supervisor:
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)

    def said(self, *words: str) -> bool:
        return any(all(word in line for word in words) for line in self.output)


@pytest.fixture
async def supervisor(infrastructure: dict[str, str]) -> AsyncIterator[Supervisor]:
    """`make run` on the test's ports, database and topics; Kafka and PostgreSQL are shared,
    so it leaves them running when it stops."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.local.supervisor",
        cwd=ROOT,
        env={
            **os.environ,
            "ONESTOP_BASE_PORT": str(BASE_PORT),
            "ONESTOP_DATABASE": TEST_DATABASE,
            "KAFKA_NAMESPACE": TEST_NAMESPACE,
            "SUPERVISOR_METRICS_PORT": str(METRICS_PORT),
            "ONESTOP_KEEP_INFRA": "1",
            "PYTHONUNBUFFERED": "1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = Supervisor(process)

    async def read_output() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            running.output.append(line.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read_output())
    try:
        await eventually(
            lambda: _up_or_gone(running), timeout=120, what="the supervisor started the system"
        )
        assert running.said("The system is up"), "\n".join(running.output)
        yield running
    finally:
        pids = [pid for pid in map(pid_of, SERVICES) if pid is not None]
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
        for pid in pids:  # never leave a service behind, whatever failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        await reader


async def _up_or_gone(supervisor: Supervisor) -> bool:
    return supervisor.said("The system is up") or supervisor.process.returncode is not None


async def post_dossier(client: httpx.AsyncClient) -> str:
    response = await client.post(f"{url('intake')}/v1/dossiers", json=submission())
    assert response.status_code == 201, response.text
    return str(response.json()["dossier_code"])


async def routed(client: httpx.AsyncClient, codes: list[str]) -> bool:
    for code in codes:
        view = (await client.get(f"{url('intake')}/v1/dossiers/{code}")).json()
        if not view["routing"]:
            return False
    return True


async def restarts(client: httpx.AsyncClient, service: str) -> float | None:
    text = (await client.get(f"http://127.0.0.1:{METRICS_PORT}/metrics")).text
    prefix = f'onestop_supervisor_restarts_total{{service="{service}"}} '
    values = [float(line.removeprefix(prefix)) for line in text.splitlines() if prefix in line]
    return values[0] if values else None


async def ready(client: httpx.AsyncClient, service: str) -> dict[str, bool] | None:
    try:
        response = await client.get(f"{url(service)}/readyz")
    except httpx.HTTPError:
        return None
    return response.json()["checks"] if response.status_code == 200 else None


async def test_a_killed_service_is_restarted_and_catches_up_while_the_rest_runs_on(
    supervisor: Supervisor,
) -> None:
    log = RUN_DIR / f"routing-{BASE_PORT + 1}.log"
    desk = await bearer(counter_of("000.00.00.H29"))
    async with httpx.AsyncClient(timeout=10, headers=desk) as client:
        before = [await post_dossier(client)]
        await eventually(lambda: routed(client, before), timeout=30, what="routed before")
        assert await restarts(client, "routing") == 0
        pids = {service: pid_of(service) for service in SERVICES}
        lines_before = log.read_text().splitlines()

        os.kill(pids["routing"], signal.SIGKILL)  # type: ignore[arg-type]
        after = [await post_dossier(client) for _ in range(3)]  # routing is down

        await eventually(
            lambda: _said(supervisor, "routing exited (killed by SIGKILL)", "restart 1 in 1 s"),
            timeout=10,
            what="the supervisor reported the death",
        )
        await eventually(lambda: routed(client, after), timeout=45, what="routed after the kill")
        assert await restarts(client, "routing") == 1
        assert supervisor.said("routing restarted", "restart 1")
        restarted = pid_of("routing")
        assert restarted not in (None, pids["routing"])

        for service in ("intake", "deadline", "notifier"):
            assert pid_of(service) == pids[service], f"{service} was restarted"
            checks = await ready(client, service)
            assert checks == {"database": True, "kafka": True}, service  # Kafka, PostgreSQL up

    kept = log.read_text().splitlines()
    assert kept[: len(lines_before)] == lines_before  # appended to, not overwritten
    assert sum('"service started"' in line for line in kept) == 2
    assert any('"logger": "supervisor"' in line and "SIGKILL" in line for line in kept)

    supervisor.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(supervisor.process.wait(), 60) == 0
    running = [pid for pid in [*pids.values(), restarted] if pid is not None and alive(pid)]
    assert running == []
    assert [pid_of(service) for service in SERVICES] == [None] * len(SERVICES)
    await eventually(lambda: _said(supervisor, "notifier stopped"), timeout=5, what="stopped")


async def _said(supervisor: Supervisor, *words: str) -> bool:
    return supervisor.said(*words)
