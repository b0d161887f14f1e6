"""`python -m deploy.local.bench_scale`: the same batch of dossiers through one instance of each
service, then through three, both on the three-broker cluster (deploy/local/kafka-cluster.sh,
started if needed; PostgreSQL and Keycloak must run: `make infra`).

For each scale: a clean database and topics of its own (namespace bench., 12 partitions, 3
replicas), the instances started and every consumer group stable with all its members, then
DOSSIERS posted over HTTP at CONCURRENCY by a counter; done when intake has seen every
dossier's apology obligation (the last event of the chain). Prints dossiers/s end to end (first
POST to the last dossier through) and the CPU seconds each process used meanwhile, and the
machine's CPU use, which says whether the cores were the limit. Env: BENCH_DOSSIERS (2000),
BENCH_CONCURRENCY (16), BENCH_SCALES (1,3,1,3: alternated, so that a change in the
machine's other load falls on both), BENCH_PORT_BASE (8500). Writes
artifacts/bench-scale.json (with each table's and topic's bytes after the run, for
docs/capacity.md) and artifacts/bench-scale.png."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from deploy.local import kafka_access
from deploy.local.clean_slate import clean_database, recreate_topics
from deploy.local.demo_counters import random_dossier
from deploy.local.identity import counter_of, password_token
from deploy.local.stack import ROOT, SERVICES, Stack, database_url, service_of
from shared.catalog import load_catalog
from shared.events import Topic, dead_letter_topic
from shared.settings import DEFAULT_CATALOG

DOSSIERS = int(os.environ.get("BENCH_DOSSIERS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
SCALES = [int(s) for s in os.environ.get("BENCH_SCALES", "1,3,1,3").split(",")]
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "8500"))
NAMESPACE = "bench."
DATABASE = "onestop_bench_scale"
GROUPS = ("routing", "deadline", "notifier", "intake-projection")
DESK = "000.00.00.H29"
CLUSTER_SCRIPT = ROOT / "deploy" / "local" / "kafka-cluster.sh"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    scale: int
    posted: int = 0
    post_seconds: float = 0.0
    end_to_end_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0  # share of all cores' time busy (any process) during the run
    machine_cpu_seconds: float = 0.0  # CPU seconds of every process of the machine meanwhile
    load_before: float = 0.0  # 1-minute load average as the posting began, and as it ended
    load_after: float = 0.0
    table_bytes: dict[str, int] = field(default_factory=dict)  # per table, after the run
    topic_bytes: dict[str, int] = field(default_factory=dict)  # per topic, one replica's log

    @property
    def per_instance(self) -> float:
        """Dossiers/s per instance of each consumer service (the capacity plan's unit)."""
        return self.dossiers_per_second / self.scale

    @property
    def other_cpu_seconds(self) -> float:
        """CPU seconds the rest of the machine (other work than this bench) used meanwhile."""
        return max(self.machine_cpu_seconds - sum(self.cpu_seconds.values()), 0.0)

    @property
    def dossiers_per_second(self) -> float:
        return self.posted / self.end_to_end_seconds if self.end_to_end_seconds else 0.0


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def broker_pids() -> dict[str, int]:
    pids = {}
    for n in range(1, kafka_access.CLUSTER_NODES + 1):
        path = ROOT / ".run" / "kafka-cluster" / f"node{n}" / "kafka.pid"
        if path.exists():
            pids[f"kafka-{n}"] = int(path.read_text())
    return pids


async def group_states() -> dict[str, tuple[str, int]]:
    """Each bench group's state and member count, from Kafka's own consumer-groups tool (Java):
    aiokafka's admin client asks with DescribeGroups v0, which Kafka 4 no longer serves (the
    broker closes the connection), so it never saw a group at all."""
    command = [
        "java", "-Xmx128m", "-cp", str(ROOT / ".cache" / "kafka" / "libs" / "*"),
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server", kafka_access.CLUSTER_BOOTSTRAP,
        "--command-config", str(ROOT / ".run" / "kafka-cluster" / "admin.properties"),
        "--describe", "--state",
        *(option for g in GROUPS for option in ("--group", NAMESPACE + g)),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    output, _ = await process.communicate()
    return parse_group_states(output.decode(), [NAMESPACE + g for g in GROUPS])


def parse_group_states(output: str, groups: list[str]) -> dict[str, tuple[str, int]]:
    """The consumer-groups tool's `--describe --state` table: GROUP, COORDINATOR (ID),
    ASSIGNMENT-STRATEGY, STATE, #MEMBERS (the coordinator's column holds a space)."""
    states = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 5 and words[0] in groups and words[-1].isdigit():
            states[words[0]] = (words[-2], int(words[-1]))
    return states


def settled(states: dict[str, tuple[str, int]], scale: int) -> bool:
    return len(states) == len(GROUPS) and all(
        state == "Stable" and members >= scale for state, members in states.values()
    )


async def table_bytes(pool: asyncpg.Pool) -> dict[str, int]:
    """Every service table's size on disk with its indexes and TOAST, `schema.table`."""
    rows = await pool.fetch(
        "SELECT n.nspname || '.' || c.relname AS name, pg_total_relation_size(c.oid) AS bytes"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname = ANY($1::text[])",
        list(SERVICES),
    )
    return {row["name"]: int(row["bytes"]) for row in rows}


def topic_bytes() -> dict[str, int]:
    """Each bench topic's log bytes on node 1 (every node holds a replica of every partition)."""
    sizes: dict[str, int] = {}
    for directory in (ROOT / ".run" / "kafka-cluster" / "node1" / "data").glob(NAMESPACE + "*"):
        topic = directory.name.rsplit("-", 1)[0]
        used = sum(f.stat().st_size for f in directory.glob("*.log"))
        sizes[topic] = sizes.get(topic, 0) + used
    return sizes


async def through(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM intake.dossiers WHERE apology_signer IS NOT NULL")
    )


async def post_all(stack: Stack, result: Result) -> None:
    # The same dossiers at every scale: one procedure (1.004227, land registration changes),
    # applicants from a seeded generator.
    rng = random.Random(11)
    [procedure] = [p for p in load_catalog(DEFAULT_CATALOG).procedures if p.code == "1.004227"]
    bodies = iter([random_dossier(rng, procedure) for _ in range(DOSSIERS)])
    desk = {"Authorization": f"Bearer {await password_token(counter_of(DESK))}"}

    async def counter(client: httpx.AsyncClient) -> None:
        for body in bodies:
            response = await client.post("/v1/dossiers", json=body)
            response.raise_for_status()
            result.posted += 1

    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=60, headers=desk) as client:
        await asyncio.gather(*(counter(client) for _ in range(CONCURRENCY)))


async def run(scale: int) -> Result:
    result = Result(scale)
    await clean_database(DATABASE)
    admin = kafka_access.connection(bootstrap=kafka_access.CLUSTER_BOOTSTRAP)
    await recreate_topics(
        admin,
        (NAMESPACE,),
        [NAMESPACE + t for t in (*Topic, *map(dead_letter_topic, GROUPS))],
        partitions=kafka_access.CLUSTER_PARTITIONS,
        replication_factor=kafka_access.CLUSTER_REPLICATION_FACTOR,
        timeout=60,
    )
    stack = Stack(
        database=DATABASE,
        base_port=PORT_BASE,
        namespace=NAMESPACE,
        scale=scale,
        kafka_bootstrap=kafka_access.CLUSTER_BOOTSTRAP,
        # No spans (as with tracing sampled off): what scales is the services' own work.
        extra_env={**kafka_access.cluster_environment(), "OTEL_TRACES_EXPORTER": "none"},
    )
    stack.start()
    pool = await asyncpg.create_pool(database_url(DATABASE), min_size=1, max_size=2)
    try:
        stack.wait_ready(timeout=300)
        deadline = time.monotonic() + 180
        shown: dict[str, tuple[str, int]] = {}
        while not settled(states := await group_states(), scale):
            if states != shown:
                print(f"[bench-scale] groups: {states}", flush=True)
                shown = states
            if time.monotonic() > deadline:
                raise TimeoutError(f"the consumer groups did not settle with {scale} members")
            await asyncio.sleep(0.5)
        print(f"[bench-scale] groups settled: {states}", flush=True)
        pids = {name: p.pid for name, p in stack.processes.items()} | broker_pids()
        cpu_before = {name: process_cpu(pid) for name, pid in pids.items()}
        busy_before, total_before = machine_cpu()
        result.load_before = os.getloadavg()[0]
        started = time.monotonic()
        await post_all(stack, result)
        result.post_seconds = time.monotonic() - started
        while True:  # polled: the end is seen within 0.25 s
            if await through(pool) >= DOSSIERS:
                break
            await asyncio.sleep(0.25)
        result.end_to_end_seconds = time.monotonic() - started
        busy_after, total_after = machine_cpu()
        result.load_after = os.getloadavg()[0]
        result.machine_busy = (busy_after - busy_before) / (total_after - total_before)
        result.machine_cpu_seconds = (busy_after - busy_before) / TICKS
        for name, pid in pids.items():
            label = service_of(name) if name in stack.processes else name
            used = process_cpu(pid) - cpu_before[name]
            result.cpu_seconds[label] = result.cpu_seconds.get(label, 0.0) + used
        result.table_bytes = await table_bytes(pool)
        result.topic_bytes = topic_bytes()
    finally:
        await pool.close()
        stack.stop()
    return result


def _cpu(result: Result, name: str) -> str:
    return f"{result.cpu_seconds.get(name, 0.0):.1f}"


def report(results: list[Result]) -> None:
    print(f"\n{DOSSIERS} dossiers, {CONCURRENCY} concurrent posts, on the three-broker cluster")
    print(f"{'instances of each service':<28}" + "".join(f"{r.scale:>12}" for r in results))
    rows: list[tuple[str, Callable[[Result], str]]] = [
        ("posting (s)", lambda r: f"{r.post_seconds:.1f}"),
        ("end to end (s)", lambda r: f"{r.end_to_end_seconds:.1f}"),
        ("drained after posting (s)", lambda r: f"{r.end_to_end_seconds - r.post_seconds:.1f}"),
        ("dossiers/s end to end", lambda r: f"{r.dossiers_per_second:.1f}"),
        ("dossiers/s per instance", lambda r: f"{r.per_instance:.2f}"),
        ("load average (1 min)", lambda r: f"{r.load_before:.1f}-{r.load_after:.1f}"),
        ("machine CPU busy", lambda r: f"{r.machine_busy:.0%}"),
        ("CPU s: whole machine", lambda r: f"{r.machine_cpu_seconds:.1f}"),
        ("CPU s: other work", lambda r: f"{r.other_cpu_seconds:.1f}"),
    ]
    names = [*SERVICES, *sorted(broker_pids() or {f"kafka-{n}": 0 for n in (1, 2, 3)})]
    for name in names:
        rows.append((f"CPU s: {name}", functools.partial(_cpu, name=name)))
    for label, value in rows:
        print(f"{label:<28}" + "".join(f"{value(r):>12}" for r in results))
    out = ROOT / "artifacts" / "bench-scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "dossiers": DOSSIERS,
                "concurrency": CONCURRENCY,
                "cores": os.cpu_count(),
                "runs": [
                    r.__dict__
                    | {
                        "dossiers_per_second": r.dossiers_per_second,
                        "per_instance": r.per_instance,
                        "other_cpu_seconds": r.other_cpu_seconds,
                    }
                    for r in results
                ],
            },
            indent=2,
        )
    )
    plot(results, out.with_suffix(".png"))
    print(f"(also in {out.relative_to(ROOT)} and {out.with_suffix('.png').relative_to(ROOT)})")


