"""Citizens' satisfaction ratings: once the look-up has shown the dossier, the citizen may
rate the service once, 1 to 5, with an optional comment.

A rating counts for the receiving unit and for every unit that held the dossier before it
was rated (the counter served the citizen; each holder's work shaped the result), so that
a unit's satisfaction on the board is that of the dossiers it touched. The total counts each
rating once. The comment may hold personal data (a citizen types what they like): it stays
in intake's `ratings` table, is on no topic and no page, and retention erases it with the
applicant's data. The event ServiceRated carries the score and the units only.

Pure rules first (the form, the units, the figures), then the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import asyncpg

from shared.events import DossierRouted, DossierSentBack, HandOffRecorded

RATING_PATH = "/tra-cuu/danh-gia"
RATING_PURPOSE = f"POST {RATING_PATH}"  # the access log's purpose of the PIN's re-check
COMMENT_MAX = 1000
SCORE_LABELS = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}
ALREADY_RATED_MESSAGE = "Hồ sơ này đã được đánh giá. Mỗi hồ sơ chỉ được đánh giá một lần."
THANKS_MESSAGE = "Cảm ơn bạn đã đánh giá. Ý kiến của bạn giúp cơ quan phục vụ tốt hơn."


# --- the form (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingForm:
    code: str
    pin: str
    score: int | None  # None when the form's score is missing or invalid: see `errors`
    comment: str | None
    errors: Mapping[str, str]  # form field -> what is wrong with it, in Vietnamese


def rating_form(body: bytes) -> RatingForm:
    """The rating form's fields: dossier code (upper-cased), PIN, score 1-5 and an optional
    comment; each invalid field's error names it."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def field(name: str) -> str:
        return (fields.get(name) or [""])[0].strip()

    errors: dict[str, str] = {}
    score: int | None = None
    raw_score = field("diem")
    if not raw_score:
        errors["diem"] = "Mức độ hài lòng: hãy chọn một mức từ 1 đến 5."
    elif raw_score not in {str(s) for s in SCORE_LABELS}:
        errors["diem"] = f"Mức độ hài lòng: phải là một số từ 1 đến 5 (nhận được: {raw_score!r})."
    else:
        score = int(raw_score)
    comment = field("y_kien").replace("\r\n", "\n") or None
    if comment is not None and len(comment) > COMMENT_MAX:
        errors["y_kien"] = f"Ý kiến: tối đa {COMMENT_MAX} ký tự (bạn đã nhập {len(comment)} ký tự)."
    return RatingForm(field("ma_ho_so").upper(), field("ma_pin"), score, comment, errors)


# --- which units a rating counts for (pure) --------------------------------------------------


def rated_units(receiving_unit_code: str, timeline: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The receiving unit, then each unit that held the dossier (as routing recorded: the
    first holder on routing, then each hand-off's and send-back's giver and takers), in the
    order they first held it, each once."""
    units = [receiving_unit_code]
    for entry in timeline:
        details = entry.get("details")
        details = details if isinstance(details, Mapping) else {}
        kind = entry.get("event_type")
        if kind == DossierRouted.TYPE:
            held = [details.get("current_unit_code")]
        elif kind == HandOffRecorded.TYPE:
            takers = details.get("current_unit_codes") or [details.get("current_unit_code")]
            held = [details.get("from_unit_code"), *takers]
        elif kind == DossierSentBack.TYPE:
            held = [details.get("from_unit_code"), details.get("to_unit_code")]
        else:
            continue
        units.extend(str(unit) for unit in held if unit and str(unit) not in units)
    return tuple(dict.fromkeys(units))


# --- the figures (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    dossier_code: str
    score: int
    unit_codes: tuple[str, ...]
    rated_at: datetime


@dataclass(frozen=True)
class Satisfaction:
    """A unit's ratings: how many, the average score, the share of satisfied ones."""

    ratings: int
    points: int
    satisfied: int

    @property
    def average(self) -> float | None:
        return round(self.points / self.ratings, 2) if self.ratings else None

    @property
    def satisfied_rate(self) -> float | None:
        return round(self.satisfied / self.ratings, 3) if self.ratings else None


def satisfaction_of(figures: Mapping[str, int]) -> Satisfaction:
    """From the indicators' figures of a unit (see indicators.SATISFACTION_FIGURES)."""
    get = figures.get
    return Satisfaction(get("ratings", 0), get("rating_points", 0), get("ratings_satisfied", 0))


# --- the table -------------------------------------------------------------------------------


class RatingStore:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, rating: Rating, comment: str | None) -> bool:
        """Record the rating; False when the dossier was already rated (nothing changes)."""
        inserted = await self._db.fetchval(
            "INSERT INTO ratings (dossier_code, score, unit_codes, comment, rated_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dossier_code) DO NOTHING"
            " RETURNING true",
            rating.dossier_code,
            rating.score,
            list(rating.unit_codes),
            comment,
            rating.rated_at,
        )
        return bool(inserted)

    async def of(self, code: str) -> Rating | None:
        row = await self._db.fetchrow(
            "SELECT dossier_code, score, unit_codes, rated_at FROM ratings WHERE dossier_code = $1",
            code,
        )
        return _rating(row) if row else None

    async def in_period(self, start: datetime, end: datetime) -> list[Rating]:
        rows = await self._db.fetch(
            "SELECT dossier_code, score, unit_codes, rated_at FROM ratings"
            " WHERE rated_at >= $1 AND rated_at < $2",
            start,
            end,
        )
        return [_rating(row) for row in rows]


def _rating(row: asyncpg.Record) -> Rating:
    return Rating(row["dossier_code"], row["score"], tuple(row["unit_codes"]), row["rated_at"])
