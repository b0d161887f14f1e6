"""`make bench`: what tracing costs the intake API, measured in one run.

Tracing on (the local default: spans to Zipkin) and tracing off (OTEL_SDK_DISABLED=true, which
the SDK's TracerProvider honours by handing out no-op tracers; its MeterProvider honours it
too, so "off" also means no OpenTelemetry metrics) alternate for a few rounds, because the
machine is noisy. Each round starts only the intake service, warms it up, posts a fixed batch
of realistic dossiers at a fixed concurrency, waits for the outbox to drain, and stops it.
Figures go to artifacts/bench-tracing.json and a bar chart to artifacts/bench-tracing.png."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import httpx
from PIL import Image, ImageDraw, ImageFont
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local import kafka_access
from deploy.local.clean_slate import clean_database
from deploy.local.demo_counters import console, random_dossier
from deploy.local.identity import counter_of, password_token
from deploy.local.stack import LOCAL_TELEMETRY, ROOT, ZIPKIN_URL, Stack, database_url
from shared.catalog import load_catalog
from shared.settings import DEFAULT_CATALOG

DESK = "000.00.00.H29"  # the city centre's desk receives the load

# A second benchmark beside this one needs its own database, topics and ports.
DATABASE = os.environ.get("ONESTOP_BENCH_DATABASE", "onestop_bench")
BASE_PORT = int(os.environ.get("ONESTOP_BENCH_PORT", "18500"))
NAMESPACE = os.environ.get("ONESTOP_BENCH_NAMESPACE", "bench.")  # `make run` keeps its own
ROUNDS = 3  # per configuration
WARMUP = 100
COUNT = 1500
CONCURRENCY = 16
ROUND_TIMEOUT = 300.0  # seconds for the measured requests of one round
DRAIN_TIMEOUT = 120.0  # seconds for the outbox to empty before the service is stopped
ARTIFACTS = ROOT / "artifacts"
CONFIGS: dict[str, dict[str, str]] = {
    "tracing on": {**LOCAL_TELEMETRY, "OTEL_SDK_DISABLED": "false"},
    "tracing off": {"OTEL_SDK_DISABLED": "true"},
}


@dataclass
class Round:
    config: str
    number: int
    seconds: float = 0.0
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    outbox_drain_seconds: float = 0.0
    window_ms: tuple[int, int] = (0, 0)  # epoch milliseconds, to find its spans in Zipkin
    spans_in_zipkin: bool = False
    code: str = ""  # fingerprint of the code the service ran
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[p - 1]


def code_fingerprint() -> str:
    """A hash of the code intake runs, to notice edits made while the benchmark runs."""
    digest = hashlib.sha256()
    for folder in (ROOT / "services" / "intake", ROOT / "shared"):
        for path in sorted(folder.rglob("*")):
            if path.suffix in {".py", ".sql", ".toml"}:
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def reset_schema() -> None:
    await clean_database(DATABASE, ["intake"])  # provisioned empty: the service migrates it


async def wait_outbox_drained() -> float:
    started = time.monotonic()
    conn = await asyncpg.connect(database_url(DATABASE))
    try:
        query = "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL"
        while time.monotonic() - started < DRAIN_TIMEOUT:
            if not await conn.fetchval(query):
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.monotonic() - started


async def post(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], result: Round, advance: Any
) -> None:
    """Post every body once, CONCURRENCY at a time, stopping at ROUND_TIMEOUT."""
    pending = iter(bodies)
    deadline = time.monotonic() + ROUND_TIMEOUT

    async def counter() -> None:
        for body in pending:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            response = await client.post("/v1/dossiers", json=body)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code == 201:
                result.ok += 1
            else:
                key = str(response.status_code)
                result.failures[key] = result.failures.get(key, 0) + 1
            advance()

    await asyncio.gather(*(counter() for _ in range(CONCURRENCY)))


async def run_round(
    result: Round, warmup: list[dict[str, Any]], bodies: list[dict[str, Any]], progress: Progress
) -> None:
    stack = Stack(
        database=DATABASE,
        base_port=BASE_PORT,
        namespace=NAMESPACE,
        extra_env=CONFIGS[result.config],
    )
    url = stack.url("intake")
    assert url.startswith("http://127.0.0.1:"), url
    task = progress.add_task(f"round {result.number} {result.config:<11} starting", total=COUNT)
    result.code = code_fingerprint()
    stack.start(["intake"])
    try:
        await asyncio.to_thread(stack.wait_ready, ["intake"])
        desk = {"Authorization": f"Bearer {await password_token(counter_of(DESK))}"}
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=desk) as client:
            progress.update(task, description=f"round {result.number} {result.config:<11} warm-up")
            await post(client, warmup, Round(result.config, 0), lambda: None)
            progress.update(task, description=f"round {result.number} {result.config:<11}")
            started, epoch_ms = time.perf_counter(), int(time.time() * 1000)
            await post(client, bodies, result, lambda: progress.advance(task))
            result.seconds = time.perf_counter() - started
            result.window_ms = (epoch_ms, int(time.time() * 1000))
        result.outbox_drain_seconds = await wait_outbox_drained()
    finally:
        await asyncio.to_thread(stack.stop)


def summarise(rounds: list[Round]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for config in CONFIGS:
        mine = [r for r in rounds if r.config == config]
        rates = [r.rps for r in mine]
        summary[config] = {
            "rounds": len(mine),
            "median_rps": statistics.median(rates),
            "min_rps": min(rates),
            "max_rps": max(rates),
            "p50_ms": statistics.median(r.percentile(50) for r in mine),
            "p95_ms": statistics.median(r.percentile(95) for r in mine),
        }
    on, off = summary["tracing on"]["median_rps"], summary["tracing off"]["median_rps"]
    summary["overhead_percent"] = (off - on) / off * 100
    return summary


def has_spans_in_zipkin(result: Round) -> bool:
    """Whether Zipkin holds any intake trace from this round's port and time window."""
    start, end = result.window_ms
    query: dict[str, str | int] = {
        "serviceName": "intake",
        "annotationQuery": f"http.host=127.0.0.1:{BASE_PORT}",
        "endTs": end,
        "lookback": end - start,
        "limit": 1,
    }
    try:
        return bool(httpx.get(f"{ZIPKIN_URL}/api/v2/traces", params=query, timeout=10).json())
    except httpx.HTTPError:
        return False


