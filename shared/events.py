"""The events the services publish: the contract with each other and with downstream systems.

Each event is a versioned payload: its CloudEvents type ends in the version (`...v1`). A change
that breaks readers gets a new class and type; readers ignore fields they do not know.
Every event is keyed by its dossier code, so one dossier's events stay in order.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

TYPE_PREFIX = "vn.hcmc.onestop"


class Topic(StrEnum):
    """One topic per producing service; the service is the only writer."""

    INTAKE = "onestop.intake.dossier-events"
    ROUTING = "onestop.routing.dossier-events"
    DEADLINE = "onestop.deadline.dossier-events"
    NOTIFIER = "onestop.notifier.dossier-events"


def dead_letter_topic(consumer_group: str) -> str:
    return f"onestop.dead-letter.{consumer_group}"


class DossierStatus(IntEnum):
    """Status codes of the national public service portal (dichvucong.gov.vn)."""

    NEW = 1
    ACCEPTED = 2
    REFUSED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    FINANCIAL_OBLIGATION_REQUESTED = 6
    WITHDRAWN = 7
    PROCESSING_STOPPED = 8
    PROCESSED = 9
    RESULT_RETURNED = 10


class Channel(StrEnum):
    COUNTER = "counter"
    ONLINE = "online"
    POST = "post"


class DocumentForm(StrEnum):
    ORIGINAL = "original"
    CERTIFIED_COPY = "certified_copy"
    COPY = "copy"


class _Payload(BaseModel):
    # Readers ignore unknown fields so that producers can add optional ones without a new version.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Applicant(_Payload):
    """Personal data: travels in event payloads only, never in logs or telemetry."""

    full_name: str
    id_number: str
    phone: str
    email: EmailStr | None = None
    address: str


class Document(_Payload):
    kind: str
    form: DocumentForm
    count: int


class Event(_Payload):
    """Base of every event: `TYPE` is its CloudEvents type, `TOPIC` where it is published."""

    TYPE: ClassVar[str]
    TOPIC: ClassVar[Topic]

    dossier_code: str


class DossierReceived(Event):
    """A counter accepted a complete dossier and gave the citizen a receipt (Mẫu 01)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.received.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    procedure_code: str
    procedure_name: str
    receiving_unit_code: str
    channel: Channel
    applicant: Applicant
    documents: tuple[Document, ...]
    sets: int
    received_at: datetime
    appointment_at: datetime
    receiving_officer: str


class PlannedStep(_Payload):
    sequence: int
    unit_code: str
    unit_name: str
    task: str
    due_at: datetime


class DossierRouted(Event):
    """The dossier was assigned to its competent unit, with the plan of its steps."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.routed.v1"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    procedure_code: str
    competent_unit_code: str
    current_unit_code: str
    steps: tuple[PlannedStep, ...] = Field(min_length=1)
    received_at: datetime
    due_at: datetime
    routed_at: datetime


class DossierClockStarted(Event):
    """The deadline service started the dossier's clock in legal working time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.clock-started.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    responsible_unit_code: str
    started_at: datetime
    due_at: datetime
    due_soon_at: datetime


class ApologyObligationRecorded(Event):
    """The notifier recorded the apology it will owe if the dossier is not done in time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.apology-obligation-recorded.v1"
    TOPIC: ClassVar[Topic] = Topic.NOTIFIER

    responsible_unit_code: str
    signer_title: str = Field(description="the head of the unit, who signs the apology")
    apology_due_by: datetime
    due_at: datetime


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (DossierReceived, DossierRouted, DossierClockStarted, ApologyObligationRecorded)
}
