"""What the notifier owes a dossier, and the apology it writes. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.notifier.letters import Addressee, ApologyLetter, IssuingUnit, Lateness
from services.notifier.repository import Draft, StoredAddressee
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from shared.events import ApologyObligationRecorded, ApologyTimeliness, DossierClockStarted

DEFAULT_REASON = "Hồ sơ chưa được giải quyết xong trong thời hạn theo quy định"
HEAD_FALLBACK = "Thủ trưởng đơn vị"
# The city issues the letter on a unit's behalf when the unit let the due date pass unsigned.
CITY_SIGNER_TITLE = "TM. Ủy ban nhân dân Thành phố"


class DraftRefused(Exception):
    """A draft apology cannot be changed or approved now; the message says why."""


class NewDateOutOfRange(DraftRefused):
    """The new return date is not after the due date, or beyond the limit."""


class DraftClosed(DraftRefused):
    """The letter was already issued: the new date is set once."""


class DraftIncomplete(DraftRefused):
    """Approval needs the reason and the new date first."""


def open_draft(
    *,
    dossier_code: str,
    unit_code: str,
    due_at: datetime,
    now: datetime,
    calendar: WorkingCalendar,
    limit: timedelta,
    reason: str | None = None,
) -> Draft:
    """The new date may be at most `limit` of working time after the due date (a
    configurable default: the decree leaves the new date to the unit)."""
    return Draft(
        dossier_code=dossier_code,
        unit_code=unit_code,
        original_due_at=due_at,
        latest_new_due_at=calendar.add_working_time(calendar.counting_start(due_at), limit),
        opened_at=now,
        reason=reason,
    )


def check_new_date(draft: Draft, new_due_at: datetime) -> None:
    if new_due_at <= draft.original_due_at:
        raise NewDateOutOfRange(
            f"the new return date {new_due_at.isoformat()} must be after the due date"
            f" {draft.original_due_at.isoformat()}"
        )
    if new_due_at > draft.latest_new_due_at:
        raise NewDateOutOfRange(
            f"the new return date {new_due_at.isoformat()} is beyond the limit"
            f" {draft.latest_new_due_at.isoformat()}"
        )


def apology_timeliness(issued_at: datetime, original_due_at: datetime) -> ApologyTimeliness:
    """On time when issued no later than the due time (QĐ 5157/2016/QĐ-UBND of HCMC: no later
    than the due date); otherwise late."""
    return ApologyTimeliness.ON_TIME if issued_at <= original_due_at else ApologyTimeliness.LATE


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
    on_behalf_of_city: bool = False,
) -> ApologyLetter:
    unit = catalog.unit(unit_code)
    head = unit.head_title if unit else HEAD_FALLBACK
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
        signer_title=CITY_SIGNER_TITLE if on_behalf_of_city else head,
    )
