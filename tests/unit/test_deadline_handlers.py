"""The deadline service's handlers on an in-memory clock repository: the clock from the
receipt, step due times from routing's plan, hand-offs, completion, pauses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.deadline.handlers import Deadlines
from services.deadline.repository import ClockNotStarted
from shared.calendar import UnitCalendars, WorkingCalendar
from shared.catalog import Catalog
from shared.events import (
    ApologyIssued,
    ApologyTimeliness,
    DossierClockPaused,
    DossierClockResumed,
    DossierClockStarted,
    DossierCompleted,
    DossierRouted,
    Event,
    HandOffRecorded,
    OverdueDetected,
    PlannedStep,
    ReturnDatePromised,
    StepClocksStarted,
    StepCompleted,
    SupplementReceived,
    SupplementRequested,
    Timeliness,
)
from shared.messaging.parking import PrerequisiteMissing
from tests.factories import received_event
from tests.fakes.deadline import InMemoryDeadlineUnitOfWork
from tests.unit.conftest import hcmc

CODE = "000.00.00.H29-261123-0001"
DESK = "000.00.00.H29"  # where it was received
TRADE = "000.00.10.H29"  # Sở Công Thương, the competent unit of procedure 2.000647
POLICE = "000.20.01.H29"
RECEIVED_AT = hcmc(2026, 11, 23, 9, 30)  # a Monday
APPOINTMENT = hcmc(2026, 12, 8, 9, 30)  # ten working days later (24/11 is a day off)
NOW = hcmc(2026, 11, 23, 9, 31)
DAY = timedelta(hours=8)


@pytest.fixture
def deadlines(catalog: Catalog) -> Deadlines:
    return Deadlines(
        catalog=catalog, calendars=UnitCalendars(catalog), due_soon_lead=DAY, clock=lambda: NOW
    )


@pytest.fixture
def uow() -> InMemoryDeadlineUnitOfWork:
    return InMemoryDeadlineUnitOfWork()


def emitted(uow: InMemoryDeadlineUnitOfWork) -> list[Event]:
    """What the unit of work has emitted since the last call, once committed."""
    events = [p.event for p in uow.pending]
    uow.pending = []
    return events


def routed() -> DossierRouted:
    """Routing's plan for procedure 2.000647: trade, police, trade (50 %, 30 %, 20 %)."""
    return DossierRouted(
        dossier_code=CODE,
        procedure_code="2.000647",
        competent_unit_code=TRADE,
        current_unit_code=TRADE,
        steps=(
            PlannedStep(sequence=1, unit_code=TRADE, unit_name="", task="thẩm định", share=0.5),
            PlannedStep(sequence=2, unit_code=POLICE, unit_name="", task="PCCC", share=0.3),
            PlannedStep(sequence=3, unit_code=TRADE, unit_name="", task="cấp", share=0.2),
        ),
        routed_at=NOW,
    )


def hand_off(sequence: int, at: datetime) -> HandOffRecorded:
    units = {1: (TRADE, POLICE), 2: (POLICE, TRADE), 3: (TRADE, DESK)}
    from_unit, to_unit = units[sequence]
    return HandOffRecorded(
        dossier_code=CODE,
        step_sequence=sequence,
        from_unit_code=from_unit,
        to_unit_code=to_unit,
        official="Lê Văn Tư",
        step_started_at=RECEIVED_AT,
        handed_off_at=at,
        current_unit_code=to_unit,
        final=sequence == 3,
    )


async def started_and_routed(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork
) -> StepClocksStarted:
    received = received_event(CODE, received_at=RECEIVED_AT, appointment_at=APPOINTMENT)
    await deadlines.on_dossier_received(received, uow)
    await deadlines.on_dossier_routed(routed(), uow)
    [_, steps] = emitted(uow)
    assert isinstance(steps, StepClocksStarted)
    return steps


async def test_the_clock_starts_from_the_receipt_in_the_competent_units_calendar(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork, catalog: Catalog
) -> None:
    after_hours = hcmc(2026, 11, 23, 18, 0)
    received = received_event(CODE, received_at=after_hours, appointment_at=APPOINTMENT)
    await deadlines.on_dossier_received(received, uow)

    [started] = emitted(uow)
    assert isinstance(started, DossierClockStarted)
    calendar = UnitCalendars(catalog).of(TRADE)
    assert started.started_at == calendar.counting_start(after_hours)
    assert started.started_at == hcmc(2026, 11, 25, 7, 0)  # Tuesday 24/11 is a day off
    assert started.responsible_unit_code == TRADE  # the competent unit, not the desk
    assert started.due_at == APPOINTMENT  # what the citizen's receipt says
    assert calendar.working_time_between(started.due_soon_at, APPOINTMENT) == DAY
    clock = await uow.clocks.lock(CODE)
    assert (clock.status, clock.competent_unit_code) == ("running", TRADE)


