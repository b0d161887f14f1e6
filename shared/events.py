"""The events the services publish: the contract with each other and with downstream systems.

Each event is a versioned payload: its CloudEvents type ends in the version (`...v1`). A change
that breaks readers gets a new type; readers ignore fields they do not know.
Every event is keyed by its dossier code, so one dossier's events stay in order on each topic;
across topics, the envelope's `causationid` and `sequence` give their causal order.

Each fact has one owner, the only service that publishes it:
intake the receipt and the portal status, routing the plan and who holds the dossier,
deadline every due time, pause and lateness, notifier letters and alerts.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

TYPE_PREFIX = "vn.hcmc.onestop"
# Mã hồ sơ: {receiving unit code}-{YYMMDD}-{4-digit daily sequence}
DOSSIER_CODE_PATTERN = r"^[0-9A-Z.]{3,32}-\d{6}-\d{4}$"


class Topic(StrEnum):
    """One topic per producing service; the service is the only writer. Public topics carry
    no personal data; the applicant travels only on the restricted one."""

    INTAKE = "onestop.intake.dossier-events"
    ROUTING = "onestop.routing.dossier-events"
    DEADLINE = "onestop.deadline.dossier-events"
    NOTIFIER = "onestop.notifier.dossier-events"
    INTAKE_PERSONAL_DATA = "onestop.intake.personal-data"

    @property
    def restricted(self) -> bool:
        return self in RESTRICTED_READERS


# Who may read each restricted topic (the broker's ACLs enforce it); every other topic is public.
RESTRICTED_READERS: dict[Topic, tuple[str, ...]] = {Topic.INTAKE_PERSONAL_DATA: ("notifier",)}
PUBLIC_TOPICS: tuple[Topic, ...] = tuple(topic for topic in Topic if not topic.restricted)


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


PERSONAL: dict[str, Any] = {"x-personal-data": True}


def personal(**options: Any) -> Any:
    """A field holding personal data (Decree 13/2023): marked as such in the AsyncAPI
    document, allowed only on restricted topics, never in logs or telemetry."""
    return Field(json_schema_extra=PERSONAL, **options)


class Applicant(_Payload):
    """Personal data: travels only on the restricted topic, never in logs or telemetry."""

    full_name: str = personal()
    id_number: str = personal()
    phone: str = personal()
    email: EmailStr | None = personal(default=None)
    address: str = personal()


class Document(_Payload):
    kind: str
    form: DocumentForm
    count: int


class Actor(_Payload):
    """Who caused an event, as their bearer token says: the identity provider's id of the
    official (not a name) and the unit they act for."""

    subject: str
    unit_code: str | None = None


class Event(_Payload):
    """Base of every event: `TYPE` is its CloudEvents type, `TOPIC` where it is published."""

    TYPE: ClassVar[str]
    TOPIC: ClassVar[Topic]
    PUBLISHED: ClassVar[bool] = True  # False: an old version that readers still accept

    dossier_code: str
    actor: Actor | None = Field(
        default=None,
        description="the signed-in official whose command this event records; none for what"
        " the services decide themselves",
    )


class DossierReceived(Event):
    """A counter accepted a complete dossier and gave the citizen a receipt (Mẫu 01). The
    applicant is not in it (v1 had it): ApplicantDetailsRecorded, on the restricted topic."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.received.v2"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    procedure_code: str
    procedure_name: str
    receiving_unit_code: str
    channel: Channel
    documents: tuple[Document, ...]
    sets: int
    received_at: datetime
    appointment_at: datetime
    receiving_officer: str


class DossierReceivedV1(DossierReceived):
    """The receipt as published before v2, with the applicant in it. Still read, never
    published: a dossier received before the upgrade is routed, clocked and addressed."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.received.v1"
    PUBLISHED: ClassVar[bool] = False

    applicant: Applicant


class ApplicantDetailsRecorded(Event):
    """Who filed the dossier: the applicant's name, ID number and how to reach them, for the
    letters the notifier sends. Published with DossierReceived, in the same transaction."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.applicant-recorded.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE_PERSONAL_DATA

    applicant: Applicant


