"""Supplements: the missed-deadline rule and its policy, the applicant's notices (Mẫu 02, 03,
05, result ready) as documents, and the notifier's handlers on an in-memory repository."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.deadline.domain import SupplementMissedPolicy, supplement_missed
from services.deadline.settings import DeadlineSettings
from services.notifier.channels import (
    ChannelKind,
    Recipient,
    attachment_name,
    build_email,
    email_subject,
    text_of,
)
from services.notifier.handlers import Notifier
from services.notifier.letters import SMS_MAX_CHARS, Addressee, IssuingUnit
from services.notifier.notices import (
    CitizenNotice,
    NoticeKind,
    notice_number,
    render_notice_html,
    render_notice_pdf,
)
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import (
    AlertKind,
    AlertRaised,
    DossierProcessed,
    DossierRefused,
    ProcessingStopped,
    SupplementDeadlineMissed,
    SupplementRequested,
)
from tests.factories import applicant_recorded, received_event
from tests.fakes.notifier import InMemoryNotifierUnitOfWork, RecordingCounter
from tests.unit.conftest import hcmc

CODE = "000.00.00.H29-261123-0001"
LAND = "000.14.01.H29"
OPERATOR = "dieuhanh@tphcm.gov.vn"
RECEIVED_AT = hcmc(2026, 11, 23, 9, 30)
NOW = hcmc(2026, 11, 24, 10, 0)
SUPPLEMENT_DUE = hcmc(2026, 12, 8, 10, 0)


# --- the deadline service's rule -----------------------------------------------------------


@pytest.mark.parametrize("policy", list(SupplementMissedPolicy))
def test_a_supplement_is_missed_only_once_its_due_time_has_passed(
    policy: SupplementMissedPolicy,
) -> None:
    def at(now: object) -> SupplementDeadlineMissed | None:
        return supplement_missed(
            dossier_code=CODE,
            unit_code=LAND,
            supplement_due_at=SUPPLEMENT_DUE,
            now=now,  # type: ignore[arg-type]
            policy=policy,
        )

    assert at(SUPPLEMENT_DUE - timedelta(minutes=1)) is None
    assert at(SUPPLEMENT_DUE) is None  # due at that moment, not yet missed
    missed = at(SUPPLEMENT_DUE + timedelta(seconds=1))
    assert missed is not None
    assert missed.supplement_due_at == SUPPLEMENT_DUE and missed.unit_code == LAND
    assert missed.refusal_proposed is (policy is SupplementMissedPolicy.PROPOSE_REFUSAL)


def test_the_default_policy_is_alert_only_and_a_wrong_value_names_the_choices() -> None:
    assert DeadlineSettings.model_fields["supplement_missed_policy"].default == "alert"
    with pytest.raises(
        ValidationError, match=r"supplement_missed_policy[\s\S]*'alert' or 'propose_refusal'"
    ):
        DeadlineSettings(supplement_missed_policy="refuse_at_once")  # type: ignore[call-arg, arg-type]


# --- the notices as documents ---------------------------------------------------------------


def notice(kind: NoticeKind, **overrides: object) -> CitizenNotice:
    fields: dict[str, object] = {
        "kind": kind,
        "issuing_unit": IssuingUnit(code=LAND, name="Văn phòng Đăng ký đất đai Thành phố"),
        "number": notice_number(3, LAND, 2026, kind),
        "issued_at": NOW,
        "addressee": Addressee(full_name="Nguyễn Văn A", address="1 Lê Lợi, Quận 1"),
        "dossier_code": CODE,
        "procedure_name": "Đăng ký biến động đất đai",
        "received_at": RECEIVED_AT,
        "signer_title": "Giám đốc Văn phòng Đăng ký đất đai",
    }
    return CitizenNotice.model_validate({**fields, **overrides})


def test_a_supplement_request_says_what_is_missing_why_and_by_when() -> None:
    mau_02 = notice(
        NoticeKind.SUPPLEMENT_REQUEST,
        reason="Thiếu hợp đồng",
        missing_documents=("Hợp đồng chuyển nhượng (bản sao chứng thực)",),
        due_at=SUPPLEMENT_DUE,
    )
    assert mau_02.number == f"3/2026/BS-{LAND}"
    html = render_notice_html(mau_02)
    assert "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ" in html
    assert "Hợp đồng chuyển nhượng (bản sao chứng thực)" in html
    assert "Thiếu hợp đồng" in html
    assert "10 giờ 00 phút, ngày 08 tháng 12 năm 2026" in html
    pdf = render_notice_pdf(mau_02)
    assert pdf.startswith(b"%PDF") and pdf == render_notice_pdf(mau_02)  # deterministic
    text = text_of(mau_02)
    assert (
        "Cần bổ sung: Hợp đồng chuyển nhượng" in text
        and "Hạn bổ sung: 10:00 ngày 08/12/2026" in text
    )
    assert email_subject(mau_02) == f"Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ {CODE}"
    assert attachment_name(mau_02) == f"yeu-cau-bo-sung-{CODE}.pdf"


@pytest.mark.parametrize(
    ("kind", "title", "symbol"),
    [
        (NoticeKind.REFUSAL, "PHIẾU TỪ CHỐI TIẾP NHẬN, GIẢI QUYẾT HỒ SƠ", "TC"),
        (NoticeKind.PROCESSING_STOPPED, "THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ", "DX"),
        (NoticeKind.RESULT_READY, "THÔNG BÁO KẾT QUẢ GIẢI QUYẾT HỒ SƠ", "TB"),
    ],
)
def test_each_notice_has_its_title_and_number(kind: NoticeKind, title: str, symbol: str) -> None:
    document = notice(kind, reason="Lý do cụ thể" if kind is not NoticeKind.RESULT_READY else None)
    assert title in render_notice_html(document)
    assert document.number == f"3/2026/{symbol}-{LAND}"
    assert render_notice_pdf(document).startswith(b"%PDF")


def test_a_notice_by_sms_fits_and_the_email_attaches_the_pdf_without_logging_the_name() -> None:
    long = notice(NoticeKind.REFUSAL, reason="x " * 900)
    assert len(text_of(long)) <= SMS_MAX_CHARS
    document = notice(NoticeKind.REFUSAL, reason="Hồ sơ không đủ điều kiện")
    message = build_email(
        document,
        html=render_notice_html(document),
        pdf=b"%PDF-1.7",
        recipient=Recipient(ChannelKind.EMAIL, "a@example.vn"),
        sender="mot-cua@tphcm.gov.vn",
        sent_at=NOW,
    )
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"tu-choi-{CODE}.pdf"
    assert "Nguyễn Văn A" not in repr(document)


# --- the notifier's handlers ----------------------------------------------------------------


@pytest.fixture
def notifier(catalog: Catalog) -> Notifier:
    return Notifier(
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


@pytest.fixture
async def uow(notifier: Notifier) -> InMemoryNotifierUnitOfWork:
    uow = InMemoryNotifierUnitOfWork()
    received = received_event(CODE, received_at=RECEIVED_AT, appointment_at=SUPPLEMENT_DUE)
    await notifier.on_dossier_received(received, uow)
    await notifier.on_applicant_recorded(applicant_recorded(CODE), uow)
    return uow


async def test_each_letter_to_the_applicant_is_issued_once_by_email(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork
) -> None:
    requested = SupplementRequested(
        dossier_code=CODE,
        unit_code=LAND,
        official="can.bo",
        reason="Thiếu hợp đồng",
        missing_documents=("Hợp đồng",),
        requested_at=NOW,
        supplement_due_at=SUPPLEMENT_DUE,
        request_number=1,
    )
    await notifier.on_supplement_requested(requested, uow)
    await notifier.on_supplement_requested(requested, uow)  # redelivered: still one
    await notifier.on_dossier_processed(
        DossierProcessed(dossier_code=CODE, unit_code=LAND, official="x", processed_at=NOW), uow
    )
    await notifier.on_processing_stopped(
        ProcessingStopped(dossier_code=CODE, unit_code=LAND, reason="Dừng", stopped_at=NOW), uow
    )
    await notifier.on_dossier_refused(
        DossierRefused(dossier_code=CODE, unit_code=LAND, reason="Từ chối", refused_at=NOW), uow
    )
    notices = uow.notices.notices
    assert sorted(kind for _, kind, _ in notices) == sorted(k.value for k in NoticeKind)
    assert all(n.channel == "email" and n.pdf.startswith(b"%PDF") for n in notices.values())
    mau_02 = notices[(CODE, "supplement_request", "1")]
    assert mau_02.letter["due_at"] and mau_02.letter["missing_documents"] == ["Hợp đồng"]
    assert uow.notices.ended[CODE] == NOW  # a refusal still ends the dossier (retention)
    assert not uow.notices.apologies  # and is no apology


@pytest.mark.parametrize(
    ("proposed", "kind"),
    [(False, AlertKind.SUPPLEMENT_MISSED), (True, AlertKind.REFUSAL_PROPOSED)],
)
async def test_a_missed_supplement_alerts_the_units_head_and_the_operators(
    notifier: Notifier, uow: InMemoryNotifierUnitOfWork, proposed: bool, kind: AlertKind
) -> None:
    missed = SupplementDeadlineMissed(
        dossier_code=CODE,
        unit_code=LAND,
        supplement_due_at=SUPPLEMENT_DUE,
        detected_at=NOW,
        refusal_proposed=proposed,
    )
    await notifier.on_supplement_missed(missed, uow)
    [alert] = [p.event for p in uow.pending if isinstance(p.event, AlertRaised)]
    assert alert.kind is kind
    assert alert.recipients == ("giamdoc.vpdkdd@tphcm.gov.vn", OPERATOR)