async def test_routings_plan_gives_each_step_its_due_time_the_last_the_dossiers(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork, calendar: WorkingCalendar
) -> None:
    steps = await started_and_routed(deadlines, uow)

    assert [(s.sequence, s.unit_code) for s in steps.steps] == [
        (1, TRADE),
        (2, POLICE),
        (3, TRADE),
    ]
    allowed = calendar.working_time_between(RECEIVED_AT, APPOINTMENT)
    first, second, last = (s.due_at for s in steps.steps)
    assert calendar.working_time_between(RECEIVED_AT, first) == allowed * 0.5
    assert calendar.working_time_between(RECEIVED_AT, second) == allowed * 0.8
    assert last == APPOINTMENT
    assert await uow.clocks.open_steps(CODE) == list(steps.steps)


@pytest.mark.parametrize(
    ("moment", "verdict"),
    [
        (-timedelta(days=1), Timeliness.EARLY),  # before the due date
        (-timedelta(hours=1), Timeliness.ON_TIME),  # on the due date, by the due time
        (timedelta(hours=1), Timeliness.LATE),
    ],
)
async def test_a_hand_off_closes_its_step_early_on_time_or_late(
    deadlines: Deadlines,
    uow: InMemoryDeadlineUnitOfWork,
    moment: timedelta,
    verdict: Timeliness,
) -> None:
    steps = await started_and_routed(deadlines, uow)
    due = steps.steps[0].due_at
    await deadlines.on_hand_off_recorded(hand_off(1, due + moment), uow)

    [completed] = emitted(uow)
    assert completed == StepCompleted(
        dossier_code=CODE,
        step_sequence=1,
        unit_code=TRADE,
        completed_at=due + moment,
        due_at=due,
        timeliness=verdict,
    )
    clock = await uow.clocks.lock(CODE)
    # Police holds it now; a late step keeps its unit answerable for the dossier's lateness.
    answerable = TRADE if verdict is Timeliness.LATE else POLICE
    assert (clock.current_step, clock.responsible_unit_code) == (2, answerable)
    assert [s.sequence for s in await uow.clocks.open_steps(CODE)] == [2, 3]


async def test_the_unit_whose_step_overran_first_answers_for_the_late_dossier(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork
) -> None:
    """Police overran step 2, Justice then finishes late too: the overdue and the apology are
    Police's, not the holder's."""
    steps = await started_and_routed(deadlines, uow)
    first, second, _ = steps.steps
    await deadlines.on_hand_off_recorded(hand_off(1, first.due_at), uow)
    await deadlines.on_hand_off_recorded(hand_off(2, second.due_at + timedelta(hours=3)), uow)
    assert (await uow.clocks.lock(CODE)).responsible_unit_code == POLICE
    await deadlines.on_hand_off_recorded(hand_off(3, APPOINTMENT + timedelta(hours=1)), uow)

    events = emitted(uow)
    [overdue] = [e for e in events if isinstance(e, OverdueDetected)]
    [done] = [e for e in events if isinstance(e, DossierCompleted)]
    assert overdue.responsible_unit_code == done.responsible_unit_code == POLICE


async def test_the_final_hand_off_completes_the_clock(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork
) -> None:
    steps = await started_and_routed(deadlines, uow)
    for step in steps.steps:
        await deadlines.on_hand_off_recorded(hand_off(step.sequence, step.due_at), uow)

    events = emitted(uow)
    assert [type(e) for e in events] == [StepCompleted] * 3 + [DossierCompleted]
    done = events[-1]
    assert isinstance(done, DossierCompleted)
    assert (done.timeliness, done.due_at, done.responsible_unit_code) == (
        Timeliness.ON_TIME,
        APPOINTMENT,
        TRADE,
    )
    assert uow.clocks.clocks[CODE].status == "completed"


@pytest.mark.parametrize("detected_before", [False, True])
async def test_a_late_final_hand_off_is_overdue_first_unless_already_detected(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork, detected_before: bool
) -> None:
    await started_and_routed(deadlines, uow)
    late = APPOINTMENT + timedelta(hours=2)
    if detected_before:  # the scheduler saw it first
        await uow.clocks.mark_overdue(CODE, APPOINTMENT)
    await deadlines.on_hand_off_recorded(hand_off(3, late), uow)

    events = emitted(uow)
    if detected_before:
        assert [type(e) for e in events] == [StepCompleted, DossierCompleted]
    else:
        assert [type(e) for e in events] == [StepCompleted, OverdueDetected, DossierCompleted]
        overdue = events[1]
        assert isinstance(overdue, OverdueDetected)
        assert (overdue.due_at, overdue.detected_at) == (APPOINTMENT, late)
        assert uow.clocks.clocks[CODE].overdue_detected_at == late
    done = events[-1]
    assert isinstance(done, DossierCompleted)
    assert done.timeliness is Timeliness.LATE


