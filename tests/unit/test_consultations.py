"""Inter-agency consultation (lấy ý kiến): who may ask and reply, the reply's lateness, the
documents, the deadline service's rule and handlers, the notifier's reminder and the
indicator."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.deadline.domain import consultation_reply_overdue
from services.deadline.handlers import Deadlines
from services.intake import indicators
from services.intake.consultations import (
    Consultation,
    reply_consultation,
    request_consultation,
)
from services.intake.domain import Conflict, DossierState, SubmissionRejected
from services.intake.schemas import ConsultationReplyBody, ConsultationRequestBody
from services.notifier.handlers import Notifier
from shared.auth import Forbidden, Principal, Role
from shared.calendar import HCMC, UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    AlertKind,
    AlertRaised,
    ConsultationReplied,
    ConsultationReplyOverdueDetected,
    ConsultationRequested,
    ConsultedUnit,
    DossierClockPaused,
    DossierClockResumed,
    DossierStatus,
)
from tests.factories import received_event
from tests.fakes.deadline import InMemoryDeadlineUnitOfWork
from tests.fakes.notifier import InMemoryNotifierUnitOfWork, RecordingCounter
from tests.unit.conftest import hcmc

CODE = "000.00.00.H29-261201-0001"
TRADE, POLICE, LAND = "000.00.10.H29", "000.20.01.H29", "000.14.01.H29"
NOW = hcmc(2026, 12, 1, 9, 0)
DUE = hcmc(2026, 12, 8, 9, 0)
OPERATOR = "dieuhanh@tphcm.gov.vn"


def official(unit: str, *roles: Role) -> Principal:
    return Principal(
        subject=f"sub-{unit}",
        username=f"u-{unit}",
        name="Nguyễn Văn Hai",
        roles=frozenset(roles or (Role.UNIT_OFFICER,)),
        unit_code=unit,
    )


def state(status: DossierStatus = DossierStatus.PROCESSING) -> DossierState:
    return DossierState(
        code=CODE,
        status=status,
        receiving_unit_code="000.00.00.H29",
        current_unit_code=TRADE,
        supplement_requests=0,
        submission_traceparent=None,
    )


def body(*units: str) -> ConsultationRequestBody:
    return ConsultationRequestBody(
        question="Cơ sở có đủ điều kiện PCCC không?",
        documents=["Bản vẽ mặt bằng", "Giấy chứng nhận PCCC"],
        consulted_unit_codes=list(units),
    )


def ask(
    catalog: Catalog, *units: str, status: DossierStatus = DossierStatus.PROCESSING
) -> ConsultationRequested:
    return request_consultation(
        state(status),
        body(*units),
        official(TRADE),
        NOW,
        first_id=3,
        working_days=5,
        unit=catalog.unit,
        reply_due=lambda unit: DUE,
        tz=HCMC,
    )


def test_a_request_makes_one_consultation_per_unit_with_its_letter(catalog: Catalog) -> None:
    event = ask(catalog, POLICE, LAND)
    assert [(c.consultation_id, c.unit_code) for c in event.consulted] == [(3, POLICE), (4, LAND)]
    letter = event.document
    police, land = catalog.unit(POLICE), catalog.unit(LAND)
    assert police and land and police.name in letter and land.name in letter
    assert "Cơ sở có đủ điều kiện PCCC không?" in letter and "Bản vẽ mặt bằng" in letter
    assert "5 ngày làm việc" in letter and "08/12/2026" in letter and CODE in letter


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ((POLICE, POLICE), "more than once"),
        ((TRADE,), "your own unit"),
        (("999.99.99.H29",), "unknown unit code"),
    ],
)
def test_a_request_names_other_known_units_once(
    catalog: Catalog, units: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SubmissionRejected, match=message):
        ask(catalog, *units)


def test_a_request_needs_a_dossier_being_processed(catalog: Catalog) -> None:
    with pytest.raises(Conflict, match="supplement_requested"):
        ask(catalog, POLICE, status=DossierStatus.SUPPLEMENT_REQUESTED)


def consultation(replied_at: datetime | None = None) -> Consultation:
    return Consultation(
        dossier_code=CODE,
        consultation_id=1,
        requesting_unit_code=TRADE,
        unit_code=POLICE,
        question="Đủ điều kiện PCCC?",
        reply_due_at=DUE,
        replied_at=replied_at,
    )


def reply(
    catalog: Catalog,
    actor: Principal,
    at: datetime,
    *,
    asked: Consultation | None = None,
    status: DossierStatus = DossierStatus.PROCESSING,
) -> ConsultationReplied:
    return reply_consultation(
        state(status),
        asked or consultation(),
        ConsultationReplyBody(opinion="Đủ điều kiện."),
        actor,
        at,
        unit=catalog.unit,
        tz=HCMC,
    )


def test_a_reply_by_the_due_time_is_on_time_after_it_late(catalog: Catalog) -> None:
    on_time = reply(catalog, official(POLICE), DUE)
    assert not on_time.late and on_time.requesting_unit_code == TRADE
    assert "Đủ điều kiện." in on_time.document and "sau thời hạn" not in on_time.document
    late = reply(catalog, official(POLICE, Role.UNIT_HEAD), DUE + timedelta(seconds=1))
    assert late.late and "trả lời sau thời hạn" in late.document


def test_only_the_consulted_unit_replies_and_only_once(catalog: Catalog) -> None:
    with pytest.raises(Forbidden, match=f"asks unit {POLICE}; your unit is {LAND}"):
        reply(catalog, official(LAND), NOW)
    with pytest.raises(Forbidden, match="role"):
        reply(catalog, official(POLICE, Role.COUNTER_OFFICER), NOW)
    with pytest.raises(Conflict, match="already replied"):
        reply(catalog, official(POLICE), NOW, asked=consultation(replied_at=NOW))
    with pytest.raises(Conflict, match="withdrawn"):
        reply(catalog, official(POLICE), NOW, status=DossierStatus.WITHDRAWN)


def test_a_reply_is_overdue_only_once_its_due_time_has_passed() -> None:
    def at(now: datetime) -> ConsultationReplyOverdueDetected | None:
        return consultation_reply_overdue(
            dossier_code=CODE, consultation_id=2, unit_code=POLICE, reply_due_at=DUE, now=now
        )

    assert at(DUE) is None
    overdue = at(DUE + timedelta(seconds=1))
    assert overdue is not None and (overdue.consultation_id, overdue.unit_code) == (2, POLICE)


@pytest.mark.parametrize("pauses", [False, True])
async def test_the_clock_runs_during_a_consultation_unless_configured_to_pause(
    catalog: Catalog, pauses: bool
) -> None:
    deadlines = Deadlines(
        catalog=catalog,
        calendars=UnitCalendars(catalog),
        due_soon_lead=timedelta(hours=8),
        clock=lambda: NOW,
        consultation_pauses_clock=pauses,
    )
    uow = InMemoryDeadlineUnitOfWork()
    received = received_event(CODE, received_at=NOW - timedelta(days=1), appointment_at=DUE)
    await deadlines.on_dossier_received(received, uow)
    uow.pending = []
    asked = ask(catalog, POLICE, LAND)
    await deadlines.on_consultation_requested(asked, uow)
    assert set(uow.clocks.consultations) == {(CODE, 3), (CODE, 4)}
    for consultation_id, unit in ((3, POLICE), (4, LAND)):
        answered = reply(
            catalog,
            official(unit),
            NOW + timedelta(hours=consultation_id),
            asked=Consultation(CODE, consultation_id, TRADE, unit, "?", DUE, None),
        )
        await deadlines.on_consultation_replied(answered, uow)
    kinds = [type(p.event) for p in uow.pending]
    # Paused at the request; resumed once the last consulted unit has replied.
    assert kinds == ([DossierClockPaused, DossierClockResumed] if pauses else [])
    assert (await uow.clocks.lock(CODE)).status == "running"


async def test_a_late_reply_reminds_the_consulted_head_and_alerts_operators_once(
    catalog: Catalog,
) -> None:
    notifier = Notifier(
        catalog=catalog,
        calendars=UnitCalendars(catalog),
        clock=lambda: NOW,
        operators=(OPERATOR,),
        extension=timedelta(hours=40),
        new_date_limit=timedelta(hours=80),
        email_enabled=True,
        sms_enabled=False,
        apologies_issued=RecordingCounter(),
    )
    uow = InMemoryNotifierUnitOfWork()
    overdue = ConsultationReplyOverdueDetected(
        dossier_code=CODE, consultation_id=1, unit_code=POLICE, reply_due_at=DUE, detected_at=NOW
    )
    await notifier.on_consultation_reply_overdue(overdue, uow)
    await notifier.on_consultation_reply_overdue(overdue, uow)  # redelivered: still one
    second = overdue.model_copy(update={"consultation_id": 2})
    await notifier.on_consultation_reply_overdue(second, uow)
    alerts = [p.event for p in uow.pending if isinstance(p.event, AlertRaised)]
    assert len(alerts) == 2
    police = catalog.unit(POLICE)
    assert police is not None
    assert alerts[0].kind is AlertKind.CONSULTATION_REPLY_OVERDUE
    assert alerts[0].recipients == (police.head_email, OPERATOR)


def test_the_indicator_counts_replies_given_late_in_the_period() -> None:
    start, end = hcmc(2026, 12, 1), hcmc(2027, 1, 1)

    def fact(at: datetime, late: bool) -> indicators.Fact:
        return indicators.Fact(at, "consultation-replied", {"late": late})

    record = indicators.DossierRecord(
        code=CODE,
        received_at=hcmc(2026, 11, 30, 9),
        channel="counter",
        appointment_at=hcmc(2027, 2, 1),
        facts=(
            indicators.Fact(hcmc(2026, 11, 30, 10), "routed", {"competent_unit_code": TRADE}),
            fact(hcmc(2026, 11, 30, 15), True),  # before the period
            fact(hcmc(2026, 12, 3, 9), True),
            fact(hcmc(2026, 12, 4, 9), False),
            fact(hcmc(2027, 1, 2, 9), True),  # after it
        ),
    )
    computed = indicators.compute([record], start, end)
    assert computed.units[TRADE]["consultations_replied_late"] == 1


def test_consulted_unit_ids_are_positive() -> None:
    with pytest.raises(ValueError):
        ConsultedUnit(consultation_id=0, unit_code=POLICE, reply_due_at=DUE)
