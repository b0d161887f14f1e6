"""`make run`: the four services in the foreground; Ctrl-C stops them, Kafka and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import time

from rich.console import Console

from deploy.local.stack import ROOT, SERVICES, ZIPKIN_URL, Stack

console = Console()


def main() -> int:
    stack = Stack()
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        with console.status("[bold]starting intake, routing, deadline, notifier…") as status:
            stack.start()
            for service in SERVICES:
                status.update(f"[bold]waiting for {service} to be ready…")
                stack.wait_ready([service])
                log = stack.log_path(service).relative_to(ROOT)
                console.print(f"  [green]✓[/] {service:<9} {stack.url(service)}  (log {log})")
        console.print(
            f"\n[bold green]The system is up.[/]\n"
            f"  API docs (Swagger):  {stack.url('intake')}/docs\n"
            f"  OpenAPI:             {stack.url('intake')}/openapi.json\n"
            f"  Traces (Zipkin):     {ZIPKIN_URL}/zipkin/  (search onestop.dossier.code=…)\n"
            f"  Metrics:             {stack.url('intake')}/metrics (and each service's port)\n"
            f"  Post dossiers:       make demo-counters   (or curl, see README)\n"
            f"Press Ctrl-C to stop everything.\n"
        )
        while not stopping:
            for service, process in stack.processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{service} exited ({process.returncode}):[/]")
                    console.print(stack.log_tail(service), markup=False)
                    stopping = True
            time.sleep(0.5)
        return 0
    except Exception as error:
        console.print(f"[red]could not start the system: {error}[/]")
        return 1
    finally:
        console.print("[bold]stopping services, Kafka and PostgreSQL…")
        stack.stop()
        subprocess.run([str(ROOT / "deploy" / "local" / "stop-all.sh")], check=False)


if __name__ == "__main__":
    raise SystemExit(main())
