"""The bench's one run: baselines, intake alone, the pipeline end to end, tracing on and off,
an open-model run, a backlog falling due at once (deploy/bench/backlog.py), CPU and RSS per
process, profiles; then the report (deploy/bench/report.py).

Settings (environment): BENCH_QUICK=1 runs everything small (about two minutes, and the
backlog of 300 some minutes more at today's pace);
BENCH_SECONDS (each closed loop's length, run by wrk: the baseline and intake alone),
BENCH_DOSSIERS (the pipeline's), BENCH_CONCURRENCY, BENCH_RATE, BENCH_OPEN_SECONDS,
BENCH_KAFKA_MESSAGES,
BENCH_PROFILE=0 or 1 (py-spy profiles; on by default, off in quick mode), BENCH_ROUNDS,
BENCH_COMPARE=<git ref> (that ref's intake too, in the same rounds: before and after),
BENCH_BACKLOG (dossiers due at once; 0 skips the backlog run), BENCH_BACKLOG_TIMEOUT.
ONESTOP_BENCH_DATABASE, ONESTOP_BENCH_NAMESPACE and ONESTOP_BENCH_PORT keep a second bench
apart from `make run` and from another bench."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deploy.bench import backlog, load, report, wrk
from deploy.bench.results import BenchRun, Phase, merge_rounds
from deploy.bench.sampler import Sampler
from deploy.local import kafka_access
from deploy.local.clean_slate import clean_database, recreate_topics
from deploy.local.demo_counters import random_dossier
from deploy.local.identity import counter_of, password_token
from deploy.local.stack import LOCAL_TELEMETRY, ROOT, Stack, database_url
from services.intake.domain import MAX_DAILY_SEQUENCE
from shared.catalog import load_catalog
from shared.events import ApologyObligationRecorded, Topic
from shared.settings import DEFAULT_CATALOG

console = Console()
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
DATABASE = os.environ.get("ONESTOP_BENCH_DATABASE", "onestop_bench")
NAMESPACE = os.environ.get("ONESTOP_BENCH_NAMESPACE", "bench.")
ALONE = NAMESPACE.removesuffix(".") + "-alone."  # intake alone's topics
BASE_PORT = int(os.environ.get("ONESTOP_BENCH_PORT", "18500"))
BASELINE_PORT = BASE_PORT + 10
DOSSIERS = int(os.environ.get("BENCH_DOSSIERS", "200" if QUICK else "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
RATE = float(os.environ.get("BENCH_RATE", "100"))
# Closed loops (the baseline and intake alone) run for a time, not a count: wrk (wrk.py)
CLOSED_SECONDS = float(os.environ.get("BENCH_SECONDS", "5" if QUICK else "15"))
WARM_SECONDS = 2.0 if QUICK else 5.0
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", "3" if QUICK else "30"))
KAFKA_MESSAGES = int(os.environ.get("BENCH_KAFKA_MESSAGES", "5000" if QUICK else "50000"))
PROFILE = os.environ.get("BENCH_PROFILE", "0" if QUICK else "1") == "1"
WARMUP = 30 if QUICK else 200
# Baseline and intake rounds alternate, then each one's rounds are added up: the machine's
# other load then falls on all of them alike.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))
# A git ref (e.g. main) whose intake runs alone in the same rounds: before and after a change.
COMPARE = os.environ.get("BENCH_COMPARE", "")
DRAIN_TIMEOUT = 120.0 if QUICK else 600.0  # seconds for every dossier to reach the notifier
# Each load phase posts at another unit's desk: a unit issues at most 9,999 codes a day
# (409 daily_sequence_exhausted), and a full run posts more than that in one day.
DESKS = backlog.desks_for(len(load_catalog(DEFAULT_CATALOG).units) * MAX_DAILY_SEQUENCE)
ARTIFACTS = ROOT / "artifacts" / "bench"
PARTITIONS = 3  # the services' default (KAFKA_PARTITIONS)
ADMIN = kafka_access.connection()
TRACING_ON = {**LOCAL_TELEMETRY, "OTEL_SDK_DISABLED": "false"}
TRACING_OFF = {"OTEL_SDK_DISABLED": "true"}


class Outcomes:
    """Every dossier's ApologyObligationRecorded on the notifier's topic (its record time): the
    end of the pipeline, read by a consumer of the bench's own, in no group."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        reader = AIOKafkaConsumer(
            NAMESPACE + str(Topic.NOTIFIER),
            **ADMIN.client_options(),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            while not stop.is_set():
                for records in (await reader.getmany(timeout_ms=200)).values():
                    for record in records:
                        headers = {name: value.decode() for name, value in record.headers}
                        if headers.get("ce_type") == ApologyObligationRecorded.TYPE:
                            self.at.setdefault(headers["ce_subject"], record.timestamp / 1000)
        finally:
            await reader.stop()

    async def wait(self, codes: set[str], progress: Progress, task: Any) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            reached = len(codes & self.at.keys())
            progress.update(task, completed=reached, total=len(codes))
            if reached == len(codes):
                return
            await asyncio.sleep(0.2)


