"""QĐ 766 indicators from a list of events: what each dossier adds to the period's figures,
as things stood at the period's end."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.indicators import (
    APOLOGY,
    COMPLETED,
    FIGURES,
    NOT_ROUTED,
    PAUSED,
    REFUSED,
    RESUMED,
    RETURNED,
    ROUTED,
    STARTED,
    STOPPED,
    WITHDRAWN,
    DossierRecord,
    Fact,
    compute,
    dossier_figures,
)
from tests.unit.conftest import hcmc

UNIT, OTHER = "000.00.05.H29", "000.14.01.H29"
START, END = hcmc(2026, 12, 1), hcmc(2027, 1, 1)
BEFORE, IN, AFTER = START - timedelta(days=5), START + timedelta(days=3), END + timedelta(days=2)


def at(moment: datetime, hours: float = 0) -> datetime:
    return moment + timedelta(hours=hours)


def dossier(
    received: datetime, *facts: Fact, channel: str = "counter", due_hours: float = 24
) -> DossierRecord:
    routed = Fact(received, ROUTED, {"competent_unit_code": UNIT})
    started = Fact(received, STARTED, {"due_at": at(received, due_hours).isoformat()})
    return DossierRecord(
        code=f"D-{received:%m%d%H%M}",
        received_at=received,
        channel=channel,
        appointment_at=at(received, due_hours),
        facts=(routed, started, *facts),
    )


def completed(moment: datetime, timeliness: str) -> Fact:
    return Fact(moment, COMPLETED, {"timeliness": timeliness})


def apology(moment: datetime, due: datetime) -> Fact:
    return Fact(
        moment, APOLOGY, {"issued_at": moment.isoformat(), "original_due_at": due.isoformat()}
    )


def figures(record: DossierRecord, start: datetime = START, end: datetime = END) -> dict[str, Any]:
    return dict(dossier_figures(record, start, end)[1])


def test_received_in_the_period_counts_by_channel_and_runs_within_due() -> None:
    assert figures(dossier(IN, channel="online", due_hours=24 * 40)) == {
        "received": 1,
        "received_online": 1,
        "in_progress_within_due": 1,
    }


def test_carried_over_and_done_late_in_the_period_with_its_apology_on_time() -> None:
    due = at(BEFORE, 24 * 7)
    record = dossier(
        BEFORE, apology(at(due, -2), due), completed(at(due, 3), "late"), due_hours=24 * 7
    )
    assert figures(record) == {
        "carried_over": 1,
        "done_late": 1,
        "apologies_issued": 1,
        "apologies_on_time": 1,
    }


def test_an_apology_after_the_due_time_is_late_and_none_by_the_end_is_missing() -> None:
    due = at(IN, 8)
    late = dossier(IN, apology(at(due, 1), due), due_hours=8)
    assert figures(late) == {
        "received": 1,
        "received_counter": 1,
        "in_progress_past_due": 1,
        "apologies_issued": 1,
        "apologies_late": 1,
    }
    missing = dossier(IN, apology(AFTER, due), due_hours=8)
    assert figures(missing) == {
        "received": 1,
        "received_counter": 1,
        "in_progress_past_due": 1,
        "apologies_missing": 1,
        "late_without_apology": 1,
    }


def test_a_dossier_that_went_past_due_in_an_earlier_period_is_not_missing_an_apology_now() -> None:
    record = dossier(BEFORE, due_hours=1)
    assert figures(record) == {"carried_over": 1, "in_progress_past_due": 1}
    assert figures(record, BEFORE, START)["apologies_missing"] == 1


def test_paused_within_or_past_due_by_when_the_clock_stopped() -> None:
    within = dossier(IN, Fact(at(IN, 2), PAUSED, {"paused_at": at(IN, 2).isoformat()}), due_hours=8)
    past = dossier(IN, Fact(at(IN, 9), PAUSED, {"paused_at": at(IN, 9).isoformat()}), due_hours=8)
    assert figures(within)["paused_within_due"] == 1 and "apologies_missing" not in figures(within)
    assert figures(past)["paused_past_due"] == 1 and figures(past)["apologies_missing"] == 1
    assert figures(within)["paused"] == figures(past)["paused"] == 1


def test_a_resumption_moves_the_due_time() -> None:
    moved = at(IN, 30)
    record = dossier(
        IN,
        Fact(at(IN, 2), PAUSED, {"paused_at": at(IN, 2).isoformat()}),
        Fact(at(IN, 20), RESUMED, {"due_at": moved.isoformat()}),
        due_hours=8,
    )
    assert figures(record, START, at(IN, 25))["in_progress_within_due"] == 1
    assert figures(record, START, at(IN, 31))["apologies_missing"] == 1


@pytest.mark.parametrize(
    ("kind", "figure"),
    [(WITHDRAWN, "withdrawn"), (REFUSED, "refused"), (STOPPED, "stopped")],
)
def test_closed_without_a_result(kind: str, figure: str) -> None:
    record = dossier(IN, Fact(at(IN, 2), kind, {}), due_hours=8)
    assert figures(record) == {"received": 1, "received_counter": 1, figure: 1}


def test_result_returned_in_the_period() -> None:
    record = dossier(BEFORE, completed(at(BEFORE, 2), "early"), Fact(at(IN, 1), RETURNED, {}))
    assert figures(record) == {"returned": 1}


def test_later_events_do_not_change_a_closed_period() -> None:
    due = at(IN, 8)
    before = dossier(IN, due_hours=8)
    later = dossier(
        IN,
        Fact(at(END, 1), ROUTED, {"competent_unit_code": OTHER}),
        apology(at(END, 2), due),
        completed(at(END, 3), "late"),
        Fact(at(END, 4), RETURNED, {}),
        due_hours=8,
    )
    assert dossier_figures(before, START, END) == dossier_figures(later, START, END)


def test_per_unit_and_total() -> None:
    unrouted = DossierRecord("X", IN, "post", at(IN, 8), ())
    result = compute([dossier(IN), dossier(at(IN, 1)), unrouted], START, END)
    assert list(result.units) == [NOT_ROUTED, UNIT]
    assert result.units[UNIT]["received"] == 2 and result.units[NOT_ROUTED]["received_post"] == 1
    assert result.total["received"] == 3 and set(result.total) == set(FIGURES)
    assert compute([dossier(IN)], END, START).total == dict.fromkeys(FIGURES, 0)


kinds = st.sampled_from(
    [PAUSED, RESUMED, COMPLETED, WITHDRAWN, REFUSED, STOPPED, APOLOGY, RETURNED]
)


@given(
    received=st.integers(-200, 800),
    due=st.integers(1, 300),
    steps=st.lists(st.tuples(st.integers(0, 900), kinds), max_size=6),
)
def test_every_dossier_counted_at_the_start_or_received_is_accounted_for_at_the_end(
    received: int, due: int, steps: list[tuple[int, str]]
) -> None:
    """carried over + received = done + withdrawn + refused + stopped + open at the end."""
    moment = at(START, received)
    facts = []
    for hours, kind in steps:
        when = at(moment, hours)
        details: dict[str, Any] = {"paused_at": when.isoformat(), "timeliness": "early"}
        if kind == RESUMED:
            details["due_at"] = at(when, due).isoformat()
        if kind == APOLOGY:
            details = {
                "issued_at": when.isoformat(),
                "original_due_at": at(moment, due).isoformat(),
            }
        facts.append(Fact(when, kind, details))
    record = dossier(moment, *facts, due_hours=due)
    end = at(START, 744)
    got = figures(record, START, end)
    finishing = [f for f in record.facts if f.kind in (COMPLETED, WITHDRAWN, REFUSED, STOPPED)]
    if finishing and min(f.at for f in finishing) < START:
        return  # finished before the period
    first_finish = min((f for f in finishing), key=lambda f: f.at, default=None)
    counted_in = got.get("carried_over", 0) + got.get("received", 0)
    counted_out = sum(
        got.get(name, 0)
        for name in (
            "in_progress_within_due",
            "in_progress_past_due",
            "paused_within_due",
            "paused_past_due",
        )
    )
    if first_finish is not None and first_finish.at < end:
        counted_out += 1
        assert got.get(f"{first_finish.kind.replace('processing-', '')}", 0) >= 1 or (
            first_finish.kind == COMPLETED and got.get("done_early", 0) >= 1
        )
    assert counted_in == counted_out
