"""The traffic: who files what, what each unit will do with it, and our model of each dossier
as it moves (what its holder does next and when, and what the deadline's clock must show)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from deploy.local.demo.options import Options
from deploy.local.demo_counters import DOCUMENTS
from shared.calendar import HCMC, WorkingCalendar
from shared.catalog import Catalog, Procedure

START = datetime(2026, 11, 2, 7, 0, tzinfo=HCMC)  # a Monday morning
TAX = "000.30.01.H29"  # Thuế Thành phố: the financial obligation of land procedures
CENTRE = "000.00.00.H29"
WARD_DESKS = ("000.41.01.H29", "000.41.02.H29", "000.41.03.H29", "000.41.04.H29")
# How often a field's procedures are filed, relative to each other (civil status and
# certification dominate a one-stop desk's day; land and construction are fewer but long).
FIELD_WEIGHTS = {
    "Hộ tịch": 30,
    "Chứng thực": 24,
    "Đất đai": 14,
    "Đăng ký biện pháp bảo đảm": 4,
    "Lý lịch tư pháp": 8,
    "Xây dựng": 5,
    "Thành lập và hoạt động doanh nghiệp": 8,
    "Thành lập và hoạt động của hộ kinh doanh": 6,
}


@dataclass(frozen=True)
class UnitTraits:
    """How a unit behaves beyond what each dossier's fate says."""

    replies_late: bool = False  # answers consultations (lấy ý kiến) after their due time
    # Leaves the draft apology it gets when a dossier falls due soon unsigned, so it is
    # escalated at the due date and the city apologises for it, late.
    ignores_due_soon: bool = False


UNIT_TRAITS = {
    "000.00.14.H29": UnitTraits(replies_late=True),  # Sở Nông nghiệp và Môi trường
    "000.20.01.H29": UnitTraits(replies_late=True),  # Công an Thành phố
    "000.41.01.H29": UnitTraits(ignores_due_soon=True),  # UBND phường Sài Gòn
}


def traits(unit_code: str) -> UnitTraits:
    return UNIT_TRAITS.get(unit_code, UnitTraits())


class Phase(StrEnum):
    ROUTING = "routing"  # posted; waiting for routing's plan and the deadline's clock
    PROCESSING = "processing"
    SUPPLEMENT = "supplement"  # the citizen was asked for a supplement
    OBLIGATION = "obligation"  # the citizen was asked to pay fees or taxes
    PROCESSED = "processed"  # result ready at the desk
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


OPEN_PHASES = (Phase.ROUTING, Phase.PROCESSING, Phase.SUPPLEMENT, Phase.OBLIGATION)


class Move(StrEnum):
    """A lifecycle call on intake; the value is its path under /v1/dossiers/{code}/."""

    HAND_OFF = "hand-offs"
    CONSULT = "consultations"
    SEND_BACK = "send-backs"
    RESULT = "result"
    ASK_SUPPLEMENT = "supplement-requests"
    SUPPLEMENT = "supplements"
    ASK_PAYMENT = "financial-obligations"
    PAYMENT = "financial-obligations/fulfilment"
    EXTENSION = "extension-requests"
    RETURN = "return"
    WITHDRAW = "withdrawal"

    @property
    def at_the_desk(self) -> bool:
        """Given by a counter officer of the receiving desk; the others by the holding unit."""
        return self in (Move.SUPPLEMENT, Move.PAYMENT, Move.RETURN, Move.WITHDRAW)


@dataclass(frozen=True)
class Fate:
    """Decided when the dossier is posted, from its own seeded generator."""

    late_step: int | None = None  # the step whose unit sits on the dossier past its due time
    past_due: bool = False  # ... and past the dossier's overall due time
    extension: bool = False  # ... and asks for an extension (an apology) before that
    supplement: bool = False
    obligation: bool = False
    withdraw: bool = False
    consulted: tuple[str, ...] = ()  # the units the first step's unit asks for their opinion
    send_back: int | None = None  # the step whose unit sends the dossier back to the one before


