"""Routing rules: competence decides the unit, not the place of filing; a hand-off follows the
plan from a unit that holds the dossier; parallel steps fork and join; a send-back returns the
dossier to an earlier step. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.catalog import Catalog, stage_numbers
from shared.events import (
    DossierReceived,
    DossierRouted,
    DossierSentBack,
    HandOffRecorded,
    HandOffRejected,
    HandOffRequested,
    PlannedStep,
    SendBackRejected,
    SendBackRequested,
)


class UnknownProcedure(Exception):
    pass


@dataclass(frozen=True)
class RouteState:
    """Who holds the dossier, since when, at which stage of which plan. A stage is one step,
    or a parallel group whose steps are open together until each has been handed off."""

    dossier_code: str
    receiving_unit_code: str
    competent_unit_code: str
    current_stage: int  # 1-based; len(stages) + 1 once the result went to the desk
    step_units: tuple[str, ...]
    step_stages: tuple[int, ...]  # the 1-based stage of each step
    open_steps: tuple[int, ...]  # the current stage's steps not handed off yet
    stage_started_at: datetime

    @property
    def stage_count(self) -> int:
        return max(self.step_stages)

    @property
    def done(self) -> bool:
        return self.current_stage > self.stage_count

    @property
    def holders(self) -> tuple[str, ...]:
        if self.done:
            return (self.receiving_unit_code,)
        return _distinct(self.step_units[s - 1] for s in self.open_steps)

    def steps_of(self, stage: int) -> tuple[int, ...]:
        return tuple(seq for seq, st in enumerate(self.step_stages, start=1) if st == stage)

    def units_of(self, stage: int) -> tuple[str, ...]:
        return _distinct(self.step_units[s - 1] for s in self.steps_of(stage))

    def held_step(self, unit_code: str) -> int | None:
        return next((s for s in self.open_steps if self.step_units[s - 1] == unit_code), None)


def _distinct(units: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(units))  # type: ignore[call-overload]


def stages_of(steps: tuple[PlannedStep, ...]) -> tuple[int, ...]:
    """The 1-based stage of each planned step."""
    return stage_numbers([s.parallel_group for s in steps])


def route(received: DossierReceived, catalog: Catalog, routed_at: datetime) -> DossierRouted:
    """The plan of the procedure's process: who does what, in which order (or side by side),
    with which share of the time (the deadline service turns shares into due times)."""
    procedure = catalog.procedure(received.procedure_code)
    if procedure is None:
        raise UnknownProcedure(f"procedure {received.procedure_code} is not in the catalog")
    steps = []
    for sequence, step in enumerate(procedure.steps, start=1):
        unit = catalog.unit(step.unit)
        assert unit is not None  # the catalog validates its references at load
        steps.append(
            PlannedStep(
                sequence=sequence,
                unit_code=unit.code,
                unit_name=unit.name,
                task=step.task,
                share=step.share,
                parallel_group=step.parallel,
            )
        )
    return DossierRouted(
        dossier_code=received.dossier_code,
        procedure_code=procedure.code,
        competent_unit_code=procedure.agency,
        current_unit_code=steps[0].unit_code,
        steps=tuple(steps),
        routed_at=routed_at,
    )


def decide_hand_off(
    state: RouteState, request: HandOffRequested, now: datetime
) -> HandOffRecorded | HandOffRejected:
    """Record the hand-off if it follows the plan from a unit that holds the dossier. A
    parallel step's hand-off finishes that branch; the last branch's joins: the next stage
    starts (or, after the last stage, the result goes to the desk)."""
    reason = _why_not(state, request)
    if reason is not None:
        return HandOffRejected(
            dossier_code=state.dossier_code,
            from_unit_code=request.from_unit_code,
            to_unit_code=request.to_unit_code,
            official=request.official,
            reason=reason,
            requested_at=request.requested_at,
            rejected_at=now,
        )
    step = state.held_step(request.from_unit_code)
    assert step is not None  # _why_not checked it
    remaining = tuple(s for s in state.open_steps if s != step)
    final = False
    started: tuple[int, ...] = ()
    if remaining:  # other branches still open: no join yet
        holders = _distinct(state.step_units[s - 1] for s in remaining)
    elif request.result_ready:
        final, holders = True, (state.receiving_unit_code,)
    else:
        started = state.steps_of(state.current_stage + 1)
        holders = state.units_of(state.current_stage + 1)
    return HandOffRecorded(
        dossier_code=state.dossier_code,
        step_sequence=step,
        from_unit_code=request.from_unit_code,
        to_unit_code=request.to_unit_code or state.receiving_unit_code,
        official=request.official,
        step_started_at=state.stage_started_at,
        handed_off_at=request.requested_at,
        current_unit_code=holders[0],
        final=final,
        current_unit_codes=holders,
        started_steps=started,
    )


def _why_not(state: RouteState, request: HandOffRequested) -> str | None:
    if state.done:
        return "the result has already gone back to the desk"
    if state.held_step(request.from_unit_code) is None:
        return f"the dossier is held by {', '.join(state.holders)}, not {request.from_unit_code}"
    last = state.current_stage == state.stage_count
    if request.result_ready and not last:
        return (
            f"stage {state.current_stage} of {state.stage_count}: the process continues at"
            f" {' and '.join(state.units_of(state.current_stage + 1))}"
        )
    if not request.result_ready:
        if last:
            return f"{request.from_unit_code} holds a last step: report the result instead"
        expected = state.units_of(state.current_stage + 1)
        if request.to_unit_code not in expected:
            return (
                f"the next step of the process is at {' or '.join(expected)},"
                f" not {request.to_unit_code}"
            )
    return None


def decide_send_back(
    state: RouteState, request: SendBackRequested, now: datetime
) -> DossierSentBack | SendBackRejected:
    """A unit holding a step sends the dossier back to a step of an earlier stage: that step
    and every later stage are done again; open parallel steps close with it."""
    reason = _why_not_send_back(state, request)
    if reason is not None:
        return SendBackRejected(
            dossier_code=state.dossier_code,
            from_unit_code=request.from_unit_code,
            to_step_sequence=request.to_step_sequence,
            official=request.official,
            reason=reason,
            requested_at=request.requested_at,
            rejected_at=now,
        )
    step = state.held_step(request.from_unit_code)
    assert step is not None
    target = request.to_step_sequence
    stage = state.step_stages[target - 1]
    later = tuple(s for s, st in enumerate(state.step_stages, start=1) if st > stage)
    reopened = (target, *later)
    return DossierSentBack(
        dossier_code=state.dossier_code,
        from_step_sequence=step,
        from_unit_code=request.from_unit_code,
        to_step_sequence=target,
        to_unit_code=state.step_units[target - 1],
        official=request.official,
        reason=request.reason,
        reopened_steps=reopened,
        requested_at=request.requested_at,
        sent_back_at=request.requested_at,
    )


def _why_not_send_back(state: RouteState, request: SendBackRequested) -> str | None:
    if state.done:
        return "the result has already gone back to the desk"
    if state.held_step(request.from_unit_code) is None:
        return f"the dossier is held by {', '.join(state.holders)}, not {request.from_unit_code}"
    target, steps = request.to_step_sequence, len(state.step_units)
    if not 1 <= target <= steps:
        return f"step {target} is not in the plan, which has steps 1 to {steps}"
    if state.step_stages[target - 1] >= state.current_stage:
        return f"step {target} is not earlier than the steps open now: only an earlier one can"
    return None
