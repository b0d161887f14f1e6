"""The QĐ 766/QĐ-TTg (23/6/2022) indicators of one-stop processing, computed from the events
recorded for each dossier as they stood at the period's end. Pure, no I/O.

Only what happened before the period's end counts: an event recorded later (a hand-off, the
completion, an apology, a withdrawal) never changes a closed period's figures. QĐ 766's
"tiến độ giải quyết" group counts dossiers by what happened to them (received, done early /
on time / late, still in progress within / past due, paused) and asks that a dossier past its
due time be apologised for (Nghị định 61/2018/NĐ-CP Điều 19 khoản 3; the apology is Mẫu 04 of
Thông tư 01/2018/TT-VPCP). Where QĐ 766 leaves a choice, the comments say which we made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.intake.ratings import Rating
from shared.events import (
    ApologyIssued,
    Channel,
    ConsultationReplied,
    DossierClockPaused,
    DossierClockResumed,
    DossierClockStarted,
    DossierCompleted,
    DossierProcessed,
    DossierRefused,
    DossierRouted,
    DossierWithdrawn,
    Event,
    ProcessingStopped,
    ResultReturned,
)

NOT_ROUTED = "(not yet routed)"
# QĐ 766/QĐ-TTg's satisfaction group (mức độ hài lòng), from the citizens' ratings of the
# period: how many, the sum of their scores (the average is points / ratings) and how many
# were satisfied. QĐ 766 scores satisfaction from the citizens' assessments; which scores
# count as "satisfied" is our configurable default (4 and 5 of 5), not a figure from it.
SATISFACTION_FIGURES = ("ratings", "rating_points", "ratings_satisfied")
SATISFIED_FROM = 4


def kind_of(event: type[Event] | str) -> str:
    """`vn.hcmc.onestop.dossier.completed.v1` -> `completed`."""
    return (event if isinstance(event, str) else event.TYPE).split(".")[-2]


ROUTED, STARTED = kind_of(DossierRouted), kind_of(DossierClockStarted)
PAUSED, RESUMED = kind_of(DossierClockPaused), kind_of(DossierClockResumed)
COMPLETED, PROCESSED = kind_of(DossierCompleted), kind_of(DossierProcessed)
WITHDRAWN, REFUSED = kind_of(DossierWithdrawn), kind_of(DossierRefused)
STOPPED, RETURNED = kind_of(ProcessingStopped), kind_of(ResultReturned)
APOLOGY = kind_of(ApologyIssued)
REPLIED = kind_of(ConsultationReplied)
# The events after which a dossier is no longer being processed.
FINISHING_TYPES: tuple[type[Event], ...] = (
    DossierCompleted,
    DossierProcessed,
    DossierWithdrawn,
    DossierRefused,
    ProcessingStopped,
)
FINISHING = frozenset(kind_of(t) for t in FINISHING_TYPES)

FIGURES = (
    "carried_over",
    "received",
    *(f"received_{channel.value}" for channel in Channel),
    "done_early",
    "done_on_time",
    "done_late",
    "in_progress_within_due",
    "in_progress_past_due",
    "paused_within_due",
    "paused_past_due",
    "paused",
    "returned",
    "withdrawn",
    "refused",
    "stopped",
    "apologies_issued",
    "apologies_on_time",
    "apologies_late",
    "apologies_missing",
    "late_without_apology",
    "consultations_replied_late",
    *SATISFACTION_FIGURES,
)
NOTES = (
    "consultations_replied_late counts the replies to inter-agency consultations (lấy ý kiến)"
    " given in the period after their due time, under the unit responsible for the dossier;"
    " the lateness board shows them per consulted unit.",
    "late_without_apology is apologies_missing, kept for existing readers.",
    "ratings, rating_points and ratings_satisfied are the citizens' ratings (1-5) given in the"
    " period; a rating counts for the receiving unit and each unit that held the dossier, and"
    " once in the total; satisfied means a score of at least the configured threshold"
    " (default 4). The average is rating_points / ratings.",
)


@dataclass(frozen=True)
class Fact:
    """One recorded event of a dossier: when it happened, its kind, its payload (JSON)."""

    at: datetime
    kind: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class DossierRecord:
    """What is known of a dossier: its receipt (which never changes) and its events."""

    code: str
    received_at: datetime
    channel: str
    appointment_at: datetime  # the due time on the receipt, until the clock says otherwise
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class Indicators:
    units: dict[str, dict[str, int]]
    total: dict[str, int]


def compute(
    records: Iterable[DossierRecord],
    start: datetime,
    end: datetime,
    ratings: Iterable[Rating] = (),
    *,
    satisfied_from: int = SATISFIED_FROM,
) -> Indicators:
    """The figures of the period [start, end), per responsible unit and in total; the
    ratings given in the period per unit they count for, and each once in the total."""
    units: dict[str, Counter[str]] = {}
    for record in records:
        unit, figures = dossier_figures(record, start, end)
        if figures:
            units.setdefault(unit, Counter()).update(figures)
    rated: Counter[str] = Counter()
    for rating in ratings:
        if start <= rating.rated_at < end:
            figures = rating_figures(rating, satisfied_from)
            rated.update(figures)
            for unit in dict.fromkeys(rating.unit_codes):
                units.setdefault(unit, Counter()).update(figures)
    as_dicts = {
        unit: {name: counts[name] for name in FIGURES} for unit, counts in sorted(units.items())
    }
    total = {name: sum(unit[name] for unit in as_dicts.values()) for name in FIGURES}
    total.update({name: rated[name] for name in SATISFACTION_FIGURES})
    return Indicators(units=as_dicts, total=total)


def rating_figures(rating: Rating, satisfied_from: int = SATISFIED_FROM) -> Counter[str]:
    return Counter(
        ratings=1, rating_points=rating.score, ratings_satisfied=int(rating.score >= satisfied_from)
    )


def dossier_figures(
    record: DossierRecord, start: datetime, end: datetime
) -> tuple[str, Counter[str]]:
    """The unit responsible for the dossier at the period's end, and what it adds to each
    figure of the period [start, end)."""
    figures: Counter[str] = Counter()
    if record.received_at >= end or start >= end:
        return NOT_ROUTED, figures
    facts = sorted((f for f in record.facts if f.at < end), key=lambda f: f.at)
    in_period = [f for f in facts if f.at >= start]

    unit = NOT_ROUTED
    for fact in facts:
        # The competent unit answers for the dossier (QĐ 766 counts per agency in charge).
        if fact.kind == ROUTED:
            unit = str(fact.details.get("competent_unit_code") or unit)
        elif fact.kind == STARTED and unit == NOT_ROUTED:
            unit = str(fact.details.get("responsible_unit_code") or unit)

    finished_before_start = any(f.kind in FINISHING and f.at < start for f in facts)
    if record.received_at < start and not finished_before_start:
        figures["carried_over"] += 1
    if record.received_at >= start:
        figures["received"] += 1
        figures[f"received_{record.channel}"] += 1

    for fact in in_period:
        if fact.kind == COMPLETED:
            figures[f"done_{fact.details.get('timeliness')}"] += 1
        elif fact.kind == RETURNED:
            figures["returned"] += 1
        elif fact.kind == WITHDRAWN:
            figures["withdrawn"] += 1
        elif fact.kind == REFUSED:
            figures["refused"] += 1
        elif fact.kind == STOPPED:
            figures["stopped"] += 1
        elif fact.kind == REPLIED and fact.details.get("late"):
            figures["consultations_replied_late"] += 1
        elif fact.kind == APOLOGY:
            figures["apologies_issued"] += 1
            issued = _time(fact.details, "issued_at") or fact.at
            apologised_for = _time(fact.details, "original_due_at")
            # On time: issued no later than the due time it apologises for.
            on_time = apologised_for is not None and issued <= apologised_for
            figures["apologies_on_time" if on_time else "apologies_late"] += 1

    history = _clock_history(record, facts, end)
    if not history.finished:
        if history.paused_at is not None:
            # Paused (waiting on the citizen): the clock stands still, so the dossier is as
            # late as it was when it paused. Our choice: past due if its due time had passed
            # before the pause began.
            figures["paused"] += 1
            past_due = history.due_at < history.paused_at
            figures["paused_past_due" if past_due else "paused_within_due"] += 1
        else:
            past_due = history.due_at < end
            figures["in_progress_past_due" if past_due else "in_progress_within_due"] += 1

    apologised = any(f.kind == APOLOGY for f in facts)
    crossed = history.went_past_due_at
    if crossed is not None and start <= crossed < end and not apologised:
        figures["apologies_missing"] += 1
        figures["late_without_apology"] += 1
    return unit, +figures


@dataclass(frozen=True)
class _ClockHistory:
    due_at: datetime
    paused_at: datetime | None  # paused at the end: since when
    finished: bool
    went_past_due_at: datetime | None  # when it first ran past its due time


def _clock_history(record: DossierRecord, facts: list[Fact], end: datetime) -> _ClockHistory:
    """Replays the clock: running from receipt, paused and resumed (the due time moves on
    resumption), until the dossier is finished or the period ends."""
    due = record.appointment_at
    paused_at: datetime | None = None
    since = record.received_at
    crossed: datetime | None = None
    for fact in facts:
        if paused_at is None and crossed is None and due < fact.at:
            crossed = max(due, since)
        if fact.kind in FINISHING:
            return _ClockHistory(due, None, True, crossed)
        if fact.kind in (STARTED, RESUMED):
            due = _time(fact.details, "due_at") or due
            if fact.kind == RESUMED:
                paused_at, since = None, fact.at
        elif fact.kind == PAUSED:
            paused_at = _time(fact.details, "paused_at") or fact.at
    if paused_at is None and crossed is None and due < end:
        crossed = max(due, since)
    return _ClockHistory(due, paused_at, False, crossed)


def _time(details: Mapping[str, Any], key: str) -> datetime | None:
    value = details.get(key)
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