class PlannedStep(_Payload):
    sequence: int
    unit_code: str
    unit_name: str
    task: str
    share: float = Field(gt=0, le=1, description="its share of the processing time")
    parallel_group: str | None = Field(
        default=None,
        description="steps naming the same group run side by side: they start together and"
        " the next step starts when all have finished",
    )


class DossierRouted(Event):
    """The dossier was assigned to its competent unit, with the plan of its steps (who does
    what, in which order). Their due times are the deadline service's: StepClocksStarted."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.routed.v2"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    procedure_code: str
    competent_unit_code: str
    current_unit_code: str
    steps: tuple[PlannedStep, ...] = Field(min_length=1)
    routed_at: datetime


class DossierClockStarted(Event):
    """The deadline service started the dossier's clock in legal working time, from the
    receipt: its due time is the appointment the citizen holds."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.clock-started.v2"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    responsible_unit_code: str = Field(description="the competent unit, whose hours count")
    started_at: datetime
    due_at: datetime
    due_soon_at: datetime


class StepDue(_Payload):
    sequence: int
    unit_code: str
    due_at: datetime


class StepClocksStarted(Event):
    """Each step of routing's plan is due when its share of the time has run out (the last
    one when the dossier is)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.step-clocks-started.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    steps: tuple[StepDue, ...] = Field(min_length=1)
    started_at: datetime


class StepClocksRestarted(Event):
    """A send-back reopened these steps: each has a fresh due time from the send-back on (by
    default its original share of the time); the first holds the dossier again."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.step-clocks-restarted.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    steps: tuple[StepDue, ...] = Field(min_length=1)
    restarted_at: datetime


class ApologyObligationRecorded(Event):
    """The notifier recorded the apology it will owe if the dossier is not done in time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.apology-obligation-recorded.v1"
    TOPIC: ClassVar[Topic] = Topic.NOTIFIER

    responsible_unit_code: str
    signer_title: str = Field(description="the head of the unit, who signs the apology")
    apology_due_by: datetime
    due_at: datetime


class Timeliness(StrEnum):
    """Early (before the due date), on time (on the due date), late (after the due time)."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"


# --- Lifecycle, recorded at the desk (intake owns the dossier's status) ---------------------


class HandOffRequested(Event):
    """A processing unit asked to hand the dossier to the next unit of its process (liên
    thông), or, at the last step, to return the result to the desk. Routing, which owns the
    plan, records it (HandOffRecorded) or rejects it (HandOffRejected)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.hand-off-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    from_unit_code: str
    to_unit_code: str | None = Field(
        default=None, description="none: the result is ready and goes back to the desk"
    )
    official: str = Field(description="the official who hands it over (public duty, not PII)")
    requested_at: datetime

    @property
    def result_ready(self) -> bool:
        return self.to_unit_code is None


class SendBackRequested(Event):
    """The unit holding a step asked to send the dossier back to an earlier step of its
    process, with a reason. Routing records it (DossierSentBack) or rejects it
    (SendBackRejected)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.send-back-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    from_unit_code: str
    to_step_sequence: int = Field(ge=1)
    official: str
    reason: str = Field(min_length=1)
    requested_at: datetime


class SupplementRequested(Event):
    """The dossier must be supplemented (Mẫu 02); the clock pauses."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.supplement-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    official: str
    reason: str
    missing_documents: tuple[str, ...] = Field(min_length=1)
    requested_at: datetime
    supplement_due_at: datetime
    request_number: int = Field(ge=1)
    override_reason: str | None = Field(
        default=None, description="why a request beyond the first was allowed"
    )


class SupplementReceived(Event):
    """The citizen supplied what was missing; the clock resumes."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.supplement-received.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    received_at: datetime


