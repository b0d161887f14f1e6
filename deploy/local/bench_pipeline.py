"""`make bench`, second part: how far the consumer groups fall behind while the whole pipeline
runs, and how long they take to catch up.

The four services run as processes (a Stack on the benchmark's database and ports, topics
under the benchmark's namespace + "pipeline."). Counters post a batch of realistic dossiers at
a fixed concurrency while every service's /metrics is scraped every half second; the scrapes
go on after the load until every group is back at 0. Each dossier's end is the notifier's
ApologyObligationRecorded (what the notifier records for every dossier once its clock has
started), read from the notifier's topic with a plain consumer: its record time is when the
last stage of the pipeline published it. Figures go to artifacts/bench-pipeline.json, lag
over time per group to artifacts/bench-pipeline.png."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from PIL import Image, ImageDraw, ImageFont
from prometheus_client.parser import text_string_to_metric_families
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local import kafka_access
from deploy.local.bench_tracing import (
    ARTIFACTS,
    BASE_PORT,
    DATABASE,
    NAMESPACE,
)
from deploy.local.clean_slate import clean_database
from deploy.local.demo_counters import console, random_dossier
from deploy.local.identity import counter_of, password_token
from deploy.local.stack import SERVICES, Stack
from shared.catalog import load_catalog
from shared.events import ApologyObligationRecorded, Topic
from shared.messaging.topics import ensure_topics
from shared.settings import DEFAULT_CATALOG

DESK = "000.00.00.H29"  # the city centre's desk receives the load

PIPELINE_NAMESPACE = NAMESPACE.removesuffix(".") + "-pipeline."  # not the tracing bench's topics
# One group per service, and the topics it reads (services/*/main.py).
GROUP_TOPICS = {
    "intake-projection": (Topic.ROUTING, Topic.DEADLINE, Topic.NOTIFIER),
    "routing": (Topic.INTAKE,),
    "deadline": (Topic.INTAKE, Topic.ROUTING, Topic.NOTIFIER),
    "notifier": (Topic.DEADLINE, Topic.INTAKE),
}
GROUPS = tuple(GROUP_TOPICS)
COUNT = int(os.environ.get("ONESTOP_BENCH_DOSSIERS", "1500"))
CONCURRENCY = 16
SCRAPE_INTERVAL = 0.5  # seconds
POST_TIMEOUT = 300.0  # seconds for the whole batch of posts
DRAIN_TIMEOUT = 300.0  # seconds after the load for every group to be back at 0
PARTITIONS = 3  # the services' default (KAFKA_PARTITIONS)
ADMIN = kafka_access.connection()  # the bench's own clients; the services run as themselves
COLOURS = {
    "intake-projection": "#d9822b",
    "routing": "#2b7bd9",
    "deadline": "#3a9d4a",
    "notifier": "#9b4fc2",
}


@dataclass
class Scrape:
    at: float  # seconds since the first POST (negative before it)
    lag: dict[str, int]  # group -> onestop_consumer_lag summed over its partitions
    outbox: dict[str, int]  # service -> outbox rows not yet published
    # group -> end offset - committed offset, summed, as Kafka's tools count it: the gauge's
    # check, taken at the same moment (one more while a message is being handled)
    committed_lag: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    posted: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)
    first_post_epoch: float = 0.0
    load_seconds: float = 0.0  # first POST to the last answer
    scrapes: list[Scrape] = field(default_factory=list)
    outcomes: dict[str, float] = field(default_factory=dict)  # dossier code -> record epoch

    def since_start(self, epoch: float) -> float:
        return epoch - self.first_post_epoch


async def reset_state() -> None:
    """Every run starts clean: the services' schemas dropped and provisioned again, empty
    (they migrate at start), the pipeline's topics deleted, with their consumer groups'
    offsets, and created empty."""
    await kafka_access.grant(PIPELINE_NAMESPACE)
    await clean_database(DATABASE)
    admin = AIOKafkaAdminClient(**ADMIN.client_options(), request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), 20)
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(PIPELINE_NAMESPACE)]
        if ours:
            await admin.delete_topics(ours)
            deadline = time.monotonic() + 60
            while set(ours) & set(await admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError("Kafka did not delete the benchmark's topics in 60 s")
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    topics = [PIPELINE_NAMESPACE + str(topic) for topic in Topic]
    await ensure_topics(ADMIN, topics, partitions=PARTITIONS, replication_factor=1)


def parse_metrics(text: str) -> tuple[dict[str, int], int]:
    """This service's consumer lag per group (summed over partitions), and its outbox
    backlog."""
    lag: dict[str, int] = defaultdict(int)
    backlog = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "onestop_consumer_lag":
                group = sample.labels["messaging_consumer_group_name"]
                lag[group.removeprefix(PIPELINE_NAMESPACE)] += int(sample.value)
            elif sample.name == "onestop_outbox_backlog":
                backlog += int(sample.value)
    return dict(lag), backlog


async def committed_lag(admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer) -> dict[str, int]:
    """Per group, what the broker says it has not consumed yet."""
    partitions = [
        TopicPartition(PIPELINE_NAMESPACE + str(topic), number)
        for topic in Topic
        for number in range(PARTITIONS)
    ]
    end = await ends.end_offsets(partitions)
    lag: dict[str, int] = {}
    for group, topics in GROUP_TOPICS.items():
        committed = await admin.list_consumer_group_offsets(PIPELINE_NAMESPACE + group)
        read = {PIPELINE_NAMESPACE + str(topic) for topic in topics}
        lag[group] = sum(
            end[partition] - (committed[partition].offset if partition in committed else 0)
            for partition in partitions
            if partition.topic in read
        )
    return lag


async def scrape_forever(stack: Stack, run: Run, stop: asyncio.Event) -> None:
    admin = AIOKafkaAdminClient(**ADMIN.client_options(), request_timeout_ms=5_000)
    ends = AIOKafkaConsumer(**ADMIN.client_options(), group_id=None)
    await admin.start()
    await ends.start()
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            await scrape_until(stop, stack, run, client, admin, ends)
        finally:
            await ends.stop()
            await admin.close()


async def scrape_until(
    stop: asyncio.Event,
    stack: Stack,
    run: Run,
    client: httpx.AsyncClient,
    admin: AIOKafkaAdminClient,
    ends: AIOKafkaConsumer,
) -> None:
    while not stop.is_set():
        started = time.monotonic()
        lag: dict[str, int] = {}
        outbox: dict[str, int] = {}
        for service in SERVICES:
            try:
                response = await client.get(f"{stack.url(service)}/metrics")
            except httpx.HTTPError:
                continue  # a missing figure is not a zero
            service_lag, outbox[service] = parse_metrics(response.text)
            lag.update(service_lag)
        at = time.time() - run.first_post_epoch if run.first_post_epoch else -1.0
        run.scrapes.append(Scrape(at, lag, outbox, await committed_lag(admin, ends)))
        await asyncio.sleep(max(0.0, SCRAPE_INTERVAL - (time.monotonic() - started)))


async def watch_outcomes(run: Run, stop: asyncio.Event) -> None:
    """Record when each dossier's ApologyObligationRecorded was published (its record time)."""
    reader = AIOKafkaConsumer(
        PIPELINE_NAMESPACE + str(Topic.NOTIFIER),
        **ADMIN.client_options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        while not stop.is_set():
            batches = await reader.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    headers = {name: value.decode() for name, value in record.headers}
                    if headers.get("ce_type") == ApologyObligationRecorded.TYPE:
                        run.outcomes.setdefault(headers["ce_subject"], record.timestamp / 1000)
    finally:
        await reader.stop()


async def wait_groups_assigned(run: Run, timeout: float = 90.0) -> None:
    """Post only once every group has its partitions: a rebalance is not lag."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.scrapes and set(GROUPS) <= set(run.scrapes[-1].lag):
            return
        await asyncio.sleep(SCRAPE_INTERVAL)
    seen = sorted(run.scrapes[-1].lag) if run.scrapes else []
    raise TimeoutError(f"consumer groups not all assigned after {timeout}s: {seen}")


async def post_all(stack: Stack, bodies: list[dict[str, Any]], run: Run, advance: Any) -> None:
    pending = iter(bodies)
    deadline = time.monotonic() + POST_TIMEOUT

    async def counter(client: httpx.AsyncClient) -> None:
        for body in pending:
            if time.monotonic() > deadline:
                return
            response = await client.post("/v1/dossiers", json=body)
            if response.status_code == 201:
                run.posted += 1
                run.codes.append(response.json()["dossier_code"])
            else:
                key = str(response.status_code)
                run.failures[key] = run.failures.get(key, 0) + 1
            advance()

    desk = {"Authorization": f"Bearer {await password_token(counter_of(DESK))}"}
    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=30, headers=desk) as client:
        run.first_post_epoch = time.time()
        await asyncio.gather(*(counter(client) for _ in range(CONCURRENCY)))
        run.load_seconds = time.time() - run.first_post_epoch


def drained(run: Run) -> bool:
    """Every dossier reached the notifier, and every group is at 0 (no outbox rows left)."""
    if not run.scrapes or not set(run.codes) <= set(run.outcomes):
        return False
    last = run.scrapes[-1]
    return (
        set(GROUPS) <= set(last.lag)
        and not any(last.lag.values())
        and not any(last.committed_lag.values())
        and len(last.outbox) == len(SERVICES)
        and not any(last.outbox.values())
    )


def lag_line(scrape: Scrape | None) -> str:
    if scrape is None:
        return ""
    return "lag " + " ".join(f"{group}={scrape.lag.get(group, '?')}" for group in GROUPS)


async def run_pipeline(run: Run, bodies: list[dict[str, Any]]) -> None:
    stack = Stack(database=DATABASE, base_port=BASE_PORT, namespace=PIPELINE_NAMESPACE)
    assert stack.url("intake").startswith("http://127.0.0.1:")
    stop = asyncio.Event()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[lag]}"),
    )
    stack.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(stack.wait_ready)
        tasks = [
            asyncio.create_task(scrape_forever(stack, run, stop)),
            asyncio.create_task(watch_outcomes(run, stop)),
        ]
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("consumer groups joining", total=None, lag="")
            await wait_groups_assigned(run)
            progress.update(task, description="posting", total=len(bodies))
            posting = asyncio.create_task(
                post_all(stack, bodies, run, lambda: progress.advance(task))
            )
            while not posting.done():
                await asyncio.wait({posting}, timeout=SCRAPE_INTERVAL)
                latest = run.scrapes[-1] if run.scrapes else None
                progress.update(task, description="posting", lag=lag_line(latest))
            await posting
            drain = progress.add_task("draining", total=len(run.codes), lag="")
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while not drained(run) and time.monotonic() < deadline:
                await asyncio.sleep(SCRAPE_INTERVAL)
                latest = run.scrapes[-1] if run.scrapes else None
                done = len(set(run.codes) & set(run.outcomes))
                progress.update(drain, completed=done, lag=lag_line(latest))
            await asyncio.sleep(2)  # a few scrapes at rest: 0 must stay 0
    finally:
        stop.set()
        for background in tasks:
            await background
        await asyncio.to_thread(stack.stop)


def series_figures(series: list[tuple[float, int]], load_end: float) -> dict[str, Any]:
    """The peak of a lag series, and when after the load it was at 0 for good."""
    peak_at, peak = max(series, key=lambda point: point[1], default=(0.0, 0))
    behind_after_load = [at for at, lag in series if at >= load_end and lag > 0]
    zero_after = [at for at, lag in series if behind_after_load and at > behind_after_load[-1]]
    drained_at = zero_after[0] if zero_after else (None if behind_after_load else load_end)
    return {
        "max_lag": peak,
        "max_lag_at_seconds": round(peak_at, 1),
        "drained_seconds_after_load": (
            None if drained_at is None else round(max(drained_at - load_end, 0.0), 1)
        ),
        "final_lag": series[-1][1] if series else None,
    }


def summarise(run: Run) -> dict[str, Any]:
    load_end = run.load_seconds
    groups: dict[str, Any] = {}
    for group in GROUPS:
        gauge = series_figures(
            [(s.at, s.lag[group]) for s in run.scrapes if s.at >= 0 and group in s.lag], load_end
        )
        broker = series_figures(
            [(s.at, s.committed_lag[group]) for s in run.scrapes if s.at >= 0], load_end
        )
        groups[group] = {**gauge, "committed": broker}
    reached = [run.outcomes[code] for code in run.codes if code in run.outcomes]
    last_outcome = run.since_start(max(reached)) if reached else None
    return {
        "posted": run.posted,
        "failures": run.failures,
        "load_seconds": round(run.load_seconds, 2),
        "posts_per_second": run.posted / run.load_seconds if run.load_seconds else 0.0,
        "dossiers_reaching_notifier": len(reached),
        "last_notifier_outcome_seconds": None if last_outcome is None else round(last_outcome, 2),
        "end_to_end_dossiers_per_second": len(reached) / last_outcome if last_outcome else 0.0,
        "groups": groups,
        "all_drained_seconds_after_load": (
            None
            if any(g["drained_seconds_after_load"] is None for g in groups.values())
            else max(g["drained_seconds_after_load"] for g in groups.values())
        ),
    }


def draw_chart(run: Run, summary: dict[str, Any]) -> None:
    """Lag over time, one line per group; the load's span shaded."""
    width, height, left, right, top, bottom = 900, 480, 70, 880, 50, 400
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    points = [s for s in run.scrapes if s.at >= 0]
    span = max((s.at for s in points), default=1.0) or 1.0
    peak = max((max([*s.lag.values(), *s.committed_lag.values(), 0]) for s in points), default=0)
    peak = peak or 1

    def xy(at: float, lag: float) -> tuple[float, float]:
        return left + at / span * (right - left), bottom - lag / (peak * 1.1) * (bottom - top)

    draw.rectangle((*xy(0, peak * 1.1), *xy(run.load_seconds, 0)), "#eeeeee")
    title = (
        f"consumer lag (messages): {run.posted} dossiers x {CONCURRENCY}, the load shaded "
        f"({run.load_seconds:.0f} s); thick: the gauge, thin: the broker's end - committed"
    )
    draw.text((left, 15), title, "black", font)
    draw.line((left, bottom, right, bottom), "black", 2)
    draw.line((left, top, left, bottom), "black", 2)
    for tick in range(0, 5):
        lag = peak * 1.1 * tick / 4
        draw.text((8, xy(0, lag)[1] - 7), f"{lag:.0f}", "black", font)
    step = max(1, round(span / 8))
    for at in range(0, int(span) + 1, step):
        draw.text((xy(at, 0)[0] - 6, bottom + 6), f"{at}s", "black", font)
    for i, group in enumerate(GROUPS):
        line = [xy(s.at, s.lag[group]) for s in points if group in s.lag]
        if len(line) > 1:
            draw.line(line, COLOURS[group], 3)
        broker = [xy(s.at, s.committed_lag[group]) for s in points if group in s.committed_lag]
        if len(broker) > 1:
            draw.line(broker, COLOURS[group], 1)
        figures = summary["groups"][group]
        drained_after = figures["drained_seconds_after_load"]
        label = f"{group}: max {figures['max_lag']}, at 0 again {drained_after} s after the load"
        x = left + (i % 2) * 400
        y = bottom + 30 + (i // 2) * 20
        draw.rectangle((x, y + 3, x + 12, y + 13), COLOURS[group])
        draw.text((x + 18, y), label, "black", font)
    image.save(ARTIFACTS / "bench-pipeline.png")


def print_report(run: Run, summary: dict[str, Any]) -> None:
    table = Table(
        title=f"Consumer lag under load: {run.posted} dossiers posted at concurrency "
        f"{CONCURRENCY} in {run.load_seconds:.1f} s ({summary['posts_per_second']:.1f}/s)"
    )
    columns = (
        "consumer group",
        "max lag (messages)",
        "at",
        "at 0 again after the load",
        "broker's max (end - committed)",
        "broker's at 0 again",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "consumer group" else "right")

    def seconds(value: float | None) -> str:
        return "not drained" if value is None else f"{value:.1f} s"

    for group in GROUPS:
        g = summary["groups"][group]
        table.add_row(
            group,
            str(g["max_lag"]),
            f"{g['max_lag_at_seconds']:.1f} s",
            seconds(g["drained_seconds_after_load"]),
            str(g["committed"]["max_lag"]),
            seconds(g["committed"]["drained_seconds_after_load"]),
        )
    console.print(table)
    console.print(
        "max lag: onestop_consumer_lag from each service's /metrics, summed over the group's "
        "partitions; the broker's columns check it at the same moments"
    )
    failed = f", failed posts {run.failures}" if run.failures else ""
    console.print(
        f"end to end: {summary['dossiers_reaching_notifier']}/{run.posted} dossiers reached the "
        f"notifier, the last {summary['last_notifier_outcome_seconds']} s after the first POST: "
        f"{summary['end_to_end_dossiers_per_second']:.1f} dossiers/s{failed}"
    )
    everything = summary["all_drained_seconds_after_load"]
    console.print(
        "every group back at 0 "
        + ("never (timeout)" if everything is None else f"{everything:.1f} s after the load")
        + f"; {len(run.scrapes)} scrapes every {SCRAPE_INTERVAL} s"
    )


async def main() -> None:
    rng = random.Random(2026)
    procedures = load_catalog(DEFAULT_CATALOG).procedures
    bodies = [random_dossier(rng, rng.choice(procedures)) for _ in range(COUNT)]
    console.print(
        f"pipeline bench: database {DATABASE}, topics {PIPELINE_NAMESPACE}*, "
        f"ports {BASE_PORT}-{BASE_PORT + len(SERVICES) - 1}"
    )
    await reset_state()
    run = Run()
    await run_pipeline(run, bodies)
    summary = summarise(run)
    print_report(run, summary)
    ARTIFACTS.mkdir(exist_ok=True)
    figures = {
        "count": COUNT,
        "concurrency": CONCURRENCY,
        "scrape_interval_seconds": SCRAPE_INTERVAL,
        "summary": summary,
        "scrapes": [
            {
                "at": round(s.at, 2),
                "lag": s.lag,
                "committed_lag": s.committed_lag,
                "outbox": s.outbox,
            }
            for s in run.scrapes
        ],
    }
    (ARTIFACTS / "bench-pipeline.json").write_text(json.dumps(figures, indent=2) + "\n")
    draw_chart(run, summary)
    console.print("wrote artifacts/bench-pipeline.json and artifacts/bench-pipeline.png")


if __name__ == "__main__":
    asyncio.run(main())
