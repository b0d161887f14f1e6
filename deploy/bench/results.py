"""What a bench run measured: plain data, so the report can be drawn from a saved JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """One request: when it was sent (seconds since the phase began), how long it took."""

    at: float
    latency_ms: float
    ok: bool


@dataclass
class Phase:
    """One measured load: a closed loop (count at a concurrency) or an open model (a rate)."""

    name: str
    kind: str  # "closed", "open", "kafka", "pipeline"
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    completed: int = 0  # requests answered 2xx, messages consumed, or dossiers at the notifier
    failures: dict[str, int] = field(default_factory=dict)
    end_to_end_ms: list[float] = field(default_factory=list)  # pipeline: POST to outcome
    outcomes_at: list[float] = field(default_factory=list)  # pipeline: seconds since start
    rate: float | None = None  # open model: the offered rate, per second
    note: str = ""
    # Closed loops run by wrk: 1,000 evenly spaced quantiles of the latency (no moments)
    latency_quantiles_ms: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


@dataclass
class CpuSample:
    at: float  # seconds since the run began
    phase: str
    cpu_percent: dict[str, float]  # process group -> percent of one core
    rss_mb: dict[str, float]


@dataclass
class BenchRun:
    quick: bool
    settings: dict[str, object]
    phases: list[Phase] = field(default_factory=list)
    cpu: list[CpuSample] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # paths under artifacts/bench/
    # per half second: the phase, and how many active backends of the bench's database wait
    # on each wait event ("on CPU" for none)
    database_waits: list[dict[str, object]] = field(default_factory=list)
    started: str = ""
    code: str = ""  # the commit benchmarked
    backlog: dict[str, Any] = field(default_factory=dict)  # deploy/bench/backlog.py's Backlog

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (inclusive method), None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


def merge_rounds(phases: list[Phase]) -> list[Phase]:
    """Phases of the same name (rounds) as one: their counts and seconds added up, so its
    throughput is over all of its rounds; in the order each name first came."""
    merged: dict[str, Phase] = {}
    for phase in phases:
        into = merged.get(phase.name)
        if into is None:
            merged[phase.name] = Phase(
                phase.name,
                phase.kind,
                seconds=phase.seconds,
                samples=list(phase.samples),
                completed=phase.completed,
                failures=dict(phase.failures),
                end_to_end_ms=list(phase.end_to_end_ms),
                outcomes_at=list(phase.outcomes_at),
                rate=phase.rate,
                note=phase.note,
                latency_quantiles_ms=list(phase.latency_quantiles_ms),
            )
            continue
        into.seconds += phase.seconds
        into.samples += phase.samples
        into.completed += phase.completed
        for failure, count in phase.failures.items():
            into.failures[failure] = into.failures.get(failure, 0) + count
        into.end_to_end_ms += phase.end_to_end_ms
        into.latency_quantiles_ms += phase.latency_quantiles_ms  # each round weighted alike
    return list(merged.values())


def load(data: dict[str, Any]) -> BenchRun:
    """A run back from its results.json (asdict of a BenchRun)."""
    phases = [
        Phase(**{**p, "samples": [Sample(**s) for s in p["samples"]]}) for p in data["phases"]
    ]
    cpu = [CpuSample(**c) for c in data["cpu"]]
    return BenchRun(**{**data, "phases": phases, "cpu": cpu})