@dataclass
class Reply:
    """A consulted unit's answer to come: when it replies, and whether that is past due."""

    consultation_id: int
    unit: str
    due_at: datetime
    at: datetime
    replied: bool = False

    @property
    def late(self) -> bool:
        return self.at > self.due_at


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass
class Dossier:
    code: str
    desk: str  # the receiving unit
    procedure: Procedure
    fate: Fate
    rng: random.Random
    calendar: WorkingCalendar  # its competent unit's: office hours and the agency's days off
    phase: Phase = Phase.ROUTING
    step: int = 1
    step_started: datetime = START
    draw: float = 0.5  # where in its allotted time this step's unit acts
    clock: dict[str, Any] = field(default_factory=dict)  # the deadline service's, last read
    expected: tuple[str, int | None] | None = None  # what that clock must show after our move
    completed: int | None = None  # ... and the parallel step it must show completed
    apology_expected: bool = False  # an extension was asked: the notifier must apologise
    due_soon_answered: bool = False  # the unit at fault has seen its due-soon draft apology
    done: set[Move] = field(default_factory=set)
    resume_at: datetime | None = None
    return_at: datetime | None = None
    replies: list[Reply] = field(default_factory=list)
    # What the counter posted of the applicant: a test checks none of it reaches a public page.
    applicant: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.clock["steps"])

    @property
    def due_at(self) -> datetime:
        return parse_time(self.clock["due_at"])

    def step_due(self, step: int | None = None) -> datetime:
        return parse_time(self.steps[(step or self.step) - 1]["due_at"])

    def unit(self, step: int | None = None) -> str:
        return str(self.steps[(step or self.step) - 1]["unit_code"])

    @property
    def stage(self) -> tuple[int, ...]:
        """The steps (1-based) running side by side with the current one, itself included:
        a parallel group of the catalog, or the step alone."""
        return next(
            tuple(i + 1 for i in stage) for stage in self.procedure.stages if self.step - 1 in stage
        )

    @property
    def last_stage(self) -> bool:
        return self.stage[-1] == len(self.steps)

    def begin_step(self, at: datetime) -> None:
        self.step_started = at
        self.draw = self.rng.random()

    def next_move(self, clock_step: timedelta) -> tuple[datetime, Move]:
        """What the dossier's holder (or its citizen) does next, and when."""
        add = self.calendar.add_working_time
        if self.phase is Phase.PROCESSED:
            assert self.return_at is not None
            return self.return_at, Move.RETURN
        if self.phase in (Phase.SUPPLEMENT, Phase.OBLIGATION):
            assert self.resume_at is not None
            resume = Move.SUPPLEMENT if self.phase is Phase.SUPPLEMENT else Move.PAYMENT
            return self.resume_at, resume
        start, step_due = self.step_started, self.step_due()
        allotted = self.calendar.working_time_between(start, step_due)
        fate = self.fate
        if fate.withdraw:
            return add(start, allotted * (0.2 + 0.3 * self.draw)), Move.WITHDRAW
        if self.consults(allotted):
            return add(start, allotted * 0.1), Move.CONSULT
        if fate.send_back == self.step and Move.SEND_BACK not in self.done:
            return add(start, allotted * (0.2 + 0.3 * self.draw)), Move.SEND_BACK
        if fate.supplement and self.step == 1 and Move.ASK_SUPPLEMENT not in self.done:
            return add(start, allotted * (0.15 + 0.25 * self.draw)), Move.ASK_SUPPLEMENT
        if fate.obligation and self.unit() == TAX and Move.ASK_PAYMENT not in self.done:
            return add(start, allotted * (0.2 + 0.3 * self.draw)), Move.ASK_PAYMENT
        if fate.extension and self.step == fate.late_step and Move.EXTENSION not in self.done:
            lead = timedelta(hours=2 + 6 * self.draw)  # asks 2 to 8 working hours before the due
            asks = self.calendar.subtract_working_time(self.due_at, lead)
            return max(start, asks), Move.EXTENSION
        finish = self.finish_time(start, step_due, allotted, clock_step)
        return finish, Move.RESULT if self.last_stage else Move.HAND_OFF

    def consults(self, allotted: timedelta) -> bool:
        """The first step's unit asks the fated units for their opinion early in its step, if
        the step leaves a working day or more (room for the replies before it hands on)."""
        return (
            bool(self.fate.consulted)
            and self.step == 1
            and Move.CONSULT not in self.done
            and allotted >= self.calendar.office_hours.working_day
        )

    def reply_working_days(self) -> float:
        """A third of the step's time, in quarter days: on-time replies come before the unit
        hands on; late ones a few hours after their due time, usually still within the step."""
        allotted = self.calendar.working_time_between(self.step_started, self.step_due())
        days = allotted / self.calendar.office_hours.working_day
        return max(0.25, round(days / 3 * 4) / 4)

    def plan_replies(
        self, consultations: list[dict[str, Any]], now: datetime, clock_step: timedelta
    ) -> None:
        add = self.calendar.add_working_time
        margin = clock_step + timedelta(minutes=5)  # replying happens at the next clock step
        for c in consultations:
            due = parse_time(c["reply_due_at"])
            if traits(c["unit_code"]).replies_late:
                at = add(due, timedelta(hours=0.5 + 2.5 * self.rng.random()))
            else:
                window = self.calendar.working_time_between(now, due)
                at = add(now, window * (0.2 + 0.6 * self.rng.random()))
                at = max(now, min(at, self.calendar.subtract_working_time(due, margin)))
            self.replies.append(Reply(c["consultation_id"], c["unit_code"], due, at))

    def replies_due(self, now: datetime) -> list[Reply]:
        """The replies to give now; none once the dossier left processing (409)."""
        if self.phase not in OPEN_PHASES:
            return []
        return [r for r in self.replies if not r.replied and r.at <= now]

    def finish_time(
        self, start: datetime, step_due: datetime, allotted: timedelta, clock_step: timedelta
    ) -> datetime:
        finish = self._finish_time(start, step_due, allotted, clock_step)
        awaited = [r.at for r in self.replies if not r.replied]
        if not awaited or self.step == self.fate.late_step:
            return finish
        # The unit waits for the replies, but not past its step's due time.
        margin = clock_step + timedelta(minutes=5)
        latest = self.calendar.subtract_working_time(step_due, margin)
        return max(finish, min(max(awaited) + margin, latest))

    def _finish_time(
        self, start: datetime, step_due: datetime, allotted: timedelta, clock_step: timedelta
    ) -> datetime:
        add = self.calendar.add_working_time
        margin = clock_step + timedelta(minutes=5)  # acting happens at the next clock step
        if self.step == self.fate.late_step:
            if self.fate.past_due:  # an hour to five working days past the dossier's due time
                return add(max(self.due_at, start), timedelta(hours=1 + 39 * self.draw**2))
            room = self.calendar.working_time_between(step_due, self.due_at)
            late_by = timedelta(hours=0.5 + 5.5 * self.draw)
            return add(step_due, min(late_by, room / 2) if room > 2 * margin else late_by)
        if allotted <= margin * 2:
            # Little time left (a pause ended near the due time, or an earlier unit was late):
            # the unit acts at the next clock step if one falls before the due time, else it
            # takes 1 to 3 hours.
            if allotted > clock_step:
                return start
            return add(start, timedelta(hours=1 + 2 * self.draw))
        on_time = add(start, allotted * (0.2 + 0.6 * self.draw))
        return min(on_time, self.calendar.subtract_working_time(step_due, margin))

    def request(self, move: Move) -> dict[str, Any] | None:
        """The body of the move's call on intake (the unit and official are the token's)."""
        if move is Move.HAND_OFF:
            return {"to_unit_code": self.unit(self.stage[-1] + 1)}  # the next stage's
        if move is Move.ASK_SUPPLEMENT:
            missing = self.rng.sample(DOCUMENTS.get(self.procedure.field, ["Tờ khai"]), 1)
            return {
                "reason": f"Thiếu hoặc chưa hợp lệ: {missing[0].lower()}",
                "missing_documents": missing,
            }
        if move is Move.ASK_PAYMENT:
            return {"amount_vnd": self.rng.randrange(5, 500) * 100_000}
        if move is Move.EXTENSION:
            return {"reason": "Cần thêm thời gian xác minh, lấy ý kiến cơ quan liên quan"}
        if move is Move.WITHDRAW:
            return {"reason": "Công dân đề nghị rút hồ sơ"}
        if move is Move.SEND_BACK:
            return {
                "to_step_sequence": self.step - 1,
                "reason": "Kết quả bước trước chưa đầy đủ, đề nghị bổ sung ý kiến thẩm định",
            }
        if move is Move.CONSULT:
            return {
                "question": f"Đề nghị cho ý kiến về hồ sơ {self.procedure.name[:120]}",
                "documents": DOCUMENTS.get(self.procedure.field, ["Tờ khai"])[:2],
                "consulted_unit_codes": list(self.fate.consulted),
                "reply_working_days": self.reply_working_days(),
            }
        return None

    def record(self, move: Move, now: datetime) -> None:
        """Our model of the dossier after a move, and what the deadline's clock must show."""
        add = self.calendar.add_working_time
        self.done.add(move)
        if move is Move.HAND_OFF:
            # The demo's model hands on the branches of a parallel group one after the
            # other; each ran from the fork, and the clock's current step stays the group's
            # first until the last branch joins.
            stage, step = self.stage, self.step
            if step != stage[-1]:
                self.step += 1
                self.begin_step(self.step_started)
                self.expected, self.completed = ("running", stage[0]), step
            else:
                self.step += 1
                self.begin_step(now)
                self.expected = ("running", self.step)
        elif move is Move.RESULT:
            self.phase = Phase.PROCESSED
            self.return_at = add(now, timedelta(hours=self.rng.uniform(2, 24)))
            self.expected = ("completed", None)
        elif move in (Move.ASK_SUPPLEMENT, Move.ASK_PAYMENT):
            asked = move is Move.ASK_SUPPLEMENT
            self.phase = Phase.SUPPLEMENT if asked else Phase.OBLIGATION
            days = self.rng.randint(1, 4) if asked else self.rng.randint(1, 3)
            self.resume_at = add(now, timedelta(hours=8 * days - self.rng.uniform(0, 4)))
            self.expected = ("paused", None)
        elif move in (Move.SUPPLEMENT, Move.PAYMENT):
            self.phase = Phase.PROCESSING
            self.step_started = now  # what is left of the step's time counts from here
            self.expected = ("running", self.stage[0])
        elif move is Move.SEND_BACK:
            # The earlier step's unit works again, with a fresh due time from now (routing
            # and the deadline service; the dossier's own due time does not move).
            self.step -= 1
            self.begin_step(now)
            self.expected = ("running", self.step)
        elif move is Move.EXTENSION:
            self.apology_expected = True
        elif move is Move.RETURN:
            self.phase = Phase.RETURNED
        elif move is Move.WITHDRAW:
            self.phase = Phase.WITHDRAWN
            self.expected = ("closed", None)

    def lateness_pending(self, now: datetime) -> bool:
        """Whether the lateness scheduler still owes this running clock a detection at `now`:
        due soon, overdue, or its current step overdue (the same rules as its queries)."""
        c = self.clock
        if c.get("status") != "running":
            return False
        if parse_time(c["due_soon_at"]) <= now and c["due_soon_detected_at"] is None:
            return True
        if parse_time(c["due_at"]) < now and c["overdue_detected_at"] is None:
            return True
        return any(
            s["started_at"] is not None
            and s["completed_at"] is None
            and s["overdue_detected_at"] is None
            and parse_time(s["due_at"]) < now
            and parse_time(s["due_at"]) < parse_time(c["due_at"])
            for s in c["steps"]  # open steps: several while parallel steps run
        )

    def facts(self) -> str:
        c = self.clock
        keys = (
            "status",
            "due_at",
            "completed_at",
            "timeliness",
            "overdue_detected_at",
            "paused_at",
        )
        return ", ".join(f"{key} {c.get(key)}" for key in keys)


