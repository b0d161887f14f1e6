"""Routing rules: competence decides the unit, not the place of filing; a hand-off follows the
plan from the unit that holds the dossier. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.catalog import Catalog
from shared.events import (
    DossierReceived,
    DossierRouted,
    HandOffRecorded,
    HandOffRejected,
    HandOffRequested,
    PlannedStep,
)


class UnknownProcedure(Exception):
    pass


@dataclass(frozen=True)
class RouteState:
    """Who holds the dossier, since when, at which step of which plan."""

    dossier_code: str
    receiving_unit_code: str
    competent_unit_code: str
    current_step: int  # 1-based; len(step_units) + 1 once the result went to the desk
    step_units: tuple[str, ...]
    step_started_at: datetime

    @property
    def holder(self) -> str:
        if self.current_step > len(self.step_units):
            return self.receiving_unit_code
        return self.step_units[self.current_step - 1]

    @property
    def at_last_step(self) -> bool:
        return self.current_step == len(self.step_units)


def route(received: DossierReceived, catalog: Catalog, routed_at: datetime) -> DossierRouted:
    """The plan of the procedure's process: who does what, in which order, with which share
    of the time (the deadline service turns shares into due times)."""
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
    """Record the hand-off if it follows the plan from the unit that holds the dossier."""
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
    final = request.result_ready
    to = state.receiving_unit_code if final else state.step_units[state.current_step]
    return HandOffRecorded(
        dossier_code=state.dossier_code,
        step_sequence=state.current_step,
        from_unit_code=state.holder,
        to_unit_code=to,
        official=request.official,
        step_started_at=state.step_started_at,
        handed_off_at=request.requested_at,
        current_unit_code=to,
        final=final,
    )


def _why_not(state: RouteState, request: HandOffRequested) -> str | None:
    steps = len(state.step_units)
    if state.current_step > steps:
        return "the result has already gone back to the desk"
    if request.from_unit_code != state.holder:
        return f"the dossier is held by {state.holder}, not {request.from_unit_code}"
    if request.result_ready and not state.at_last_step:
        return (
            f"step {state.current_step} of {steps}: the process continues at"
            f" {state.step_units[state.current_step]}"
        )
    if not request.result_ready:
        if state.at_last_step:
            return f"{state.holder} holds the last step: report the result instead"
        expected = state.step_units[state.current_step]
        if request.to_unit_code != expected:
            return f"the next step of the process is at {expected}, not {request.to_unit_code}"
    return None