async def test_a_pause_then_a_resume_moves_every_open_step_by_the_working_time_paused(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork, calendar: WorkingCalendar
) -> None:
    steps = await started_and_routed(deadlines, uow)
    first = steps.steps[0]
    await deadlines.on_hand_off_recorded(hand_off(1, first.due_at), uow)
    paused_at, resumed_at = hcmc(2026, 11, 27, 14, 0), hcmc(2026, 12, 1, 10, 0)
    await deadlines.on_supplement_requested(
        SupplementRequested(
            dossier_code=CODE,
            unit_code=POLICE,
            official="Lê Văn Tư",
            reason="thiếu giấy tờ",
            missing_documents=("Bản sao CCCD",),
            requested_at=paused_at,
            supplement_due_at=hcmc(2026, 12, 11, 14, 0),
            request_number=1,
        ),
        uow,
    )
    await deadlines.on_supplement_received(
        SupplementReceived(dossier_code=CODE, received_at=resumed_at), uow
    )

    events = emitted(uow)
    assert [type(e) for e in events] == [StepCompleted, DossierClockPaused, DossierClockResumed]
    resumed = events[-1]
    assert isinstance(resumed, DossierClockResumed)
    # Fri 14:00–17:00 (3 h), Mon (8 h), Tue 07:00–10:00 (3 h)
    paused = timedelta(hours=14)
    assert resumed.paused_working_minutes == 14 * 60
    assert resumed.previous_due_at == APPOINTMENT
    assert resumed.due_at == hcmc(2026, 12, 10, 7, 30)  # Tue 09:30 plus 14 working hours
    assert calendar.working_time_between(APPOINTMENT, resumed.due_at) == paused
    assert [s.sequence for s in resumed.open_steps] == [2, 3]  # the closed step stays
    for before, after in zip(steps.steps[1:], resumed.open_steps, strict=True):
        assert calendar.working_time_between(before.due_at, after.due_at) == paused
    assert await uow.clocks.open_steps(CODE) == list(resumed.open_steps)
    clock = await uow.clocks.lock(CODE)
    assert (clock.status, clock.paused_working_seconds) == ("running", 14 * 3600)


async def test_a_plan_arriving_before_the_clock_waits_for_it(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork
) -> None:
    with pytest.raises(ClockNotStarted) as raised:
        await deadlines.on_dossier_routed(routed(), uow)

    assert isinstance(raised.value, PrerequisiteMissing)  # parked, not dead-lettered
    assert emitted(uow) == []


def apology(new_due_at: datetime) -> ApologyIssued:
    return ApologyIssued(
        dossier_code=CODE,
        unit_code=POLICE,
        signer_title="Giám đốc Công an Thành phố",
        letter_number="1/2026/XL-000.20.01.H29",
        reason="cần xác minh thêm",
        original_due_at=APPOINTMENT,
        new_due_at=new_due_at,
        issued_at=APPOINTMENT - DAY,
        delivered_by="email",
        timeliness=ApologyTimeliness.ON_TIME,
    )


async def test_the_apologys_new_return_date_is_a_deadline_of_its_own_set_once(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork, calendar: WorkingCalendar
) -> None:
    await started_and_routed(deadlines, uow)
    promised = APPOINTMENT + 3 * DAY
    await deadlines.on_apology_issued(apology(promised), uow)
    await deadlines.on_apology_issued(apology(promised + DAY), uow)  # redelivered, or a copy

    [event] = emitted(uow)
    assert isinstance(event, ReturnDatePromised)
    assert (event.unit_code, event.original_due_at, event.promised_at) == (
        POLICE,
        APPOINTMENT,
        promised,
    )
    assert calendar.working_time_between(event.due_soon_at, promised) == DAY  # the same lead
    stored = uow.clocks.clocks[CODE]
    assert (stored.promised_at, stored.promise_unit_code) == (promised, POLICE)
    assert stored.due_at == APPOINTMENT  # done or late is still judged by the receipt's date


async def test_a_dossier_already_done_has_no_promise_to_track(
    deadlines: Deadlines, uow: InMemoryDeadlineUnitOfWork
) -> None:
    steps = await started_and_routed(deadlines, uow)
    for step in steps.steps:
        await deadlines.on_hand_off_recorded(hand_off(step.sequence, step.due_at), uow)
    emitted(uow)
    await deadlines.on_apology_issued(apology(APPOINTMENT + DAY), uow)
    assert emitted(uow) == [] and uow.clocks.clocks[CODE].promised_at is None