class FinancialObligationRequested(Event):
    """The citizen must pay fees or taxes (nghĩa vụ tài chính); the clock pauses."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.financial-obligation-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    amount_vnd: int = Field(ge=0)
    requested_at: datetime


class FinancialObligationFulfilled(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.financial-obligation-fulfilled.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    fulfilled_at: datetime


class ExtensionRequested(Event):
    """The unit holding the dossier declares it will miss the due date: an apology is owed."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.extension-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    official: str
    reason: str
    requested_at: datetime


class DossierProcessed(Event):
    """The result is ready (đã xử lý xong): routing recorded the last step's hand-off to the
    desk, and intake moved the portal status to 9."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.processed.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    official: str
    processed_at: datetime


class ResultReturned(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.result-returned.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    returned_at: datetime


class DossierWithdrawn(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.withdrawn.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    reason: str
    withdrawn_at: datetime


class DossierRefused(Event):
    """Refused with reasons (Mẫu 03)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.refused.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    reason: str
    refused_at: datetime


class ProcessingStopped(Event):
    """Processing stopped (Mẫu 05)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.processing-stopped.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    unit_code: str
    reason: str
    stopped_at: datetime


class ServiceRated(Event):
    """The citizen rated the service on their dossier (1 to 5), once, from the look-up page
    with the receipt's PIN: satisfaction per unit (SIPAS; QĐ 766/QĐ-TTg's satisfaction
    group). The citizen's free-text comment is not in it: it may hold personal data and stays
    in intake's database."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.service-rated.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    score: int = Field(ge=1, le=5)
    unit_codes: tuple[str, ...] = Field(
        min_length=1,
        description="the units the rating counts for: the receiving unit, then every unit"
        " that held the dossier before it was rated",
    )
    commented: bool = Field(description="whether the citizen also wrote a comment")
    rated_at: datetime


class ConsultedUnit(_Payload):
    consultation_id: int = Field(ge=1, description="the consultation's number in the dossier")
    unit_code: str
    reply_due_at: datetime = Field(description="in the consulted unit's working calendar")


class ConsultationRequested(Event):
    """The unit holding the dossier asks other units for their opinion (lấy ý kiến): one
    consultation per consulted unit, each with its reply due time. `document` is the request
    letter as rendered text. The dossier's clock keeps running (unless configured otherwise)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.consultation-requested.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    requesting_unit_code: str
    official: str
    question: str
    documents: tuple[str, ...] = Field(min_length=1, description="the documents concerned")
    consulted: tuple[ConsultedUnit, ...] = Field(min_length=1)
    reply_working_days: float
    requested_at: datetime
    document: str


class ConsultationReplied(Event):
    """A consulted unit gave its opinion; `late` if after the reply due time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.consultation-replied.v1"
    TOPIC: ClassVar[Topic] = Topic.INTAKE

    consultation_id: int
    unit_code: str = Field(description="the consulted unit, which replied")
    requesting_unit_code: str
    official: str
    opinion: str
    reply_due_at: datetime
    replied_at: datetime
    late: bool
    document: str


# --- Routing ----------------------------------------------------------------------------------


class HandOffRecorded(Event):
    """A row of the processing control slip (Mẫu 06): the step, who gave it to whom, when.
    Whether the step was early, on time or late is the deadline service's StepCompleted."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.hand-off-recorded.v2"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    step_sequence: int
    from_unit_code: str
    to_unit_code: str
    official: str
    step_started_at: datetime
    handed_off_at: datetime
    current_unit_code: str = Field(description="who holds the dossier now")
    final: bool = Field(default=False, description="the last step: the result went to the desk")
    current_unit_codes: tuple[str, ...] = Field(
        default=(),
        description="every unit holding the dossier now (several while parallel steps are"
        " open); empty in events from before parallel steps: current_unit_code alone",
    )
    started_steps: tuple[int, ...] = Field(
        default=(),
        description="the steps that start with this hand-off (none while other parallel"
        " steps are still open, or after the last step)",
    )

    @property
    def holders(self) -> tuple[str, ...]:
        return self.current_unit_codes or (self.current_unit_code,)


class DossierSentBack(Event):
    """The unit holding a step sent the dossier back to an earlier step, with a reason: that
    step's unit holds it again (a row of the control slip, Mẫu 06); the steps from there on
    are done again."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.sent-back.v1"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    from_step_sequence: int
    from_unit_code: str
    to_step_sequence: int
    to_unit_code: str
    official: str
    reason: str
    reopened_steps: tuple[int, ...] = Field(
        description="the steps to be done again, from the one sent back to"
    )
    requested_at: datetime
    sent_back_at: datetime


