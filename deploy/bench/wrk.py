"""Closed loops run by wrk (Debian's package, C): a load generator that takes a small share of
the CPU it measures. The Python client spent about a core at 300 requests/s, on the same two
cores as the servers, and so held the bare baseline far below what the app could do."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from deploy.bench.results import Phase

SCRIPT = Path(__file__).with_name("post.lua")
THREADS = 2  # one per core
MARKER = "BENCH-RESULT "


def executable() -> str:
    """wrk's path; installed with apt-get when missing (as root), else a clear error."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    environment = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        subprocess.run(install, check=True, capture_output=True, env=environment)
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(
            f"bench: wrk is not installed and `{' '.join(install)}` failed ({error});"
            " install Debian's wrk package and run again"
        ) from error
    return shutil.which("wrk") or "/usr/bin/wrk"


async def closed_loop(
    url: str,
    bodies: list[bytes],
    phase: Phase,
    *,
    token: str | None,
    connections: int,
    seconds: float,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """POST the bodies in turn for `seconds`, `connections` at a time; fill `phase`."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as file:
        file.write(b"\n".join(body.replace(b"\n", b" ") for body in bodies) + b"\n")
        file.flush()
        process = await asyncio.create_subprocess_exec(
            executable(),
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(SCRIPT),
            f"{url}/v1/dossiers",
            env={"BENCH_BODIES": file.name, "BENCH_TOKEN": token or "", "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        ticking = asyncio.create_task(_tick_every_second(tick))
        try:
            out, err = await process.communicate()
        finally:
            ticking.cancel()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode(errors='replace')}")
    fill(phase, out.decode())


def fill(phase: Phase, output: str) -> None:
    """The phase's figures from wrk's output (post.lua's result line)."""
    line = next((text for text in output.splitlines() if text.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{output}")
    result = json.loads(line[len(MARKER) :])
    phase.seconds = result["duration_us"] / 1e6
    for status, count in result["statuses"].items():
        if status.startswith("2"):
            phase.completed += count
        else:
            phase.failures[status] = phase.failures.get(status, 0) + count
    for kind, count in result["socket_errors"].items():
        if count:
            phase.failures[f"socket {kind}"] = phase.failures.get(f"socket {kind}", 0) + count
    phase.latency_quantiles_ms = [us / 1000 for us in result["quantiles_us"]]


async def _tick_every_second(tick: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(1)
        tick()
