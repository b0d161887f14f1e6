"""`make demo`: a simulated month of one-stop traffic across the city's units.

The four services run in this process on the real Kafka broker and PostgreSQL server, in their
own corner of both (database onestop_demo, topics and consumer groups under "demo.";
ONESTOP_DEMO_DATABASE and ONESTOP_DEMO_NAMESPACE name others), sharing one simulated clock.
Each working day counters post dossiers through office hours; units hand
them on along their process, ask for a supplement or a financial obligation, sit on some past
their step's or the dossier's due time, ask for an extension, mark results ready and return
them, run the branches of parallel steps, now and then send a dossier back to the step before;
a couple of citizens withdraw. The clock moves in steps; after each step the demo polls
until the system has caught up (dossiers routed, clocks at the expected step, lateness detected
at the new time) before anyone acts again. At the end it prints the QĐ 766 indicators and the
lateness board for the month, each unit's apologies (on time, late, missing) and late replies to
consultations (lấy ý kiến: the first unit of some inter-agency dossiers asks one or two others,
and the units traffic.UNIT_TRAITS marks reply late), and checks that every late dossier got its
apology (Mẫu 04)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI

from deploy.local import kafka_access
from deploy.local.clean_slate import clean_database, recreate_topics
from deploy.local.demo.checks import Check, check_apologies
from deploy.local.demo.driver import DemoError, Driver
from deploy.local.demo.month import Month
from deploy.local.demo.options import Options, parse_options
from deploy.local.demo.report import (
    ConsoleLogHandler,
    board_tables,
    console,
    duties,
    duties_table,
    indicators_table,
    print_check,
    write_artifact,
)
from deploy.local.demo.traffic import START, UNIT_TRAITS
from deploy.local.inprocess import running_services
from deploy.local.stack import KAFKA_BOOTSTRAP, LOCAL_TELEMETRY, ROOT, service_database_urls
from shared.calendar import UnitCalendars
from shared.catalog import load_catalog
from shared.clock import SimulatedClock
from shared.events import Topic
from shared.settings import DEFAULT_CATALOG, unit_calendars

# A second demo on the same servers (another checkout) names its own database and topics.
DATABASE = os.environ.get("ONESTOP_DEMO_DATABASE", "onestop_demo")
NAMESPACE = os.environ.get("ONESTOP_DEMO_NAMESPACE", "demo.")
ARTIFACT = ROOT / "artifacts" / "demo-month.json"
STOP_TIMEOUT = 30.0  # seconds for the four services to stop


def configure_environment() -> None:
    """Spans go where the environment says; if it says nothing, to the local Zipkin."""
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = KAFKA_BOOTSTRAP
    tracing_configured = "OTEL_TRACES_EXPORTER" in os.environ or any(
        name.startswith("OTEL_EXPORTER_ZIPKIN") for name in os.environ
    )
    if not tracing_configured:
        os.environ.setdefault("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=demo")
        for name, value in LOCAL_TELEMETRY.items():
            os.environ.setdefault(name, value)
    # The services' JSON logs: warnings and errors only, printed above the progress display.
    logging.disable(logging.INFO)


@dataclass(frozen=True)
class Simulated:
    """The month as it stands at its end, the four services still running: the board's and the
    indicators' figures for the month, and the demo's check of them."""

    apps: dict[str, FastAPI]
    clock: SimulatedClock
    month: Month
    end: datetime  # the last day's closing, one clock step on: every lateness detected
    indicators: dict[str, Any]
    board: dict[str, Any]
    check: Check


@asynccontextmanager
async def simulated_month(
    options: Options,
    database: str = DATABASE,
    namespace: str = NAMESPACE,
    *,
    console_logs: bool = True,
) -> AsyncIterator[Simulated]:
    """The month simulated on a clean database and fresh topics of the namespace (its ACLs
    granted); the services stop when the caller leaves. `console_logs`: the services' warnings
    printed above the progress display (not in a test, whose logs pytest captures)."""
    url = await clean_database(database)
    try:
        await kafka_access.grant(namespace)
        topics = [namespace + str(topic) for topic in Topic]
        await recreate_topics(
            kafka_access.connection(), (namespace,), topics, partitions=3, timeout=options.timeout
        )
    except TimeoutError as error:
        raise DemoError(str(error) or "Kafka did not answer") from error
    clock = SimulatedClock(START)
    async with running_services(
        clock,
        kafka_bootstrap_servers=KAFKA_BOOTSTRAP,
        database_urls=service_database_urls(database),
        kafka_namespace=namespace,
        own={"deadline": {"lateness_scan_interval_seconds": 0.1}},  # no SMTP: letters wait
        stop_timeout=STOP_TIMEOUT,
    ) as apps:
        if console_logs:
            logging.getLogger().handlers[:] = [ConsoleLogHandler()]
        catalog = load_catalog(DEFAULT_CATALOG)
        # The calendars the services count time in, from the settings they run with.
        calendars: UnitCalendars = unit_calendars(apps["intake"].state.runtime.settings, catalog)
        driver = Driver(options, clock, apps, url)
        month = Month(options, clock, driver, catalog, calendars)
        try:
            async with asyncio.timeout(options.max_seconds):
                await month.run()
                end = await month.settle()
                indicators = await month.indicators(end + timedelta(minutes=1))
                board = await month.lateness_board(end + timedelta(minutes=1))
                check = await check_apologies(driver, month.dossiers, indicators, board, end)
        except TimeoutError as error:
            raise DemoError(
                f"still running after --max-seconds={options.max_seconds:.0f}"
            ) from error
        finally:
            await driver.close()
        yield Simulated(apps, clock, month, end, indicators, board, check)


async def simulate(options: Options) -> int:
    configure_environment()
    started = time.monotonic()
    console.print(
        f"[bold]Simulated month[/]: {options.days} working days from {START:%a %d/%m/%Y %H:%M},"
        f" {options.per_day} dossiers a day, seed {options.seed};"
        f" database {DATABASE}, topics {NAMESPACE}*, traces: {os.environ['OTEL_TRACES_EXPORTER']}"
    )
    async with simulated_month(options) as simulated:
        month, end, check = simulated.month, simulated.end, simulated.check
        indicators, board = simulated.indicators, simulated.board
    title = f"{month.days[0]:%d/%m} – {month.days[-1]:%d/%m/%Y}"
    console.print(indicators_table(indicators, f"QĐ 766 indicators per unit, {title}"))
    for table in board_tables(board, f"Lateness board, {title}"):
        console.print(table)
    per_unit = duties(indicators, board)
    console.print(duties_table(per_unit, f"Apologies and consultation replies per unit, {title}"))
    moves = ", ".join(f"{name} {count}" for name, count in sorted(month.live.moves.items()))
    console.print(f"moves: {moves}")
    print_check(check)
    seconds = time.monotonic() - started
    write_artifact(
        ARTIFACT,
        {
            "options": asdict(options),
            "period": month.period(end + timedelta(minutes=1)),
            "indicators": indicators,
            "lateness": board,
            "apologies_and_replies": per_unit,
            "unit_traits": {code: asdict(t) for code, t in sorted(UNIT_TRAITS.items())},
            "consultations": [
                {
                    "code": d.code,
                    "requesting_unit": d.steps[0]["unit_code"],
                    "replies": [{**asdict(r), "late": r.late} for r in d.replies],
                }
                for d in month.dossiers
                if d.replies
            ],
            "check": {**asdict(check), "late": check.late, "ok": check.ok},
            "moves": dict(month.live.moves),
            "dossiers": [
                {
                    "code": d.code,
                    "procedure": d.procedure.code,
                    "fate": asdict(d.fate),
                    "phase": d.phase.value,
                    "clock": d.clock,
                }
                for d in month.dossiers
            ],
            "seconds": round(seconds, 1),
        },
    )
    console.print(f"wrote {ARTIFACT.relative_to(ROOT)}; {seconds:.0f}s")
    return 0 if check.ok else 1


def main() -> None:
    options = parse_options(description=__doc__.split("\n\n")[0])
    try:
        code = asyncio.run(simulate(options))
    except DemoError as error:
        console.print(f"[red]demo failed: {error}", highlight=False)
        code = 2
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        console.print(f"[red]demo failed: the infrastructure went away: {error!r}", highlight=False)
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
