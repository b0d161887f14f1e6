"""The report of a bench run: Markdown with the ratios, and PNG plots. Pure: no I/O but the
files it writes, so a smoke test runs it on tiny inputs."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

from deploy.bench.results import BenchRun, Phase, percentile

BARE_HTTP = "baseline: bare FastAPI + asyncpg"
BARE_KAFKA = "baseline: raw aiokafka produce and consume"
INTAKE_ON = "intake alone, tracing on"
INTAKE_OFF = "intake alone, tracing off"
PIPELINE_ON = "pipeline end to end, tracing on"
PIPELINE_OFF = "pipeline end to end, tracing off"
OPEN = "open model at a fixed rate"
BACKLOG = "backlog becoming overdue at once"
ENTRY_FRAMES = {"<module>", "serve"}  # in every sample of a service: they say nothing
PLOTS = ("throughput.png", "latency.png", "cpu.png")
BACKLOG_PLOT = "backlog.png"  # drawn when the run has a backlog
BACKLOG_TARGET = (60_000, 60.0)  # issue 10: 60,000 dossiers alerted and drafted within 60 s


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def _ratio(numerator: Phase | None, denominator: Phase | None) -> str:
    if numerator is None or denominator is None or not denominator.throughput:
        return "–"
    return f"{numerator.throughput / denominator.throughput * 100:.1f}%"


def _latencies(phase: Phase) -> list[float]:
    """Each answered request's latency, or wrk's quantiles of them (the same distribution)."""
    return [s.latency_ms for s in phase.samples if s.ok] or phase.latency_quantiles_ms


def cpu_by_phase(run: BenchRun) -> dict[str, dict[str, float]]:
    """Mean CPU (percent of one core) of each process group during each phase."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sample in run.cpu:
        for group, value in sample.cpu_percent.items():
            sums[sample.phase][group].append(value)
    return {
        phase: {group: sum(v) / len(v) for group, v in groups.items()}
        for phase, groups in sums.items()
    }


def rss_peaks(run: BenchRun) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for sample in run.cpu:
        for group, value in sample.rss_mb.items():
            peaks[group] = max(peaks.get(group, 0.0), value)
    return peaks


def waits_by_phase(run: BenchRun) -> dict[str, dict[str, float]]:
    """Mean number of the database's active backends per wait event, during each phase."""
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in run.database_waits:
        phase = str(sample["phase"])
        counts[phase] += 1
        for event, backends in sample.items():
            if event != "phase":
                sums[phase][event] += float(backends)  # type: ignore[arg-type]
    return {
        phase: {event: total / counts[phase] for event, total in events.items()}
        for phase, events in sums.items()
    }


def top_frames(profile: dict[str, Any], limit: int = 8) -> list[tuple[str, float]]:
    """The project's own functions (services/, shared/) taking the most samples, inclusive,
    in a py-spy speedscope profile: where the time goes, in the code we can change."""
    frames = profile["shared"]["frames"]
    inclusive: dict[str, float] = defaultdict(float)
    total = 0.0
    for sampled in profile["profiles"]:
        for stack, weight in zip(sampled["samples"], sampled["weights"], strict=True):
            total += weight
            names = set()
            for index in stack:
                frame = frames[index]
                path = str(frame.get("file", ""))
                if frame["name"] in ENTRY_FRAMES:
                    continue
                for root in ("/services/", "/shared/"):
                    if root in path and "site-packages" not in path:
                        short = root.strip("/") + "/" + path.split(root, 1)[1]
                        names.add(f"{frame['name']} ({short}:{frame.get('line', '?')})")
            for name in names:
                inclusive[name] += weight
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:limit]
    return [(name, weight / total * 100) for name, weight in ranked] if total else []


