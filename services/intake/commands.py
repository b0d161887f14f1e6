"""Lifecycle commands from counters and processing units. Each one checks the transition
against the dossier's state, records it and emits its event, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field

from services.intake.ledger import DossierState
from services.intake.repository import IntakeUnitOfWork
from shared import lifecycle
from shared.calendar import UnitCalendars
from shared.events import (
    DossierHandedOff,
    DossierProcessed,
    DossierRefused,
    DossierStatus,
    DossierWithdrawn,
    Event,
    ExtensionRequested,
    FinancialObligationFulfilled,
    FinancialObligationRequested,
    ProcessingStopped,
    ResultReturned,
    SupplementReceived,
    SupplementRequested,
)
from shared.lifecycle import Action
from shared.telemetry import annotate_current_span, links_to


class UnknownDossier(Exception):
    pass


class Conflict(Exception):
    """The command contradicts the dossier's state (a 409 for the caller)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Text = Field(min_length=1, max_length=2000)
Code = Field(min_length=1, max_length=32)


class HandOffBody(_Body):
    from_unit_code: str = Code
    to_unit_code: str = Code
    official: str = Field(min_length=1, max_length=200)


class SupplementRequestBody(_Body):
    unit_code: str = Code
    official: str = Field(min_length=1, max_length=200)
    reason: str = Text
    missing_documents: list[str] = Field(min_length=1, max_length=50)
    override_reason: str | None = Field(
        default=None,
        max_length=2000,
        description="required for a second request: guidance must be given once, completely",
    )


class FinancialObligationBody(_Body):
    unit_code: str = Code
    amount_vnd: int = Field(ge=0)


class ExtensionRequestBody(_Body):
    unit_code: str = Code
    official: str = Field(min_length=1, max_length=200)
    reason: str = Text


class ResultReadyBody(_Body):
    unit_code: str = Code
    official: str = Field(min_length=1, max_length=200)


class ReasonBody(_Body):
    reason: str = Text


class UnitReasonBody(_Body):
    unit_code: str = Code
    reason: str = Text


class EmptyBody(_Body):
    pass


class CommandResult(BaseModel):
    dossier_code: str
    status: DossierStatus
    event_type: str
    occurred_at: datetime


