"""The notifier's handlers: every dossier that will be late, or is late, gets exactly one
apology (Mẫu 04). At due-soon the unit at fault gets a draft to complete (reason, new date);
its head approves and signs it. If the due date comes first, the head and the operators are
alerted and the city issues the letter on the unit's behalf, recorded as late.

Issuing a letter records it (number, timeliness, content) in the handler's transaction; its PDF
is laid out and signed afterwards by the rendering worker (rendering.py), so that an alert
never waits for a PDF.

Due-soon and overdue detections come by the thousand when a backlog falls due at once: within
a consumed batch they are put off and applied together, a few statements for the whole set,
before any other event of the batch and at commit (`_lateness`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.metrics import Counter as MetricCounter

from services.notifier.domain import (
    DEFAULT_REASON,
    HEAD_FALLBACK,
    DraftClosed,
    DraftIncomplete,
    apology_obligation,
    apology_timeliness,
    check_new_date,
    compose_apology,
    letter_number,
    new_appointment,
    open_draft,
)
from services.notifier.letters import (
    Addressee,
    IssuingUnit,
    render_html,
)
from services.notifier.notices import (
    CitizenNotice,
    NoticeKind,
    notice_number,
    render_notice_html,
    render_notice_pdf,
)
from services.notifier.repository import (
    Draft,
    IssuedApology,
    IssuedNotice,
    NewAlert,
    NotifierUnitOfWorkPort,
    StoredAddressee,
)
from services.notifier.signing import CITY
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    AlertKind,
    AlertRaised,
    ApologyIssued,
    ApologyTimeliness,
    ApplicantDetailsRecorded,
    ConsultationReplyOverdueDetected,
    DossierClockResumed,
    DossierClockStarted,
    DossierProcessed,
    DossierReceived,
    DossierReceivedV1,
    DossierRefused,
    DossierWithdrawn,
    DueSoonDetected,
    Event,
    ExtensionRequested,
    OverdueDetected,
    ProcessingStopped,
    PromiseBrokenDetected,
    PromisedDateDueSoonDetected,
    ResultReturned,
    StepOverdueDetected,
    SupplementDeadlineMissed,
    SupplementRequested,
)

Handler = Callable[[Any, Any], Awaitable[None]]  # (event, unit of work), as the consumer's
Lateness = DueSoonDetected | OverdueDetected
DossierEnd = ResultReturned | DossierWithdrawn | DossierRefused | ProcessingStopped


def ended_at(event: DossierEnd) -> datetime:
    match event:
        case ResultReturned():
            return event.returned_at
        case DossierWithdrawn():
            return event.withdrawn_at
        case DossierRefused():
            return event.refused_at
        case ProcessingStopped():
            return event.stopped_at


class DraftNotFound(LookupError):
    """No draft apology for the dossier: it is not due soon, or not on the clock."""


@dataclass(frozen=True)
class Notifier:
    catalog: Catalog
    calendars: UnitCalendars
    clock: Callable[[], datetime]
    operators: tuple[str, ...]
    extension: timedelta  # the city's new date, when it issues the letter for a unit
    new_date_limit: timedelta  # how late a unit may set its new date, after the due date
    email_enabled: bool
    sms_enabled: bool
    apologies_issued: MetricCounter

    async def on_dossier_received(
        self, event: DossierReceived, uow: NotifierUnitOfWorkPort
    ) -> None:
        await uow.notices.add_addressee(event)
        if isinstance(event, DossierReceivedV1):  # published before v2: the applicant in it
            await uow.notices.add_applicant(event.dossier_code, event.applicant)

    async def on_applicant_recorded(
        self, event: ApplicantDetailsRecorded, uow: NotifierUnitOfWorkPort
    ) -> None:
        await uow.notices.add_applicant(event.dossier_code, event.applicant)

    async def on_dossier_ended(self, event: DossierEnd, uow: NotifierUnitOfWorkPort) -> None:
        """Returned, withdrawn, refused or stopped: the retention of personal data starts."""
        await uow.notices.dossier_ended(event.dossier_code, ended_at(event))

    async def on_supplement_requested(
        self, event: SupplementRequested, uow: NotifierUnitOfWorkPort
    ) -> None:
        """Mẫu 02: what is missing, why, and by when."""
        await self._notify(
            uow,
            event.dossier_code,
            NoticeKind.SUPPLEMENT_REQUEST,
            event.unit_code,
            key=str(event.request_number),
            reason=event.reason,
            missing_documents=event.missing_documents,
            due_at=event.supplement_due_at,
        )

    async def on_dossier_refused(self, event: DossierRefused, uow: NotifierUnitOfWorkPort) -> None:
        """Mẫu 03, with the reasons; the dossier has ended."""
        await self._notify(
            uow, event.dossier_code, NoticeKind.REFUSAL, event.unit_code, reason=event.reason
        )
        await self.on_dossier_ended(event, uow)

    async def on_processing_stopped(
        self, event: ProcessingStopped, uow: NotifierUnitOfWorkPort
    ) -> None:
        """Mẫu 05, with the reasons; the dossier has ended."""
        await self._notify(
            uow,
            event.dossier_code,
            NoticeKind.PROCESSING_STOPPED,
            event.unit_code,
            reason=event.reason,
        )
        await self.on_dossier_ended(event, uow)

    async def on_dossier_processed(
        self, event: DossierProcessed, uow: NotifierUnitOfWorkPort
    ) -> None:
        """The result is ready: the applicant may collect it at the desk."""
        await self._notify(uow, event.dossier_code, NoticeKind.RESULT_READY, event.unit_code)

    async def on_supplement_missed(
        self, event: SupplementDeadlineMissed, uow: NotifierUnitOfWorkPort
    ) -> None:
        """The holding unit may refuse the dossier (POST /v1/dossiers/{code}/refusal)."""
        kind = AlertKind.REFUSAL_PROPOSED if event.refusal_proposed else AlertKind.SUPPLEMENT_MISSED
        await self._alert(uow, event.dossier_code, kind, event.unit_code)

    async def on_consultation_reply_overdue(
        self, event: ConsultationReplyOverdueDetected, uow: NotifierUnitOfWorkPort
    ) -> None:
        """A reminder to the consulted unit's head, and the operators alerted: one alert per
        consultation (its id in the alert's step)."""
        await self._alert(
            uow,
            event.dossier_code,
            AlertKind.CONSULTATION_REPLY_OVERDUE,
            event.unit_code,
            event.consultation_id,
        )

    async def _notify(
        self,
        uow: NotifierUnitOfWorkPort,
        code: str,
        kind: NoticeKind,
        unit_code: str,
        *,
        key: str = "",
        reason: str | None = None,
        missing_documents: tuple[str, ...] = (),
        due_at: datetime | None = None,
    ) -> None:
        addressee = await uow.notices.addressee(code)
        now = self.clock()
        year = now.astimezone(self.calendars.of(unit_code).tz).year
        number = notice_number(
            await uow.notices.next_letter_number(unit_code, year), unit_code, year, kind
        )
        unit = self.catalog.unit(unit_code)
        notice = CitizenNotice(
            kind=kind,
            issuing_unit=IssuingUnit(code=unit_code, name=unit.name if unit else unit_code),
            number=number,
            issued_at=now,
            addressee=Addressee(full_name=addressee.full_name, address=addressee.address),
            dossier_code=code,
            procedure_name=addressee.procedure_name,
            received_at=addressee.received_at,
            reason=reason,
            missing_documents=missing_documents,
            due_at=due_at,
            signer_title=unit.head_title if unit else HEAD_FALLBACK,
        )
        await uow.notices.add_notice(
            IssuedNotice(
                dossier_code=code,
                kind=kind.value,
                notice_key=key,
                letter_number=number,
                unit_code=unit_code,
                signer_title=notice.signer_title,
                reason=reason or "",
                issued_at=now,
                channel=self._channel_for(addressee.email, addressee.phone),
                letter=notice.model_dump(mode="json"),
                html=render_notice_html(notice),
                pdf=render_notice_pdf(notice),
            )
        )

    async def on_clock_started(
        self, event: DossierClockStarted, uow: NotifierUnitOfWorkPort
    ) -> None:
        obligation = apology_obligation(event, self.catalog)
        await uow.notices.add_obligation(obligation)
        uow.emit(obligation, occurred_at=self.clock())

    async def on_clock_resumed(
        self, event: DossierClockResumed, uow: NotifierUnitOfWorkPort
    ) -> None:
        """A pause moved the due date: what an apology would say moves with it."""
        await uow.notices.move_obligation(event.dossier_code, event.due_at, event.due_soon_at)

    async def on_due_soon(self, event: DueSoonDetected, uow: NotifierUnitOfWorkPort) -> None:
        """The unit at fault gets the alert and a draft apology to complete before the due
        date (Nghị định 61/2018/NĐ-CP art. 19(3), as amended by 107/2021/NĐ-CP)."""
        await self._lateness(event, uow)

    async def on_overdue(self, event: OverdueDetected, uow: NotifierUnitOfWorkPort) -> None:
        """The due date passed: if the unit did not sign its apology, its head and the
        operators are alerted and the city issues it on the unit's behalf, late."""
        await self._lateness(event, uow)

    def in_order(self, handler: Handler) -> Handler:
        """`handler`, applied after the lateness detections put off before it, so that every
        dossier's events apply in their order."""

        async def after_deferred(event: Any, uow: Any) -> None:
            if getattr(uow, "deferred", None):
                await self.apply_deferred(uow)
            await handler(event, uow)

        return after_deferred

    async def _lateness(self, event: Lateness, uow: NotifierUnitOfWorkPort) -> None:
        """A unit of work that can defer (the PostgreSQL one) collects the detections of a
        consumed batch, applied together before the next other event or at commit: a few
        statements per batch instead of several per dossier. Any other applies it now."""
        deferred: list[tuple[Lateness, otel_context.Context]] | None = getattr(
            uow, "deferred", None
        )
        if deferred is None:
            await self._apply_lateness([event], uow)
            return
        deferred.append((event, otel_context.get_current()))  # the record's trace, for its emits
        uow.apply_deferred = self.apply_deferred  # type: ignore[attr-defined]

    async def apply_deferred(self, uow: Any) -> None:
        """Apply the deferred detections in their order: each run of one kind, with no
        dossier twice, at once."""
        deferred, uow.deferred = uow.deferred, []
        run: list[tuple[Lateness, otel_context.Context]] = []
        for item in deferred:
            if run and (
                type(item[0]) is not type(run[0][0])
                or any(e.dossier_code == item[0].dossier_code for e, _ in run)
            ):
                await self._apply_lateness([e for e, _ in run], uow, [c for _, c in run])
                run = []
            run.append(item)
        if run:
            await self._apply_lateness([e for e, _ in run], uow, [c for _, c in run])

    async def _apply_lateness(
        self,
        events: list[Lateness],
        uow: NotifierUnitOfWorkPort,
        contexts: list[otel_context.Context] | None = None,
    ) -> None:
        """Events of one kind, each of another dossier."""
        if isinstance(events[0], DueSoonDetected):
            emits = await self._due_soon([e for e in events if isinstance(e, DueSoonDetected)], uow)
        else:
            emits = await self._overdue([e for e in events if isinstance(e, OverdueDetected)], uow)
        for index, events_of_one in enumerate(emits):
            token = otel_context.attach(contexts[index]) if contexts else None
            try:
                for emitted in events_of_one:
                    uow.emit(emitted, occurred_at=self.clock())
            finally:
                if token is not None:
                    otel_context.detach(token)

    async def _due_soon(
        self, events: list[DueSoonDetected], uow: NotifierUnitOfWorkPort
    ) -> list[list[Event]]:
        """Each dossier's alert and draft; what each emits, in the events' order."""
        now = self.clock()
        alerts = [
            self._new_alert(e.dossier_code, AlertKind.DUE_SOON, e.responsible_unit_code, now)
            for e in events
        ]
        raised = await uow.notices.add_alerts(alerts)
        issued = await uow.notices.with_apology([e.dossier_code for e in events])
        await uow.notices.add_drafts(
            [
                self._draft(e.dossier_code, e.responsible_unit_code, e.due_at, now)
                for e in events
                if e.dossier_code not in issued
            ]
        )
        return [self._raised(alert, raised) for alert in alerts]

    async def _overdue(
        self, events: list[OverdueDetected], uow: NotifierUnitOfWorkPort
    ) -> list[list[Event]]:
        """Each dossier's alert; the city's letter for those whose apology was not issued."""
        now = self.clock()
        codes = [e.dossier_code for e in events]
        alerts = [
            self._new_alert(e.dossier_code, AlertKind.OVERDUE, e.responsible_unit_code, now)
            for e in events
        ]
        raised = await uow.notices.add_alerts(alerts)
        drafts = await uow.notices.locked_drafts(codes)  # locked first, as the head's approval does
        issued = await uow.notices.with_apology(codes)
        late = [e for e in events if e.dossier_code not in issued]
        escalations = {
            e.dossier_code: self._new_alert(
                e.dossier_code, AlertKind.APOLOGY_ESCALATED, e.responsible_unit_code, now
            )
            for e in late
        }
        raised |= await uow.notices.add_alerts(list(escalations.values()))
        addressees = await uow.notices.addressees([e.dossier_code for e in late])
        numbers = await self._letter_numbers([e.responsible_unit_code for e in late], now, uow)
        letters: dict[str, tuple[IssuedApology, ApologyIssued]] = {}
        for event, number in zip(late, numbers, strict=True):
            code, unit = event.dossier_code, event.responsible_unit_code
            draft = drafts.get(code)
            new_due_at = new_appointment(self.calendars.of(unit), event.due_at, now, self.extension)
            reason = DEFAULT_REASON
            if draft is not None and draft.reason is not None:
                reason = draft.reason
            if draft is not None and draft.new_due_at is not None and draft.new_due_at > now:
                new_due_at = draft.new_due_at  # what the unit chose, if still ahead
            letters[code] = self._letter(
                addressees[code],
                code,
                unit,
                event.due_at,
                reason,
                new_due_at,
                number,
                now,
                on_behalf_of_city=True,
            )
        apologies = [apology for apology, _ in letters.values()]
        await uow.notices.add_apologies(apologies)
        self._count_issued(apologies)
        emits = []
        for alert in alerts:
            emitted = self._raised(alert, raised)
            if (escalation := escalations.get(alert.dossier_code)) is not None:
                emitted += self._raised(escalation, raised)
                emitted.append(letters[alert.dossier_code][1])
            emits.append(emitted)
        return emits

    async def _letter_numbers(
        self, units: list[str], now: datetime, uow: NotifierUnitOfWorkPort
    ) -> list[str]:
        """The next letter number of each unit's letter, in order (each counts in its year)."""
        years = [now.astimezone(self.calendars.of(unit).tz).year for unit in units]
        wanted = Counter(zip(units, years, strict=True))
        next_of = {
            key: await uow.notices.next_letter_numbers(*key, count)
            for key, count in sorted(wanted.items())
        }
        numbers = []
        for key in zip(units, years, strict=True):
            numbers.append(letter_number(next_of[key], *key))
            next_of[key] += 1
        return numbers

    async def on_promised_date_due_soon(
        self, event: PromisedDateDueSoonDetected, uow: NotifierUnitOfWorkPort
    ) -> None:
        await self._alert(
            uow, event.dossier_code, AlertKind.PROMISED_DATE_DUE_SOON, event.unit_code
        )

    async def on_promise_broken(
        self, event: PromiseBrokenDetected, uow: NotifierUnitOfWorkPort
    ) -> None:
        """The new return date passed too: reported apart from the first lateness."""
        await self._alert(uow, event.dossier_code, AlertKind.PROMISE_BROKEN, event.unit_code)

    async def on_step_overdue(
        self, event: StepOverdueDetected, uow: NotifierUnitOfWorkPort
    ) -> None:
        await self._alert(
            uow, event.dossier_code, AlertKind.STEP_OVERDUE, event.unit_code, event.step_sequence
        )

    async def on_extension_requested(
        self, event: ExtensionRequested, uow: NotifierUnitOfWorkPort
    ) -> None:
        """The unit says it will be late: its draft apology opens now, with its reason; the
        head still chooses the new date and signs."""
        obligation_due = await uow.notices.obligation_due_at(event.dossier_code)
        await self._open_draft(
            uow, event.dossier_code, event.unit_code, obligation_due, reason=event.reason
        )

    # --- the unit's draft, over HTTP ------------------------------------------------------

    async def draft(self, uow: NotifierUnitOfWorkPort, code: str) -> Draft:
        draft = await uow.notices.draft(code)
        if draft is None:
            raise DraftNotFound(f"no draft apology for dossier {code}: it is not due soon")
        return draft

    async def fill_draft(
        self,
        uow: NotifierUnitOfWorkPort,
        code: str,
        *,
        reason: str,
        new_due_at: datetime,
        official: str,
    ) -> Draft:
        """The unit's reason and new return date; may change until the letter is issued."""
        draft = await self.draft(uow, code)
        if await uow.notices.has_apology(code):
            raise DraftClosed(f"the apology for dossier {code} was already issued")
        check_new_date(draft, new_due_at)
        now = self.clock()
        await uow.notices.fill_draft(
            code, reason=reason, new_due_at=new_due_at, by=official, at=now
        )
        return await self.draft(uow, code)

    async def approve(self, uow: NotifierUnitOfWorkPort, code: str) -> ApologyIssued:
        """The head approves and signs: the letter is issued with the unit's certificate."""
        draft = await self.draft(uow, code)
        if await uow.notices.has_apology(code):
            raise DraftClosed(f"the apology for dossier {code} was already issued")
        if draft.reason is None or draft.new_due_at is None:
            raise DraftIncomplete(
                f"the draft apology for dossier {code} needs its reason and new return date"
            )
        return await self._issue(
            uow, code, draft.unit_code, draft.original_due_at, draft.reason, draft.new_due_at
        )

    async def _open_draft(
        self,
        uow: NotifierUnitOfWorkPort,
        code: str,
        unit_code: str,
        due_at: datetime,
        reason: str | None = None,
    ) -> None:
        if await uow.notices.has_apology(code):
            return
        await uow.notices.add_draft(self._draft(code, unit_code, due_at, self.clock(), reason))

    def _draft(
        self, code: str, unit_code: str, due_at: datetime, now: datetime, reason: str | None = None
    ) -> Draft:
        return open_draft(
            dossier_code=code,
            unit_code=unit_code,
            due_at=due_at,
            now=now,
            calendar=self.calendars.of(unit_code),
            limit=self.new_date_limit,
            reason=reason,
        )

    async def _issue(
        self,
        uow: NotifierUnitOfWorkPort,
        code: str,
        unit_code: str,
        original_due_at: datetime,
        reason: str,
        new_due_at: datetime,
    ) -> ApologyIssued:
        """The unit's own letter, signed by its head."""
        addressee = await uow.notices.addressee(code)
        now = self.clock()
        (number,) = await self._letter_numbers([unit_code], now, uow)
        apology, issued = self._letter(
            addressee, code, unit_code, original_due_at, reason, new_due_at, number, now
        )
        await uow.notices.add_apology(apology)
        self._count_issued([apology])
        uow.emit(issued, occurred_at=now)
        return issued

    def _letter(
        self,
        addressee: StoredAddressee,
        code: str,
        unit_code: str,
        original_due_at: datetime,
        reason: str,
        new_due_at: datetime,
        number: str,
        now: datetime,
        *,
        on_behalf_of_city: bool = False,
    ) -> tuple[IssuedApology, ApologyIssued]:
        """The letter as recorded, and its event."""
        letter = compose_apology(
            addressee=addressee,
            unit_code=unit_code,
            catalog=self.catalog,
            number=number,
            issued_at=now,
            original_due_at=original_due_at,
            new_due_at=new_due_at,
            reason=reason,
            on_behalf_of_city=on_behalf_of_city,
        )
        timeliness = (
            ApologyTimeliness.LATE
            if on_behalf_of_city
            else apology_timeliness(now, original_due_at)
        )
        signed_by = CITY if on_behalf_of_city else unit_code
        channel = self._channel_for(addressee.email, addressee.phone)
        apology = IssuedApology(
            dossier_code=code,
            letter_number=number,
            unit_code=unit_code,
            signer_title=letter.signer_title,
            reason=reason,
            original_due_at=original_due_at,
            new_due_at=letter.new_due_at,
            issued_at=now,
            channel=channel,
            letter=letter.model_dump(mode="json"),
            html=render_html(letter),
            pdf=None,  # laid out and signed by the rendering worker, off this transaction
            timeliness=timeliness.value,
            on_behalf_of_city=on_behalf_of_city,
            signed_by=signed_by,
        )
        issued = ApologyIssued(
            dossier_code=code,
            unit_code=unit_code,
            signer_title=letter.signer_title,
            letter_number=number,
            reason=reason,
            original_due_at=original_due_at,
            new_due_at=letter.new_due_at,
            issued_at=now,
            delivered_by=channel,
            timeliness=timeliness,
            on_behalf_of_city=on_behalf_of_city,
        )
        return apology, issued

    def _count_issued(self, apologies: list[IssuedApology]) -> None:
        """Once per unit and timeliness: a backlog issues thousands of letters at once."""
        for (unit, timeliness), count in Counter(
            (a.unit_code, a.timeliness) for a in apologies
        ).items():
            self.apologies_issued.add(
                count, {"onestop.unit": unit, "onestop.apology.timeliness": timeliness}
            )

    def _new_alert(
        self, code: str, kind: AlertKind, unit_code: str, now: datetime, step: int = 0
    ) -> NewAlert:
        unit = self.catalog.unit(unit_code)
        recipients = [unit.head_email] if unit else []
        recipients += self.operators
        return NewAlert(
            dossier_code=code,
            kind=kind.value,
            step_sequence=step,
            unit_code=unit_code,
            recipients=recipients,
            raised_at=now,
        )

    def _raised(self, alert: NewAlert, raised: set[tuple[str, str, int]]) -> list[Event]:
        """The alert's event, if it was raised now."""
        if (alert.dossier_code, alert.kind, alert.step_sequence) not in raised:
            return []
        unit = self.catalog.unit(alert.unit_code)
        return [
            AlertRaised(
                dossier_code=alert.dossier_code,
                kind=AlertKind(alert.kind),
                unit_code=alert.unit_code,
                head_title=unit.head_title if unit else "",
                recipients=tuple(alert.recipients),
                raised_at=alert.raised_at,
            )
        ]

    async def _alert(
        self, uow: NotifierUnitOfWorkPort, code: str, kind: AlertKind, unit_code: str, step: int = 0
    ) -> None:
        now = self.clock()
        alert = self._new_alert(code, kind, unit_code, now, step)
        for raised in self._raised(alert, await uow.notices.add_alerts([alert])):
            uow.emit(raised, occurred_at=now)

    def _channel_for(self, email: str | None, phone: str | None) -> str:
        """The applicant's channel: e-mail, else SMS/Zalo, else the letter waits at the desk."""
        if email and self.email_enabled:
            return "email"
        if phone and self.sms_enabled:
            return "sms"
        return "counter"
