"""`make demo`: a simulated month of one-stop traffic across the city's units.

The four services run in this process on the real Kafka broker and PostgreSQL server, in their
own corner of both (database onestop_demo, topics and consumer groups under "demo.";
ONESTOP_DEMO_DATABASE and ONESTOP_DEMO_NAMESPACE name others), sharing one simulated clock.
Each working day counters post dossiers through office hours; units hand
them on along their process, ask for a supplement or a financial obligation, sit on some past
their step's or the dossier's due time, ask for an extension, mark results ready and return
them; a couple of citizens withdraw. The clock moves in steps; after each step the demo polls
until the system has caught up (dossiers routed, clocks at the expected step, lateness detected
at the new time) before anyone acts again. At the end it prints the QĐ 766 indicators and the
lateness board for the month and checks that every late dossier got its apology (Mẫu 04)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local.demo_counters import DOCUMENTS, FAMILY, GIVEN, MIDDLE, random_dossier
from deploy.local.stack import KAFKA_BOOTSTRAP, LOCAL_TELEMETRY, ROOT, database_url
from services.deadline.main import create_app as deadline_app
from services.intake.handlers import PROJECTIONS
from services.intake.main import create_app as intake_app
from services.notifier.main import create_app as notifier_app
from services.routing.main import create_app as routing_app
from shared.calendar import HCMC, UnitCalendars, WorkingCalendar
from shared.catalog import Catalog, Procedure, load_catalog
from shared.clock import SimulatedClock
from shared.events import Topic
from shared.logs import TraceContextFilter, json_formatter
from shared.messaging.topics import ensure_topics
from shared.settings import (
    DEFAULT_CATALOG,
    DeadlineSettings,
    IntakeSettings,
    NotifierSettings,
    RoutingSettings,
    unit_calendars,
)
from shared.telemetry import configure_telemetry

# A second demo on the same servers (another checkout) names its own database and topics.
DATABASE = os.environ.get("ONESTOP_DEMO_DATABASE", "onestop_demo")
NAMESPACE = os.environ.get("ONESTOP_DEMO_NAMESPACE", "demo.")
SCHEMAS = ("intake", "routing", "deadline", "notifier")
START = datetime(2026, 11, 2, 7, 0, tzinfo=HCMC)  # a Monday morning
ARTIFACT = ROOT / "artifacts" / "demo-month.json"
TAX = "000.30.01.H29"  # Thuế Thành phố: the financial obligation of land procedures
CENTRE = "000.00.00.H29"
WARD_DESKS = ("000.41.01.H29", "000.41.02.H29", "000.41.03.H29", "000.41.04.H29")
POLL = 0.05  # seconds between two looks at the system while waiting for it to catch up
# How often a field's procedures are filed, relative to each other (civil status and
# certification dominate a one-stop desk's day; land and construction are fewer but long).
FIELD_WEIGHTS = {
    "Hộ tịch": 30,
    "Chứng thực": 24,
    "Đất đai": 14,
    "Đăng ký biện pháp bảo đảm": 4,
    "Lý lịch tư pháp": 8,
    "Xây dựng": 5,
    "Thành lập và hoạt động doanh nghiệp": 8,
    "Thành lập và hoạt động của hộ kinh doanh": 6,
}
STOP_TIMEOUT = 30.0  # seconds for the four services to stop
T = TypeVar("T")

console = Console() if sys.stdout.isatty() else Console(width=160)


class DemoError(Exception):
    """The system did not do what the demo expected; the message says what and where."""


@dataclass(frozen=True)
class Options:
    per_day: int
    days: int
    seed: int
    late_share: float
    past_due_share: float
    extension_share: float
    supplement_share: float
    obligation_share: float
    withdrawals: int
    step_minutes: int
    timeout: float
    max_seconds: float

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.step_minutes)


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local.demo_month", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--per-day", type=int, default=12, help="dossiers the counters post each working day")
    add("--days", type=int, default=22, help="working days to simulate")
    add("--seed", type=int, default=2026, help="seed of every random choice (reproducible runs)")
    add("--late-share", type=float, default=0.15, help="dossiers a unit sits on past a due time")
    add("--past-due-share", type=float, default=0.4, help="of those, late past the overall due")
    add("--extension-share", type=float, default=0.35, help="of those, the unit asks to extend")
    add("--supplement-share", type=float, default=0.10, help="dossiers asked for a supplement")
    add("--obligation-share", type=float, default=0.6, help="land dossiers asked to pay fees/tax")
    add("--withdrawals", type=int, default=2, help="dossiers the citizen withdraws")
    add("--step-minutes", type=int, default=30, help="simulated minutes per clock step")
    add("--timeout", type=float, default=60.0, help="seconds to wait for the system to catch up")
    add("--max-seconds", type=float, default=600.0, help="give up after this many real seconds")
    args = parser.parse_args(argv)
    options = Options(**vars(args))
    if options.per_day < 1 or options.days < 1 or not 5 <= options.step_minutes <= 120:
        parser.error("--per-day and --days must be positive, --step-minutes within 5..120")
    return options


# --- the infrastructure: clean database and topics, environment, the four services ---------


def configure_environment() -> None:
    """Spans go where the environment says; if it says nothing, to the local Zipkin."""
    os.environ["DATABASE_URL"] = database_url(DATABASE)
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


class ConsoleLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(json_formatter("demo-month"))
        self.addFilter(TraceContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)


async def reset_database() -> None:
    """Every run starts clean: the services migrate their schemas again at start."""
    server = await asyncpg.connect(database_url("onestop"), timeout=10)
    try:
        if not await server.fetchval("SELECT true FROM pg_database WHERE datname = $1", DATABASE):
            await server.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await server.close()
    connection = await asyncpg.connect(database_url(DATABASE), timeout=10)
    try:
        for schema in SCHEMAS:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await connection.close()


async def reset_topics(timeout: float) -> None:
    """Delete the demo's topics (and so its consumer groups' offsets in them), then create the
    four event topics empty, so that no event of an earlier run reaches this one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(NAMESPACE)]
        if ours:
            await admin.delete_topics(ours)
            deadline = time.monotonic() + timeout
            while set(ours) & set(await admin.list_topics()):
                if time.monotonic() > deadline:
                    raise DemoError(f"Kafka did not delete the demo's topics in {timeout}s")
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    topics = [NAMESPACE + str(topic) for topic in Topic]
    await ensure_topics(KAFKA_BOOTSTRAP, topics, partitions=3, replication_factor=1)


