"""One service in a process of its own, as `python -m services.<name>` runs it, but reading
`now` from a simulated clock that the bench moves: the backlog run (deploy/bench/backlog.py)
makes thousands of dossiers due at one simulated moment, then moves every service's clock past
it at once.

Run: `python -m deploy.bench.simulated_service <service>`, with the service's usual environment
and BENCH_CLOCK_FILE naming a file that holds the simulated `now` (ISO 8601, with its offset).
The clock starts there and stands still; SIGUSR1 makes it read the file again (time only moves
forward). One process per service, as deployed: the CPU sampler sees each apart."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from types import FrameType

import uvicorn

from deploy.local.inprocess import SERVICES
from shared.clock import SimulatedClock

CLOCK_FILE_VARIABLE = "BENCH_CLOCK_FILE"


def read_moment(path: Path) -> datetime:
    moment = datetime.fromisoformat(path.read_text().strip())
    if moment.tzinfo is None:
        raise ValueError(f"{path}: the simulated time {moment} has no UTC offset")
    return moment


def main(service: str) -> None:
    if service not in SERVICES:
        raise SystemExit(f"no service {service!r}: one of {', '.join(SERVICES)}")
    path = Path(os.environ[CLOCK_FILE_VARIABLE])
    clock = SimulatedClock(read_moment(path))

    def move(_: int, __: FrameType | None) -> None:
        clock.set(read_moment(path))

    signal.signal(signal.SIGUSR1, move)  # uvicorn handles only SIGINT and SIGTERM
    settings_class, create_app = SERVICES[service]
    settings = settings_class()  # type: ignore[call-arg]  # from the environment
    uvicorn.run(
        create_app(settings, clock=clock),
        host=settings.http_host,
        port=settings.http_port,
        workers=1,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
