"""Runs the four services as local processes: used by `make run` and by the system tests.

Each service is its own process (`python -m services.<name>`), with its log and pid under
.run/services/, configured only through environment variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run" / "services"
SERVICES = ("intake", "routing", "deadline", "notifier")
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
POSTGRES_PORT = os.environ.get("POSTGRES_PORT", "55432")


ZIPKIN_URL = f"http://127.0.0.1:{os.environ.get('ZIPKIN_PORT', '9411')}"
# Spans go to the local Zipkin (deploy/local/zipkin.sh) in its own format.
LOCAL_TELEMETRY = {
    "OTEL_TRACES_EXPORTER": "zipkin",
    "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{ZIPKIN_URL}/api/v2/spans",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=local",
    "OTEL_BSP_SCHEDULE_DELAY": "1000",  # spans reach the UI within a second
}


def database_url(database: str = "onestop") -> str:
    return f"postgresql://onestop:onestop@127.0.0.1:{POSTGRES_PORT}/{database}"


@dataclass
class Stack:
    database: str = "onestop"
    base_port: int = 8000
    namespace: str = ""  # a prefix for every topic and consumer group: a system of its own
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def port(self, service: str) -> int:
        return self.base_port + SERVICES.index(service)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def log_path(self, service: str) -> Path:
        return RUN_DIR / f"{service}-{self.port(service)}.log"

    def environment(self, service: str) -> dict[str, str]:
        return {
            **LOCAL_TELEMETRY,  # the environment may override these
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "DATABASE_URL": database_url(self.database),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port(service)),
            "KAFKA_NAMESPACE": self.namespace,
            "OTEL_SERVICE_NAME": service,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, services: Iterable[str] = SERVICES) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        for service in services:
            log = self.log_path(service).open("wb")  # one log per start: tests read it
            process = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                cwd=ROOT,
                env=self.environment(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops them in order
            )
            self.processes[service] = process
            self._pid_path(service).write_text(str(process.pid))

    def wait_ready(self, services: Iterable[str] = SERVICES, timeout: float = 120.0) -> None:
        """Poll each service's /readyz until it answers 200, or fail naming the laggard."""
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            service = pending[0]
            process = self.processes.get(service)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{service} exited with {process.returncode}:\n{self.log_tail(service)}"
                )
            try:
                if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{service} not ready after {timeout}s:\n{self.log_tail(service)}"
                )
            time.sleep(0.2)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(service)
        process.send_signal(sig)
        process.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for service, process in list(self.processes.items()):
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._pid_path(service).unlink(missing_ok=True)
        self.processes.clear()

    def _pid_path(self, service: str) -> Path:
        return RUN_DIR / f"{service}-{self.port(service)}.pid"

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.log_path(service)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
