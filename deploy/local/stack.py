"""Runs the four services as local processes: used by `make run` and by the system tests.

Each service is its own process (`python -m services.<name>`), with its log and pid under
.run/services/, configured only through environment variables.

A service's stdout goes through a pipe to a thread of this process that writes its log, so
that the log can be rotated by size while the service runs: a service that floods fills
at most `LOG_BACKUPS + 1` files of `LOG_MAX_BYTES`. A Stack's first start of a service moves
the previous run's log to .1 (.1 to .2, …); a restart within the same Stack appends.

With `scale` above 1 (the multi-node mode), each service runs as that many instances, named
`routing`, `routing-2`, `routing-3`…: the consumers of a service in one consumer group, each on
its own HTTP port (+10 per instance), the intakes all on intake's port (SO_REUSEPORT), the
deadline schedulers claiming clocks with row locks (each lateness detected once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote

import httpx

from deploy.local import databases, signing
from deploy.local.identity import ISSUER
from deploy.local.kafka_access import KAFKA_BOOTSTRAP, service_environment
from deploy.local.local_secrets import get as secret

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run" / "services"
SERVICES = databases.SERVICES
POSTGRES_PORT = os.environ.get("POSTGRES_PORT", "55432")
LOG_MAX_BYTES = int(os.environ.get("ONESTOP_LOG_MAX_BYTES", str(20 * 1024 * 1024)))
LOG_BACKUPS = int(os.environ.get("ONESTOP_LOG_BACKUPS", "5"))


ZIPKIN_URL = f"http://127.0.0.1:{os.environ.get('ZIPKIN_PORT', '9411')}"
# Spans go to the local Zipkin (deploy/local/zipkin.sh) in its own format.
LOCAL_TELEMETRY = {
    "OTEL_TRACES_EXPORTER": "zipkin",
    "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{ZIPKIN_URL}/api/v2/spans",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=local",
    "OTEL_BSP_SCHEDULE_DELAY": "1000",  # spans reach the UI within a second
    # Under load a batch is sent as soon as 512 spans wait (larger batches barely cost less
    # a span); the queue holds four batches' worth so that a slow moment of the trace UI
    # drops nothing (otel_sdk_processor_span_processed_total{error_type="queue_full"}).
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
    "OTEL_BSP_MAX_QUEUE_SIZE": "8192",
    "TRACE_UI_URL": f"{ZIPKIN_URL}/zipkin",  # where the officials' pages link a dossier's trace
}


INSTANCE_PORT_STEP = 10  # instance k of a service listens on its port + 10 (k - 1)


def service_of(instance: str) -> str:
    """`routing-2` is an instance of routing."""
    return instance.split("-", 1)[0]


def access_settings() -> dict[str, str]:
    """What every local service needs to verify tokens (the local Keycloak) and the secrets of
    intake's lookup PINs and the notifier's letter links (from .run/secrets.env), and where
    the notifier's signing certificates are (the local test CA's, made if missing)."""
    return {
        "OIDC_ISSUER": ISSUER,
        "LOOKUP_PIN_KEY": secret("LOOKUP_PIN_KEY"),
        "LINK_SIGNING_KEY": secret("LINK_SIGNING_KEY"),
        "SIGNING_DIRECTORY": str(signing.ensure()),
    }


def database_url(database: str = "onestop", service: str | None = None) -> str:
    """The service's own role (it owns only its schema), or with no service the provisioning
    role (reads every schema: tests, demo, clean slate). Passwords: the local secrets."""
    if service is None:
        role, password = databases.PROVISIONER, secret(databases.PROVISIONER_PASSWORD)
    else:
        role, password = databases.service_role(service), secret(databases.password_name(service))
    return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{POSTGRES_PORT}/{database}"


def service_database_urls(database: str) -> dict[str, str]:
    """Each service's URL to `database`, as its own role."""
    return {service: database_url(database, service) for service in SERVICES}


