"""The notifier's handlers on an in-memory notice repository: the obligation, the draft the
unit at fault completes at due-soon, its head's approval (on time), the city's letter when
the due date comes first (late), exactly one apology per dossier, and alerts once per
dossier, kind and step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifier.domain import DraftClosed, DraftIncomplete, NewDateOutOfRange
from services.notifier.handlers import DraftNotFound, Notifier
from services.notifier.rendering import signed_pdf
from services.notifier.repository import AddresseeUnknown, IssuedApology, LetterToRender
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    AlertKind,
    AlertRaised,
    ApologyIssued,
    ApologyObligationRecorded,
    ApologyTimeliness,
    DossierClockResumed,
    DossierClockStarted,
    DossierReceivedV1,
    DueSoonDetected,
    Event,
    ExtensionRequested,
    OverdueDetected,
    PromiseBrokenDetected,
    PromisedDateDueSoonDetected,
    StepOverdueDetected,
)
from shared.messaging.parking import PrerequisiteMissing
from tests.factories import APPLICANT, applicant_recorded, received_event
from tests.fakes.notifier import (
    OPERATOR,
    InMemoryNotifierUnitOfWork,
    MarkingSigner,
    RecordingCounter,
    notifier_at,
)
from tests.unit.conftest import hcmc

CODE = "000.00.00.H29-261123-0001"
JUSTICE = "000.00.05.H29"
POLICE = "000.20.01.H29"
RECEIVED_AT = hcmc(2026, 11, 23, 9, 30)
DUE = hcmc(2026, 12, 8, 9, 30)
DUE_SOON = hcmc(2026, 12, 7, 9, 30)
NOW = hcmc(2026, 12, 8, 10, 0)  # just past due


@pytest.fixture
def issued() -> RecordingCounter:
    return RecordingCounter()


@pytest.fixture
def notifier(catalog: Catalog, issued: RecordingCounter) -> Notifier:
    return notifier_at(lambda: NOW, catalog, issued)


@pytest.fixture
def uow() -> InMemoryNotifierUnitOfWork:
    return InMemoryNotifierUnitOfWork()


def emitted(uow: InMemoryNotifierUnitOfWork) -> list[Event]:
    events = [p.event for p in uow.pending]
    uow.pending = []
    return events


def clock_started() -> DossierClockStarted:
    return DossierClockStarted(
        dossier_code=CODE,
        responsible_unit_code=JUSTICE,
        started_at=RECEIVED_AT,
        due_at=DUE,
        due_soon_at=DUE_SOON,
    )


def due_soon() -> DueSoonDetected:
    return DueSoonDetected(
        dossier_code=CODE, responsible_unit_code=JUSTICE, due_at=DUE, detected_at=DUE_SOON
    )


def overdue() -> OverdueDetected:
    return OverdueDetected(
        dossier_code=CODE, responsible_unit_code=JUSTICE, due_at=DUE, detected_at=DUE
    )


def extension() -> ExtensionRequested:
    """The unit declares it will be late."""
    return ExtensionRequested(
        dossier_code=CODE,
        unit_code=JUSTICE,
        official="Lê Văn Tư",
        reason="cần xác minh thêm",
        requested_at=NOW,
    )


async def received_and_started(notifier: Notifier, uow: InMemoryNotifierUnitOfWork) -> None:
    received = received_event(CODE, received_at=RECEIVED_AT, appointment_at=DUE)
    await notifier.on_dossier_received(received, uow)
    await notifier.on_applicant_recorded(applicant_recorded(CODE), uow)
    await notifier.on_clock_started(clock_started(), uow)
    emitted(uow)


async def test_an_apology_waits_for_the_applicant_from_the_restricted_topic(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    """The receipt (public topic) carries no applicant: without the restricted topic's
    ApplicantDetailsRecorded the letter cannot be addressed, and the consumer parks it."""
    received = received_event(CODE, received_at=RECEIVED_AT, appointment_at=DUE)
    await notifier.on_dossier_received(received, uow)
    await notifier.on_clock_started(clock_started(), uow)

    with pytest.raises(AddresseeUnknown) as missing:
        await notifier.on_overdue(overdue(), uow)
    assert isinstance(missing.value, PrerequisiteMissing)
    assert not uow.notices.apologies

    await notifier.on_applicant_recorded(applicant_recorded(CODE), uow)
    await notifier.on_overdue(overdue(), uow)
    assert list(uow.notices.apologies) == [CODE]


async def test_a_receipt_published_before_v2_still_addresses_the_letter(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    received = received_event(CODE, received_at=RECEIVED_AT, appointment_at=DUE)
    old = DossierReceivedV1.model_validate({**received.model_dump(), "applicant": APPLICANT})
    await notifier.on_dossier_received(old, uow)

    addressee = await uow.notices.addressee(CODE)
    assert (addressee.full_name, addressee.email) == (APPLICANT["full_name"], APPLICANT["email"])


async def test_an_obligation_is_recorded_when_the_clock_starts(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    await notifier.on_clock_started(clock_started(), uow)

    assert emitted(uow) == [
        ApologyObligationRecorded(
            dossier_code=CODE,
            responsible_unit_code=JUSTICE,
            signer_title="Giám đốc Sở Tư pháp",  # the head of the unit signs
            apology_due_by=DUE_SOON,
            due_at=DUE,
        )
    ]
    assert await uow.notices.obligation_due_at(CODE) == DUE


async def test_due_soon_opens_a_draft_for_the_unit_at_fault_and_issues_nothing(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    await received_and_started(notifier, uow)
    await notifier.on_due_soon(due_soon(), uow)

    assert [type(e) for e in emitted(uow)] == [AlertRaised]  # the alert, no letter yet
    draft = await notifier.draft(uow, CODE)
    assert (draft.unit_code, draft.original_due_at, draft.complete) == (JUSTICE, DUE, False)
    # at most ten working days after the due date (the configured limit)
    assert UnitCalendars(notifier.catalog).of(JUSTICE).working_time_between(
        DUE, draft.latest_new_due_at
    ) == timedelta(hours=80)
    with pytest.raises(DraftIncomplete):
        await notifier.approve(uow, CODE)
    with pytest.raises(DraftNotFound):
        await notifier.draft(uow, "000.00.00.H29-261123-0009")


async def test_the_new_date_is_after_the_due_date_and_within_the_limit(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    await received_and_started(notifier, uow)
    await notifier.on_due_soon(due_soon(), uow)
    latest = (await notifier.draft(uow, CODE)).latest_new_due_at

    for wrong in (DUE, latest + timedelta(minutes=1)):
        with pytest.raises(NewDateOutOfRange):
            await notifier.fill_draft(
                uow, CODE, reason="cần xác minh", new_due_at=wrong, official="A"
            )
    filled = await notifier.fill_draft(
        uow, CODE, reason="cần xác minh thêm", new_due_at=latest, official="Lê Văn Tư"
    )
    assert (filled.new_due_at, filled.filled_by, filled.complete) == (latest, "Lê Văn Tư", True)


def to_render(stored: IssuedApology) -> LetterToRender:
    assert stored.signed_by is not None
    return LetterToRender(
        stored.dossier_code, stored.letter_number, stored.letter, stored.signed_by, 0
    )


async def test_the_heads_approval_issues_one_on_time_letter_signed_by_the_unit(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork, issued: RecordingCounter
) -> None:
    await received_and_started(notifier, uow)
    await notifier.on_due_soon(due_soon(), uow)
    emitted(uow)
    new_date = DUE + timedelta(days=2)
    await notifier.fill_draft(
        uow, CODE, reason="cần xác minh thêm", new_due_at=new_date, official="Lê Văn Tư"
    )
    approving = Notifier(**{**vars(notifier), "clock": lambda: DUE - timedelta(hours=2)})
    apology = await approving.approve(uow, CODE)

    assert emitted(uow) == [apology]
    assert (apology.timeliness, apology.on_behalf_of_city) == (ApologyTimeliness.ON_TIME, False)
    assert (apology.reason, apology.new_due_at) == ("cần xác minh thêm", new_date)
    assert apology.letter_number == "1/2026/XL-000.00.05.H29"
    assert apology.signer_title == "Giám đốc Sở Tư pháp"
    stored = uow.notices.apologies[CODE]
    assert stored.pdf is None and stored.signed_by == JUSTICE  # the renderer signs it later
    pdf = await signed_pdf(to_render(stored), MarkingSigner())
    assert pdf.startswith(b"%PDF-") and pdf.endswith(b"%signed-by 000.00.05.H29\n")
    assert issued.added == [(1, {"onestop.unit": JUSTICE, "onestop.apology.timeliness": "on_time"})]
    # The new date is set once: no second letter, no change, and the due date adds nothing.
    with pytest.raises(DraftClosed):
        await notifier.approve(uow, CODE)
    with pytest.raises(DraftClosed):
        await notifier.fill_draft(uow, CODE, reason="khác", new_due_at=new_date, official="B")
    await notifier.on_overdue(overdue(), uow)
    assert [a.kind for a in emitted(uow) if isinstance(a, AlertRaised)] == [AlertKind.OVERDUE]


async def test_an_unsigned_apology_at_the_due_date_escalates_and_the_city_issues_it_late(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork, issued: RecordingCounter
) -> None:
    await received_and_started(notifier, uow)
    await notifier.on_due_soon(due_soon(), uow)
    emitted(uow)
    await notifier.on_overdue(overdue(), uow)
    await notifier.on_overdue(overdue(), uow)  # detected again, or redelivered as new

    events = emitted(uow)
    alerts = [(e.kind, e.unit_code) for e in events if isinstance(e, AlertRaised)]
    assert alerts == [(AlertKind.OVERDUE, JUSTICE), (AlertKind.APOLOGY_ESCALATED, JUSTICE)]
    escalation = [e for e in events if isinstance(e, AlertRaised)][1]
    assert escalation.recipients == ("giamdoc.stp@tphcm.gov.vn", OPERATOR)
    [apology] = [e for e in events if isinstance(e, ApologyIssued)]
    assert (apology.timeliness, apology.on_behalf_of_city) == (ApologyTimeliness.LATE, True)
    assert apology.unit_code == JUSTICE  # counted against the unit at fault
    assert apology.signer_title.startswith("TM. Ủy ban nhân dân")
    assert apology.new_due_at > NOW
    stored = uow.notices.apologies[CODE]
    assert stored.pdf is None  # the alert did not wait for the PDF
    assert (await signed_pdf(to_render(stored), MarkingSigner())).endswith(b"%signed-by city\n")
    assert issued.added == [(1, {"onestop.unit": JUSTICE, "onestop.apology.timeliness": "late"})]


async def test_an_extension_request_opens_the_draft_with_its_reason(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    await received_and_started(notifier, uow)
    moved = DUE + timedelta(days=2)
    await notifier.on_clock_resumed(
        DossierClockResumed(
            dossier_code=CODE,
            resumed_at=RECEIVED_AT + timedelta(days=3),
            paused_working_minutes=16 * 60,
            previous_due_at=DUE,
            due_at=moved,
            due_soon_at=moved - timedelta(days=1),
        ),
        uow,
    )
    await notifier.on_extension_requested(extension(), uow)

    assert emitted(uow) == []  # the head still signs
    draft = await notifier.draft(uow, CODE)
    assert (draft.original_due_at, draft.reason) == (moved, "cần xác minh thêm")


async def test_an_apology_needs_the_addressee(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    await notifier.on_clock_started(clock_started(), uow)  # the receipt has not come yet
    await uow.commit()
    with pytest.raises(AddresseeUnknown) as raised:
        await notifier.on_overdue(overdue(), uow)
    await uow.rollback()

    assert isinstance(raised.value, PrerequisiteMissing)  # parked until the receipt comes
    assert uow.notices.apologies == {}
    assert [type(p.event) for p in uow.published] == [ApologyObligationRecorded]


async def test_alerts_are_raised_once_per_dossier_kind_and_step(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    due_soon_event = due_soon()

    def step_overdue(sequence: int, unit_code: str) -> StepOverdueDetected:
        return StepOverdueDetected(
            dossier_code=CODE,
            step_sequence=sequence,
            unit_code=unit_code,
            step_due_at=DUE_SOON,
            detected_at=NOW,
        )

    await notifier.on_due_soon(due_soon_event, uow)
    await notifier.on_due_soon(due_soon_event, uow)
    await notifier.on_step_overdue(step_overdue(1, JUSTICE), uow)
    await notifier.on_step_overdue(step_overdue(1, JUSTICE), uow)
    await notifier.on_step_overdue(step_overdue(2, POLICE), uow)

    alerts = emitted(uow)
    assert all(isinstance(a, AlertRaised) for a in alerts)
    assert [(a.kind, a.unit_code) for a in alerts if isinstance(a, AlertRaised)] == [
        (AlertKind.DUE_SOON, JUSTICE),
        (AlertKind.STEP_OVERDUE, JUSTICE),
        (AlertKind.STEP_OVERDUE, POLICE),
    ]
    first = alerts[0]
    assert isinstance(first, AlertRaised)
    # the head of the late unit, then the operators
    assert first.recipients == ("giamdoc.stp@tphcm.gov.vn", OPERATOR)
    assert first.head_title == "Giám đốc Sở Tư pháp"
    assert sorted(uow.notices.alerts) == [
        (CODE, AlertKind.DUE_SOON.value, 0),
        (CODE, AlertKind.STEP_OVERDUE.value, 1),
        (CODE, AlertKind.STEP_OVERDUE.value, 2),
    ]


async def test_the_promised_date_alerts_when_near_and_when_broken_each_once(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    promised = DUE + timedelta(days=2)
    near = PromisedDateDueSoonDetected(
        dossier_code=CODE, unit_code=POLICE, promised_at=promised, detected_at=NOW
    )
    broken = PromiseBrokenDetected(
        dossier_code=CODE, unit_code=POLICE, promised_at=promised, detected_at=promised
    )
    await notifier.on_promised_date_due_soon(near, uow)
    await notifier.on_promised_date_due_soon(near, uow)
    await notifier.on_promise_broken(broken, uow)
    await notifier.on_promise_broken(broken, uow)

    alerts = [e for e in emitted(uow) if isinstance(e, AlertRaised)]
    assert [(a.kind, a.unit_code) for a in alerts] == [
        (AlertKind.PROMISED_DATE_DUE_SOON, POLICE),
        (AlertKind.PROMISE_BROKEN, POLICE),
    ]
    assert alerts[1].recipients == ("giamdoc.catp@tphcm.gov.vn", OPERATOR)


async def test_lateness_deferred_through_a_batch_applies_as_one_by_one(
    notifier: Notifier,
) -> None:
    """The set-based path (a consumed batch's detections, applied together before the next
    other event or at commit) leaves the same alerts, drafts, letters and numbers, and emits
    each dossier's events in the same order, as the events applied one at a time."""
    other = CODE[:-4] + "0002"

    def lateness(code: str) -> list[DueSoonDetected | OverdueDetected]:
        return [
            DueSoonDetected(
                dossier_code=code, responsible_unit_code=JUSTICE, due_at=DUE, detected_at=NOW
            ),
            OverdueDetected(
                dossier_code=code, responsible_unit_code=JUSTICE, due_at=DUE, detected_at=NOW
            ),
        ]

    async def apply(uow: InMemoryNotifierUnitOfWork, deferring: bool) -> None:
        for code in (CODE, other):
            await notifier.on_dossier_received(
                received_event(code, received_at=RECEIVED_AT, appointment_at=DUE), uow
            )
            await notifier.on_applicant_recorded(applicant_recorded(code), uow)
        if deferring:
            uow.deferred = []  # type: ignore[attr-defined]  # as the PostgreSQL one has
        (soon, late), (other_soon, other_late) = lateness(CODE), lateness(other)
        # two runs of a kind; the second overdue of CODE (detected again) starts a third
        for event in (soon, other_soon, late, other_late, late):
            if isinstance(event, DueSoonDetected):
                await notifier.on_due_soon(event, uow)
            else:
                await notifier.on_overdue(event, uow)
        if deferring:
            assert uow.notices.alerts == {}  # nothing applied yet
            # another event applies the deferred ones before it
            await notifier.in_order(notifier.on_applicant_recorded)(applicant_recorded(other), uow)
            assert uow.deferred == []  # type: ignore[attr-defined]

    one_by_one, deferred = InMemoryNotifierUnitOfWork(), InMemoryNotifierUnitOfWork()
    await apply(one_by_one, deferring=False)
    await apply(deferred, deferring=True)

    def by_dossier(uow: InMemoryNotifierUnitOfWork) -> dict[str, list[tuple[str, str]]]:
        events: dict[str, list[tuple[str, str]]] = {}
        for event in emitted(uow):
            kind = event.kind.value if isinstance(event, AlertRaised) else ""
            events.setdefault(event.dossier_code, []).append((type(event).__name__, kind))
        return events

    expected = [
        ("AlertRaised", "due_soon"),
        ("AlertRaised", "overdue"),
        ("AlertRaised", "apology_escalated"),
        ("ApologyIssued", ""),
    ]
    assert by_dossier(one_by_one) == {CODE: expected, other: expected}
    assert by_dossier(deferred) == {CODE: expected, other: expected}
    assert deferred.notices.alerts == one_by_one.notices.alerts
    assert deferred.notices.drafts == one_by_one.notices.drafts
    assert deferred.notices.apologies == one_by_one.notices.apologies
    letters = sorted(a.letter_number for a in deferred.notices.apologies.values())
    assert letters == sorted(a.letter_number for a in one_by_one.notices.apologies.values())
    assert len(set(letters)) == 2
