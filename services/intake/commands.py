"""Lifecycle commands from counters and processing units. Each one reads the dossier's state,
lets the domain decide, records the decision and emits its event, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace

from services.intake import domain
from services.intake.domain import Decision, DossierState, Duty
from services.intake.repository import IntakeUnitOfWorkPort
from services.intake.schemas import (
    CommandResult,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    ReasonBody,
    SendBackBody,
    SupplementRequestBody,
)
from shared.auth import Principal
from shared.calendar import UnitCalendars
from shared.events import Actor
from shared.telemetry import annotate_current_span, links_to


class UnknownDossier(Exception):
    pass


def actor_of(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, unit_code=principal.unit_code)


@dataclass(frozen=True)
class Commands:
    calendars: UnitCalendars
    unit_of_work: Callable[[], IntakeUnitOfWorkPort]
    clock: Callable[[], datetime]
    supplement_working_days: float

    async def perform(
        self,
        code: str,
        actor: Principal,
        duty: Duty,
        decide: Callable[[DossierState, datetime], Decision],
    ) -> CommandResult:
        """Under the dossier's lock: the actor's right to act (Forbidden writes nothing), the
        domain's decision, its event (with the actor) and the new state, in one transaction."""
        async with self.unit_of_work() as uow:
            state = await uow.ledger.lock(code)
            if state is None:
                raise UnknownDossier(f"no dossier with code {code}")
            domain.authorize(state, actor, duty)
            _link_to_submission(state)
            now = self.clock()
            decision = decide(state, now)
            event = decision.event.model_copy(update={"actor": actor_of(actor)})
            await uow.ledger.update(code, status=decision.status, **decision.changes)
            await uow.ledger.append(event, now, getattr(event, "unit_code", None))
            annotate_current_span(event)
            event_id = uow.emit(event, occurred_at=now)
            await uow.commit()
        return CommandResult(
            dossier_code=code,
            status=decision.status,
            event_type=event.TYPE,
            event_id=event_id,
            occurred_at=now,
        )

    async def hand_off(self, code: str, body: HandOffBody, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.request_hand_off(s, body, actor, now)
        )

    async def send_back(self, code: str, body: SendBackBody, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.request_send_back(s, body, actor, now)
        )

    async def mark_result_ready(self, code: str, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.report_result(s, actor, now)
        )

    async def request_supplement(
        self, code: str, body: SupplementRequestBody, actor: Principal
    ) -> CommandResult:
        def decide(state: DossierState, now: datetime) -> Decision:
            calendar = self.calendars.of(state.current_unit_code or state.receiving_unit_code)
            due = calendar.add_working_time(
                calendar.counting_start(now), timedelta(hours=8 * self.supplement_working_days)
            )
            return domain.request_supplement(state, body, actor, now, supplement_due_at=due)

        return await self.perform(code, actor, Duty.HOLDER, decide)

    async def receive_supplement(self, code: str, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.DESK, lambda s, now: domain.receive_supplement(s, actor, now)
        )

    async def request_financial_obligation(
        self, code: str, body: FinancialObligationBody, actor: Principal
    ) -> CommandResult:
        return await self.perform(
            code,
            actor,
            Duty.HOLDER,
            lambda s, now: domain.request_financial_obligation(s, body, actor, now),
        )

    async def fulfil_financial_obligation(self, code: str, actor: Principal) -> CommandResult:
        return await self.perform(
            code,
            actor,
            Duty.DESK,
            lambda s, now: domain.fulfil_financial_obligation(s, actor, now),
        )

    async def request_extension(
        self, code: str, body: ExtensionRequestBody, actor: Principal
    ) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.request_extension(s, body, actor, now)
        )

    async def return_result(self, code: str, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.DESK, lambda s, now: domain.return_result(s, actor, now)
        )

    async def withdraw(self, code: str, body: ReasonBody, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.DESK, lambda s, now: domain.withdraw(s, body, actor, now)
        )

    async def refuse(self, code: str, body: ReasonBody, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.refuse(s, body, actor, now)
        )

    async def stop_processing(self, code: str, body: ReasonBody, actor: Principal) -> CommandResult:
        return await self.perform(
            code, actor, Duty.HOLDER, lambda s, now: domain.stop_processing(s, body, actor, now)
        )


def _link_to_submission(state: DossierState) -> None:
    """Later actions are traces of their own, linked to the submission's trace."""
    span = trace.get_current_span()
    for link in links_to(state.submission_traceparent):
        span.add_link(link.context, link.attributes)
