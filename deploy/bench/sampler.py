"""CPU and RSS per process group, sampled while the bench runs (psutil)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psutil

from deploy.bench.results import CpuSample

INFRA_PORTS = {"postgresql": 55432, "kafka": 19092, "zipkin": 9411, "keycloak": 18080}


def listening_pid(port: int) -> int | None:
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return connection.pid
    return None


class Sampler:
    """Groups are a root pid with its children (PostgreSQL's backends are the postmaster's)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.phase = "idle"
        self.samples: list[CpuSample] = []
        self._began = time.monotonic()
        self._seen: dict[int, psutil.Process] = {}
        for name, port in INFRA_PORTS.items():
            pid = listening_pid(port)
            if pid is not None:
                self.roots[name] = pid
        self.roots["bench client"] = psutil.Process().pid

    def watch(self, name: str, pid: int) -> None:
        self.roots[name] = pid

    def forget(self, name: str) -> None:
        self.roots.pop(name, None)

    def _members(self, root: int) -> list[psutil.Process]:
        try:
            process = psutil.Process(root)
            children = [] if root == psutil.Process().pid else process.children(recursive=True)
            members = [process, *children]
        except psutil.NoSuchProcess:
            return []
        # The same Process objects between samples: cpu_percent() measures since the last call.
        return [self._seen.setdefault(p.pid, p) for p in members]

    def sample(self) -> CpuSample:
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        for name, root in list(self.roots.items()):
            total_cpu = total_rss = 0.0
            for process in self._members(root):
                try:
                    total_cpu += process.cpu_percent(None)
                    total_rss += process.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
            cpu[name], rss[name] = total_cpu, total_rss
        return CpuSample(round(time.monotonic() - self._began, 2), self.phase, cpu, rss)

    async def run(self, stop: asyncio.Event, on_sample: Callable[[CpuSample], None]) -> None:
        self.sample()  # primes cpu_percent
        while not stop.is_set():
            await asyncio.sleep(self.interval)
            on_sample(self.sample())
