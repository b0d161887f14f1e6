"""Lifecycle commands from counters and processing units. Each one reads the dossier's state,
lets the domain decide, records the decision and emits its event, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace

from services.intake import domain
from services.intake.domain import Decision, DossierState
from services.intake.repository import IntakeUnitOfWorkPort
from services.intake.schemas import (
    CommandResult,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    ReasonBody,
    ResultReadyBody,
    SupplementRequestBody,
    UnitReasonBody,
)
from shared.calendar import UnitCalendars
from shared.telemetry import annotate_current_span, links_to


class UnknownDossier(Exception):
    pass


@dataclass(frozen=True)
class Commands:
    calendars: UnitCalendars
    unit_of_work: Callable[[], IntakeUnitOfWorkPort]
    clock: Callable[[], datetime]
    supplement_working_days: float

    async def perform(
        self, code: str, decide: Callable[[DossierState, datetime], Decision]
    ) -> CommandResult:
        async with self.unit_of_work() as uow:
            state = await uow.ledger.lock(code)
            if state is None:
                raise UnknownDossier(f"no dossier with code {code}")
            _link_to_submission(state)
            now = self.clock()
            decision = decide(state, now)
            await uow.ledger.update(code, status=decision.status, **decision.changes)
            await uow.ledger.append(decision.event, now, getattr(decision.event, "unit_code", None))
            annotate_current_span(decision.event)
            event_id = uow.emit(decision.event, occurred_at=now)
            await uow.commit()
        return CommandResult(
            dossier_code=code,
            status=decision.status,
            event_type=decision.event.TYPE,
            event_id=event_id,
            occurred_at=now,
        )

    async def hand_off(self, code: str, body: HandOffBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.request_hand_off(s, body, now))

    async def mark_result_ready(self, code: str, body: ResultReadyBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.report_result(s, body, now))

    async def request_supplement(self, code: str, body: SupplementRequestBody) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> Decision:
            calendar = self.calendars.of(body.unit_code)
            due = calendar.add_working_time(
                calendar.counting_start(now), timedelta(hours=8 * self.supplement_working_days)
            )
            return domain.request_supplement(state, body, now, supplement_due_at=due)

        return await self.perform(code, decide)

    async def receive_supplement(self, code: str) -> CommandResult:
        return await self.perform(code, domain.receive_supplement)

    async def request_financial_obligation(
        self, code: str, body: FinancialObligationBody
    ) -> CommandResult:
        return await self.perform(
            code, lambda s, now: domain.request_financial_obligation(s, body, now)
        )

    async def fulfil_financial_obligation(self, code: str) -> CommandResult:
        return await self.perform(code, domain.fulfil_financial_obligation)

    async def request_extension(self, code: str, body: ExtensionRequestBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.request_extension(s, body, now))

    async def return_result(self, code: str) -> CommandResult:
        return await self.perform(code, domain.return_result)

    async def withdraw(self, code: str, body: ReasonBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.withdraw(s, body, now))

    async def refuse(self, code: str, body: UnitReasonBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.refuse(s, body, now))

    async def stop_processing(self, code: str, body: UnitReasonBody) -> CommandResult:
        return await self.perform(code, lambda s, now: domain.stop_processing(s, body, now))


def _link_to_submission(state: DossierState) -> None:
    """Later actions are traces of their own, linked to the submission's trace."""
    span = trace.get_current_span()
    for link in links_to(state.submission_traceparent):
        span.add_link(link.context, link.attributes)