@dataclass(frozen=True)
class Commands:
    calendars: UnitCalendars
    unit_of_work: Callable[[], IntakeUnitOfWork]
    clock: Callable[[], datetime]
    supplement_working_days: float

    async def perform(
        self,
        code: str,
        action: Action,
        decide: Callable[[DossierState, datetime], tuple[Event, dict[str, object]]],
    ) -> CommandResult:
        async with self.unit_of_work() as uow:
            state = await uow.ledger.lock(code)
            if state is None:
                raise UnknownDossier(f"no dossier with code {code}")
            _link_to_submission(state)
            status = lifecycle.apply(state.status, action)
            now = self.clock()
            event, changes = decide(state, now)
            await uow.ledger.update(code, status=status, **changes)
            await uow.ledger.append(event, now, getattr(event, "unit_code", None))
            annotate_current_span(event)
            uow.emit(event, occurred_at=now)
            await uow.commit()
        return CommandResult(
            dossier_code=code, status=status, event_type=event.TYPE, occurred_at=now
        )

    async def hand_off(self, code: str, body: HandOffBody) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> tuple[Event, dict[str, object]]:
            step = _current_step(state)
            _require_holder(state, body.from_unit_code)
            if step >= len(state.step_units):
                raise Conflict(
                    f"{body.from_unit_code} holds the last step: mark the result ready instead"
                )
            expected = state.step_units[step]
            if body.to_unit_code != expected:
                raise Conflict(
                    f"the next step of the process is at {expected}, not {body.to_unit_code}"
                )
            event = DossierHandedOff(
                dossier_code=code,
                from_unit_code=body.from_unit_code,
                to_unit_code=body.to_unit_code,
                official=body.official,
                handed_off_at=now,
            )
            return event, {"current_unit_code": body.to_unit_code, "current_step": step + 1}

        return await self.perform(code, Action.HAND_OFF, decide)

    async def request_supplement(self, code: str, body: SupplementRequestBody) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> tuple[Event, dict[str, object]]:
            if state.supplement_requests >= 1 and not body.override_reason:
                raise Conflict(
                    "a supplement was already requested once; guidance must be given once,"
                    " completely (give override_reason to record why a second one is needed)"
                )
            calendar = self.calendars.of(body.unit_code)
            deadline = calendar.add_working_time(
                calendar.counting_start(now),
                timedelta(hours=8 * self.supplement_working_days),
            )
            event = SupplementRequested(
                dossier_code=code,
                unit_code=body.unit_code,
                official=body.official,
                reason=body.reason,
                missing_documents=tuple(body.missing_documents),
                requested_at=now,
                supplement_due_at=deadline,
                request_number=state.supplement_requests + 1,
                override_reason=body.override_reason,
            )
            return event, {
                "supplement_requests": state.supplement_requests + 1,
                "paused_since": now,
            }

        return await self.perform(code, Action.REQUEST_SUPPLEMENT, decide)

    async def receive_supplement(self, code: str) -> CommandResult:
        return await self.perform(
            code,
            Action.RECEIVE_SUPPLEMENT,
            lambda _, now: (SupplementReceived(dossier_code=code, received_at=now), {}),
        )

    async def request_financial_obligation(
        self, code: str, body: FinancialObligationBody
    ) -> CommandResult:
        def decide(_: DossierState, now: datetime) -> tuple[Event, dict[str, object]]:
            event = FinancialObligationRequested(
                dossier_code=code,
                unit_code=body.unit_code,
                amount_vnd=body.amount_vnd,
                requested_at=now,
            )
            return event, {"paused_since": now}

        return await self.perform(code, Action.REQUEST_FINANCIAL_OBLIGATION, decide)

    async def fulfil_financial_obligation(self, code: str) -> CommandResult:
        return await self.perform(
            code,
            Action.FULFIL_FINANCIAL_OBLIGATION,
            lambda _, now: (FinancialObligationFulfilled(dossier_code=code, fulfilled_at=now), {}),
        )

    async def request_extension(self, code: str, body: ExtensionRequestBody) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> tuple[Event, dict[str, object]]:
            _require_holder(state, body.unit_code)
            event = ExtensionRequested(
                dossier_code=code,
                unit_code=body.unit_code,
                official=body.official,
                reason=body.reason,
                requested_at=now,
            )
            return event, {}

        return await self.perform(code, Action.REQUEST_EXTENSION, decide)

    async def mark_result_ready(self, code: str, body: ResultReadyBody) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> tuple[Event, dict[str, object]]:
            _require_holder(state, body.unit_code)
            if _current_step(state) < len(state.step_units):
                raise Conflict(
                    f"step {_current_step(state)} of {len(state.step_units)}: the process"
                    f" continues at {state.step_units[_current_step(state)]}"
                )
            event = DossierProcessed(
                dossier_code=code,
                unit_code=body.unit_code,
                official=body.official,
                processed_at=now,
            )
            return event, {"current_unit_code": state.receiving_unit_code}

        return await self.perform(code, Action.MARK_RESULT_READY, decide)

    async def return_result(self, code: str) -> CommandResult:
        return await self.perform(
            code,
            Action.RETURN_RESULT,
            lambda _, now: (ResultReturned(dossier_code=code, returned_at=now), {"closed_at": now}),
        )

    async def withdraw(self, code: str, body: ReasonBody) -> CommandResult:
        return await self.perform(
            code,
            Action.WITHDRAW,
            lambda _, now: (
                DossierWithdrawn(dossier_code=code, reason=body.reason, withdrawn_at=now),
                {"closed_at": now},
            ),
        )

    async def refuse(self, code: str, body: UnitReasonBody) -> CommandResult:
        return await self.perform(
            code,
            Action.REFUSE,
            lambda _, now: (
                DossierRefused(
                    dossier_code=code, unit_code=body.unit_code, reason=body.reason, refused_at=now
                ),
                {"closed_at": now},
            ),
        )

    async def stop_processing(self, code: str, body: UnitReasonBody) -> CommandResult:
        return await self.perform(
            code,
            Action.STOP_PROCESSING,
            lambda _, now: (
                ProcessingStopped(
                    dossier_code=code, unit_code=body.unit_code, reason=body.reason, stopped_at=now
                ),
                {"closed_at": now},
            ),
        )


def _current_step(state: DossierState) -> int:
    if state.current_step is None or not state.step_units:
        raise Conflict("the dossier is not routed yet; try again in a moment")
    return state.current_step


def _require_holder(state: DossierState, unit_code: str) -> None:
    if state.current_unit_code != unit_code:
        raise Conflict(f"the dossier is held by {state.current_unit_code}, not {unit_code}")


def _link_to_submission(state: DossierState) -> None:
    """Later actions are traces of their own, linked to the submission's trace."""
    span = trace.get_current_span()
    for link in links_to(state.submission_traceparent):
        span.add_link(link.context, link.attributes)
