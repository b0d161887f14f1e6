"""The notifier's notice repository port, kept in dictionaries; a counter that remembers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from opentelemetry.context import Context
from opentelemetry.metrics import NoOpCounter
from opentelemetry.util.types import Attributes

from services.notifier.handlers import Notifier
from services.notifier.repository import (
    AddresseeUnknown,
    Draft,
    IssuedApology,
    IssuedNotice,
    NoticeRepository,
    ObligationUnknown,
    StoredAddressee,
)
from shared.calendar import UnitCalendars
from shared.catalog import Catalog
from shared.events import ApologyObligationRecorded, Applicant, DossierReceived
from tests.fakes.unit_of_work import InMemoryUnitOfWork


@dataclass
class StoredObligation:
    """A row of `apology_obligations`."""

    responsible_unit_code: str
    signer_title: str
    apology_due_by: datetime
    due_at: datetime
    issued_at: datetime | None = None


@dataclass(frozen=True)
class StoredAlert:
    dossier_code: str
    kind: str
    step_sequence: int
    unit_code: str
    recipients: list[str]
    raised_at: datetime


class InMemoryNoticeRepository(NoticeRepository):
    def __init__(self) -> None:
        self.receipts: dict[str, DossierReceived] = {}
        self.applicants: dict[str, Applicant] = {}
        self.ended: dict[str, datetime] = {}
        self.obligations: dict[str, StoredObligation] = {}
        self.apologies: dict[str, IssuedApology] = {}
        self.notices: dict[tuple[str, str, str], IssuedNotice] = {}
        self.alerts: dict[tuple[str, str, int], StoredAlert] = {}
        self.letter_numbers: dict[tuple[str, int], int] = {}
        self.drafts: dict[str, Draft] = {}

    async def add_obligation(self, obligation: ApologyObligationRecorded) -> None:
        if obligation.dossier_code in self.obligations:
            raise ValueError(f"obligation of {obligation.dossier_code} exists")  # primary key
        self.obligations[obligation.dossier_code] = StoredObligation(
            responsible_unit_code=obligation.responsible_unit_code,
            signer_title=obligation.signer_title,
            apology_due_by=obligation.apology_due_by,
            due_at=obligation.due_at,
        )

    async def add_addressee(self, received: DossierReceived) -> None:
        self.receipts.setdefault(received.dossier_code, received)

    async def add_applicant(self, dossier_code: str, applicant: Applicant) -> None:
        self.applicants.setdefault(dossier_code, applicant)

    async def dossier_ended(self, dossier_code: str, ended_at: datetime) -> None:
        self.ended[dossier_code] = ended_at

    async def addressee(self, dossier_code: str) -> StoredAddressee:
        received = self.receipts.get(dossier_code)
        applicant = self.applicants.get(dossier_code)
        if received is None or applicant is None:
            raise AddresseeUnknown(f"no addressee for {dossier_code} yet")
        return StoredAddressee(
            dossier_code=dossier_code,
            procedure_name=received.procedure_name,
            receiving_unit_code=received.receiving_unit_code,
            received_at=received.received_at,
            full_name=applicant.full_name,
            address=applicant.address,
            email=applicant.email,
            phone=applicant.phone,
        )

    async def move_obligation(
        self, dossier_code: str, due_at: datetime, apology_due_by: datetime
    ) -> None:
        obligation = self.obligations.get(dossier_code)
        if obligation is not None:  # an UPDATE of no row
            obligation.due_at, obligation.apology_due_by = due_at, apology_due_by

    async def obligation_due_at(self, dossier_code: str) -> datetime:
        obligation = self.obligations.get(dossier_code)
        if obligation is None:
            raise ObligationUnknown(f"no apology obligation for {dossier_code} yet")
        return obligation.due_at

    async def has_apology(self, dossier_code: str) -> bool:
        return dossier_code in self.apologies

    async def add_draft(self, draft: Draft) -> bool:
        if draft.dossier_code in self.drafts:
            return False
        self.drafts[draft.dossier_code] = draft
        return True

    async def draft(self, dossier_code: str) -> Draft | None:
        return self.drafts.get(dossier_code)

    async def fill_draft(
        self, dossier_code: str, *, reason: str, new_due_at: datetime, by: str, at: datetime
    ) -> None:
        self.drafts[dossier_code] = replace(
            self.drafts[dossier_code],
            reason=reason,
            new_due_at=new_due_at,
            filled_by=by,
            filled_at=at,
        )

    async def next_letter_number(self, unit_code: str, year: int) -> int:
        value = self.letter_numbers.get((unit_code, year), 0) + 1
        self.letter_numbers[(unit_code, year)] = value
        return value

    async def add_apology(self, apology: IssuedApology) -> None:
        if apology.dossier_code in self.apologies:
            raise ValueError(f"apology of {apology.dossier_code} exists")  # primary key
        self.apologies[apology.dossier_code] = apology
        if apology.dossier_code in self.obligations:
            self.obligations[apology.dossier_code].issued_at = apology.issued_at

    async def add_notice(self, notice: IssuedNotice) -> bool:
        key = (notice.dossier_code, notice.kind, notice.notice_key)
        if key in self.notices:
            return False
        self.notices[key] = notice
        return True

    async def add_alert(
        self,
        *,
        dossier_code: str,
        kind: str,
        step_sequence: int,
        unit_code: str,
        recipients: list[str],
        raised_at: datetime,
    ) -> bool:
        key = (dossier_code, kind, step_sequence)
        if key in self.alerts:
            return False
        self.alerts[key] = StoredAlert(
            dossier_code, kind, step_sequence, unit_code, list(recipients), raised_at
        )
        return True


class InMemoryNotifierUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, notices: InMemoryNoticeRepository | None = None) -> None:
        super().__init__()
        self.notices = notices or InMemoryNoticeRepository()


class RecordingCounter(NoOpCounter):
    """A metric counter that keeps what was added, with its attributes."""

    def __init__(self, name: str = "recording") -> None:
        super().__init__(name)
        self.added: list[tuple[float, Attributes]] = []

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self.added.append((amount, attributes))


class MarkingSigner:
    """Stands in for the PAdES signer: appends who signed, so that tests can see it."""

    async def sign(self, pdf: bytes, signer: str, *, reason: str) -> bytes:
        return pdf + f"\n%signed-by {signer}\n".encode()


OPERATOR = "dieuhanh@tphcm.gov.vn"


def notifier_at(
    clock: Callable[[], datetime], catalog: Catalog, issued: RecordingCounter | None = None
) -> Notifier:
    """The notifier as the handler tests use it: e-mail on, SMS off, one operator, the
    default extension limits."""
    return Notifier(
        catalog=catalog,
        calendars=UnitCalendars(catalog),
        clock=clock,
        operators=(OPERATOR,),
        extension=timedelta(hours=5 * 8),
        new_date_limit=timedelta(hours=10 * 8),
        email_enabled=True,
        sms_enabled=False,
        apologies_issued=issued or RecordingCounter(),
    )
