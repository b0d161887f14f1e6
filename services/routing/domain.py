"""Routing rules: competence decides the unit, not the place of filing. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime

from shared.calendar import UnitCalendars, WorkingCalendar
from shared.catalog import Catalog, Procedure
from shared.events import DossierReceived, DossierRouted, PlannedStep


class UnknownProcedure(Exception):
    pass


def plan_steps(
    procedure: Procedure,
    catalog: Catalog,
    calendar: WorkingCalendar,
    received_at: datetime,
    due_at: datetime,
) -> tuple[PlannedStep, ...]:
    """Each step is due when its cumulative share of the working time has run out; the last
    step is due when the dossier is (the date the citizen holds)."""
    start = calendar.counting_start(received_at)
    total = calendar.working_time_between(start, due_at)
    steps = []
    cumulative = 0.0
    for sequence, step in enumerate(procedure.steps, start=1):
        cumulative += step.share
        is_last = sequence == len(procedure.steps)
        step_due = (
            due_at if is_last else min(due_at, calendar.add_working_time(start, total * cumulative))
        )
        unit = catalog.unit(step.unit)
        assert unit is not None  # the catalog validates its references at load
        steps.append(
            PlannedStep(
                sequence=sequence,
                unit_code=unit.code,
                unit_name=unit.name,
                task=step.task,
                due_at=step_due,
            )
        )
    return tuple(steps)


def route(
    received: DossierReceived,
    catalog: Catalog,
    calendars: UnitCalendars,
    routed_at: datetime,
) -> DossierRouted:
    """The clock runs in the competent unit's calendar (its office hours)."""
    procedure = catalog.procedure(received.procedure_code)
    if procedure is None:
        raise UnknownProcedure(f"procedure {received.procedure_code} is not in the catalog")
    calendar = calendars.of(procedure.agency)
    steps = plan_steps(procedure, catalog, calendar, received.received_at, received.appointment_at)
    return DossierRouted(
        dossier_code=received.dossier_code,
        procedure_code=procedure.code,
        competent_unit_code=procedure.agency,
        current_unit_code=steps[0].unit_code,
        steps=steps,
        received_at=received.received_at,
        due_at=received.appointment_at,
        routed_at=routed_at,
    )