def markdown(run: BenchRun, folder: Path | None = None) -> str:
    bare, kafka = run.phase(BARE_HTTP), run.phase(BARE_KAFKA)
    lines = [
        "# `make bench` report",
        "",
        f"Run {run.started} on commit {run.code or 'unknown'}"
        + (
            " — **quick mode** (BENCH_QUICK=1): small counts, figures indicative only"
            if run.quick
            else ""
        )
        + ".",
        "Every figure is a ratio to a baseline measured in this run, or a latency at a stated"
        " rate. Settings: " + ", ".join(f"{k}={v}" for k, v in run.settings.items()) + ".",
        "",
        "## Throughput",
        "",
        "| load | completed | failed | throughput | vs bare HTTP | vs raw Kafka | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in run.phases:
        if phase.kind in ("open", "backlog"):
            continue
        unit = {"kafka": "msg/s", "pipeline": "dossiers/s"}.get(phase.kind, "req/s")
        latencies = _latencies(phase) if phase.kind != "pipeline" else phase.end_to_end_ms
        lines.append(
            f"| {phase.name} | {phase.completed} | {sum(phase.failures.values())} |"
            f" {phase.throughput:.1f} {unit} | {_ratio(phase, bare)} | {_ratio(phase, kafka)} |"
            f" {_ms(percentile(latencies, 50))} | {_ms(percentile(latencies, 99))} |"
        )
    lines += [
        "",
        "Pipeline latencies are end to end: from the POST being sent to the notifier's"
        " ApologyObligationRecorded being written to Kafka (its record time), read back by an"
        " independent consumer. Closed loops keep a fixed number of requests in flight: the"
        " baseline's and intake alone's are run by wrk (its latency quantiles), the pipeline's"
        " by the bench's own Python client, which needs each dossier's code and send time.",
    ]
    for on, off, what in (
        (INTAKE_ON, INTAKE_OFF, "intake"),
        (PIPELINE_ON, PIPELINE_OFF, "the pipeline"),
    ):
        p_on, p_off = run.phase(on), run.phase(off)
        if p_on and p_off and p_off.throughput:
            cost = (p_off.throughput - p_on.throughput) / p_off.throughput * 100
            lines.append(
                f"- Tracing costs {what} {cost:.1f}% of its throughput (on vs off, same run)."
            )
    opened = run.phase(OPEN)
    if opened is not None:
        lines += [
            "",
            f"## Latency at a fixed rate of {opened.rate:g} dossiers/s (open model)",
            "",
            "| measure | p50 | p90 | p99 | max |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, values in (
            ("intake POST", _latencies(opened)),
            ("end to end", opened.end_to_end_ms),
        ):
            lines.append(
                f"| {label} | {_ms(percentile(values, 50))} | {_ms(percentile(values, 90))} |"
                f" {_ms(percentile(values, 99))} | {_ms(max(values, default=None))} |"
            )
        lines.append(
            f"\n{opened.completed} of {len(opened.samples)} dossiers offered over"
            f" {opened.seconds:.1f} s"
            f" reached the notifier; failures {opened.failures or 'none'}."
        )
    lines += backlog_lines(run)
    cpu = cpu_by_phase(run)
    groups = sorted({g for per in cpu.values() for g in per})
    if groups:
        lines += [
            "",
            "## CPU by process (mean percent of one core; the machine has "
            f"{run.settings.get('cores', '?')} cores)",
            "",
            "| load | " + " | ".join(groups) + " | busiest |",
            "|---|" + "---:|" * len(groups) + "---|",
        ]
        for phase in run.phases:
            per = cpu.get(phase.name)
            if not per:
                continue
            busiest = max(per.items(), key=lambda item: item[1])[0]
            cells = " | ".join(f"{per[g]:.0f}" if g in per else "–" for g in groups)
            lines.append(f"| {phase.name} | {cells} | {busiest} |")
        peaks = rss_peaks(run)
        lines += [
            "",
            "## Peak RSS",
            "",
            "| process | MB |",
            "|---|---:|",
            *(f"| {g} | {peaks[g]:.0f} |" for g in sorted(peaks)),
        ]
    waits = waits_by_phase(run)
    events = sorted({e for per in waits.values() for e in per})
    if events:
        lines += [
            "",
            "## What the database's active backends wait on (mean backends)",
            "",
            "| load | " + " | ".join(events) + " |",
            "|---|" + "---:|" * len(events),
        ]
        for phase in run.phases:
            per = waits.get(phase.name)
            if per:
                lines.append(
                    f"| {phase.name} | " + " | ".join(f"{per.get(e, 0):.1f}" for e in events) + " |"
                )
    if run.profiles:
        lines += ["", "## Profiles (py-spy speedscope JSON, under load)", ""]
        for path in run.profiles:
            lines.append(f"- [{path}]({path})")
            profile = folder / path if folder is not None else None
            if profile is not None and profile.exists():
                for name, share in top_frames(json.loads(profile.read_text())):
                    lines.append(f"  - {share:.0f}% of samples in `{name}`")
    for phase in run.phases:
        if phase.note and phase.kind != "backlog":
            lines.append(f"- {phase.name}: {phase.note}")
    lines += ["", "![throughput](throughput.png)", "![latency](latency.png)", "![cpu](cpu.png)"]
    if run.backlog.get("progress"):
        lines.append(f"![backlog]({BACKLOG_PLOT})")
    return "\n".join([*lines, ""])


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def _rate(count: int, seconds: float | None) -> str:
    return f"{count / seconds:.1f}/s" if seconds else "–"


def backlog_lines(run: BenchRun) -> list[str]:
    """The backlog run (deploy/bench/backlog.py): seeding apart, then from the moment every
    service's clock moved past the common due time to the last alert, draft and letter."""
    b = run.backlog
    if not b:
        return []
    seeded = int(b["seeded"])
    target_count, target_seconds = BACKLOG_TARGET
    drained = max(b["alerted_seconds"] or 0.0, b["drafted_seconds"] or 0.0)
    reached = b["alerted_seconds"] is not None and b["drafted_seconds"] is not None
    lines = [
        "",
        f"## Backlog: {seeded:,} dossiers overdue at the same simulated moment",
        "",
        f"{seeded:,} of {int(b['dossiers']):,} dossiers seeded (one procedure, {b['desks']}"
        f" desk(s)), all due at {b['due_at'] or '–'} ({b['due_moments']} distinct due"
        " time(s)); then every service's clock moved one minute past it at once.",
        "",
        "| measure | count | seconds | rate |",
        "|---|---:|---:|---:|",
        f"| seeding: POSTs answered 201 (not the backlog figure) | {seeded:,} |"
        f" {b['posts_seconds']:.1f} s | {_rate(seeded, b['posts_seconds'])} |",
        f"| seeding: every clock and apology obligation recorded | {seeded:,} |"
        f" {b['seed_seconds']:.1f} s | {_rate(seeded, b['seed_seconds'])} |",
        f"| clock moved → every overdue alert | {int(b['alerted']):,} |"
        f" {_seconds(b['alerted_seconds'])} | {_rate(int(b['alerted']), b['alerted_seconds'])} |",
        f"| clock moved → every draft apology | {int(b['drafted']):,} |"
        f" {_seconds(b['drafted_seconds'])} | {_rate(int(b['drafted']), b['drafted_seconds'])} |",
        f"| clock moved → every apology letter issued (city, late) | {int(b['issued']):,} |"
        f" {_seconds(b['issued_seconds'])} | {_rate(int(b['issued']), b['issued_seconds'])} |",
        "",
        f"Target: {target_count:,} dossiers alerted and drafted within {target_seconds:.0f} s,"
        f" {target_count / target_seconds:,.0f}/s."
        + (
            f" Measured here: {seeded:,} in {drained:.1f} s, {seeded / drained:.1f}/s"
            f" ({seeded / drained / (target_count / target_seconds) * 100:.1f}% of the rate the"
            " target needs)"
            + (
                ""
                if seeded >= target_count
                else f"; {target_count - seeded:,} short of the target's {target_count:,}"
                + (" (POSTs that failed in seeding, below)" if b.get("failures") else "")
            )
            + "."
            if reached and drained
            else f" Not every dossier was alerted and drafted in time: no rate;"
            f" {min(int(b['alerted']), int(b['drafted'])):,} of {seeded:,} were after"
            f" {b.get('drain_timeout', 0):.0f} s."
        ),
    ]
    if b.get("load_at_move"):
        lines.append(
            f"The machine's load average (1 min) was {b['load_at_move']:.1f} when the clocks moved"
            f" and {b['load_at_end']:.1f} at the end, on {run.settings.get('cores', '?')} cores."
        )
    if b.get("failures"):
        lines.append(f"Failures: {b['failures']}.")
    return lines


def plot_backlog(run: BenchRun, path: Path) -> None:
    """Alerted, drafted and issued so far, over the seconds since the clocks moved."""
    progress = run.backlog.get("progress") or []
    figure, axes = plt.subplots(figsize=(9, 4.5))
    at = [row[0] for row in progress]
    for column, label, style in (
        (1, "overdue alerts", "-"),
        (2, "draft apologies", "-"),
        (3, "letters issued", "--"),  # dashed: in the alert's transaction, the same line
    ):
        axes.plot(at, [row[column] for row in progress], style, label=label)
    axes.set_xlabel("seconds since every clock moved past the common due time")
    axes.set_ylabel("dossiers")
    axes.set_title(f"Backlog of {int(run.backlog.get('seeded', 0)):,} dossiers overdue at once")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_throughput(run: BenchRun, path: Path) -> None:
    """Completions per second over each phase's time."""
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for phase in run.phases:
        moments = phase.outcomes_at or [s.at + s.latency_ms / 1000 for s in phase.samples if s.ok]
        if not moments:
            continue
        buckets: dict[int, int] = defaultdict(int)
        for moment in moments:
            buckets[int(moment)] += 1
        seconds = range(0, max(buckets) + 1)
        counts = [buckets.get(s, 0) for s in seconds]
        axes.plot(list(seconds), counts, marker=".", markersize=4, label=phase.name)
    axes.set_xlabel("seconds since the phase began")
    axes.set_ylabel("completed per second (symlog: Kafka's baseline is far above)")
    axes.set_yscale("symlog", linthresh=10)
    axes.set_title("Throughput over time")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_latency(run: BenchRun, path: Path) -> None:
    """The latency distribution of each phase, as a CDF on a log scale."""
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for phase in run.phases:
        series = [(phase.name, _latencies(phase))]
        if phase.end_to_end_ms:
            series.append((f"{phase.name} (end to end)", phase.end_to_end_ms))
        for label, values in series:
            if not values:
                continue
            ordered = sorted(values)
            axes.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("fraction at most")
    axes.set_title("Latency distribution")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_cpu(run: BenchRun, path: Path) -> None:
    """Mean CPU of each process group during each phase, stacked."""
    cpu = cpu_by_phase(run)
    phases = [p.name for p in run.phases if p.name in cpu]
    groups = sorted({g for per in cpu.values() for g in per})
    figure, axes = plt.subplots(figsize=(9, 4.5))
    bottoms = [0.0] * len(phases)
    for group in groups:
        values = [cpu[p].get(group, 0.0) for p in phases]
        axes.barh(phases, values, left=bottoms, label=group)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    axes.set_xlabel("CPU (percent of one core, mean over the phase)")
    axes.set_title("CPU by process")
    axes.legend(fontsize=7, loc="lower right")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(run: BenchRun, folder: Path) -> Path:
    """The report and its plots in `folder`; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    plot_throughput(run, folder / PLOTS[0])
    plot_latency(run, folder / PLOTS[1])
    plot_cpu(run, folder / PLOTS[2])
    if run.backlog.get("progress"):
        plot_backlog(run, folder / BACKLOG_PLOT)
    report = folder / "report.md"
    report.write_text(markdown(run, folder))
    return report


if __name__ == "__main__":  # draw a saved run again: python -m deploy.bench.report [folder]
    import sys

    from deploy.bench.results import load

    where = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts/bench")
    print(write(load(json.loads((where / "results.json").read_text())), where))
