"""`make bench`'s report drawn from tiny made-up results: it cannot rot between runs. (No
timing here: the figures are given, only their arithmetic and the files are checked.)"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from deploy.bench import report
from deploy.bench.backlog import Backlog, desks_for, phase_of
from deploy.bench.results import BenchRun, CpuSample, Phase, Sample, load, merge_rounds, percentile
from services.intake.domain import MAX_DAILY_SEQUENCE


def closed(name: str, completed: int, seconds: float, kind: str = "closed") -> Phase:
    samples = [Sample(i * 0.1, 10.0 + i, True) for i in range(completed)]
    return Phase(name, kind, seconds=seconds, samples=samples, completed=completed)


def tiny_run() -> BenchRun:
    pipeline = Phase(
        report.PIPELINE_ON,
        "pipeline",
        seconds=4.0,
        completed=2,
        end_to_end_ms=[100.0, 300.0],
        outcomes_at=[1.5, 3.9],
    )
    opened = Phase(
        report.OPEN,
        "open",
        seconds=1.0,
        samples=[Sample(0.0, 5.0, True), Sample(0.5, 7.0, False)],
        completed=1,
        end_to_end_ms=[120.0],
        outcomes_at=[0.8],
        rate=2.0,
        failures={"503": 1},
    )
    return BenchRun(
        quick=True,
        settings={"dossiers": 4, "cores": 2},
        phases=[
            closed(report.BARE_HTTP, 4, 1.0),
            closed(report.INTAKE_ON, 4, 4.0),
            closed(report.INTAKE_OFF, 4, 2.0),
            pipeline,
            opened,
        ],
        cpu=[
            CpuSample(
                0.5, report.INTAKE_ON, {"intake": 90.0, "postgresql": 30.0}, {"intake": 120.0}
            ),
            CpuSample(
                1.0, report.INTAKE_ON, {"intake": 70.0, "postgresql": 50.0}, {"intake": 140.0}
            ),
        ],
        database_waits=[
            {"phase": report.INTAKE_ON, "Lock/transactionid": 6, "on CPU": 1},
            {"phase": report.INTAKE_ON, "Lock/transactionid": 2},
        ],
        profiles=["profiles/intake.speedscope.json"],
        started="2026-01-01T00:00:00+00:00",
        code="abc1234",
    )


def speedscope() -> dict[str, object]:
    frames = [
        {"name": "run", "file": "/usr/lib/python3.11/asyncio/runners.py", "line": 1},
        {"name": "receive_dossier", "file": "/repo/services/intake/handlers.py", "line": 72},
        {"name": "next_sequence", "file": "/repo/services/intake/repository.py", "line": 85},
    ]
    samples = [[0, 1, 2], [0, 1], [0], [0]]
    return {
        "shared": {"frames": frames},
        "profiles": [{"samples": samples, "weights": [1.0] * len(samples)}],
    }


def test_the_report_gives_each_figure_as_a_ratio_to_the_same_run_s_baseline(
    tmp_path: Path,
) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "intake.speedscope.json").write_text(json.dumps(speedscope()))

    path = report.write(tiny_run(), tmp_path)

    text = path.read_text()
    # bare 4 req/s; intake with tracing 1 req/s (25%), without 2 req/s (50%): tracing costs 50%
    assert f"| {report.INTAKE_ON} | 4 | 0 | 1.0 req/s | 25.0% |" in text
    assert f"| {report.INTAKE_OFF} | 4 | 0 | 2.0 req/s | 50.0% |" in text
    assert "Tracing costs intake 50.0% of its throughput" in text
    assert f"| {report.PIPELINE_ON} | 2 | 0 | 0.5 dossiers/s | 12.5% |" in text
    assert "fixed rate of 2 dossiers/s" in text
    assert "| end to end | 120.0 ms |" in text
    assert f"| {report.INTAKE_ON} | 80 | 40 | intake |" in text  # mean CPU, and the busiest process
    assert "| intake | 140 |" in text  # peak RSS
    assert f"| {report.INTAKE_ON} | 4.0 | 0.5 |" in text  # mean backends waiting on a lock
    assert "50% of samples in `receive_dossier (services/intake/handlers.py:72)`" in text
    assert "25% of samples in `next_sequence (services/intake/repository.py:85)`" in text
    for plot in report.PLOTS:
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_a_saved_run_draws_the_same_report(tmp_path: Path) -> None:
    run = tiny_run()

    again = load(json.loads(json.dumps(asdict(run))))

    assert report.markdown(again) == report.markdown(run)


def test_percentiles_of_nothing_one_and_many_values() -> None:
    assert percentile([], 99) is None
    assert percentile([7.0], 50) == 7.0
    assert percentile([float(v) for v in range(1, 102)], 50) == 51.0


def test_rounds_of_a_load_add_up_to_one_figure() -> None:
    rounds = [closed("a", 4, 1.0), closed("b", 1, 1.0), closed("a", 2, 2.0)]

    merged = merge_rounds(rounds)

    assert [p.name for p in merged] == ["a", "b"]
    assert (merged[0].completed, merged[0].seconds, len(merged[0].samples)) == (6, 3.0, 6)
    assert merged[0].throughput == 2.0


def tiny_backlog() -> Backlog:
    return Backlog(
        dossiers=4,
        seeded=4,
        desks=1,
        seed_seconds=2.0,
        posts_seconds=1.0,
        due_at="2026-03-05T08:30:00+07:00",
        due_moments=1,
        alerted=4,
        drafted=4,
        issued=4,
        alerted_seconds=2.0,
        drafted_seconds=0.5,
        issued_seconds=2.0,
        progress=[(0.5, 0, 4, 0), (1.0, 2, 4, 2), (2.0, 4, 4, 4)],
        load_at_move=3.0,
        load_at_end=4.0,
        drain_timeout=600.0,
    )


def test_the_backlog_is_timed_from_the_clocks_moving_to_the_last_alert_and_draft(
    tmp_path: Path,
) -> None:
    result = tiny_backlog()
    run = tiny_run()
    run.backlog = asdict(result)

    phase = phase_of(result)
    run.phases.append(phase)
    text = report.write(run, tmp_path).read_text()

    # done when both are done: the last alert at 2.0 s, each dossier counted once both are in
    assert (phase.completed, phase.seconds) == (4, 2.0)
    assert phase.outcomes_at == [1.0, 1.0, 2.0, 2.0]
    assert "| seeding: POSTs answered 201 (not the backlog figure) | 4 | 1.0 s | 4.0/s |" in text
    assert "| clock moved → every overdue alert | 4 | 2.0 s | 2.0/s |" in text
    assert "| clock moved → every draft apology | 4 | 0.5 s | 8.0/s |" in text
    assert (
        "Measured here: 4 in 2.0 s, 2.0/s (0.2% of the rate the target needs);"
        " 59,996 short of the target's 60,000." in text
    )
    assert "load average (1 min) was 3.0 when the clocks moved and 4.0 at the end" in text
    assert f"| {report.BACKLOG} | 4 | 0 |" not in text  # its own table, not the throughput one
    assert (tmp_path / report.BACKLOG_PLOT).read_bytes().startswith(b"\x89PNG")
    assert report.markdown(load(json.loads(json.dumps(asdict(run))))) == report.markdown(run)


def test_a_backlog_not_drained_in_time_gives_no_rate() -> None:
    result = tiny_backlog()
    result.alerted, result.alerted_seconds = 3, None
    run = tiny_run()
    run.backlog = asdict(result)

    text = report.markdown(run)

    assert "| clock moved → every overdue alert | 3 | not reached | – |" in text
    assert "in time: no rate; 3 of 4 were after 600 s." in text
    assert phase_of(result).seconds == 0.0


def test_a_backlog_beyond_one_desk_s_daily_codes_is_spread_over_desks() -> None:
    assert desks_for(MAX_DAILY_SEQUENCE) == ["000.00.00.H29"]
    assert len(desks_for(MAX_DAILY_SEQUENCE + 1)) == 2
    with pytest.raises(ValueError, match=r"at most \d+ dossiers in one simulated day"):
        desks_for(10**9)