class RotatingLog:
    """An append-only log file rotated by size to .1 … .N, cut at line ends."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file = path.open("ab")
        self._line_ended = True

    def write(self, data: bytes) -> None:
        with self._lock:
            if data and self._file.tell() + len(data) > self.max_bytes and self._file.tell() > 0:
                # The end of a line goes with its beginning, then the file is full.
                cut = 0 if self._line_ended else data.find(b"\n") + 1
                if cut or self._line_ended:
                    self._file.write(data[:cut])
                    self._rotate()
                    data = data[cut:]
            self._file.write(data)
            if data:
                self._line_ended = data.endswith(b"\n")
            self._file.flush()  # readers (log_tail, tests) see each line as it comes

    def rotate(self) -> None:
        with self._lock:
            if self._file.tell() > 0:
                self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = self.path.open("ab")

    def follow(self, pipe: IO[bytes]) -> threading.Thread:
        """Copy what a process writes to `pipe` into this log until it closes."""

        def copy() -> None:
            with pipe:
                while chunk := os.read(pipe.fileno(), 65536):
                    self.write(chunk)

        thread = threading.Thread(target=copy, name=f"log {self.path.name}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            self._file.close()


@dataclass
class Stack:
    database: str = "onestop"
    base_port: int = 8000
    namespace: str = ""  # a prefix for every topic and consumer group: a system of its own
    scale: int = 1  # instances of each service
    kafka_bootstrap: str = KAFKA_BOOTSTRAP
    extra_env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT  # the checkout whose services run (`make bench` compares two)
    # what runs each service: `make bench`'s backlog runs them on a simulated clock
    command: tuple[str, ...] = ("-m", "services.{service}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)  # time.monotonic()
    logs: dict[str, RotatingLog] = field(default_factory=dict)
    _log_copiers: dict[str, threading.Thread] = field(default_factory=dict, init=False, repr=False)

    def instances(self, services: Iterable[str] = SERVICES) -> list[str]:
        """Every instance of the services, in their order: `routing`, `routing-2`, …"""
        return [
            service if k == 1 else f"{service}-{k}"
            for service in services
            for k in range(1, self.scale + 1)
        ]

    def port(self, instance: str) -> int:
        service = service_of(instance)
        port = self.base_port + SERVICES.index(service)
        if service == "intake":
            return port  # its instances share the port
        k = int(instance.partition("-")[2] or 1)
        return port + INSTANCE_PORT_STEP * (k - 1)

    def url(self, instance: str) -> str:
        return f"http://127.0.0.1:{self.port(instance)}"

    def log_path(self, instance: str) -> Path:
        return RUN_DIR / f"{instance}-{self.port(instance)}.log"

    def environment(self, instance: str) -> dict[str, str]:
        service = service_of(instance)
        return {
            **LOCAL_TELEMETRY,  # the environment may override these
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            **service_environment(service),  # its own Kafka principal
            "DATABASE_URL": database_url(self.database, service),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port(instance)),
            "HTTP_REUSE_PORT": "true" if self.scale > 1 and service == "intake" else "false",
            "KAFKA_NAMESPACE": self.namespace,
            "OTEL_SERVICE_NAME": service,
            "PYTHONUNBUFFERED": "1",
            "PUBLIC_BASE_URL": self.url("notifier"),
            **access_settings(),
            **self.extra_env,
        }

    def start(self, instances: Iterable[str] | None = None) -> None:
        """Start each instance (all by default); one started before by this Stack (restarted)
        appends to its log, otherwise the previous run's log is rotated to .1."""
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        for service in self.instances() if instances is None else instances:
            log = self.logs.get(service)
            if log is None:
                log = self.logs[service] = RotatingLog(self.log_path(service))
                log.rotate()
            self._wait_log_copied(service)  # the previous run's last lines come first
            process = subprocess.Popen(
                [sys.executable, *(p.format(service=service_of(service)) for p in self.command)],
                cwd=self.root,
                env=self.environment(service),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops them in order
            )
            assert process.stdout is not None
            self._log_copiers[service] = log.follow(process.stdout)
            self.processes[service] = process
            self.started_at[service] = time.monotonic()
            self._pid_path(service).write_text(str(process.pid))

    def note(self, service: str, message: str, **fields: object) -> None:
        """A line from the supervisor in the service's log, in the services' JSON format."""
        log = self.logs.get(service)
        if log is None:
            return
        self._wait_log_copied(service)
        line = {
            "level": "WARNING",
            "logger": "supervisor",
            "message": message,
            "service": service,
            "time": datetime.now(UTC).isoformat(),
            **fields,
        }
        log.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")

    def _wait_log_copied(self, service: str) -> None:
        copier = self._log_copiers.get(service)
        process = self.processes.get(service)
        if copier is not None and (process is None or process.poll() is not None):
            copier.join(timeout=5)  # a grandchild holding the pipe must not block us

    def wait_ready(self, instances: Iterable[str] | None = None, timeout: float = 120.0) -> None:
        """Poll each instance's /readyz until it answers 200, or fail naming the laggard. (The
        intakes share a port: that answers once one of them is ready.)"""
        deadline = time.monotonic() + timeout
        pending = self.instances() if instances is None else list(instances)
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

    def stop(
        self,
        timeout: float = 15.0,
        *,
        one_by_one: bool = False,
        stopped: Callable[[str, int], None] | None = None,
    ) -> None:
        """SIGTERM, then SIGKILL after `timeout`. One by one follows SERVICES' order: intake
        first, so that no new dossier comes in while the others finish theirs."""
        ordered = [i for i in self.instances() if i in self.processes]
        ordered += [i for i in self.processes if i not in ordered]
        batches = [[service] for service in ordered] if one_by_one else [ordered]
        for batch in batches:
            for service in batch:
                if self.processes[service].poll() is None:
                    self.processes[service].send_signal(signal.SIGTERM)
            for service in batch:
                process = self.processes[service]
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                self._pid_path(service).unlink(missing_ok=True)
                if stopped is not None:
                    stopped(service, process.returncode)
        for service in list(self.logs):
            self._wait_log_copied(service)
            self.logs.pop(service).close()
        self.processes.clear()
        self._log_copiers.clear()

    def _pid_path(self, service: str) -> Path:
        return RUN_DIR / f"{service}-{self.port(service)}.pid"

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.log_path(service)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
