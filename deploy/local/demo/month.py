"""The simulated month: the clock moves in steps through each working day; counters post the
day's dossiers, units act on them when their moves fall due, and after each step the demo
waits until the system has caught up before anyone acts again."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from deploy.local.demo.driver import DemoError, Driver
from deploy.local.demo.options import Options
from deploy.local.demo.report import month_progress
from deploy.local.demo.traffic import (
    CENTRE,
    OPEN_PHASES,
    START,
    WARD_DESKS,
    Dossier,
    Move,
    Phase,
    Reply,
    decide_consultation,
    decide_fate,
    decide_send_back,
    parse_time,
    procedure_weights,
)
from deploy.local.demo_counters import random_dossier
from deploy.local.identity import counter_of, head_of, officer_of
from shared.calendar import HCMC, UnitCalendars
from shared.catalog import Catalog
from shared.clock import SimulatedClock


@dataclass
class Live:
    posted: int = 0
    apologies: int = 0
    late: int = 0
    moves: Counter[str] = field(default_factory=Counter)


class Month:
    def __init__(
        self,
        options: Options,
        clock: SimulatedClock,
        driver: Driver,
        catalog: Catalog,
        calendars: UnitCalendars,  # the calendars the services count time in
    ) -> None:
        self.o = options
        self.clock = clock
        self.driver = driver
        self.catalog = catalog
        self.calendars = calendars
        self.calendar = calendars.default  # the counters' days and hours
        self.weights = procedure_weights(catalog)
        self.dossiers: list[Dossier] = []
        self.live = Live()
        self.days = self._working_days()
        self.withdrawn_indices = self._withdrawals()
        self.period_start = datetime.combine(self.days[0], datetime.min.time(), HCMC)

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

    def _withdrawals(self) -> set[int]:
        """Which dossiers (by posting order) the citizen withdraws: early in the month."""
        total = self.o.per_day * self.o.days
        rng = random.Random(f"{self.o.seed}:withdrawals")
        return set(rng.sample(range(total // 2), min(self.o.withdrawals, total // 2)))

    def period(self, end: datetime) -> dict[str, str]:
        return {"from": self.period_start.isoformat(), "to": end.isoformat()}

    # -- one step of the clock ---------------------------------------------------------------

    async def step_to(self, moment: datetime, arrivals: list[datetime]) -> None:
        driver = self.driver
        for arrival in arrivals:
            self.clock.set(arrival)
            d = await self.post()
            # Routed and on the clock before time moves on, as it would be in real time.
            await driver.until_all([d], driver.routed, "routing and clock start")
            d.phase = Phase.PROCESSING
            d.begin_step(parse_time(d.clock["started_at"]))
        self.clock.set(moment)
        # The scheduler polls the clock: it has run at `moment` once every clock that is due
        # soon, overdue or past its step's time shows the detection.
        watched = [d for d in self.dossiers if d.lateness_pending(moment)]
        await driver.until_all(watched, driver.lateness_detected, "lateness detection")
        # Due soon: the unit at fault gets a draft apology (Mẫu 04); most fill it in and their
        # head signs at once, a unit that ignores due-soon leaves it to the escalation.
        for d in self.dossiers:
            if d.clock.get("due_soon_detected_at") and not d.due_soon_answered:
                await driver.answer_due_soon(d)
        acted = []
        for d in self.dossiers:
            for reply in d.replies_due(moment):
                await self.reply(d, reply)
            if d.phase in (Phase.ROUTING, Phase.RETURNED, Phase.WITHDRAWN):
                continue
            when, move = d.next_move(self.o.step)
            if when <= moment:
                await self.perform(d, move)
                acted.append(d)
        # Before the clock moves on, the deadline service must know what the units did:
        # otherwise it could find a dossier late that was handed on or finished in time.
        await driver.until_all(acted, driver.move_applied, "the units' moves")

    async def post(self) -> Dossier:
        index = len(self.dossiers)
        rng = random.Random(f"{self.o.seed}:dossier:{index}")
        procedure = rng.choices(self.catalog.procedures, weights=self.weights)[0]
        body = random_dossier(rng, procedure)
        desks = [CENTRE, CENTRE, *WARD_DESKS, procedure.agency]
        desk = rng.choice(desks)
        withdraw = index in self.withdrawn_indices
        key = {"Idempotency-Key": f"demo-month-{self.o.seed}-{index}"}
        response = await self.driver.send(
            "POST", "/v1/dossiers", "a post", counter_of(desk), json=body, headers=key
        )
        if response.status_code != 201:
            raise DemoError(f"the counter's post was refused: {response.status_code}")
        code = response.json()["dossier_code"]
        fate = decide_fate(rng, procedure, withdraw, self.o)
        if procedure.is_inter_agency and not withdraw:
            consulting = random.Random(f"{self.o.seed}:consultation:{index}")
            consulted = decide_consultation(consulting, procedure, self.o)
            fate = replace(fate, consulted=consulted)
        if fate.late_step is None and not withdraw:  # lateness stays the fate's to plan
            sending = random.Random(f"{self.o.seed}:send-back:{index}")
            fate = replace(fate, send_back=decide_send_back(sending, procedure, self.o))
        calendar = self.calendars.of(procedure.agency)
        dossier = Dossier(
            code=code,
            desk=desk,
            procedure=procedure,
            fate=fate,
            rng=rng,
            calendar=calendar,
            applicant=body["applicant"],
        )
        self.dossiers.append(dossier)
        self.live.posted += 1
        return dossier

    async def perform(self, d: Dossier, move: Move) -> None:
        now = self.clock()
        # The desk's officer, or an officer (now and then the head) of the holding unit.
        user = counter_of(d.desk) if move.at_the_desk else _holder(d.unit(), d.draw)
        path = f"/v1/dossiers/{d.code}/{move.value}"
        what = f"{move.value} on {d.code}"
        response = await self.driver.send("POST", path, what, user, json=d.request(move))
        # 201: the consultations; 202: routing records a hand-off or a send-back
        if response.status_code not in (200, 201, 202):
            raise DemoError(
                f"{move.value} on {d.code} (step {d.step}, {d.phase}) at {now:%d/%m %H:%M}:"
                f" {response.status_code} {response.text[:400]}"
            )
        self.live.moves[move.value] += 1
        if move is Move.CONSULT:
            d.plan_replies(response.json()["consultations"], now, self.o.step)
        d.record(move, now)

    async def reply(self, d: Dossier, reply: Reply) -> None:
        """The consulted unit's officer answers; the dossier's clock does not move."""
        now = self.clock()
        path = f"/v1/dossiers/{d.code}/consultations/{reply.consultation_id}/reply"
        body = {"opinion": "Thống nhất với nội dung hồ sơ, không có ý kiến khác"}
        what = f"the reply of {reply.unit} on {d.code}"
        response = await self.driver.send("POST", path, what, officer_of(reply.unit), json=body)
        if response.status_code != 200:
            raise DemoError(
                f"{what} at {now:%d/%m %H:%M}: {response.status_code} {response.text[:400]}"
            )
        reply.replied = True
        reply.at = now  # the clock step it was given at: late is judged against this
        self.live.moves["consultation-replies"] += 1

    # -- the month ---------------------------------------------------------------------------

    async def indicators(self, end: datetime) -> dict[str, Any]:
        return await self.driver.indicators(self.period(end))

    async def lateness_board(self, end: datetime) -> dict[str, Any]:
        return await self.driver.lateness_board(self.period(end))

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
        with month_progress() as progress:
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
        driver = self.driver
        end = self.calendar.closing_of(self.days[-1]) + self.o.step
        self.clock.set(end)
        running = [d for d in self.dossiers if d.lateness_pending(end)]
        await driver.until_all(running, driver.lateness_detected, "lateness detection at the end")
        owed = [
            d
            for d in self.dossiers
            if d.clock.get("overdue_detected_at") or Move.EXTENSION in d.done
        ]
        await driver.until_all(owed, driver.apology_issued, "apologies for the late dossiers")
        await driver.until_projected()
        return end


def _holder(unit: str, draw: float) -> str:
    return head_of(unit) if draw > 0.8 else officer_of(unit)
