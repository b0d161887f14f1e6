"""`make run`: the four services, supervised. A service that dies is restarted with backoff
while the others, Kafka, PostgreSQL and Zipkin keep running; Ctrl-C (or SIGTERM) stops the
services one by one, then Kafka, PostgreSQL and Zipkin.

Configured by environment, so that a test can run one beside `make run`:
ONESTOP_BASE_PORT (8000: intake, +1 routing, +2 deadline, +3 notifier), ONESTOP_DATABASE
(onestop), KAFKA_NAMESPACE (none), SUPERVISOR_METRICS_PORT (8009; its Prometheus text:
restarts and which service is up), ONESTOP_KEEP_INFRA=1 (leave Kafka, PostgreSQL and Zipkin
running on exit).

The multi-node mode (`make run SCALE=3 BROKERS=3`): ONESTOP_SCALE (1) instances of each service
(deploy/local/stack.py says how they share the work), and ONESTOP_KAFKA_CLUSTER=1 to use the
three-broker cluster of deploy/local/kafka-cluster.sh, where the services create their topics
with KAFKA_CLUSTER_PARTITIONS (12) partitions and 3 replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from rich.console import Console

from deploy.local.kafka_access import KAFKA_BOOTSTRAP, cluster_environment
from deploy.local.stack import ROOT, ZIPKIN_URL, Stack

console = Console(soft_wrap=True, highlight=False)  # one line per event, also in a pipe

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # up this long: the next death starts the backoff again at FIRST_DELAY


def restart_delay(failures: int) -> float:
    """1 s, 2 s, 4 s … up to 30 s for the n-th death in a row."""
    return float(min(FIRST_DELAY * 2 ** (failures - 1), MAX_DELAY))


def describe_exit(returncode: int) -> str:
    """How a process ended, as its exit code or the signal that killed it."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Supervised:
    failures: int = 0  # deaths in a row, each within STABLE_AFTER of its start
    restarts: int = 0
    restart_at: float | None = None
    awaiting_ready: bool = False

    def died(self, lived: float) -> float:
        """The delay before its next start: doubling while it keeps dying young."""
        self.failures = 1 if lived >= STABLE_AFTER else self.failures + 1
        return restart_delay(self.failures)


