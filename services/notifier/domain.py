"""What the notifier owes a dossier, and the apology it writes. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.notifier.letters import Addressee, ApologyLetter, IssuingUnit, Lateness
from services.notifier.repository import StoredAddressee
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from shared.events import ApologyObligationRecorded, DossierClockStarted

DEFAULT_REASON = "Hồ sơ chưa được giải quyết xong trong thời hạn theo quy định"
HEAD_FALLBACK = "Thủ trưởng đơn vị"


def apology_obligation(clock: DossierClockStarted, catalog: Catalog) -> ApologyObligationRecorded:
    """An apology is owed no later than the due-soon time if the dossier will be late; the
    head of the responsible unit signs it."""
    unit = catalog.unit(clock.responsible_unit_code)
    return ApologyObligationRecorded(
        dossier_code=clock.dossier_code,
        responsible_unit_code=clock.responsible_unit_code,
        signer_title=unit.head_title if unit is not None else HEAD_FALLBACK,
        apology_due_by=clock.due_soon_at,
        due_at=clock.due_at,
    )


def new_appointment(
    calendar: WorkingCalendar, original_due: datetime, now: datetime, extension: timedelta
) -> datetime:
    """The new return date: the extension counted in working time from the original due time,
    or from now if that has passed."""
    return calendar.add_working_time(calendar.counting_start(max(original_due, now)), extension)


def letter_number(sequence: int, unit_code: str, year: int) -> str:
    return f"{sequence}/{year}/XL-{unit_code}"


def compose_apology(
    *,
    addressee: StoredAddressee,
    unit_code: str,
    catalog: Catalog,
    number: str,
    issued_at: datetime,
    original_due_at: datetime,
    new_due_at: datetime,
    reason: str,
) -> ApologyLetter:
    unit = catalog.unit(unit_code)
    return ApologyLetter(
        issuing_unit=IssuingUnit(code=unit_code, name=unit.name if unit else unit_code),
        number=number,
        issued_at=issued_at,
        addressee=Addressee(full_name=addressee.full_name, address=addressee.address),
        dossier_code=addressee.dossier_code,
        procedure_name=addressee.procedure_name,
        received_at=addressee.received_at,
        original_due_at=original_due_at,
        lateness=Lateness.OVERDUE if issued_at >= original_due_at else Lateness.WILL_BE_LATE,
        reason=reason,
        new_due_at=new_due_at,
        signer_title=unit.head_title if unit else HEAD_FALLBACK,
    )
