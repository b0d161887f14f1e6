"""The backlog run of `make bench`: many dossiers become overdue at the same simulated moment;
how long until every one has its overdue alert and its draft apology (Mẫu 04) at the notifier.

The four services run as four processes (deploy/bench/simulated_service.py), each on a
simulated clock standing still at START, in a database and namespace of their own (the bench's
with "_backlog" and "-backlog" added). Seeding goes through the real paths: every dossier is
POSTed to intake's HTTP API, `BENCH_CONCURRENCY` at a time, one procedure with one step, so that
all are due at one moment; seeding ends when the deadline service holds every clock and the
notifier every apology obligation. Its time is reported apart: it is not the backlog figure.

Then every service's clock moves one minute past the due moment at once (SIGUSR1), and the
notifier's tables are polled: `alerts` (kind overdue), `apology_drafts` (opened at due-soon,
which the same scan detects first), and `apologies` (the letter the city issues on the unit's
behalf when the due date passes unsigned). The figures are the seconds from the move to the
last of each.

Settings: BENCH_BACKLOG (dossiers; default 3,000, 300 in quick mode; the target is for 60,000),
BENCH_BACKLOG_TIMEOUT
(seconds the drain may take, 600), BENCH_PROFILE (py-spy on the notifier during the drain). One unit
issues at most 9,999 codes a day and the clock stands still, so the dossiers are spread over as
many desks as that takes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import psutil
from rich.progress import Progress

from deploy.bench import load, report
from deploy.bench.results import BenchRun, Phase
from deploy.bench.sampler import Sampler
from deploy.local import kafka_access
from deploy.local.clean_slate import clean_database, recreate_topics
from deploy.local.demo_counters import random_dossier
from deploy.local.identity import counter_of, password_token
from deploy.local.stack import RUN_DIR, Stack, database_url
from services.intake.domain import MAX_DAILY_SEQUENCE
from shared.catalog import load_catalog
from shared.events import Topic
from shared.settings import DEFAULT_CATALOG

QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "300" if QUICK else "3000"))
NAME = report.BACKLOG
# Hộ tịch, 3 working days, one step: the dossier's due time is its only deadline.
PROCEDURE = "1.005004"
START = datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))  # a Monday morning
PAST_DUE = timedelta(minutes=1)
POLL_SECONDS = 0.25
# Seeding goes at the pipeline's pace (tens of dossiers a second today): bounded generously.
SEED_TIMEOUT = 300.0 + BACKLOG / 5
# Ten times the target's 60 s: a drain slower than that reports how far it got, not a rate.
DRAIN_TIMEOUT = float(os.environ.get("BENCH_BACKLOG_TIMEOUT", "600"))


@dataclass
class Backlog:
    """What the backlog run measured (seconds are wall time)."""

    dossiers: int  # asked for
    seeded: int = 0  # received, with their clock at the deadline service and obligation
    desks: int = 0
    seed_seconds: float = 0.0  # first POST to the last obligation recorded
    posts_seconds: float = 0.0  # first POST to the last answer
    due_at: str = ""
    due_moments: int = 0  # distinct due times among the seeded clocks: 1 when all are alike
    alerted: int = 0
    drafted: int = 0
    issued: int = 0
    alerted_seconds: float | None = None  # clock moved to the last overdue alert
    drafted_seconds: float | None = None  # ... to the last draft apology
    issued_seconds: float | None = None  # ... to the last apology letter issued
    # (seconds since the clock moved, alerted, drafted, issued) at each poll
    progress: list[tuple[float, int, int, int]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    profile: str = ""  # py-spy's speedscope profile of the notifier during the drain
    deadline_profile: str = ""  # ... and of the deadline service (its scheduler)
    # CPU seconds each service spent from the move to the end of the drain (user + system):
    # robust to other work on the machine, unlike the wall-clock figures
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    drain_timeout: float = DRAIN_TIMEOUT
    # the machine's 1-minute load average when the clocks moved and when the drain ended: other
    # work on the same cores makes every figure lower
    load_at_move: float = 0.0
    load_at_end: float = 0.0


def desks_for(count: int) -> list[str]:
    """Enough receiving units for `count` codes in one day, the city centre's desk first."""
    units = sorted(unit.code for unit in load_catalog(DEFAULT_CATALOG).units)
    units.sort(key=lambda unit: unit != "000.00.00.H29")
    needed = -(-count // MAX_DAILY_SEQUENCE)
    if needed > len(units):
        raise ValueError(
            f"BENCH_BACKLOG={count}: at most {len(units) * MAX_DAILY_SEQUENCE} dossiers in one"
            f" simulated day ({len(units)} desks of {MAX_DAILY_SEQUENCE} codes)"
        )
    return units[:needed]


def bodies(count: int) -> list[bytes]:
    procedure = load_catalog(DEFAULT_CATALOG).procedure(PROCEDURE)
    assert procedure is not None, f"procedure {PROCEDURE} is not in the catalog"
    rng = random.Random(2026)
    return load.encode([random_dossier(rng, procedure) for _ in range(count)])


async def counts(connection: asyncpg.Connection) -> tuple[int, int, int]:
    row = await connection.fetchrow(
        "SELECT (SELECT count(*) FROM notifier.alerts WHERE kind = 'overdue') AS alerted,"
        " (SELECT count(*) FROM notifier.apology_drafts) AS drafted,"
        " (SELECT count(*) FROM notifier.apologies) AS issued"
    )
    assert row is not None
    return row["alerted"], row["drafted"], row["issued"]


async def seeded_count(connection: asyncpg.Connection) -> int:
    """Dossiers ready to fall due: a running clock at the deadline service, and the apology
    obligation and addressee at the notifier."""
    row = await connection.fetchrow(
        "SELECT (SELECT count(*) FROM deadline.clocks WHERE status = 'running') AS clocks,"
        " (SELECT count(*) FROM notifier.apology_obligations) AS obligations,"
        " (SELECT count(*) FROM notifier.addressees) AS addressees"
    )
    assert row is not None
    return int(min(row["clocks"], row["obligations"], row["addressees"]))


class BacklogRun:
    def __init__(
        self,
        progress: Progress,
        sampler: Sampler,
        *,
        database: str,
        namespace: str,
        base_port: int,
        environment: dict[str, str],
        concurrency: int,
        profile: bool = False,
    ) -> None:
        self.progress = progress
        self.sampler = sampler
        self.database = database
        self.namespace = namespace
        self.concurrency = concurrency
        self.profile = profile
        self.clock_file = RUN_DIR / f"bench-clock-{base_port}.txt"
        self.stack = Stack(database=database, base_port=base_port, namespace=namespace)
        self.stack.command = ("-m", "deploy.bench.simulated_service", "{service}")
        self.stack.extra_env = {**environment, "BENCH_CLOCK_FILE": str(self.clock_file)}

    async def prepare(self) -> None:
        await clean_database(self.database)
        await kafka_access.grant(self.namespace)
        topics = [self.namespace + str(topic) for topic in Topic]
        await recreate_topics(
            kafka_access.connection(), (self.namespace,), topics, partitions=3, timeout=60
        )

    def _set_clock(self, moment: datetime) -> None:
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        self.clock_file.write_text(moment.isoformat())

    def _move_clocks(self, moment: datetime) -> None:
        self._set_clock(moment)
        for process in self.stack.processes.values():
            process.send_signal(signal.SIGUSR1)

    async def measure(self, count: int) -> Backlog:
        result = Backlog(dossiers=count)
        desks = desks_for(count)
        result.desks = len(desks)
        await self.prepare()
        self._set_clock(START)
        self.stack.start()
        for service, process in self.stack.processes.items():
            self.sampler.watch(service, process.pid)
        connection = await asyncpg.connect(database_url(self.database))
        try:
            await asyncio.to_thread(self.stack.wait_ready)
            accepted = await self._seed(result, desks, connection)
            if accepted and result.seeded >= accepted:  # a refused POST is a failure, no more
                await self._drain(result, connection)
        finally:
            await connection.close()
            for service in self.stack.processes:
                self.sampler.forget(service)
            await asyncio.to_thread(self.stack.stop)
        return result

    async def _seed(self, result: Backlog, desks: list[str], connection: asyncpg.Connection) -> int:
        """Post every dossier; returns how many intake accepted, once all of them are ready
        to fall due (or the seeding timed out)."""
        self.sampler.phase = f"{NAME}: seeding"
        payloads = bodies(result.dossiers)
        per_desk = -(-len(payloads) // len(desks))
        posting = self.progress.add_task(f"{NAME}: posting", total=len(payloads))
        posts = Phase("backlog posts", "closed")
        began = time.perf_counter()
        for index, desk in enumerate(desks):
            token = await password_token(counter_of(desk))
            async with load.client(self.stack.url("intake"), token) as http:
                await load.closed_loop(
                    http,
                    payloads[index * per_desk : (index + 1) * per_desk],
                    posts,
                    self.concurrency,
                    lambda: self.progress.advance(posting),
                )
        result.posts_seconds = time.perf_counter() - began
        result.failures = dict(posts.failures)
        ready = self.progress.add_task(f"{NAME}: clocks and obligations", total=posts.completed)
        deadline = time.monotonic() + SEED_TIMEOUT
        while time.monotonic() < deadline:
            result.seeded = await seeded_count(connection)
            self.progress.update(ready, completed=result.seeded)
            if result.seeded >= posts.completed:
                break
            await asyncio.sleep(POLL_SECONDS)
        result.seed_seconds = time.perf_counter() - began
        if result.seeded < posts.completed:
            result.failures["accepted, not ready in time"] = posts.completed - result.seeded
        row = await connection.fetchrow(
            "SELECT max(due_at) AS due_at, count(DISTINCT due_at) AS moments FROM deadline.clocks"
        )
        assert row is not None
        result.due_moments = row["moments"]
        if row["due_at"] is not None:
            result.due_at = row["due_at"].astimezone(START.tzinfo).isoformat()
        return posts.completed

    async def _drain(self, result: Backlog, connection: asyncpg.Connection) -> None:
        due_at = datetime.fromisoformat(result.due_at)
        task = self.progress.add_task(f"{NAME}: alerted and drafted", total=result.seeded)
        self.sampler.phase = NAME
        from deploy.bench import run

        notifier = self.stack.processes["notifier"].pid
        spy = run._py_spy(notifier, "backlog-notifier") if self.profile else None
        deadline_pid = self.stack.processes["deadline"].pid
        deadline_spy = run._py_spy(deadline_pid, "backlog-deadline") if self.profile else None
        cpu_before = _cpu_seconds(self.stack.processes)
        result.load_at_move = os.getloadavg()[0]
        began = time.perf_counter()
        self._move_clocks(due_at + PAST_DUE)
        deadline = time.monotonic() + result.drain_timeout
        try:
            while time.monotonic() < deadline:
                alerted, drafted, issued = await counts(connection)
                at = time.perf_counter() - began
                result.progress.append((round(at, 3), alerted, drafted, issued))
                result.alerted, result.drafted, result.issued = alerted, drafted, issued
                if result.alerted_seconds is None and alerted >= result.seeded:
                    result.alerted_seconds = at
                if result.drafted_seconds is None and drafted >= result.seeded:
                    result.drafted_seconds = at
                if result.issued_seconds is None and issued >= result.seeded:
                    result.issued_seconds = at
                self.progress.update(task, completed=min(alerted, drafted))
                if issued >= result.seeded and min(alerted, drafted) >= result.seeded:
                    break
                await asyncio.sleep(POLL_SECONDS)
        finally:
            result.load_at_end = os.getloadavg()[0]
            self.sampler.phase = "between phases"
            result.cpu_seconds = {
                service: round(seconds - cpu_before.get(service, 0.0), 2)
                for service, seconds in _cpu_seconds(self.stack.processes).items()
            }
            if spy is not None:
                result.profile = run._stop_py_spy(spy)
            if deadline_spy is not None:
                result.deadline_profile = run._stop_py_spy(deadline_spy)
        missing = result.seeded - min(result.alerted, result.drafted)
        if missing:
            result.failures["not alerted and drafted in time"] = missing


def _cpu_seconds(processes: Mapping[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """User and system CPU seconds of each service's process so far."""
    seconds = {}
    for service, process in processes.items():
        try:
            times = psutil.Process(process.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[service] = times.user + times.system
    return seconds


def phase_of(result: Backlog) -> Phase:
    """The backlog as a phase of the run: its completions over time (alerted and drafted, since
    the clock moved) make its line in the throughput plot."""
    phase = Phase(NAME, "backlog", failures=dict(result.failures))
    done = max(result.alerted_seconds or 0.0, result.drafted_seconds or 0.0)
    phase.completed = min(result.alerted, result.drafted)
    phase.seconds = done if result.alerted_seconds and result.drafted_seconds else 0.0
    before = 0
    for at, alerted, drafted, _ in result.progress:
        now = min(alerted, drafted)
        phase.outcomes_at.extend([at] * (now - before))
        before = max(before, now)
    return phase


async def standalone() -> None:
    """`python -m deploy.bench.backlog`: the backlog run alone, its report under
    artifacts/bench/backlog/ (the full bench's report is left alone)."""
    from dataclasses import asdict

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from deploy.bench import run

    sampler = Sampler()
    stop = asyncio.Event()
    bench_run = BenchRun(
        quick=QUICK,
        settings={"backlog": BACKLOG, "concurrency": run.CONCURRENCY, "cores": os.cpu_count() or 0},
        started=datetime.now(START.tzinfo).isoformat(timespec="seconds"),
        code=run._commit(),
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=run.console) as progress:
        sampling = asyncio.create_task(sampler.run(stop, bench_run.cpu.append))
        try:
            result = await backlog_run(progress, sampler, run.TRACING_ON).measure(BACKLOG)
        finally:
            stop.set()
            await sampling
    bench_run.backlog = asdict(result)
    bench_run.phases.append(phase_of(result))
    for profile in (result.profile, result.deadline_profile):
        if profile:  # under artifacts/bench/, the report's folder's parent
            bench_run.profiles.append(f"../{profile}")
    folder = run.ARTIFACTS / "backlog"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(asdict(bench_run), indent=1) + "\n")
    path = report.write(bench_run, folder)
    run.console.print(report.markdown(bench_run))
    run.console.print(f"wrote {path} and its plots")


def backlog_run(progress: Progress, sampler: Sampler, environment: dict[str, str]) -> BacklogRun:
    """The bench's backlog run, in the bench's corner of the servers (its settings)."""
    from deploy.bench import run

    return BacklogRun(
        progress,
        sampler,
        database=run.DATABASE + "_backlog",
        namespace=run.NAMESPACE.rstrip(".") + "-backlog.",  # one segment, as services require
        base_port=run.BASE_PORT + 20,
        environment=environment,
        concurrency=run.CONCURRENCY,
        profile=run.PROFILE,
    )


if __name__ == "__main__":
    asyncio.run(standalone())