class Metrics:
    def __init__(self, port: int, instances: list[str]) -> None:
        self.registry = CollectorRegistry()
        self.restarts = Counter(
            "onestop_supervisor_restarts",
            "Services restarted by the supervisor after they died",
            ["service"],
            registry=self.registry,
        )
        self.up = Gauge(
            "onestop_supervisor_service_up",
            "1 while the service's process runs, 0 while it waits for its restart",
            ["service"],
            registry=self.registry,
        )
        for service in instances:
            self.restarts.labels(service)
            self.up.labels(service).set(0)
        self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def is_ready(stack: Stack, service: str) -> bool:
    try:
        return httpx.get(f"{stack.url(service)}/readyz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def supervise(stack: Stack, metrics: Metrics, stopping: list[bool]) -> None:
    """Until asked to stop: restart the services that die, each with its own backoff."""
    states = {service: Supervised() for service in stack.processes}
    while not stopping:
        now = time.monotonic()
        for service, state in states.items():
            process = stack.processes[service]
            if state.restart_at is None and process.poll() is not None:
                metrics.up.labels(service).set(0)
                lived = now - stack.started_at[service]
                delay = state.died(lived)
                state.restart_at = now + delay
                state.awaiting_ready = False
                what = describe_exit(process.returncode)
                console.print(
                    f"[yellow]\\[supervisor] {service} exited ({what}) after {lived:.1f} s;"
                    f" restart {state.restarts + 1} in {delay:g} s[/]"
                )
                stack.note(
                    service,
                    "service exited, the supervisor restarts it",
                    exit=what,
                    restart_in_s=delay,
                    restart=state.restarts + 1,
                )
            elif state.restart_at is not None and now >= state.restart_at:
                stack.start([service])
                state.restarts += 1
                state.restart_at = None
                state.awaiting_ready = True
                metrics.restarts.labels(service).inc()
                metrics.up.labels(service).set(1)
                pid = stack.processes[service].pid
                console.print(
                    f"[yellow]\\[supervisor] {service} restarted"
                    f" (pid {pid}, restart {state.restarts})[/]"
                )
            elif state.awaiting_ready and process.poll() is None and is_ready(stack, service):
                state.awaiting_ready = False
                console.print(f"[green]\\[supervisor] {service} is ready again[/]")
        time.sleep(0.2)


def main() -> int:
    base_port = int(os.environ.get("ONESTOP_BASE_PORT", "8000"))
    metrics_port = int(os.environ.get("SUPERVISOR_METRICS_PORT", "8009"))
    keep_infra = os.environ.get("ONESTOP_KEEP_INFRA", "") == "1"
    on_cluster = os.environ.get("ONESTOP_KAFKA_CLUSTER", "") == "1"
    cluster = cluster_environment() if on_cluster else {}
    stack = Stack(
        database=os.environ.get("ONESTOP_DATABASE", "onestop"),
        base_port=base_port,
        namespace=os.environ.get("KAFKA_NAMESPACE", ""),
        scale=int(os.environ.get("ONESTOP_SCALE", "1")),
        extra_env=cluster,
        kafka_bootstrap=cluster.get("KAFKA_BOOTSTRAP_SERVERS", KAFKA_BOOTSTRAP),
    )
    stopping: list[bool] = []  # a list, so the signal handler can set it
    metrics: Metrics | None = None
    supervising = False

    def request_stop(*_: object) -> None:
        if not stopping:
            stopping.append(True)
            if metrics is None or not supervising:
                raise KeyboardInterrupt  # do not wait out the start

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        metrics = Metrics(metrics_port, stack.instances())
        with console.status("[bold]starting intake, routing, deadline, notifier…") as status:
            stack.start()
            for service in stack.instances():
                status.update(f"[bold]waiting for {service} to be ready…")
                stack.wait_ready([service])
                metrics.up.labels(service).set(1)
                log = stack.log_path(service).relative_to(ROOT)
                console.print(f"  [green]✓[/] {service:<11} {stack.url(service)}  (log {log})")
        console.print(
            f"\n[bold green]The system is up.[/]\n"
            f"  API docs (Swagger):  {stack.url('intake')}/docs\n"
            f"  OpenAPI:             {stack.url('intake')}/openapi.json\n"
            f"  Lateness board:      {stack.url('intake')}/bang-tien-do  (public, ?thang=2026-11)\n"
            f"  Citizen look-up:     {stack.url('intake')}/tra-cuu  (code + receipt PIN)\n"
            f"  Officials' pages:    {stack.url('intake')}/van-hanh  (operator / onestop-demo)\n"
            f"  Dossier journey:     {stack.url('intake')}/van-hanh/ho-so/<code>  (officials)\n"
            f"  Stuck now:           {stack.url('intake')}/van-hanh/ton-dong  (officials sign in)\n"
            f"  Traces (Zipkin):     {ZIPKIN_URL}/zipkin/  (search onestop.dossier.code=…)\n"
            f"  Metrics:             {stack.url('intake')}/metrics (and each service's port)\n"
            f"  Supervisor metrics:  http://127.0.0.1:{metrics_port}/metrics  (restarts)\n"
            f"  Post dossiers:       make demo-counters   (or curl, see README)\n"
            f"A service that dies is restarted. Press Ctrl-C to stop everything.\n"
        )
        supervising = True
        supervise(stack, metrics, stopping)
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        console.print(f"[red]could not start the system: {error}[/]")
        return 1
    finally:
        console.print("[bold]stopping the services…")
        stack.stop(
            one_by_one=True,
            stopped=lambda service, code: console.print(
                f"  {service} stopped"
                + ("" if code in (0, -signal.SIGTERM) else f" ({describe_exit(code)})")
            ),
        )
        if metrics is not None:
            metrics.close()
        if not keep_infra:
            console.print("[bold]stopping Zipkin, Kafka and PostgreSQL…")
            subprocess.run([str(ROOT / "deploy" / "local" / "stop-all.sh")], check=False)


if __name__ == "__main__":
    raise SystemExit(main())