def draw_chart(summary: dict[str, Any], rounds: list[Round]) -> None:
    """Median req/s per configuration as bars, the min-max as a whisker, each round a dot."""
    width, height, top, bottom = 640, 440, 50, 360
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    scale = (bottom - top) / (max(r.rps for r in rounds) * 1.15)
    draw.text(
        (20, 12), f"intake req/s: tracing on vs off ({COUNT} posts x {CONCURRENCY})", "black", font
    )
    draw.line((60, bottom, width - 40, bottom), "black", 2)
    for i, (config, colour) in enumerate(zip(CONFIGS, ("#d9822b", "#2b7bd9"), strict=True)):
        s, x = summary[config], 140 + i * 260
        draw.rectangle((x, bottom - s["median_rps"] * scale, x + 120, bottom), colour)
        draw.line(
            (x + 60, bottom - s["max_rps"] * scale, x + 60, bottom - s["min_rps"] * scale),
            "black",
            2,
        )
        for r in (r for r in rounds if r.config == config):
            y = bottom - r.rps * scale
            draw.ellipse((x + 90, y - 4, x + 98, y + 4), "black")
        label = f"{config}: {s['median_rps']:.0f}/s"
        draw.text(
            (x, bottom - s["median_rps"] * scale - 24), f"{s['median_rps']:.0f}", "black", font
        )
        draw.text((x - 10, bottom + 12), label, "black", font)
    overhead = f"tracing on costs {summary['overhead_percent']:.1f}% of throughput (medians)"
    draw.text((60, height - 30), overhead, "black", font)
    image.save(ARTIFACTS / "bench-tracing.png")


async def main() -> None:
    rng = random.Random(2026)
    procedures = load_catalog(DEFAULT_CATALOG).procedures
    warmup = [random_dossier(rng, rng.choice(procedures)) for _ in range(WARMUP)]
    bodies = [random_dossier(rng, rng.choice(procedures)) for _ in range(COUNT)]
    order = [config for _ in range(ROUNDS) for config in CONFIGS]  # on, off, on, off, ...
    rounds = [Round(config, n // len(CONFIGS) + 1) for n, config in enumerate(order)]
    await reset_schema()
    await kafka_access.grant(NAMESPACE)
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for result in rounds:
            await run_round(result, warmup, bodies, progress)
    elapsed = time.monotonic() - started

    summary = summarise(rounds)
    table = Table(title=f"Intake throughput, {COUNT} posts at concurrency {CONCURRENCY}")
    for column in ("configuration", "rounds", "median req/s", "min–max req/s", "p50", "p95"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for config in CONFIGS:
        s = summary[config]
        table.add_row(
            config,
            str(s["rounds"]),
            f"{s['median_rps']:.1f}",
            f"{s['min_rps']:.1f}–{s['max_rps']:.1f}",
            f"{s['p50_ms']:.1f} ms",
            f"{s['p95_ms']:.1f} ms",
        )
    console.print(table)
    console.print(
        f"tracing on costs {summary['overhead_percent']:.1f}% of throughput (median vs median)"
    )
    for r in rounds:
        failed = f", failed {r.failures}" if r.failures else ""
        console.print(
            f"  round {r.number} {r.config:<11} {r.rps:7.1f} req/s  p50 {r.percentile(50):6.1f} ms"
            f"  p95 {r.percentile(95):6.1f} ms  outbox {r.outbox_drain_seconds:.1f}s"
            f"{failed}"
        )
    for r in rounds:
        r.spans_in_zipkin = has_spans_in_zipkin(r)
    spans = {c: [r.spans_in_zipkin for r in rounds if r.config == c] for c in CONFIGS}
    console.print(f"spans in Zipkin, per round: {spans}   whole run: {elapsed:.0f}s")
    if len({r.code for r in rounds}) > 1:
        console.print("[red]the code changed between rounds: the figures are not comparable")

    ARTIFACTS.mkdir(exist_ok=True)
    figures = {
        "count": COUNT,
        "concurrency": CONCURRENCY,
        "warmup": WARMUP,
        "summary": summary,
        "rounds": [
            {
                **{k: v for k, v in asdict(r).items() if k != "latencies_ms"},
                "rps": r.rps,
                "p50_ms": r.percentile(50),
                "p95_ms": r.percentile(95),
            }
            for r in rounds
        ],
        "spans_in_zipkin": spans,
        "elapsed_seconds": elapsed,
    }
    (ARTIFACTS / "bench-tracing.json").write_text(json.dumps(figures, indent=2) + "\n")
    draw_chart(summary, rounds)
    console.print("wrote artifacts/bench-tracing.json and artifacts/bench-tracing.png")


if __name__ == "__main__":
    asyncio.run(main())
