"""The demo's command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta


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
    consult_share: float
    send_back_share: float
    step_minutes: int
    timeout: float
    max_seconds: float

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.step_minutes)


def parse_options(argv: list[str] | None = None, description: str | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local.demo_month", description=description
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
    add(
        "--consult-share",
        type=float,
        default=0.6,
        help="inter-agency dossiers whose first unit consults other units (lấy ý kiến)",
    )
    add(
        "--send-back-share",
        type=float,
        default=0.15,
        help="multi-step dossiers a unit sends back to the step before (never a late one)",
    )
    add("--step-minutes", type=int, default=30, help="simulated minutes per clock step")
    add("--timeout", type=float, default=60.0, help="seconds to wait for the system to catch up")
    add("--max-seconds", type=float, default=600.0, help="give up after this many real seconds")
    args = parser.parse_args(argv)
    options = Options(**vars(args))
    if options.per_day < 1 or options.days < 1 or not 5 <= options.step_minutes <= 120:
        parser.error("--per-day and --days must be positive, --step-minutes within 5..120")
    return options