def plot(results: list[Result], path: Path) -> None:
    """Dossiers/s of each run, and where the CPU seconds went, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    labels = [f"run {i + 1}\n{r.scale} inst." for i, r in enumerate(results)]
    figure, (rate, cpu) = plt.subplots(1, 2, figsize=(9, 3.6))
    rate.bar(labels, [r.dossiers_per_second for r in results], color="#4c72b0")
    rate.set_ylabel("dossiers/s end to end")
    rate.set_title(f"{DOSSIERS} dossiers, three brokers")
    bottom = [0.0] * len(results)
    for name in [*SERVICES, "kafka", "other work"]:
        values = [
            r.other_cpu_seconds
            if name == "other work"
            else sum(v for k, v in r.cpu_seconds.items() if k.split("-")[0] == name)
            for r in results
        ]
        cpu.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    cpu.set_ylabel("CPU seconds during the run")
    cpu.set_title(f"{os.cpu_count()} cores, shared")
    cpu.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


async def bench() -> None:
    await kafka_access.grant(NAMESPACE, bootstrap=kafka_access.CLUSTER_BOOTSTRAP)
    results = []
    for scale in SCALES:
        print(f"[bench-scale] {scale} instance(s) of each service...", flush=True)
        results.append(await run(scale))
        report(results)  # after every run: a long series stopped early keeps what it measured


if __name__ == "__main__":
    subprocess.run([str(CLUSTER_SCRIPT), "start"], check=True)
    asyncio.run(bench())
