"""Parallel steps (fork and join) and send-backs: the catalog's groups, routing's rules, the
step clocks. Pure rules, and the deadline handler on its in-memory repository."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.deadline.domain import sent_back_dues, stage_fractions, step_due_times
from services.deadline.handlers import Deadlines
from services.intake.domain import DossierState, Duty, authorize
from services.routing.domain import (
    RouteState,
    decide_hand_off,
    decide_send_back,
    route,
    stages_of,
)
from shared.auth import Forbidden, Principal, Role
from shared.calendar import UnitCalendars, WorkingCalendar
from shared.catalog import Catalog, plan_stages
from shared.events import (
    DossierRouted,
    DossierSentBack,
    DossierStatus,
    HandOffRecorded,
    HandOffRejected,
    HandOffRequested,
    SendBackRejected,
    SendBackRequested,
    StepClocksRestarted,
)
from tests.factories import received_event
from tests.fakes.deadline import InMemoryDeadlineUnitOfWork
from tests.unit.conftest import hcmc

WARD, POLICE, INSURANCE, DESK = "000.41.04.H29", "000.20.14.H29", "000.31.01.H29", "000.41.04.H29"
CODE = "000.41.04.H29-261201-0001"
NOW = hcmc(2026, 12, 1, 9, 0)
DAY = timedelta(hours=8)


# --- The catalog -----------------------------------------------------------------------------


def test_consecutive_steps_of_a_group_make_one_stage() -> None:
    assert plan_stages([None, "g", "g", None]) == ((0,), (1, 2), (3,))
    assert plan_stages([None, None]) == ((0,), (1,))
    assert plan_stages(["a", "a", "b", "b", "b"]) == ((0, 1), (2, 3, 4))


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([None, "g", None], "parallel group 'g' has one step; a group needs at least 2"),
        (["g", "g", None, "g"], "the steps of parallel group 'g' are not consecutive"),
    ],
)
def test_a_malformed_group_is_refused_naming_it(groups: list[str | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_stages(groups)


def test_1_012941_runs_residence_and_health_insurance_side_by_side(catalog: Catalog) -> None:
    procedure = catalog.procedure("1.012941")
    assert procedure is not None
    assert procedure.stages == ((0,), (1, 2), (3,))
    assert [procedure.steps[i].unit for i in procedure.stages[1]] == [POLICE, INSURANCE]
    assert procedure.shares_source == "assumed"


def _catalog_with(steps: list[dict[str, Any]], catalog: Catalog) -> Catalog:
    data = catalog.model_dump(mode="json")
    [birth] = [p for p in data["procedures"] if p["code"] == "1.012941"]
    birth["steps"] = steps
    return Catalog.model_validate(data)


def test_shares_add_up_along_the_process_a_group_counting_as_its_longest(
    catalog: Catalog,
) -> None:
    def step(unit: str, share: float, group: str | None = None) -> dict[str, Any]:
        return {"unit": unit, "task": "x", "share": share, "parallel": group}

    _catalog_with([step(WARD, 0.4), step(POLICE, 0.6, "g"), step(INSURANCE, 0.2, "g")], catalog)
    with pytest.raises(ValidationError, match=r"add up to 1\.2, not 1 \(a parallel group"):
        _catalog_with([step(WARD, 0.6), step(POLICE, 0.6, "g"), step(INSURANCE, 0.2, "g")], catalog)
    with pytest.raises(ValidationError, match="parallel group 'g' has one step"):
        _catalog_with([step(WARD, 0.4), step(POLICE, 0.6, "g")], catalog)


# --- Routing ---------------------------------------------------------------------------------


def _routed(catalog: Catalog) -> DossierRouted:
    received = received_event(
        CODE,
        received_at=NOW,
        appointment_at=NOW + 5 * DAY,
        procedure_code="1.012941",
        receiving_unit_code=DESK,
    )
    return route(received, catalog, routed_at=NOW)


def _state(catalog: Catalog, stage: int = 1, open_steps: tuple[int, ...] = (1,)) -> RouteState:
    routed = _routed(catalog)
    return RouteState(
        dossier_code=CODE,
        receiving_unit_code=DESK,
        competent_unit_code=routed.competent_unit_code,
        current_stage=stage,
        step_units=tuple(s.unit_code for s in routed.steps),
        step_stages=stages_of(routed.steps),
        open_steps=open_steps,
        stage_started_at=NOW,
    )


def _hand_off(unit: str, to: str | None) -> HandOffRequested:
    return HandOffRequested(
        dossier_code=CODE, from_unit_code=unit, to_unit_code=to, official="x", requested_at=NOW
    )


def test_the_plan_names_each_steps_group(catalog: Catalog) -> None:
    routed = _routed(catalog)
    assert [s.parallel_group for s in routed.steps] == [
        None,
        "after-birth-registration",
        "after-birth-registration",
        None,
    ]
    assert stages_of(routed.steps) == (1, 2, 2, 3)


def test_a_hand_off_into_a_fork_starts_every_branch(catalog: Catalog) -> None:
    recorded = decide_hand_off(_state(catalog), _hand_off(WARD, POLICE), NOW)
    assert isinstance(recorded, HandOffRecorded)
    assert recorded.step_sequence == 1
    assert recorded.started_steps == (2, 3)
    assert recorded.holders == (POLICE, INSURANCE)
    # Either branch unit may be named as the next one.
    assert isinstance(
        decide_hand_off(_state(catalog), _hand_off(WARD, INSURANCE), NOW), HandOffRecorded
    )


def test_a_branch_finishes_alone_and_the_last_one_joins(catalog: Catalog) -> None:
    fork = _state(catalog, stage=2, open_steps=(2, 3))
    first = decide_hand_off(fork, _hand_off(INSURANCE, WARD), NOW)
    assert isinstance(first, HandOffRecorded)
    assert (first.step_sequence, first.started_steps, first.holders) == (3, (), (POLICE,))
    assert not first.final
    last = decide_hand_off(_state(catalog, 2, (2,)), _hand_off(POLICE, WARD), NOW)
    assert isinstance(last, HandOffRecorded)
    assert (last.step_sequence, last.started_steps, last.holders) == (2, (4,), (WARD,))


@pytest.mark.parametrize(
    ("open_steps", "unit", "to", "reason"),
    [
        ((2,), INSURANCE, WARD, f"held by {POLICE}, not {INSURANCE}"),
        ((2, 3), POLICE, INSURANCE, f"the next step of the process is at {WARD}"),
        ((2, 3), POLICE, None, f"the process continues at {WARD}"),
    ],
)
def test_a_hand_off_against_the_fork_is_rejected_naming_why(
    catalog: Catalog, open_steps: tuple[int, ...], unit: str, to: str | None, reason: str
) -> None:
    rejected = decide_hand_off(_state(catalog, 2, open_steps), _hand_off(unit, to), NOW)
    assert isinstance(rejected, HandOffRejected)
    assert reason in rejected.reason


def _send_back(unit: str, to_step: int) -> SendBackRequested:
    return SendBackRequested(
        dossier_code=CODE,
        from_unit_code=unit,
        to_step_sequence=to_step,
        official="x",
        reason="sai thông tin",
        requested_at=NOW,
    )


def test_a_send_back_reopens_the_earlier_step_and_every_later_stage(catalog: Catalog) -> None:
    sent = decide_send_back(_state(catalog, 3, (4,)), _send_back(WARD, 2), NOW)
    assert isinstance(sent, DossierSentBack)
    assert (sent.from_step_sequence, sent.to_step_sequence, sent.to_unit_code) == (4, 2, POLICE)
    assert sent.reopened_steps == (2, 4)  # the insurance branch stays done
    assert sent.reason == "sai thông tin"
    # From an open branch, back to the first step: the whole fork is done again.
    sent = decide_send_back(_state(catalog, 2, (2, 3)), _send_back(POLICE, 1), NOW)
    assert isinstance(sent, DossierSentBack)
    assert sent.reopened_steps == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("state", "unit", "to_step", "reason"),
    [
        ((3, (4,)), WARD, 4, "step 4 is not earlier"),
        ((2, (2, 3)), POLICE, 3, "step 3 is not earlier"),
        ((3, (4,)), WARD, 9, "step 9 is not in the plan, which has steps 1 to 4"),
        ((3, (4,)), POLICE, 1, f"held by {WARD}, not {POLICE}"),
        ((4, ()), WARD, 1, "the result has already gone back to the desk"),
    ],
)
def test_a_send_back_against_the_plan_is_rejected_naming_why(
    catalog: Catalog, state: tuple[int, tuple[int, ...]], unit: str, to_step: int, reason: str
) -> None:
    rejected = decide_send_back(_state(catalog, *state), _send_back(unit, to_step), NOW)
    assert isinstance(rejected, SendBackRejected)
    assert reason in rejected.reason


# --- Step clocks -----------------------------------------------------------------------------


def test_parallel_steps_start_together_each_due_on_its_own_share() -> None:
    assert stage_fractions([0.2, 0.5, 0.3, 0.3], [1, 2, 2, 3]) == pytest.approx(
        [0.2, 0.7, 0.5, 1.0]
    )
    # Without groups: the cumulative shares, as before.
    assert stage_fractions([0.5, 0.3, 0.2], [1, 2, 3]) == pytest.approx([0.5, 0.8, 1.0])


def test_step_due_times_of_a_fork(catalog: Catalog, calendar: WorkingCalendar) -> None:
    started, appointed = hcmc(2026, 12, 1, 8, 0), hcmc(2026, 12, 8, 8, 0)  # 5 working days
    dues = step_due_times(
        _routed(catalog).steps,
        started_at=started,
        appointed_at=appointed,
        due_at=appointed,
        paused=timedelta(),
        calendar=calendar,
    )
    assert [d.due_at for d in dues] == [
        hcmc(2026, 12, 2, 8, 0),  # 1 day (0.2)
        hcmc(2026, 12, 4, 14, 0),  # 1 + 2.5 days (0.5)
        hcmc(2026, 12, 3, 14, 0),  # 1 + 1.5 days (0.3), from the same start
        appointed,
    ]


def test_a_step_sent_back_to_gets_its_share_again_from_the_send_back(
    calendar: WorkingCalendar,
) -> None:
    dues = sent_back_dues(
        [(2, 0.5, 2), (4, 0.3, 3)],
        sent_back_at=hcmc(2026, 12, 7, 8, 0),  # a Monday
        allowed=5 * DAY,
        allotment=1.0,
        calendar=calendar,
    )
    assert dues == [(2, hcmc(2026, 12, 9, 14, 0)), (4, hcmc(2026, 12, 11, 8, 0))]
    halved = sent_back_dues(
        [(2, 0.5, 2)],
        sent_back_at=hcmc(2026, 12, 7, 8, 0),
        allowed=5 * DAY,
        allotment=0.5,
        calendar=calendar,
    )
    assert halved == [(2, hcmc(2026, 12, 8, 10, 0))]  # a quarter: 1.25 days


async def test_the_deadline_service_restarts_the_steps_sent_back(catalog: Catalog) -> None:
    deadlines = Deadlines(
        catalog=catalog, calendars=UnitCalendars(catalog), due_soon_lead=DAY, clock=lambda: NOW
    )
    uow = InMemoryDeadlineUnitOfWork()
    received = received_event(
        CODE,
        received_at=NOW,
        appointment_at=hcmc(2026, 12, 8, 9, 0),
        procedure_code="1.012941",
        receiving_unit_code=DESK,
    )
    await deadlines.on_dossier_received(received, uow)
    await deadlines.on_dossier_routed(_routed(catalog), uow)
    steps = uow.clocks.steps[CODE]
    assert {n for n, s in steps.items() if s.started_at} == {1}
    into_fork = decide_hand_off(_state(catalog), _hand_off(WARD, POLICE), NOW)
    assert isinstance(into_fork, HandOffRecorded)
    await deadlines.on_hand_off_recorded(into_fork, uow)
    assert {n for n, s in steps.items() if s.started_at and not s.completed_at} == {2, 3}
    uow.pending = []
    back_at = hcmc(2026, 12, 2, 9, 0)
    sent = DossierSentBack(
        dossier_code=CODE,
        from_step_sequence=2,
        from_unit_code=POLICE,
        to_step_sequence=1,
        to_unit_code=WARD,
        official="x",
        reason="sai",
        reopened_steps=(1, 2, 3, 4),
        requested_at=back_at,
        sent_back_at=back_at,
    )
    await deadlines.on_dossier_sent_back(sent, uow)
    [restarted] = [p.event for p in uow.pending]
    assert isinstance(restarted, StepClocksRestarted)
    assert restarted.steps[0].due_at == hcmc(2026, 12, 3, 9, 0)  # its 0.2 of 5 days: 1 day
    assert {n for n, s in steps.items() if s.started_at} == {1}
    assert all(s.completed_at is None for s in steps.values())
    assert uow.clocks.clocks[CODE].responsible_unit_code == WARD


def test_every_unit_holding_a_branch_may_act_and_no_other() -> None:
    state = DossierState(
        code=CODE,
        status=DossierStatus.PROCESSING,
        receiving_unit_code=DESK,
        current_unit_code=POLICE,
        supplement_requests=0,
        submission_traceparent=None,
        holding_unit_codes=(POLICE, INSURANCE),
    )
    for unit in (POLICE, INSURANCE):
        authorize(state, _official(unit), Duty.HOLDER)
    with pytest.raises(Forbidden, match=f"held by unit {POLICE} and {INSURANCE}"):
        authorize(state, _official(WARD), Duty.HOLDER)


def _official(unit: str) -> Principal:
    return Principal(
        subject="s", username="u", name="n", unit_code=unit, roles=frozenset({Role.UNIT_OFFICER})
    )