async def database_waits(
    sampler: Sampler, waits: list[dict[str, object]], stop: asyncio.Event
) -> None:
    """What the bench database's busy backends wait on, every half second: a lock held until
    commit shows as many backends waiting on Lock/transactionid or Lock/tuple."""
    connection = await asyncpg.connect(database_url(DATABASE))
    try:
        while not stop.is_set():
            rows = await connection.fetch(
                "SELECT coalesce(wait_event_type || '/' || wait_event, 'on CPU') AS event,"
                " count(*) AS backends FROM pg_stat_activity"
                " WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1",
                DATABASE,
            )
            waits.append({"phase": sampler.phase, **{r["event"]: r["backends"] for r in rows}})
            await asyncio.sleep(sampler.interval)
    finally:
        await connection.close()


class Bench:
    def __init__(self, progress: Progress, sampler: Sampler, outcomes: Outcomes) -> None:
        self.progress = progress
        self.sampler = sampler
        self.outcomes = outcomes
        self._desks = itertools.cycle(DESKS)
        rng = random.Random(2026)
        procedures = load_catalog(DEFAULT_CATALOG).procedures
        self.bodies = load.encode(
            [random_dossier(rng, rng.choice(procedures)) for _ in range(DOSSIERS + WARMUP)]
        )
        self.run = BenchRun(
            quick=QUICK,
            settings={
                "closed_seconds": CLOSED_SECONDS,
                "dossiers": DOSSIERS,
                "concurrency": CONCURRENCY,
                "rate": RATE,
                "open_seconds": OPEN_SECONDS,
                "kafka_messages": KAFKA_MESSAGES,
                "rounds": ROUNDS,
                "backlog": backlog.BACKLOG,
                "cores": os.cpu_count() or 0,
            },
        )

    def _task(self, name: str, total: int | None) -> Any:
        return self.progress.add_task(name, total=total)

    def _measure(self, name: str) -> None:
        self.sampler.phase = name

    def _rest(self) -> None:
        self.sampler.phase = "between phases"

    async def _token(self) -> str:
        """A counter officer of the next desk: each phase's dossiers get codes of their own."""
        return await password_token(counter_of(next(self._desks)))

    async def closed(
        self,
        name: str,
        url: str,
        token: str | None,
        warm: Callable[[], None] = lambda: None,
        warm_token: str | None = None,
    ) -> Phase:
        """A closed loop run by wrk: a warm-up (at another desk, if given: a desk issues at
        most 9,999 codes a day), then CLOSED_SECONDS measured."""
        bodies = self.bodies[WARMUP:]
        await wrk.closed_loop(
            url,
            bodies,
            Phase("warm-up", "closed"),
            token=warm_token or token,
            connections=CONCURRENCY,
            seconds=WARM_SECONDS,
        )
        warm()
        phase = Phase(name, "closed")
        task = self._task(f"{name} (seconds)", round(CLOSED_SECONDS))
        self._measure(name)
        await wrk.closed_loop(
            url,
            bodies,
            phase,
            token=token,
            connections=CONCURRENCY,
            seconds=CLOSED_SECONDS,
            tick=lambda: self.progress.advance(task),
        )
        self._rest()
        self.run.phases.append(phase)
        return phase

    async def baseline_http(self) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(DATABASE),
            "HTTP_PORT": str(BASELINE_PORT),
        }
        process = _start(["-m", "deploy.bench.baseline_app"], environment)
        self.sampler.watch("baseline app", process.pid)
        url = f"http://127.0.0.1:{BASELINE_PORT}"
        try:
            await _wait_http(f"{url}/readyz", process)
            await self.closed(report.BARE_HTTP, url, None)
        finally:
            process.terminate()
            process.wait(timeout=15)
            self.sampler.forget("baseline app")

    async def baseline_kafka(self) -> None:
        """Produce messages the size of an event (acks=all) while one consumer reads them all:
        what the broker and aiokafka do without any of the project's code."""
        topic = NAMESPACE + "bench.raw-baseline"
        phase = Phase(report.BARE_KAFKA, "kafka")
        task = self._task(phase.name, KAFKA_MESSAGES)
        producer = AIOKafkaProducer(**ADMIN.client_options(), acks="all", linger_ms=5)
        consumer = AIOKafkaConsumer(
            topic, **ADMIN.client_options(), group_id=None, auto_offset_reset="latest"
        )
        await producer.start()
        await consumer.start()
        await consumer.seek_to_end()
        await consumer.getmany(timeout_ms=500)  # assigned and positioned before producing
        payload = b"x" * 1200  # about a DossierReceived CloudEvent
        self._measure(phase.name)
        began = time.perf_counter()

        async def produce() -> None:
            for start in range(0, KAFKA_MESSAGES, 500):
                sent = [
                    await producer.send(topic, payload, key=str(i).encode())
                    for i in range(start, min(start + 500, KAFKA_MESSAGES))
                ]
                await asyncio.gather(*sent)

        producing = asyncio.create_task(produce())
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                while phase.completed < KAFKA_MESSAGES:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        phase.completed += len(records)
                        self.progress.advance(task, len(records))
                        now = time.perf_counter() - began
                        phase.outcomes_at.extend([now] * len(records))
            await producing
        finally:
            phase.seconds = time.perf_counter() - began
            self._rest()
            await consumer.stop()
            await producer.stop()
        self.run.phases.append(phase)

    async def intake_alone(
        self, name: str, environment: dict[str, str], profile: bool, root: Path = ROOT
    ) -> None:
        """Intake on its own topics, which nothing consumes, and an empty schema: each run
        starts its desk's daily codes afresh (wrk posts thousands), and the pipeline's
        consumers never have these dossiers to catch up on."""
        await clean_database(DATABASE, ["intake"])
        stack = Stack(database=DATABASE, base_port=BASE_PORT, namespace=ALONE, root=root)
        stack.extra_env = environment
        stack.start(["intake"])
        self.sampler.watch("intake", stack.processes["intake"].pid)
        spies: list[subprocess.Popen[bytes]] = []
        pid = stack.processes["intake"].pid

        def warm() -> None:  # the profile starts after the warm-up (first JWKS fetch, ...)
            if profile:
                spies.append(_py_spy(pid, "intake-post"))

        try:
            await asyncio.to_thread(stack.wait_ready, ["intake"])
            url = stack.url("intake")
            await self.closed(name, url, await self._token(), warm, await self._token())
        finally:
            for spy in spies:
                self.run.profiles.append(_stop_py_spy(spy))
            self.sampler.forget("intake")
            await asyncio.to_thread(stack.stop)

    async def pipeline(
        self, environment: dict[str, str], *, open_model: bool, profile: bool
    ) -> None:
        on = environment is TRACING_ON
        name = report.PIPELINE_ON if on else report.PIPELINE_OFF
        if profile:
            name += ", under py-spy"
        stack = Stack(database=DATABASE, base_port=BASE_PORT, namespace=NAMESPACE)
        stack.extra_env = environment
        stack.start()
        for service, process in stack.processes.items():
            self.sampler.watch(service, process.pid)
        spies: list[subprocess.Popen[bytes]] = []
        try:
            await asyncio.to_thread(stack.wait_ready)
            token = await self._token()
            async with load.client(stack.url("intake"), token) as http:
                # Warm-up through the whole pipeline: every consumer group has its partitions.
                warm: dict[str, float] = {}
                task = self._task(f"{name}: warm-up", WARMUP)
                await load.closed_loop(
                    http,
                    self.bodies[:WARMUP],
                    Phase("warm-up", "closed"),
                    CONCURRENCY,
                    lambda: None,
                    warm,
                )
                await self.outcomes.wait(set(warm), self.progress, task)
                if profile:
                    spies = [_py_spy(p.pid, f"pipeline-{s}") for s, p in stack.processes.items()]
                await self._end_to_end(http, name)
                if open_model:
                    await self._open(http)
        finally:
            for spy in spies:
                self.run.profiles.append(_stop_py_spy(spy))
            for service in stack.processes:
                self.sampler.forget(service)
            await asyncio.to_thread(stack.stop)

    async def _end_to_end(self, http: httpx.AsyncClient, name: str) -> None:
        phase = Phase(name, "pipeline")
        sent: dict[str, float] = {}
        posting = self._task(f"{name}: posting", DOSSIERS)
        self._measure(name)
        began = time.time()
        await load.closed_loop(
            http,
            self.bodies[WARMUP:],
            Phase("posts", "closed"),
            CONCURRENCY,
            lambda: self.progress.advance(posting),
            sent,
        )
        draining = self._task(f"{name}: reaching the notifier", len(sent))
        await self.outcomes.wait(set(sent), self.progress, draining)
        self._rest()
        self._fill(phase, sent, began)
        reached = [self.outcomes.at[c] for c in sent if c in self.outcomes.at]
        phase.seconds = (max(reached) - began) if reached else 0.0
        self.run.phases.append(phase)

    async def _open(self, http: httpx.AsyncClient) -> None:
        phase = Phase(report.OPEN, "open")
        count = int(RATE * OPEN_SECONDS)
        sent: dict[str, float] = {}
        bodies = (self.bodies * (count // len(self.bodies) + 1))[:count]
        task = self._task(f"{phase.name} ({RATE:g}/s)", count)
        self._measure(phase.name)
        began = time.time()
        await load.open_model(http, bodies, phase, RATE, lambda: self.progress.advance(task), sent)
        draining = self._task(f"{phase.name}: reaching the notifier", len(sent))
        await self.outcomes.wait(set(sent), self.progress, draining)
        self._rest()
        posts = phase.completed
        self._fill(phase, sent, began)
        phase.note = f"{posts} POSTs answered 201 at {RATE:g}/s offered"
        self.run.phases.append(phase)

    async def backlog(self) -> None:
        """The backlog run, in its own database and namespace (deploy/bench/backlog.py)."""
        run = backlog.backlog_run(self.progress, self.sampler, TRACING_ON)
        result = await run.measure(backlog.BACKLOG)
        self.run.backlog = asdict(result)
        self.run.phases.append(backlog.phase_of(result))
        self.run.profiles.extend(p for p in (result.profile, result.deadline_profile) if p)

    def _fill(self, phase: Phase, sent: dict[str, float], began: float) -> None:
        reached = {c: self.outcomes.at[c] for c in sent if c in self.outcomes.at}
        phase.completed = len(reached)
        phase.end_to_end_ms = [(reached[c] - sent[c]) * 1000 for c in reached]
        phase.outcomes_at = sorted(at - began for at in reached.values())
        if len(reached) < len(sent):
            phase.failures["not at the notifier in time"] = len(sent) - len(reached)


def _start(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *arguments], cwd=ROOT, env=environment, stdin=subprocess.DEVNULL
    )


def _py_spy(pid: int, name: str) -> subprocess.Popen[bytes]:
    folder = ARTIFACTS / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "50",
            "--nonblocking",
            "--format",
            "speedscope",  # https://www.speedscope.app opens it; the report lists its top frames
            "--output",
            str(folder / f"{name}.speedscope.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_py_spy(spy: subprocess.Popen[bytes]) -> str:
    spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
    output = str(spy.args[-1])  # type: ignore[index]
    return os.path.relpath(output, ARTIFACTS)


async def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def _checkout(ref: str) -> Path:
    """The ref's code in a detached worktree under .cache/ (made once per commit)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = ROOT / ".cache" / "bench-compare" / commit
    if not folder.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(folder), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return folder


def _commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip()


async def main() -> None:
    console.print(
        f"bench: database {DATABASE}, topics {NAMESPACE}*, ports {BASE_PORT}-{BASELINE_PORT}"
        + (", quick mode" if QUICK else "")
    )
    console.print(f"bench: closed loops run by {wrk.executable()}")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # nothing of an earlier run in this report
    await clean_database(DATABASE)
    await kafka_access.grant(NAMESPACE, ALONE)
    topics = [space + str(topic) for topic in Topic for space in (NAMESPACE, ALONE)]
    topics.append(NAMESPACE + "bench.raw-baseline")
    await recreate_topics(ADMIN, (NAMESPACE, ALONE), topics, partitions=PARTITIONS, timeout=60)
    sampler = Sampler()
    outcomes = Outcomes()
    stop = asyncio.Event()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bench = Bench(progress, sampler, outcomes)
        bench.run.started = datetime.now(UTC).isoformat(timespec="seconds")
        bench.run.code = _commit()
        background = [
            asyncio.create_task(sampler.run(stop, bench.run.cpu.append)),
            asyncio.create_task(outcomes.run(stop)),
            asyncio.create_task(database_waits(sampler, bench.run.database_waits, stop)),
        ]
        try:
            compared = _checkout(COMPARE) if COMPARE else None
            for _ in range(ROUNDS):
                await bench.baseline_http()
                await bench.intake_alone(report.INTAKE_ON, TRACING_ON, profile=False)
                if compared is not None:
                    name = f"{report.INTAKE_ON}, at {COMPARE} ({compared.name[:9]})"
                    await bench.intake_alone(name, TRACING_ON, profile=False, root=compared)
                await bench.intake_alone(report.INTAKE_OFF, TRACING_OFF, profile=False)
            bench.run.phases = merge_rounds(bench.run.phases)
            await bench.baseline_kafka()
            if PROFILE:
                await bench.intake_alone(
                    f"{report.INTAKE_ON}, under py-spy", TRACING_ON, profile=True
                )
            await clean_database(DATABASE, ["intake"])  # the pipeline's desks start afresh
            await bench.pipeline(TRACING_ON, open_model=True, profile=False)
            await bench.pipeline(TRACING_OFF, open_model=False, profile=False)
            if PROFILE:
                await bench.pipeline(TRACING_ON, open_model=False, profile=True)
            if backlog.BACKLOG:
                await bench.backlog()
        finally:
            stop.set()
            await asyncio.gather(*background)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "results.json").write_text(json.dumps(asdict(bench.run), indent=1) + "\n")
    path = report.write(bench.run, ARTIFACTS)
    console.print(report.markdown(bench.run))
    console.print(f"wrote {path.relative_to(ROOT)} and its plots")