@asynccontextmanager
async def running_services(clock: SimulatedClock) -> AsyncIterator[dict[str, FastAPI]]:
    """The four services in this process, like tests/system.py, on the demo's namespace."""
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,
        "database_url": database_url(DATABASE),
        "http_port": 18950,  # required by the settings; nothing listens: calls go through ASGI
        "kafka_namespace": NAMESPACE,
        "retry_max_backoff_seconds": 1.0,
        "outbox_poll_interval_seconds": 0.2,
    }
    settings = {
        "intake": IntakeSettings(**common),
        "routing": RoutingSettings(**common),
        "deadline": DeadlineSettings(**common, lateness_scan_interval_seconds=0.1),
        "notifier": NotifierSettings(**common),  # no SMTP: letters wait at the counter
    }
    factories = {
        "intake": intake_app,
        "routing": routing_app,
        "deadline": deadline_app,
        "notifier": notifier_app,
    }
    apps: dict[str, FastAPI] = {}
    for name, factory in factories.items():
        telemetry = configure_telemetry(name, metric_readers=[])
        apps[name] = factory(settings[name], telemetry=telemetry, clock=clock)  # type: ignore[operator]
    stack = AsyncExitStack()
    try:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        logging.getLogger().handlers[:] = [ConsoleLogHandler()]
        yield apps
    finally:
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await stack.aclose()
        except TimeoutError:
            console.print(f"[yellow]the services did not stop within {STOP_TIMEOUT:.0f}s")


def client(app: FastAPI, name: str) -> httpx.AsyncClient:
    # A service's unhandled error is a 500 for the demo to retry, as over the network.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=f"http://{name}", timeout=30)


# --- the traffic: who files what, and what each unit will do with it -----------------------


class Phase(StrEnum):
    ROUTING = "routing"  # posted; waiting for routing's plan and the deadline's clock
    PROCESSING = "processing"
    SUPPLEMENT = "supplement"  # the citizen was asked for a supplement
    OBLIGATION = "obligation"  # the citizen was asked to pay fees or taxes
    PROCESSED = "processed"  # result ready at the desk
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


OPEN_PHASES = (Phase.ROUTING, Phase.PROCESSING, Phase.SUPPLEMENT, Phase.OBLIGATION)


class Move(StrEnum):
    """A lifecycle call on intake; the value is its path under /v1/dossiers/{code}/."""

    HAND_OFF = "hand-offs"
    RESULT = "result"
    ASK_SUPPLEMENT = "supplement-requests"
    SUPPLEMENT = "supplements"
    ASK_PAYMENT = "financial-obligations"
    PAYMENT = "financial-obligations/fulfilment"
    EXTENSION = "extension-requests"
    RETURN = "return"
    WITHDRAW = "withdrawal"


@dataclass(frozen=True)
class Fate:
    """Decided when the dossier is posted, from its own seeded generator."""

    late_step: int | None = None  # the step whose unit sits on the dossier past its due time
    past_due: bool = False  # ... and past the dossier's overall due time
    extension: bool = False  # ... and asks for an extension (an apology) before that
    supplement: bool = False
    obligation: bool = False
    withdraw: bool = False


@dataclass
class Dossier:
    code: str
    procedure: Procedure
    fate: Fate
    rng: random.Random
    calendar: WorkingCalendar  # its competent unit's: office hours and the agency's days off
    phase: Phase = Phase.ROUTING
    step: int = 1
    step_started: datetime = START
    draw: float = 0.5  # where in its allotted time this step's unit acts
    clock: dict[str, Any] = field(default_factory=dict)  # the deadline service's, last read
    expected: tuple[str, int | None] | None = None  # what that clock must show after our move
    apology_expected: bool = False  # an extension was asked: the notifier must apologise
    done: set[Move] = field(default_factory=set)
    resume_at: datetime | None = None
    return_at: datetime | None = None

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.clock["steps"])

    @property
    def due_at(self) -> datetime:
        return _at(self.clock["due_at"])

    def step_due(self, step: int | None = None) -> datetime:
        return _at(self.steps[(step or self.step) - 1]["due_at"])

    def unit(self, step: int | None = None) -> str:
        return str(self.steps[(step or self.step) - 1]["unit_code"])

    def begin_step(self, at: datetime) -> None:
        self.step_started = at
        self.draw = self.rng.random()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def procedure_weights(catalog: Catalog) -> list[float]:
    per_field = Counter(p.field for p in catalog.procedures)
    return [FIELD_WEIGHTS.get(p.field, 3) / per_field[p.field] for p in catalog.procedures]


