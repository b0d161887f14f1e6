"""Lifecycle commands from counters and processing units. Each one reads the dossier's state,
lets the domain decide, records the decision and emits its event, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace

from services.intake import consultations, domain
from services.intake.domain import Decision, DossierState, Duty
from services.intake.repository import IntakeUnitOfWorkPort
from services.intake.schemas import (
    CommandResult,
    ConsultationOut,
    ConsultationReplyBody,
    ConsultationRequestBody,
    ConsultationRequestResult,
    ExtensionRequestBody,
    FinancialObligationBody,
    HandOffBody,
    ReasonBody,
    SendBackBody,
    SupplementRequestBody,
)
from shared.auth import Principal
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import Actor, DossierStatus, Event
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
    catalog: Catalog | None = None  # the units a consultation may ask
    consultation_working_days: float = 5.0

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

    async def request_consultation(
        self, code: str, body: ConsultationRequestBody, actor: Principal
    ) -> ConsultationRequestResult:
        """Lấy ý kiến: one consultation per consulted unit, each due in its own working days."""
        days = body.reply_working_days or self.consultation_working_days
        catalog = self.catalog
        async with self.unit_of_work() as uow:
            state = await uow.ledger.lock(code)
            if state is None:
                raise UnknownDossier(f"no dossier with code {code}")
            domain.authorize(state, actor, Duty.HOLDER)
            _link_to_submission(state)
            now = self.clock()

            def reply_due(unit_code: str) -> datetime:
                calendar = self.calendars.of(unit_code)  # the consulted unit's own hours
                return calendar.add_working_time(
                    calendar.counting_start(now), timedelta(hours=8 * days)
                )

            event = consultations.request_consultation(
                state,
                body,
                actor,
                now,
                first_id=await uow.ledger.next_consultation_id(code),
                working_days=days,
                unit=catalog.unit if catalog else lambda _: None,
                reply_due=reply_due,
                tz=self.calendars.default.tz,
            )
            await uow.ledger.add_consultations(event)
            requester = event.requesting_unit_code
            result = await self._record(uow, code, state.status, event, actor, now, requester)
        return ConsultationRequestResult(
            **result.model_dump(),
            consultations=[ConsultationOut.model_validate(c.model_dump()) for c in event.consulted],
        )

    async def reply_consultation(
        self, code: str, consultation_id: int, body: ConsultationReplyBody, actor: Principal
    ) -> CommandResult:
        """The consulted unit's written opinion; late if after the reply due time."""
        catalog = self.catalog
        async with self.unit_of_work() as uow:
            state = await uow.ledger.lock(code)
            if state is None:
                raise UnknownDossier(f"no dossier with code {code}")
            consultation = await uow.ledger.consultation(code, consultation_id)
            if consultation is None:
                raise UnknownDossier(f"dossier {code} has no consultation {consultation_id}")
            _link_to_submission(state)
            now = self.clock()
            event = consultations.reply_consultation(
                state,
                consultation,
                body,
                actor,
                now,
                unit=catalog.unit if catalog else lambda _: None,
                tz=self.calendars.default.tz,
            )
            await uow.ledger.record_reply(event)
            result = await self._record(uow, code, state.status, event, actor, now, event.unit_code)
        return result

    async def _record(
        self,
        uow: IntakeUnitOfWorkPort,
        code: str,
        status: DossierStatus,
        event: Event,
        actor: Principal,
        now: datetime,
        unit_code: str,
    ) -> CommandResult:
        """An event that leaves the status as it is: on the timeline and the topic, committed."""
        event = event.model_copy(update={"actor": actor_of(actor)})
        await uow.ledger.append(event, now, unit_code)
        annotate_current_span(event)
        event_id = uow.emit(event, occurred_at=now)
        await uow.commit()
        return CommandResult(
            dossier_code=code,
            status=status,
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
