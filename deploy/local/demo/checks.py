"""The demo checks itself: every late dossier got its apology (Mẫu 04), and the indicators,
the lateness board, the timelines and the clocks agree, on dossiers and on the consulted
units' late replies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deploy.local.demo.driver import Driver
from deploy.local.demo.traffic import Dossier, Move, parse_time


@dataclass
class Check:
    """Late dossiers against apologies, per dossier and in the indicators.

    Late is QĐ 766's meaning: finished after its due time (done late), or still running past
    it at the end (in progress past due); paused dossiers are not late, their due time moves
    by the pause. The deadline service marks a dossier overdue when its scheduler finds it
    running past its due time, and the notifier apologises then (for the city, late), or
    earlier, when the unit signs its draft apology (at due-soon, or on asking for an
    extension): an apology in advance, for a dossier that is not due yet, is right (HCMC wants
    it no later than the due date) and is counted apart."""

    done_late: int
    in_progress_past_due: int
    overdue_detected: int
    apologies: int
    in_advance: list[str]  # apologies signed before the dossier is due, not due yet at the end
    late_without_apology_indicator: int
    late_without_apology: list[str]
    late_by_clocks: int
    planned_late: list[str]
    unplanned_late: list[str]
    board_held_past_due: int
    replies: int = 0  # consultations replied to
    replies_late: int = 0  # ... after their due time, by our model
    replies_late_board: int = 0
    replies_late_indicator: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def late(self) -> int:
        return self.done_late + self.in_progress_past_due

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_apologies(
    driver: Driver,
    dossiers: list[Dossier],
    indicators: dict[str, Any],
    board: dict[str, Any],
    end: datetime,
) -> Check:
    """Each dossier's timeline (intake) and clock (deadline), against the indicators."""
    kinds = await asyncio.gather(*(driver.event_kinds(d) for d in dossiers))
    await driver.until_all(dossiers, driver.read_clock, "the final clocks")
    by_code = {d.code: d for d in dossiers}
    late: set[str] = set()  # finished after its due time, or running past it at the end
    not_yet_due: set[str] = set()  # running or paused within its due time at the end
    overdue: set[str] = set()
    apologised: set[str] = set()
    for d, events in zip(dossiers, kinds, strict=True):
        c = d.clock
        running_past_due = c["status"] == "running" and parse_time(c["due_at"]) < end
        if running_past_due or (c["status"] == "completed" and c["timeliness"] == "late"):
            late.add(d.code)
        elif c["status"] in ("running", "paused"):
            not_yet_due.add(d.code)
        for kind, found in (
            ("overdue", overdue),
            ("apology-issued", apologised),
        ):
            if kind in events:
                found.add(d.code)
    total = indicators["total"]
    planned = {d.code for d in dossiers if d.fate.past_due}  # some are not due yet
    in_advance = apologised & not_yet_due
    check = Check(
        done_late=total["done_late"],
        in_progress_past_due=total["in_progress_past_due"],
        overdue_detected=len(overdue),
        apologies=total["apologies_issued"],
        in_advance=sorted(in_advance),
        late_without_apology_indicator=total["late_without_apology"],
        late_without_apology=sorted((late | overdue) - apologised),
        late_by_clocks=len(late),
        planned_late=sorted(planned & late),
        unplanned_late=sorted(late - planned),
        board_held_past_due=sum(row["held_past_due"] for row in board["units"]),
        replies=sum(r.replied for d in dossiers for r in d.replies),
        replies_late=sum(r.replied and r.late for d in dossiers for r in d.replies),
        replies_late_board=sum(row["replies_late"] for row in board["units"]),
        replies_late_indicator=total["consultations_replied_late"],
    )
    problems = check.problems
    if not check.replies_late == check.replies_late_board == check.replies_late_indicator:
        problems.append(
            f"late replies to consultations: {check.replies_late} given,"
            f" {check.replies_late_board} on the board,"
            f" {check.replies_late_indicator} in the indicators"
        )
    if check.late != len(late):
        problems.append(f"the indicators count {check.late} late dossiers, the clocks {len(late)}")
    if len(apologised) != check.apologies:
        problems.append(
            f"{len(apologised)} timelines show an apology, the indicators say {check.apologies}"
        )
    if check.late != check.apologies - len(in_advance):
        problems.append(
            f"{check.late} late dossiers but {check.apologies - len(in_advance)} apologies for"
            f" late dossiers ({check.apologies} issued, {len(in_advance)} in advance)"
        )
    if check.late_without_apology or check.late_without_apology_indicator:
        problems.append(
            f"late without apology: {len(check.late_without_apology)} by the timelines"
            f" ({', '.join(check.late_without_apology[:10])}),"
            f" {check.late_without_apology_indicator} by the indicators"
        )
    for code in sorted(apologised - late - overdue - in_advance):
        problems.append(f"{code}: an apology, but never late: {by_code[code].facts()}")
    for code in sorted(late ^ overdue):
        problems.append(
            f"{code}: late={code in late}, found overdue={code in overdue},"
            f" apology={code in apologised}: {by_code[code].facts()}"
        )
    if check.board_held_past_due != check.in_progress_past_due:
        paused = [
            d.code
            for d in dossiers
            if d.clock["status"] == "paused" and parse_time(d.clock["due_at"]) < end
        ]
        check.notes.append(
            f"the lateness board counts {check.board_held_past_due} dossiers held past due, the"
            f" indicators {check.in_progress_past_due} in progress past due: the board also counts"
            f" paused dossiers (waiting on the citizen) whose due time, not yet moved by the"
            f" pause, has passed: {', '.join(paused) or 'none'}"
        )
    sent_back = [code for code in check.unplanned_late if Move.SEND_BACK in by_code[code].done]
    if sent_back:
        check.notes.append(
            "late after a send-back (the reopened steps get fresh time, the dossier's due time"
            " does not move): " + ", ".join(sent_back)
        )
    if others := [code for code in check.unplanned_late if code not in sent_back]:
        check.notes.append("late though no unit sat on them: " + ", ".join(others))
    return check