def decide_fate(rng: random.Random, procedure: Procedure, withdraw: bool, o: Options) -> Fate:
    if withdraw:
        return Fate(withdraw=True)
    steps = len(procedure.steps)
    # Every draw is made whatever the outcome, so one choice never shifts the others.
    supplement, obligation, late, past_due, extension = (rng.random() for _ in range(5))
    late_step = rng.randint(1, steps)
    is_late = late < o.late_share
    is_past_due = is_late and (late_step == steps or past_due < o.past_due_share)
    return Fate(
        late_step=late_step if is_late else None,
        past_due=is_past_due,
        extension=is_past_due and extension < o.extension_share,
        supplement=supplement < o.supplement_share,
        obligation=any(s.unit == TAX for s in procedure.steps) and obligation < o.obligation_share,
    )


def officials_by_unit(catalog: Catalog, seed: int) -> dict[str, list[str]]:
    rng = random.Random(f"{seed}:officials")
    return {
        unit.code: [
            f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}" for _ in range(3)
        ]
        for unit in catalog.units
    }


# --- the simulation ------------------------------------------------------------------------


@dataclass
class Live:
    posted: int = 0
    apologies: int = 0
    late: int = 0
    moves: Counter[str] = field(default_factory=Counter)


class Month:
    def __init__(self, options: Options, clock: SimulatedClock, apps: dict[str, FastAPI]) -> None:
        self.o = options
        self.clock = clock
        self.catalog = load_catalog(DEFAULT_CATALOG)
        # The calendars the services count time in, from the settings they run with.
        self.calendars: UnitCalendars = unit_calendars(
            apps["intake"].state.runtime.settings, self.catalog
        )
        self.calendar = self.calendars.default  # the counters' days and hours
        self.weights = procedure_weights(self.catalog)
        self.officials = officials_by_unit(self.catalog, options.seed)
        self.intake = client(apps["intake"], "intake")
        self.deadline = client(apps["deadline"], "deadline")
        self.dossiers: list[Dossier] = []
        self.live = Live()
        self.days = self._working_days()
        self.withdrawn_indices = self._withdrawals()
        self.period_start = datetime.combine(self.days[0], datetime.min.time(), HCMC)
        self.started = time.monotonic()

    async def close(self) -> None:
        await self.intake.aclose()
        await self.deadline.aclose()

    def _working_days(self) -> list[date]:
        days: list[date] = []
        day = START.date()
        while len(days) < self.o.days:
            if self.calendar.is_working_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def ticks(self, day: date) -> Iterator[datetime]:
        """The clock's steps through one working day, from opening to one step past closing:
        the scheduler also runs at lunch and after hours, and finds what fell due at 17:00
        that evening (units only act in office hours, when their moves fall due)."""
        moment = datetime.combine(day, self.calendar.office_hours.opening, HCMC)
        closing = self.calendar.closing_of(day)
        while moment <= closing + self.o.step:
            yield moment
            moment += self.o.step

    def arrivals(self, day: date) -> list[datetime]:
        """When the counters receive the day's dossiers: spread through office hours."""
        rng = random.Random(f"{self.o.seed}:arrivals:{day.isoformat()}")
        opening = datetime.combine(day, self.calendar.office_hours.opening, HCMC)
        length = self.calendar.office_hours.working_day
        return sorted(
            self.calendar.add_working_time(opening, length * rng.uniform(0.01, 0.99))
            for _ in range(self.o.per_day)
        )

    # -- waiting for the system --------------------------------------------------------------

    async def bounded(self, call: Awaitable[T], what: str, timeout: float | None = None) -> T:
        """A call into the system that must answer within the timeout (in-process calls have
        no network timeout: a service stuck on its database would hang the demo)."""
        limit = timeout or self.o.timeout
        try:
            return await asyncio.wait_for(call, limit)
        except TimeoutError as error:
            raise DemoError(
                f"{what}: no answer within {limit:.0f}s at simulated {self.clock():%d/%m %H:%M}"
            ) from error

    async def until_all(
        self, dossiers: list[Dossier], caught_up: Callable[[Dossier], Awaitable[bool]], what: str
    ) -> None:
        """Poll until `caught_up` holds for every dossier; fail after the timeout."""
        pending = list(dossiers)
        deadline = time.monotonic() + self.o.timeout
        while pending:
            remaining = max(deadline - time.monotonic(), 1.0)
            round_ = asyncio.gather(*(caught_up(d) for d in pending))
            results = await self.bounded(round_, what, remaining)
            pending = [d for d, ok in zip(pending, results, strict=True) if not ok]
            if not pending:
                return
            if time.monotonic() > deadline:
                sample = ", ".join(d.code for d in pending[:5])
                raise DemoError(
                    f"{what}: {len(pending)} dossiers not caught up after {self.o.timeout:.0f}s"
                    f" at simulated {self.clock():%d/%m %H:%M} (e.g. {sample}); last clock:"
                    f" {json.dumps(pending[0].clock, default=str)[:600]}"
                )
            await asyncio.sleep(POLL)
        self._check_budget()

    def _check_budget(self) -> None:
        if time.monotonic() - self.started > self.o.max_seconds:
            raise DemoError(f"the demo ran longer than --max-seconds={self.o.max_seconds:.0f}")

    async def send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """A call to intake, retried while it answers 5xx (storage unavailable: the services
        retry PostgreSQL and Kafka themselves), bounded by the timeout."""
        deadline = time.monotonic() + self.o.timeout
        while True:
            remaining = max(deadline - time.monotonic(), 1.0)
            response = await self.bounded(
                self.intake.request(method, path, **kwargs), what, remaining
            )
            if response.status_code < 500:
                return response
            if time.monotonic() > deadline:
                raise DemoError(f"{what}: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(POLL * 4)

    async def read_clock(self, d: Dossier) -> bool:
        response = await self.deadline.get(f"/v1/clocks/{d.code}")
        if response.status_code != 200:
            return False  # not started yet (404), or the service cannot answer now (5xx)
        d.clock = response.json()
        return True

    async def routed(self, d: Dossier) -> bool:
        """Routing's plan reached intake (hand-offs need it) and the deadline runs a clock."""
        response = await self.intake.get(f"/v1/dossiers/{d.code}")
        view = response.json() if response.status_code == 200 else {}
        if not (view.get("routing") and view.get("deadline")):
            return False
        return await self.read_clock(d) and bool(d.clock["steps"])  # the steps' due times

    async def processed(self, d: Dossier) -> bool:
        response = await self.intake.get(f"/v1/dossiers/{d.code}")
        return response.status_code == 200 and response.json()["status"]["code"] == 9

    async def move_applied(self, d: Dossier) -> bool:
        """The deadline's clock shows our last move; the apology of an extension is out."""
        if d.expected is not None:
            if not await self.read_clock(d):
                return False
            status, step = d.expected
            if d.clock["status"] != status or step not in (None, d.clock["current_step"]):
                return False
            if status == "completed" and not await self.processed(d):
                return False  # the result can be returned once intake shows it processed
            d.expected = None
        if d.apology_expected:
            if not await self.apology_issued(d):
                return False
            d.apology_expected = False
        return True

    def lateness_pending(self, d: Dossier, now: datetime) -> bool:
        """Whether the lateness scheduler still owes this running clock a detection at `now`:
        due soon, overdue, or its current step overdue (the same rules as its queries)."""
        c = d.clock
        if c.get("status") != "running":
            return False
        if _at(c["due_soon_at"]) <= now and c["due_soon_detected_at"] is None:
            return True
        if _at(c["due_at"]) < now and c["overdue_detected_at"] is None:
            return True
        current = next((s for s in c["steps"] if s["sequence"] == c["current_step"]), None)
        return bool(
            current
            and current["completed_at"] is None
            and current["overdue_detected_at"] is None
            and _at(current["due_at"]) < now
            and _at(current["due_at"]) < _at(c["due_at"])
        )

    async def lateness_detected(self, d: Dossier) -> bool:
        now = self.clock()
        return await self.read_clock(d) and not self.lateness_pending(d, now)

    # -- one step of the clock ---------------------------------------------------------------

    async def step_to(self, moment: datetime, arrivals: list[datetime]) -> None:
        for arrival in arrivals:
            self.clock.set(arrival)
            d = await self.post()
            # Routed and on the clock before time moves on, as it would be in real time.
            await self.until_all([d], self.routed, "routing and clock start")
            d.phase = Phase.PROCESSING
            d.begin_step(_at(d.clock["started_at"]))
        self.clock.set(moment)
        # The scheduler polls the clock: it has run at `moment` once every clock that is due
        # soon, overdue or past its step's time shows the detection.
        watched = [d for d in self.dossiers if self.lateness_pending(d, moment)]
        await self.until_all(watched, self.lateness_detected, "lateness detection")
        acted = []
        for d in self.dossiers:
            if d.phase in (Phase.ROUTING, Phase.RETURNED, Phase.WITHDRAWN):
                continue
            when, move = self.next_move(d)
            if when <= moment:
                await self.perform(d, move)
                acted.append(d)
        # Before the clock moves on, the deadline service must know what the units did:
        # otherwise it could find a dossier late that was handed on or finished in time.
        await self.until_all(acted, self.move_applied, "the units' moves")

    async def post(self) -> Dossier:
        index = len(self.dossiers)
        rng = random.Random(f"{self.o.seed}:dossier:{index}")
        procedure = rng.choices(self.catalog.procedures, weights=self.weights)[0]
        body = random_dossier(rng, procedure)
        desks = [CENTRE, CENTRE, *WARD_DESKS, procedure.agency]
        body["receiving_unit_code"] = rng.choice(desks)
        withdraw = index in self.withdrawn_indices
        key = {"Idempotency-Key": f"demo-month-{self.o.seed}-{index}"}
        response = await self.send("POST", "/v1/dossiers", "a post", json=body, headers=key)
        if response.status_code != 201:
            raise DemoError(f"the counter's post was refused: {response.status_code}")
        code = response.json()["dossier_code"]
        fate = decide_fate(rng, procedure, withdraw, self.o)
        calendar = self.calendars.of(procedure.agency)
        dossier = Dossier(code=code, procedure=procedure, fate=fate, rng=rng, calendar=calendar)
        self.dossiers.append(dossier)
        self.live.posted += 1
        return dossier

    def _withdrawals(self) -> set[int]:
        """Which dossiers (by posting order) the citizen withdraws: early in the month."""
        total = self.o.per_day * self.o.days
        rng = random.Random(f"{self.o.seed}:withdrawals")
        return set(rng.sample(range(total // 2), min(self.o.withdrawals, total // 2)))

    def next_move(self, d: Dossier) -> tuple[datetime, Move]:
        """What the dossier's holder (or its citizen) does next, and when."""
        add = d.calendar.add_working_time
        if d.phase is Phase.PROCESSED:
            assert d.return_at is not None
            return d.return_at, Move.RETURN
        if d.phase in (Phase.SUPPLEMENT, Phase.OBLIGATION):
            assert d.resume_at is not None
            return d.resume_at, Move.SUPPLEMENT if d.phase is Phase.SUPPLEMENT else Move.PAYMENT
        start, step_due = d.step_started, d.step_due()
        allotted = d.calendar.working_time_between(start, step_due)
        if d.fate.withdraw:
            return add(start, allotted * (0.2 + 0.3 * d.draw)), Move.WITHDRAW
        if d.fate.supplement and d.step == 1 and Move.ASK_SUPPLEMENT not in d.done:
            return add(start, allotted * (0.15 + 0.25 * d.draw)), Move.ASK_SUPPLEMENT
        if d.fate.obligation and d.unit() == TAX and Move.ASK_PAYMENT not in d.done:
            return add(start, allotted * (0.2 + 0.3 * d.draw)), Move.ASK_PAYMENT
        if d.fate.extension and d.step == d.fate.late_step and Move.EXTENSION not in d.done:
            lead = timedelta(hours=2 + 6 * d.draw)  # asks 2 to 8 working hours before the due
            return max(start, d.calendar.subtract_working_time(d.due_at, lead)), Move.EXTENSION
        finish = self.finish_time(d, start, step_due, allotted)
        return finish, Move.HAND_OFF if d.step < len(d.steps) else Move.RESULT

    def finish_time(
        self, d: Dossier, start: datetime, step_due: datetime, allotted: timedelta
    ) -> datetime:
        add = d.calendar.add_working_time
        margin = self.o.step + timedelta(minutes=5)  # acting happens at the next clock step
        if d.step == d.fate.late_step:
            if d.fate.past_due:  # an hour to five working days past the dossier's due time
                return add(max(d.due_at, start), timedelta(hours=1 + 39 * d.draw**2))
            room = d.calendar.working_time_between(step_due, d.due_at)
            late_by = timedelta(hours=0.5 + 5.5 * d.draw)
            return add(step_due, min(late_by, room / 2) if room > 2 * margin else late_by)
        if allotted <= margin * 2:
            # Little time left (a pause ended near the due time, or an earlier unit was late):
            # the unit acts at the next clock step if one falls before the due time, else it
            # takes 1 to 3 hours.
            if allotted > self.o.step:
                return start
            return add(start, timedelta(hours=1 + 2 * d.draw))
        on_time = add(start, allotted * (0.2 + 0.6 * d.draw))
        return min(on_time, d.calendar.subtract_working_time(step_due, margin))

    async def perform(self, d: Dossier, move: Move) -> None:
        now = self.clock()
        unit = d.unit() if d.phase is not Phase.PROCESSED else None
        official = self.officials[unit][int(d.draw * 3) % 3] if unit else ""
        body: dict[str, Any] | None = None
        if move is Move.HAND_OFF:
            next_unit = d.unit(d.step + 1)
            body = {"from_unit_code": unit, "to_unit_code": next_unit, "official": official}
        elif move is Move.RESULT:
            body = {"unit_code": unit, "official": official}
        elif move is Move.ASK_SUPPLEMENT:
            missing = d.rng.sample(DOCUMENTS.get(d.procedure.field, ["Tờ khai"]), 1)
            body = {
                "unit_code": unit,
                "official": official,
                "reason": f"Thiếu hoặc chưa hợp lệ: {missing[0].lower()}",
                "missing_documents": missing,
            }
        elif move is Move.ASK_PAYMENT:
            body = {"unit_code": unit, "amount_vnd": d.rng.randrange(5, 500) * 100_000}
        elif move is Move.EXTENSION:
            body = {
                "unit_code": unit,
                "official": official,
                "reason": "Cần thêm thời gian xác minh, lấy ý kiến cơ quan liên quan",
            }
        elif move is Move.WITHDRAW:
            body = {"reason": "Công dân đề nghị rút hồ sơ"}
        path = f"/v1/dossiers/{d.code}/{move.value}"
        response = await self.send("POST", path, f"{move.value} on {d.code}", json=body)
        if response.status_code not in (200, 202):  # 202: routing records a hand-off
            raise DemoError(
                f"{move.value} on {d.code} (step {d.step}, {d.phase}) at {now:%d/%m %H:%M}:"
                f" {response.status_code} {response.text[:400]}"
            )
        self.live.moves[move.value] += 1
        self.after(d, move, now)

    def after(self, d: Dossier, move: Move, now: datetime) -> None:
        """Our model of the dossier after a move, and what the deadline's clock must show."""
        add = d.calendar.add_working_time
        d.done.add(move)
        if move is Move.HAND_OFF:
            d.step += 1
            d.begin_step(now)
            d.expected = ("running", d.step)
        elif move is Move.RESULT:
            d.phase = Phase.PROCESSED
            d.return_at = add(now, timedelta(hours=d.rng.uniform(2, 24)))
            d.expected = ("completed", None)
        elif move in (Move.ASK_SUPPLEMENT, Move.ASK_PAYMENT):
            asked = move is Move.ASK_SUPPLEMENT
            d.phase = Phase.SUPPLEMENT if asked else Phase.OBLIGATION
            days = d.rng.randint(1, 4) if asked else d.rng.randint(1, 3)
            d.resume_at = add(now, timedelta(hours=8 * days - d.rng.uniform(0, 4)))
            d.expected = ("paused", None)
        elif move in (Move.SUPPLEMENT, Move.PAYMENT):
            d.phase = Phase.PROCESSING
            d.step_started = now  # what is left of the step's time counts from here
            d.expected = ("running", d.step)
        elif move is Move.EXTENSION:
            d.apology_expected = True
        elif move is Move.RETURN:
            d.phase = Phase.RETURNED
        elif move is Move.WITHDRAW:
            d.phase = Phase.WITHDRAWN
            d.expected = ("closed", None)

    # -- the month ---------------------------------------------------------------------------

    async def indicators(self, end: datetime) -> dict[str, Any]:
        params = self.period(end)
        response = await self.send("GET", "/v1/reports/indicators", "indicators", params=params)
        response.raise_for_status()
        return response.json()

    async def lateness_board(self, end: datetime) -> dict[str, Any]:
        params = self.period(end)
        response = await self.send("GET", "/v1/reports/lateness", "the board", params=params)
        response.raise_for_status()
        return response.json()

    def period(self, end: datetime) -> dict[str, str]:
        return {"from": self.period_start.isoformat(), "to": end.isoformat()}

    async def refresh_live(self) -> None:
        total = (await self.indicators(self.clock() + timedelta(minutes=1)))["total"]
        if total:
            self.live.apologies = total["apologies_issued"]
            self.live.late = total["done_late"] + total["in_progress_past_due"]

    def counts(self) -> str:
        phases = Counter(d.phase for d in self.dossiers)
        open_ = sum(phases[p] for p in OPEN_PHASES)
        done = phases[Phase.PROCESSED] + phases[Phase.RETURNED]
        return (
            f"posted {self.live.posted}  in progress {open_}  done {done}"
            f"  withdrawn {phases[Phase.WITHDRAWN]}  late {self.live.late}"
            f"  apologies {self.live.apologies}"
        )

    async def run(self) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("days  {task.fields[counts]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("simulated month", total=len(self.days), counts="")
            for day in self.days:
                arrivals = self.arrivals(day)
                for moment in self.ticks(day):
                    now_arriving = [a for a in arrivals if a <= moment]
                    arrivals = arrivals[len(now_arriving) :]
                    await self.step_to(moment, now_arriving)
                    await self.refresh_live()
                    progress.update(
                        task, description=f"{moment:%a %d/%m %H:%M}", counts=self.counts()
                    )
                progress.advance(task)

    async def settle(self) -> datetime:
        """After the last day's closing: every lateness detected, every apology issued and
        every event projected into intake's ledger, which the reports read."""
        end = self.calendar.closing_of(self.days[-1]) + self.o.step
        self.clock.set(end)
        running = [d for d in self.dossiers if self.lateness_pending(d, end)]
        await self.until_all(running, self.lateness_detected, "lateness detection at the end")
        owed = [
            d
            for d in self.dossiers
            if d.clock.get("overdue_detected_at") or Move.EXTENSION in d.done
        ]
        await self.until_all(owed, self.apology_issued, "apologies for the late dossiers")
        await self.until_projected()
        return end

    async def apology_issued(self, d: Dossier) -> bool:
        return "apology-issued" in await self.event_kinds(d)

    async def event_kinds(self, d: Dossier) -> list[str]:
        path = f"/v1/dossiers/{d.code}/timeline"
        response = await self.send("GET", path, f"the timeline of {d.code}")
        response.raise_for_status()
        return [e["event_type"].split(".")[-2] for e in response.json()["events"]]

    async def until_projected(self) -> None:
        """Every outbox is published and intake has applied every event of the other three
        services that its projection handles (the reports read the projection)."""
        connection = await asyncpg.connect(database_url(DATABASE), timeout=10)
        projected = [kind.TYPE for kind in PROJECTIONS]

        async def count(query: str, *args: Any) -> int:
            return int(await connection.fetchval(query, *args, timeout=self.o.timeout))

        try:
            deadline = time.monotonic() + self.o.timeout
            while True:
                unpublished = emitted = 0
                for schema in SCHEMAS:
                    unpublished += await count(
                        f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                    )
                    if schema != "intake":
                        emitted += await count(
                            f"SELECT count(*) FROM {schema}.outbox WHERE event_type = ANY($1)",
                            projected,
                        )
                applied = await count(
                    "SELECT count(*) FROM intake.inbox WHERE source <> '/onestop/intake'"
                )
                if unpublished == 0 and applied == emitted:
                    return
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"not settled after {self.o.timeout:.0f}s: {unpublished} events"
                        f" unpublished, intake applied {applied} of {emitted}"
                    )
                await asyncio.sleep(POLL)
        finally:
            await connection.close()


# --- the report ----------------------------------------------------------------------------


@dataclass
class Check:
    """Late dossiers against apologies, per dossier and in the indicators.

    Late is QĐ 766's meaning: finished after its due time (done late), or still running past
    it at the end (in progress past due); paused dossiers are not late, their due time moves
    by the pause. The deadline service marks a dossier overdue when its scheduler finds it
    running past its due time, and the notifier apologises then, or earlier, when the unit
    asks for an extension: an apology in advance, for a dossier that is not due yet, is right
    (HCMC wants it no later than the due date) and is counted apart."""

    done_late: int
    in_progress_past_due: int
    overdue_detected: int
    apologies: int
    in_advance: list[str]  # apologies for an extension asked, the dossier not due yet
    late_without_apology_indicator: int
    late_without_apology: list[str]
    late_by_clocks: int
    planned_late: list[str]
    unplanned_late: list[str]
    board_held_past_due: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def late(self) -> int:
        return self.done_late + self.in_progress_past_due

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_apologies(
    month: Month, indicators: dict[str, Any], board: dict[str, Any], end: datetime
) -> Check:
    """Each dossier's timeline (intake) and clock (deadline), against the indicators."""
    kinds = await asyncio.gather(*(month.event_kinds(d) for d in month.dossiers))
    await month.until_all(month.dossiers, month.read_clock, "the final clocks")
    by_code = {d.code: d for d in month.dossiers}
    late: set[str] = set()  # finished after its due time, or running past it at the end
    not_yet_due: set[str] = set()  # running or paused within its due time at the end
    overdue: set[str] = set()
    apologised: set[str] = set()
    extended: set[str] = set()
    for d, events in zip(month.dossiers, kinds, strict=True):
        c = d.clock
        running_past_due = c["status"] == "running" and _at(c["due_at"]) < end
        if running_past_due or (c["status"] == "completed" and c["timeliness"] == "late"):
            late.add(d.code)
        elif c["status"] in ("running", "paused"):
            not_yet_due.add(d.code)
        for kind, found in (
            ("overdue", overdue),
            ("apology-issued", apologised),
            ("extension-requested", extended),
        ):
            if kind in events:
                found.add(d.code)
    total = indicators["total"]
    planned = {d.code for d in month.dossiers if d.fate.past_due}  # some are not due yet
    in_advance = apologised & extended & not_yet_due
    check = Check(
        done_late=total["done_late"],
        in_progress_past_due=total["in_progress_past_due"],
        overdue_detected=len(overdue),
        apologies=total["apologies_issued"],
        in_advance=sorted(in_advance),
        late_without_apology_indicator=total["late_without_apology"],
        late_without_apology=sorted((late | overdue) - apologised),
        late_by_clocks=len(late),
        planned_late=sorted(planned & late),
        unplanned_late=sorted(late - planned),
        board_held_past_due=sum(row["held_past_due"] for row in board["units"]),
    )
    problems = check.problems
    if check.late != len(late):
        problems.append(f"the indicators count {check.late} late dossiers, the clocks {len(late)}")
    if len(apologised) != check.apologies:
        problems.append(
            f"{len(apologised)} timelines show an apology, the indicators say {check.apologies}"
        )
    if check.late != check.apologies - len(in_advance):
        problems.append(
            f"{check.late} late dossiers but {check.apologies - len(in_advance)} apologies for"
            f" late dossiers ({check.apologies} issued, {len(in_advance)} in advance)"
        )
    if check.late_without_apology or check.late_without_apology_indicator:
        problems.append(
            f"late without apology: {len(check.late_without_apology)} by the timelines"
            f" ({', '.join(check.late_without_apology[:10])}),"
            f" {check.late_without_apology_indicator} by the indicators"
        )
    for code in sorted(apologised - late - overdue - in_advance):
        problems.append(f"{code}: an apology, but never late: {_facts(by_code[code])}")
    for code in sorted(late ^ overdue):
        problems.append(
            f"{code}: late={code in late}, found overdue={code in overdue},"
            f" apology={code in apologised}: {_facts(by_code[code])}"
        )
    if check.board_held_past_due != check.in_progress_past_due:
        paused = [
            d.code
            for d in month.dossiers
            if d.clock["status"] == "paused" and _at(d.clock["due_at"]) < end
        ]
        check.notes.append(
            f"the lateness board counts {check.board_held_past_due} dossiers held past due, the"
            f" indicators {check.in_progress_past_due} in progress past due: the board also counts"
            f" paused dossiers (waiting on the citizen) whose due time, not yet moved by the"
            f" pause, has passed: {', '.join(paused) or 'none'}"
        )
    if check.unplanned_late:
        check.notes.append("late though no unit sat on them: " + ", ".join(check.unplanned_late))
    return check


def _facts(d: Dossier) -> str:
    c = d.clock
    keys = ("status", "due_at", "completed_at", "timeliness", "overdue_detected_at", "paused_at")
    return ", ".join(f"{key} {c.get(key)}" for key in keys)


def _short(name: str | None, code: str) -> str:
    return (name or code).replace("Ủy ban nhân dân", "UBND")


def indicators_table(indicators: dict[str, Any], title: str) -> Table:
    columns = {
        "received": "received",
        "done_early": "done early",
        "done_on_time": "on time",
        "done_late": "late",
        "in_progress_within_due": "open ≤ due",
        "in_progress_past_due": "open > due",
        "paused": "paused",
        "withdrawn": "withdrawn",
        "apologies_issued": "apologies",
        "late_without_apology": "late w/o apology",
    }
    table = Table(title=title, title_justify="left")
    table.add_column("competent unit")
    for label in columns.values():
        table.add_column(label, justify="right")
    for unit in indicators["units"]:
        name = _short(unit["unit_name"], unit["unit_code"])
        table.add_row(name, *(str(unit[key]) for key in columns))
    table.add_section()
    total = indicators["total"]
    table.add_row("total", *(str(total.get(key, 0)) for key in columns), style="bold")
    return table


def board_tables(board: dict[str, Any], title: str) -> tuple[Table, Table]:
    units = Table(title=f"{title}: steps per unit", title_justify="left")
    for label in ("unit", "early", "on time", "late", "late rate", "held now", "held past due"):
        units.add_column(label, justify="left" if label == "unit" else "right")
    for row in board["units"]:
        rate = row["late_rate"]
        units.add_row(
            _short(row["unit_name"], row["unit_code"]),
            str(row["early"]),
            str(row["on_time"]),
            str(row["late"]),
            "–" if rate is None else f"{rate:.0%}",
            str(row["held"]),
            str(row["held_past_due"]),
        )
    officials = Table(title=f"{title}: officials with late steps", title_justify="left")
    for label in ("unit", "official", "steps", "late"):
        officials.add_column(label, justify="right" if label in ("steps", "late") else "left")
    for row in board["officials"]:
        officials.add_row(
            _short(row["unit_name"], row["unit_code"]),
            row["official"],
            str(row["steps"]),
            str(row["late"]),
        )
    return units, officials


def print_check(check: Check) -> None:
    mark = "[green]OK" if check.ok else "[red]MISMATCH"
    advance = len(check.in_advance)
    console.print(
        f"[bold]late dossiers {check.late}[/] (QĐ 766: done late {check.done_late}"
        f" + in progress past due {check.in_progress_past_due})"
        f" · found overdue by the deadline service {check.overdue_detected}"
        f" · apologies issued {check.apologies} ({check.apologies - advance} for late dossiers"
        f" + {advance} in advance: extension asked, not due yet)"
        f" · [bold]late without apology {len(check.late_without_apology)}[/]"
        f" (indicator: {check.late_without_apology_indicator})  {mark}"
    )
    console.print(
        f"of the late dossiers, {len(check.planned_late)} were held past their due time by a"
        f" unit as planned, {len(check.unplanned_late)} were late otherwise"
    )
    for problem in check.problems:
        console.print(f"[red]  ✗ {problem}", highlight=False)
    for note in check.notes:
        console.print(f"[yellow]  ! {note}", highlight=False)


# --- main ----------------------------------------------------------------------------------


async def simulate(options: Options) -> int:
    configure_environment()
    started = time.monotonic()
    console.print(
        f"[bold]Simulated month[/]: {options.days} working days from {START:%a %d/%m/%Y %H:%M},"
        f" {options.per_day} dossiers a day, seed {options.seed};"
        f" database {DATABASE}, topics {NAMESPACE}*, traces: {os.environ['OTEL_TRACES_EXPORTER']}"
    )
    await reset_database()
    await reset_topics(options.timeout)
    clock = SimulatedClock(START)
    async with running_services(clock) as apps:
        month = Month(options, clock, apps)
        try:
            async with asyncio.timeout(options.max_seconds):
                await month.run()
                end = await month.settle()
                indicators = await month.indicators(end + timedelta(minutes=1))
                board = await month.lateness_board(end + timedelta(minutes=1))
                check = await check_apologies(month, indicators, board, end)
        except TimeoutError as error:
            raise DemoError(
                f"still running after --max-seconds={options.max_seconds:.0f}"
            ) from error
        finally:
            await month.close()
    title = f"{month.days[0]:%d/%m} – {month.days[-1]:%d/%m/%Y}"
    console.print(indicators_table(indicators, f"QĐ 766 indicators per unit, {title}"))
    for table in board_tables(board, f"Lateness board, {title}"):
        console.print(table)
    moves = ", ".join(f"{name} {count}" for name, count in sorted(month.live.moves.items()))
    console.print(f"moves: {moves}")
    print_check(check)
    seconds = time.monotonic() - started
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        json.dumps(
            {
                "options": asdict(options),
                "period": month.period(end + timedelta(minutes=1)),
                "indicators": indicators,
                "lateness": board,
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
            ensure_ascii=False,
            indent=2,
            default=str,
        )
    )
    console.print(f"wrote {ARTIFACT.relative_to(ROOT)}; {seconds:.0f}s")
    return 0 if check.ok else 1


def main() -> None:
    options = parse_options()
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