class SendBackRejected(Event):
    """A requested send-back contradicts the plan or who holds the dossier; nothing moved."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.send-back-rejected.v1"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    from_unit_code: str
    to_step_sequence: int
    official: str
    reason: str
    requested_at: datetime
    rejected_at: datetime


class HandOffRejected(Event):
    """A requested hand-off contradicts the plan or who holds the dossier; nothing moved."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.hand-off-rejected.v1"
    TOPIC: ClassVar[Topic] = Topic.ROUTING

    from_unit_code: str
    to_unit_code: str | None
    official: str
    reason: str
    requested_at: datetime
    rejected_at: datetime


# --- Deadline ---------------------------------------------------------------------------------


class DossierClockPaused(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.clock-paused.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    paused_at: datetime
    cause: str
    supplement_due_at: datetime | None = Field(
        default=None, description="a supplement pause: by when the citizen must supply it"
    )


class DossierClockResumed(Event):
    """The clock runs again; the due date, and the due time of every step not completed yet,
    moved by exactly the working time paused."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.clock-resumed.v2"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    resumed_at: datetime
    paused_working_minutes: int
    previous_due_at: datetime
    due_at: datetime
    due_soon_at: datetime
    open_steps: tuple[StepDue, ...] = ()


class StepCompleted(Event):
    """A step of the process finished (its unit handed the dossier on): early, on time or
    late against the step's own due time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.step-completed.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    step_sequence: int
    unit_code: str
    completed_at: datetime
    due_at: datetime
    timeliness: Timeliness


class DueSoonDetected(Event):
    """The due time is near (by default one working day): the moment an apology must go out
    if the dossier will be late."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.due-soon.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    responsible_unit_code: str
    due_at: datetime
    detected_at: datetime


class OverdueDetected(Event):
    """The dossier became late, detected at that moment."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.overdue.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    responsible_unit_code: str
    due_at: datetime
    detected_at: datetime


class StepOverdueDetected(Event):
    """A unit has held the dossier beyond its step's share of the time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.step-overdue.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    step_sequence: int
    unit_code: str
    step_due_at: datetime
    detected_at: datetime


class ReturnDatePromised(Event):
    """The apology (Mẫu 04) promised the citizen a new return date: the deadline service
    tracks it as a deadline of its own, with its own due-soon time."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.return-date-promised.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    unit_code: str = Field(description="the unit at fault, which promised it")
    original_due_at: datetime
    promised_at: datetime = Field(description="the new return date")
    due_soon_at: datetime


class PromisedDateDueSoonDetected(Event):
    """The new return date the apology promised is near (the same lead as the due date's)."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.promised-date-due-soon.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    unit_code: str
    promised_at: datetime
    detected_at: datetime


class PromiseBrokenDetected(Event):
    """The new return date passed too, the dossier still not done: a broken promise, reported
    apart from the first lateness."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.promise-broken.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    unit_code: str
    promised_at: datetime
    detected_at: datetime


class SupplementDeadlineMissed(Event):
    """The time the citizen had to supplement the dossier (Mẫu 02) passed with nothing
    received, detected at that moment. `refusal_proposed`: the configured policy proposes that
    the holding unit refuse the dossier (Mẫu 03); otherwise the unit is only alerted."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.supplement-deadline-missed.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    unit_code: str = Field(description="the unit that requested the supplement")
    supplement_due_at: datetime
    detected_at: datetime
    refusal_proposed: bool


class ConsultationReplyOverdueDetected(Event):
    """A consulted unit has not replied by its reply due time, detected at that moment."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.consultation-reply-overdue.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    consultation_id: int
    unit_code: str = Field(description="the consulted unit, whose reply is late")
    reply_due_at: datetime
    detected_at: datetime


class DossierCompleted(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.completed.v1"
    TOPIC: ClassVar[Topic] = Topic.DEADLINE

    responsible_unit_code: str
    completed_at: datetime
    due_at: datetime
    timeliness: Timeliness


# --- Notifier ---------------------------------------------------------------------------------


class ApologyTimeliness(StrEnum):
    """On time: signed by the unit's head no later than the due date (QĐ 5157/2016/QĐ-UBND
    of HCMC; Nghị định 61/2018/NĐ-CP art. 19(3) as amended by 107/2021/NĐ-CP asks for it
    before the due date). Late: the due date passed unsigned and the city issued it."""

    ON_TIME = "on_time"
    LATE = "late"


class ApologyIssued(Event):
    """The apology and request to extend (Mẫu 04) was issued and sent: approved and signed by
    the head of the unit at fault, or, when the due date came first, by the city on the unit's
    behalf (late). `new_due_at` is the new return date: a deadline of its own."""

    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.apology-issued.v1"
    TOPIC: ClassVar[Topic] = Topic.NOTIFIER

    unit_code: str
    signer_title: str
    letter_number: str
    reason: str
    original_due_at: datetime
    new_due_at: datetime
    issued_at: datetime
    delivered_by: str
    timeliness: ApologyTimeliness = ApologyTimeliness.ON_TIME
    on_behalf_of_city: bool = Field(
        default=False, description="the unit did not sign by the due date: the city did"
    )


class AlertKind(StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    STEP_OVERDUE = "step_overdue"
    LETTER_UNDELIVERABLE = "letter_undeliverable"  # an apology letter was refused for good
    APOLOGY_ESCALATED = "apology_escalated"  # due date reached, no signed apology: city issues
    PROMISED_DATE_DUE_SOON = "promised_date_due_soon"  # the apology's new date is near
    PROMISE_BROKEN = "promise_broken"  # the apology's new date passed too
    SUPPLEMENT_MISSED = "supplement_missed"  # the citizen did not supplement in time
    REFUSAL_PROPOSED = "refusal_proposed"  # ... and the policy proposes refusing the dossier
    CONSULTATION_REPLY_OVERDUE = "consultation_reply_overdue"  # a consulted unit did not reply


class AlertRaised(Event):
    TYPE: ClassVar[str] = f"{TYPE_PREFIX}.dossier.alert-raised.v1"
    TOPIC: ClassVar[Topic] = Topic.NOTIFIER

    kind: AlertKind
    unit_code: str
    head_title: str
    recipients: tuple[str, ...]
    raised_at: datetime


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        DossierReceived,
        DossierReceivedV1,
        ApplicantDetailsRecorded,
        HandOffRequested,
        SendBackRequested,
        SupplementRequested,
        SupplementReceived,
        FinancialObligationRequested,
        FinancialObligationFulfilled,
        ExtensionRequested,
        DossierProcessed,
        ResultReturned,
        DossierWithdrawn,
        DossierRefused,
        ProcessingStopped,
        ServiceRated,
        ConsultationRequested,
        ConsultationReplied,
        DossierRouted,
        HandOffRecorded,
        HandOffRejected,
        DossierSentBack,
        SendBackRejected,
        DossierClockStarted,
        StepClocksStarted,
        StepClocksRestarted,
        StepCompleted,
        DossierClockPaused,
        DossierClockResumed,
        DueSoonDetected,
        OverdueDetected,
        StepOverdueDetected,
        SupplementDeadlineMissed,
        ConsultationReplyOverdueDetected,
        DossierCompleted,
        ReturnDatePromised,
        PromisedDateDueSoonDetected,
        PromiseBrokenDetected,
        ApologyObligationRecorded,
        ApologyIssued,
        AlertRaised,
    )
}