def procedure_weights(catalog: Catalog) -> list[float]:
    per_field = Counter(p.field for p in catalog.procedures)
    return [FIELD_WEIGHTS.get(p.field, 3) / per_field[p.field] for p in catalog.procedures]


def decide_consultation(rng: random.Random, procedure: Procedure, o: Options) -> tuple[str, ...]:
    """Which units the first step's unit of an inter-agency dossier consults: one or two of
    the others in its process (its own seeded generator: the other fates stay as they were)."""
    asks, two = rng.random(), rng.random()
    others = sorted(procedure.step_units - {procedure.steps[0].unit})
    if not others or asks >= o.consult_share:
        return ()
    return tuple(rng.sample(others, 2 if two < 0.4 and len(others) > 1 else 1))


def decide_send_back(rng: random.Random, procedure: Procedure, o: Options) -> int | None:
    """Now and then a unit sends the dossier back to the step before its own, when both are
    lone steps (not a parallel group): the step, or None (its own seeded generator)."""
    sends, pick = rng.random(), rng.random()
    steps = procedure.steps
    eligible = [
        i + 1
        for i in range(1, len(steps))
        if steps[i].parallel is None and steps[i - 1].parallel is None
    ]
    if not eligible or sends >= o.send_back_share:
        return None
    return eligible[int(pick * len(eligible))]


def decide_fate(rng: random.Random, procedure: Procedure, withdraw: bool, o: Options) -> Fate:
    if withdraw:
        return Fate(withdraw=True)
    steps = len(procedure.steps)
    # Every draw is made whatever the outcome, so one choice never shifts the others.
    supplement, obligation, late, past_due, extension = (rng.random() for _ in range(5))
    late_step = rng.randint(1, steps)
    is_late = late < o.late_share
    is_past_due = is_late and (late_step == steps or past_due < o.past_due_share)
    return Fate(
        late_step=late_step if is_late else None,
        past_due=is_past_due,
        extension=is_past_due and extension < o.extension_share,
        supplement=supplement < o.supplement_share,
        obligation=any(s.unit == TAX for s in procedure.steps) and obligation < o.obligation_share,
    )
